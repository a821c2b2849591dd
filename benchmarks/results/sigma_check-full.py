"""Full-size livers (default geometry), matched noise and +1 % / +3 %: the check's z and sigma reading."""
import numpy as np, r2mri, time, os, json
from r2mri.phantom import generate
from r2mri.stats import pooled_mean_r2
from r2mri._sigma_check import sigma_check
for sd, w, r, seed in ((0.0, 1, 1.0, 0), (0.4, 4, 1.0, 0), (0.0, 1, 1.0, 1), (0.4, 4, 1.0, 1), (0.0, 1, 1.01, 0), (0.4, 4, 1.01, 0)):
    t0 = time.time()
    ph = generate(lic=30.0, snr=20.0, coils=8, seed=seed, texture_seed=seed, lic_log_sd=sd, lic_correlation_voxels=float(w), body_noise_ratio=r)
    ne = r2mri.estimate_noise(ph.image)
    p = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=ne.sigma, coils=ne.coils)
    t1 = time.process_time(); c = sigma_check(ph.image, p, ne.sigma, ne.coils, ne.sigma_se); cpu = time.process_time() - t1
    tl = ph.summary.get("noise_sigma_liver_mean", ph.summary["noise_sigma"])
    print(json.dumps(dict(sd=sd, width=w, ratio=r, seed=seed, liver_voxels=int(ph.truth.liver_mask.sum()), air_over_true=ne.sigma / ph.summary["noise_sigma"],
                          liver_read_over_true=c.sigma_liver / tl if c.sigma_liver else None, se_rel=c.sigma_liver_se / tl if c.sigma_liver_se else None,
                          z=c.z, status=c.status, sens=c.sensitivity, shift=c.r2_shift_relative, n=c.n_floor_samples, cpu_check_s=cpu, wall_s=time.time() - t0,
                          load=os.getloadavg()[0])), flush=True)
