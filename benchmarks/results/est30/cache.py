"""Cache cell 13 livers (coarse 30 mg/g SNR 20 8 ch) of benchmarks.autogrid: the analyze result's image, fit,
calibration, ROI masks and truth, so that the statistics stage can be re-run per variant (branch est30)."""
import os, pickle, sys, time

from benchmarks.autogrid import CELLS, analyzed_liver, _automatic
from r2mri import phantom

CELL = os.environ.get("CELL", "13")
cell = CELLS[int(CELL)] if "," not in CELL else tuple(float(v) if i < 4 else int(v) for i, v in enumerate(CELL.split(",")))
for k in map(int, sys.argv[1].split(",")):
    fn = f"/tmp/est30/{os.environ.get('TAG', '')}c{CELL.replace(',', '_')}_k{k}.pkl"
    if os.path.exists(fn):
        continue
    t0 = time.time()
    ph, res = analyzed_liver(cell, k)
    liver, r2t = ph.truth.liver_mask, ph.truth.r2_per_s
    vessel = ph.truth.labels == phantom.LABELS["vessel"]
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    auto = _automatic(res, liver, r2t, truth)
    d = {"image": res.image, "fit": res.fit, "calibration": res.calibration, "liver": liver, "vessel": vessel,
         "r2_true": r2t, "truth": truth, "auto_mask": res.roi.mask, "auto_nc": res.roi.not_converged,
         "auto": auto, "k": k, "cell": cell}
    pickle.dump(d, open(fn + ".tmp", "wb")); os.replace(fn + ".tmp", fn)
    print(k, f"auto err {auto['headline_error_pct']:+.2f} est {auto['pool_estimator_error_pct']:+.2f}",
          f"{time.time() - t0:.0f} s", flush=True)
