"""Which relaxation rate a result holds (R2 or R2*), and every label derived from it.

One function, :func:`quantity_of`, decides; :func:`labels_of` gives the names the
writers use (page text, NIfTI file names, DICOM codes), so R2* data are never called
R2 anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["quantity_of", "labels_of", "Labels", "is_fatwater"]


def is_fatwater(result: Any) -> bool:
    """True when the fit is the fat-water model (``fit.model == "fatwater"``)."""
    return str(getattr(result.fit, "model", "")).lower() == "fatwater"


def quantity_of(result: Any) -> str:
    """``"R2*"`` for gradient-echo data (or a fat-water fit, or an R2*/T2* calibration), else ``"R2"``.

    The acquisition decides first: a spin echo gives R2 and a gradient echo R2*,
    whatever model was fitted. Without a known sequence, the fit model and then the
    calibration's quantity decide.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> quantity_of(NS(fit=NS(model="monoexp"), image=NS(sequence="GRE"), calibration=None))
    'R2*'
    >>> quantity_of(NS(fit=NS(model="ncchi"), image=NS(sequence="SE-CPMG"), calibration=None))
    'R2'
    """
    if is_fatwater(result):
        return "R2*"
    seq = str(getattr(result.image, "sequence", "") or "").upper()
    if seq.startswith("GRE"):
        return "R2*"
    if seq.startswith("SE"):
        return "R2"
    cal_q = str(getattr(result.calibration, "quantity", "") or "")
    return "R2*" if cal_q in ("R2*", "T2*") else "R2"


@dataclass(frozen=True)
class Labels:
    """Names of the rate in text, files and codes.

    Attributes
    ----------
    quantity : str
        ``"R2"`` or ``"R2*"`` (text, report.json ``quantity``).
    ascii : str
        ``"R2"`` or ``"R2star"``: file names (BIDS suffix ``R2map`` / ``R2starmap``).
    time : str, time_ascii : str
        ``"T2"`` / ``"T2*"`` and ``"T2"`` / ``"T2star"``.
    fatwater : bool
        The fit is the fat-water model (water, fat, PDFF maps exist).
    """

    quantity: str
    ascii: str
    time: str
    time_ascii: str
    fatwater: bool

    @property
    def rate_map(self) -> str:
        """BIDS-style name of the rate map (``R2map`` / ``R2starmap``)."""
        return f"{self.ascii}map"

    @property
    def std_map(self) -> str:
        """Name of the standard-error map (``desc-R2std_R2map`` / ``desc-R2starstd_R2starmap``)."""
        return f"desc-{self.ascii}std_{self.ascii}map"

    @property
    def time_map(self) -> str:
        return f"{self.time_ascii}map"


def labels_of(result: Any) -> Labels:
    """The :class:`Labels` of ``result`` (see :func:`quantity_of`)."""
    if quantity_of(result) == "R2*":
        return Labels("R2*", "R2star", "T2*", "T2star", is_fatwater(result))
    return Labels("R2", "R2", "T2", "T2", is_fatwater(result))
