"""report.json: the versioned, machine-readable report (schema in docs/report.md).

The dictionary is built from an :class:`r2mri.analysis.AnalysisResult`. Every
float that is not finite becomes ``null`` and the reason is recorded under
``null_reasons`` (JSON has no NaN; a script must never meet one).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
from typing import Any

import numpy as np

from .._version import __version__
from ._labels import labels_of

__all__ = ["SCHEMA_VERSION", "DISCLAIMER", "report_dict", "dumps"]

#: Version of the report.json layout. Bump the minor number when keys are added,
#: the major number when a key changes meaning or disappears.
#: 1.1: top-level ``quantity`` ("R2" or "R2*": the rate that ``r2_per_s`` holds) and,
#: for a fat-water fit, ``pdff_percent``; ``heterogeneity`` is reserved for the
#: heterogeneity block (docs/report.md).
#: 1.2: ``pdff_percent`` gains ``se``, ``voxel_mean``, ``mean_method`` and ``n_tiles``; its
#: ``mean`` is the tile-pooled fit's when the headline is tile-pooled (``mean_method``).
#: 1.3: ``category`` gains ``ci95_categories``, ``ci95_thresholds_mg_per_g``,
#: ``ci95_spans_threshold`` and ``ci95_note`` (the categories the headline's interval spans).
#: 1.4: the ``sigma_check`` block (the noise sigma's own error in the headline, r2mri/_sigma_check.py).
#: 1.6: ``headline.roi_sampling.left_out_lic_shift_pct`` (branch floorpiece) and
#: ``headline.mixture.s0_texture.unseen`` (branch s0fine30).
#: 1.7: ``roi.options.edge_ring`` (branch erosion) and, documented now, ``roi.options.edge_bays``
#: (branch edgelow, present since 1.6 without a version step).
SCHEMA_VERSION = "1.7"

#: Keys of the ``pdff_percent`` block (filled from the statistics; null when absent).
_PDFF_KEYS = ("mean", "se", "median", "sd", "voxel_mean", "n_voxels", "mean_method", "n_tiles")

DISCLAIMER = (
    "Research use only. r2mri is not a medical device and is not cleared for clinical use; "
    "results must be reviewed by a qualified reader."
)

#: 1 mg Fe/g = 1000/55.845 umol Fe/g (Fe molar mass 55.845 g/mol; domain.md section 4).
_UMOL_PER_MG_FALLBACK = 1000.0 / 55.845


# ----------------------------------------------------------------------------- helpers
def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and objects with ``to_dict`` to JSON types."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if hasattr(value, "__fspath__"):
        return str(value)
    return str(value)


def _scrub(value: Any, path: str, reasons: dict[str, str], default_reason: str) -> Any:
    """Replace non-finite floats by None, recording ``path -> reason``."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        reasons.setdefault(path, default_reason)
        return None
    if isinstance(value, dict):
        return {k: _scrub(v, f"{path}.{k}" if path else k, reasons, default_reason) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, f"{path}[{i}]", reasons, default_reason) for i, v in enumerate(value)]
    return value


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """First of ``names`` found on ``obj`` (attribute or mapping key); dotted paths allowed."""
    for name in names:
        cur = obj
        ok = True
        for part in name.split("."):
            if cur is None:
                ok = False
                break
            if isinstance(cur, dict):
                if part in cur:
                    cur = cur[part]
                else:
                    ok = False
                    break
            elif hasattr(cur, part):
                cur = getattr(cur, part)
            else:
                ok = False
                break
        if ok and cur is not None:
            return cur
    return default


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _stats_dict(statistics: Any) -> dict:
    if statistics is None:
        return {}
    if isinstance(statistics, dict):
        return statistics
    if hasattr(statistics, "to_dict"):
        return _plain(statistics.to_dict())
    return {}


# ----------------------------------------------------------------------------- blocks
def _te_ms(img: Any) -> list[float]:
    """Echo times in ms, rounded to 1 ns (undoes the s -> ms float noise, e.g. 9.000000000000002)."""
    return [round(float(t), 6) for t in img.echo_times_ms]


def _input_block(result: Any) -> dict:
    img = result.image
    meta = img.metadata or {}
    files = [str(f) for f in (result.inputs or [])]
    series = meta.get("series")
    if series is None:
        uids = meta.get("series_instance_uids") or (
            [meta["series_instance_uid"]] if meta.get("series_instance_uid") else []
        )
        series = [{"series_instance_uid": u} for u in uids]
    block = {
        "files": files,
        "format": result.input_format,
        "series": _plain(series),
        "echo_times_ms": _te_ms(img),
        "echo_files": _plain(meta.get("echo_files")) or None,
        "study_instance_uid": meta.get("study_instance_uid"),
        "patient_id": meta.get("patient_id"),
        "patient_name": None if meta.get("patient_name") is None else str(meta.get("patient_name")),
        "study_date": meta.get("study_date"),
        "study_description": meta.get("study_description"),
        "series_description": meta.get("series_description") or (
            (meta.get("series_descriptions") or [None])[0]
        ),
        "accession_number": meta.get("accession_number"),
        "shape": list(img.shape),
        "voxel_size_mm": [float(v) for v in img.voxel_size_mm],
    }
    return block


def _acquisition_block(result: Any) -> dict:
    img = result.image
    meta = img.metadata or {}
    tr_s = _float(meta.get("repetition_time_s"))
    return {
        "field_strength_t": _float(img.field_strength_t),
        "echo_times_ms": _te_ms(img),
        "repetition_time_ms": None if tr_s is None else tr_s * 1e3,
        "manufacturer": img.manufacturer,
        "sequence": img.sequence,
        "echo_train_length": img.echo_train_length,
        "flip_angle_deg": _float(meta.get("flip_angle_deg")),
    }


def _model_block(result: Any) -> dict:
    fit = result.fit
    options = _plain(getattr(fit, "options", {}) or {})
    return {
        "name": str(getattr(fit, "model", "unknown")),
        "requested": ((result.settings or {}).get("options") or {}).get("model"),
        "options": options,
    }


def _calibration_block(result: Any) -> dict:
    cal = result.calibration
    full = _plain(cal.to_dict()) if hasattr(cal, "to_dict") else {}
    rng = full.get("range") if isinstance(full.get("range"), dict) else {}
    lo = _get(cal, "lic_min_mg_per_g", default=rng.get("lic_min_mg_per_g"))
    hi = _get(cal, "lic_max_mg_per_g", default=rng.get("lic_max_mg_per_g"))
    if lo is None and hi is None:
        pair = _get(cal, "lic_range_mg_per_g")
        if pair is not None:
            lo, hi = pair
    citation = _get(cal, "citation")
    block = {
        "name": _get(cal, "name"),
        "label": full.get("label") or _get(cal, "title", "name"),
        "citation": _plain(citation),
        "citation_text": _citation_text(citation),
        "verified": bool(_get(cal, "verified", default=False)),
        "derived": bool(_get(cal, "derived", default=False)),
        "range": {
            "lic_min_mg_per_g": _float(lo),
            "lic_max_mg_per_g": _float(hi),
            "rate_min_per_s": _float(rng.get("rate_min_per_s")),
            "rate_max_per_s": _float(rng.get("rate_max_per_s")),
        },
    }
    for key, value in full.items():
        block.setdefault(key, value)
    from ._calibration_words import is_shipped

    block["shipped"] = is_shipped(block)  # False: a site curve (--calibration-file)
    return block


def _citation_text(citation: Any) -> str | None:
    """Short one-line citation "First author et al. Title. Journal. doi:..." from a dict."""
    if citation is None:
        return None
    if isinstance(citation, str):
        return citation
    if not isinstance(citation, dict):
        return str(citation)
    parts = []
    authors = str(citation.get("authors") or "").strip()
    if authors:
        names = [a.strip() for a in authors.split(",") if a.strip()]
        if len(names) == 2 and names[1].rstrip(".").lower() == "et al":  # "Hernando D, et al."
            parts.append(names[0] + " et al.")
        else:
            parts.append(names[0] + (" et al." if len(names) > 2 else (" and " + names[1] if len(names) == 2 else "")))
    if citation.get("title"):
        parts.append(str(citation["title"]).rstrip("."))
    journal = str(citation.get("journal") or "")
    year = citation.get("year")
    if year is not None and str(year) not in journal:
        journal = f"{journal} {year}".strip()
    if journal:
        parts.append(journal)
    if citation.get("doi"):
        parts.append(f"doi:{citation['doi']}")
    return ". ".join(p.rstrip(".") for p in parts) or None


def _roi_block(result: Any, stats: dict) -> dict:
    roi = result.roi
    mask = np.asarray(_get(roi, "mask"), dtype=bool)
    n = int(mask.sum())
    block = _plain(roi.to_dict()) if hasattr(roi, "to_dict") else {}
    if block.get("n_voxels") is None:
        block["n_voxels"] = n
    if block.get("volume_ml") is None:
        block["volume_ml"] = n * float(np.prod(result.image.voxel_size_mm)) / 1000.0
    block.setdefault("method", _get(roi, "method"))
    block.setdefault("automatic", bool(_get(roi, "automatic", default=False)))
    block.setdefault("removed", _plain(_get(roi, "removed", default={})))
    block["n_slices"] = int(np.count_nonzero(mask.any(axis=(0, 1))))
    sroi = stats.get("roi") if isinstance(stats.get("roi"), dict) else {}
    for key, value in sroi.items():
        block.setdefault(key, value)
    return block


def _pick(d: dict, *keys: str) -> Any:
    for key in keys:
        cur: Any = d
        for part in key.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return None


def report_dict(result: Any) -> dict:
    """The report.json content of an analysis (JSON types only, never NaN).

    Parameters
    ----------
    result : r2mri.analysis.AnalysisResult
        Output of :func:`r2mri.analyze`.

    Returns
    -------
    dict
        Layout documented in ``docs/report.md``; ``schema_version`` names it.
        Values that could not be computed are ``None`` with the reason in
        ``null_reasons`` (keyed by dotted path).

    Examples
    --------
    >>> import numpy as np, r2mri
    >>> from r2mri import phantom
    >>> from r2mri.report import report_dict
    >>> ph = phantom.generate(lic=2.5, matrix=(48, 48), pixel_mm=8.0, n_slices=2, seed=0)
    >>> outline = np.isin(ph.truth.labels, [phantom.LABELS["liver"], phantom.LABELS["vessel"]])
    >>> rep = report_dict(r2mri.analyze(ph.image, mask=outline))
    >>> rep["schema_version"], rep["quantity"], rep["calibration"]["name"], rep["category"]["name"]
    ('1.7', 'R2', 'st-pierre-2005', 'mildly-raised')
    """
    stats = _stats_dict(result.statistics)
    reasons: dict[str, str] = {}
    factor = _float(_get(stats, "umol_per_mg")) or _UMOL_PER_MG_FALLBACK

    r2, lic, umol = _rate_and_lic_blocks(stats, factor)

    category = _pick(stats, "category")
    if isinstance(category, str):
        category = {"label": category}

    qc = _qc_block(result, stats)

    labels = labels_of(result)
    rep = {
        "schema_version": SCHEMA_VERSION,
        "quantity": labels.quantity,
        "software": {
            "name": "r2mri",
            "version": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "created_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "disclaimer": DISCLAIMER,
        "input": _input_block(result),
        "acquisition": _acquisition_block(result),
        "model": _model_block(result),
        "calibration": _calibration_block(result),
        "roi": _roi_block(result, stats),
        "r2_per_s": r2,
        "lic_mg_per_g": lic,
        "lic_umol_per_g": umol,
        "category": category,
        "per_slice": _pick(stats, "per_slice"),
        "qc": qc,
        "warnings": [str(w) for w in (result.warnings or [])],
        "timings_s": result.timings_s,
    }
    if labels.fatwater:
        rep["pdff_percent"] = _pdff_block(stats, reasons)
    rep = _plain(rep)
    for key, value in stats.items():  # further statistics blocks, kept verbatim
        if key not in rep and key not in ("umol_per_mg",):
            rep[key] = _plain(value)
    rep = _scrub(rep, "", reasons, "not computable (no valid voxels in the ROI)")
    _null_reasons(rep, stats, lic, reasons)
    _interval_categories(rep, reasons)
    return rep


def _rate_and_lic_blocks(stats: dict, factor: float) -> tuple[dict, dict, dict]:
    """The ``r2_per_s``, ``lic_mg_per_g`` and ``lic_umol_per_g`` blocks (umol/g from mg/g by ``factor``)."""
    r2 = dict(_pick(stats, "r2_per_s") or {})
    lic = dict(_pick(stats, "lic_mg_per_g") or {})
    for key in ("mean", "median", "sd"):
        r2.setdefault(key, None)
        lic.setdefault(key, None)
    lic.setdefault("of_mean_r2", None)
    lic.setdefault("ci95", None)
    umol = dict(_pick(stats, "lic_umol_per_g") or {})
    for key in ("of_mean_r2", "mean", "median"):
        if umol.get(key) is None and _float(lic.get(key)) is not None:
            umol[key] = float(lic[key]) * factor
    if umol.get("ci95") is None and isinstance(lic.get("ci95"), (list, tuple)):
        umol["ci95"] = [None if _float(v) is None else float(v) * factor for v in lic["ci95"]]
    return r2, lic, umol


def _qc_block(result: Any, stats: dict) -> dict:
    """The ``qc`` block: protocol findings, noise, noise-floor fraction, fit failures, the statistics' QC."""
    qc_stats = dict(_pick(stats, "qc") or {})
    noise = result.noise
    fit_status = np.asarray(result.fit.status)
    qc = {
        "protocol_findings": [_plain(f) for f in (result.findings or [])],
        "forced": bool(((result.settings or {}).get("options") or {}).get("force", False)),
        "noise_sigma": _float(_get(noise, "sigma")) if noise is not None else _float(
            (getattr(result.fit, "options", {}) or {}).get("noise_sigma")
        ),
        "noise_coils": _get(noise, "coils") if noise is not None else (
            (getattr(result.fit, "options", {}) or {}).get("coils")
        ),
        "noise_method": _get(noise, "method") if noise is not None else (
            "given" if ((result.settings or {}).get("options") or {}).get("noise_sigma") is not None else None
        ),
        # lag correlation of the noise in the air (r2mri/_noise_correlation.py); None: not measured
        "noise_spatial_correlation": _plain(_get(noise, "spatial_correlation")) if noise is not None else None,
        "fraction_at_noise_floor": qc_stats.get("fraction_at_noise_floor"),
        "fit_failures": qc_stats.get("fit_failures"),
        "extrapolated_fraction": qc_stats.get("extrapolated_fraction"),
    }
    for key, value in qc_stats.items():
        qc.setdefault(key, value)
    if qc["fraction_at_noise_floor"] is None:
        from ..status import FitStatus

        fitted = fit_status != FitStatus.MASKED
        if fitted.any():
            qc["fraction_at_noise_floor"] = float(
                np.mean(fit_status[fitted] == FitStatus.BELOW_NOISE)
            )
    if qc["fit_failures"] is None:
        qc["fit_failures"] = _fit_failures(fit_status, result.roi, qc_stats)
    return qc


def _null_reasons(rep: dict, stats: dict, lic: dict, reasons: dict) -> None:
    """``rep["null_reasons"]``: why each ``None`` of the report is ``None`` (keyed by dotted path)."""
    explicit = _pick(stats, "null_reasons") or {}
    reasons.update({k: str(v) for k, v in explicit.items()})
    _heterogeneity_null_reasons(rep.get("heterogeneity"), reasons)
    rep["null_reasons"] = reasons
    _range_null_reasons(rep, reasons)
    for key in ("fraction_at_noise_floor", "extrapolated_fraction"):
        if "qc" in rep and rep["qc"].get(key) is None:
            reasons.setdefault(f"qc.{key}", "not computed: the statistics have no qc block (no ROI voxels)")
    if lic.get("of_mean_r2") is None and "lic_mg_per_g.of_mean_r2" not in reasons:
        reasons["lic_mg_per_g.of_mean_r2"] = "no headline: the statistics did not provide one"


def _interval_categories(rep: dict, reasons: dict) -> None:
    """The category block gains the categories its headline's 95 % interval spans
    (:mod:`r2mri._category_interval`); the headline's own category is left as it is."""
    from .._category_interval import interval_categories

    cat = rep.get("category")
    if not isinstance(cat, dict) or not cat.get("name"):
        return
    ci = (rep.get("lic_mg_per_g") or {}).get("ci95") or [None, None]
    span = interval_categories(*ci[:2]) if len(ci) >= 2 else None
    if span is None:
        span = dict.fromkeys(("ci95_categories", "ci95_thresholds_mg_per_g", "ci95_spans_threshold",
                              "ci95_note"))
        for key in span:
            reasons.setdefault(f"category.{key}", "the headline has no 95 % interval")
    elif span["ci95_note"] is None:
        reasons.setdefault("category.ci95_note", "the 95 % interval lies within one category")
    cat.update(span)


def _range_null_reasons(rep: dict, reasons: dict) -> None:
    """A calibration without a calibrated range: say so for its null bounds, and make
    ``qc.extrapolated_fraction`` null (nothing was checked; 0 would read as "none")."""
    cal = rep.get("calibration") or {}
    rng = cal.get("range") or {}
    name = cal.get("name")
    for key in ("lic_min_mg_per_g", "lic_max_mg_per_g", "rate_min_per_s", "rate_max_per_s"):
        if key in rng and rng[key] is None:
            reasons.setdefault(f"calibration.range.{key}", f"not stated in the sources of calibration {name}")
    if rng.get("lic_min_mg_per_g") is None and rng.get("lic_max_mg_per_g") is None and "qc" in rep:
        rep["qc"]["extrapolated_fraction"] = None
        reasons["qc.extrapolated_fraction"] = (f"not checked: calibration {name} states no calibrated LIC range")


def _heterogeneity_null_reasons(block: Any, reasons: dict) -> None:
    """Why the ``heterogeneity`` block has nulls (not measurable, or a CV at 0 without an SE)."""
    if not isinstance(block, dict):
        return
    for key in ("r2_cv_noise_corrected", "r2_cv_se", "r2_cv_ci95", "category_fractions",
                "different_category_fraction"):
        why = block.get("note") or (block.get("r2_cv_se_note") if key == "r2_cv_se" else None)
        if key in block and block[key] is None and why:
            reasons.setdefault(f"heterogeneity.{key}", str(why))


def _fit_failures(status: np.ndarray, roi: Any, qc_stats: dict) -> dict:
    """Failed fits in the liver candidate region (the ROI before its exclusion rules)."""
    from ..status import FitStatus

    failed_codes = [FitStatus.NOT_CONVERGED, FitStatus.TOO_FEW_ECHOES, FitStatus.BAD_INPUT]
    removed = int((_get(roi, "removed", default={}) or {}).get("fit_failed", 0))
    in_roi = int(qc_stats.get("fit_failures_in_roi", 0) or 0)
    candidate = _get(roi, "candidate")
    region = np.asarray(candidate, dtype=bool) if candidate is not None else np.asarray(_get(roi, "mask"), dtype=bool)
    n_candidate = int(_get(roi, "n_candidate", default=int(region.sum())) or 0)
    by = {}
    for code in failed_codes + [FitStatus.BOUND_HIT, FitStatus.BELOW_NOISE]:
        count = int(np.sum(status[region] == code))
        if count:
            by[code.name.lower()] = count
    n = removed + in_roi
    return {
        "n": n,
        "fraction": (n / n_candidate) if n_candidate else None,
        "n_removed_from_roi": removed,
        "n_in_roi": in_roi,
        "n_candidate": n_candidate,
        "by_status_in_candidate": by,
        "definition": "voxels of the liver candidate region whose fit did not converge, had too few "
                      "echoes or bad input (removed from the ROI before the statistics)",
    }


def dumps(rep: dict) -> str:
    """Serialise a report dict (strict JSON: raises if a NaN slipped through)."""
    return json.dumps(rep, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def _pdff_block(stats: dict, reasons: dict[str, str]) -> dict:
    """``pdff_percent`` (mean with its SE and method, median, sd and mean of voxel PDFF in the ROI, %;
    n_voxels, n_tiles) from the statistics."""
    block = dict(_pick(stats, "pdff_percent") or {})
    for key in _PDFF_KEYS:
        block.setdefault(key, None)
        if block[key] is None:
            reasons.setdefault(f"pdff_percent.{key}", "the statistics did not provide the liver PDFF")
    return block
