"""Branch edge24: which benchmarks.roi_golden cases the floor-pocket join
(r2mri/_roi_floor_pockets.py) changes, paired on one fit per case in one process (adapted
from coarse23-golden_paired.py).

For each roi_golden case that goes through the candidate's extension (the 9 automatic
``analyze`` cases, and the seed and bounding-box cases on ferriscan-lic7's fit), the fit is
made once as ``analyze`` does; ``liver_roi`` runs with ``floor_pockets`` replaced by a
no-op (before) and as shipped (after); printed: pockets and voxels joined, mask voxels added/removed,
non-liver voxels added (true labels), headline (``liver_statistics``) before/after.
The user-mask cases do not pass through the extension. Run from the repository root:
NUMBA_NUM_THREADS=1 python benchmarks/results/edge24-golden_paired.py
"""
import numpy as np

import r2mri
import r2mri._roi_extend as E
from benchmarks.roi_golden import _AUTO
from r2mri.phantom import LABELS, generate
from r2mri.roi import liver_roi
from r2mri.stats import liver_statistics

_real = E.floor_pockets


def _noop(cand, image, fit, usable, k):
    return np.zeros_like(cand), {"voxels": 0, "pockets": 0, "refused": 0}


def _pair(name, ph, res, **kw):
    out = []
    for f in (_noop, _real):
        E.floor_pockets = f
        roi = liver_roi(res.image, res.fit, calibration=res.calibration, **kw)
        st = liver_statistics(res.fit, roi, res.calibration, image=res.image)
        out.append((roi, st.headline_lic_mg_per_g))
    E.floor_pockets = _real
    (a, ha), (b, hb) = out
    liver = ph.truth.liver_mask
    vessel = ph.truth.labels == LABELS["vessel"]
    added, removed = b.mask & ~a.mask, a.mask & ~b.mask
    print(f"{name}: pockets {b.options.get('floor_pockets')}; "
          f"candidate +{int((b.candidate & ~a.candidate).sum())}; mask +{int(added.sum())} -{int(removed.sum())} "
          f"(added: liver {int((added & liver).sum())}, vessel {int((added & vessel).sum())}, other "
          f"{int((added & ~liver & ~vessel).sum())}); headline {ha:.4f} -> {hb:.4f} ({100 * (hb / ha - 1):+.3f} %)",
          flush=True)


keep = None
for name, (spec, kw) in _AUTO.items():
    ph = generate(spec, **kw)
    res = r2mri.analyze(ph.image, threads=1)
    _pair(name, ph, res)
    if name == "ferriscan-lic7":
        keep = (ph, res)
ph, res = keep
ii, jj, kk = np.nonzero(res.roi.mask)
mid = len(ii) // 2
_pair("seed", ph, res, seed=(int(ii[mid]), int(jj[mid]), int(kk[mid])))
box = [[int(ii.min()), int(ii.max()) + 1], [int(jj.min()), int(jj.max()) + 1], [int(kk.min()), int(kk.max()) + 1]]
_pair("bbox", ph, res, bbox=box)
