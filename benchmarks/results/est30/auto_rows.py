"""Automatic rows (analyze's own ROI) of the cached cell-13 livers: before (main, cache.py) and after
(this branch, TAG=after_ cache.py), same livers k 11000-11011 (branch est30). Writes auto_rows.json."""
import json, os, pickle
import numpy as np
rows = []
for k in range(11000, 11012):
    b, a = (pickle.load(open(f"/tmp/est30/{t}c13_k{k}.pkl", "rb"))["auto"] for t in ("", "after_"))
    rows.append({"k": k, **{f"{n}_{key}": r[key] for n, r in (("before", b), ("after", a))
                            for key in ("headline_error_pct", "pool_estimator_error_pct", "pool_truth_error_pct",
                                        "covers", "ci95_pct")}})
json.dump(rows, open(os.path.join(os.path.dirname(__file__), "auto_rows.json"), "w"), indent=1)
for key in ("headline_error_pct", "pool_estimator_error_pct"):
    b = np.array([r[f"before_{key}"] for r in rows]); a = np.array([r[f"after_{key}"] for r in rows]); d = a - b
    se = lambda v: v.std(ddof=1) / np.sqrt(v.size)
    print(f"{key}: before {b.mean():+.2f} +- {se(b):.2f}, after {a.mean():+.2f} +- {se(a):.2f}, paired {d.mean():+.2f} +- {se(d):.2f}")
print("covered before", sum(r["before_covers"] for r in rows), "after", sum(r["after_covers"] for r in rows), "of", len(rows))
for r in rows:
    if not (r["before_covers"] and r["after_covers"]):
        print(r["k"], r["before_headline_error_pct"], r["before_ci95_pct"], r["after_headline_error_pct"], r["after_ci95_pct"])
