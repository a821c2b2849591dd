"""The distribution of the true voxel R2 behind noisy voxel values (Kiefer-Wolfowitz NPMLE).

Moved out of ``r2mri/_heterogeneity.py`` (branch split3; importable from there as before):
the heterogeneity block's category fractions are those of this deconvolved distribution
(the method is described in :func:`deconvolved_r2_distribution` and in the
``r2mri._heterogeneity`` module docstring).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["deconvolved_r2_distribution"]

#: Quantile groups of the voxels' relative SE, R2 bins, grid points of G and EM iterations
#: (values unchanged by the move from r2mri/_heterogeneity.py).
_SE_GROUPS = 8
_R2_BINS = 256
_GRID = 160
_EM_ITER = 400


def _binned_observations(r: np.ndarray, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The voxels of :func:`deconvolved_r2_distribution` as ``(x, s, w, h)``: R2 bin centres,
    their group's RMS relative SE ``rho`` (quantile groups), the counts and the bin width."""
    edges = np.unique(np.quantile(rho, np.linspace(0, 1, _SE_GROUPS + 1)))
    grp = np.clip(np.searchsorted(edges, rho, side="right") - 1, 0, max(edges.size - 2, 0))
    r_edges = np.linspace(r.min(), r.max() + 1e-9, _R2_BINS + 1)
    centres = 0.5 * (r_edges[1:] + r_edges[:-1])
    xs, ss, ws = [], [], []
    for g in np.unique(grp):
        sel = grp == g
        counts, _ = np.histogram(r[sel], bins=r_edges)
        nz = counts > 0
        xs.append(centres[nz])
        ss.append(np.full(int(nz.sum()), np.sqrt(np.mean(rho[sel] ** 2))))
        ws.append(counts[nz].astype(np.float64))
    x, s, w = np.concatenate(xs), np.concatenate(ss), np.concatenate(ws)
    # the binning adds a uniform error of width h (variance h^2 / 12) to the noise
    h = r_edges[1] - r_edges[0]
    return x, s, w, h


def deconvolved_r2_distribution(r2_per_s: Any, se_per_s: Any, *, n_grid: int = _GRID,
                                n_iter: int = _EM_ITER) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of the true R2 behind noisy voxel values (Kiefer-Wolfowitz NPMLE).

    Model: ``r_i ~ N(t_i, s_i(t_i)^2)``, ``t_i ~ G``, where ``s_i(t) = se_i (t / r_i)^gamma``
    is the voxel's SE carried from the R2 it was evaluated at (``r_i``) to the true one:
    ``gamma`` is the slope of log SE on log R2 over the ROI. Without it (SE taken as is)
    the high-R2 voxels of a heterogeneous liver, which are the noisy ones, were
    deconvolved into the bulk: the 7-15 mg/g share of the heterogeneous phantom (SNR 20)
    came out 0.2 % against 9.6 %. With ``gamma = 1`` (SE proportional to R2) the fits'
    plug-in SEs, which grow less with a noise-raised R2 than the true error does (slope
    0.1-0.4 on homogeneous phantoms), left a tail of 5-18 % of a homogeneous liver above
    its R2. ``G`` lives on a log-spaced grid between the 0.1st and 99.9th percentiles of
    ``r2_per_s``, starts from the normal distribution of the moments and is found by the
    fixed-support EM iteration. Voxels are grouped by ``se_i / r_i^gamma`` (quantile
    groups, RMS each) and binned in R2 first, so the cost does not grow with the voxel
    count (about 0.02 s).

    Parameters
    ----------
    r2_per_s, se_per_s : array_like
        Voxel R2 and its standard error (s^-1), finite, ``r2 > 0``, ``se > 0``.
    n_grid, n_iter : int
        Grid points of ``G`` and EM iterations.

    Returns
    -------
    grid_r2_per_s, mass : ndarray
        Support points and their probabilities (summing to 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = np.where(rng.random(4000) < 0.3, 200.0, 100.0)
    >>> r = t * (1 + rng.normal(0, 0.1, t.size))
    >>> g, p = deconvolved_r2_distribution(r, 0.1 * t)
    >>> round(float(p[g > 150].sum()), 2)
    0.3
    """
    r = np.asarray(r2_per_s, dtype=np.float64).ravel()
    se = np.asarray(se_per_s, dtype=np.float64).ravel()
    keep = (r > 0) & (se > 0)
    r, se = r[keep], se[keep]
    # how a voxel's SE grows with the R2 it is evaluated at: se ~ r^gamma (slope of
    # log se on log r over the ROI; coil shading varies S0 independently of R2)
    lr = np.log(r)
    cov = np.cov(lr, np.log(se))
    gamma = float(np.clip(cov[0, 1] / cov[0, 0], 0.0, 3.0)) if cov[0, 0] > 0 else 1.0
    rho = se / r**gamma
    lo, hi = np.percentile(r, [0.1, 99.9])
    lo = max(lo, 0.5)
    grid = np.geomspace(lo, max(hi, lo * 1.01), int(n_grid))
    # observations: (group relative SE, R2 bin centre, count)
    x, s, w, h = _binned_observations(r, rho)
    sd = np.sqrt((s[:, None] * grid[None, :] ** gamma) ** 2 + h * h / 12.0)
    logl = -0.5 * ((x[:, None] - grid[None, :]) / sd) ** 2 - np.log(sd)
    lik = np.exp(logl - logl.max(axis=1, keepdims=True))  # row scaling does not change EM
    # start: the normal distribution of the moments (mean, noise-corrected variance, at
    # least (1 %)^2 of the mean^2) plus 1 % uniform. EM moves mass slowly: from a uniform
    # start, 400 iterations left ~6 % of a homogeneous liver (relative SE 15 %) more than
    # 10 % away from its R2, which the warning rule would count as a different region.
    mu = float(np.mean(r))
    var = max(float(np.var(r) - np.mean(se**2)), (0.01 * mu) ** 2)
    mass = np.exp(-0.5 * (grid - mu) ** 2 / var) * grid  # density x d(grid) on a log grid
    mass = 0.99 * mass / mass.sum() + 0.01 / grid.size
    wn = w / w.sum()
    for _ in range(int(n_iter)):
        f = lik @ mass
        mass = mass * (lik.T @ (wn / np.maximum(f, 1e-300)))
    mass /= mass.sum()
    return grid, mass
