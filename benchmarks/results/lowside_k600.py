"""Branch lowside: tests/test_roi_low_side.py's coarse liver (autogrid's builder, k = 600: noise seed 2600, texture
seed 3600; SD 0.4 in log LIC over 8 voxels, 1 mg/g, SNR 20, 1 channel) through r2mri.analyze: headline and interval
against the truth, the ROI's selection error, ROI voxels of other tissue than liver and vessels, the low-side info and
the intake. Run with PYTHONPATH set to a checkout (main: results/lowside-k600-main.log; branch: ...-branch.log)."""
import numpy as np, r2mri
from r2mri.phantom import generate
from r2mri.calibration import lic_from_r2
print(r2mri.__file__)
for seed, tseed, sd, w in ((2600, 3600, 0.4, 8.0),):
    ph = generate(lic=1.0, snr=20.0, coils=1, seed=seed, texture_seed=tseed, lic_log_sd=sd, lic_correlation_voxels=w)
    res = r2mri.analyze(ph.image)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"]); liver = ph.truth.liver_mask
    m = res.roi.mask; nc = res.roi.not_converged if res.roi.not_converged is not None else np.zeros_like(m)
    sel = float(lic_from_r2(ph.truth.r2_per_s[(m | nc) & liver].mean(), res.calibration)) / truth - 1
    lo, hi = res.statistics.ci95_lic_mg_per_g
    print(seed, "headline", round(100 * (res.statistics.headline_lic_mg_per_g / truth - 1), 2), "ci", round(100*(lo/truth-1),2), round(100*(hi/truth-1),2),
          "sel", round(100 * sel, 2), "nonliver", int(np.count_nonzero(m & ~liver & (ph.truth.labels != 5))),
          "lowside", res.roi.options["low_side_left_out"], "intake", res.roi.options.get("low_side_intake", {}).get("added"),
          [w[:70] for w in res.warnings if "low end" in w])
