"""Does a calibration curve apply to an acquisition? Field, sequence and echo train.

Part of :mod:`r2mri.calibration`, which re-exports :func:`check_applicability`,
:func:`default_calibration`, :func:`covered_protocol_codes` and
:data:`FIELD_TOLERANCE_T` (import them from there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ._calibration_curve import Calibration
from ._calibration_files import DEFAULT_CALIBRATION, get_calibration
from .errors import CalibrationError

#: Field strengths within this many tesla of a curve's field are accepted [D]: scanners
#: sold as 1.5 T report 1.494-1.5 T and "3 T" Siemens systems report 2.89 T, while 1.5 T and
#: 3 T are 1.5 T apart, so 0.25 T accepts every reported value of a nominal field and
#: still separates 1.5 T from 3 T.
FIELD_TOLERANCE_T = 0.25


def _sequence_kind(sequence: str | None) -> str | None:
    if sequence is None:
        return None
    s = sequence.upper().replace("_", "-")
    if "CPMG" in s or "MESE" in s or "TSE" in s or "FSE" in s:
        return "SE-CPMG"
    if "GRE" in s or "GRADIENT" in s or s in ("GR", "MEGRE", "FFE", "FLASH", "SPGR"):
        return "GRE"
    if s.startswith("SE") or "SPIN" in s or s == "SSE":
        return "SE"
    return s


def check_applicability(
    calibration: "str | Path | Calibration | None",
    image: Any = None,
    *,
    field_strength_t: float | None = None,
    sequence: str | None = None,
    echo_train_length: int | None = None,
) -> list[str]:
    """Check that a curve applies to an acquisition; raise if it does not.

    Parameters
    ----------
    calibration : str, Path or Calibration
    image : MultiEchoImage, optional
        Source of ``field_strength_t``, ``sequence`` and ``echo_train_length`` (explicit
        keyword values win).
    field_strength_t : float, optional
        Must be within :data:`FIELD_TOLERANCE_T` of the curve's field.
    sequence : str, optional
        ``"SE"``, ``"GRE"``, ``"SE-CPMG"`` ... R2 curves need spin echo, R2*/T2* curves
        gradient echo.
    echo_train_length : int, optional
        ``> 1`` (a multi-echo spin-echo CPMG train, with stimulated echoes) is refused
        for curves derived from single-echo spin echo.

    Returns
    -------
    list of str
        Warnings for what could not be checked (unknown field or sequence) and for
        derived or unverified curves; empty when everything checks out.

    Raises
    ------
    CalibrationError
        Field strength, sequence or echo train incompatible with the curve.

    Examples
    --------
    >>> check_applicability("st-pierre-2005", field_strength_t=1.5, sequence="SE",
    ...                     echo_train_length=1)  # doctest: +ELLIPSIS
    ['calibration st-pierre-2005: formula as widely quoted; the original paper was not...']
    >>> check_applicability("st-pierre-2005", field_strength_t=3.0)
    Traceback (most recent call last):
    ...
    r2mri.errors.CalibrationError: calibration st-pierre-2005: derived at 1.5 T, the acquisition is at 3 T; ...
    """
    cal = get_calibration(calibration)
    if image is not None:
        field_strength_t = field_strength_t if field_strength_t is not None else getattr(image, "field_strength_t", None)
        sequence = sequence if sequence is not None else getattr(image, "sequence", None)
        if echo_train_length is None:
            echo_train_length = getattr(image, "echo_train_length", None)
    where = f"calibration {cal.name}"
    warnings: list[str] = []
    problems: list[str] = []  # every reason the curve does not apply, reported at once
    kind = _sequence_kind(sequence)
    train = int(echo_train_length) if echo_train_length is not None else None
    cpmg = cal.echo_train == "single" and (kind == "SE-CPMG" or (train is not None and train > 1 and kind != "GRE"))
    if field_strength_t is None:
        warnings.append(f"{where}: field strength of the acquisition unknown; assumed {cal.field_strength_t:g} T as the curve")
    elif (problem := _field_problem(cal, float(field_strength_t), cpmg)) is not None:
        problems.append(problem)
    _check_sequence(cal, kind, sequence, where, warnings, problems)
    if cpmg:
        problems.append(
            "derived from single-echo spin-echo R2, but this is a multi-echo spin-echo (CPMG) train"
            f"{'' if train is None else f' (echo_train_length={train})'} whose stimulated echoes bias R2; "
            "use a site-validated --calibration-file for this protocol"
        )
    if problems:
        raise CalibrationError(f"{where}: " + "; and ".join(problems))
    if cal.echo_train == "single" and kind in ("SE", None) and train is None:
        warnings.append(f"{where}: echo train length unknown; assumed single-echo spin echo as the curve")
    if cal.derived or not cal.verified:  # one plain warning (a derived curve is unchecked by construction)
        warnings.append(f"{where}: {cal.reader_status}")
    return warnings


def _field_problem(cal: Calibration, b0: float, cpmg: bool) -> str | None:
    """Why the curve's field does not fit an acquisition at ``b0`` tesla (with advice), or ``None``."""
    if abs(b0 - cal.field_strength_t) > FIELD_TOLERANCE_T:
        hint = ""
        if cpmg:
            hint = ""  # the 3 T bridge is single-echo too: the CPMG problem's advice covers it
        elif cal.name == DEFAULT_CALIBRATION and abs(b0 - 3.0) <= FIELD_TOLERANCE_T + 0.15:
            hint = (
                "; no biopsy-validated 3 T R2 curve is published: use a site-validated "
                "--calibration-file or the derived bridge 'st-pierre-2005-3t-scaled'"
            )
        elif cal.sequence == "GRE" and abs(b0 - 3.0) <= FIELD_TOLERANCE_T + 0.15:
            hint = ("; use a site-validated --calibration-file or the derived bridge "
                    "'hernando-2022-r2star-3t-scaled'")
        else:
            hint = "; choose a curve for this field or a site-validated --calibration-file"
        return f"derived at {cal.field_strength_t:g} T, the acquisition is at {b0:g} T{hint}"
    return None


def _check_sequence(cal: Calibration, kind: str | None, sequence: str | None, where: str, warnings: list[str],
                    problems: list[str]) -> None:
    """Spin-echo curve vs gradient-echo data and the reverse (``problems``), or an unknown sequence (``warnings``)."""
    if kind is None:
        warnings.append(f"{where}: sequence of the acquisition unknown; assumed {cal.sequence} as the curve")
    elif kind == "GRE" and cal.sequence == "SE":
        problems.append(
            f"a spin-echo R2 curve cannot calibrate gradient-echo data (sequence {sequence!r} gives R2*); "
            "use an R2* curve such as 'hernando-2022-r2star-1.5t'"
        )
    elif kind in ("SE", "SE-CPMG") and cal.sequence == "GRE":
        problems.append(f"an {cal.quantity} gradient-echo curve cannot calibrate spin-echo R2 (sequence {sequence!r})")
    elif kind not in ("SE", "SE-CPMG", "GRE"):
        warnings.append(f"{where}: sequence {sequence!r} not recognised; assumed {cal.sequence} as the curve")


def default_calibration(image: Any = None, *, field_strength_t: float | None = None,
                        sequence: str | None = None) -> str:
    """Name of the shipped curve to use when the user named none.

    1.5 T spin echo (or unknown) -> ``"st-pierre-2005"``; 1.5 T gradient echo ->
    ``"hernando-2022-r2star-1.5t"``. Anything else (notably 3 T) raises: the user must
    choose (``st-pierre-2005-3t-scaled`` is never picked silently).

    Raises
    ------
    CalibrationError
        No shipped curve is a safe default for this acquisition.

    Examples
    --------
    >>> default_calibration(field_strength_t=1.5, sequence="SE")
    'st-pierre-2005'
    """
    if image is not None:
        field_strength_t = field_strength_t if field_strength_t is not None else getattr(image, "field_strength_t", None)
        sequence = sequence if sequence is not None else getattr(image, "sequence", None)
    kind = _sequence_kind(sequence)
    if field_strength_t is not None and abs(float(field_strength_t) - 1.5) > FIELD_TOLERANCE_T:
        if kind == "GRE":  # R2*: the options differ (issue 15)
            from ._calibration_requirements import choose_calibration

            return choose_calibration(field_strength_t=field_strength_t, sequence="GRE")  # raises
        raise CalibrationError(
            f"calibration: no shipped biopsy-validated curve for {float(field_strength_t):g} T; pass "
            "--calibration-file (site-validated) or --calibration st-pierre-2005-3t-scaled (derived bridge)"
        )
    return "hernando-2022-r2star-1.5t" if kind == "GRE" else DEFAULT_CALIBRATION


def covered_protocol_codes(calibration: "Calibration | Mapping[str, Any]") -> frozenset[str]:
    """Protocol findings that do not apply as warnings once this curve was chosen.

    The protocol finding ``field-strength-3t`` ("no validated 3 T calibration ...; use a
    site-validated calibration or the derived 3 T curve") is advice on choosing a curve.
    A curve made for 3 T follows it: a derived 3 T bridge is warned about once, by
    :func:`check_applicability` ("derived, not biopsy-validated ..."), and a site curve
    for 3 T is what the advice asks for (repeating it read as if the shipped bridge were
    used). The finding is then left out of the warnings; it stays in report.json's
    protocol findings.

    Parameters
    ----------
    calibration : Calibration or dict
        The curve, or report.json's ``calibration`` block (``field_strength_t``).

    Examples
    --------
    >>> sorted(covered_protocol_codes(get_calibration("st-pierre-2005-3t-scaled")))
    ['field-strength-3t']
    >>> sorted(covered_protocol_codes({"derived": False, "field_strength_t": 3.0}))  # a site curve
    ['field-strength-3t']
    >>> covered_protocol_codes(get_calibration("st-pierre-2005"))
    frozenset()
    """
    get = calibration.get if isinstance(calibration, Mapping) else (lambda k: getattr(calibration, k, None))
    b0 = get("field_strength_t")
    if b0 is not None and abs(float(b0) - 3.0) <= FIELD_TOLERANCE_T:
        return frozenset({"field-strength-3t"})
    return frozenset()
