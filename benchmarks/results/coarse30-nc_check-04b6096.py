"""Which part of the coarse30 8-channel shift is snr10's pooling of non-converged ROI voxels."""
import dataclasses, os, pickle, sys
import numpy as np
import r2mri.roi as roi_mod
from r2mri._roi_sampling import widen_for_roi_sampling
from r2mri.stats import liver_statistics
print("load", os.getloadavg(), flush=True)
for snr, tex in ((20, 1), (20, 3), (50, 1), (50, 3)):
    d = pickle.load(open(f"/tmp/coarse8fits/coarse30_snr{snr}_c8_t{tex}_n0.pkl", "rb"))
    for name, mask in (("auto", None), ("outline", d["liver"] | d["vessel"])):
        roi = roi_mod.liver_roi(d["image"], d["fit"], mask=mask, calibration=d["calibration"])
        nc = roi.not_converged
        out = []
        for r in (roi, dataclasses.replace(roi, not_converged=None)):
            st = liver_statistics(d["fit"], r, d["calibration"], image=d["image"])
            out.append(100 * (st.headline_lic_mg_per_g / d["truth"] - 1))
        print(f"SNR {snr} x8 tex {tex} {name}: not_converged {0 if nc is None else int(nc.sum())} "
              f"(liver {0 if nc is None else int((nc & d['liver']).sum())}), ROI {int(roi.mask.sum())}; "
              f"headline with {out[0]:+.2f} %, without {out[1]:+.2f} %", flush=True)
