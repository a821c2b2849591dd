"""coarse30 fits: the headline estimator on the whole true liver (no vessels), every voxel pooled,
as hetero_full reads (plain mask, fit carrying the true R2 and status 0): the estimator's own error."""
import os, pickle
from types import SimpleNamespace
import numpy as np
from r2mri.stats import liver_statistics
print("load", os.getloadavg(), flush=True)
for snr in (50, 20):
    errs = []
    for tex in range(1, 7):
        d = pickle.load(open(f"/tmp/coarse8fits/coarse30_snr{snr}_c8_t{tex}_n0.pkl", "rb"))
        liver, fit = d["liver"], d["fit"]
        ns = SimpleNamespace(r2_per_s=np.where(liver, d["r2_true"], np.nan), status=np.zeros(liver.shape, np.uint8),
                             options={"noise_sigma": fit.options["noise_sigma"], "coils": fit.options["coils"]})
        st = liver_statistics(ns, liver, d["calibration"], image=d["image"])
        lo, hi = st.ci95_lic_mg_per_g
        e = 100 * (st.headline_lic_mg_per_g / d["truth"] - 1)
        errs.append(e)
        print(f"SNR {snr} x8 tex {tex}: whole liver {e:+.2f} % [{100*(lo/d['truth']-1):+.2f}, {100*(hi/d['truth']-1):+.2f}]"
              f" sigma {fit.options['noise_sigma']:.3g} coils {fit.options['coils']}", flush=True)
    e = np.array(errs)
    print(f"SNR {snr} x8: mean {e.mean():+.2f} +- {e.std(ddof=1)/np.sqrt(len(e)):.2f} %", flush=True)
print("load", os.getloadavg(), flush=True)
