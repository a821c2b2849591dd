"""Headline LIC of the R2* path on synthetic GRE livers: tile-pooled fat-water fit vs voxel mean.

Run: ``python -m benchmarks.gre_headline [--quick]``. Prints the table quoted in
docs/fatwater.md ("In analyze") and benchmarks/README.md: for each field (1.5 T, 6
echoes TE 1.2 + 1.0 k ms; 3 T, 12 echoes TE 1.15 + 1.15 k ms), PDFF 0-45 % and R2*
30-500 s^-1, a 24 x 24 x 2 block of voxels with W + F = 100 and complex Gaussian noise
sigma 2 (SNR 50, one coil), fitted with ``model="fatwater"``; the headline R2* of
:func:`r2mri._gre.pooled_mean_r2star` (default 4 x 4 tiles) and the plain mean of the
voxel R2* are turned into LIC with the field's curve (Hernando 2022 1.5 T; its 3 T
bridge) and compared with the LIC of the true R2*. Also the CPU time of the pooled fit.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import r2mri
from r2mri import _gre
from r2mri.calibration import lic_from_r2
from r2mri.fatwater import load_fat_spectrum, magnitude_signal

SIGMA = 2.0
CASES = {1.5: (0.0012 + 0.001 * np.arange(6), "hernando-2022-r2star-1.5t"),
         3.0: (0.00115 + 0.00115 * np.arange(12), "hernando-2022-r2star-3t-scaled")}


def run(quick: bool = False) -> None:
    pdffs = (0, 15, 45) if quick else (0, 5, 15, 30, 45)
    rates = (30, 200, 500) if quick else (30, 100, 200, 350, 500)
    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
    print("| field | PDFF % | R2* true | pooled R2* (SE) | pooled LIC err % | voxel-mean R2* | voxel-mean LIC err % | "
          "ROI PDFF mean (tile-pooled) / voxel mean |")
    print("|---|---|---|---|---|---|---|---|")
    worst = {}
    cpu = 0.0
    for b0, (te, cal) in CASES.items():
        basis = load_fat_spectrum().basis(te, b0)
        for i, pdff in enumerate(pdffs):
            for j, r2 in enumerate(rates):
                rng = np.random.default_rng(1000 * i + j)
                m = np.broadcast_to(magnitude_signal(basis, te, 100 - pdff, pdff, r2), (24, 24, 2, te.size))
                data = np.hypot(m + SIGMA * rng.standard_normal(m.shape), SIGMA * rng.standard_normal(m.shape))
                img = r2mri.MultiEchoImage(data, te, field_strength_t=b0, sequence="GRE")
                fit = r2mri.fit(img, model="fatwater", threads=1)
                t0 = time.process_time()
                p = _gre.pooled_mean_r2star(img, fit, np.ones(img.shape, bool), noise_sigma=SIGMA, coils=1)
                cpu += time.process_time() - t0
                truth = lic_from_r2(r2, cal)
                e_pool = 100 * (lic_from_r2(p.mean_r2_per_s, cal) / truth - 1)
                vm = float(np.nanmean(fit.r2_per_s))
                e_vox = 100 * (lic_from_r2(vm, cal) / truth - 1)
                pd = _gre.pdff_block(fit, np.ones(img.shape, bool), p)
                worst[b0] = max(worst.get(b0, 0.0), abs(e_pool))
                print(f"| {b0:g} T | {pdff} | {r2} | {p.mean_r2_per_s:.1f} ({p.se_r2_per_s:.2f}) | {e_pool:+.2f} | "
                      f"{vm:.1f} | {e_vox:+.2f} | {pd['mean']:.2f} / {pd['voxel_mean']:.2f} |")
    print()
    print("worst |pooled LIC error| %: " + ", ".join(f"{b:g} T {w:.2f}" for b, w in worst.items()))
    print(f"pooled fit CPU: {cpu:.2f} s for {len(CASES) * len(pdffs) * len(rates)} ROIs of 1152 voxels")


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
