"""The ROI-sampling block of roi_golden's ferriscan-lic40 and gre-fat15-lic1 cases (branch lowside2)."""
import json

import r2mri
from r2mri.phantom import generate

for spec, kw in (("ferriscan-1.5t-lic40", {"seed": 0}), ("gre-1.5t-fat15-lic3.2", {"seed": 1, "lic": 1.0})):
    ph = generate(spec, **kw)
    res = r2mri.analyze(ph.image)
    blk = res.statistics.blocks["headline"]["roi_sampling"]
    keep = ("se_r2_per_s", "left_out_difference_r2_per_s", "left_out_difference_noise_se_r2_per_s",
            "left_out_median_relative_se", "left_out_difference_used", "ci95_before_lic_mg_per_g")
    print(spec, kw, "truth", ph.summary.get("lic_of_mean_r2_mg_per_g"), "headline", res.statistics.headline_lic_mg_per_g,
          "ci", res.statistics.ci95_lic_mg_per_g, json.dumps({k: blk.get(k) for k in keep}), flush=True)
