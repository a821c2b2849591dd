"""What-if (branch midgrid, no library change): the low-side check's warn fraction lowered for the intake.

On autogrid's mid cell (SD 0.4, texture 4 voxels, 1 mg/g, SNR 20, 1 channel) the low-side check read
0.0087-0.0185 of the region left out on 7/8 livers, under LOW_SIDE_WARN_FRACTION (0.02), so the
low-iron intake (r2mri._roi_low_intake) never ran and the headline read +2.7 % (selection). This
re-runs the same livers (same k, same seeds) with the check's default ``warn_fraction`` set to
``FRACTION`` for this process only (``check_low_side.__defaults__``), and prints autogrid's row.
Run from the repository root: ``PYTHONPATH=. python benchmarks/results/midgrid_whatif_lowside.py FRACTION K[,K..] [CELL_INDEX_IN_MID_CELLS]``.
"""
import sys

import numpy as np

from benchmarks.autogrid import MID_CELLS, _automatic, analyzed_liver, cell_name
from r2mri import _roi_low_side

frac = float(sys.argv[1])
ks = [int(k) for k in sys.argv[2].split(",")]
cell = MID_CELLS[int(sys.argv[3]) if len(sys.argv) > 3 else 1]
_roi_low_side.check_low_side.__defaults__ = (frac,)
errs = []
for k in ks:
    ph, res = analyzed_liver(cell, k)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    a = _automatic(res, ph.truth.liver_mask, ph.truth.r2_per_s, truth)
    ls = a["roi_sampling"]["low_side_left_out"] or {}
    errs.append(a["headline_error_pct"])
    print(f"{cell_name(cell)} k {k} warn_fraction {frac}: auto {a['headline_error_pct']:+.2f} % "
          f"[{a['ci95_pct'][0]:+.2f}, {a['ci95_pct'][1]:+.2f}] cover {a['covers']:d} sel {a['pool_truth_error_pct']:+.2f} "
          f"est {a['pool_estimator_error_pct']:+.2f} Dice {a['dice_roi_liver']:.3f} non-liver {a['non_liver_voxels_in_roi']} "
          f"lowside {ls.get('fraction')} before {ls.get('before_intake_fraction', '-')} red "
          f"{[w[:40] for w in a['red_warnings'] if not w.startswith('heterogeneity')]}", flush=True)
e = np.array(errs)
if e.size > 1:
    print(f"n={e.size}: {e.mean():+.2f} +- {e.std(ddof=1) / np.sqrt(e.size):.2f} % (max {np.abs(e).max():.2f})")
