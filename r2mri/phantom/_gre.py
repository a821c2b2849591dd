"""Gradient echo with fat and a B0 field: water/fat maps, field map and the complex signal.

The signal of a voxel at echo time t (Yu H, Shimakawa A, McKenzie CA, Brodsky E,
Brittain JH, Reeder SB. Multiecho water-fat separation and simultaneous R2*
estimation with multifrequency fat spectrum modeling. MRM 2008;60:1122-1134: multi-peak
fat, one R2* for water and fat, field map term)::

    s(t) = (W + F c(t)) exp(-R2* t) exp(i 2 pi psi t),   c(t) = sum_p a_p exp(i 2 pi f_p t)

with the fat basis ``c`` of :meth:`r2mri.fatwater.FatSpectrum.basis` (the shipped
6-peak liver spectrum by default) and the off-resonance ``psi`` (Hz) of the field map.
Its magnitude is :func:`r2mri.fatwater.magnitude_signal` exactly (the field term has
unit modulus; tested). Sign convention: phase advances as ``+2 pi f t`` for a
frequency ``f`` (the convention of ``FatSpectrum.basis``); scanners differ in the sign
they write, see docs/phantoms.md. No initial phase: ``arg s(0) = 0`` for W, F > 0.
PDFF is the signal fat fraction ``F / (W + F)`` at t = 0: water and fat share the
T1 weighting folded into the tissue's proton density (no T1 bias is simulated).
"""

from __future__ import annotations

import numpy as np

from ..fatwater import load_fat_spectrum
from ._anatomy import LABELS

__all__ = ["TISSUE_FAT_FRACTION", "fat_fraction_map", "field_map_hz", "complex_signal"]

#: Signal fat fraction of the fat-bearing tissues other than the liver. ILLUSTRATIVE,
#: UNVERIFIED: subcutaneous fat is fat-dominant (most of its signal is fat) and the
#: vertebral body holds fatty marrow; the numbers are our choice, not measurements.
#: The anatomy has no separate visceral-fat label (viscera are one "soft tissue" class
#: without fat). They only shape the picture; the liver truth is ``pdff_percent``.
TISSUE_FAT_FRACTION = {
    LABELS["subcutaneous_fat"]: 0.90,
    LABELS["bone"]: 0.40,
}

# Field-map shape (illustrative): a Gaussian bump of 150 mm width centred above the
# right liver dome (LPS mm), where the lung-liver susceptibility step sits, plus a
# left-right linear term of a quarter of the bump; scaled so that the largest
# |off-resonance| over the body is exactly ``b0_peak_hz``.
_FIELD_CENTER_MM = (-60.0, 0.0, 140.0)
_FIELD_WIDTH_MM = 150.0
_FIELD_LR_SLOPE = 0.25


def fat_fraction_map(labels: np.ndarray, spec) -> np.ndarray:
    """Signal fat fraction (0..1) per voxel: ``pdff_percent / 100`` in the liver (vessels
    excluded: blood has no fat), :data:`TISSUE_FAT_FRACTION` elsewhere, 0 in other tissue."""
    ff = np.zeros(labels.shape)
    if not spec.fat_water:
        return ff
    ff[labels == LABELS["liver"]] = float(spec.pdff_percent) / 100.0
    for lab, value in TISSUE_FAT_FRACTION.items():
        ff[labels == lab] = value
    return ff


def field_map_hz(labels: np.ndarray, x_mm, y_mm, z_mm, spec) -> np.ndarray:
    """Smooth off-resonance (Hz) over the body, NaN in air; max |value| = ``b0_peak_hz``."""
    X, Y, Z = np.meshgrid(np.asarray(x_mm), np.asarray(y_mm), np.asarray(z_mm), indexing="ij")
    cx, cy, cz = _FIELD_CENTER_MM
    d2 = (X - cx) ** 2 + (Y - cy) ** 2 + (Z - cz) ** 2
    g = np.exp(-d2 / (2.0 * _FIELD_WIDTH_MM**2)) + _FIELD_LR_SLOPE * X / _FIELD_WIDTH_MM
    body = labels != LABELS["air"]
    out = np.full(labels.shape, np.nan)
    if body.any():
        peak = float(np.max(np.abs(g[body])))
        out[body] = float(spec.b0_peak_hz) * g[body] / peak
    return out


def complex_signal(water: np.ndarray, fat: np.ndarray, r2star_per_s: np.ndarray, field_hz: np.ndarray,
                   spec) -> np.ndarray:
    """Noise-free complex signal, shape ``water.shape + (echo,)``, complex64; 0 where
    ``water + fat == 0`` (air)."""
    te = np.asarray(spec.echo_times_s, dtype=np.float64)
    basis = load_fat_spectrum(spec.fat_spectrum).basis(te, spec.field_strength_t) if spec.fat_water \
        else np.ones(te.size, dtype=np.complex128)
    tissue = (water + fat) > 0
    out = np.zeros(water.shape + (te.size,), dtype=np.complex64)
    w = water[tissue][:, None]
    f = fat[tissue][:, None]
    r = r2star_per_s[tissue][:, None]
    psi = np.nan_to_num(field_hz[tissue])[:, None]
    out[tissue] = (w + f * basis[None, :]) * np.exp((-r + 2j * np.pi * psi) * te[None, :])
    return out
