"""Reference (numpy) fat-water signal model, its Jacobian and Cramer-Rao bounds.

Magnitude model with a common R2* for water and fat (Yu et al., MRM 2008;60:1122,
multi-peak fat; Hernando et al., MRM 2010 for the R2* term)::

    S(t) = | W + F * c(t) | * exp(-R2* t),   c(t) = sum_p a_p exp(i 2 pi f_p t)

with the fat basis ``c`` of :meth:`r2mri.fatwater.FatSpectrum.basis`. The numba fitter
(:mod:`r2mri.fatwater._kernels`) is tested against this module.
"""

from __future__ import annotations

import numpy as np

__all__ = ["magnitude_signal", "magnitude_jacobian", "cramer_rao_std"]


def magnitude_signal(basis, echo_times_s, water, fat, r2star_per_s) -> np.ndarray:
    """Noise-free magnitude signal ``|W + F c(t)| exp(-R2* t)``.

    Parameters
    ----------
    basis : array_like complex, shape (echo,)
        Fat basis ``c(t)`` at the echo times (``FatSpectrum.basis``).
    echo_times_s : array_like, shape (echo,)
        Echo times in seconds.
    water, fat, r2star_per_s : float or array_like
        Water and fat signal at ``t = 0`` and the common R2* (s^-1); arrays broadcast
        (a trailing echo axis is added).

    Returns
    -------
    ndarray float64, shape (..., echo)

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri.fatwater import load_fat_spectrum, magnitude_signal
    >>> te = np.array([0.0, 0.001])
    >>> c = load_fat_spectrum().basis(te, 1.5)
    >>> round(float(magnitude_signal(c, te, 80.0, 20.0, 0.0)[0]), 9)  # W + F at t = 0
    100.0
    """
    c = np.asarray(basis)
    t = np.asarray(echo_times_s, dtype=np.float64)
    w = np.asarray(water, dtype=np.float64)[..., None]
    f = np.asarray(fat, dtype=np.float64)[..., None]
    r = np.asarray(r2star_per_s, dtype=np.float64)[..., None]
    return np.abs(w + f * c) * np.exp(-r * t)


def magnitude_jacobian(basis, echo_times_s, water, fat, r2star_per_s) -> np.ndarray:
    """Jacobian of :func:`magnitude_signal` for one voxel, columns (dW, dF, dR2*), shape (echo, 3)."""
    c = np.asarray(basis)
    t = np.asarray(echo_times_s, dtype=np.float64)
    z = water + fat * c
    g = np.abs(z)
    e = np.exp(-r2star_per_s * t)
    return np.stack([e * z.real / g, e * (z.real * c.real + z.imag * c.imag) / g, -t * e * g], axis=1)


def cramer_rao_std(basis, echo_times_s, water, fat, r2star_per_s, sigma) -> dict[str, float]:
    """Cramer-Rao standard deviations of R2* and PDFF for Gaussian noise of SD ``sigma``.

    The bound is ``sigma^2 (J^T J)^-1`` (Gaussian noise on the magnitude, valid well
    above the noise floor); PDFF = F / (W + F) by the delta method.

    Returns
    -------
    dict
        ``r2star_per_s`` and ``pdff`` (fraction, not percent) standard deviations.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri.fatwater import load_fat_spectrum, cramer_rao_std
    >>> te = 0.0012 + 0.001 * np.arange(6)
    >>> c = load_fat_spectrum().basis(te, 1.5)
    >>> crb = cramer_rao_std(c, te, 90.0, 10.0, 100.0, 2.0)
    >>> 0 < crb["r2star_per_s"] < 20 and 0 < crb["pdff"] < 0.05
    True
    """
    J = magnitude_jacobian(basis, echo_times_s, water, fat, r2star_per_s)
    cov = sigma**2 * np.linalg.inv(J.T @ J)
    s = water + fat
    grad = np.array([-fat / s**2, water / s**2, 0.0])
    return {"r2star_per_s": float(np.sqrt(cov[2, 2])), "pdff": float(np.sqrt(grad @ cov @ grad))}
