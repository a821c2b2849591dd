"""First-order bias of the pooled tile fit (Box 1971), for the headline at low SNR.

Why: the tile fit (:func:`r2mri.stats._tile_fit`) is a weighted non-linear least-squares
fit of ``E[M] = ncchi_mean(S0 exp(-R2 t))`` to the tile's mean magnitude. Its bias is of
the order of its variance: at 30 mg/g (R2 ~240 s^-1, TE 6-18 ms) and SNR 20 only the
first one or two echoes are above the magnitude floor, an 8 x 8 tile's R2 has a relative
SE of 7 % (one channel) to 11 % (eight), and the fitted R2 reads +0.3 % / +0.8 % high
per tile (Monte Carlo of 4000 tiles of 64 voxels; +1.1 % / +4.2 % for 16 voxels). On
full-size uniform livers (95,215 voxels) the headline read +0.7 % / +2.3 % in LIC
(benchmarks/snr20.py), against a Cramer-Rao bound of 0.4 / 0.55 % in LIC.

What: the bias of a (weighted) least-squares estimate to first order in the noise,
M. J. Box, "Bias in nonlinear estimation", J. R. Stat. Soc. B 33(2):171-201 (1971),
doi:10.1111/j.2517-6161.1971.tb00871.x:

    b = -1/2 C J^T W d,   d_e = trace(C H_e),   C = (J^T W J)^-1,

``J`` the Jacobian of the model in ``(S0, R2)``, ``H_e`` the Hessian of echo e's model,
``W`` the fit's weights (``k / var``, the tile fit's own). Evaluated at the tile's
estimate (plug-in) and subtracted. The expansion holds while a tile's relative SE of R2
is small: above ``_REL_SE_MAX`` no term is given here (its correction would be an
extrapolation: 16-voxel tiles of SE 21 % gave a mean correction of -22 +- 15 %); the
headline simulates those tiles' bias instead (:mod:`r2mri._tile_bias_sim`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["tile_fit_bias", "tile_fit_fisher"]

_REL_SE_MAX = 0.15  # [D, r2mri's choice] relative SE of a tile's R2 above which no bias correction is made


def tile_fit_fisher(r2, s0, te, k, sigma: float, coils: int) -> dict:
    """Model terms and Fisher information of the pooled tile fit (:func:`r2mri.stats._tile_fit`)
    at the states ``(s0, r2)`` of tiles of ``k`` voxels: ``e = exp(-R2 t)``, the amplitude
    ``a``, ``d = dE[M]/dA``, the fit's weights ``w`` (:func:`r2mri.noise.ncchi_mean_weights`),
    the Jacobian columns ``j0, j1`` (S0, R2), ``f00, f01, f11`` and the determinant ``det``.
    Shared by the fit-bias term here and the Fisher SE of :mod:`r2mri._measurement_se`."""
    from .noise import ncchi_mean_interpolated, ncchi_mean_weights

    r2 = np.asarray(r2, dtype=np.float64)
    s0 = np.asarray(s0, dtype=np.float64)
    te = np.asarray(te, dtype=np.float64)
    kk = np.asarray(k, dtype=np.float64)[:, None]
    e = np.exp(-r2[:, None] * te[None, :])
    a = s0[:, None] * e
    m, d = ncchi_mean_interpolated(a, sigma, coils)
    w = ncchi_mean_weights(a, m, sigma, coils, kk)
    j0, j1 = d * e, -d * a * te[None, :]
    f00, f01, f11 = (w * j0 * j0).sum(1), (w * j0 * j1).sum(1), (w * j1 * j1).sum(1)
    return {"e": e, "a": a, "d": d, "w": w, "j0": j0, "j1": j1, "f00": f00, "f01": f01, "f11": f11,
            "det": f00 * f11 - f01 * f01}


def tile_fit_bias(r2: np.ndarray, s0: np.ndarray, te: np.ndarray, k: np.ndarray, sigma: float,
                  coils: int) -> tuple[np.ndarray, np.ndarray]:
    """First-order bias ``(b_s0, b_r2)`` of the tile fit at ``(s0, r2)`` (Box 1971).

    Parameters
    ----------
    r2, s0 : ndarray, shape (tiles,)
        The tiles' fitted R2 (s^-1) and S0.
    te : ndarray
        Echo times (s).
    k : ndarray, shape (tiles,)
        Voxels averaged per tile.
    sigma : float
        Noise SD per real/imaginary part of one channel.
    coils : int
        Channels combined by root-sum-of-squares.

    Returns
    -------
    (ndarray, ndarray)
        Bias of S0 and of R2 (s^-1) per tile; zero where the tile's relative SE of R2 is
        above 15 % or its estimate is not finite (no correction there).

    Examples
    --------
    >>> import numpy as np
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> b_s0, b_r2 = tile_fit_bias(np.array([240.0]), np.array([20.0]), te, np.array([64.0]), 1.0, 8)
    >>> bool(0.005 < b_r2[0] / 240.0 < 0.012)  # +0.8 % in Monte Carlo of such tiles
    True
    """
    from .noise import ncchi_mean_interpolated

    r2 = np.asarray(r2, dtype=np.float64)
    te = np.asarray(te, dtype=np.float64)
    t = tile_fit_fisher(r2, s0, te, k, sigma, coils)
    e, a, d, w, j0, j1 = t["e"], t["a"], t["d"], t["w"], t["j0"], t["j1"]
    f00, f01, f11, det = t["f00"], t["f01"], t["f11"], t["det"]
    # second derivative of E[M] in A by central differences of the table's derivative
    h = 1e-3 * np.maximum(a, sigma)
    lo = np.maximum(a - h, 0.0)
    d2 = (ncchi_mean_interpolated(a + h, sigma, coils)[1] - ncchi_mean_interpolated(lo, sigma, coils)[1]) / (a + h - lo)
    da0, da1 = e, -te[None, :] * a  # dA/dS0, dA/dR2
    with np.errstate(divide="ignore", invalid="ignore"):
        c00, c01, c11 = f11 / det, -f01 / det, f00 / det
        h00 = d2 * da0 * da0
        h01 = d2 * da0 * da1 + d * (-te[None, :] * e)
        h11 = d2 * da1 * da1 + d * (te[None, :] ** 2 * a)
        tr = c00[:, None] * h00 + 2 * c01[:, None] * h01 + c11[:, None] * h11
        g0, g1 = (w * j0 * tr).sum(1), (w * j1 * tr).sum(1)
        b_s0 = -0.5 * (c00 * g0 + c01 * g1)
        b_r2 = -0.5 * (c01 * g0 + c11 * g1)
        valid = (det > 0) & (np.sqrt(np.maximum(c11, 0)) <= _REL_SE_MAX * r2) & np.isfinite(b_r2) & np.isfinite(b_s0)
    return np.where(valid, b_s0, 0.0), np.where(valid, b_r2, 0.0)
