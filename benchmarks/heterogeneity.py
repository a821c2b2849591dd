"""Accuracy of the liver heterogeneity measures (r2mri._heterogeneity) against phantom truth.

Run: ``python -m benchmarks.heterogeneity [--quick]``. Prints the tables of
docs/statistics.md section 4: for uniform livers, log-normal LIC textures (CV 0.3) and the
shipped heterogeneous phantom, at SNR 20/50/100 (64 x 64 x 11, 6 mm pixels, one channel;
4 for the heterogeneous phantom; reader's outline): the ROI truth R2 CV against the
noise-corrected estimate and its interval, whether the report warns, and the largest
error of any category fraction (percentage points), deconvolved and by counting the
noisy voxels. Accuracy, not speed; not part of ``python -m benchmarks``.
"""

from __future__ import annotations

import sys

import numpy as np

from r2mri import calibration as cal
from r2mri._heterogeneity import category_fractions, liver_heterogeneity, tile_candidates
from r2mri.fitting import fit
from r2mri.phantom import LABELS, generate
from r2mri.roi import liver_roi
from r2mri.stats import pooled_mean_r2


def one(spec, seed: int, **kw) -> str:
    coils = 4 if spec else 1
    ph = generate(spec, matrix=(64, 64), pixel_mm=6.0, seed=seed, coils=coils, **kw)
    res = fit(ph.image, model="ncchi", noise_sigma=ph.summary["noise_sigma"], coils=coils)
    outline = np.isin(ph.truth.labels, [LABELS["liver"], LABELS["vessel"]])
    m = liver_roi(ph.image, res, mask=outline).mask
    t = ph.truth.r2_per_s[m]
    sigma = ph.summary["noise_sigma"]
    p = pooled_mean_r2(ph.image, m, noise_sigma=sigma, coils=coils)
    h = liver_heterogeneity(res.r2_per_s[m], res.r2_std_per_s[m], res.status[m],
                            headline_lic_mg_per_g=float(cal.lic_from_r2(t.mean())),
                            tiles=tile_candidates(ph.image, m, sigma, coils, p))
    truth = category_fractions(ph.truth.lic_mg_per_g[m])
    noisy = category_fractions(cal.lic_from_r2(res.r2_per_s[m].astype(float)))
    cv_t = t.std() / t.mean()
    if not h.measurable:
        lb = h.details.get("r2_cv_lower_bound_tiles")
        bound = "not measurable" if lb is None else (
            "tiles {} >= {:.3f} [{:.3f}-{:.3f}]".format(h.details["tiles_used"], lb,
                                                        *h.details["r2_cv_lower_bound_tiles_ci95"]))
        return (f"{cv_t:.3f} | {bound} | {'yes' if h.warning else 'no'} | - | "
                f"{100 * max(abs(noisy[k] - truth[k]) for k in truth):.1f}")
    err = max(abs(h.category_fractions[k] - truth[k]) for k in truth)
    lo, hi = h.r2_cv_ci95
    return (f"{cv_t:.3f} | {h.r2_cv_noise_corrected:.3f} [{lo:.3f}-{hi:.3f}] | {'yes' if h.warning else 'no'} | "
            f"{100 * err:.1f} | {100 * max(abs(noisy[k] - truth[k]) for k in truth):.1f}")


def main(argv=None) -> None:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    snrs = (20, 50) if quick else (20, 50, 100)
    seeds = (4,) if quick else (4, 5)
    cases = [(None, dict(lic_mg_per_g=v)) for v in ((1.0, 5.0) if quick else (1.0, 5.0, 10.0, 15.0, 30.0, 40.0))]
    textures = (3.0,) if quick else (2.0, 3.0, 5.0, 10.0, 15.0, 30.0)
    cases += [(None, dict(lic_mg_per_g=v, lic_cv=0.3)) for v in textures]
    cases += [("heterogeneous-1.5t", dict(lic_mg_per_g=v)) for v in ((5.0,) if quick else (5.0, 15.0, 25.0))]
    if not quick:  # texture scale: correlation 0.5-8 voxels of 6 mm
        cases += [(None, dict(lic_mg_per_g=v, lic_cv=0.3, lic_correlation_mm=c))
                  for c in (3.0, 6.0, 12.0, 48.0) for v in (3.0, 15.0)]
    print("| phantom | SNR | seed | truth CV | CV [95 %] | warns | fractions: max error deconvolved | counting |")
    print("|---|---|---|---|---|---|---|---|")
    for spec, kw in cases:
        name = ", ".join(([spec] if spec else []) + [f"{k}={v:g}" for k, v in kw.items()])
        for snr in snrs:
            for seed in seeds:
                print(f"| {name} | {snr} | {seed} | {one(spec, seed, snr=snr, **kw)} |", flush=True)


if __name__ == "__main__":
    main()
