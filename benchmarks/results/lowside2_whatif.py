"""Offline: would coarsecov's measured left-out difference have reached the interval at SNR 20?

Reads autogrid rows recorded on branch lowside2 (``automatic.roi_sampling``) and, per liver,
moves the interval's side toward the fitted difference ``d`` by ``|d|`` in R2 (as
``r2mri._left_out_shift`` does when its gate passes; the noise SE of ``d``, 0.02 s^-1 against
a sampling SE of 0.16-0.27 s^-1, changes the quadrature by < 0.001 s^-1 and is left out), then
maps back to LIC with the default calibration. Also prints the fitted against the true
difference. Usage: python benchmarks/results/lowside2_whatif.py JSON [JSON ...]
"""
import json
import sys

import numpy as np

from r2mri.calibration import lic_from_r2, r2_from_lic

for f in sys.argv[1:]:
    for r in json.load(open(f))["rows"]:
        a, t = r["automatic"], r["truth"]
        rs = a["roi_sampling"]
        h = a["headline_lic_mg_per_g"]
        lo, hi = (t * (1 + p / 100) for p in a["ci95_pct"])
        d = rs["left_out_difference_r2_per_s"] or 0.0
        r_lo, r_hi = (float(r2_from_lic(v)) for v in (lo, hi))
        r_lo2, r_hi2 = r_lo - max(-d, 0.0), r_hi + max(d, 0.0)
        lo2, hi2 = (float(lic_from_r2(v)) for v in (r_lo2, r_hi2))
        cov2 = lo2 <= t <= hi2
        print(f"{r['cell']} k {r['k']}: err {100 * (h / t - 1):+.2f} % relSE {rs['left_out_median_relative_se']:.3f} "
              f"used {rs['left_out_difference_used']} d fit {d:+.3f} true {rs.get('true_difference_r2_per_s', np.nan):+.3f} "
              f"(noise SE {rs['left_out_difference_noise_se_r2_per_s']:.3f}, sampling SE {rs['se_r2_per_s']:.3f}) s^-1; "
              f"ci [{a['ci95_pct'][0]:+.2f}, {a['ci95_pct'][1]:+.2f}] cover {a['covers']:d} -> with d "
              f"[{100 * (lo2 / t - 1):+.2f}, {100 * (hi2 / t - 1):+.2f}] cover {cov2:d}")
