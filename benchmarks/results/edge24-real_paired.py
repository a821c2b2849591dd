"""Branch edge24: the floor-pocket join on the two real GRE livers of benchmarks/real_liver.py
(main run only: pixel 1.5 mm, Bydder sigma 0.5, calibrations as there), fitted once with
``analyze``; ``liver_roi`` with ``floor_pockets`` a no-op (before) and as shipped (after).
Run from the repository root: NUMBA_NUM_THREADS=1 PYTHONPATH=. python
benchmarks/results/edge24-real_paired.py /work/realdata
"""
import sys
from pathlib import Path

import numpy as np

import r2mri
import r2mri._roi_extend as E
from benchmarks.real_liver import BYDDER, CAL_3T, ISMRM12, image, load_bydder, load_ismrm
from r2mri.roi import liver_roi
from r2mri.stats import liver_statistics

_real = E.floor_pockets


def _noop(cand, image_, fit, usable, k):
    return np.zeros_like(cand), {"voxels": 0, "pockets": 0, "refused": 0}


root = Path(sys.argv[1])
for name, loader, path, cal, sigma in (("bydder-3t", load_bydder, root / BYDDER, CAL_3T, 0.5),
                                       ("ismrm2012-case12-1.5t", load_ismrm, root / ISMRM12, None, None)):
    if not path.is_file():
        print(f"{name}: skipped ({path} not found)")
        continue
    data, te, b0 = loader(path)
    kw = {"threads": 1}
    if cal:
        kw["calibration"] = cal
    if sigma is not None:
        kw.update(noise_sigma=sigma, coils=1)
    res = r2mri.analyze(image(data, te, b0, 1.5), **kw)
    out = []
    for f in (_noop, _real):
        E.floor_pockets = f
        roi = liver_roi(res.image, res.fit, calibration=res.calibration)
        st = liver_statistics(res.fit, roi, res.calibration, image=res.image)
        out.append((roi, st.headline_lic_mg_per_g))
    E.floor_pockets = _real
    (a, ha), (b, hb) = out
    print(f"{name}: pockets {b.options.get('floor_pockets')}; candidate +{int((b.candidate & ~a.candidate).sum())}; "
          f"mask +{int((b.mask & ~a.mask).sum())} -{int((a.mask & ~b.mask).sum())}; headline {ha:.4f} -> {hb:.4f}",
          flush=True)
