"""From relaxation rate to liver iron concentration (LIC): published calibrations.

Each curve is data, one TOML file per curve in the top-level ``calibration/`` folder
(shipped in the wheel as ``r2mri._calibration_data``; schema in
``calibration/README.md``). This module reads them, evaluates them in both directions
(rate -> LIC and LIC -> rate, exact inverses of each other), checks whether a curve
applies to an acquisition, and holds the clinical LIC categories and the unit factor.

Conventions
-----------
- Rates are always given in s^-1 (``r2_per_s``), whatever the curve's own quantity. A
  curve on T2* in milliseconds (Garbowski 2014) converts explicitly,
  ``T2*_ms = 1000 / R2*_per_s`` (see :func:`t2star_ms_from_r2star_per_s`).
- LIC is in mg Fe / g dry liver tissue (``lic_mg_per_g``); ``* UMOL_PER_MG`` gives umol/g.
- Never NaN for finite input. Rates outside the formula's real domain (St Pierre:
  6.85 < R2 <= 394.5 s^-1) are clipped to the domain edge; LIC outside the calibrated
  range is *extrapolated*. The plain functions :func:`lic_from_r2` and
  :func:`r2_from_lic` return values only; :func:`calibrate` returns the values with a
  ``clipped`` and an ``extrapolated`` mask. Non-finite input (NaN, +-inf, i.e. masked or
  failed voxels) gives NaN and is neither clipped nor extrapolated.

Every curve is monotonic increasing in the rate; the inverse is exact on the domain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# the curve, its files and its applicability live in sibling modules; their public names
# are this module's (r2mri.calibration.X)
from ._calibration_applicability import (FIELD_TOLERANCE_T, _sequence_kind, check_applicability,
                                         covered_protocol_codes, default_calibration)
from ._calibration_curve import CalibratedMap, Calibration
from ._calibration_files import DEFAULT_CALIBRATION, get_calibration, list_calibrations
from .errors import CalibrationError


__all__ = [
    "Calibration",
    "CalibratedMap",
    "LicCategory",
    "get_calibration",
    "list_calibrations",
    "lic_from_r2",
    "r2_from_lic",
    "calibrate",
    "check_applicability",
    "check_applicable",
    "default_calibration",
    "lic_category",
    "t2star_ms_from_r2star_per_s",
    "DEFAULT_CALIBRATION",
    "UMOL_PER_MG",
    "FE_MOLAR_MASS_G_PER_MOL",
    "THRESHOLDS_MG_PER_G",
    "THRESHOLDS_SOURCE",
    "CATEGORIES",
    "FIELD_TOLERANCE_T",
]

#: Molar mass of iron, g/mol (IUPAC standard atomic weight of Fe, 55.845).
FE_MOLAR_MASS_G_PER_MOL = 55.845
#: umol Fe per mg Fe: 1000 / 55.845 = 17.907 ~ 17.91 [D, domain.md section 4];
#: FerriScan reports LIC in both mg/g and umol/g dry tissue [C: K182218].
UMOL_PER_MG = 1000.0 / FE_MOLAR_MASS_G_PER_MOL

#: Clinical LIC thresholds, mg Fe / g dry tissue [C: St Pierre et al., Blood
#: 2005;105:855; clinical meaning after Olivieri & Brittenham, Blood 1997 [R]].
THRESHOLDS_MG_PER_G = (1.8, 3.2, 7.0, 15.0)
THRESHOLDS_SOURCE = (
    "Thresholds 1.8, 3.2, 7.0 and 15.0 mg Fe/g dry tissue: St Pierre TG et al., Blood "
    "2005;105(2):855-861; clinical meaning after Olivieri NF & Brittenham GM, Blood 1997 "
    "(not verified against the primary text)"
)




# --------------------------------------------------------------------------- categories
@dataclass(frozen=True)
class LicCategory:
    """One clinical LIC band ``(lower_mg_per_g, upper_mg_per_g]`` (upper-inclusive).

    ``lower_mg_per_g`` is ``None`` for the lowest band, ``upper_mg_per_g`` ``None``
    for the highest.
    """

    name: str
    label: str
    lower_mg_per_g: float | None
    upper_mg_per_g: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the band, all thresholds and their source."""
        return {
            "name": self.name,
            "label": self.label,
            "lower_mg_per_g": self.lower_mg_per_g,
            "upper_mg_per_g": self.upper_mg_per_g,
            "thresholds_mg_per_g": list(THRESHOLDS_MG_PER_G),
            "source": THRESHOLDS_SOURCE,
        }


#: The five bands of domain.md section 4, each upper-inclusive (<= 1.8 is normal). One
#: style for every label, "Meaning (band in mg/g)", short enough for one line of the page's
#: headline box (44 characters; the last band takes two); the meanings as in domain.md
#: section 4 (St Pierre 2005; clinical meaning after Olivieri & Brittenham, Blood 1997):
#: <= 1.8 the upper limit of normal, 3.2-7.0 the range aimed at in chelated patients.
CATEGORIES = (
    LicCategory("normal", "Normal (up to 1.8 mg/g)", None, 1.8),
    LicCategory("mildly-raised", "Mildly raised (1.8-3.2 mg/g)", 1.8, 3.2),
    LicCategory("target-range", "Chelation target range (3.2-7 mg/g)", 3.2, 7.0),
    LicCategory("increased-risk", "Increased risk of complications (7-15 mg/g)", 7.0, 15.0),
    LicCategory(
        "greatly-increased-risk",
        "Greatly increased risk of cardiac disease and early death (above 15 mg/g)",
        15.0,
        None,
    ),
)


def lic_category(lic_mg_per_g: float) -> LicCategory:
    """Clinical category of one LIC value.

    Parameters
    ----------
    lic_mg_per_g : float
        LIC in mg Fe / g dry tissue (finite).

    Returns
    -------
    LicCategory
        The band ``(lower, upper]`` that holds the value; see :data:`CATEGORIES`.

    Raises
    ------
    InputError
        If the value is not finite.

    Examples
    --------
    >>> lic_category(1.8).name, lic_category(5.0).name, lic_category(20).name
    ('normal', 'target-range', 'greatly-increased-risk')
    """
    value = float(lic_mg_per_g)
    if not math.isfinite(value):
        raise CalibrationError(f"lic_mg_per_g: expected a finite value, got {value}")
    for cat in CATEGORIES:
        if cat.upper_mg_per_g is None or value <= cat.upper_mg_per_g:
            return cat
    raise AssertionError("unreachable")  # pragma: no cover


def t2star_ms_from_r2star_per_s(r2star_per_s: Any) -> np.ndarray:
    """Convert R2* in s^-1 to T2* in ms: ``T2*_ms = 1000 / R2*_per_s``.

    Examples
    --------
    >>> float(t2star_ms_from_r2star_per_s(100.0))
    10.0
    """
    r = np.asarray(r2star_per_s, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 1000.0 / r


# --------------------------------------------------------------------------- functions
def calibrate(r2_per_s: Any, calibration: "str | Path | Calibration | None" = DEFAULT_CALIBRATION) -> CalibratedMap:
    """LIC from rates, with the clipped and extrapolated masks.

    Parameters
    ----------
    r2_per_s : array_like
        Relaxation rate in s^-1 (R2 for spin-echo curves, R2* for gradient-echo
        curves, also for T2* curves, which convert to T2* in ms themselves). NaN/inf
        (masked, failed voxels) give NaN.
    calibration : str, Path or Calibration
        Curve name, TOML path or object (:func:`get_calibration`).

    Returns
    -------
    CalibratedMap
        ``lic_mg_per_g`` (float64, NaN only where the input was not finite),
        ``clipped`` (outside the formula's domain, set to the edge value) and
        ``extrapolated`` (outside the calibrated LIC range).

    Examples
    --------
    >>> m = calibrate([5.0, 45.3, 300.0, 500.0])
    >>> m.lic_mg_per_g.round(2).tolist()
    [0.0, 1.8, 47.56, 125.38]
    >>> m.clipped.tolist(), m.extrapolated.tolist()
    ([True, False, False, True], [True, False, True, True])
    """
    return get_calibration(calibration).lic(r2_per_s)


def lic_from_r2(r2_per_s: Any, calibration: "str | Path | Calibration | None" = DEFAULT_CALIBRATION) -> Any:
    """LIC (mg Fe / g dry tissue) from relaxation rates (s^-1).

    Vectorised; the exact inverse of :func:`r2_from_lic` on the formula's domain.
    Finite rates outside the domain are clipped to its edge (never NaN); use
    :func:`calibrate` to get which values were clipped or extrapolated.

    Parameters
    ----------
    r2_per_s : float or array_like
        R2 (spin-echo curves) or R2* (gradient-echo and T2* curves) in s^-1.
    calibration : str, Path or Calibration, default "st-pierre-2005"

    Returns
    -------
    float or ndarray
        LIC in mg Fe / g dry tissue, a float for scalar input.

    References
    ----------
    .. [1] St Pierre TG et al. Noninvasive measurement and imaging of liver iron
       concentrations using proton magnetic resonance. Blood 2005;105(2):855-861.

    Examples
    --------
    >>> round(lic_from_r2(102.3), 2)
    7.0
    >>> lic_from_r2([45.3, 161.7]).round(1).tolist()
    [1.8, 15.0]
    """
    out = calibrate(r2_per_s, calibration).lic_mg_per_g
    return float(out) if out.ndim == 0 else out


def r2_from_lic(lic_mg_per_g: Any, calibration: "str | Path | Calibration | None" = DEFAULT_CALIBRATION) -> Any:
    """Relaxation rate (s^-1) from LIC (mg Fe / g dry tissue): the forward curve.

    Vectorised; the exact inverse of :func:`lic_from_r2`. LIC outside the values the
    formula reaches (St Pierre: 0 to 125.4 mg/g) is clipped to the edge, never NaN.
    Used by the phantom generator to map a true LIC to R2.

    Parameters
    ----------
    lic_mg_per_g : float or array_like
    calibration : str, Path or Calibration, default "st-pierre-2005"

    Returns
    -------
    float or ndarray
        The rate in s^-1 (R2 or R2*; for T2* curves R2* = 1000 / T2*_ms).

    Examples
    --------
    >>> round(r2_from_lic(7.0), 1)
    102.3
    >>> r2_from_lic([0.3, 42.7]).round(1).tolist()
    [18.0, 285.4]
    """
    out = get_calibration(calibration).rate(lic_mg_per_g).r2_per_s
    assert out is not None
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- applicability
#: Alias of :func:`check_applicability` (the name ``r2mri.analyze`` calls).
check_applicable = check_applicability
