"""Protocol findings: acquisition features that would give a wrong or non-comparable LIC.

Every finding has a severity:

- ``"error"``: the decay curve itself is unreliable (fewer than 3 echoes; TR, flip
  angle, field strength or unreconciled scaling differing between the per-TE series).
  The dataset still loads, but analysis refuses it unless forced.
- ``"warning"``: the R2 is measurable but may not be comparable with the 1.5 T
  single-echo spin-echo calibration (CPMG echo train, 3 T, echo times other than
  FerriScan's, clipped voxels, receive coil differing...). Gradient-echo (R2*) data are
  judged by :mod:`r2mri.io._protocol_gre` instead of the FerriScan TE/TR rules.
- ``"info"``: worth printing in the report (FerriScan echo times matched, rescale
  factors applied per file, user-supplied echo times...).

The full table of codes is in ``docs/loading.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Finding", "check_protocol", "SEVERITIES", "FERRISCAN_ECHO_TIMES_MS"]

SEVERITIES = ("error", "warning", "info")

#: FerriScan 1.5 T single-echo spin-echo echo times, ms. Status [R] in
#: ../shared/domain.md section 2 (widely cited; primary protocol text not public).
FERRISCAN_ECHO_TIMES_MS = (6.0, 9.0, 12.0, 15.0, 18.0)
#: FerriScan TR, ms. Status [R], same source as above.
FERRISCAN_TR_MS = 1000.0
#: Echo times count as "the FerriScan set" when each is within this many ms
#: (our tolerance, not a published value: scanners round TE to 0.1-0.5 ms).
ECHO_TIME_TOL_MS = 0.5
#: Fewest echoes for a fit with any quality measure (a mono-exponential with offset has
#: 3 parameters): our rule, see docs/loading.md.
MIN_ECHOES = 3
#: Field strengths with (at least partly) published R2 behaviour, tesla
#: (domain.md sections 2 and 4: 1.5 T calibrations, 3 T field-scaling bridge).
KNOWN_FIELDS_T = (1.5, 3.0)
#: Our tolerance, the same as r2mri.calibration.FIELD_TOLERANCE_T [D]: 1.494 T Siemens Avanto
#: counts as 1.5 T and the 2.89 T Siemens "3 T" systems report counts as 3 T (at 0.1 T a
#: 2.8949 T in-vivo series was told "neither 1.5 T nor 3 T; no calibration applies" while
#: the calibration accepted it; benchmarks/real_liver.py).
FIELD_TOL_T = 0.25


@dataclass(frozen=True)
class Finding:
    """One protocol finding.

    Parameters
    ----------
    severity : {"error", "warning", "info"}
    code : str
        Stable kebab-case identifier (table in ``docs/loading.md``).
    message : str
        One line for humans.
    details : dict
        JSON-serialisable specifics (values compared, series involved).

    Examples
    --------
    >>> Finding("warning", "cpmg-echo-train", "echo train length 32").to_dict()["code"]
    'cpmg-echo-train'
    """

    severity: str
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity: expected one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form ``{"severity", "code", "message", "details"}``."""
        return {"severity": self.severity, "code": self.code, "message": self.message,
                "details": _jsonable(self.details)}

    def __str__(self) -> str:
        return f"[{self.severity}] {self.code}: {self.message}"


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _series_key(s: dict, i: int) -> str:
    """SeriesInstanceUID, else the first file (NIfTI sidecars often lack the UID)."""
    uid = s.get("series_instance_uid")
    if uid:
        return str(uid)
    files = s.get("files") or []
    return str(files[0]) if files else f"series {i + 1}"


def _distinct(series: list[dict], key: str, *, rtol: float = 0.0, atol: float = 0.0):
    """{series uid: value} when the values of ``key`` differ between series, else None."""
    vals = {}
    for i, s in enumerate(series):
        v = s.get(key)
        if v is None:
            continue
        vals[_series_key(s, i)] = v
    if len(vals) < 2:
        return None
    items = list(vals.values())
    first = items[0]
    for v in items[1:]:
        if isinstance(first, (int, float)) and isinstance(v, (int, float)):
            if not np.isclose(v, first, rtol=rtol, atol=atol):
                return vals
        elif v != first:
            return vals
    return None


def _left_out_finding(left: list[dict], te_list: list[float]) -> Finding:
    """``series-left-out``: series of the acquisition the automatic grouping did not use
    (``img.metadata["series_left_out"]``, from :func:`r2mri.io._grouping.left_out`)."""
    parts = []
    for s in left:
        te = s.get("echo_time_ms")
        te_txt = f", TE {te:g} ms" if isinstance(te, (int, float)) else ""
        why = "; ".join(str(r.get("text")) for r in s.get("reasons") or [])
        parts.append(f"{s.get('label')}{te_txt}: {why}")
    n = len(left)
    msg = (f"{n} series of this acquisition (same study, frame of reference and sequence) "
           f"left out of the dataset, which holds {len(te_list)} echoes {te_list} ms; "
           f"compared with {left[0].get('compared_with')}: {' | '.join(parts)}; "
           "choose the series explicitly with series= (command line --series N,N,...)")
    return Finding("error", "series-left-out", msg, {"series": left})


def check_protocol(img) -> list[Finding]:
    """Check a loaded acquisition against the FerriScan-style protocol.

    Parameters
    ----------
    img : MultiEchoImage
        As returned by :func:`r2mri.load` (metadata keys are used when present;
        images from other sources are checked on what they carry).

    Returns
    -------
    list of Finding
        Errors first, then warnings, then info.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri import MultiEchoImage
    >>> img = MultiEchoImage(np.ones((2, 2, 1, 5)), np.array([6, 9, 12, 15, 18]) * 1e-3,
    ...                      field_strength_t=1.5, sequence="SE", echo_train_length=1)
    >>> [f.code for f in check_protocol(img)]
    ['ferriscan-echo-times']
    """
    meta = img.metadata or {}
    te_ms = np.asarray(img.echo_times_s, float) * 1e3
    te_list = [round(float(t), 3) for t in te_ms]
    series = [s for s in meta.get("series", []) if isinstance(s, dict)]
    out: list[Finding] = []
    out += _echo_count_findings(te_list)
    out += _field_findings(img, series)
    out += _sequence_findings(img)
    out += _echo_time_findings(img, meta, te_ms, te_list)
    out += _per_series_findings(series)
    out += _scaling_findings(series, meta)
    out += _clipping_findings(img, meta)
    out += _loader_findings(meta, te_list)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    out.sort(key=lambda f: order[f.severity])
    return out


def _echo_count_findings(te_list: list[float]) -> list[Finding]:
    """Too few echoes for a fit with quality measures."""
    n = len(te_list)
    if n < MIN_ECHOES:
        return [Finding("error", "too-few-echoes",
                        f"{n} echoes; at least {MIN_ECHOES} are needed for a fit with quality measures",
                        {"n_echoes": n, "echo_times_ms": te_list})]
    return []


def _field_findings(img, series: list[dict]) -> list[Finding]:
    """Field strength: missing, 3 T, neither 1.5 T nor 3 T, or differing between series."""
    out: list[Finding] = []
    b0 = img.field_strength_t
    if b0 is None:
        out.append(Finding("warning", "field-strength-missing",
                           "magnetic field strength not recorded; calibration applicability cannot be checked"))
    elif abs(b0 - 3.0) <= FIELD_TOL_T:
        out.append(Finding("warning", "field-strength-3t",
                           f"{b0:g} T: r2mri ships no validated R2*-LIC calibration for 3 T; the 1.5 T curves "
                           "do not apply: use a site-validated calibration or the derived (not biopsy-validated) "
                           "3 T curve 'hernando-2022-r2star-3t-scaled'"
                           if img.sequence == "GRE" else
                           f"{b0:g} T: no biopsy-validated spin-echo R2-LIC calibration is published for 3 T; the "
                           "1.5 T curves do not apply: use a site-validated calibration or the derived (not "
                           "biopsy-validated) 3 T curve 'st-pierre-2005-3t-scaled'",
                           {"field_strength_t": b0}))
    elif abs(b0 - 1.5) > FIELD_TOL_T:
        out.append(Finding("warning", "field-strength-unsupported",
                           f"{b0:g} T is neither 1.5 T nor 3 T; no R2-LIC calibration applies",
                           {"field_strength_t": b0}))
    d = _distinct(series, "field_strength_t", atol=1e-3)
    if d:
        out.append(Finding("error", "field-strength-differs",
                           f"field strength differs between series: {sorted(set(d.values()))} T", {"per_series": d}))
    return out


def _sequence_findings(img) -> list[Finding]:
    """Sequence: gradient echo (judged by :mod:`._protocol_gre`), unknown, or a CPMG echo train."""
    out: list[Finding] = []
    seq = img.sequence
    etl = img.echo_train_length
    if seq == "GRE":  # R2* path: judged on what the fat-water fit needs (issue 15), not on FerriScan
        from ._protocol_gre import gre_findings

        out.append(Finding("info", "not-spin-echo",
                           "gradient-echo acquisition: the decay rate is R2* (fat-water model, R2* calibrations), "
                           "not the spin-echo R2 of the St Pierre calibration", {"sequence": seq}))
        out.extend(gre_findings(img))
    elif seq is None:
        out.append(Finding("info", "sequence-unknown", "sequence type (spin/gradient echo) not recorded"))
    if seq != "GRE" and ((etl is not None and etl > 1) or seq == "SE-CPMG"):
        out.append(Finding("warning", "cpmg-echo-train",
                           f"multi-echo spin-echo train (echo train length {etl if etl is not None else 'not recorded'}): "
                           "stimulated echoes make its R2 "
                           "differ from single-echo spin-echo R2; not comparable with single-echo calibrations",
                           {"echo_train_length": etl, "sequence": seq}))
    return out


def _echo_time_findings(img, meta: dict, te_ms: np.ndarray, te_list: list[float]) -> list[Finding]:
    """Echo times (and TR) against FerriScan: 1.5 T, or unknown field; spin echo or unknown sequence only."""
    out: list[Finding] = []
    b0 = img.field_strength_t
    n = int(te_ms.size)
    if img.sequence == "GRE":
        pass
    elif b0 is not None and abs(b0 - 1.5) <= FIELD_TOL_T:
        ref = np.asarray(FERRISCAN_ECHO_TIMES_MS)
        if n == ref.size and np.all(np.abs(te_ms - ref) <= ECHO_TIME_TOL_MS):
            out.append(Finding("info", "ferriscan-echo-times", "echo times match the FerriScan set 6/9/12/15/18 ms",
                               {"echo_times_ms": te_list}))
        else:
            out.append(Finding("warning", "echo-times-not-ferriscan",
                               f"echo times {te_list} ms differ from the FerriScan set "
                               f"{list(FERRISCAN_ECHO_TIMES_MS)} ms the St Pierre calibration was built with",
                               {"echo_times_ms": te_list, "expected_ms": list(FERRISCAN_ECHO_TIMES_MS)}))
        tr_s = meta.get("repetition_time_s")
        if isinstance(tr_s, (int, float)) and abs(tr_s * 1e3 - FERRISCAN_TR_MS) > 1.0:
            out.append(Finding("info", "repetition-time-not-ferriscan",
                               f"TR {tr_s * 1e3:g} ms differs from the FerriScan {FERRISCAN_TR_MS:g} ms",
                               {"repetition_time_ms": tr_s * 1e3}))
    elif b0 is None and n == len(FERRISCAN_ECHO_TIMES_MS) and np.all(
        np.abs(te_ms - np.asarray(FERRISCAN_ECHO_TIMES_MS)) <= ECHO_TIME_TOL_MS
    ):
        out.append(Finding("info", "ferriscan-echo-times", "echo times match the FerriScan set 6/9/12/15/18 ms",
                           {"echo_times_ms": te_list}))
    return out


#: Parameters that must not differ between the series of one decay curve (per-TE protocols):
#: (series key, finding code, severity, label, unit, rtol, atol, why).
_PER_SERIES_CHECKS = (
    ("repetition_time_ms", "repetition-time-differs", "error", "TR", "ms", 1e-3, 0.0,
     "changes T1 weighting per echo and corrupts the decay curve"),
    ("flip_angle_deg", "flip-angle-differs", "error", "flip angle", "deg", 0.0, 0.5,
     "changes signal scale per echo and corrupts the decay curve"),
    ("receive_coil", "receive-coil-differs", "warning", "receive coil", "", 0, 0,
     "coil sensitivity and gain may differ per echo"),
    ("transmit_coil", "transmit-coil-differs", "warning", "transmit coil", "", 0, 0,
     "B1 may differ per echo"),
    ("acquisition_matrix", "acquisition-matrix-differs", "warning", "acquisition matrix", "", 0, 0,
     "resolution and partial-volume differ per echo"),
    ("pixel_bandwidth_hz", "pixel-bandwidth-differs", "warning", "pixel bandwidth", "Hz", 1e-3, 0.0,
     "noise level differs per echo"),
    ("echo_train_length", "echo-train-length-differs", "warning", "echo train length", "", 0, 0,
     "series were acquired with different sequences"),
    ("bits_stored", "bits-stored-differs", "info", "BitsStored", "", 0, 0, "stored dynamic range differs"),
    ("sequence", "sequence-differs", "error", "sequence", "", 0, 0,
     "spin- and gradient-echo images do not make one decay curve"),
    ("mr_acquisition_type", "acquisition-type-differs", "warning", "MRAcquisitionType", "", 0, 0,
     "2D and 3D echoes have different slice profiles"),
)


def _per_series_findings(series: list[dict]) -> list[Finding]:
    """Acquisition parameters differing between series (:data:`_PER_SERIES_CHECKS`)."""
    out: list[Finding] = []
    for key, code, sev, label, unit, rtol, atol, why in _PER_SERIES_CHECKS:
        d = _distinct(series, key, rtol=rtol, atol=atol)
        if d:
            vals = sorted({str(v) for v in d.values()})
            out.append(Finding(sev, code, f"{label} differs between series ({', '.join(vals)} {unit}): {why}".replace(" )", ")"),
                               {"per_series": d}))
    return out


def _scaling_findings(series: list[dict], meta: dict) -> list[Finding]:
    """Rescale slopes/intercepts and Philips private scale slopes across series."""
    out: list[Finding] = []
    slopes = {_series_key(s, i): s.get("rescale_slopes") or [] for i, s in enumerate(series)}
    inters = {_series_key(s, i): s.get("rescale_intercepts") or [] for i, s in enumerate(series)}
    all_pairs = {(tuple(slopes[k]), tuple(inters.get(k, []))) for k in slopes}
    if len(all_pairs) > 1 or any(len(v) > 1 for v in slopes.values()):
        out.append(Finding("info", "rescale-differs",
                           "RescaleSlope/Intercept differ between files; applied per file before fitting",
                           {"rescale_slopes": slopes, "rescale_intercepts": inters}))
    ss = {_series_key(s, i): s.get("philips_scale_slopes") or [] for i, s in enumerate(series)}
    has = {k: v for k, v in ss.items() if v}
    if has:
        distinct = {v for vals in has.values() for v in vals}
        if len(has) < len(ss) and len(ss) > 1:
            out.append(Finding("error", "philips-scale-incomplete",
                               "Philips private scale slope present in some series only; echoes are not on one intensity scale",
                               {"philips_scale_slopes": ss}))
        elif len(distinct) > 1:
            if meta.get("philips_floating_point_values"):
                out.append(Finding("warning", "philips-scale-differs",
                                   "Philips private scale slope differs between echoes; all echoes converted to "
                                   "floating-point values FP = (PV*RS+RI)/(RS*SS) (as dcm2niix does)",
                                   {"philips_scale_slopes": ss}))
            else:
                out.append(Finding("error", "philips-scale-differs",
                                   "Philips private scale slope differs between echoes and was not reconciled",
                                   {"philips_scale_slopes": ss}))
    return out


def _clipping_findings(img, meta: dict) -> list[Finding]:
    """Voxels at the maximum stored value (clipped by the scanner)."""
    clipped = meta.get("clipped_voxels_per_echo")
    if clipped and any(c for c in clipped):
        n_vox = int(np.prod(img.shape))
        worst = int(max(clipped))
        return [Finding("warning", "clipped-voxels",
                        f"{worst} voxels ({100.0 * worst / n_vox:.2g} %) at the maximum stored value "
                        f"{meta.get('max_stored_value_per_echo', [None])[int(np.argmax(clipped))]} in the worst echo; "
                        "exclude them from fitting",
                        {"clipped_voxels_per_echo": list(clipped), "voxels_per_echo": n_vox,
                         "max_stored_value_per_echo": meta.get("max_stored_value_per_echo")})]
    return []


def _loader_findings(meta: dict, te_list: list[float]) -> list[Finding]:
    """What the loader recorded: contradicting headers, series left out or of another study, user echo times."""
    out: list[Finding] = []
    # headers that contradict each other or the data (r2mri.io._headers, docs/loading.md)
    for h in meta.get("header_findings") or []:
        if isinstance(h, dict) and h.get("severity") in SEVERITIES:
            out.append(Finding(h["severity"], str(h.get("code")), str(h.get("message")), dict(h.get("details") or {})))

    left = [s for s in meta.get("series_left_out") or [] if isinstance(s, dict)]
    if left:
        out.append(_left_out_finding(left, te_list))
    from ._other_study import findings as _other_study_findings

    out += _other_study_findings(meta)  # series of another patient or study, named

    if meta.get("echo_times_overridden"):
        out.append(Finding("info", "echo-times-from-user", f"echo times {te_list} ms given by the user",
                           {"echo_times_ms": te_list}))
    return out
