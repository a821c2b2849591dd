"""Voxel-wise signal-decay fitting (numba kernels); see docs/fitting.md.

Public API: :func:`fit`, :class:`FitResult`, :data:`MODELS`.
"""

from __future__ import annotations

from ._fit import MODELS, FitResult, fit

__all__ = ["fit", "FitResult", "MODELS"]
