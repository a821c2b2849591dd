"""Real in-vivo liver multi-echo GRE through ``r2mri.analyze`` (issue 16: "nothing has been
tried on real patient data").

Run: ``python -m benchmarks.real_liver [--data DIR] [--out DIR] [--variants]`` from the
repository root (``NUMBA_NUM_THREADS=1`` on a shared machine; ~10 s per analysis). ``DIR``
(or the environment variable ``R2MRI_REALDATA``) holds the files below; a dataset whose
file is absent is skipped with one line, and the script exits 0 when none is there.
Writes ``benchmarks/results/real_liver.json`` and, under ``--out`` (default
``/tmp/r2mri-real-liver``), the r2mri report of each main run (page PNG/PDF, maps).

The data are **not** in this repository (no licence allows it; see docs/statistics.md,
"Real in-vivo data"). Both are public on GitHub and were found with the project's search
tools; get them with ``git show`` from clones of the two repositories:

``pdff/liver_12echo_bipolar.mat``
    github.com/marcsous/pdff (Mark Bydder), file added 2023-11-30 as the demo of
    ``grad_delay_corr.m`` (a bipolar-readout gradient-delay correction); the repository has
    **no licence file**. One axial slice of an upper abdomen, 232 x 256, 12 echoes
    TE 1.1-13.2 ms (spacing 1.1 ms, bipolar readouts), field 2.8949 T (a Siemens "3 T"),
    complex, coil-combined. The background is zero: magnitudes are stored as integers
    (liver ~20-40) and everything below 0.5 rounds to 0, so there is no air to estimate
    the noise from. No voxel size or orientation is stored.
``ismrm2012/12.mat``
    github.com/welcheb/FattyRiot ``test_cases/12.mat``: case 12 of the ISMRM 2012
    Challenge on Water-Fat Reconstruction (ISMRM Fat-Water Toolbox ``imDataParams``
    format); FattyRiot is CC BY-NC-ND 4.0 ("strictly for non-commercial research"); the
    challenge data's own terms were not found. Three axial slices of an upper abdomen,
    157 x 256, 4 echoes TE 1.74-10.97 ms (spacing 3.08 ms), 1.5 T, complex, one coil.
    Background noise present. No voxel size or orientation is stored.

Neither source publishes an R2*, LIC or liver PDFF for these subjects (they are demos of
fat-water separation), so there is no truth: the numbers are checked for plausibility
against published normal ranges only (docs/statistics.md).

Assumptions the files cannot settle, stated in every result: in-plane voxel size
(``--pixel-mm``, default 1.5 mm, typical of a 256-matrix abdominal FOV of ~380 mm; not
from the sources), slice thickness 8 mm (likewise) and the orientation (rows anterior to
posterior, columns patient right to left, the radiological display both sources show:
the liver is on the image left). Bydder's noise sigma: ``--bydder-sigma`` (default 0.5
signal units; the Immerkaer estimate from the complex image and the fit's residual RMS are
printed beside it, and ``--variants`` shows how much the headline moves with it).

``--variants`` adds, per dataset: noise sigma x0.5 and x2; voxel size 1.0 and 2.0 mm; a
wrong orientation (identity affine); for the 3 T data, the complex fat-water fit (phase
given; the readouts are bipolar, which that model does not describe).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._common import machine_info, write_json

RESULTS = Path(__file__).resolve().parent / "results"
BYDDER = "pdff/liver_12echo_bipolar.mat"
ISMRM12 = "ismrm2012/12.mat"
#: 3 T derived bridge: the only R2* curve r2mri ships for 3 T; not picked silently by
#: r2mri, so named here (calibration/hernando-2022-r2star-3t-scaled.toml says why).
CAL_3T = "hernando-2022-r2star-3t-scaled"
SLICE_MM = 8.0  # assumption, not from the sources (see module docstring)


# ----------------------------------------------------------------------------- loading
def _affine(pixel_mm: float, oriented: bool = True) -> np.ndarray:
    """Voxel (row, col, slice) -> RAS+ mm: rows anterior->posterior, columns R->L."""
    if not oriented:
        return np.diag([pixel_mm, pixel_mm, SLICE_MM, 1.0])
    return np.array([[0.0, -pixel_mm, 0.0, 0.0], [-pixel_mm, 0.0, 0.0, 0.0],
                     [0.0, 0.0, SLICE_MM, 0.0], [0.0, 0.0, 0.0, 1.0]])


def load_bydder(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Complex data (x, y, 1, echo), echo times (s), field (T) of the 3 T bipolar series."""
    import scipy.io as sio

    d = sio.loadmat(str(path))
    data = np.asarray(d["data"], dtype=np.complex64)[:, :, None, :]
    return data, np.asarray(d["te"], float).ravel(), float(np.ravel(d["Tesla"])[0])


def load_ismrm(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Complex data (x, y, z, echo), echo times (s), field (T) of an ISMRM toolbox case."""
    import scipy.io as sio

    p = sio.loadmat(str(path), squeeze_me=True, struct_as_record=False)["imDataParams"]
    data = np.asarray(p.images, dtype=np.complex64)
    if data.ndim == 5:  # (x, y, z, coil, echo): one coil in the cases used here
        if data.shape[3] != 1:
            raise SystemExit(f"{path}: {data.shape[3]} coils; this script reads single-coil cases")
        data = data[:, :, :, 0, :]
    return data, np.atleast_1d(np.asarray(p.TE, float)), float(p.FieldStrength)


def image(data: np.ndarray, te_s: np.ndarray, b0_t: float, pixel_mm: float,
          oriented: bool = True, with_phase: bool = False):
    import r2mri

    return r2mri.MultiEchoImage(
        np.abs(data), te_s, affine=_affine(pixel_mm, oriented), field_strength_t=b0_t,
        sequence="GRE", phase_rad=np.angle(data).astype(np.float32) if with_phase else None,
        metadata={"source": "benchmarks/real_liver.py"})


# ------------------------------------------------------------------------ noise checks
def immerkaer_sigma(data: np.ndarray) -> float:
    """Per-channel sigma from the real and imaginary parts inside the body.

    Immerkaer J, Fast noise variance estimation, Comput Vis Image Underst 1996;64:300-302:
    the 3 x 3 difference-of-Laplacians mask cancels locally planar signal; its L2 norm is 6.
    A robust (MAD) version over body voxels, median over echoes and slices. Spatially
    correlated noise (interpolated reconstructions) makes it low.
    """
    from scipy import ndimage as ndi

    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)
    mag = np.abs(data)
    out = []
    for z in range(data.shape[2]):
        body = ndi.binary_erosion(mag[:, :, z, 0] > 0.1 * mag[:, :, z, 0].max(), iterations=3)
        for e in range(data.shape[3]):
            for part in (data[:, :, z, e].real, data[:, :, z, e].imag):
                c = ndi.convolve(part.astype(float), k)[body]
                out.append(1.4826 * np.median(np.abs(c - np.median(c))) / 6.0)
    return float(np.median(out))


# --------------------------------------------------------------------------- analysis
def _codes(findings) -> dict[str, str]:
    return {f.code: f.severity for f in findings}


def summarise(res, body_thresh: float) -> dict[str, Any]:
    """What a reader of the report needs, from an AnalysisResult."""
    from r2mri import FitStatus

    st = res.statistics.to_dict()
    fit, roi = res.fit, res.roi.mask
    status = np.asarray(fit.status)
    body = res.image.data[..., 0] > body_thresh
    names = {int(s): s.name for s in FitStatus}
    def counts(sel):
        v, c = np.unique(status[sel], return_counts=True)
        return {names.get(int(a), str(a)): int(b) for a, b in zip(v, c)}
    r2 = fit.r2_per_s[roi]
    s = np.asarray(fit.residual_rms)[roi] * np.sqrt(res.image.n_echoes / (res.image.n_echoes - 3))
    het = st.get("heterogeneity", {})
    return {
        "findings": _codes(res.findings),
        "noise_sigma": st["qc"]["noise_sigma"], "noise_method": getattr(res.noise, "method", "given"),
        "status_in_body": counts(body), "status_in_roi": counts(roi),
        "roi_method": res.roi.method, "roi_voxels": int(roi.sum()),
        "roi_voxels_per_slice": roi.sum(axis=(0, 1)).tolist(),
        "roi_fraction_of_body": float(roi.sum() / max(body.sum(), 1)),
        "headline_lic_mg_per_g": st["headline"]["lic_mg_per_g"],
        "ci95_lic_mg_per_g": st["headline"]["ci95_lic_mg_per_g"],
        "headline_r2star_per_s": st["headline"]["r2_per_s"],
        "category": st["category"]["name"],
        "roi_r2star_voxel_mean_median_sd": [float(np.nanmean(r2)), float(np.nanmedian(r2)), float(np.nanstd(r2))],
        "roi_residual_sd_median": float(np.nanmedian(s)),
        "pdff_percent_mean_se": ([st["pdff_percent"]["mean"], st["pdff_percent"]["se"]]
                                 if "pdff_percent" in st else None),
        "heterogeneity": {k: het.get(k) for k in ("r2_cv_noise_corrected", "r2_cv_ci95", "category_fractions",
                                                   "different_category_fraction", "warning", "measurable",
                                                   "r2_sd_raw_per_s", "r2_noise_rms_per_s")},
        "warnings": list(res.warnings),
    }


def roi_islands(res) -> dict[str, Any]:
    """Islands of the ROI: in-plane pieces (8-connected) per slice, and what the slice-
    continuity rule (r2mri/_roi_islands.py, not wired into liver_roi) would drop from the
    candidate, with the headline recomputed on the ROI without them."""
    import copy

    from scipy import ndimage

    from r2mri import stats as _stats
    from r2mri._roi_islands import slice_continuity
    from r2mri._roi_sampling import widen_for_roi_sampling

    roi, cand = res.roi.mask, res.roi.candidate
    eight = np.ones((3, 3), bool)
    pieces = [int(ndimage.label(roi[:, :, k], structure=eight)[1]) for k in range(roi.shape[2])]
    kept, info = slice_continuity(cand)
    out = {"roi_pieces_per_slice": pieces, "candidate_pieces_dropped": info["dropped"],
           "candidate_voxels_dropped": info["dropped_voxels"],
           "largest_dropped": sorted(info["dropped_pieces"], key=lambda d: -d[1])[:5],
           "roi_voxels_dropped": int(np.count_nonzero(roi & ~kept))}
    if out["roi_voxels_dropped"]:
        rr = copy.copy(res.roi)
        rr.mask = roi & kept
        st = _stats.liver_statistics(res.fit, rr, res.calibration, image=res.image)
        widen_for_roi_sampling(st, rr, res.fit, res.calibration)
        h = st.to_dict()["headline"]
        out["without_islands"] = {"lic_mg_per_g": h["lic_mg_per_g"], "ci95_lic_mg_per_g": h["ci95_lic_mg_per_g"],
                                  "r2star_per_s": h["r2_per_s"],
                                  "roi_pieces_per_slice": [int(ndimage.label(rr.mask[:, :, k], structure=eight)[1])
                                                           for k in range(roi.shape[2])]}
    return out


def independent_r2star(img, roi: np.ndarray) -> dict[str, float]:
    """A second, plain estimate: a mono-exponential fitted (scipy) to the ROI-mean magnitude.

    No fat term: at the low PDFF of these livers the fat-water beat is a few per cent of
    the signal, so this checks the order of the headline, not its last per cent.
    """
    from scipy.optimize import curve_fit

    y = img.data[roi].mean(axis=0).astype(float)
    t = img.echo_times_s
    (a, r), cov = curve_fit(lambda t, a, r: a * np.exp(-r * t), t, y, p0=(y[0], 50.0))
    return {"r2star_per_s": float(r), "se_per_s": float(np.sqrt(cov[1, 1]))}


def run_one(img, *, calibration=None, noise_sigma=None, coils=None, body_thresh=0.0, out=None):
    import r2mri

    kw: dict[str, Any] = {"threads": 1}
    if calibration:
        kw["calibration"] = calibration
    if noise_sigma is not None:
        kw.update(noise_sigma=noise_sigma, coils=coils or 1)
    t0 = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = r2mri.analyze(img, **kw)
        except (r2mri.InputError, r2mri.ProtocolError, r2mri.CalibrationError) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
    row = summarise(res, body_thresh)
    row["roi_mean_signal_monoexp"] = independent_r2star(res.image, res.roi.mask)
    row["roi_islands"] = roi_islands(res)
    row["python_warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    row["cpu_s"] = time.process_time() - t0
    if out is not None:
        from r2mri.report import write_outputs

        shutil.rmtree(out, ignore_errors=True)
        write_outputs(res, out, overwrite=True)
        row["report_dir"] = str(out)
    return row


def _line(name: str, r: dict) -> str:
    if "error" in r:
        return f"{name:28s} REFUSED  {r['error']}"
    h = r["heterogeneity"]
    cv = h["r2_cv_noise_corrected"]
    return (f"{name:28s} LIC {r['headline_lic_mg_per_g']:.3f} [{r['ci95_lic_mg_per_g'][0]:.3f}-"
            f"{r['ci95_lic_mg_per_g'][1]:.3f}] R2* {r['headline_r2star_per_s']:.1f} "
            f"PDFF {r['pdff_percent_mean_se'][0]:.1f} % ROI {r['roi_voxels']} "
            f"({100 * r['roi_fraction_of_body']:.0f} % of body) CV {cv if cv is None else round(cv, 3)} "
            f"sigma {r['noise_sigma']:.2f} warnings {len(r['warnings'])} "
            f"(mono-exp of ROI mean: R2* {r['roi_mean_signal_monoexp']['r2star_per_s']:.1f})")


def _base_for_augment(img, calibration, sigma) -> dict:
    """The real run's ROI, headline R2*, voxel R2* and noise sigma (for bench_augmented)."""
    import r2mri

    kw = {"calibration": calibration} if calibration else {}
    if sigma is not None:
        kw.update(noise_sigma=sigma, coils=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = r2mri.analyze(img, threads=1, **kw)
    st = res.statistics.to_dict()
    return {"roi_mask": res.roi.mask, "headline_r2star_per_s": st["headline"]["r2_per_s"],
            "voxel_r2": np.asarray(res.fit.r2_per_s, float), "noise_sigma": st["qc"]["noise_sigma"]}


def bench_dataset(name, loader, path, *, calibration, sigma, pixel_mm, variants, out_root,
                  augment_grid=None):
    data, te, b0 = loader(path)
    mag = np.abs(data)
    body_thresh = 0.1 * float(mag[..., 0].max())
    info = {"file": str(path), "shape": list(data.shape), "echo_times_ms": (te * 1e3).round(3).tolist(),
            "field_strength_t": b0, "magnitude_max": float(mag.max()),
            "zero_fraction": float(np.mean(mag == 0)),
            "integer_magnitudes": bool(np.all(np.abs(mag - np.round(mag)) < 1e-3)),
            "immerkaer_sigma": immerkaer_sigma(data), "assumed_pixel_mm": pixel_mm,
            "assumed_slice_mm": SLICE_MM, "calibration_named": calibration, "sigma_given": sigma}
    print(f"{name}: {info['shape']} TE {info['echo_times_ms'][0]}-{info['echo_times_ms'][-1]} ms, "
          f"{b0:g} T, Immerkaer sigma {info['immerkaer_sigma']:.2f}, zeros {100 * info['zero_fraction']:.0f} %")
    runs: dict[str, Any] = {}
    main = run_one(image(data, te, b0, pixel_mm), calibration=calibration, noise_sigma=sigma,
                   body_thresh=body_thresh, out=out_root / name)
    runs["main"] = main
    print(_line("  main", main))
    if "error" not in main:
        isl = main["roi_islands"]
        wo = isl.get("without_islands")
        print(f"  ROI in-plane pieces per slice {isl['roi_pieces_per_slice']}; slice continuity would drop "
              f"{isl['candidate_pieces_dropped']} candidate pieces ({isl['candidate_voxels_dropped']} voxels; "
              f"largest (slice, voxels, overlap) {isl['largest_dropped'][:3]}), {isl['roi_voxels_dropped']} ROI voxels"
              + (f" -> LIC {wo['lic_mg_per_g']:.4f} [{wo['ci95_lic_mg_per_g'][0]:.4f}-{wo['ci95_lic_mg_per_g'][1]:.4f}]"
                 f", R2* {wo['r2star_per_s']:.3f}, pieces {wo['roi_pieces_per_slice']}" if wo else ""))
    if augment_grid and "error" not in main:
        base = _base_for_augment(image(data, te, b0, pixel_mm), calibration, sigma)
        runs["augmented"] = bench_augmented(name, data, te, b0, base, calibration=calibration,
                                            pixel_mm=pixel_mm, **augment_grid)
    if variants and "error" not in main:
        s0 = main["noise_sigma"]
        for f in (0.5, 2.0):
            runs[f"sigma_x{f:g}"] = run_one(image(data, te, b0, pixel_mm), calibration=calibration,
                                           noise_sigma=s0 * f, body_thresh=body_thresh)
        for px in (1.0, 2.0):
            runs[f"pixel_{px:g}mm"] = run_one(image(data, te, b0, px), calibration=calibration,
                                             noise_sigma=sigma, body_thresh=body_thresh)
        runs["identity_affine"] = run_one(image(data, te, b0, pixel_mm, oriented=False),
                                          calibration=calibration, noise_sigma=sigma,
                                          body_thresh=body_thresh, out=out_root / f"{name}-identity")
        if name == "bydder-3t":
            runs["complex_fit"] = run_one(image(data, te, b0, pixel_mm, with_phase=True),
                                          calibration=calibration, noise_sigma=sigma,
                                          body_thresh=body_thresh, out=out_root / f"{name}-complex")
        for k, r in runs.items():
            if k not in ("main", "augmented"):
                print(_line("  " + k, r))
    return {"data": info, "runs": runs}


# ------------------------------------------------- real anatomy + synthetic patchy iron
def texture(shape: tuple, sd_log: float, width_vox: float, seed: int) -> np.ndarray:
    """exp(sd z - sd^2 / 2), z a unit-SD Gaussian field smoothed in-plane (Gaussian of
    ``width_vox`` voxels SD) slice by slice: a log-normal factor of mean ~1."""
    from scipy import ndimage as ndi

    z = np.random.default_rng(seed).standard_normal(shape)
    z = ndi.gaussian_filter(z, sigma=(width_vox, width_vox, 0))
    z /= z.std()
    return np.exp(sd_log * z - 0.5 * sd_log**2)


def augment(data, te_s, delta_r2, sigma, seed):
    """The real complex series with extra decay exp(-delta t) per voxel, plus complex noise
    that restores the per-channel sigma (the real noise decays with the signal):
    variance sigma^2 (1 - exp(-2 delta t))."""
    rng = np.random.default_rng(10_000 + seed)
    f = np.exp(-delta_r2[..., None] * te_s)
    add = sigma * np.sqrt(np.maximum(1.0 - f * f, 0.0))
    noise = (rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape)) * add
    return (data * f + noise).astype(np.complex64)


def bench_augmented(name, data, te, b0, base: dict, *, calibration, pixel_mm, lics, sds,
                    width_vox, seeds):
    """Patchy iron laid on a real liver: headline vs truth inside the real run's ROI.

    The target LIC field is ``lic * texture``; the added rate is its R2* minus the real
    liver's headline R2* (so the liver ends near the target; its own texture stays on
    top), added everywhere (iron in liver and spleen alike, as in transfusional overload).
    Truth (issue 16's definition over the ROI, given as the mask): LIC of (real headline
    R2* + mean added rate over the ROI); also the mean voxel LIC of (real voxel R2* +
    added rate). The real headline is itself an estimate (CI in the base run), a shared
    offset of at most its half-width. analyze erodes the given mask by 5 mm and removes
    vessels (3 T: 873 -> ~375 voxels), so with a texture the truth over the ROI it measured
    (``truth_lic_final_roi``, ``bias_final_roi_pct``) is the one its headline estimates.
    """
    import r2mri
    from r2mri.calibration import lic_from_r2, r2_from_lic

    cal = calibration or "hernando-2022-r2star-1.5t"
    roi = base["roi_mask"]
    r2_base = base["headline_r2star_per_s"]
    rows = []
    for lic in lics:
        for sd in sds:
            for seed in seeds:
                tex = texture(data.shape[:3], sd, width_vox, seed)
                target = np.asarray(r2_from_lic(lic * tex, cal), float)
                delta = np.maximum(target - r2_base, 0.0)
                aug = augment(data, te, delta, base["noise_sigma"], seed)
                img = image(aug, te, b0, pixel_mm)
                truth_r2 = r2_base + float(delta[roi].mean())
                vox_lic = float(np.mean(lic_from_r2(base["voxel_r2"][roi] + delta[roi], cal)))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = r2mri.analyze(img, mask=roi, calibration=calibration, noise_sigma=base["noise_sigma"],
                                        coils=1, threads=1, force=True)
                st = res.statistics.to_dict()
                h, het = st["headline"], st.get("heterogeneity", {})
                truth = float(lic_from_r2(truth_r2, cal))
                # analyze erodes the given mask (5 mm: 494 of the 3 T ROI's 873 voxels) and removes vessels:
                # with a texture, the truth over the ROI it measures differs from the given mask's
                fin = np.asarray(res.roi.mask, bool)
                truth_fin = float(lic_from_r2(r2_base + float(delta[fin].mean()), cal)) if fin.any() else float("nan")
                lo, hi = h["ci95_lic_mg_per_g"]
                row = {"lic_target": lic, "sd_log": sd, "seed": seed, "truth_lic": truth,
                       "truth_lic_final_roi": truth_fin, "n_final_roi": int(fin.sum()),
                       "bias_final_roi_pct": 100 * (h["lic_mg_per_g"] / truth_fin - 1),
                       "covered_final_roi": bool(lo <= truth_fin <= hi),
                       "truth_mean_voxel_lic": vox_lic, "headline": h["lic_mg_per_g"], "ci95": [lo, hi],
                       "bias_pct": 100 * (h["lic_mg_per_g"] / truth - 1), "covered": bool(lo <= truth <= hi),
                       "estimator": h.get("estimator"), "cv": het.get("r2_cv_noise_corrected"),
                       "true_cv_r2": float(np.std(base["voxel_r2"][roi] + delta[roi])
                                           / np.mean(base["voxel_r2"][roi] + delta[roi])),
                       "voxel_mean_lic": float(lic_from_r2(np.nanmean(res.fit.r2_per_s[roi]), cal)),
                       "het_warning": bool(het.get("warning")), "measurable": het.get("measurable"),
                       "n_warnings": len(res.warnings)}
                rows.append(row)
                cv = row["cv"] if row["cv"] is None else round(row["cv"], 3)
                print(f"  {name} +iron {lic:g} mg/g sd {sd:g} seed {seed}: truth {truth:.2f} (over the ROI analyze "
                      f"measured {truth_fin:.2f}: {row['bias_final_roi_pct']:+.1f} %, "
                      f"{'in' if row['covered_final_roi'] else 'OUT'}) headline "
                      f"{row['headline']:.2f} ({row['bias_pct']:+.1f} %) CI {lo:.2f}-{hi:.2f} "
                      f"{'in' if row['covered'] else 'OUT'}; voxel-mean {row['voxel_mean_lic']:.2f}; "
                      f"CV {cv} (true voxel CV {row['true_cv_r2']:.3f}) warn {row['het_warning']}")
    return rows


# ------------------------------------------------------------ a look at the ROIs (issue 16)
def _analyze_roi(img, calibration, sigma, grefloor_rule: bool):
    """``r2mri.analyze`` with the low-iron hook emulated; ``grefloor_rule``: the R2* extension
    gated at the mapped top of the normal range itself (branch grefloor, 64.5 s^-1 at 3 T)
    instead of top + 2 SDs of the field mapping (r2mri._r2star_floor.r2star_extension_min_per_s)."""
    import r2mri
    import r2mri.roi as roi_mod
    from r2mri._r2star_floor import r2star_normal_max_per_s
    from r2mri.calibration import default_calibration, get_calibration

    from ._low_iron_hook import emulated_hook

    kw: dict[str, Any] = {"threads": 1}
    if calibration:
        kw["calibration"] = calibration
    if sigma is not None:
        kw.update(noise_sigma=sigma, coils=1)
    real = roi_mod.extension_min_median_per_s
    if grefloor_rule:
        roi_mod.extension_min_median_per_s = lambda c, im: r2star_normal_max_per_s(
            get_calibration(c if c is not None else default_calibration(im)))
    try:
        with warnings.catch_warnings(), emulated_hook():
            warnings.simplefilter("ignore")
            return r2mri.analyze(img, **kw)
    finally:
        roi_mod.extension_min_median_per_s = real


def look(name, data, te, b0, calibration, sigma, pixel_mm, png: Path) -> dict[str, Any]:
    """PNG of the slice with the largest ROI: echo 1, R2*, PDFF, and the automatic ROI before
    (grefloor's extension gate) and after (this code), the grown candidate, and the tissue
    the low-iron check counts as liver-like above the normal range (r2mri._roi_low_iron)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from r2mri._roi_low_iron import NOISE_MARGIN_SD, border_mask

    from ._low_iron_hook import LAST

    res = {k: _analyze_roi(image(data, te, b0, pixel_mm), calibration, sigma, k == "before") for k in ("before", "after")}
    after = res["after"]
    border = None
    li = after.roi.options.get("low_iron") or {}
    if LAST.get("candidate") is not None and li.get("noise_sd_per_s") is not None:
        kept, _, med3, top, _ = LAST["args"]
        above = np.isfinite(med3) & (med3 > top + NOISE_MARGIN_SD * li["noise_sd_per_s"])
        border = border_mask(kept & np.isfinite(med3), above, LAST["candidate"], LAST["logs"], LAST.get("pdff"),
                             LAST.get("tissue"), LAST["voxel_mm"])
    z = int(np.argmax(after.roi.mask.sum(axis=(0, 1))))
    mag = np.abs(data[:, :, z, 0])
    r2 = np.asarray(after.fit.r2_per_s)[:, :, z]
    pdff = (after.fit.extra or {}).get("pdff_percent")
    body = np.nonzero(mag > 0.1 * mag.max())
    crop = (slice(max(body[0].min() - 4, 0), body[0].max() + 5), slice(max(body[1].min() - 4, 0), body[1].max() + 5))
    fig, ax = plt.subplots(2, 2, figsize=(12, 9))
    ax[0, 0].imshow(mag[crop], cmap="gray")
    ax[0, 0].set_title(f"{name}: echo 1 (TE {te[0] * 1e3:.2f} ms), slice {z}")
    im = ax[0, 1].imshow(np.clip(r2[crop], 0, 200), cmap="magma")
    plt.colorbar(im, ax=ax[0, 1], fraction=0.04)
    ax[0, 1].set_title("R2* (s^-1, 0-200); cyan: ROI after")
    ax[0, 1].contour(after.roi.mask[:, :, z][crop].astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
    if pdff is not None:
        im = ax[1, 0].imshow(np.clip(np.asarray(pdff)[:, :, z][crop], 0, 40), cmap="viridis")
        plt.colorbar(im, ax=ax[1, 0], fraction=0.04)
    ax[1, 0].set_title("PDFF (%, 0-40)")
    ax[1, 1].imshow(mag[crop], cmap="gray")
    for m, c in ((res["before"].roi.mask, "red"), (after.roi.candidate, "yellow"), (after.roi.mask, "cyan")):
        ax[1, 1].contour(m[:, :, z][crop].astype(float), levels=[0.5], colors=c, linewidths=0.8)
    if border is not None:  # the low-iron check's evidence: liver-like tissue above the normal range
        for m, c in ((border[1], (1.0, 0.6, 0.0, 0.5)), (border[0], (1.0, 0.0, 1.0, 0.8))):
            rgba = np.zeros(m[:, :, z][crop].shape + (4,))
            rgba[m[:, :, z][crop]] = c
            ax[1, 0].imshow(rgba)
        ax[1, 0].set_title("PDFF (%, 0-40); magenta: liver-like tissue above the normal R2* range next to the "
                           "candidate (orange: thin rim, not counted)", fontsize=8)
    lb, la = (res[k].statistics.headline_lic_mg_per_g for k in ("before", "after"))
    ax[1, 1].set_title(f"ROI before (red, {lb:.2f} mg/g), after (cyan, {la:.2f}); grown candidate yellow", fontsize=9)
    for a in ax.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80)
    plt.close(fig)
    from PIL import Image  # matplotlib's own dependency: 256 colours keep the file ~4x smaller

    Image.open(png).convert("RGB").quantize(256).save(png, optimize=True)
    out = {}
    for k, r in res.items():
        out[k] = {"lic_mg_per_g": r.statistics.headline_lic_mg_per_g, "roi_voxels": int(r.roi.mask.sum()),
                  "ci95_lic_mg_per_g": list(r.statistics.ci95_lic_mg_per_g),
                  "low_iron": r.roi.options.get("low_iron"),
                  "red_roi_warnings": [w[:160] for w in r.roi.warnings if w.startswith("liver ROI: WARNING")],
                  "extension": {kk: v for kk, v in (r.roi.options.get("parenchyma_extension") or {}).items()
                                if kk in ("added", "large_iron_fractions", "refused_fractions")}}
    print(f"  {name}: before {out['before']['lic_mg_per_g']:.3f} mg/g ({out['before']['roi_voxels']} voxels), after "
          f"{out['after']['lic_mg_per_g']:.3f} ({out['after']['roi_voxels']}); low-iron {out['after']['low_iron']}; "
          f"{png}")
    return out


def main_look(root: Path, pixel_mm: float, sigma_bydder: float, results: Path) -> int:
    """``--look``: the real livers' ROIs before/after as PNGs in benchmarks/results/."""
    todo = [("bydder-3t", load_bydder, root / BYDDER, CAL_3T, sigma_bydder)]
    todo += [(f"ismrm2012-case{c}", load_ismrm, root / f"ismrm2012/{c}.mat", None, None) for c in (12, 13, 15, 16, 17)]
    out: dict[str, Any] = {"machine": machine_info(), "load_1min": os.getloadavg()[0], "datasets": {}}
    for name, loader, path, cal, sigma in todo:
        if not path.is_file():
            print(f"{name}: skipped, {path} not found")
            continue
        data, te, b0 = loader(path)
        cal = cal if cal is not None or b0 < 2.0 else CAL_3T
        out["datasets"][name] = look(name, data, te, b0, cal, sigma, pixel_mm, RESULTS / f"real_liver_roi-{name}-r2starroi.png")
    if out["datasets"]:
        write_json(results, out)
        print(f"wrote {results}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("R2MRI_REALDATA", "/work/realdata"))
    ap.add_argument("--out", default="/tmp/r2mri-real-liver")
    ap.add_argument("--pixel-mm", type=float, default=1.5)
    ap.add_argument("--bydder-sigma", type=float, default=0.5)
    ap.add_argument("--variants", action="store_true")
    ap.add_argument("--augment", action="store_true",
                    help="lay synthetic patchy iron on the real livers (grid below)")
    ap.add_argument("--lics", default="3,7,15")
    ap.add_argument("--sds", default="0,0.2,0.4")
    ap.add_argument("--width-vox", type=float, default=4.0)
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--results", default=str(RESULTS / "real_liver.json"))
    ap.add_argument("--look", action="store_true", help="PNGs of the automatic ROIs before/after (issue 16) and "
                    "results/real_liver_roi-r2starroi.json; nothing else")
    a = ap.parse_args(argv)
    root = Path(a.data)
    if a.look:
        return main_look(root, a.pixel_mm, a.bydder_sigma, RESULTS / "real_liver_roi-r2starroi.json")
    todo = [("bydder-3t", load_bydder, root / BYDDER, CAL_3T, a.bydder_sigma),
            ("ismrm2012-case12-1.5t", load_ismrm, root / ISMRM12, None, None)]
    out: dict[str, Any] = {"machine": machine_info(), "load_1min": os.getloadavg()[0], "datasets": {}}
    for name, loader, path, cal, sigma in todo:
        if not path.is_file():
            print(f"{name}: skipped, {path} not found (set --data or R2MRI_REALDATA)")
            continue
        grid = None
        if a.augment:
            grid = {"lics": [float(x) for x in a.lics.split(",")], "sds": [float(x) for x in a.sds.split(",")],
                    "width_vox": a.width_vox, "seeds": [int(x) for x in a.seeds.split(",")]}
        out["datasets"][name] = bench_dataset(name, loader, path, calibration=cal, sigma=sigma,
                                              pixel_mm=a.pixel_mm, variants=a.variants,
                                              out_root=Path(a.out), augment_grid=grid)
    if not out["datasets"]:
        print("no real data found: nothing to do")
        return 0
    write_json(Path(a.results), out)
    print(f"wrote {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
