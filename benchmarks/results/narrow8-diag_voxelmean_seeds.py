"""Diagnosis (branch narrow8): are the voxel R2 errors of a uniform 8-channel small liver independent?

Same livers as benchmarks/results/hetero_grid-diag_voxelmean.py (uniform 30 mg/g, 64 x 64 x 3 of
6 mm, true mask, true sigma and coils), on seeds FIRST..LAST: per liver the voxel-mean ncchi R2
error and its naive SE (voxel SD / sqrt(n)), and the channel sigma / coil count estimate_noise
reads from the image's air against the phantom's. One JSON line per liver.
Run: NUMBA_NUM_THREADS=1 python benchmarks/results/narrow8-diag_voxelmean_seeds.py COILS SNR FIRST LAST
"""
import json
import sys

import numpy as np

import r2mri
from r2mri.noise import estimate_noise
from r2mri.phantom import generate

GEOMETRY = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
coils, snr, first, last = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for seed in range(first, last + 1):
    ph = generate(lic=30.0, snr=snr, coils=coils, seed=seed, texture_seed=seed, lic_log_sd=0.0,
                  lic_correlation_voxels=1.0, **GEOMETRY)
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    te = np.asarray(ph.image.echo_times_s, float)
    y = np.asarray(ph.image.data, float)[mask]
    f = r2mri.fit(y.reshape(-1, 1, 1, te.size), echo_times_s=te, model="ncchi", noise_sigma=sigma, coils=coils,
                  threads=1)
    r2 = np.asarray(f.r2_per_s, float).reshape(-1)
    r2 = r2[np.isfinite(r2)]
    tr = float(ph.summary["mean_liver_r2_per_s"])
    ne = estimate_noise(ph.image)
    print(json.dumps({"seed": seed, "coils": coils, "snr": snr, "n": int(r2.size),
                      "err_pct": 100 * (r2.mean() / tr - 1), "se_pct": 100 * r2.std(ddof=1) / np.sqrt(r2.size) / tr,
                      "sigma_true": sigma, "sigma_est": float(ne.sigma), "coils_est": float(ne.coils), "coils_ml": ne.coils_estimate, "sigma_se": ne.sigma_se,
                      "noise_method": str(getattr(ne, "method", ""))}), flush=True)
