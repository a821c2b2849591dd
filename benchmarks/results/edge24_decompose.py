"""Decompose the coarse 30 mg/g SNR 20 x8 error (branch edge24): where the automatic ROI's
left-out liver is, and how much of the liver's R2 sits in voxels at the noise floor.

Run from the repository root after ``python -m benchmarks.coarse30 --conditions 20x8
--save-fits /tmp/edge24fits ...``: ``python benchmarks/results/edge24_decompose.py
/tmp/edge24fits [textures] [seeds]``. Prints one line per liver and the totals.
"""
import pickle
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from r2mri import phantom
from r2mri.noise import ncchi_mean
import r2mri.roi as roi_mod

d_fits = Path(sys.argv[1])
textures = [int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "1,2,3,4,5,6,7,8").split(",")]
seeds = [int(v) for v in (sys.argv[3] if len(sys.argv) > 3 else "0,1").split(",")]
S3 = np.ones((3, 3, 1), bool)
tot = {}
for seed in seeds:
    for t in textures:
        d = pickle.load(open(d_fits / f"coarse30_snr20_c8_t{t}_n{seed}.pkl", "rb"))
        img, fit, cal, liver, vessel, r2t = (d[k] for k in ("image", "fit", "calibration", "liver", "vessel", "r2_true"))
        ph = phantom.generate("heterogeneous-coarse-1.5t", seed=seed, texture_seed=t, lic_mg_per_g=30.0, snr=20,
                              coils=8)
        sigma, coils = float(fit.options["noise_sigma"]), int(fit.options["coils"])
        fm = float(ncchi_mean(0.0, sigma, coils))
        fsd = float(np.sqrt(2 * coils * sigma**2 - fm**2))
        first9 = ndimage.uniform_filter(np.asarray(img.data[..., 0], float), size=(3, 3, 1), mode="nearest")
        signal = first9 > fm + 3.0 * fsd / 3.0  # the candidate's tissue test (3 SE of a mean of 9)
        a1 = np.asarray(ph.noise_free[..., 0], float)  # true first-echo amplitude (coil-combined)
        roi = roi_mod.liver_roi(img, fit, calibration=cal)
        nc = roi.not_converged if roi.not_converged is not None else np.zeros_like(roi.mask)
        pool = (roi.mask | nc) & liver
        cand = roi.candidate
        out = liver & ~pool
        nic = out & ~cand
        holes = np.zeros_like(cand)
        for k in range(cand.shape[2]):
            holes[:, :, k] = ndimage.binary_fill_holes(cand[:, :, k]) & ~cand[:, :, k]
        body_edge = ndimage.binary_dilation(~(liver | vessel), structure=S3, iterations=3)
        near_v = ndimage.binary_dilation(vessel, structure=S3, iterations=2)
        parts = {"hole": nic & holes, "edge": nic & ~holes & body_edge,
                 "vessel_nb": nic & ~holes & ~body_edge & near_v, "interior": nic & ~holes & ~body_edge & ~near_v,
                 "in_cand_removed": out & cand}
        rl, rp = r2t[liver].mean(), r2t[pool].mean()
        nl = liver.sum()
        line = f"t{t} n{seed}: pool R2 err {100 * (rp / rl - 1):+.2f} %"
        for k, m in parts.items():
            n = int(m.sum())
            share = 0 if not n else 100 * n / nl * (rp - r2t[m].mean()) / rl
            atf = 0 if not n else float((~signal[m]).mean())
            line += f" | {k} {n} R2 {r2t[m].mean() if n else 0:.0f} share {share:+.2f} atfloor {atf:.2f}"
            a = tot.setdefault(k, [0, 0.0, 0.0, 0])
            a[0] += n; a[1] += share; a[2] += r2t[m].sum() if n else 0; a[3] += int((~signal[m]).sum()) if n else 0
        # candidate-adjacent at-floor voxels: what they are
        ring = ndimage.binary_dilation(cand, structure=S3, iterations=2) & ~cand & ~signal
        line += (f" || ring2 atfloor: liver {int((ring & liver).sum())} vessel {int((ring & vessel).sum())} "
                 f"other {int((ring & ~liver & ~vessel).sum())}")
        # information: liver voxels whose true first echo is below k sigma (k=1,2,3); share of R2 mass
        for kk in (1, 2, 3):
            m = liver & ~vessel & (a1 < kk * sigma)
            line += f" | A1<{kk}s vox {m.sum() / nl:.3f} R2mass {r2t[m].sum() / r2t[liver].sum():.3f}"
        print(line, flush=True)
for k, a in tot.items():
    print(f"TOTAL {k}: voxels {a[0]}, mean true R2 {a[2] / max(a[0], 1):.0f}, summed share {a[1]:+.2f} % "
          f"(mean per liver {a[1] / (len(textures) * len(seeds)):+.3f}), at floor {a[3] / max(a[0], 1):.2f}")
