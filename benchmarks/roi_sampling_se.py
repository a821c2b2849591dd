"""The ROI sampling SE (r2mri/_roi_sampling.py) against the exact variance of Gaussian textures.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.roi_sampling_se [--draws N] [--full-draws M]``
from the repository root (~1-2 min at idle). Writes
``benchmarks/results/roi_sampling_se.json`` and prints one line per condition.

A stationary texture of SD 10 s^-1 is white noise smoothed by a Gaussian filter ``G``
(widths in voxels, in-plane and across slices) on a torus larger than the liver (so
nothing wraps), plus white fit noise of 5 s^-1 (given to the estimator as the voxel SE).
For ``w = 1_L / n_L - 1_S / n_S`` the exact ``Var(mean_L - mean_S) = w^T C w =
scale^2 |G w|^2``. Reported per condition: the mean over draws of the estimated
variance over the exact one (+- its SE), the same for the SE, and the fraction of draws
whose true ``mean_L - mean_S`` lies within +-1.96 estimated SE. Geometries: a disc ROI
(radius 22) in a disc liver (radius 26), 64 x 64 x 4; and the automatic ROI and liver
(candidate without vessels) of the full-size ``heterogeneous-focal-1.5t`` (noise seed 0).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

RESULTS = Path(__file__).resolve().parent / "results"


def _condition(roi, liver, sigmas, draws, seed, noise=5.0):
    from r2mri._roi_sampling import roi_sampling_se_r2

    L = liver | roi
    pad = [int(4 * s) + 4 for s in sigmas]
    big = tuple(n + p for n, p in zip(roi.shape, pad))
    sl = tuple(slice(0, n) for n in roi.shape)

    def smooth(a):
        return ndimage.gaussian_filter(a, sigmas, mode="wrap")

    delta = np.zeros(big)
    delta[0, 0, 0] = 1.0
    scale = 10.0 / np.sqrt(np.sum(smooth(delta) ** 2))
    w = np.zeros(big)
    w[sl] = L / L.sum() - roi / roi.sum()
    exact = scale**2 * np.sum(smooth(w) ** 2)
    rng = np.random.default_rng(seed)
    var, diff = [], []
    t0 = time.process_time()
    for _ in range(draws):
        r2 = 100 + scale * smooth(rng.standard_normal(big))[sl]
        diff.append(r2[L].mean() - r2[roi].mean())
        r2 = r2 + noise * rng.standard_normal(roi.shape)
        var.append(roi_sampling_se_r2(r2, np.full(roi.shape, noise), roi, liver)["se_r2_per_s"] ** 2)
    v, d = np.array(var) / exact, np.array(diff)
    s = np.sqrt(v)
    return {"widths_voxels": [float(x) for x in sigmas], "draws": draws, "exact_se_r2_per_s": float(np.sqrt(exact)),
            "var_ratio": float(v.mean()), "var_ratio_se": float(v.std() / np.sqrt(draws)),
            "se_ratio": float(s.mean()), "se_ratio_se": float(s.std() / np.sqrt(draws)),
            "se_ratio_median": float(np.median(s)),
            "coverage_1p96": float(np.mean(np.abs(d) <= 1.96 * s * np.sqrt(exact))),
            "cpu_s_per_draw": (time.process_time() - t0) / draws, "load_1min": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--full-draws", type=int, default=40)
    ap.add_argument("--out", default=str(RESULTS / "roi_sampling_se.json"))
    a = ap.parse_args()
    rows = []
    ii, jj = np.mgrid[:64, :64]
    liver = np.repeat((((ii - 32) ** 2 + (jj - 30) ** 2) <= 26**2)[:, :, None], 4, axis=2)
    roi = np.repeat((((ii - 32) ** 2 + (jj - 30) ** 2) <= 22**2)[:, :, None], 4, axis=2)
    for width in (1.0, 3.0, 5.0, 8.0):
        r = {"geometry": "disc r22 in r26, 64x64x4", **_condition(roi, liver, (width, width, 0.0), a.draws, 5)}
        rows.append(r)
        print(json.dumps(r), flush=True)
    if a.full_draws:
        import r2mri
        from r2mri import phantom

        ph = phantom.generate("heterogeneous-focal-1.5t", seed=0)
        res = r2mri.analyze(ph.image)
        vox = np.sqrt((ph.image.affine[:3, :3] ** 2).sum(0))
        roi_f = res.roi.mask
        liver_f = res.roi.candidate & ~res.roi.non_parenchyma
        for width in (1.0, 4.0, 8.0):  # isotropic in mm, as the phantoms' texture
            r = {"geometry": "heterogeneous-focal-1.5t automatic ROI, full size",
                 **_condition(roi_f, liver_f, (width, width, width * vox[0] / vox[2]), a.full_draws, 1)}
            rows.append(r)
            print(json.dumps(r), flush=True)
    Path(a.out).write_text(json.dumps({"nproc": os.cpu_count(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
