"""heterogeneous-coarse-1.5t at 30 mg/g, SNR 20 (or the SNR given as the first argument), 8 ch, texture 1:
the whole-liver estimator reading over noise seeds (the coarse30 rows all share noise seed 0). Plain
true-liver mask, as hetero_full reads. Logs: coarse30-noise_seeds-04b6096.log (SNR 20) and
coarse30-noise_seeds-snr50-04b6096.log (argument 50)."""
import os
import sys
from types import SimpleNamespace
import numpy as np
from r2mri import phantom
from r2mri.stats import liver_statistics
SNR = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
print("load", os.getloadavg(), flush=True)
errs = []
for n in range(0, 7):
    ph = phantom.generate("heterogeneous-coarse-1.5t", seed=n, texture_seed=1, lic_mg_per_g=30.0, snr=SNR, coils=8)
    liver = ph.truth.liver_mask
    ns = SimpleNamespace(r2_per_s=np.where(liver, ph.truth.r2_per_s, np.nan), status=np.zeros(liver.shape, np.uint8),
                         options={"noise_sigma": float(ph.summary["noise_sigma"]), "coils": 8})
    t = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    st = liver_statistics(ns, liver, image=ph.image, seed=n + 1000)
    lo, hi = st.ci95_lic_mg_per_g
    e = 100 * (st.headline_lic_mg_per_g / t - 1)
    if n > 0:
        errs.append(e)
    print(f"noise seed {n}: {e:+.2f} % [{100*(lo/t-1):+.2f}, {100*(hi/t-1):+.2f}] covered {lo <= t <= hi}", flush=True)
e = np.array(errs)
print(f"noise seeds 1-6: mean {e.mean():+.2f} +- {e.std(ddof=1)/np.sqrt(len(e)):.2f} % (SD {e.std(ddof=1):.2f})")
print("load", os.getloadavg(), flush=True)
