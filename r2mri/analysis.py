"""The whole chain in one call: input -> R2 map -> LIC map -> liver ROI -> statistics.

:func:`analyze` glues the stages (``r2mri.io``, ``r2mri.fitting``, ``r2mri.noise``,
``r2mri.calibration``, ``r2mri.roi``, ``r2mri.stats``) and returns an
:class:`AnalysisResult`; :func:`r2mri.report.write_outputs` turns that into files.
No physics here: every formula lives in the stage that owns it.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import CalibrationError, InputError, ProtocolError
from ._air import P_AIR, air_around_body  # noqa: F401  (public here: r2mri.analysis.air_around_body)
from ._analysis_settings import _check_roi_options, _settings
from ._dark_liver import widen_for_dark_liver
from ._roi_sampling import widen_for_roi_sampling
from .image import MultiEchoImage

__all__ = ["analyze", "AnalysisResult", "air_around_body"]


@dataclass
class AnalysisResult:
    """Everything one analysis produced; the reports are written from this.

    Attributes
    ----------
    image : MultiEchoImage
        The analysed image (after echo-time / field-strength overrides).
    fit : r2mri.fitting.FitResult
        Voxel-wise maps: ``r2_per_s``, ``s0``, ``r2_std_per_s``, ``status``...
    lic_mg_per_g : ndarray, shape (x, y, z)
        LIC map from the calibration (mg Fe/g dry tissue), NaN where R2 is NaN.
    roi : r2mri.roi.LiverROI
        The liver ROI actually used (``mask``, ``method``, voxels removed per rule).
    statistics : r2mri.stats.LiverStatistics
        Headline and distribution statistics (``to_dict()`` gives the report blocks).
    calibration : r2mri.calibration.Calibration
        The calibration curve used.
    findings : list
        Protocol findings (``r2mri.io.protocol.Finding``) of the acquisition.
    noise : NoiseEstimate or None
        The noise estimate used by the fit (``None`` when the user gave sigma).
    warnings : list of str
        Everything a reader should know (forced protocol errors, extrapolation...).
    settings : dict
        JSON-serialisable arguments that reproduce the run
        (``analyze(settings["inputs"], **settings["options"])``).
    inputs : list of str
        Input paths (empty for an in-memory image).
    input_format : str
        ``"dicom"``, ``"nifti"`` or ``"memory"``.
    timings_s : dict
        Wall-clock seconds per stage.
    input_mask : ndarray of bool or None
        The user's mask as given (before the ROI rules), ``None`` without one.

    Examples
    --------
    >>> import numpy as np
    >>> import r2mri
    >>> from r2mri import phantom
    >>> ph = phantom.generate(lic=7.0, matrix=(48, 48), pixel_mm=8.0, n_slices=2, seed=0)
    >>> outline = np.isin(ph.truth.labels, [phantom.LABELS["liver"], phantom.LABELS["vessel"]])
    >>> res = r2mri.analyze(ph.image, mask=outline)
    >>> round(res.headline_lic_mg_per_g, 1), res.fit.model, res.roi.method
    (7.0, 'ncchi', 'user mask')
    """

    image: MultiEchoImage
    fit: Any
    lic_mg_per_g: np.ndarray
    roi: Any
    statistics: Any
    calibration: Any
    findings: list = field(default_factory=list)
    noise: Any = None
    warnings: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    input_format: str = "memory"
    timings_s: dict = field(default_factory=dict)
    input_mask: np.ndarray | None = None

    @property
    def headline_lic_mg_per_g(self) -> float | None:
        """LIC of the mean liver R2 (the FerriScan convention), mg Fe/g dry tissue."""
        value = getattr(self.statistics, "headline_lic_mg_per_g", None)
        if value is None and isinstance(self.statistics, dict):
            value = (self.statistics.get("lic_mg_per_g") or {}).get("of_mean_r2")
        return float(value) if value is not None and np.isfinite(value) else None

    def report(self) -> dict:
        """The report.json dictionary (see :func:`r2mri.report.report_dict`)."""
        from .report._json import report_dict

        return report_dict(self)


class _TqdmProgress:
    """``progress(done, total)`` callback drawing a tqdm bar on stderr (hidden when not a TTY)."""

    def __init__(self) -> None:
        self.bar = None
        # tqdm draws nothing when stderr is not a terminal (disable=None): then it is not
        # imported at all (0.04 s of every scripted run)
        try:
            self.shown = sys.stderr.isatty()
        except (AttributeError, ValueError):
            self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="vox", unit_scale=True, desc="R2 fit", file=sys.stderr,
                            disable=None, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _as_paths(inputs: Any) -> list[str]:
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    try:
        paths = [os.fspath(p) for p in inputs]
    except TypeError:
        raise InputError(
            f"inputs: expected a path, a list of paths or a MultiEchoImage, got {type(inputs).__name__}"
        ) from None
    if not paths:
        raise InputError("inputs: no input given")
    return paths


def load_input(paths: list[str], echo_times_ms: Sequence[float] | None, series: Any = None,
               phase: Any = None) -> MultiEchoImage:
    """The image :func:`analyze` analyses for input ``paths`` (:func:`r2mri.load`)."""
    from .io import load

    return load(paths if len(paths) > 1 else paths[0], echo_times_ms=echo_times_ms, series=series, phase=phase)


def _load_mask(mask: Any, img: MultiEchoImage) -> np.ndarray | None:
    if mask is None:
        return None
    if isinstance(mask, (str, os.PathLike)):
        from .io import load_mask

        arr = np.asarray(load_mask(mask, like=img), dtype=bool)
        if not arr.any():
            raise InputError(f"{mask}: the liver mask is empty (no voxel inside)")
        return arr
    arr = np.asarray(mask)
    if arr.shape != img.shape:
        raise InputError(f"mask: shape {arr.shape} does not match the image's spatial shape {img.shape}")
    return arr.astype(bool)


def _check_protocol(img: MultiEchoImage, force: bool, warnings: list) -> list:
    from .io.protocol import check_protocol

    findings = list(check_protocol(img))
    errors = [f for f in findings if getattr(f, "severity", None) == "error"]
    if errors:
        text = "; ".join(f"{f.code}: {f.message}" for f in errors)
        if not force:
            src = img.metadata.get("source") if isinstance(img.metadata, dict) else None
            raise ProtocolError(f"{src + ': ' if src else ''}protocol error ({text}); "
                                f"use --force / force=True to analyse anyway")
        warnings.append(f"protocol errors overridden with force: {text}")
    for f in findings:
        if getattr(f, "severity", None) == "warning":
            warnings.append(f"protocol: {f.code}: {f.message}")
    return findings


def analyze(
    inputs: Any,
    *,
    mask: Any = None,
    model: str = "auto",
    calibration: str | None = None,
    calibration_file: str | os.PathLike | None = None,
    field_strength_t: float | None = None,
    echo_times_ms: Sequence[float] | None = None,
    noise_sigma: float | None = None,
    coils: int | None = None,
    force: bool = False,
    series: Any = None,
    phase: Any = None,
    roi_options: dict | None = None,
    threads: int | None = None,
    progress: Callable | bool | None = None,
) -> AnalysisResult:
    """Measure liver iron: fit R2, calibrate to LIC, pick the liver ROI, summarise.

    Parameters
    ----------
    inputs : path, list of paths, or MultiEchoImage
        DICOM folder(s)/files or NIfTI file(s) understood by :func:`r2mri.load`, or
        an image already in memory (e.g. ``r2mri.phantom.generate().image``).
    mask : path, ndarray of bool, or None
        Liver mask (NIfTI or DICOM SEG, or an array of the image's spatial shape).
        Only its voxels are fitted (the maps are NaN elsewhere). ``None``: every
        voxel but the air around the body (:func:`air_around_body`, needs the noise
        sigma) is fitted and the liver ROI is an automatic proposal (marked as such
        in the report).
    model : str
        Decay model for :func:`r2mri.fit`. ``"auto"`` picks the noise-corrected model
        for spin echo and ``"fatwater"`` (R2* with fat, needs the field strength) for
        gradient-echo input; ``"fatwater"`` on spin-echo input is refused.
    calibration : str or None
        Calibration name (:func:`r2mri.calibration.list_calibrations`); ``None`` picks
        it from the data: spin echo -> ``"st-pierre-2005"`` (1.5 T), gradient echo at
        1.5 T -> ``"hernando-2022-r2star-1.5t"``; other fields are refused with the
        options named (derived 3 T bridges are never picked silently).
    calibration_file : path or None
        A site-validated calibration curve file (overrides ``calibration``).
    field_strength_t : float or None
        Main field in tesla when the input does not say (or to override it).
    echo_times_ms : sequence of float or None
        Echo times in **milliseconds** when the input does not carry them.
    noise_sigma : float or None
        Per-channel noise sigma in signal units; ``None`` estimates it.
    coils : int or None
        Receiver channels combined by root-sum-of-squares (noise model).
    force : bool
        Analyse despite error-level protocol findings and a curve's unmet fat-correction
        or echo-time requirements (they become warnings; field strength and sequence
        family are never overridden).
    series : str, int or list, optional
        DICOM only: the series forming the dataset, as SeriesInstanceUIDs or series
        numbers (:func:`r2mri.load`). Default: the loader's choice, which is refused
        (``series-left-out``) when it leaves series of the acquisition out.
    phase : path, list of paths, False or None
        NIfTI only: phase image(s) of the magnitude (:func:`r2mri.load`); ``None`` pairs
        BIDS ``part-phase`` files by themselves, ``False`` analyses the magnitude alone.
    roi_options : dict or None
        Keyword options for :func:`r2mri.roi.liver_roi` (erosion margin, seed...).
    threads : int or None
        Threads for the voxel-wise fit (``None``: numba's default).
    progress : callable, bool or None
        ``progress(done_voxels, total_voxels)`` called by the fit after each chunk
        (:func:`r2mri.fit`); ``True`` draws a tqdm bar on stderr.

    Returns
    -------
    AnalysisResult

    Raises
    ------
    r2mri.InputError
        No echo times, a mask that does not match, an empty ROI after exclusions.
    r2mri.ProtocolError
        Error-level protocol findings and ``force`` is false.
    r2mri.CalibrationError
        The calibration does not apply to this field strength / sequence.

    Examples
    --------
    A small FerriScan phantom (known truth) with the reader's liver outline as mask:

    >>> import numpy as np, r2mri
    >>> from r2mri import phantom
    >>> ph = phantom.generate(lic=7.0, matrix=(48, 48), pixel_mm=8.0, n_slices=2, seed=0)
    >>> outline = np.isin(ph.truth.labels, [phantom.LABELS["liver"], phantom.LABELS["vessel"]])
    >>> res = r2mri.analyze(ph.image, mask=outline)
    >>> res.fit.model, res.calibration.name
    ('ncchi', 'st-pierre-2005')
    >>> abs(res.headline_lic_mg_per_g / ph.summary["lic_of_mean_r2_mg_per_g"] - 1) < 0.05
    True
    """
    from . import calibration as _cal  # noqa: F401  (imported up front, in this order, as before the split)
    from . import roi as _roi
    from . import stats as _stats  # noqa: F401
    from .fitting import fit as _fit  # noqa: F401

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    warnings: list[str] = []

    # 1. input ------------------------------------------------------------------
    img, paths, input_format = _read_input(inputs, series=series, phase=phase, echo_times_ms=echo_times_ms,
                                           field_strength_t=field_strength_t)
    timings["load"] = time.perf_counter() - t0

    # 2. model, protocol and calibration checks (fail before the expensive fit) ----
    model_used, findings, cal = _check_before_fit(img, paths, model=model, calibration=calibration,
                                                  calibration_file=calibration_file, force=force,
                                                  warnings=warnings)
    roi_mask_in = _load_mask(mask, img)
    _check_roi_options(roi_options, _roi.liver_roi)

    # 3. noise and fit -------------------------------------------------------------
    t1 = time.perf_counter()
    noise, sigma, n_coils = _resolve_noise(img, paths, model_used, noise_sigma, coils, warnings)
    timings["noise"] = time.perf_counter() - t1
    fit, n_air = _fit_liver(img, model_used, roi_mask_in, noise, sigma, n_coils, threads=threads,
                            progress=progress, timings=timings)

    # 4. calibration, ROI, statistics ----------------------------------------------
    t1 = time.perf_counter()
    lic, roi, stats, fit_quality = _calibrate_and_summarise(img, fit, cal, roi_mask_in, roi_options, noise, sigma,
                                                            n_coils, paths, warnings)
    timings["statistics"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0

    settings = _settings(paths, mask=mask, model=model, calibration=calibration, calibration_file=calibration_file,
                         field_strength_t=field_strength_t, echo_times_ms=echo_times_ms, noise_sigma=noise_sigma,
                         coils=coils, force=force, series=series, phase=phase, roi_options=roi_options,
                         threads=threads, cal=cal, sigma=sigma, n_coils=n_coils, fit=fit, n_air=n_air,
                         fit_quality=fit_quality)
    return AnalysisResult(
        image=img,
        fit=fit,
        lic_mg_per_g=lic,
        roi=roi,
        statistics=stats,
        calibration=cal,
        findings=findings,
        noise=noise,
        warnings=warnings,
        settings=settings,
        inputs=paths,
        input_format=input_format,
        timings_s=timings,
        input_mask=roi_mask_in,
    )


def _read_input(inputs: Any, *, series: Any, phase: Any, echo_times_ms: Sequence[float] | None,
                field_strength_t: float | None) -> tuple[MultiEchoImage, list[str], str]:
    """Step 1 of :func:`analyze`: the image, its input paths and format, with the overrides applied."""
    if isinstance(inputs, MultiEchoImage):
        if series is not None:
            raise InputError("series: applies to DICOM paths, not to an image in memory")
        if phase is not None:
            raise InputError("phase: applies to NIfTI paths, not to an image in memory (set its phase_rad)")
        paths: list[str] = []
        img = inputs
        if echo_times_ms is not None:
            te = np.asarray(echo_times_ms, dtype=float).reshape(-1)
            if te.size != img.n_echoes:
                raise InputError(
                    f"echo_times_ms: {te.size} echo times given for {img.n_echoes} echoes"
                )
            img = replace(img, echo_times_s=te / 1e3)
        input_format = "memory"
    else:
        paths = _as_paths(inputs)
        img = load_input(paths, echo_times_ms, series, phase)
        input_format = "dicom" if img.source_datasets else "nifti"
    if img.n_echoes < 2:
        raise InputError(f"{_where(paths)}: {img.n_echoes} echo(es); R2 needs at least 2 echo times")
    if field_strength_t is not None:
        if not np.isfinite(field_strength_t) or field_strength_t <= 0:
            raise InputError(f"field_strength_t: must be a positive number of tesla, got {field_strength_t}")
        img = replace(img, field_strength_t=float(field_strength_t))
    return img, paths, input_format


def _check_before_fit(img: MultiEchoImage, paths: list[str], *, model: str, calibration: str | None,
                      calibration_file: Any, force: bool, warnings: list) -> tuple[str, list, Any]:
    """Step 2 of :func:`analyze`: the model, the protocol findings and the calibration curve.

    Everything that can refuse the input does so here, before the expensive fit;
    the warnings found are appended to ``warnings``.
    """
    from . import _gre
    from . import calibration as _cal
    from ._calibration_requirements import check_requirements, choose_calibration

    model_used, model_warnings = _gre.resolve_model(img, model, _where(paths))  # GRE -> fatwater
    warnings.extend(model_warnings)
    findings = _check_protocol(img, force, warnings)
    try:
        if calibration_file is not None:
            cal_ref: Any = Path(calibration_file)
        elif calibration is not None:
            cal_ref = calibration
        else:  # from the data: SE -> St Pierre, GRE 1.5 T -> Hernando, GRE 3 T refused naming the options
            cal_ref = choose_calibration(img, model_used)
    except CalibrationError as exc:
        raise CalibrationError(f"{_where(paths)}: {exc}") from None
    cal = _cal.get_calibration(cal_ref)  # its own errors name the curve or file
    covered = _cal.covered_protocol_codes(cal)  # a derived 3 T bridge: its own warning says it, once
    warnings[:] = [w for w in warnings if not any(w.startswith(f"protocol: {c}: ") for c in covered)]
    try:
        warnings.extend(_cal.check_applicability(cal, img))
        warnings.extend(check_requirements(cal, img, model_used, force=force))
    except CalibrationError as exc:  # name the input the curve does not fit
        raise CalibrationError(f"{_where(paths)}: {exc}") from None
    return model_used, findings, cal


def _resolve_noise(img: MultiEchoImage, paths: list[str], model_used: str, noise_sigma: float | None,
                   coils: int | None, warnings: list) -> tuple[Any, float | None, int | None]:
    """Step 3a of :func:`analyze`: the noise estimate, sigma and channel count the fit uses.

    Returns ``(noise, sigma, n_coils)``; ``noise`` is ``None`` when the user gave sigma
    or none could be estimated. The warnings found are appended to ``warnings``.
    """
    noise = None
    sigma: float | None
    if noise_sigma is None:
        from ._noise_correlation import correlation_warning
        from ._noise_estimate import NoBackgroundError
        from .noise import estimate_noise

        try:
            noise = estimate_noise(img)
        except NoBackgroundError as exc:
            # no air, and the tissue cannot pin the noise floor: never guess (issue 12)
            raise InputError(f"{_where(paths)}: {str(exc).removeprefix('img_or_array: ')}") from None
        except InputError as exc:
            warnings.append(f"noise: sigma could not be estimated ({exc}); the fit chooses its own model")
        if noise is not None and noise.method == "noise-free":
            warnings.append(f"noise: {noise.notes[0]}; the fit chooses its own model")
            noise = None
        if noise is not None and noise.method in ("tissue", "residual") and model_used == "fatwater":
            # those estimates fit mono-exponentials: on fatty liver their residuals hold the
            # fat-water beat too, an overestimate of sigma that biases the noise-corrected fit
            raise InputError(f"{_where(paths)}: no background of pure noise in the image, and the tissue "
                             "noise estimate is biased by fat for the fat-water fit; pass noise_sigma and "
                             "coils (command line --noise-sigma, --coils)")
        if noise is not None and (corr_warning := correlation_warning(noise.spatial_correlation, corrected=True)):
            warnings.append(corr_warning)  # the tile statistics carry it, R2 and fat-water R2* (r2mri/_corr_tiles.py)
        if noise is not None and noise.method == "tissue":
            warnings.append(f"noise: no background of pure noise in the image; {noise.notes[0]} "
                            f"(sigma {noise.sigma:.4g}, coils {noise.coils})")
        sigma = None if noise is None else float(noise.sigma)
        n_coils = coils if coils is not None else (None if noise is None else int(noise.coils))
        if noise is not None and noise.method == "residual" and coils is None:
            # see r2mri.fitting._fit._resolve_noise: the channel count cannot be recovered
            # from tissue residuals; 1 is assumed and R2 is underestimated at high iron on
            # root-sum-of-squares multi-channel data.
            warnings.append("noise: background zero-filled by the scanner, so sigma comes from tissue "
                            "residuals and the receiver channel count is unknown (1 assumed); for "
                            "root-sum-of-squares multi-channel images pass --coils N, or the LIC is "
                            "underestimated at high iron")
    else:
        if not np.isfinite(noise_sigma) or noise_sigma <= 0:
            raise InputError(f"noise_sigma: must be a positive number, got {noise_sigma}")
        sigma = float(noise_sigma)
        n_coils = int(coils or 1)
    return noise, sigma, n_coils


def _fit_liver(img: MultiEchoImage, model_used: str, roi_mask_in: np.ndarray | None, noise: Any,
               sigma: float | None, n_coils: int | None, *, threads: int | None, progress: Any,
               timings: dict) -> tuple[Any, int]:
    """Step 3b of :func:`analyze`: the voxel-wise fit (of the body, or of the user's mask).

    Returns ``(fit, n_air)``, ``n_air`` the voxels of air left unfitted; the
    ``"body_mask"`` and ``"fit"`` entries of ``timings`` are set here.
    """
    from .fitting import fit as _fit

    own_bar = _TqdmProgress() if progress is True else None
    if progress is False:
        progress = None
    t1 = time.perf_counter()
    # With a user mask only its voxels are fitted (the ROI rules and statistics use
    # nothing outside it). Without one, the air around the body is not fitted: noise-only
    # voxels are the slowest case of the noise-corrected fit and carry no liver.
    fit_mask = roi_mask_in
    n_air = 0
    if fit_mask is None and sigma is not None:
        air = air_around_body(img.data, sigma, n_coils or 1)
        n_air = int(np.count_nonzero(air))
        if n_air:
            fit_mask = ~air
    timings["body_mask"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    try:
        fit = _fit(
            img,
            model=model_used,
            mask=fit_mask,
            noise_sigma=sigma,
            coils=n_coils,
            threads=threads,
            progress=own_bar if own_bar is not None else progress,
        )
    finally:
        if own_bar is not None:
            own_bar.close()
    if noise is not None and str(fit.options.get("noise_method") or "").startswith("given"):
        # the fit was handed analyze's estimate: say where it came from, as the QC block does
        fit.options["noise_method"] = f"estimated by analyze ({noise.method})"
        fit.options["noise_estimate"] = noise.to_dict()
        if noise.method == "tissue":
            fit.options["noise_fallback"] = noise.notes[0]
    if fit.model == "fatwater" and fit.options.get("coils") is None:
        fit.options["coils"] = n_coils  # the pooled headline's noise model (r2mri._gre)
    timings["fit"] = time.perf_counter() - t1
    return fit, n_air


def _calibrate_and_summarise(img: MultiEchoImage, fit: Any, cal: Any, roi_mask_in: np.ndarray | None,
                             roi_options: dict | None, noise: Any, sigma: float | None, n_coils: int | None,
                             paths: list[str], warnings: list) -> tuple[np.ndarray, Any, Any, dict]:
    """Step 4 of :func:`analyze`: LIC map, liver ROI, statistics and the fit-quality check.

    Returns ``(lic_mg_per_g, roi, statistics, fit_quality)``; the warnings found are
    added to ``warnings`` (the fit-quality warning first).
    """
    from . import calibration as _cal
    from . import roi as _roi
    from . import stats as _stats

    calibrated = _cal.calibrate(fit.r2_per_s, cal)
    lic = np.asarray(calibrated.lic_mg_per_g, dtype=np.float32)
    roi = _roi.liver_roi(img, fit, mask=roi_mask_in, **{"calibration": cal, **(roi_options or {})})
    if int(np.count_nonzero(roi.mask)) == 0:
        raise InputError(f"{_where(paths)}: liver ROI is empty after exclusions")
    stats = _stats.liver_statistics(fit, roi, cal, image=img,  # correlated noise: r2mri/_corr_tiles.py
                                    noise_correlation=noise.spatial_correlation if noise is not None else None)
    widen_for_roi_sampling(stats, roi, fit, cal)  # the ROI is not the whole liver (issue 16)
    widen_for_dark_liver(stats, roi, fit, img, cal)  # nor the dark liver it left out (issue 16)
    warnings.extend(str(w) for w in getattr(stats, "warnings", []) or [])
    warnings.extend(str(w) for w in getattr(roi, "warnings", []) or [])
    from ._fit_quality import residual_check

    fit_quality, fq_warning = residual_check(fit, roi.mask, sigma, img.echo_times_s, n_coils)
    if fq_warning:  # first, so the page (which shows the first few) cannot drop it
        warnings.insert(0, fq_warning)
    return lic, roi, stats, fit_quality


def _where(paths: list[str]) -> str:
    if not paths:
        return "image"
    return paths[0] if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more)"
