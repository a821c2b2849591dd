"""What a calibration curve was built on, and whether an analysis meets it (issue 15).

Each curve file (schema 2, ``calibration/README.md``) declares in ``[built_on]`` how
the rate it takes was measured in its calibration study: whether fat was modelled
(``fat_corrected``), the fitting model, the first and last echo time, and the
reference standard the LIC came from. Values a source does not give are the string
``"not stated"`` (never guessed). Version-1 files load with every entry "not stated".

:func:`check_requirements` compares an analysis with those declarations and refuses a
curve the data do not meet (one line naming ``--force``); with ``force`` the refusal
becomes a warning. Field strength and sequence family are checked by
:func:`r2mri.calibration.check_applicability` (never overridable: another curve is the
answer there). :func:`choose_calibration` picks the default curve from the data.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from .errors import CalibrationError

__all__ = ["NOT_STATED", "parse_built_on", "check_requirements", "choose_calibration",
           "ECHO_TIME_TOL_MS", "GRE_3T_BRIDGE"]

#: The value of a ``[built_on]`` entry the curve's sources do not give.
NOT_STATED = "not stated"

#: Echo times within this many ms of a curve's declared first/last echo count as inside
#: its range [D, design choice: the tolerance r2mri.io.protocol uses for the FerriScan set,
#: scanners round TE to 0.1-0.5 ms].
ECHO_TIME_TOL_MS = 0.5

#: The shipped 3 T R2* curve (a field-scaling bridge, derived, not biopsy-validated).
GRE_3T_BRIDGE = "hernando-2022-r2star-3t-scaled"

_TYPES: dict[str, tuple[type, ...]] = {
    "fat_corrected": (bool,),
    "fitting_model": (str,),
    "echo_time_first_ms": (int, float),
    "echo_time_last_ms": (int, float),
    "reference_standard": (str,),
}


def parse_built_on(doc: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``[built_on]`` table of a calibration document, validated.

    Schema 1 files have none: every entry is ``"not stated"``. Schema 2 files must have
    the table with every key (a value or ``"not stated"``).

    Raises
    ------
    CalibrationError
        Missing table or key (schema 2), wrong type, echo times not positive or first > last.
    """
    version = doc.get("schema_version", 1)
    table = doc.get("built_on")
    if table is None:
        if version >= 2:
            raise CalibrationError(f"{where}: schema_version 2 needs a [built_on] table "
                                   f"(keys {', '.join(_TYPES)}; use \"{NOT_STATED}\" where the source does not say)")
        return {key: NOT_STATED for key in _TYPES}
    if not isinstance(table, dict):
        raise CalibrationError(f"{where}: [built_on] must be a table")
    out: dict[str, Any] = {}
    for key, types in _TYPES.items():
        if key not in table:
            if version >= 2:
                raise CalibrationError(f"{where}: [built_on] misses {key!r} "
                                       f"(use \"{NOT_STATED}\" if the source does not say)")
            out[key] = NOT_STATED
            continue
        v = table[key]
        if v == NOT_STATED:
            out[key] = NOT_STATED
            continue
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise CalibrationError(f"{where}: [built_on] {key} must be {' or '.join(t.__name__ for t in types)} "
                                   f"or \"{NOT_STATED}\", got {v!r}")
        if key.startswith("echo_time") and not (math.isfinite(float(v)) and float(v) > 0):
            raise CalibrationError(f"{where}: [built_on] {key} must be a positive number of ms, got {v!r}")
        out[key] = float(v) if key.startswith("echo_time") else v
    unknown = sorted(set(table) - set(_TYPES) - {"notes"})
    if unknown:
        raise CalibrationError(f"{where}: [built_on] unknown key(s) {', '.join(unknown)}; "
                               f"known: {', '.join(_TYPES)}, notes")
    if "notes" in table:
        out["notes"] = str(table["notes"])
    lo, hi = out["echo_time_first_ms"], out["echo_time_last_ms"]
    if isinstance(lo, float) and isinstance(hi, float) and lo > hi:
        raise CalibrationError(f"{where}: [built_on] echo_time_first_ms {lo:g} > echo_time_last_ms {hi:g}")
    return out


def _curve_words(cal: Any) -> str:
    """"a 1.5 T curve, Hernando D et al. 2022": the curve's field strength and source, for a
    warning a radiologist reads (the full citation is on the page's QC notes)."""
    cit = dict(getattr(cal, "citation", None) or {})
    names = [a.strip() for a in str(cit.get("authors") or "").split(",") if a.strip()]
    first = names[0] if names else ""
    if first and len(names) > 1 and "et al" not in first:
        first += " et al."
    source = " ".join(str(p) for p in (first, cit.get("year") or "") if p)
    if not source:
        return f"a {float(cal.field_strength_t):g} T curve"
    how = " derived from" if getattr(cal, "derived", False) else ","  # a bridge is not its paper's curve
    return f"a {float(cal.field_strength_t):g} T curve{how} {source}"


def check_requirements(cal: Any, image: Any, fit_model: str, *, force: bool = False) -> list[str]:
    """Check that an analysis meets what ``cal`` was built on; refuse, or warn with ``force``.

    Requirements (from ``cal.built_on``):

    - ``fat_corrected = true``: the rate must come from the fat-water model
      (``fit_model == "fatwater"``): a plain exponential R2* of a fatty liver is biased
      (docs/fatwater.md). A fat-water R2* on a curve built without fat correction, or
      with "not stated", gives a warning (the same for a fat-free liver, different
      for a fatty one).
    - echo times: the acquisition's echo times must overlap the curve's
      ``[echo_time_first_ms, echo_time_last_ms]`` (refused otherwise); a train reaching
      beyond that range by more than :data:`ECHO_TIME_TOL_MS` gives a warning.

    Parameters
    ----------
    cal : Calibration
    image : MultiEchoImage
        Source of the echo times.
    fit_model : str
        The model that produced the rate (``FitResult.model``).
    force : bool
        Turn refusals into warnings (``"... overridden with force: ..."``).

    Returns
    -------
    list of str
        Warnings for the report.

    Raises
    ------
    CalibrationError
        A requirement is not met and ``force`` is false (one line naming ``--force``).

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri import MultiEchoImage
    >>> from r2mri.calibration import get_calibration
    >>> img = MultiEchoImage(np.ones((1, 1, 1, 5)), np.arange(6, 19, 3) / 1e3, sequence="SE")
    >>> check_requirements(get_calibration("st-pierre-2005"), img, "ncchi")
    []
    """
    built = dict(getattr(cal, "built_on", None) or {})
    where = f"calibration {cal.name}"
    problems: list[str] = []
    warnings: list[str] = []
    fat = built.get("fat_corrected", NOT_STATED)
    if fat is True and fit_model != "fatwater":
        problems.append(f"built on fat-corrected R2* ({built.get('fitting_model', NOT_STATED)}), but the rate comes "
                        f"from model {fit_model!r} without fat (biased in a fatty liver); use model 'fatwater'")
    elif fit_model == "fatwater" and fat is not True:
        state = ("was built on R2* measured without fat correction" if fat is False else
                 "does not say, in the sources r2mri could read, whether its R2* was fat-corrected")
        # for the radiologist: which curve, its field and source; the fact; what it means
        warnings.append(f"{where} ({_curve_words(cal)}) {state}. This report's R2* comes from a fat-water "
                        "fit, which separates the fat signal; the two agree only in a liver without fat, so "
                        "with liver fat the LIC may differ from what the curve's own method would give")
    te_ms = np.asarray(getattr(image, "echo_times_s", []), dtype=np.float64) * 1e3
    lo, hi = built.get("echo_time_first_ms", NOT_STATED), built.get("echo_time_last_ms", NOT_STATED)
    if te_ms.size and isinstance(lo, float) and isinstance(hi, float):
        t1, tn = float(te_ms[0]), float(te_ms[-1])
        if tn < lo - ECHO_TIME_TOL_MS or t1 > hi + ECHO_TIME_TOL_MS:
            problems.append(f"built on echo times {lo:g}-{hi:g} ms, the acquisition's {t1:g}-{tn:g} ms do not "
                            "overlap them (rates of other echo trains are not comparable)")
        elif t1 < lo - ECHO_TIME_TOL_MS or tn > hi + ECHO_TIME_TOL_MS:
            warnings.append(f"{where}: built on echo times {lo:g}-{hi:g} ms; the acquisition's {t1:g}-{tn:g} ms "
                            "reach beyond them")
    if problems:
        text = "; and ".join(problems)
        if not force:
            raise CalibrationError(f"{where}: {text}; use --force / force=True to calibrate anyway "
                                   "(reported as a warning), or choose another curve")
        warnings.insert(0, f"{where}: requirement overridden with force: {text}")
    return warnings


def choose_calibration(image: Any = None, fit_model: str | None = None, *,
                       field_strength_t: float | None = None, sequence: str | None = None) -> str:
    """The shipped curve :func:`r2mri.analyze` uses when none is named.

    Spin echo or unknown sequence -> ``st-pierre-2005`` (at another field than 1.5 T
    :func:`r2mri.calibration.check_applicability` then refuses it naming the SE options);
    gradient echo at 1.5 T (or unknown field) -> ``hernando-2022-r2star-1.5t``; gradient
    echo at another field raises with the options named: a derived 3 T bridge is never
    picked silently.

    Raises
    ------
    CalibrationError
        No shipped biopsy- or reference-validated curve for this field.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri import MultiEchoImage
    >>> img = MultiEchoImage(np.ones((1, 1, 1, 6)), np.arange(1, 7) / 1e3, field_strength_t=1.5, sequence="GRE")
    >>> choose_calibration(img, "fatwater")
    'hernando-2022-r2star-1.5t'
    """
    from . import calibration as _cal

    b0 = field_strength_t if field_strength_t is not None else getattr(image, "field_strength_t", None)
    seq = sequence if sequence is not None else getattr(image, "sequence", None)
    gre = _cal._sequence_kind(seq) == "GRE" or fit_model == "fatwater"
    if not gre:
        return _cal.DEFAULT_CALIBRATION
    if b0 is not None and abs(float(b0) - 1.5) > _cal.FIELD_TOLERANCE_T:
        near3 = abs(float(b0) - 3.0) <= _cal.FIELD_TOLERANCE_T
        raise CalibrationError(
            f"calibration: no shipped validated R2* curve for {float(b0):g} T; pass --calibration-file "
            "(site-validated)" + (f" or --calibration {GRE_3T_BRIDGE} (field-scaling bridge, derived, not "
                                  "biopsy-validated)" if near3 else ""))
    return "hernando-2022-r2star-1.5t"
