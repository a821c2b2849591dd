"""Per-voxel fit status codes (``uint8``), shared by the fitter, statistics and reports.

==  ==================  ==========================================================
 0  OK                  converged, inside bounds, enough echoes above the noise
 1  NOT_CONVERGED       iteration limit reached before the convergence tolerance
 2  BOUND_HIT           an estimate sits on a parameter bound (e.g. R2 at its max)
 3  BELOW_NOISE         the signal is at the noise floor (fewer than the model's
                        minimum leading echoes above the noise threshold:
                        ``k_sigma * sigma`` at one channel; with n channels the
                        level n-channel pure noise exceeds as often,
                        :func:`r2mri.noise.noise_floor_threshold`; the fat-water
                        fits, magnitude and complex, need 3 echoes in the
                        leading run, which one echo below the threshold (an
                        opposed-phase dip) does not end and two do), R2 may be
                        a lower bound
 4  TOO_FEW_ECHOES      fewer usable echoes than the model has parameters
 5  BAD_INPUT           NaN, inf, negative or all-zero signal in this voxel
255 MASKED              outside the mask; not fitted
==  ==================  ==========================================================
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["FitStatus"]


class FitStatus(IntEnum):
    """Status code of one voxel's fit (stored as ``uint8`` maps)."""

    OK = 0
    NOT_CONVERGED = 1
    BOUND_HIT = 2
    BELOW_NOISE = 3
    TOO_FEW_ECHOES = 4
    BAD_INPUT = 5
    MASKED = 255

    @classmethod
    def describe(cls, code: int) -> str:
        """Human-readable name of a status code (``'ok'``, ``'bound hit'``...)."""
        return cls(int(code)).name.lower().replace("_", " ")
