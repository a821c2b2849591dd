"""The tile-pooled headline's measurement SE against its seed-to-seed SD on a fixed ROI (issue 16, branch uniform8).

Run: ``NUMBA_NUM_THREADS=1 nice -n 5 python -m benchmarks.uniform8_mc --cell LIC:SNR:COILS --reps N
[--first-seed S] [--out FILE]`` from the repository root.

The full-size FerriScan body of ``benchmarks/autogrid.py`` (uniform liver, ``phantom.generate``
defaults) is generated with ``N`` noise seeds (``S .. S + N - 1``; the noise-free image is the same
for every seed). On each, only the headline estimator runs (``r2mri._headline.headline_pooled``,
``estimator="auto"``, adaptive tiles, as ``liver_statistics`` calls it) on the phantom's own liver
mask without vessels, at the phantom's true noise sigma: the ROI, the noise estimate and every
widening are held out, so the SD of the headline over seeds is the estimator's noise alone, and
the ratio ``SD / median(measurement SE)`` says whether the measurement SE is the right size (its
own sampling SE is about ``1 / sqrt(2 (N - 1))``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def _noise_free(lic: float, snr: float, coils: int):
    """The body's noise-free RSS image (unit-RSS coil maps: the noise-free RSS is the signal), its liver
    mask without vessels, true mean liver R2 and the noise sigma per channel at ``snr``."""
    from r2mri import phantom

    ph = phantom.generate(lic=lic, snr=float("inf"), coils=coils, seed=0, texture_seed=0)
    liver = ph.truth.liver_mask
    sigma = float(ph.summary["mean_liver_s0"]) / snr  # as phantom.generate sets it
    return ph, liver, float(ph.truth.r2_per_s[liver].mean()), sigma


def one(ph, liver, r2_true: float, sigma: float, coils: int, seed: int, mixture: bool) -> dict:
    """One noise seed: the headline R2 and its measurement SE on the true liver mask at the true sigma.

    The noisy magnitude is drawn in the liver only, as the non-central chi variable of the RSS of
    ``coils`` channels: ``sqrt((A + sigma z)^2 + sigma^2 chi2(2 coils - 1))`` (the same distribution
    as the phantom's coil-by-coil draw, whose coil maps have unit RSS), stored as float32 as the
    phantom stores it.
    """
    from r2mri import _headline
    from r2mri.image import MultiEchoImage

    rng = np.random.default_rng(seed)
    a = np.asarray(ph.image.data, dtype=np.float64)[liver]
    m = np.sqrt((a + sigma * rng.standard_normal(a.shape)) ** 2
                + sigma**2 * rng.chisquare(2 * coils - 1, size=a.shape))
    data = np.zeros(ph.image.data.shape, dtype=np.float32)
    data[liver] = m.astype(np.float32)
    img = MultiEchoImage(data, ph.image.echo_times_s)
    pooled, mix, name = _headline.headline_pooled(img, liver, noise_sigma=sigma, coils=coils, tile="adaptive",
                                                  seed=0, estimator="auto" if mixture else "tile-ncchi")
    return {"seed": seed, "r2_true": r2_true, "r2": pooled.mean_r2_per_s, "se_meas": pooled.se_r2_per_s,
            "estimator": name, "mixture_se": None if mix is None else float(mix.se_r2_per_s),
            "n_tiles": int(pooled.n_tiles),
            "tile_sizes": {str(s): int(np.sum(pooled.tile_size == s)) for s in np.unique(pooled.tile_size)}}


def summary(rows: list) -> dict:
    e = np.array([100 * (r["r2"] / r["r2_true"] - 1) for r in rows])
    se = np.array([100 * r["se_meas"] / r["r2_true"] for r in rows])
    n = e.size
    sd = float(e.std(ddof=1))
    return {"n": n, "r2_error_mean_pct": float(e.mean()), "r2_error_se_pct": sd / np.sqrt(n), "r2_error_sd_pct": sd,
            "median_se_meas_pct": float(np.median(se)), "sd_over_se": sd / float(np.median(se)),
            "sd_over_se_sampling_se": 1 / np.sqrt(2 * (n - 1)),
            "covered_meas_only": int(np.sum(np.abs(e) <= 1.959963984540054 * se))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", default="1:20:8", help="LIC:SNR:COILS")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=9000)
    ap.add_argument("--mixture", action="store_true", help="estimator 'auto' (tile-mixture; slow) instead of tile-ncchi")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    lic, snr, coils = (float(v) for v in a.cell.split(":"))
    tag = f"lic{lic:g}_snr{snr:g}_c{int(coils)}" + ("_mixture" if a.mixture else "")
    out = Path(a.out or RESULTS / f"uniform8_mc-{tag}.json")
    ph, liver, r2_true, sigma = _noise_free(lic, snr, int(coils))
    doc = {"cell": a.cell, "first_seed": a.first_seed, "sigma": sigma, "liver_voxels": int(liver.sum()),
           "estimator": "auto" if a.mixture else "tile-ncchi", "rows": []}
    for s in range(a.first_seed, a.first_seed + a.reps):
        t0 = time.time()
        r = one(ph, liver, r2_true, sigma, int(coils), s, a.mixture)
        doc["rows"].append(r)
        print(f"seed {s}: R2 {100 * (r['r2'] / r['r2_true'] - 1):+.4f} % SE {100 * r['se_meas'] / r['r2_true']:.4f} % "
              f"tiles {r['n_tiles']} {r['tile_sizes']} mix {r['mixture_se']} {time.time() - t0:.1f} s", flush=True)
        if len(doc["rows"]) > 2:
            doc["summary"] = summary(doc["rows"])
        out.write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc.get("summary"), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
