"""CPU of sigma_check against liver_statistics (warm), 30 mg/g SNR 20 8 ch small and full size."""
import time, os, numpy as np, r2mri
from r2mri.phantom import generate
from r2mri.stats import pooled_mean_r2
from r2mri._sigma_check import sigma_check
for geom in (dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3), {}):
    ph = generate(lic=30.0, snr=20.0, coils=8, seed=2, texture_seed=2, **geom)
    s = float(ph.summary["noise_sigma"])
    p = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=s, coils=8)
    sigma_check(ph.image, p, s, 8, None)
    t = time.process_time(); [sigma_check(ph.image, p, s, 8, None) for _ in range(3)]; c = (time.process_time() - t) / 3
    t = time.process_time(); pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=s, coils=8); tp = time.process_time() - t
    print(int(ph.truth.liver_mask.sum()), "voxels: check", round(c, 3), "s CPU; tile-pooled fit", round(tp, 3), "s; load", os.getloadavg()[0])
