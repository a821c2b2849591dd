"""What-if (branch coarse20, not a change to r2mri): the automatic candidate's in-plane holes filled
after the parenchyma extension and the dark-rim join, on the saved fits of the coarse20 run.

roi.py fills the holes of the grown region only; the extension and join_decayed_rim add tissue
around liver whose first echo is barely above the noise floor (8 channels: ~4.8 sigma against a
floor of 3.94), which stays out as holes. Here r2mri.roi.join_decayed_rim is wrapped (in this
process only) to fill the per-slice holes of the candidate it returns; rules 1-3 then run as
usual (vessels in the holes go by rule 3). Each liver: benchmarks.coarse30._row as is and with
the wrap, same fit, same process. Run from the repository root: NUMBA_NUM_THREADS=1 PYTHONPATH=. python <this> SEEDS CONDITIONS TEXTURES
"""
import pickle
import sys

import numpy as np
from scipy import ndimage

import r2mri.roi as R
from benchmarks import coarse30

_orig = R.join_decayed_rim


def _join_and_fill(cand, decayed, usable):
    out, n = _orig(cand, decayed, usable)
    filled = np.stack([ndimage.binary_fill_holes(out[:, :, k]) for k in range(out.shape[2])], -1)
    return filled, n


seeds = [int(v) for v in sys.argv[1].split(",")]
conds = [(int(c.split("x")[0]), int(c.split("x")[1])) for c in sys.argv[2].split(",")]
textures = [int(v) for v in sys.argv[3].split(",")]
for seed in seeds:
    for snr, coils in conds:
        for t in textures:
            d = pickle.load(open(f"/tmp/coarse20fits/coarse30_snr{snr}_c{coils}_t{t}_n{seed}.pkl", "rb"))
            R.join_decayed_rim = _orig
            a = coarse30._row(d, None)
            R.join_decayed_rim = _join_and_fill
            b = coarse30._row(d, None)
            R.join_decayed_rim = _orig
            print(f"SNR {snr} x{coils} tex {t} noise {seed}: main {a['headline_error_pct']:+.2f} % "
                  f"[{a['ci95_pct'][0]:+.2f}, {a['ci95_pct'][1]:+.2f}] sel {a['pool_truth_error_pct']:+.2f} | filled "
                  f"{b['headline_error_pct']:+.2f} % [{b['ci95_pct'][0]:+.2f}, {b['ci95_pct'][1]:+.2f}] cover "
                  f"{b['covers']:d} sel {b['pool_truth_error_pct']:+.2f}, non-liver {a['non_liver_voxels_in_roi']} -> "
                  f"{b['non_liver_voxels_in_roi']}, vessels {a['vessel_voxels_in_roi']} -> {b['vessel_voxels_in_roi']}, "
                  f"Dice {a['dice_roi_liver']:.3f} -> {b['dice_roi_liver']:.3f}", flush=True)
