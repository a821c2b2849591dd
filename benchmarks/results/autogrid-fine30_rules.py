"""Which ROI rule biases the fine 30 mg/g SNR 20 8-channel reading on the true outline
(benchmarks/autogrid.py cell sd0.4_w1_lic30_snr20_c8; see autogrid-fine30_diag.py): the plain
true liver mask minus one rule's voxels at a time, read by liver_statistics (no widening);
error against the whole-liver truth and against that mask's own truth (mean true R2 of its voxels).

Run: PYTHONPATH=. NUMBA_NUM_THREADS=1 python benchmarks/results/autogrid-fine30_rules.py [K ...] (default 5).
"""
import sys

import numpy as np
from scipy import ndimage

import r2mri
import r2mri.roi as roi_mod
from benchmarks.autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0
from r2mri import phantom
from r2mri.calibration import lic_from_r2
from r2mri.roi import FAILED_STATUSES
from r2mri.stats import liver_statistics

sd, w, lic, snr, c = CELLS[5]
for k in [int(v) for v in sys.argv[1:]] or [5]:
    ph = phantom.generate(lic=lic, snr=snr, coils=c, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                          lic_log_sd=sd, lic_correlation_voxels=w)
    res = r2mri.analyze(ph.image)
    fit, cal, img = res.fit, res.calibration, res.image
    liver, r2t = ph.truth.liver_mask, ph.truth.r2_per_s
    vessel = ph.truth.labels == phantom.LABELS["vessel"]
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    ro = roi_mod.liver_roi(img, fit, mask=liver | vessel, calibration=cal)
    r2, s0 = np.asarray(fit.r2_per_s, float), np.asarray(fit.s0, float)
    failed = ~(np.isfinite(r2) & np.isfinite(s0) & (s0 > 0)) | np.isin(np.asarray(fit.status), FAILED_STATUSES)
    edge = (liver | vessel) & ~ndimage.binary_erosion(liver | vessel, structure=np.ones((3, 3, 1), bool), iterations=3)
    npar = ro.non_parenchyma if ro.non_parenchyma is not None else np.zeros_like(liver)
    masks = {"whole liver": liver, "minus failed fits": liver & ~failed, "minus non-parenchyma (vessel rule)": liver & ~npar,
             "minus 3-voxel edge ring": liver & ~edge, "the outline ROI's mask": ro.mask & liver}
    print(f"k {k}: truth {truth:.3f}; failed {int((liver & failed).sum())}, non-parenchyma {int((liver & npar).sum())}, "
          f"edge ring {int((liver & edge).sum())} liver voxels", flush=True)
    for name, m in masks.items():
        st = liver_statistics(fit, m, cal, image=img)
        h = st.headline_lic_mg_per_g
        own = float(lic_from_r2(r2t[m].mean(), cal))
        print(f"  {name}: {int(m.sum())} voxels, error {100 * (h / truth - 1):+.2f} %, own truth "
              f"{100 * (own / truth - 1):+.2f} %, against own truth {100 * (h / own - 1):+.2f} %", flush=True)
