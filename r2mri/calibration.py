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

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ._calibration_requirements import parse_built_on
from ._resources import calibration_dir
from ._toml import read_toml
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

DEFAULT_CALIBRATION = "st-pierre-2005"

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

#: Field strengths within this many tesla of a curve's field are accepted [D]: scanners
#: sold as 1.5 T report 1.494-1.5 T and "3 T" Siemens systems report 2.89 T, while 1.5 T and
#: 3 T are 1.5 T apart, so 0.25 T accepts every reported value of a nominal field and
#: still separates 1.5 T from 3 T.
FIELD_TOLERANCE_T = 0.25

#: What an unverified curve's label and warning say when its file gives no ``plain_status``.
_UNCHECKED = "formula not checked against the original paper"

_QUANTITIES = ("R2", "R2*", "T2*")
_SEQUENCES = ("SE", "GRE")
_ECHO_TRAINS = ("single", "any")
_KINDS = {
    "st-pierre": ("a", "b", "c", "p"),
    "linear": ("slope", "intercept"),
    "power": ("coefficient", "exponent"),
}


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


# --------------------------------------------------------------------------- the curve
@dataclass(frozen=True)
class Calibration:
    """One rate -> LIC calibration curve, read from a TOML file.

    Attributes
    ----------
    name : str
        Identifier (``"st-pierre-2005"``); the file stem for shipped curves.
    title : str
        One-line description for reports.
    quantity : {"R2", "R2*", "T2*"}
        The curve's own input. ``"T2*"`` curves take T2* in ms; the functions of this
        module still take the rate in s^-1 and convert (``T2* = 1000 / R2*``).
    field_strength_t : float
        Field strength the curve was derived at (T).
    sequence : {"SE", "GRE"}
        Spin echo (R2) or gradient echo (R2*, T2*).
    echo_train : {"single", "any"}
        ``"single"``: derived from single-echo spin-echo series; multi-echo (CPMG)
        trains are refused by :func:`check_applicability`.
    model_family : str
        How the rate was fitted in the calibration study.
    kind : {"st-pierre", "linear", "power"}
        Formula (``coefficients`` holds its parameters):
        ``st-pierre``: LIC = (a - sqrt(b - c x))^p; ``linear``: LIC = intercept +
        slope x; ``power``: LIC = coefficient x^exponent; x is the quantity (s^-1 or ms)
        after the field scaling.
    coefficients : dict
    rate_divisor : float
        Field scaling: the rate is divided by this before the formula (1.0 = none;
        1.47 for the 3 T bridge ``st-pierre-2005-3t-scaled``).
    rate_offset_per_s : float
        Field scaling offset: ``x = (rate - rate_offset_per_s) / rate_divisor`` (0.0 =
        none; -11 s^-1 for the 3 T R2* bridge, Storey et al. JMRI 2007).
    lic_min_mg_per_g, lic_max_mg_per_g : float or None
        Calibrated (validated) LIC range; ``None`` where the source states none.
    citation : dict
        ``authors, year, title, journal, location, doi, status, notes``.
    verified : bool
        ``False`` when the formula was not checked against the primary text.
    derived : bool
        ``True`` for curves derived here (not biopsy-validated), e.g. the 3 T bridge.
    source : str
        File the curve was read from.
    built_on : dict
        What the calibration study measured (``[built_on]``: ``fat_corrected``,
        ``fitting_model``, ``echo_time_first_ms``, ``echo_time_last_ms``,
        ``reference_standard``; ``"not stated"`` where its sources do not say), checked
        by :func:`r2mri._calibration_requirements.check_requirements`.
    """

    name: str
    title: str
    quantity: str
    field_strength_t: float
    sequence: str
    echo_train: str
    model_family: str
    kind: str
    coefficients: Mapping[str, float]
    rate_divisor: float = 1.0
    lic_min_mg_per_g: float | None = None
    lic_max_mg_per_g: float | None = None
    citation: Mapping[str, Any] = field(default_factory=dict)
    field_scaling: Mapping[str, Any] | None = None
    verified: bool = False
    derived: bool = False
    source: str = ""
    built_on: Mapping[str, Any] = field(default_factory=dict)
    rate_offset_per_s: float = 0.0

    # ---- domain -------------------------------------------------------------------
    @property
    def rate_domain_per_s(self) -> tuple[float, float]:
        """Rates (s^-1, before scaling) where the formula is real and LIC >= 0."""
        k, d, o = self.coefficients, self.rate_divisor, self.rate_offset_per_s
        if self.kind == "st-pierre":
            # base a - sqrt(b - c x) >= 0  <=>  x >= (b - a^2)/c ; sqrt real <=> x <= b/c
            lo = max((k["b"] - k["a"] ** 2) / k["c"], 0.0)
            return (max(lo * d + o, 0.0), k["b"] / k["c"] * d + o)
        if self.kind == "linear":
            lo = max(-k["intercept"] / k["slope"], 0.0)
            return (max(lo * d + o, 0.0), math.inf)
        return (max(o, 0.0), math.inf)  # power: any non-negative rate

    @property
    def lic_domain_mg_per_g(self) -> tuple[float, float]:
        """LIC values the formula reaches on :attr:`rate_domain_per_s`."""
        lo, hi = self.rate_domain_per_s
        lic_lo = float(self._forward(np.float64(lo)))
        if abs(lic_lo) < 1e-12:  # LIC = 0 at a root of the formula (rounding)
            lic_lo = 0.0
        return (lic_lo, float(self._forward(np.float64(hi))))

    @property
    def calibrated_rate_range_per_s(self) -> tuple[float | None, float | None]:
        """The calibrated LIC range mapped to rates (s^-1), ``None`` where unbounded."""
        lo = None if self.lic_min_mg_per_g is None else float(self._inverse(np.float64(self.lic_min_mg_per_g)))
        hi = None if self.lic_max_mg_per_g is None else float(self._inverse(np.float64(self.lic_max_mg_per_g)))
        return (lo, hi)

    # ---- formulas on clipped input ------------------------------------------------
    def _forward(self, rate: np.ndarray) -> np.ndarray:
        """LIC from a rate already inside the domain (no clipping here)."""
        k = self.coefficients
        x = (rate - self.rate_offset_per_s) / self.rate_divisor
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.quantity == "T2*":
                x = 1000.0 / x  # T2* in ms from R2* in s^-1
            if self.kind == "st-pierre":
                base = k["a"] - np.sqrt(np.maximum(k["b"] - k["c"] * x, 0.0))
                return np.power(np.maximum(base, 0.0), k["p"])
            if self.kind == "linear":
                return k["intercept"] + k["slope"] * x
            return k["coefficient"] * np.power(x, k["exponent"])

    def _inverse(self, lic: np.ndarray) -> np.ndarray:
        """Rate (s^-1) from an LIC already inside the LIC domain."""
        k = self.coefficients
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.kind == "st-pierre":
                u = k["a"] - np.power(np.maximum(lic, 0.0), 1.0 / k["p"])
                x = (k["b"] - u * u) / k["c"]
            elif self.kind == "linear":
                x = (lic - k["intercept"]) / k["slope"]
            else:
                x = np.power(lic / k["coefficient"], 1.0 / k["exponent"])
            if self.quantity == "T2*":
                x = 1000.0 / x  # R2* in s^-1 from T2* in ms
        return x * self.rate_divisor + self.rate_offset_per_s

    # ---- public, flagged ------------------------------------------------------------
    def lic(self, r2_per_s: Any) -> "CalibratedMap":
        """LIC with flags from rates in s^-1 (see :func:`calibrate`)."""
        r = np.asarray(r2_per_s, dtype=np.float64)
        finite = np.isfinite(r)
        lo, hi = self.rate_domain_per_s
        clipped = finite & ((r < lo) | (r > hi))
        rc = np.where(finite, np.clip(r, lo, hi), np.nan)
        out = self._forward(rc)
        out = np.where(finite, out, np.nan)
        return CalibratedMap(out, clipped, self._extrapolated(out, finite), self)

    def rate(self, lic_mg_per_g: Any) -> "CalibratedMap":
        """Rates in s^-1 with flags from LIC (``.lic_mg_per_g`` holds the LIC used).

        The returned :class:`CalibratedMap` carries the rate in ``r2_per_s``.
        """
        lic = np.asarray(lic_mg_per_g, dtype=np.float64)
        finite = np.isfinite(lic)
        lo, hi = self.lic_domain_mg_per_g
        clipped = finite & ((lic < lo) | (lic > hi))
        lc = np.where(finite, np.clip(lic, lo, hi), np.nan)
        rate = self._inverse(lc)
        rlo, rhi = self.rate_domain_per_s
        rate = np.where(finite, np.clip(rate, rlo, rhi), np.nan)  # guard rounding at edges
        ext = self._extrapolated(lic, finite)
        return CalibratedMap(lc, clipped, ext, self, r2_per_s=rate)

    def _extrapolated(self, lic: np.ndarray, finite: np.ndarray) -> np.ndarray:
        ext = np.zeros(lic.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.lic_min_mg_per_g is not None:
                ext |= lic < self.lic_min_mg_per_g
            if self.lic_max_mg_per_g is not None:
                ext |= lic > self.lic_max_mg_per_g
        return ext & finite

    # ---- reporting ------------------------------------------------------------------
    @property
    def label(self) -> str:
        """Title plus, in plain words, "derived, not biopsy-validated" or "formula not
        checked against the original paper" where it applies (said once: a derived curve's
        title already says it, and a derived curve is unchecked by construction)."""
        tag = ""
        if self.derived:
            tag = "" if "not biopsy-validated" in self.title else "derived, not biopsy-validated"
        elif not self.verified:
            tag = _UNCHECKED
        return self.title + (f"; {tag}" if tag else "")

    @property
    def reader_status(self) -> str:
        """How far the curve can be trusted, in plain English for the page and terminal.

        The evidence tags of ``citation.status`` ([C] confirmed, [R] widely quoted,
        [D] derived) stay in report.json for developers; this is what a radiologist
        reads: the ``citation.plain_status`` of the curve's file, else a generic
        sentence from ``derived`` / ``verified``. Empty for a verified, not derived curve.

        Examples
        --------
        >>> get_calibration("st-pierre-2005").reader_status
        'formula as widely quoted; the original paper was not available to check it'
        """
        if self.verified and not self.derived:
            return ""
        plain = str(self.citation.get("plain_status") or "").strip()
        if plain:
            return plain
        return "derived, not biopsy-validated" if self.derived else _UNCHECKED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description for report.json's ``calibration`` block."""
        rlo, rhi = self.calibrated_rate_range_per_s
        dlo, dhi = self.rate_domain_per_s
        return {
            "name": self.name,
            "title": self.title,
            "label": self.label,
            "quantity": self.quantity,
            "quantity_unit": "ms" if self.quantity == "T2*" else "1/s",
            "field_strength_t": self.field_strength_t,
            "sequence": self.sequence,
            "echo_train": self.echo_train,
            "model_family": self.model_family,
            "formula": {"kind": self.kind, **dict(self.coefficients)},
            "rate_divisor": self.rate_divisor,
            "rate_offset_per_s": self.rate_offset_per_s,
            "built_on": dict(self.built_on),
            "field_scaling": dict(self.field_scaling) if self.field_scaling else None,
            "range": {
                "lic_min_mg_per_g": self.lic_min_mg_per_g,
                "lic_max_mg_per_g": self.lic_max_mg_per_g,
                "rate_min_per_s": rlo,
                "rate_max_per_s": rhi,
            },
            "formula_domain_rate_per_s": [dlo, dhi if math.isfinite(dhi) else None],
            "citation": dict(self.citation),
            "verified": self.verified,
            "derived": self.derived,
            "source": self.source,
        }


@dataclass
class CalibratedMap:
    """Result of :func:`calibrate`: LIC plus per-voxel flags, all of the input's shape.

    Attributes
    ----------
    lic_mg_per_g : ndarray (float64)
        LIC; NaN exactly where the input was not finite.
    clipped : ndarray (bool)
        Input outside the formula's real domain, evaluated at the domain edge.
    extrapolated : ndarray (bool)
        LIC outside the curve's calibrated range (clipped values included).
    calibration : Calibration
    r2_per_s : ndarray or None
        The rate, when the map came from :meth:`Calibration.rate` (LIC -> rate).
    """

    lic_mg_per_g: np.ndarray
    clipped: np.ndarray
    extrapolated: np.ndarray
    calibration: Calibration
    r2_per_s: np.ndarray | None = None

    @property
    def extrapolated_fraction(self) -> float:
        """Fraction of finite values flagged extrapolated (0.0 when none are finite)."""
        n = int(np.count_nonzero(np.isfinite(self.lic_mg_per_g)))
        return float(np.count_nonzero(self.extrapolated)) / n if n else 0.0

    @property
    def clipped_fraction(self) -> float:
        """Fraction of finite values clipped to the formula's domain."""
        n = int(np.count_nonzero(np.isfinite(self.lic_mg_per_g)))
        return float(np.count_nonzero(self.clipped)) / n if n else 0.0


# --------------------------------------------------------------------------- loading
def _req(doc: Mapping[str, Any], key: str, types: tuple, where: str) -> Any:
    if key not in doc:
        raise CalibrationError(f"{where}: missing key {key!r}")
    value = doc[key]
    if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
        raise CalibrationError(f"{where}: key {key!r} has the wrong type ({type(value).__name__})")
    return value


def _from_document(doc: Mapping[str, Any], source: str) -> Calibration:
    where = f"calibration file {source}"
    version = doc.get("schema_version", 1)
    if version not in (1, 2):  # 2 adds [built_on] (r2mri._calibration_requirements)
        raise CalibrationError(f"{where}: schema_version {version!r} not supported (expected 1 or 2)")
    name = _req(doc, "name", (str,), where)
    quantity = _req(doc, "quantity", (str,), where)
    if quantity not in _QUANTITIES:
        raise CalibrationError(f"{where}: quantity {quantity!r} not one of {_QUANTITIES}")
    field_t = float(_req(doc, "field_strength_t", (int, float), where))
    if not field_t > 0:
        raise CalibrationError(f"{where}: field_strength_t must be > 0, got {field_t}")
    sequence = _req(doc, "sequence", (str,), where)
    if sequence not in _SEQUENCES:
        raise CalibrationError(f"{where}: sequence {sequence!r} not one of {_SEQUENCES}")
    if (quantity == "R2") != (sequence == "SE"):
        raise CalibrationError(
            f"{where}: quantity {quantity!r} does not match sequence {sequence!r} "
            "(R2 comes from spin echo, R2*/T2* from gradient echo)"
        )
    echo_train = doc.get("echo_train", "single" if sequence == "SE" else "any")
    if echo_train not in _ECHO_TRAINS:
        raise CalibrationError(f"{where}: echo_train {echo_train!r} not one of {_ECHO_TRAINS}")
    formula = _req(doc, "formula", (dict,), where)
    kind = _req(formula, "kind", (str,), where + " [formula]")
    if kind not in _KINDS:
        raise CalibrationError(f"{where}: formula kind {kind!r} not one of {tuple(_KINDS)}")
    coefs = {}
    for key in _KINDS[kind]:
        v = float(_req(formula, key, (int, float), where + " [formula]"))
        if not math.isfinite(v):
            raise CalibrationError(f"{where}: formula.{key} is not finite")
        coefs[key] = v
    # Every curve must increase with the rate (more iron, faster decay).
    if kind == "st-pierre" and not (coefs["a"] > 0 and coefs["b"] > 0 and coefs["c"] > 0 and coefs["p"] > 0):
        raise CalibrationError(f"{where}: st-pierre formula needs a, b, c, p > 0")
    if kind == "linear" and not coefs["slope"] > 0:
        raise CalibrationError(f"{where}: linear formula needs slope > 0 (LIC rising with the rate)")
    if kind == "power":
        if not coefs["coefficient"] > 0 or coefs["exponent"] == 0:
            raise CalibrationError(f"{where}: power formula needs coefficient > 0 and exponent != 0")
        rising = coefs["exponent"] < 0 if quantity == "T2*" else coefs["exponent"] > 0
        if not rising:
            raise CalibrationError(
                f"{where}: power formula must give LIC rising with the rate "
                f"(exponent {'< 0 for T2*' if quantity == 'T2*' else '> 0 for a rate'})"
            )
    scaling = doc.get("field_scaling")
    divisor, offset = 1.0, 0.0
    if scaling is not None:
        if not isinstance(scaling, dict):
            raise CalibrationError(f"{where}: [field_scaling] must be a table")
        divisor = float(_req(scaling, "rate_divisor", (int, float), where + " [field_scaling]"))
        if not divisor > 0:
            raise CalibrationError(f"{where}: field_scaling.rate_divisor must be > 0")
        offset = float(scaling.get("rate_offset_per_s", 0.0))
        if not math.isfinite(offset):
            raise CalibrationError(f"{where}: field_scaling.rate_offset_per_s must be finite")
    rng = doc.get("range", {}) or {}
    lo = rng.get("lic_min_mg_per_g")
    hi = rng.get("lic_max_mg_per_g")
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    if lo is not None and hi is not None and not lo < hi:
        raise CalibrationError(f"{where}: range lic_min_mg_per_g must be < lic_max_mg_per_g")
    citation = doc.get("citation", {}) or {}
    if not isinstance(citation, dict):
        raise CalibrationError(f"{where}: [citation] must be a table")
    verified = doc.get("verified", False)
    derived = doc.get("derived", False)
    if not isinstance(verified, bool) or not isinstance(derived, bool):
        raise CalibrationError(f"{where}: verified/derived must be true or false")
    return Calibration(
        name=name,
        title=str(doc.get("title", name)),
        quantity=quantity,
        field_strength_t=field_t,
        sequence=sequence,
        echo_train=echo_train,
        model_family=str(doc.get("model_family", "")),
        kind=kind,
        coefficients=coefs,
        rate_divisor=divisor,
        lic_min_mg_per_g=lo,
        lic_max_mg_per_g=hi,
        citation=dict(citation),
        field_scaling=dict(scaling) if scaling else None,
        verified=verified,
        derived=derived,
        source=source,
        built_on=parse_built_on(doc, where),
        rate_offset_per_s=offset,
    )


def _load_file(path: Path) -> Calibration:
    doc = read_toml(path, what="calibration file", error=CalibrationError)
    return _from_document(doc, str(path))


@functools.lru_cache(maxsize=None)
def _shipped(name: str) -> Calibration:
    return _load_file(calibration_dir() / f"{name}.toml")


def list_calibrations() -> list[str]:
    """Names of the shipped calibration curves.

    Examples
    --------
    >>> "st-pierre-2005" in list_calibrations()
    True
    """
    return sorted(p.stem for p in calibration_dir().glob("*.toml"))


def get_calibration(name_or_path: "str | Path | Calibration | None" = None) -> Calibration:
    """A calibration curve by shipped name, by TOML file path, or passed through.

    Parameters
    ----------
    name_or_path : str, Path, Calibration or None
        A shipped name (see :func:`list_calibrations`), a path to a TOML file with the
        schema of ``calibration/README.md`` (``--calibration-file``), or a
        :class:`Calibration` (returned as is). ``None`` gives ``"st-pierre-2005"``.

    Returns
    -------
    Calibration

    Raises
    ------
    CalibrationError
        Unknown name, unreadable file or a file that breaks the schema.

    Examples
    --------
    >>> cal = get_calibration("st-pierre-2005")
    >>> cal.quantity, cal.field_strength_t, cal.lic_max_mg_per_g
    ('R2', 1.5, 42.7)
    """
    if name_or_path is None:
        name_or_path = DEFAULT_CALIBRATION
    if isinstance(name_or_path, Calibration):
        return name_or_path
    if isinstance(name_or_path, Path) or (
        isinstance(name_or_path, str) and (name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path)
    ):
        return _load_file(Path(name_or_path))
    if not isinstance(name_or_path, str):
        raise CalibrationError(
            f"calibration: expected a name, a path or a Calibration, got {type(name_or_path).__name__}"
        )
    names = list_calibrations()
    if name_or_path not in names:
        raise CalibrationError(
            f"calibration: unknown curve {name_or_path!r}; shipped curves are {', '.join(names)} "
            "(or pass a path to a .toml file)"
        )
    return _shipped(name_or_path)


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
    else:
        b0 = float(field_strength_t)
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
            problems.append(f"derived at {cal.field_strength_t:g} T, the acquisition is at {b0:g} T{hint}")
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


#: Alias of :func:`check_applicability` (the name ``r2mri.analyze`` calls).
check_applicable = check_applicability
