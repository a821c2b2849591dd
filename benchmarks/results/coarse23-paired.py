"""Branch coarse23: paired before/after of the coarse30 rows of two results files (same saved
fits; before = main 4b993e0's ROI, after = the hole fill after the dark-rim join).
Run: python benchmarks/results/coarse23-paired.py BEFORE.json AFTER.json[,AFTER2.json]
"""
import json
import sys

import numpy as np


def rows(paths):
    out = {}
    for p in paths.split(","):
        for r in json.load(open(p))["rows"]:
            out[(r["snr"], r["coils"], r["texture_seed"], r["noise_seed"])] = r
    return out


b, a = rows(sys.argv[1]), rows(sys.argv[2])
keys = sorted(set(a) & set(b), key=lambda k: (k[3], k[2]))
for part in ("automatic", "outline"):
    eb = np.array([b[k][part]["headline_error_pct"] for k in keys])
    ea = np.array([a[k][part]["headline_error_pct"] for k in keys])
    sb = np.array([b[k][part]["pool_truth_error_pct"] for k in keys])
    sa = np.array([a[k][part]["pool_truth_error_pct"] for k in keys])
    d = ea - eb
    tex = sorted({k[2] for k in keys})
    tb = np.array([eb[[k[2] == t for k in keys]].mean() for t in tex])
    ta = np.array([ea[[k[2] == t for k in keys]].mean() for t in tex])
    se = lambda x: x.std(ddof=1) / np.sqrt(len(x))
    print(f"{part}: n={len(keys)} livers, {len(tex)} textures; before {eb.mean():+.2f} +- {se(eb):.2f} "
          f"({se(tb):.2f} over textures) -> after {ea.mean():+.2f} +- {se(ea):.2f} ({se(ta):.2f}); paired "
          f"{d.mean():+.2f} +- {se(d):.2f} % (range {d.min():+.2f} to {d.max():+.2f}; {int((d != 0).sum())} changed, "
          f"{int((d < 0).sum())} down); pooled selection {sb.mean():+.2f} -> {sa.mean():+.2f} %; coverage "
          f"{sum(b[k][part]['covers'] for k in keys)}/{len(keys)} -> {sum(a[k][part]['covers'] for k in keys)}/{len(keys)}; "
          f"max |error| {np.abs(eb).max():.2f} -> {np.abs(ea).max():.2f}")
    nl = [(b[k][part]["non_liver_voxels_in_roi"], a[k][part]["non_liver_voxels_in_roi"]) for k in keys]
    vs = [(b[k][part]["vessel_voxels_in_roi"], a[k][part]["vessel_voxels_in_roi"]) for k in keys]
    dice = [(b[k][part]["dice_roi_liver"], a[k][part]["dice_roi_liver"]) for k in keys]
    print(f"  non-liver voxels in ROI (vessels included) before/after: {nl}; vessels {vs}")
    print(f"  Dice {min(x for x, _ in dice):.3f}-{max(x for x, _ in dice):.3f} -> "
          f"{min(y for _, y in dice):.3f}-{max(y for _, y in dice):.3f}")
    for k, x, y in zip(keys, eb, ea):
        print(f"  tex {k[2]} noise {k[3]}: {x:+.2f} -> {y:+.2f} (sel {b[k][part]['pool_truth_error_pct']:+.2f} -> "
              f"{a[k][part]['pool_truth_error_pct']:+.2f}, liver in candidate {b[k][part]['liver_in_candidate']:.3f} -> "
              f"{a[k][part]['liver_in_candidate']:.3f})")
