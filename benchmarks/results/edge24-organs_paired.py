"""Branch edge24: does the floor-pocket join (r2mri/_roi_floor_pockets.py) let an organ into
the automatic ROI of a uniform liver? ``benchmarks.roi_organs``' phantoms (full-size
``ferriscan-1.5t-lic7`` with ``lic_mg_per_g``, ``snr``, ``coils`` overridden), each fitted
once as ``analyze`` does; ``liver_roi`` with ``floor_pockets`` replaced by a no-op
(before) and as shipped (after), in one process. Printed: pockets joined, mask voxels
added/removed by phantom label, headline before/after. Also the one-channel coarse
30 mg/g spot check when given ``--coarse1``. Run from the repository root:
NUMBA_NUM_THREADS=1 python benchmarks/results/edge24-organs_paired.py [LICS] [SNR] [COILS] [SEED]
"""
import sys

import numpy as np

import r2mri
import r2mri._roi_extend as E
from r2mri.phantom import LABELS, generate
from r2mri.roi import liver_roi
from r2mri.stats import liver_statistics

_real = E.floor_pockets


def _noop(cand, image, fit, usable, k):
    return np.zeros_like(cand), {"voxels": 0, "pockets": 0, "refused": 0}


def pair(name, ph, res):
    out = []
    for f in (_noop, _real):
        E.floor_pockets = f
        roi = liver_roi(res.image, res.fit, calibration=res.calibration)
        st = liver_statistics(res.fit, roi, res.calibration, image=res.image)
        out.append((roi, st.headline_lic_mg_per_g))
    E.floor_pockets = _real
    (a, ha), (b, hb) = out
    added, removed = b.mask & ~a.mask, a.mask & ~b.mask
    lab = ph.truth.labels
    by = {k: int((added & (lab == v)).sum()) for k, v in LABELS.items() if (added & (lab == v)).any()}
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    print(f"{name}: pockets {b.options.get('floor_pockets')}; candidate +{int((b.candidate & ~a.candidate).sum())}; "
          f"mask +{int(added.sum())} -{int(removed.sum())} added by label {by}; headline {ha:.4f} -> {hb:.4f} "
          f"(truth {truth:.4f}; error {100 * (ha / truth - 1):+.2f} -> {100 * (hb / truth - 1):+.2f} %)", flush=True)


if __name__ == "__main__":
    lics = [float(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "0.5,7,15,30,40").split(",")]
    snr, coils, seed = (float(sys.argv[2]) if len(sys.argv) > 2 else 50.0, int(sys.argv[3]) if len(sys.argv) > 3
                        else 4, int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    for lic in lics:
        ph = generate("ferriscan-1.5t-lic7", seed=seed, snr=snr, coils=coils, lic_mg_per_g=lic)
        pair(f"uniform {lic:g} mg/g SNR {snr:g} x{coils} seed {seed}", ph, r2mri.analyze(ph.image, threads=1))
