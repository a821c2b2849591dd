"""The multi-peak fat spectrum as data: load it, scale it to a field, build its echo basis.

The spectrum ships beside this module (``liver-fat-6peak.toml``) with its published
source; frequencies are in ppm relative to water and are scaled to hertz with the
proton gyromagnetic ratio of :mod:`r2mri.io._headers` (CODATA 2018).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._toml import read_toml
from ..errors import InputError
from ..io._headers import PROTON_GYROMAGNETIC_MHZ_PER_T

__all__ = ["FatSpectrum", "load_fat_spectrum", "DEFAULT_SPECTRUM"]

#: Name of the spectrum used when none is given.
DEFAULT_SPECTRUM = "liver-fat-6peak"

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class FatSpectrum:
    """A multi-peak fat spectrum.

    Attributes
    ----------
    name : str
        Short name (the file stem).
    frequencies_ppm : tuple of float
        Chemical shift of each peak relative to water, ppm.
    relative_amplitudes : tuple of float
        Amplitude of each peak, normalised here to sum to 1 (so ``F`` is the total fat
        signal at ``t = 0``).
    verified : bool
        Whether the numbers were confirmed in a public source (see ``citation``).
    citation : dict
        Source, DOI and where the numbers were confirmed.

    Examples
    --------
    >>> from r2mri.fatwater import load_fat_spectrum
    >>> spec = load_fat_spectrum()
    >>> spec.name, len(spec.frequencies_ppm), round(sum(spec.relative_amplitudes), 12)
    ('liver-fat-6peak', 6, 1.0)
    >>> round(float(spec.frequencies_hz(1.5)[1]), 2)  # main methylene peak at 1.5 T
    -217.15
    """

    name: str
    frequencies_ppm: tuple[float, ...]
    relative_amplitudes: tuple[float, ...]
    verified: bool
    citation: dict

    def frequencies_hz(self, field_strength_t: float) -> np.ndarray:
        """Peak frequencies in Hz at ``field_strength_t``: ppm * 1e-6 * gamma * B0."""
        b0 = _check_field(field_strength_t)
        return np.asarray(self.frequencies_ppm) * PROTON_GYROMAGNETIC_MHZ_PER_T * b0

    def basis(self, echo_times_s, field_strength_t: float) -> np.ndarray:
        """Complex fat signal per unit ``F`` at each echo: ``sum_p a_p exp(i 2 pi f_p t)``.

        The magnitude model does not depend on the sign convention of the precession
        (conjugating the basis leaves ``|W + F c|`` unchanged for real W, F).
        """
        t = np.asarray(echo_times_s, dtype=np.float64)
        f = self.frequencies_hz(field_strength_t)
        a = np.asarray(self.relative_amplitudes)
        return np.exp(2j * np.pi * np.multiply.outer(t, f)) @ a


def _check_field(field_strength_t) -> float:
    try:
        b0 = float(field_strength_t)
    except (TypeError, ValueError):
        raise InputError(f"field_strength_t: not a number: {field_strength_t!r}") from None
    if not (math.isfinite(b0) and 0.0 < b0 <= 20.0):
        raise InputError(f"field_strength_t: expected a main field in tesla in (0, 20], got {field_strength_t!r}")
    return b0


def load_fat_spectrum(name_or_path: str | Path = DEFAULT_SPECTRUM) -> FatSpectrum:
    """Load a fat spectrum by name (shipped with r2mri) or from a TOML file path.

    Parameters
    ----------
    name_or_path : str or Path
        ``"liver-fat-6peak"`` (default) or a path to a TOML file with
        ``frequencies_ppm``, ``relative_amplitudes``, ``verified`` and ``[citation]``.

    Returns
    -------
    FatSpectrum

    Raises
    ------
    InputError
        Unknown name, unreadable file, missing keys, lengths that differ, negative or
        all-zero amplitudes.

    Examples
    --------
    >>> from r2mri.fatwater import load_fat_spectrum
    >>> load_fat_spectrum().frequencies_ppm[:2]
    (-3.8, -3.4)
    """
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = _HERE / f"{name_or_path}.toml"
        if not path.is_file():
            known = sorted(p.stem for p in _HERE.glob("*.toml"))
            raise InputError(f"fat spectrum: unknown name {str(name_or_path)!r}; shipped: {', '.join(known)}")
    doc = read_toml(path, what="fat spectrum")
    try:
        ppm = tuple(float(v) for v in doc["frequencies_ppm"])
        amp = np.array([float(v) for v in doc["relative_amplitudes"]])
        verified = bool(doc["verified"])
        citation = dict(doc["citation"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"fat spectrum {path}: missing or malformed entry ({exc})") from None
    if len(ppm) != amp.size or amp.size == 0:
        raise InputError(f"fat spectrum {path}: {len(ppm)} frequencies but {amp.size} amplitudes")
    if not (np.all(np.isfinite(amp)) and np.all(amp >= 0) and amp.sum() > 0
            and all(math.isfinite(v) for v in ppm)):
        raise InputError(f"fat spectrum {path}: amplitudes must be finite, >= 0 and not all zero")
    amp = amp / amp.sum()  # [D] so that F is the total fat signal at t = 0
    return FatSpectrum(name=str(doc.get("name", path.stem)), frequencies_ppm=ppm,
                       relative_amplitudes=tuple(float(v) for v in amp), verified=verified,
                       citation=citation)
