"""Fine S0 texture of real livers: how much within-tile S0 spread the smooth surface misses.

Why (issue 16): the spread estimate takes kappa, the within-tile relative variance of S0,
from a smooth S0 surface over the tiles (r2mri/_s0_shading.py). S0 texture at or below the
tile scale is not in that surface; on phantoms the headline over-reads by +0.3-0.7 % at
log-SD 0.05 over 1 voxel and by +2-2.6 % at 0.1 over 1 voxel (docs/statistics.md,
"*Measured with fine S0 texture*"). This measures the texture in the two real livers of
benchmarks/real_liver.py (same loaders, same ``analyze`` run, same automatic ROI).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.s0_texture_real [--data DIR] [--phantom]``
(~20 s, ~40 s with ``--phantom``; skips with one line per missing file, exits 0 when none is
there). Writes ``benchmarks/results/s0_texture_real.json``. Results and their reading:
docs/statistics.md, "*Fine S0 texture of real livers*".

Method, per dataset (``r2mri.analyze`` as in real_liver.py: magnitude fat-water fit,
automatic ROI; voxels of the ROI with fit status OK and every echo > 0):

1. Per echo, log magnitude minus a least-squares quadratic surface in the in-plane indices,
   per slice (coil shading, smooth proton density; variants: degree 1 and 3).
2. Tiles as ``r2mri.stats.pooled_mean_r2`` forms them (T x T in-plane on the image grid,
   T = 2, 4, 8; kept when at least half their voxels are in the ROI); per tile the sums of
   products of the deviations from the tile mean, echo by echo, pooled over tiles.
3. The within-tile covariance of two *different* echoes is, for log M_e = log S0 - R2* t_e
   + noise_e, var(log S0) - (t_e + t_e') cov(log S0, R2*) + t_e t_e' var(R2*): fitted by
   least squares over the echo pairs (``r2mri._s0_texture.decompose``, shared with the
   per-exam check of the report). Noise independent between echoes
   drops out whatever its spatial correlation (the 1.5 T noise, in air, correlates ~0.8 at
   lag 1: an interpolated reconstruction; a white-noise model would overstate its share).
   Variants add the fat basis's term (Re c(t) - 1) or, for the bipolar 3 T series, an
   odd/even term. SE: bootstrap over tiles.
4. Spatial scale: the same decomposition of the covariance at in-plane lags 1-4 over its
   slice-wide value; for a Gaussian-smoothed white field of kernel SD c voxels (the
   phantom's ``s0_correlation_voxels``) rho(L) = exp(-L^2 / (4 c^2)).
5. Phantom equivalent: the phantom's texture (r2mri/phantom/_s0_texture.py) of log-SD s and
   scale c has within-tile variance s^2 u(T, c) (u computed on a 256 x 256 field): the
   measured variance over u gives the phantom log-SD of the same within-tile variance.
6. Model-free upper bound: the within-tile variance of the fitted log S0 (W + F), noise
   included; for comparison the white-noise share (refits of the fitted model plus white
   complex noise of the analysis's sigma, rounded to integers for the 3 T file).

Which way the assumptions push: partial volume (vessels, liver edge), motion and a
non-exponential decay leak into log S0 (mostly upwards); the estimator sees them in the
same ROI, so for kappa they count (a variant removes the ROI's in-plane edge voxels to show
the edge's share). Interpolation spreads texture over ~2 voxels and lowers the 2 x 2 figure.
``--phantom`` checks the estimator against the phantom's own texture.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from r2mri._s0_texture import TILES, cross_echo_texture, surface_residual, within_tile_variance

from ._common import machine_info, write_json

RESULTS = Path(__file__).resolve().parent / "results"
PHANTOM_SCALES = (1.0, 4.0)  # s0_correlation_voxels of the phantom cells in docs/statistics.md


# ------------------------------------------------------------------ estimator: r2mri/_s0_texture.py
def fit_texture_upper(resid: np.ndarray, mask: np.ndarray, tiles=TILES) -> dict[str, Any]:
    """Within-tile variance of the fitted log S0's residual, noise included: an upper bound."""
    out = {int(t): within_tile_variance(resid, mask, int(t))[0] for t in tiles}
    out["voxel"] = float(np.nanvar(resid[mask]))
    return out


def phantom_unit_within(tile: int, scale_voxels: float, n: int = 256, seed: int = 0) -> float:
    """Within-tile variance of the phantom's S0 texture at log-SD 1 and kernel SD ``scale_voxels``
    (r2mri/phantom/_s0_texture.py: white noise, Gaussian-smoothed, standardised), in-plane."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(np.random.default_rng(seed).standard_normal((n, n, 1)), (scale_voxels, scale_voxels, 0),
                        mode="reflect")
    f = (f - f.mean()) / f.std()
    return within_tile_variance(f, np.ones(f.shape, bool), tile)[0]


# ------------------------------------------------------------------------ the real data
def background_noise_correlation(data: np.ndarray, sigma: float, lags=(1, 2, 3)) -> "dict[str, Any] | None":
    """Correlation of the real part of the complex noise at in-plane lags, and between echoes,
    in the air (local mean magnitude < ``4 sigma``, eroded by 4 voxels); None without air."""
    from scipy import ndimage as ndi

    mag = np.abs(data)
    spatial, between = [], []
    for z in range(data.shape[2]):
        air = ndi.binary_erosion(ndi.uniform_filter(mag[:, :, z, -1].astype(float), 7) < 4 * sigma, iterations=4)
        if air.sum() < 500 or np.mean(mag[:, :, z, 0][air] == 0) > 0.1:  # no air, or zeroed background
            continue
        parts = []
        for e in range(data.shape[3]):
            r = data[:, :, z, e].real.astype(float)
            r = np.where(air, r - r[air].mean(), 0.0)
            parts.append(r[air])
            row = []
            for lag in lags:
                num = np.sum(r[lag:] * r[:-lag]) + np.sum(r[:, lag:] * r[:, :-lag])
                cnt = np.sum(air[lag:] & air[:-lag]) + np.sum(air[:, lag:] & air[:, :-lag])
                row.append(float(num / cnt / np.mean(r[air] ** 2)))
            spatial.append(row)
        c = np.corrcoef(np.stack(parts))
        between.append(c[np.triu_indices(len(parts), 1)])
    if not spatial:
        return None
    return {"lag_correlation": dict(zip(map(int, lags), np.mean(spatial, axis=0).round(3).tolist())),
            "between_echo_correlation_mean_abs": float(np.mean(np.abs(np.concatenate(between)))),
            "between_echo_correlation_max_abs": float(np.max(np.abs(np.concatenate(between))))}


def noise_replica_logs0(fit, img, roi: np.ndarray, sigma: float, n: int, seed: int, integer: bool) -> list:
    """log S0 of refits of the fitted model plus spatially white complex noise, minus log S0 of
    the fit, on ``roi`` (the white-noise share a voxel-independent noise model predicts)."""
    import r2mri
    from r2mri.fatwater import load_fat_spectrum, magnitude_signal

    basis = load_fat_spectrum(fit.options.get("fat_spectrum", "liver-fat-6peak")).basis(
        img.echo_times_s, img.field_strength_t)
    w, f, r2 = (np.asarray(a, np.float64)[roi] for a in (fit.extra["water"], fit.extra["fat"], fit.r2_per_s))
    pred = magnitude_signal(basis, img.echo_times_s, w, f, r2)
    base = np.log(np.asarray(fit.s0, np.float64)[roi])
    rng = np.random.default_rng(seed)
    outs = []
    for _ in range(n):
        y = np.abs(pred + sigma * (rng.standard_normal(pred.shape) + 1j * rng.standard_normal(pred.shape)))
        if integer:
            y = np.round(y)
        rep = r2mri.MultiEchoImage(y[:, None, None, :].astype(np.float32), img.echo_times_s,
                                   field_strength_t=img.field_strength_t, sequence="GRE")
        rf = r2mri.fit(rep, model="fatwater", noise_sigma=sigma, coils=1, threads=1)
        s0 = np.asarray(rf.s0, np.float64)[:, 0, 0]
        d = np.full(roi.shape, np.nan)
        d[roi] = np.log(np.where(s0 > 0, s0, np.nan)) - base
        outs.append(d)
    return outs


def _regress_out(resid, mask, covariates):
    """Residual of ``resid`` on the given maps' own surface residuals (least squares over mask)."""
    a = np.stack([np.ones(int(mask.sum()))] + [c[mask] for c in covariates], axis=1)
    coef, *_ = np.linalg.lstsq(a, resid[mask], rcond=None)
    out = np.full(resid.shape, np.nan)
    out[mask] = resid[mask] - a @ coef
    return out, coef[1:].tolist()


def _log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.where(x > 0, x, np.nan))


def measure(data, te, b0, *, calibration, sigma, pixel_mm, replicas, integer, bipolar=False) -> dict[str, Any]:
    """Analyze one real series and measure its liver's S0 texture (module docstring)."""
    from scipy import ndimage as ndi

    import r2mri
    from r2mri import FitStatus
    from r2mri.fatwater import load_fat_spectrum

    from .real_liver import image

    img = image(data, te, b0, pixel_mm)
    kw: dict[str, Any] = {"threads": 1}
    if calibration:
        kw["calibration"] = calibration
    if sigma is not None:
        kw.update(noise_sigma=sigma, coils=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = r2mri.analyze(img, **kw)
    fit, mag = res.fit, np.asarray(img.data, np.float64)
    s0, water = np.asarray(fit.s0, np.float64), np.asarray(fit.extra["water"], np.float64)
    roi = (res.roi.mask & (np.asarray(fit.status) == int(FitStatus.OK)) & (s0 > 0) & (water > 0)
           & np.all(mag > 0, axis=3))
    sigma_used = float(res.statistics.to_dict()["qc"]["noise_sigma"])
    r2 = np.asarray(fit.r2_per_s, np.float64)
    pdff = np.asarray(fit.extra["pdff_percent"], np.float64)
    row: dict[str, Any] = {"roi_voxels": int(roi.sum()), "roi_voxels_analyze": int(res.roi.mask.sum()),
                           "roi_method": res.roi.method, "sigma_analysis": sigma_used,
                           "median_s0": float(np.median(s0[roi])),
                           "snr_s0_median": float(np.median(s0[roi]) / sigma_used),
                           "median_r2star_per_s": float(np.median(r2[roi])),
                           "median_pdff_percent": float(np.median(pdff[roi])),
                           "background_noise": background_noise_correlation(data, sigma_used)}
    # (a) noise-free: covariances between echoes of log magnitude, surface removed per echo
    resid_e = np.stack([surface_residual(_log(mag[..., e]), roi) for e in range(mag.shape[3])], axis=3)
    c = load_fat_spectrum(fit.options.get("fat_spectrum", "liver-fat-6peak")).basis(img.echo_times_s, b0)
    row["cross_echo"] = cross_echo_texture(resid_e, roi, img.echo_times_s)
    row["cross_echo_with_fat_terms"] = cross_echo_texture(resid_e, roi, img.echo_times_s, extra=[np.real(c) - 1.0])
    if bipolar:
        parity = np.where(np.arange(mag.shape[3]) % 2 == 0, 1.0, -1.0)
        row["cross_echo_with_bipolar_term"] = cross_echo_texture(resid_e, roi, img.echo_times_s, extra=[parity])
    for deg in (1, 3):  # the surface's degree
        r_d = np.stack([surface_residual(_log(mag[..., e]), roi, deg) for e in range(mag.shape[3])], axis=3)
        row[f"cross_echo_surface_degree_{deg}"] = cross_echo_texture(r_d, roi, img.echo_times_s, lags=(1,))
    inner = roi & ndi.binary_erosion(roi, structure=np.ones((3, 3, 1), bool))  # the ROI's edge voxels removed
    r_i = np.stack([surface_residual(_log(mag[..., e]), inner) for e in range(mag.shape[3])], axis=3)
    row["cross_echo_roi_edge_removed"] = cross_echo_texture(r_i, inner, img.echo_times_s, lags=(1,))
    row["roi_edge_removed_voxels"] = int(inner.sum())
    # (b) the fit's log S0, noise included (upper bound); white-noise replicas for comparison
    resid = surface_residual(_log(s0), roi)
    resid_reg, coef = _regress_out(resid, roi, [surface_residual(r2, roi), surface_residual(pdff, roi)])
    reps = [surface_residual(d, roi) for d in noise_replica_logs0(fit, img, roi, sigma_used, replicas, 1, integer)]
    row["fit_s0_upper_bound"] = fit_texture_upper(resid, roi)
    row["fit_water_upper_bound"] = fit_texture_upper(surface_residual(_log(water), roi), roi)
    row["fit_s0_regressed_on_r2star_pdff"] = fit_texture_upper(resid_reg, roi)
    row["regression_coef_per_s_and_per_percent"] = coef
    row["white_noise_replicas_within_var"] = {int(t): float(np.mean([within_tile_variance(d, roi, t)[0] for d in reps]))
                                              for t in TILES}
    return row


def _print(name: str, row: dict, unit: dict) -> None:
    bg = row["background_noise"]
    print(f"{name}: ROI {row['roi_voxels']} voxels (of {row['roi_voxels_analyze']}), S0 {row['median_s0']:.1f}, "
          f"sigma {row['sigma_analysis']:.2f}, SNR {row['snr_s0_median']:.0f}, R2* {row['median_r2star_per_s']:.1f}, "
          f"PDFF {row['median_pdff_percent']:.1f} %; background noise "
          + (f"lag corr {bg['lag_correlation']}, between echoes |r| {bg['between_echo_correlation_mean_abs']:.3f}"
             if bg else "none (no air)"))
    for key in [k for k in row if k.startswith("cross_echo")]:
        e = row[key]
        print(f"  {key}:")
        for t, v in list(e["tiles"].items()) + [("slice", e["voxel"])]:
            eq = " / ".join(f"{np.sqrt(max(v['s0_var'], 0) / unit[(t, cc)]):.3f}@{cc:g}" for cc in PHANTOM_SCALES) \
                if t != "slice" else "-"
            print(f"    T{t}: var log S0 {v['s0_var']:+.2e} +- {v['s0_var_se']:.1e} (log-SD {v['s0_log_sd']:.3f}; "
                  f"phantom-equivalent log-SD {eq}), R2* SD {np.sqrt(max(v['r2_var'], 0)):.1f} s^-1, "
                  f"echo-1 noise var {v['noise_var_echo1']:.5f} of {v['raw_var_echo1']:.5f}")
        print("    rho(lag) " + " ".join(f"{lag}: {r:.2f} (c {e['scale_c'][lag]:.1f})" for lag, r in e["rho"].items()))
    for key in ("fit_s0_upper_bound", "fit_water_upper_bound", "fit_s0_regressed_on_r2star_pdff",
                "white_noise_replicas_within_var"):
        print(f"  {key}: " + ", ".join(f"T{t} {v:.5f}" for t, v in row[key].items()))


def phantom_check(s0_log_sds=(0.0, 0.02, 0.05, 0.1), scale_voxels=1.0, lic=1.0, snr=20.0, coils=8, seed=1,
                  matrix=(128, 128), pixel_mm=3.0, n_slices=3) -> list:
    """The estimator on r2mri's own phantom with its fine S0 texture (r2mri/phantom/_s0_texture.py):
    cross-echo within-tile variance of log S0 against the truth's (``truth.s0`` over the liver,
    the same surface removed). Default spec (spin echo, 5 echoes 6-18 ms), low iron so that
    the phantom's R2 texture is small, white noise, RSS of ``coils`` channels."""
    from r2mri.phantom import generate

    rows = []
    for sd in s0_log_sds:
        extra = dict(s0_log_sd=sd, s0_correlation_voxels=scale_voxels) if sd > 0 else {}
        ph = generate(lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=seed, matrix=matrix, pixel_mm=pixel_mm,
                      n_slices=n_slices, **extra)
        mask = ph.truth.liver_mask & np.all(np.asarray(ph.image.data) > 0, axis=3)
        mag = np.asarray(ph.image.data, np.float64)
        resid_e = np.stack([surface_residual(_log(mag[..., e]), mask) for e in range(mag.shape[3])], axis=3)
        truth = surface_residual(_log(ph.truth.s0), mask)
        est = cross_echo_texture(resid_e, mask, ph.image.echo_times_s, lags=(1,), n_boot=50)
        row = {"s0_log_sd": sd, "scale_voxels": scale_voxels, "lic": lic, "snr": snr, "coils": coils, "seed": seed,
               "voxels": int(mask.sum()), "tiles": {}}
        for t in TILES:
            row["tiles"][t] = {"truth": within_tile_variance(truth, mask, t)[0], "estimate": est["tiles"][t]["s0_var"],
                               "se": est["tiles"][t]["s0_var_se"],
                               "echo1_raw": est["tiles"][t]["raw_var_echo1"]}
        rows.append(row)
        print(f"phantom S0 log-SD {sd:g} over {scale_voxels:g} voxel(s), LIC {lic:g}, SNR {snr:g}, {coils} ch: "
              + "; ".join(
            f"T{t} truth {v['truth']:.5f} est {v['estimate']:+.5f} +- {v['se']:.5f} (echo 1 alone {v['echo1_raw']:.5f})"
            for t, v in row["tiles"].items()))
    return rows


def main(argv=None) -> int:
    from .real_liver import BYDDER, CAL_3T, ISMRM12, load_bydder, load_ismrm

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("R2MRI_REALDATA", "/work/realdata"))
    ap.add_argument("--pixel-mm", type=float, default=1.5)
    ap.add_argument("--bydder-sigma", type=float, default=0.5)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--results", default=str(RESULTS / "s0_texture_real.json"))
    ap.add_argument("--phantom", action="store_true", help="also check the estimator on r2mri's phantom with "
                    "its S0 texture (log-SD 0-0.1 over 1 voxel, 0.05 over 4; LIC 1 and 7 mg/g); ~20 s")
    a = ap.parse_args(argv)
    root = Path(a.data)
    # name, loader, file, calibration, sigma, integer magnitudes and bipolar readouts (the 3 T file)
    todo = [("ismrm2012-case12-1.5t", load_ismrm, root / ISMRM12, None, None, False),
            ("bydder-3t", load_bydder, root / BYDDER, CAL_3T, a.bydder_sigma, True)]
    unit = {(t, c): phantom_unit_within(t, c) for t in TILES for c in PHANTOM_SCALES}
    out: dict[str, Any] = {"machine": machine_info(), "load_1min": os.getloadavg()[0], "replicas": a.replicas,
                           "phantom_unit_within_variance": {f"T{t}_c{c:g}": u for (t, c), u in unit.items()},
                           "datasets": {}}
    print("phantom texture, within-tile variance at log-SD 1: " + ", ".join(
        f"T{t} c{c:g} {u:.3f}" for (t, c), u in unit.items()))
    if a.phantom:
        out["phantom_check"] = (phantom_check() + phantom_check(s0_log_sds=(0.05,), scale_voxels=4.0)
                                + phantom_check(s0_log_sds=(0.0, 0.05), lic=7.0))
    for name, loader, path, cal, sigma, bydder in todo:
        if not path.is_file():
            print(f"{name}: skipped, {path} not found (set --data or R2MRI_REALDATA)")
            continue
        data, te, b0 = loader(path)
        row = measure(data, te, b0, calibration=cal, sigma=sigma, pixel_mm=a.pixel_mm,
                      replicas=a.replicas, integer=bydder, bipolar=bydder)
        for key in [k for k in row if k.startswith("cross_echo")]:
            for t, v in row[key]["tiles"].items():
                v["phantom_equivalent_log_sd"] = {f"c{c:g}": float(np.sqrt(max(v["s0_var"], 0.0) / unit[(t, c)]))
                                                  for c in PHANTOM_SCALES}
        _print(name, row, unit)
        out["datasets"][name] = row
    if not out["datasets"] and not a.phantom:
        print("no real data found: nothing to do")
        return 0
    write_json(Path(a.results), out)
    print(f"wrote {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
