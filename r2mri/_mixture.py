"""The mixture of exponentials inside a tile, and its inversion (``"tile-mixture"``, items 3-4
of :mod:`r2mri._headline`).

A tile's pooled signal is the mean of its voxels' signals; when their R2 spread about
the tile's rate ``mu`` with relative variance ``rho`` (shape: gamma, or log-normal for the
interval's shape term), the tile fit reads a lower rate. :func:`_correct_many` returns,
for apparent tile rates and amplitudes, the ``(mu, S0)`` whose mixture the tile fit reads
as observed (docs/statistics.md section 2, "Heterogeneous livers").
"""

from __future__ import annotations

import numpy as np

# probabilists' Gauss-Hermite nodes and weights (9 points, exact for polynomials of degree 17)
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(9)
_GH_W = _GH_W / _GH_W.sum()
_SHAPE, _SHAPE_ALT = "gamma", "lognormal"  # [D] shape of the spread inside a tile, and the alternative
# whose difference is the interval's shape term (see the module docstring)
_GRID_MIN = 600  # tiles above which the correction is interpolated from a grid (full size, 30 mg/g: the
# 40 x 10 grid reads +0.04 % in LIC against the exact inversion of every tile, a 20 x 6 grid +0.13 %)
_GRID_R2, _GRID_S0 = 40, 10  # grid points in log R2 and log S0
_GRID_RHO = 8  # grid points in the spread when it varies from tile to tile (r2mri/_spread_map.py)


def _draw_spread(rho, z, shape):
    """Multipliers of mean 1 and relative variance ``rho >= 0`` from standard normals ``z``."""
    rho = np.maximum(rho, 0.0)
    if shape == "lognormal":
        s2 = np.log1p(rho)
        return np.exp(np.sqrt(s2) * z - s2 / 2)
    if shape == "gamma":
        # Wilson & Hilferty, "The distribution of chi-square", PNAS 17:684-688 (1931):
        # (chi2_p / p)^(1/3) is close to normal, mean 1 - 2/(9p), variance 2/(9p); a gamma
        # of shape 1/rho (mean 1, variance rho) is chi2_p / p with p = 2/rho, so it is
        # close to the cube of a normal of mean 1 - rho/9 and variance rho/9. Divided by
        # that cube's exact mean, (1 - rho/9)^3 + 3 (1 - rho/9) rho/9.
        a, b2 = 1.0 - rho / 9.0, rho / 9.0
        return np.maximum(a + np.sqrt(b2) * z, 0.0) ** 3 / (a**3 + 3.0 * a * b2)
    return np.maximum(1.0 + np.sqrt(rho) * z, 0.0)



def _invert_mixture(r2_app, s0_app, k, te, sigma, coils, rho, shape, n_iter=4):
    """Tile rates ``mu`` (and amplitudes S0) whose mixture (relative spread ``rho``, one per
    tile, ``>= 0``) the tile fit reads as ``r2_app`` (and ``s0_app``); tiles with ``rho <= 0``
    are returned as they are."""
    from .noise import ncchi_mean_interpolated
    from .stats import _tile_fit

    mu, s0 = np.array(r2_app, dtype=np.float64), np.array(s0_app, dtype=np.float64)
    rho = np.broadcast_to(np.asarray(rho, dtype=np.float64), mu.shape)
    idx = np.flatnonzero(rho > 0)
    if idx.size == 0:
        return mu, s0
    g = _draw_spread(rho[idx, None], _GH_X[None, :], shape)  # (tiles, nodes), mean 1
    ra, sa, ka = mu[idx].copy(), s0[idx].copy(), np.asarray(k, dtype=np.float64)[idx]
    m_mu, m_s0 = ra.copy(), sa.copy()
    for _ in range(n_iter):
        amp = m_s0[:, None, None] * np.exp(-m_mu[:, None, None] * g[:, :, None] * te[None, None, :])
        m, _d = ncchi_mean_interpolated(amp, sigma, coils)
        y = np.tensordot(m, _GH_W, axes=([1], [0]))
        r2_fit, s0_fit, _se, ok = _tile_fit(y, te, ka, sigma, coils)
        ok &= np.isfinite(r2_fit) & (r2_fit > 0)
        m_mu = np.maximum(np.where(ok, m_mu + (ra - r2_fit), m_mu), 0.0)
        m_s0 = np.where(ok, m_s0 * sa / np.where(s0_fit > 0, s0_fit, 1.0), m_s0)
    mu[idx], s0[idx] = m_mu, m_s0
    return mu, s0


def _correct(r2_app, s0_app, k, te, sigma, coils, rho, shape):
    """Signed correction of tiles of ``k`` voxels for a spread ``rho`` between voxels (one job
    of :func:`_correct_many`)."""
    return _correct_many([(r2_app, s0_app, k, rho)], te, sigma, coils, shape)[0]


def _correct_many(jobs, te, sigma, coils, shape):
    """Corrections ``[(mu, s0), ...]`` of the jobs ``[(r2_app, s0_app, k, rho), ...]``, with
    one batched inversion (the tile fit is vectorised: one call on all points costs about
    what one call on a few does).

    ``rho`` is the relative variance of R2 between voxels (what the dispersion statistic
    estimates: the pooled sums of squares over ``k - 1`` degrees of freedom); the mixture
    that a tile's pooled signal holds is its own ``k`` voxels, whose variance about their
    own mean is on average ``(k - 1) / k`` of it. A negative ``rho`` (noise) gives the
    mirrored correction. The noise-free tile fit does not depend on the tile's voxel count
    (it scales every weight alike), so above ``_GRID_MIN`` tiles the correction is
    computed on a log-spaced grid of (R2, S0) at the smallest and largest ``(k - 1) / k``
    of the job and interpolated (bilinear in the logs, linear in the factor).
    """
    pts_r, pts_s, pts_k, pts_rho, plans = [], [], [], [], []
    n = 0
    for r2_app, s0_app, k, rho in jobs:
        r2_app = np.asarray(r2_app, dtype=np.float64)
        s0_app = np.asarray(s0_app, dtype=np.float64)
        k = np.asarray(k, dtype=np.float64)
        f = (np.maximum(k, 1.0) - 1.0) / np.maximum(k, 1.0)
        per_tile = np.ndim(rho) > 0  # a spread per tile (r2mri/_spread_map.py)
        rho = np.broadcast_to(np.asarray(rho, dtype=np.float64), r2_app.shape)
        if r2_app.size == 0 or not np.any(rho != 0):
            plans.append(("none", r2_app, s0_app))
            continue
        q = np.abs(rho) * f  # the spread each tile's own voxels hold
        if r2_app.size <= _GRID_MIN:
            pts_r.append(r2_app), pts_s.append(s0_app), pts_k.append(k), pts_rho.append(q)
            plans.append(("direct", r2_app, s0_app, np.sign(rho), n, n + r2_app.size))
            n += r2_app.size
            continue
        lr, ls = np.log(np.maximum(r2_app, 1e-3)), np.log(np.maximum(s0_app, 1e-12))
        gr = np.linspace(lr.min(), lr.max() + 1e-9, _GRID_R2)
        gs = np.linspace(ls.min(), ls.max() + 1e-9, _GRID_S0)
        R, S = np.meshgrid(gr, gs, indexing="ij")
        # linear in the spread between nodes: two for one spread per edge (the (k - 1) / k range), more
        # for a spread per tile (the correction bends at large spreads)
        nodes = np.unique(np.linspace(q.min(), q.max(), _GRID_RHO if per_tile else 2))
        for qv in nodes:
            pts_r.append(np.exp(R.ravel())), pts_s.append(np.exp(S.ravel()))
            pts_k.append(np.ones(R.size)), pts_rho.append(np.full(R.size, qv))
        plans.append(("grid", r2_app, s0_app, np.sign(rho), n, (gr, gs, R.shape, nodes, q, lr, ls)))
        n += R.size * nodes.size
    if n:
        r_all, s_all = np.concatenate(pts_r), np.concatenate(pts_s)
        mu_all, s0_all = _invert_mixture(r_all, s_all, np.concatenate(pts_k), te, sigma, coils,
                                         np.concatenate(pts_rho), shape)
    out = []
    for plan in plans:
        if plan[0] == "none":
            out.append((plan[1].copy(), plan[2].copy()))
        elif plan[0] == "direct":
            _, r2_app, s0_app, sg, i0, i1 = plan
            mu, s0 = mu_all[i0:i1], s0_all[i0:i1]
            out.append((r2_app + sg * (mu - r2_app), s0_app * (s0 / s0_app) ** sg))
        else:
            out.append(_from_grid(plan, r_all, s_all, mu_all, s0_all))
    return out


def _from_grid(plan, r_all, s_all, mu_all, s0_all):
    """Interpolate one grid job of :func:`_correct_many` to its tiles."""
    from scipy.interpolate import RegularGridInterpolator

    _, r2_app, s0_app, sg, i0, (gr, gs, shape, nodes, q, lr, ls) = plan
    size = shape[0] * shape[1]
    sl = slice(i0, i0 + nodes.size * size)
    d_r2 = (mu_all[sl] - r_all[sl]).reshape(nodes.size, *shape)
    d_ls0 = np.log(s0_all[sl] / s_all[sl]).reshape(nodes.size, *shape)
    if nodes.size == 1:
        pts = np.stack([lr, ls], axis=1)
        dr = RegularGridInterpolator((gr, gs), d_r2[0])(pts)
        dl = RegularGridInterpolator((gr, gs), d_ls0[0])(pts)
    else:
        pts = np.stack([np.clip(q, nodes[0], nodes[-1]), lr, ls], axis=1)
        dr = RegularGridInterpolator((nodes, gr, gs), d_r2)(pts)
        dl = RegularGridInterpolator((nodes, gr, gs), d_ls0)(pts)
    return r2_app + sg * dr, s0_app * np.exp(sg * dl)
