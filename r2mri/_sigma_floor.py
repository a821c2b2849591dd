"""The liver's noise sigma from its floor samples when the tiles' fitted amplitude misses the mixture.

:func:`r2mri._sigma_check._liver_sigma` reads ``sigma^2 = mean(M^2 - A_t^2) / (2 n)`` at the
floor echoes (``E[M^2] = A^2 + 2 n sigma^2``, Constantinides 1997). The subtracted ``A_t^2`` is
the tile's fitted mono-exponential amplitude squared; the exact term is the mean over the tile's
voxels of ``A_i^2``. When R2 varies inside a tile (fine texture) the voxels' amplitudes at the
floor spread by a factor of several and ``mean_i A_i^2 > A_t^2``: on a full-size liver with
log-LIC SD 0.4 over 1 voxel (30 mg/g, SNR 20, 8 channels) the fitted ``A_t^2`` is ~12 % short of
``mean_i A_i^2``, which reads sigma +0.24 % high after one step, +0.32 % at the fixed point
(z +1.4 to +1.6 on matched noise; benchmarks/README.md, "sigmafine").

:func:`regressed_floor` removes the part of the excess ``M^2 - A_t^2`` that grows with ``A_t^2``:
over the (tile, echo) groups of floor samples, the group mean of ``M^2 - A_t^2`` is regressed on
``A_t^2`` (least squares weighted by the group's sample count, the slope held >= 0) and the
intercept, the excess at ``A_t^2 = 0``, is ``2 n sigma^2``. A tile fit that misses a share ``beta`` of each group's
``mean_i A_i^2`` leaves ``beta A_t^2`` in the excess; the slope takes it out whatever ``beta`` is.
The SE is a delete-one-tile jackknife of the intercept (a tile's echoes share its fit) and
:data:`MODEL_SE_REL` of sigma in quadrature: the intercept is not exact either (the fit noise of
``A_t^2`` over-subtracts where a tile's fit is noisy; the slope differs between tiles).
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_floor", "regressed_floor", "MODEL_SE_REL"]

#: Relative model uncertainty of the regressed sigma (r2mri's choice: the intercept minus the
#: reading with the true voxel amplitudes, one step at the true sigma, was -0.10 to +0.21 % of
#: sigma on 8 full-size livers of LIC 30-40 mg/g, SNR 20/50, 1/8 channels, texture SD 0-0.4 over
#: 1-8 voxels (benchmarks/README.md, "sigmafine"); 0.15 % keeps the worst of those under ~1.4 SE
#: while a 1 % liver/air difference stays ~5 SE: z +5.0 to +5.5 on 6 livers).
MODEL_SE_REL = 0.0015


def _tile_sums(tv, ev, excess, x, n_tiles, n_echoes):
    """Per tile: sums over its (tile, echo) groups of the weighted-least-squares moments."""
    g = tv * n_echoes + ev
    ng = n_tiles * n_echoes
    m = np.bincount(g, minlength=ng).astype(np.float64)
    c = np.bincount(g, weights=excess, minlength=ng)
    xg = np.zeros(ng)
    have = m > 0
    xg[have] = np.bincount(g, weights=x, minlength=ng)[have] / m[have]  # x is constant in a group
    per = lambda v: v.reshape(n_tiles, n_echoes).sum(axis=1)  # noqa: E731
    return per(m), per(m * xg), per(m * xg * xg), per(c), per(c * xg)


def _intercept(sm, smx, smxx, sc, scx):
    """Intercept and slope of the weighted fit of group means c/m on x with weights m, from sums.

    The slope is held at >= 0: the voxels' spread inside a tile can only leave a positive share
    of ``A_t^2`` in the excess; a negative slope is the tile fits' noise (or no leverage: one
    floor echo on a uniform liver), where the mean excess (slope 0) is the steadier reading."""
    d = sm * smxx - smx * smx
    beta = np.maximum((sm * scx - smx * sc) / d, 0.0)
    return (sc - beta * smx) / sm, beta


def regressed_floor(m2, a2_sample, tv, ev, n_tiles, n_echoes, coils, se_factor=1.0):
    """(sigma^2 estimate, its SE, slope) from floor samples, or (None, None, None).

    Parameters
    ----------
    m2, a2_sample : ndarray, shape (N,)
        Each floor sample's ``M^2`` and its tile's fitted ``A_t^2`` at that echo.
    tv, ev : ndarray of int, shape (N,)
        The sample's tile and echo.
    n_tiles, n_echoes, coils : int
    se_factor : float
        Factor on the SE for noise correlated between voxels.

    Returns
    -------
    tuple
        ``sigma^2`` from the intercept ``/ (2 n)``, its jackknife SE over tiles, and the slope
        ``beta`` (the share of ``A_t^2`` the excess still holds).
    """
    two_n = 2.0 * coils
    sums = _tile_sums(tv, ev, m2 - a2_sample, a2_sample, n_tiles, n_echoes)
    used = sums[0] > 0
    n_t = int(used.sum())
    if n_t < 3:
        return None, None, None
    sums = [s[used] for s in sums]
    tot = [float(s.sum()) for s in sums]
    if not tot[0] * tot[2] - tot[1] ** 2 > 1e-12 * tot[0] * tot[2]:
        return None, None, None
    alpha, beta = _intercept(*tot)
    # delete-one-tile jackknife
    loo = _intercept(*[t - s for t, s in zip(tot, sums)])[0]
    se = float(np.sqrt((n_t - 1) / n_t * np.sum((loo - loo.mean()) ** 2)))
    # the regression's own model error (a slope that differs between tiles, the fit noise in
    # A_t^2), MODEL_SE_REL of sigma = twice that of sigma^2, in quadrature
    se_model = 2.0 * MODEL_SE_REL * abs(float(alpha))
    return float(alpha) / two_n, float(np.hypot(se * se_factor, se_model)) / two_n, float(beta)


def mean_floor(m2, a2_sample, tv, n_tiles, coils, se_factor=1.0, a2_uncertainty=0.1):
    """(sigma^2, its SE) as ``mean(M^2 - A_t^2) / (2 n)`` (the check's first design), or (None, None).

    The SE of a ratio of sums over tiles (each tile's sum of ``M^2 - A_t^2`` and its count are
    independent of the other tiles'; ``A_t`` is fitted on the tile's own data, so its noise is
    in the scatter too), times ``se_factor``, and ``a2_uncertainty`` of the mean subtracted
    ``A^2`` in quadrature (the tile fit's miss of ``mean_i A_i^2``; module doc).
    """
    two_n = 2.0 * coils
    excess = m2 - a2_sample
    c = np.bincount(tv, weights=excess, minlength=n_tiles)
    m = np.bincount(tv, minlength=n_tiles).astype(np.float64)
    used = m > 0
    n_t = int(used.sum())
    if n_t < 2:
        return None, None
    ratio = c[used].sum() / m[used].sum()
    var_ratio = float(np.sum((c[used] - ratio * m[used]) ** 2)) / m[used].sum() ** 2 * n_t / (n_t - 1)
    se_var = float(np.sqrt(var_ratio)) / two_n * se_factor
    se_model = a2_uncertainty * float(np.mean(a2_sample)) / two_n
    return float(ratio) / two_n, float(np.hypot(se_var, se_model))

