"""Estimator part (headline against the LIC of the mean true R2 over the pooled sample) of cached livers
(cache.py) with the true outline, under experiment switches PATCH="module:NAME=value;..." (branch est30).
Usage: PATCH=... python benchmarks/results/est30/variants.py LABEL PKL[,PKL..] >> log"""
import json, os, pickle, sys, time

for kv in filter(None, os.environ.get("PATCH", "").split(";")):
    mod, rest = kv.split(":"); name, val = rest.split("=")
    setattr(__import__(mod, fromlist=["x"]), name, eval(val))
import r2mri.roi as roi_mod
from r2mri._roi_sampling import widen_for_roi_sampling
from r2mri._dark_liver import widen_for_dark_liver
from r2mri.calibration import lic_from_r2
from r2mri.stats import liver_statistics

label, files = sys.argv[1], sys.argv[2].split(",")
for fn in files:
    d = pickle.load(open(fn, "rb"))
    img, fit, cal, liver, vessel, r2t, truth = (d[k] for k in ("image", "fit", "calibration", "liver", "vessel",
                                                               "r2_true", "truth"))
    t0 = time.process_time()
    roi = roi_mod.liver_roi(img, fit, mask=liver | vessel, calibration=cal)
    st = liver_statistics(fit, roi, cal, image=img)
    widen_for_roi_sampling(st, roi, fit, cal)
    widen_for_dark_liver(st, roi, fit, img, cal)
    pool = (roi.mask | roi.not_converged) if roi.not_converged is not None else roi.mask
    pool_truth = float(lic_from_r2(r2t[pool & liver].mean(), cal))
    h = st.headline_lic_mg_per_g
    lo, hi = st.ci95_lic_mg_per_g
    def _find(o, key):
        if isinstance(o, dict):
            if key in o:
                return o[key]
            for v in o.values():
                r = _find(v, key)
                if r is not None:
                    return r
        return None
    sd = st.to_dict() if hasattr(st, "to_dict") else vars(st)
    blk = {k: _find(sd, k) for k in ("tile_fit_bias_r2_per_s", "tile_fit_bias_simulated_r2_per_s",
                                     "tile_fit_bias_skipped_fraction", "mean_r2_uncorrected_per_s")}
    row = {"label": label, "k": d["k"], "cell": list(d["cell"]), "est_pct": 100 * (h / pool_truth - 1),
           "err_pct": 100 * (h / truth - 1), "ci_pct": [100 * (lo / truth - 1), 100 * (hi / truth - 1)],
           "covers": bool(lo <= truth <= hi),
           "fit_bias_r2": blk.get("tile_fit_bias_r2_per_s"), "sim_r2": blk.get("tile_fit_bias_simulated_r2_per_s"),
           "skipped": blk.get("tile_fit_bias_skipped_fraction"), "cpu_s": time.process_time() - t0}
    print(json.dumps(row), flush=True)
