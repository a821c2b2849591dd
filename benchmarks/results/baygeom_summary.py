"""Summarize benchmarks/results/baygeom-*.json (branch baygeom): the bays the floor test refuses on
R2 (>= BAY_MIN_VOXELS finite R2, median below the floor), split by truth (liver fraction >= 0.5),
with their geometric measures; and the best threshold on each measure.

``python benchmarks/results/baygeom_summary.py FILE.json [FILE.json ...]``"""
import json
import sys

import numpy as np

rows = [r for f in sys.argv[1:] for r in json.load(open(f))]
big = [r for r in rows if r["n_r2"] >= 10 and r["median_r2"] < r["floor"]]
for r in sorted(big, key=lambda r: (r["liver_frac"] >= 0.5, r["run"])):
    print(f"{r['run']:22s} n {r['n']:4d} med {r['median_r2']:5.1f} liver {r['liver_frac']:.2f} "
          f"f_cand {r['f_cand']:.2f} f_unlike {r['f_unlike']:.2f} f_bg {r['f_bg']:.2f} f_out {r['f_out']:.2f} "
          f"f_cand2 {r['f_cand2']:.2f} labels {r['labels']}")
liv = [r for r in big if r["liver_frac"] >= 0.5]
oth = [r for r in big if r["liver_frac"] < 0.5]
print(f"\n{len(liv)} liver bays ({sum(r['n'] for r in liv)} voxels), {len(oth)} other bays ({sum(r['n'] for r in oth)} voxels)")
for key, hi_is_liver in (("f_cand", True), ("f_cand2", True), ("f_unlike", False), ("f_bg", False), ("f_out", False)):
    a = np.array([r[key] for r in liv]); b = np.array([r[key] for r in oth])
    if hi_is_liver:
        print(f"{key}: liver min {a.min():.2f} (10th pct {np.percentile(a, 10):.2f}), other max {b.max():.2f} "
              f"(90th pct {np.percentile(b, 90):.2f})")
    else:
        print(f"{key}: liver max {a.max():.2f} (90th pct {np.percentile(a, 90):.2f}), other min {b.min():.2f} "
              f"(10th pct {np.percentile(b, 10):.2f})")
print("\nthreshold on f_cand (keep a below-floor bay when f_cand >= T): liver bays / voxels kept, other bays / "
      "voxels kept (of which non-liver voxels)")
for t in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
    kl = [r for r in liv if r["f_cand"] >= t]
    ko = [r for r in oth if r["f_cand"] >= t]
    nl = sum(r["n"] - round(r["liver_frac"] * r["n"]) for r in kl + ko)
    print(f"T {t:.2f}: liver {len(kl)}/{len(liv)} bays {sum(r['n'] for r in kl)} vox; other {len(ko)}/{len(oth)} "
          f"bays {sum(r['n'] for r in ko)} vox; non-liver voxels in kept bays {nl}")
