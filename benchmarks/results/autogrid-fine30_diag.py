"""The fine patchy liver at 30 mg/g, SNR 20, 8 channels (benchmarks/autogrid.py cell sd0.4_w1_lic30_snr20_c8):
the true outline through analyze's ROI rules reads ~-2.7 % with a 1.4 % half-width (0/5 covered), while
benchmarks/hetero_full.py's cell (plain true mask, a fit carrying the true R2) reads -0.2 % with 2.9 %.
Same phantom, three reads of liver_statistics (+ the two widenings where an ROI exists):

  A  outline through liver_roi (the autogrid "outline" row: rules 1-3 on the real fit)
  B  plain true liver mask (no vessels), the real fit (every liver voxel, whatever its status)
  C  plain true liver mask, a fit carrying the true R2 and status OK (hetero_full's read)

Run: PYTHONPATH=. NUMBA_NUM_THREADS=1 python benchmarks/results/autogrid-fine30_diag.py [K ...] (default 5 29 48).
"""
import sys
from types import SimpleNamespace

import numpy as np

import r2mri
from benchmarks.autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0
from benchmarks.coarse30 import _row
from r2mri import phantom
from r2mri.stats import liver_statistics

sd, w, lic, snr, c = CELLS[5]
for k in [int(v) for v in sys.argv[1:]] or [5, 29, 48]:
    ph = phantom.generate(lic=lic, snr=snr, coils=c, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                          lic_log_sd=sd, lic_correlation_voxels=w)
    res = r2mri.analyze(ph.image)
    liver = ph.truth.liver_mask
    vessel = ph.truth.labels == phantom.LABELS["vessel"]
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    d = {"image": res.image, "fit": res.fit, "calibration": res.calibration, "liver": liver, "vessel": vessel,
         "r2_true": ph.truth.r2_per_s, "truth": truth}
    a = _row(d, liver | vessel)

    def read(fit, name):
        st = liver_statistics(fit, liver, res.calibration, image=res.image)
        lo, hi = st.ci95_lic_mg_per_g
        h = st.headline_lic_mg_per_g
        print(f"  {name}: {100 * (h / truth - 1):+.2f} % [{100 * (lo / truth - 1):+.2f}, {100 * (hi / truth - 1):+.2f}] "
              f"half-width {50 * (hi - lo) / truth:.2f} % n_used {st.blocks['headline']['n_voxels_used']}", flush=True)

    st_status = np.asarray(res.fit.status)
    print(f"k {k}: truth {truth:.3f}; liver voxels {int(liver.sum())}, of them status != OK "
          f"{int(np.count_nonzero(liver & (st_status != 0)))}")
    print(f"  A outline via liver_roi: {a['headline_error_pct']:+.2f} % [{a['ci95_pct'][0]:+.2f}, {a['ci95_pct'][1]:+.2f}] "
          f"sel {a['pool_truth_error_pct']:+.2f} est {a['pool_estimator_error_pct']:+.2f}", flush=True)
    import r2mri.roi as roi_mod
    ro = roi_mod.liver_roi(res.image, res.fit, mask=liver | vessel, calibration=res.calibration)
    nc = ro.not_converged if ro.not_converged is not None else np.zeros_like(ro.mask)
    print(f"  outline ROI removed {ro.removed}; mask {int(ro.mask.sum())} + not_converged {int(nc.sum())}; "
          f"liver left out {int(np.count_nonzero(liver & ~(ro.mask | nc)))}")
    read(res.fit, "B plain mask, real fit")
    fake = SimpleNamespace(r2_per_s=np.where(liver, ph.truth.r2_per_s, np.nan), status=np.zeros(liver.shape, np.uint8),
                           options={"noise_sigma": float(ph.summary["noise_sigma"]), "coils": c})
    read(fake, "C plain mask, true-R2 fit (hetero_full)")
