"""Why the automatic ROI reads +5-6 % on the coarse 1 mg/g liver at SNR 20 (benchmarks/autogrid.py cell
sd0.4_w8_lic1_snr20): the liver voxels outside the candidate, by true LIC and by the rule's view.

Run from the repository root: NUMBA_NUM_THREADS=1 python benchmarks/results/autogrid-lic1_diag.py [K ...]
(K: autogrid running index; default 8 9 10 11 = the SNR 20 and SNR 100 livers of round 1).
"""
import sys

import numpy as np

import r2mri
from benchmarks.autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0
from r2mri import phantom
from r2mri.calibration import lic_from_r2

CELL_OF_K = {8: CELLS[8], 9: CELLS[9], 10: CELLS[10], 11: CELLS[11]}
for k in [int(v) for v in sys.argv[1:]] or [8, 9, 10, 11]:
    sd, w, lic, snr, c = CELL_OF_K.get(k, CELLS[k % len(CELLS)])
    ph = phantom.generate(lic=lic, snr=snr, coils=c, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                          lic_log_sd=sd, lic_correlation_voxels=w)
    res = r2mri.analyze(ph.image)
    roi, fit, cal = res.roi, res.fit, res.calibration
    liver, lab, r2t = ph.truth.liver_mask, ph.truth.labels, ph.truth.r2_per_s
    cand = roi.candidate
    out = liver & ~cand
    lic_t = np.asarray(lic_from_r2(r2t, cal))
    print(f"k {k} sd {sd} w {w} lic {lic} snr {snr} coils {c}: truth {ph.summary['lic_of_mean_r2_mg_per_g']:.4f} "
          f"headline {res.statistics.headline_lic_mg_per_g:.4f}")
    print("  removed", roi.removed, " candidate", int(cand.sum()), " mask", int(roi.mask.sum()))
    ext = roi.options.get("parenchyma_extension")
    print("  extension", {k2: v for k2, v in (ext or {}).items() if not isinstance(v, (list, dict))})
    print("  floor", roi.options.get("parenchyma_r2_min_per_s"), roi.options.get("parenchyma_r2_min_source"))
    q = [0.05, 0.25, 0.5, 0.75, 0.95]
    print("  true LIC quantiles, whole liver      ", np.round(np.quantile(lic_t[liver], q), 3))
    print("  true LIC quantiles, liver not in cand", np.round(np.quantile(lic_t[out], q), 3), int(out.sum()))
    for lo_, hi_ in [(0, 0.5), (0.5, 0.7), (0.7, 1.0), (1.0, 1.5), (1.5, 99)]:
        b = liver & (lic_t >= lo_) & (lic_t < hi_)
        print(f"    true LIC {lo_}-{hi_}: {int(b.sum())} liver voxels, {100 * np.count_nonzero(b & out) / max(b.sum(), 1):.1f} % "
              f"outside the candidate, {100 * np.count_nonzero(b & roi.mask) / max(b.sum(), 1):.1f} % in the ROI")
    r2f = np.asarray(fit.r2_per_s, float)
    print("  fitted R2 of liver outside candidate: median", round(float(np.nanmedian(r2f[out])), 1),
          " inside:", round(float(np.nanmedian(r2f[liver & cand])), 1))
    from scipy import ndimage
    med3 = ndimage.median_filter(np.where(np.isfinite(r2f), r2f, 0.0), size=(3, 3, 1))
    fl = float(roi.options.get("parenchyma_r2_min_per_s") or 18.0)
    for name_, sel_ in (("liver outside candidate", out), ("liver in candidate", liver & cand)):
        print(f"  {name_}: fitted 3x3-median R2 below the floor {fl:.1f} s^-1 in "
              f"{100 * np.count_nonzero(sel_ & (med3 < fl)) / max(sel_.sum(), 1):.1f} %, voxel R2 below it in "
              f"{100 * np.count_nonzero(sel_ & (r2f < fl)) / max(sel_.sum(), 1):.1f} %")
    nl = roi.mask & ~liver
    print("  non-liver in ROI by label", {n: int(np.count_nonzero(nl & (lab == v))) for n, v in phantom.LABELS.items()
                                          if np.count_nonzero(nl & (lab == v))})
    print("  per slice liver outside candidate", [int(out[..., z].sum()) for z in range(out.shape[2])])
    print("  ROI warnings", [w_[:120] for w_ in roi.warnings])
