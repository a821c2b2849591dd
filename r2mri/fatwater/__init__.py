"""R2* with fat: multi-peak fat-water signal model and its voxel-wise fit; see docs/fatwater.md.

Public API: :class:`FatSpectrum`, :func:`load_fat_spectrum`, :func:`magnitude_signal`,
:func:`magnitude_jacobian`, :func:`cramer_rao_std`. The fit itself is
``r2mri.fit(..., model="fatwater", field_strength_t=...)``.
"""

from __future__ import annotations

from .model import cramer_rao_std, magnitude_jacobian, magnitude_signal
from .spectrum import DEFAULT_SPECTRUM, FatSpectrum, load_fat_spectrum

__all__ = ["FatSpectrum", "load_fat_spectrum", "DEFAULT_SPECTRUM", "magnitude_signal",
           "magnitude_jacobian", "cramer_rao_std"]
