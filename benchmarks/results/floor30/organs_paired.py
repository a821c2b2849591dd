"""Uniform livers (the roi_organs phantoms: ferriscan-1.5t-lic7 at LIC x SNR x channels, seed 0), paired in one
process: rule 2 dropping the floor fits with S0 = 0 (main) and pooling them (branch floor30).
Run: PYTHONPATH=. python benchmarks/results/floor30/organs_paired.py [LICS] [SNR] [COILS] [SEED]"""
import sys
import numpy as np
import r2mri
import r2mri._roi_rules as rules
from r2mri.phantom import generate
from r2mri.roi import liver_roi
from r2mri.stats import liver_statistics

lics = [float(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "0.5,7,15,30,40").split(",")]
snr = float(sys.argv[2]) if len(sys.argv) > 2 else 50.0
coils = int(sys.argv[3]) if len(sys.argv) > 3 else 4
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
for lic in lics:
    ph = generate("ferriscan-1.5t-lic7", seed=seed, snr=snr, coils=coils, lic_mg_per_g=lic)
    res = r2mri.analyze(ph.image, threads=1)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    out = {}
    for pool in (False, True):
        rules._POOL_FLOOR_FITS = pool
        roi = liver_roi(res.image, res.fit, calibration=res.calibration)
        st = liver_statistics(res.fit, roi, res.calibration, image=res.image)
        lo, hi = st.ci95_lic_mg_per_g
        out[pool] = (st.headline_lic_mg_per_g, lo, hi, int(np.count_nonzero(roi.not_converged)), roi.mask.copy())
    a, b = out[False], out[True]
    print(f"LIC {lic:g} SNR {snr:g} x{coils} seed {seed}: truth {truth:.4f}; main {a[0]:.4f} [{a[1]:.3f}, {a[2]:.3f}] "
          f"({100 * (a[0] / truth - 1):+.2f} %), pooled {b[0]:.4f} [{b[1]:.3f}, {b[2]:.3f}] ({100 * (b[0] / truth - 1):+.2f} %); "
          f"not_converged {a[3]} -> {b[3]}; masks identical {bool(np.array_equal(a[4], b[4]))}; headline identical {a[0] == b[0]}",
          flush=True)
