"""Mean +- SE over livers of diag3.py's terms (s^-1 of mean R2 over the pooled sample)."""
import pickle, sys
import numpy as np
for f in sys.argv[1:]:
    rows = pickle.load(open(f, "rb"))
    print(f, len(rows), "livers")
    ms = lambda v: f"{np.mean(v):+.2f} +- {np.std(v, ddof=1) / np.sqrt(len(v)):.2f}"
    for key in ("err_corr", "true_fit_bias", "est_fit_bias", "true_mix", "est_mix"):
        print(f"  {key:14s} {ms([r[key] for r in rows])}")
    print(f"  fit bias left  {ms([r['true_fit_bias'] - r['est_fit_bias'] for r in rows])}   mix left {ms([r['est_mix'] - r['true_mix'] for r in rows])}")
    print(f"  err in R2 %    {ms([100 * r['err_corr'] / r['truth_pool'] for r in rows])}")
    for b in ("0-250", "250-300", "300-500"):
        print(f"  {b}: share {np.mean([r[b]['share'] for r in rows]):.3f} " + " ".join(
            f"{q} {ms([r[b][q] for r in rows])}" for q in ("err", "true_fb", "est_fb", "true_mix", "est_mix")))
