"""Per-liver selection parts of the midgrid rows (branch midgrid): where the ``sel`` column comes from.

Run from the repository root: ``python benchmarks/results/midgrid_parts.py FILE[,FILE..] [CELL_SUBSTRING]``.
For each automatic row: headline error, sel / est (autogrid's split), the share (% of the liver's
mean R2) of coarse30's left-out parts (liver not in the candidate; eroded next to non-parenchyma;
other eroded), the mean true R2 of the not-in-candidate part against the liver's, the low-side
check's left-out fraction (and before the intake), coarsecov's fitted and true left-out difference
and whether it was used, and the interval.
"""
import json
import sys
from pathlib import Path

import numpy as np

files = sys.argv[1].split(",")
sub = sys.argv[2] if len(sys.argv) > 2 else ""
rows = [r for f in files for r in json.loads(Path(f).read_text())["rows"] if sub in r["cell"]]
print("cell k err sel est | not_in_cand% (R2 its / liver) next_np% other_eroded% | lowside frac (before) | "
      "d fitted/true used | ci95 % | cover")
for r in rows:
    a = r["automatic"]
    p = a["left_out"]["parts"]
    rs = a["roi_sampling"]
    ls = rs.get("low_side_left_out") or {}
    nic = p["not_in_candidate"]
    print(f"{r['cell']} {r['k']} {a['headline_error_pct']:+.2f} {a['pool_truth_error_pct']:+.2f} "
          f"{a['pool_estimator_error_pct']:+.2f} | {nic['share_pct']:+.2f} ({nic['mean_true_r2_per_s'] or float('nan'):.1f}) "
          f"{p['next_to_non_parenchyma']['share_pct']:+.2f} {p['other_eroded']['share_pct']:+.2f} | "
          f"{ls.get('fraction', float('nan')):.4f} ({ls.get('before_intake_fraction', '-')}) | "
          f"{rs['left_out_difference_r2_per_s']:+.3f}/{rs.get('true_difference_r2_per_s', float('nan')):+.3f} "
          f"{rs['left_out_difference_used']} | [{a['ci95_pct'][0]:+.2f}, {a['ci95_pct'][1]:+.2f}] {a['covers']:d}")
by = {}
for r in rows:
    by.setdefault(r["cell"], []).append(r)
for c, rs in by.items():
    def m(f):
        v = np.array([f(r) for r in rs])
        return f"{v.mean():+.2f} +- {v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float('nan'):.2f}"
    print(f"{c} n={len(rs)}: sel {m(lambda r: r['automatic']['pool_truth_error_pct'])}, not-in-candidate "
          f"{m(lambda r: r['automatic']['left_out']['parts']['not_in_candidate']['share_pct'])}, other eroded "
          f"{m(lambda r: r['automatic']['left_out']['parts']['other_eroded']['share_pct'])}, est "
          f"{m(lambda r: r['automatic']['pool_estimator_error_pct'])}, outline est "
          f"{m(lambda r: r['outline']['pool_estimator_error_pct'])}")
