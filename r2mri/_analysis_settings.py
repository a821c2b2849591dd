"""The ``settings`` of :class:`r2mri.analysis.AnalysisResult` and the check of ``roi_options``.

Moved out of ``r2mri/analysis.py`` (branch split3): the JSON-serialisable record of the
options :func:`r2mri.analyze` was given and resolved (``settings.json``, report.json).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import InputError


def _settings(paths: list[str], *, mask: Any, model: str, calibration: str | None, calibration_file: Any,
              field_strength_t: float | None, echo_times_ms: Sequence[float] | None, noise_sigma: float | None,
              coils: int | None, force: bool, series: Any, phase: Any, roi_options: dict | None,
              threads: int | None, cal: Any, sigma: float | None, n_coils: int | None, fit: Any, n_air: int,
              fit_quality: dict) -> dict:
    """The JSON-serialisable ``settings`` of :class:`AnalysisResult`: the options as given, and as resolved."""
    return {
        "inputs": paths,
        "options": {
            "mask": os.fspath(mask) if isinstance(mask, (str, os.PathLike)) else (
                None if mask is None else "<array>"
            ),
            "model": model,
            "calibration": None if calibration_file is not None else cal.name,
            "calibration_file": None if calibration_file is None else os.fspath(Path(calibration_file).resolve()),
            "field_strength_t": field_strength_t,
            "echo_times_ms": None if echo_times_ms is None else [float(t) for t in echo_times_ms],
            "noise_sigma": noise_sigma,
            "coils": coils,
            "force": bool(force),
            "series": _series_setting(series),
            "phase": phase if isinstance(phase, bool) or phase is None else (
                [os.fspath(p) for p in phase] if isinstance(phase, (list, tuple)) else os.fspath(phase)),
            "roi_options": dict(roi_options or {}),
            "threads": threads,
        },
        "resolved": {
            "noise_sigma": sigma,
            "coils": n_coils,
            "model": str(getattr(fit, "model", model)),
            "calibration": cal.name,
            "voxels_not_fitted_air": n_air,
            "fit_residual_ratio_to_sigma": fit_quality.get("ratio_to_sigma"),
        },
    }


def _check_roi_options(options: dict | None, func: Callable) -> None:
    """Refuse unknown ROI options by name (instead of a TypeError deep in the call)."""
    import inspect

    if not options:
        return
    params = inspect.signature(func).parameters
    allowed = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "mask"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"roi_options: unknown option(s) {', '.join(unknown)}; known: {', '.join(allowed)}")


def _series_setting(series: Any) -> list[str] | None:
    """``series`` as JSON (a list of strings) for ``settings``."""
    if series is None:
        return None
    if isinstance(series, (str, int)):
        return [str(series)]
    return [str(s) for s in series]
