"""The other coarse30 conditions (SNR x channels), paired in one process on one fit each: rule 2 dropping the
floor fits with S0 = 0 (main) and pooling them (branch floor30), automatic ROI and true outline.
Run: PYTHONPATH=. python benchmarks/results/floor30/coarse_other_paired.py 20x1,50x8,50x1 1,2 [NOISE_SEED]"""
import sys
import numpy as np
import r2mri._roi_rules as rules
from benchmarks.coarse30 import _fit, _row

conds = [(float(c.split("x")[0]), int(c.split("x")[1])) for c in sys.argv[1].split(",")]
textures = [int(v) for v in sys.argv[2].split(",")]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
for snr, coils in conds:
    for t in textures:
        d = _fit(snr, coils, t, seed, None, False)
        floor = (np.asarray(d["fit"].s0) <= 0) & (np.asarray(d["fit"].status) == 3) & d["liver"]
        out = {}
        for pool in (False, True):
            rules._POOL_FLOOR_FITS = pool
            out[pool] = {k: _row(d, m) for k, m in (("automatic", None), ("outline", d["liver"] | d["vessel"]))}
        msg = "; ".join(f"{k} {out[False][k]['headline_error_pct']:+.2f} -> {out[True][k]['headline_error_pct']:+.2f} % "
                        f"(cover {out[False][k]['covers']:d} -> {out[True][k]['covers']:d})" for k in ("automatic", "outline"))
        print(f"SNR {snr:g} x{coils} tex {t} noise {seed}: liver floor fits (S0 = 0) {int(floor.sum())}; {msg}", flush=True)
