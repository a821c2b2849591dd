"""Diagnosis (branch grid24): is the ~20 % short interval of uniform 8-channel small livers in the data?

Uniform 30 mg/g small livers (64 x 64 x 3 of 6 mm), SNR 50, seeds 0-39, 1 and 8 channels.
Per liver: the mean of the voxel-wise ncchi R2 over the true mask and its naive SE (voxel SD /
sqrt(n)). If the seed SD of the voxel mean exceeds the naive SE, the voxels'
errors are correlated in the phantom, and any tile SE that assumes independent voxels is short.
Run: NUMBA_NUM_THREADS=1 python benchmarks/results/hetero_grid-diag_voxelmean.py COILS
"""
import sys

import numpy as np

import r2mri
from r2mri.phantom import generate

GEOMETRY = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
coils = int(sys.argv[1])
means, ses = [], []
for seed in range(40):
    ph = generate(lic=30.0, snr=50.0, coils=coils, seed=seed, texture_seed=seed, lic_log_sd=0.0,
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
    means.append(100 * (r2.mean() / tr - 1))
    ses.append(100 * r2.std(ddof=1) / np.sqrt(r2.size) / tr)
means = np.asarray(means)
print(f"{coils} ch: voxel-mean R2 error {means.mean():+.3f} %, seed SD {means.std(ddof=1):.3f} % "
      f"against median naive SE {np.median(ses):.3f} % (ratio {means.std(ddof=1) / np.median(ses):.2f})")
