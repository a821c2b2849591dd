"""Diagnosis (branch grid24): uniform small livers at 30 mg/g, SNR 50 / 100, 8 channels.

The 8-seed cell SD 0, 30 mg/g, SNR 50, 8 ch covered 5/8 on main f2dc45e (7/8 on a408d82).
Per liver: the headline error in LIC, the 95 % half-width, the parts of the interval
(measurement SE, bootstrap SE, spread SE, in % of R2), rho, the tile-fit bias taken off,
and tile-ncchi on the same liver; then the seed SD of the error against the interval's
implied SD. Same livers as benchmarks.hetero (texture = noise = statistics seed).
Run: NUMBA_NUM_THREADS=1 python benchmarks/results/hetero_grid-diag_uniform30.py SNR FIRST LAST [COILS [LIC]]
(defaults 8 channels, 30 mg/g)
"""
import json
import sys
from types import SimpleNamespace

import numpy as np

import r2mri
from r2mri.calibration import lic_from_r2
from r2mri.phantom import generate
from r2mri.stats import liver_statistics

GEOMETRY = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
snr, first, last = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
coils = int(sys.argv[4]) if len(sys.argv) > 4 else 8
lic = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
for seed in range(first, last + 1):
    ph = generate(lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=seed, lic_log_sd=0.0,
                  lic_correlation_voxels=1.0, **GEOMETRY)
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    te = np.asarray(ph.image.echo_times_s, float)
    y = np.asarray(ph.image.data)[mask].astype(np.float64)
    f = r2mri.fit(y.reshape(-1, 1, 1, te.size), echo_times_s=te, model="ncchi", noise_sigma=sigma, coils=coils,
                  threads=1)
    r2map = np.full(mask.shape, np.nan)
    r2map[mask] = np.asarray(f.r2_per_s, float).reshape(-1)
    fit = SimpleNamespace(r2_per_s=r2map, status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": sigma, "coils": coils})
    tr = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    tr_r2 = float(ph.summary["mean_liver_r2_per_s"])
    row = {"seed": seed, "snr": snr, "coils": coils, "lic": lic, "truth_lic": tr, "truth_r2": tr_r2}
    for est in ("tile-ncchi", "tile-mixture"):
        st = liver_statistics(fit, mask, image=ph.image, estimator=est, n_bootstrap=500, seed=seed)
        lo, hi = st.blocks["r2_per_s"]["headline_ci95"]
        m = st.headline_r2_per_s
        lm, llo, lhi = (float(v) for v in lic_from_r2(np.array([m, lo, hi])))
        b = st.blocks["r2_per_s"]
        mx = st.blocks["headline"]["mixture"] or {}
        row[est] = {"err_lic_pct": 100 * (lm / tr - 1), "err_r2_pct": 100 * (m / tr_r2 - 1),
                    "covered": bool(llo <= tr <= lhi), "half_lic_pct": 100 * (lhi - llo) / 2 / tr,
                    "half_r2_pct": 100 * (hi - lo) / 2 / tr_r2,
                    "se_meas_pct": 100 * b["headline_se_measurement"] / tr_r2,
                    "se_boot_pct": 100 * b["headline_se_bootstrap"] / tr_r2,
                    "se_spread_pct": 100 * mx.get("se_spread_r2_per_s", 0.0) / tr_r2,
                    "rho": mx.get("rho_by_tile_size"),
                    "tile_fit_bias_pct": 100 * mx.get("tile_fit_bias_r2_per_s", 0.0) / tr_r2,
                    "correction_pct": 100 * mx.get("correction_r2_per_s", 0.0) / tr_r2}
    print(json.dumps(row), flush=True)
