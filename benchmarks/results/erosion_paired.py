"""Branch erosion: autogrid rows paired by running index k (before = main's file, after = this branch's).

``python benchmarks/results/erosion_paired.py BEFORE.json AFTER.json``: per cell n, automatic headline error
(mean +- SE) before -> after, the paired change (mean +- SE), selection part, coverage, max, non-liver voxels
in the ROI, Dice, red warnings; then per liver."""
import json
import sys

import numpy as np


def _se(x):
    x = np.asarray(x, float)
    return x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")


def main():
    before = {r["k"]: r for r in json.load(open(sys.argv[1]))["rows"]}
    after = {r["k"]: r for r in json.load(open(sys.argv[2]))["rows"]}
    ks = sorted(set(before) & set(after))
    for cell in dict.fromkeys(after[k]["cell"] for k in ks):
        kk = [k for k in ks if after[k]["cell"] == cell]
        b = [before[k]["automatic"] for k in kk]
        a = [after[k]["automatic"] for k in kk]
        eb, ea = (np.array([x["headline_error_pct"] for x in v]) for v in (b, a))
        sb, sa = (np.array([x["pool_truth_error_pct"] for x in v]) for v in (b, a))
        print(f"{cell} n {len(kk)}: auto {eb.mean():+.2f} +- {_se(eb):.2f} -> {ea.mean():+.2f} +- {_se(ea):.2f} % "
              f"(paired {np.mean(ea - eb):+.2f} +- {_se(ea - eb):.2f}); sel {sb.mean():+.2f} -> {sa.mean():+.2f} "
              f"(paired {np.mean(sa - sb):+.2f} +- {_se(sa - sb):.2f}); covered {sum(x['covers'] for x in b)}/{len(kk)} -> "
              f"{sum(x['covers'] for x in a)}/{len(kk)}; max {eb.max():+.2f} -> {ea.max():+.2f}; non-liver "
              f"{sum(x['non_liver_voxels_in_roi'] for x in b)} -> {sum(x['non_liver_voxels_in_roi'] for x in a)}; Dice "
              f"{np.mean([x['dice_roi_liver'] for x in b]):.3f} -> {np.mean([x['dice_roi_liver'] for x in a]):.3f}; red "
              f"{sum(len(x['red_warnings']) for x in b)} -> {sum(len(x['red_warnings']) for x in a)}; outline "
              f"{'identical' if all(before[k]['outline']['headline_error_pct'] == after[k]['outline']['headline_error_pct'] for k in kk) else 'MOVED'}")
        for k in kk:
            x, y = before[k]["automatic"], after[k]["automatic"]
            print(f"  k {k}: {x['headline_error_pct']:+.2f} -> {y['headline_error_pct']:+.2f} % (sel {x['pool_truth_error_pct']:+.2f}"
                  f" -> {y['pool_truth_error_pct']:+.2f}) cover {x['covers']:d}->{y['covers']:d} non-liver "
                  f"{x['non_liver_voxels_in_roi']}->{y['non_liver_voxels_in_roi']} red {len(x['red_warnings'])}->{len(y['red_warnings'])}")


if __name__ == "__main__":
    main()
