"""Spleen / viscera voxels in the automatic ROI of tests/test_roi_evidence.py's 0.5 mg/g SNR 20
8-channel liver, main's per-bay floor test (k None) against the pooled one (branch bayfloor).

``python benchmarks/results/bayfloor_spleen.py SEEDS`` (default 1,2)."""
import sys

import numpy as np

import r2mri
import r2mri._roi_edge_bays as bays
from r2mri.phantom import LABELS, generate

seeds = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "1,2").split(",")]
for seed in seeds:
    ph = generate("ferriscan-1.5t-lic7", seed=seed, snr=20, coils=8, lic_mg_per_g=0.5, matrix=(96, 96), pixel_mm=4.0, n_slices=3)
    for k in (None, 2.0):
        bays.BAY_FLOOR_K = k
        res = r2mri.analyze(ph.image, threads=1)
        roi = res.roi.mask
        other = np.count_nonzero(roi & np.isin(ph.truth.labels, [LABELS["spleen"], LABELS["soft_tissue"]]))
        print(f"seed {seed} k {k}: spleen/viscera {other} of {np.count_nonzero(roi)} ROI voxels, "
              f"edge_bays {res.roi.options.get('edge_bays')}, "
              f"headline {res.statistics.headline_lic_mg_per_g:.4f} {res.statistics.ci95_lic_mg_per_g}", flush=True)
