"""Pair autogrid rows of two runs by (cell, k): automatic headline error and its selection part
(``roi_truth_error_pct``), mean +- SE per cell, paired shift, coverage, non-liver voxels (branch bayfloor).

``python benchmarks/results/bayfloor_paired.py BEFORE.json AFTER.json``"""
import json
import sys

import numpy as np


def rows(path):
    return {(r["cell"], r["k"]): r for r in json.load(open(path))["rows"] if r.get("automatic")}


def ms(x):
    x = np.asarray(x, float)
    return f"{x.mean():+.2f} +- {x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float('nan'):.2f}"


a, b = rows(sys.argv[1]), rows(sys.argv[2])
common = sorted(set(a) & set(b))
for cell in sorted({c for c, _ in common}):
    ks = [k for c, k in common if c == cell]
    get = lambda d, key: [d[(cell, k)]["automatic"][key] for k in ks]  # noqa: E731
    for key in ("headline_error_pct", "roi_truth_error_pct"):
        x, y = np.array(get(a, key)), np.array(get(b, key))
        print(f"{cell} n={len(ks)} {key}: before {ms(x)} after {ms(y)} paired {ms(y - x)}")
    print(f"{cell} covered {sum(get(a, 'covers'))}/{len(ks)} -> {sum(get(b, 'covers'))}/{len(ks)}; "
          f"non-liver voxels {sum(get(a, 'non_liver_voxels_in_roi'))} -> {sum(get(b, 'non_liver_voxels_in_roi'))}")
    for k in ks:
        ra, rb = a[(cell, k)]["automatic"], b[(cell, k)]["automatic"]
        print(f"  k {k}: sel {ra['roi_truth_error_pct']:+.2f} -> {rb['roi_truth_error_pct']:+.2f}, "
              f"non-liver {ra['non_liver_voxels_in_roi']} -> {rb['non_liver_voxels_in_roi']}")
