"""The sigma check through r2mri.analyze (automatic ROI from the liver+vessel outline), matched noise:
small livers 30 mg/g SNR 20 8 ch, seeds 700-707; headline LIC error and coverage with sigma_check "off" and
"liver" (the default) on the same fit and ROI. Run: NUMBA_NUM_THREADS=1 python benchmarks/results/sigma_check-analyze.py"""
import json, os
import numpy as np
import r2mri
from r2mri.phantom import generate, LABELS
from r2mri.stats import liver_statistics

for seed in range(700, 708):
    ph = generate(lic=30.0, snr=20.0, coils=8, seed=seed, texture_seed=seed, matrix=(64, 64), pixel_mm=6.0, n_slices=3)
    outline = np.isin(ph.truth.labels, [LABELS["liver"], LABELS["vessel"]])
    res = r2mri.analyze(ph.image, mask=outline)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    row = {"seed": seed}
    for mode in ("off", "liver"):
        st = liver_statistics(res.fit, res.roi, image=ph.image, sigma_check=mode)
        lo, hi = st.ci95_lic_mg_per_g
        row[mode] = [round(100 * (st.headline_lic_mg_per_g / truth - 1), 2), bool(lo <= truth <= hi), round(50 * (hi - lo) / st.headline_lic_mg_per_g, 2)]
        if mode == "liver":
            c = st.blocks["sigma_check"]
            row["check"] = [c["status"], c["z"] and round(c["z"], 2), c["sigma_liver"] and round(c["sigma_liver"] / ph.summary["noise_sigma"] - 1, 4)]
    row["load"] = os.getloadavg()[0]
    print(json.dumps(row), flush=True)
