"""Paired before/after on the 16 saved livers: main ecfa1f4 (c30/main_t*_n*.json, the lead's runs) against this
branch (c30/after_t*.json). Run: python benchmarks/results/floor30/paired.py"""
import json
from pathlib import Path
import numpy as np

d = Path(__file__).resolve().parent / "c30"
for k in ("automatic", "outline"):
    a, b, ca, cb, sa, sb = [], [], 0, 0, [], []
    for i in range(1, 17):
        ra = json.loads((d / f"main_t{i}_n{29 + i}.json").read_text())["rows"][0][k]
        rb = json.loads((d / f"after_t{i}.json").read_text())["rows"][0][k]
        a.append(ra["headline_error_pct"]); b.append(rb["headline_error_pct"])
        ca += ra["covers"]; cb += rb["covers"]
        sa.append((ra["pool_truth_error_pct"], ra["pool_estimator_error_pct"]))
        sb.append((rb["pool_truth_error_pct"], rb["pool_estimator_error_pct"]))
    a, b = np.array(a), np.array(b)
    dd = b - a
    se = lambda v: v.std(ddof=1) / np.sqrt(v.size)
    print(f"{k}: before {a.mean():+.2f} +- {se(a):.2f} %, after {b.mean():+.2f} +- {se(b):.2f} %, paired {dd.mean():+.2f} +- "
          f"{se(dd):.2f} % ({dd.min():+.2f} to {dd.max():+.2f}), coverage {ca}/16 -> {cb}/16, largest |error| "
          f"{np.abs(a).max():.2f} -> {np.abs(b).max():.2f} %, sel./est. {np.mean(sa, 0)[0]:+.2f} / {np.mean(sa, 0)[1]:+.2f} -> "
          f"{np.mean(sb, 0)[0]:+.2f} / {np.mean(sb, 0)[1]:+.2f} %")
