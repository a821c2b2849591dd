"""One calibration curve (:class:`Calibration`) and its result on a map (:class:`CalibratedMap`).

Part of :mod:`r2mri.calibration`, which re-exports both (import them from there); the
curves are read by :mod:`r2mri._calibration_files`. Conventions (units, clipping,
extrapolation) in the docstring of :mod:`r2mri.calibration`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

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
        >>> from r2mri.calibration import get_calibration
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
