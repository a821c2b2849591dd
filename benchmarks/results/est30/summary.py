import json, numpy as np, collections
rows = [json.loads(l) for l in open(__import__("os").path.join(__import__("os").path.dirname(__file__), "variants.jsonl"))]
by = collections.defaultdict(list)
for r in rows: by[(r["label"], tuple(r["cell"]))].append(r)
base = {(r["cell"][0], r["cell"][1], r["cell"][4], r["k"]): r for r in rows if r["label"] == "base"}
for (lab, cell), rs in by.items():
    e = np.array([r["est_pct"] for r in rs]); h = np.array([r["err_pct"] for r in rs])
    b = np.array([base[(cell[0], cell[1], cell[4], r["k"])]["est_pct"] for r in rs if (cell[0], cell[1], cell[4], r["k"]) in base])
    d = e[:len(b)] - b if len(b) == len(e) else np.array([np.nan])
    print(f"{lab:14s} {str(cell):28s} n {len(rs):2d} est {e.mean():+.2f} +- {e.std(ddof=1)/np.sqrt(len(e)):.2f}  err {h.mean():+.2f} +- {h.std(ddof=1)/np.sqrt(len(h)):.2f} "
          f"cov {sum(r['covers'] for r in rs)}/{len(rs)}  paired d {d.mean():+.2f} +- {d.std(ddof=1)/np.sqrt(len(d)) if len(d)>1 else 0:.2f}  fb {np.mean([r['fit_bias_r2'] for r in rs]):.2f} sim {np.mean([r['sim_r2'] for r in rs]):.2f}")
