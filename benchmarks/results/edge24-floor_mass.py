"""Branch edge24: how much of the coarse 30 mg/g liver (SNR 20, 8 channels) is at the noise
floor by its true first echo (the information limit of any estimator): per texture, the
fraction of liver voxels (no vessels) and of the liver's summed true R2 whose noise-free
coil-combined first echo is below 1, 2, 3 sigma (the floor's mean is 3.94 sigma, its SD 0.70
sigma; an amplitude A raises the mean magnitude by ~A^2 / 7.9 sigma). The noise-free image
does not depend on the noise seed. Run from the repository root:
NUMBA_NUM_THREADS=1 python benchmarks/results/edge24-floor_mass.py
"""
import numpy as np

from r2mri import phantom

for t in range(1, 9):
    ph = phantom.generate("heterogeneous-coarse-1.5t", seed=0, texture_seed=t, lic_mg_per_g=30.0, snr=20, coils=8)
    sigma = float(ph.summary["noise_sigma"])
    liver = ph.truth.liver_mask & (ph.truth.labels != phantom.LABELS["vessel"])
    a1 = np.asarray(ph.noise_free[..., 0], float)
    r2 = ph.truth.r2_per_s
    parts = []
    for k in (1, 2, 3):
        m = liver & (a1 < k * sigma)
        parts.append(f"A1<{k}sigma: voxels {m.sum() / liver.sum():.3%} R2 mass {r2[m].sum() / r2[liver].sum():.3%}")
    print(f"texture {t}: sigma {sigma:.2f}, liver {int(liver.sum())} voxels, median A1 "
          f"{np.median(a1[liver]) / sigma:.2f} sigma; " + "; ".join(parts), flush=True)
