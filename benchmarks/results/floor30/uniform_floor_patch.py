import numpy as np, r2mri
import r2mri._roi_rules as rules, r2mri._tile_bias_sim as tbs
from r2mri.roi import liver_roi
from r2mri.stats import liver_statistics
te = np.array([6, 9, 12, 15, 18]) / 1e3
sigma, coils, s0 = 1.0, 8, 20.0
for R2 in (250.0, 330.0):
    acc = {}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        shape = (48, 48, 2)
        amp = s0 * np.exp(-R2 * te) * np.ones(shape + (5,))
        re = amp + sigma * rng.standard_normal(amp.shape)
        data = np.sqrt(re**2 + sigma**2 * rng.chisquare(2 * coils - 1, amp.shape))
        img = r2mri.MultiEchoImage(data, te, affine=np.diag([1.5, 1.5, 5.0, 1.0]))
        fit = r2mri.fit(img, noise_sigma=sigma, coils=coils, threads=1)
        for pool, m in ((False, "mean"), (True, "mean"), (True, "log"), (False, "log")):
            rules._POOL_FLOOR_FITS = pool; tbs._II_MATCH = m
            roi = liver_roi(img, fit, mask=np.ones(shape, bool), erode_mm=0)
            st = liver_statistics(fit, roi, image=img, n_bootstrap=0)
            acc.setdefault((pool, m), []).append(100 * (st.headline_r2_per_s / R2 - 1))
    for k, v in acc.items():
        print(f"R2 {R2:g}: pool {k[0]} match {k[1]}: {np.mean(v):+.2f} +- {np.std(v, ddof=1)/np.sqrt(len(v)):.2f} % R2", flush=True)
