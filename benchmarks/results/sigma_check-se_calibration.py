"""SE calibration of the liver-sigma reading on matched noise (true sigma), seeds 1000-1015, final code of branch sigmaci.

Output (2026-12-03 13:16 UTC, load 10):
30 20 1 0 1 gain 0.094 testable 16/16 mean +0.09 ± 0.27 % seed SD 1.08 mean SE 1.39
30 20 1 0.2 4 gain 0.107 testable 16/16 mean +0.20 ± 0.30 % seed SD 1.20 mean SE 1.45
40 30 1 0 1 gain 0.049 testable 16/16 mean +0.20 ± 0.25 % seed SD 0.98 mean SE 1.31
30 20 8 0 1 gain 0.16 testable 16/16 mean -0.01 ± 0.11 % seed SD 0.46 mean SE 0.37
Run: PYTHONPATH=. NUMBA_NUM_THREADS=1 python benchmarks/results/sigma_check-se_calibration.py
"""
import numpy as np, r2mri
import r2mri._sigma_check as S
from r2mri.stats import pooled_mean_r2
from benchmarks.sigma_check import _liver
for lic,snr,ch,sd,w in ((30,20,1,0,1),(30,20,1,0.2,4),(40,30,1,0,1),(30,20,8,0,1)):
  q=[];se=[];ok=0
  for seed in range(1000,1016):
    ph=_liver(lic,snr,ch,seed,sd,w); s=float(ph.summary["noise_sigma"])
    p=pooled_mean_r2(ph.image,ph.truth.liver_mask,noise_sigma=s,coils=ch)
    c=S.sigma_check(ph.image,p,s,ch,None)
    if c.sigma_liver: q.append(c.sigma_liver/s-1); se.append(c.sigma_liver_se/s)
  q=np.array(q)*100
  print(lic,snr,ch,sd,w, "gain", round(c.feedback_gain or 0,3), f"testable {len(q)}/16 mean {q.mean():+.2f} ± {q.std(ddof=1)/np.sqrt(len(q)):.2f} % seed SD {q.std(ddof=1):.2f} mean SE {100*np.mean(se):.2f}", flush=True)
