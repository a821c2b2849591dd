"""Headline mean liver R2 corrected for the within-tile spread of R2 (``"tile-mixture"``).

Why: the tile-pooled estimator (:func:`r2mri.stats.pooled_mean_r2`) averages the
magnitude of the voxels of a tile before one fit. When the voxels' R2 differ, the
average is a *mixture* of exponentials, which decays more slowly than the exponential
of the mean rate: for a tile whose R2 has mean ``mu`` and variance ``s^2`` the mean
signal is ``S0 exp(-mu t + s^2 t^2 / 2 - ...)`` (cumulant expansion), so the fitted rate
is ``mu - s^2 tau`` with ``tau`` of the order of the early echo times. On a log-normal
texture with SD 0.4 in log LIC varying from voxel to voxel the headline read -3 % at
7 mg/g and -11 to -16 % at 30 mg/g (benchmarks/hetero.py).

What (docs/statistics.md, section 2, "Heterogeneous livers"):

1. Tiles and their apparent ``(S0_t, R2_t)``: the adaptive quadtree of ``pooled_mean_r2``,
   less the tile fit's own first-order bias (Box 1971, :mod:`r2mri._tile_bias`): at 30 mg/g
   and SNR 20 an 8 x 8 tile reads +0.3 % (1 channel) to +0.8 % (8 channels) high. Tiles
   too noisy for that term (relative SE of R2 > 15 %: the liver's partial edge tiles, dark
   coil regions) get their bias simulated at their shrunk states instead
   (:mod:`r2mri._tile_bias_sim`; left as fitted they read small livers +5 % high in LIC
   at 30 mg/g, SNR 20).
2. The relative variance inside the tiles of R2, ``rho``, and of S0, ``kappa``, for each
   tile edge, from the echo-wise dispersion of the voxels: per tile and echo the
   variance of ``M_i(TE) / mean_tile M(TE)``, pooled over the tiles of one edge, which
   grows as ``kappa + rho mu^2 TE^2`` plus the noise. The noise, the magnitude floor and
   the non-linearities come from simulated voxels (the tiles' corrected S0 and R2, a
   gamma-like spread, the known sigma and channels, common random numbers): Gauss-Newton
   steps of the method of simulated moments in ``(rho, kappa)``, at least two and then
   until rho moves by less than a quarter of its SE. The tiles' states are simulated with
   their fit noise shrunk out (:mod:`r2mri._sim_state`; the noisy states read rho 40 % high
   at 30 mg/g, SNR 20, 8 channels), and item 3's correction is computed at the shrunk
   apparent rates and added to each tile's own (it is convex in the rate). Only the echoes with median
   ``mu TE <= 2.5`` are used (later ones weigh the slow tail's shape).
3. Each tile's rate is corrected by inverting the mixture bias exactly as the tile
   fit sees it: ``E[mean M](t) = sum_q w_q ncchi_mean(S0 exp(-mu g_q t))`` with
   ``g_q`` the Gauss-Hermite nodes of the spread (mean 1), fitted with the same tile
   fit; ``mu`` and ``S0`` are iterated until the fit of the model mixture returns the
   observed tile. This carries the noise floor and the higher cumulants; a negative
   ``rho`` (noise) gives the mirrored correction, so a homogeneous liver is not biased by
   clipping. A tile of k voxels holds its own k voxels' spread, on average ``(k - 1) / k``
   of the between-voxel ``rho`` (2 x 2 tiles: 3/4; using the full rho over-corrected
   them by a third).
4. The shape of the spread: 5 echoes identify its variance, not its skewness. The
   estimate assumes a gamma (Wilson-Hilferty cube of a normal: positive, skewness about
   2 CV, between a normal's 0 and a log-normal's 3 CV; the R2 of a log-normal LIC through
   the St Pierre curve has 1.2 CV at 30 mg/g, 2.9 CV at 7, 3.8 CV at 1 mg/g for SD 0.4).
   A log-normal spread made the statistic read rho 25 % high at 30 mg/g with 8 channels
   (headline +4.5 %); a normal one is closer there but its left tail (rates near 0) makes
   the inversion run away at low SNR. The log-normal estimate is kept inside the interval.
5. The correction's own error for the interval: the sampling error of ``rho`` (tiles of
   the ROI and of the simulation) propagated through the correction (rho +- its SE, the
   larger change); a shape term, half the difference between the gamma and log-normal
   estimates (one more Gauss-Newton step with the log-normal simulation), and the
   interval always reaches the log-normal estimate.

6. A spread that varies between tiles (:mod:`r2mri._spread_map`): at the pooled estimate
   each tile's own spread is read from its own dispersion (one linearised step, its SE
   calibrated on a simulated copy of the ROI) and shrunk towards the edge's by empirical
   Bayes; an edge whose tiles are mostly noise (median reliability < 0.5) keeps the pooled
   value alone. Tiles whose own spread is far beyond a texture's (the edge of a spared or
   focal region) leave the pooled statistic and are fitted as two groups of voxels. The
   pooled spread is then estimated again around that map. One pooled value over-corrected
   both: ``heterogeneous-focal-1.5t`` at 30 mg/g, 8 channels read +11.8 % (SNR 20) and
   +3.0 % (SNR 50).

A first version measured the spread from the dispersion of the voxel-wise fitted R2:
at 30 mg/g and SNR 50 their noise variance is five times the spread and skewed, and
``rho`` came out twice the truth (headline +11 to +21 %); the first echo's amplitude
has an SNR of 12 there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._sim_state import shrunk_state
from ._spread_map import SpreadMap, split_outlier_rates, tile_spread_map
from ._tile_bias import tile_fit_bias
from ._tile_bias_sim import fit_bias_warning, simulated_fit_bias
from .errors import InputError

__all__ = ["MixtureCorrection", "mixture_corrected_mean_r2"]

# probabilists' Gauss-Hermite nodes and weights (9 points, exact for polynomials of degree 17)
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(9)
_GH_W = _GH_W / _GH_W.sum()
_Z95 = 1.959963984540054  # Phi^-1(0.975)
_DRHO = 0.02  # trial step in rho for the statistic's response (finite difference)
_MUT_MAX = 2.5  # [D] echoes of the spread statistic: median mu t <= 2.5 (>= 8 % of S0), at least 2
_SHAPE, _SHAPE_ALT = "gamma", "lognormal"  # [D] shape of the spread inside a tile, and the alternative
# whose difference is the interval's shape term (see the module docstring)
_MIN_STEPS = 2  # Gauss-Newton steps of the spread estimate: at least, and then until rho moves by
_STEP_TOL = 0.25  # [D] less than this fraction of its SE (a relative SD of 0.3 inside 8 x 8 tiles needs 4-5)
_GRID_MIN = 600  # tiles above which the correction is interpolated from a grid (full size, 30 mg/g: the
# 40 x 10 grid reads +0.04 % in LIC against the exact inversion of every tile, a 20 x 6 grid +0.13 %)
_GRID_R2, _GRID_S0 = 40, 10  # grid points in log R2 and log S0
_GRID_RHO = 8  # grid points in the spread when it varies from tile to tile (r2mri/_spread_map.py)
_RHO_SE_MAX = 0.025  # [D] SE of rho above which a tile edge's spread counts as not measured: its 95 %
# interval would be wider than +-0.05, the whole plausible range below
_RHO_PLAUSIBLE = 0.05  # [D] largest relative R2 variance inside tiles of the issue-16 grid (SD 0.4 in log
# LIC from voxel to voxel at 30 mg/g: 0.03-0.05 measured from the phantom truth); used as a bound only
_RHO_NEGATIVE_SE = 2.0  # [D, r2mri's choice] a spread estimate this many SE below zero is a misfit, not
# noise (2.3 % of homogeneous livers by chance): those tiles are left uncorrected, the interval widened
_MISFIT_MATERIAL = 0.005  # [D, r2mri's choice] misfit tiles are reported as a warning only when the correction
# they were spared moves the mean R2 by more than 0.5 % (issue 16's bias bound for uniform livers): on a large
# uniform liver a spread of -8e-5 +- 2.5e-5 is "significant" yet moves the headline by 0.01 % (ferriscan-1.5t-lic7)
_RHO_MAX = 0.15  # |rho| bound [D, r2mri's choice]: relative SD 0.39 of R2 inside a tile, ~3x the
# largest spread inside the tiles of the issue-16 grid (SD 0.4 in log LIC voxel to voxel: rho ~0.03-0.05);
# reached only where the spread is not identified (30 mg/g, SNR 20), where it bounds the correction


@dataclass
class MixtureCorrection:
    """What the within-tile spread correction did (report block ``headline.mixture``)."""

    rho: dict[int, float]
    rho_se: dict[int, float]
    gain: dict[int, float]
    correction_r2_per_s: float
    se_spread_r2_per_s: float
    se_shape_r2_per_s: float
    replicates: int
    extra: dict[str, Any] = field(default_factory=dict)
    #: tile edges whose spread could not be measured (SE of rho > _RHO_SE_MAX): not corrected
    unidentified: list[int] = field(default_factory=list)
    #: how far the interval's upper end must reach for those tiles (R2, s^-1)
    upper_r2_per_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    #: the headline with the other shape of the spread (log-normal) minus this one (R2, s^-1)
    shape_difference_r2_per_s: float = 0.0

    @property
    def se_r2_per_s(self) -> float:
        """Standard error of the correction (spread and shape terms in quadrature)."""
        return float(np.hypot(self.se_spread_r2_per_s, self.se_shape_r2_per_s))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rho_by_tile_size": {str(k): v for k, v in self.rho.items()},
            "rho_se_by_tile_size": {str(k): v for k, v in self.rho_se.items()},
            "correction_r2_per_s": self.correction_r2_per_s,
            "se_spread_r2_per_s": self.se_spread_r2_per_s,
            "se_shape_r2_per_s": self.se_shape_r2_per_s,
            "replicates": self.replicates,
            "unidentified_tile_sizes": list(self.unidentified),
            "upper_extension_r2_per_s": self.upper_r2_per_s,
            "misfit_tile_sizes": list(self.extra.get("misfit_tile_sizes", [])),
            "misfit_mirrored_correction_r2_per_s": self.extra.get("misfit_mirrored_correction_r2_per_s", 0.0),
            "tile_fit_bias_r2_per_s": self.extra.get("tile_fit_bias_r2_per_s", 0.0),
            "tile_fit_bias_skipped_fraction": self.extra.get("tile_fit_bias_skipped_fraction", 0.0),
            "tile_fit_bias_simulated_r2_per_s": self.extra.get("tile_fit_bias_simulated_r2_per_s", 0.0),
            "shape_difference_r2_per_s": self.shape_difference_r2_per_s,
            "spread_map": self.extra.get("spread_map"),
        }


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


def _echo_dispersion(y, tile_of, n_tiles):
    """Per tile and echo: sum of squared deviations of M_i(t) / mean_tile M(t), and the dof."""
    n = np.bincount(tile_of, minlength=n_tiles).astype(np.float64)
    ne = y.shape[1]
    ss = np.empty((n_tiles, ne))
    for e in range(ne):
        s1 = np.bincount(tile_of, weights=y[:, e], minlength=n_tiles)
        mean = s1 / np.maximum(n, 1)
        x = y[:, e] / np.where(mean > 0, mean, 1.0)[tile_of]
        s1x = np.bincount(tile_of, weights=x, minlength=n_tiles)
        s2x = np.bincount(tile_of, weights=x * x, minlength=n_tiles)
        ss[:, e] = np.maximum(s2x - s1x * s1x / np.maximum(n, 1), 0.0)
    return ss, np.maximum(n - 1, 0.0)


def _pooled_echo(ss, dof, sel):
    """Pooled within-tile variance per echo over the tiles ``sel``, and its standard error
    (tiles independent; the SE of a ratio of sums from the tiles' residuals)."""
    d = dof[sel].sum()
    if d <= 0:
        return np.zeros(ss.shape[1]), np.full(ss.shape[1], np.inf)
    v = ss[sel].sum(axis=0) / d
    r = ss[sel] - v[None, :] * dof[sel][:, None]
    return v, np.sqrt(np.sum(r * r, axis=0)) / d


def _ncchi_draw(amp, sigma, coils, rng):
    """RSS magnitude of ``coils`` channels with the whole amplitude on the first (exact in law)."""
    re = amp + sigma * rng.standard_normal(amp.shape)
    power = re * re + (sigma * rng.standard_normal(amp.shape)) ** 2
    for _ in range(coils - 1):
        power += (sigma * rng.standard_normal(amp.shape)) ** 2 + (sigma * rng.standard_normal(amp.shape)) ** 2
    return np.sqrt(power)


def mixture_corrected_mean_r2(image: Any, mask: np.ndarray, *, noise_sigma: float, coils: int = 1,
                              tile: "int | str" = "adaptive", seed: int = 0, replicates: "int | None" = None,
                              n_steps: int = 6):
    """Tile-pooled mean R2 corrected for the spread of R2 within the tiles.

    Parameters
    ----------
    image : MultiEchoImage
        Magnitude data (x, y, z, echo) and echo times.
    mask : ndarray of bool, shape (x, y, z)
        The liver ROI.
    noise_sigma : float
        Noise SD per real/imaginary part of one channel.
    coils : int, default 1
        Channels combined by root-sum-of-squares.
    tile : int or "adaptive", default "adaptive"
        Tiles of :func:`r2mri.stats.pooled_mean_r2`.
    seed : int, default 0
        Seed of the simulated voxels (results are deterministic).
    replicates : int, optional
        Simulated copies of the ROI per evaluation of the spread statistic; default 2
        below 20,000 ROI voxels, else 1 (the simulation's sampling error is then already
        below the observation's).

    Returns
    -------
    (PooledR2, MixtureCorrection)
        The pooled result with corrected tile rates and mean (``se_r2_per_s`` is the
        measurement SE only), and the correction with its standard error.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri import MultiEchoImage
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> data = 1000 * np.exp(-100.0 * te) * np.ones((8, 8, 1, 5))
    >>> p, c = mixture_corrected_mean_r2(MultiEchoImage(data, te), np.ones((8, 8, 1), bool), noise_sigma=1.0)
    >>> abs(p.mean_r2_per_s - 100.0) < 0.5
    True
    """
    from .stats import pooled_mean_r2

    sigma, coils = float(noise_sigma), int(coils)
    pooled = pooled_mean_r2(image, mask, noise_sigma=sigma, coils=coils, tile=tile)
    t = _tile_set(image, pooled, sigma, coils, seed)
    if replicates is None:
        replicates = 2 if t.y.shape[0] < 20_000 else 1
    replicates = max(int(replicates), 1)
    simulated = _simulator(t, seed, replicates, _SHAPE)
    rho, rho_se, gain, mu, state = _estimate_spread(t, simulated, n_steps, _SHAPE)
    # the spread's tile-to-tile part (r2mri/_spread_map.py); with it, the pooled spread again
    t.spread = tile_spread_map(t, simulated, state, replicates, seed)
    if t.spread is not None:
        rho, rho_se, gain, mu, state = _estimate_spread(t, simulated, n_steps, _SHAPE, start=state)
    # the shape is not identified by the data: one step of the same estimation with the other
    # shape (log-normal) from this estimate; half the difference is the shape term
    mu_alt = _estimate_spread(t, _simulator(t, seed, replicates, _SHAPE_ALT), 1, _SHAPE_ALT, start=state)[3]
    corrected, se_spread, shape_diff, upper, unidentified, misfit = _correction_and_errors(t, rho, rho_se, mu,
                                                                                          mu_alt)
    se_shape = abs(shape_diff) / 2
    se_spread = float(np.hypot(se_spread, t.fit_bias_sim_se))  # and the simulated fit bias's Monte Carlo SE
    wsum = t.k.sum()
    mean = float(np.sum(t.k * corrected) / wsum)
    mean_app = float(np.sum(t.k * t.r2_app) / wsum) + t.fit_bias_r2  # the tiles as fitted
    if not np.isfinite(mean):
        raise InputError("mask: the within-tile spread correction failed (non-finite mean R2)")
    pooled.tile_r2_per_s = corrected
    pooled.mean_r2_per_s = mean
    warn = []
    if unidentified:
        frac = float(sum(t.k[t.sel_of[s]].sum() for s in unidentified) / wsum)
        warn.append(f"headline: the spread of R2 inside the {'/'.join(str(s) for s in unidentified)}-voxel tiles "
                    f"({100 * frac:.0f} % of the ROI) could not be measured at this noise level; those tiles are "
                    f"not corrected (a patchy liver reads low) and the interval's upper end includes the "
                    f"correction of a relative spread of {_RHO_PLAUSIBLE:g} (or of the estimate, if larger)")
    # the mirrored correction the misfit tiles were spared (the interval covers it either way)
    misfit_r2 = float(sum(np.sum(t.k[t.sel_of[s]] * (mu[t.sel_of[s]] - t.r2_app[t.sel_of[s]])) for s in misfit)
                      / wsum)
    if misfit and abs(misfit_r2) > _MISFIT_MATERIAL * abs(mean):
        warn.append(f"headline: the spread of R2 inside the {'/'.join(str(s) for s in misfit)}-voxel tiles came "
                    f"out below zero by more than {_RHO_NEGATIVE_SE:g} standard errors (the mixture model does not "
                    "describe these data); those tiles are not corrected and the interval includes the difference")
    fb_warn = fit_bias_warning(t.fit_bias_r2, t.fit_bias_sim_r2, t.fit_bias_skipped, mean)  # r2mri/_tile_bias_sim.py
    warn += [fb_warn] if fb_warn else []
    corr = MixtureCorrection(rho, rho_se, gain, mean - mean_app, se_spread, se_shape, replicates,
                             {"mean_r2_uncorrected_per_s": mean_app, "mean_r2_shape_alternative_per_s": mean + shape_diff,
                              "misfit_tile_sizes": list(misfit), "misfit_mirrored_correction_r2_per_s": misfit_r2,
                              "tile_fit_bias_r2_per_s": t.fit_bias_r2,
                              "tile_fit_bias_skipped_fraction": t.fit_bias_skipped,
                              "tile_fit_bias_simulated_r2_per_s": t.fit_bias_sim_r2,
                              "spread_map": t.spread.to_dict() if t.spread is not None else None},
                             unidentified, max(upper, 0.0), warn, shape_difference_r2_per_s=shape_diff)
    return pooled, corr


@dataclass
class _TileSet:
    """The ROI voxels in their tiles, and the tiles' apparent fit."""

    te: np.ndarray
    sigma: float
    coils: int
    y: np.ndarray  # (voxel, echo) magnitudes of the voxels in accepted tiles
    tile_of: np.ndarray  # tile index of each voxel
    k: np.ndarray  # voxels per tile
    r2_app: np.ndarray
    s0_app: np.ndarray
    sizes: list
    sel_of: dict
    fit_bias_r2: float = 0.0  # voxel-weighted mean first-order bias taken off the tile fits (s^-1)
    fit_bias_skipped: float = 0.0  # voxel share of tiles too noisy for the first-order term (left as fitted)
    se_rel: "np.ndarray | None" = None  # relative SE of each tile's fitted R2 (r2mri/_sim_state.py)
    spread: "SpreadMap | None" = None  # the spread's tile-to-tile part (r2mri/_spread_map.py)
    fit_bias_sim_r2: float = 0.0  # part of fit_bias_r2 simulated for the skipped tiles (r2mri/_tile_bias_sim.py)
    fit_bias_sim_se: float = 0.0  # its Monte Carlo SE (s^-1)

    @property
    def nt(self) -> int:
        return self.k.size

    def rho_tiles(self, rho_by_edge, s: "int | None" = None) -> np.ndarray:
        """Each tile's spread (of the tiles of edge ``s``, or of all): the edge's pooled ``rho``
        plus the tile's own part (r2mri/_spread_map.py)."""
        v = np.zeros(self.nt)
        for s_ in self.sizes:
            v[self.sel_of[s_]] = rho_by_edge[s_]
        if self.spread is not None:
            v = self.spread.apply(v)
        return v if s is None else v[self.sel_of[s]]

    def pooled(self, s: int) -> np.ndarray:
        """Tiles of edge ``s`` whose dispersion enters the edge's pooled spread statistic."""
        sel = self.sel_of[s]
        return sel if self.spread is None else sel & ~self.spread.outlier

    def ref_state(self):
        """The apparent (R2, S0) with the tile fits' noise shrunk out (r2mri/_sim_state.py)."""
        if self.se_rel is None:
            return self.r2_app, self.s0_app
        return shrunk_state(self.r2_app, self.s0_app, self.se_rel, self.k, [self.sel_of[s] for s in self.sizes],
                            self.te)


def _tile_set(image, pooled, sigma, coils, seed: int = 0) -> _TileSet:
    from .stats import _tile_fit

    te = np.asarray(image.echo_times_s, dtype=np.float64)
    y = np.asarray(image.data).reshape(-1, te.size)[pooled.voxel_index].astype(np.float64)
    tile_of = pooled.voxel_tile
    keep = tile_of >= 0  # voxels of tiles that failed at the last level are not in the headline
    y, tile_of = y[keep], tile_of[keep]
    k = pooled.tile_voxels.astype(np.float64)
    sums = np.zeros((k.size, te.size))
    np.add.at(sums, tile_of, y)
    _r2, s0_app, _se, _ok = _tile_fit(sums / k[:, None], te, k, sigma, coils)
    # the tile fit's own first-order bias (r2mri/_tile_bias.py; +0.8 % per 8 x 8 tile at
    # 30 mg/g, SNR 20, 8 channels) is taken off before the spread correction
    b_s0, b_r2 = tile_fit_bias(pooled.tile_r2_per_s, s0_app, te, k, sigma, coils)
    sizes = [int(v) for v in np.unique(pooled.tile_size)]
    se_rel = pooled.tile_se_r2_per_s / np.maximum(pooled.tile_r2_per_s, 1e-3)
    sel_of = {s: pooled.tile_size == s for s in sizes}
    skipped = b_r2 == 0.0
    # tiles too noisy for the Box term: their bias simulated at the shrunk states (r2mri/_tile_bias_sim.py)
    sim_r2 = simulated_fit_bias(pooled.tile_r2_per_s, s0_app, se_rel, k, list(sel_of.values()), skipped, te, sigma,
                                coils, seed)
    b_s0, b_r2 = b_s0 + sim_r2[0], b_r2 + sim_r2[1]
    return _TileSet(te, sigma, coils, y, tile_of, k, pooled.tile_r2_per_s - b_r2, s0_app - b_s0, sizes,
                    sel_of, float(np.sum(k * b_r2) / k.sum()), float(np.sum(k[skipped]) / k.sum()), se_rel,
                    fit_bias_sim_r2=float(np.sum(k * sim_r2[1]) / k.sum()), fit_bias_sim_se=sim_r2[2])


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


def _simulator(t: _TileSet, seed: int, replicates: int, shape: str = "lognormal"):
    """``simulated(mu, s0, rho_t, kappa_t)``: replicate-averaged echo dispersion of simulated
    voxels, rates mu_t g (relative variance rho_t), amplitudes s0_t h (relative variance
    kappa_t), the known noise; the same draws at every call (common random numbers)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((replicates, 2, t.y.shape[0]))
    noise_state = rng.bit_generator.state

    def simulated(mu, s0, rho_by_tile, kappa_by_tile):
        rng.bit_generator.state = noise_state
        if t.se_rel is not None:  # the tile fits' noise out of the state (r2mri/_sim_state.py)
            mu, s0 = shrunk_state(mu, s0, t.se_rel, t.k, [t.sel_of[s] for s in t.sizes], t.te)
        out = np.zeros((t.nt, t.te.size))
        q2 = np.log1p(np.maximum(kappa_by_tile, 0.0))[t.tile_of]
        for r in range(replicates):
            g = _draw_spread(rho_by_tile[t.tile_of], z[r, 0], shape)
            h = np.exp(np.sqrt(q2) * z[r, 1] - q2 / 2)
            amp = (s0[t.tile_of] * h)[:, None] * np.exp(-(mu[t.tile_of] * g)[:, None] * t.te[None, :])
            out += _echo_dispersion(_ncchi_draw(amp, t.sigma, t.coils, rng), t.tile_of, t.nt)[0]
        return out / replicates

    return simulated


def _gauss_newton(v_obs, se_obs, va, se_a, jr, jk, mu_t, te):
    """One weighted Gauss-Newton step in (rho, kappa) from the echo-wise dispersions of one
    tile edge; returns (step, SE of rho)."""
    w = 1.0 / np.maximum(se_obs**2 + se_a**2, 1e-30)
    # echoes within the cumulant regime (median mu t <= _MUT_MAX, at least two): later
    # echoes weigh the slowest voxels, i.e. the tail's shape, not the spread
    mut = np.median(mu_t) * te
    w = np.where(mut <= max(_MUT_MAX, np.sort(mut)[1]), w, 0.0)
    jac = np.stack([jr, jk], axis=1)
    try:
        cov = np.linalg.inv(jac.T @ (w[:, None] * jac))
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.inf)
    step = cov @ (jac.T @ (w * (v_obs - va)))
    if not np.all(np.isfinite(step)):
        step = np.zeros(2)
    se = float(np.sqrt(cov[0, 0])) if np.isfinite(cov[0, 0]) and cov[0, 0] >= 0 else float("inf")
    return step, se


def _estimate_spread(t: _TileSet, simulated, n_steps: int, shape: str, start=None):
    """The method of simulated moments for (rho, kappa) per tile edge; the tiles' rates are
    re-corrected after each step (the simulation runs at the corrected rates and S0).

    ``start``: the state ``(rho, kappa, mu, s0)`` of a previous run to step on from (the
    other shape's estimate, for the shape term of the interval). Returns ``(rho, rho_se,
    gain, mu, state)``."""
    obs_ss, dof = _echo_dispersion(t.y, t.tile_of, t.nt)
    if start is None:
        rho = {s: 0.0 for s in t.sizes}
        kappa = {s: 0.0 for s in t.sizes}
        mu, s0_cur = t.r2_app.copy(), t.s0_app.copy()
    else:
        rho, kappa = dict(start[0]), dict(start[1])
        mu, s0_cur = start[2].copy(), start[3].copy()
    rho_se, gain = {}, {}

    def per_tile(d):
        v = np.zeros(t.nt)
        for s_ in t.sizes:
            v[t.sel_of[s_]] = max(d[s_], 0.0)
        return v

    for n_done in range(n_steps):
        ra, ka = np.maximum(t.rho_tiles({s_: max(rho[s_], 0.0) for s_ in t.sizes}), 0.0), per_tile(kappa)
        moved = False
        sim_a = simulated(mu, s0_cur, ra, ka)
        sim_r = simulated(mu, s0_cur, ra + _DRHO, ka)
        sim_k = simulated(mu, s0_cur, ra, ka + _DRHO)
        for s in t.sizes:
            sel = t.pooled(s)
            if dof[sel].sum() <= 0:  # single-voxel tiles: nothing was pooled, nothing to correct
                rho_se[s], gain[s] = 0.0, 0.0
                continue
            v_obs, se_obs = _pooled_echo(obs_ss, dof, sel)
            va, se_a = _pooled_echo(sim_a, dof, sel)  # se_a: SE of the replicate average
            jr = (_pooled_echo(sim_r, dof, sel)[0] - va) / _DRHO
            jk = (_pooled_echo(sim_k, dof, sel)[0] - va) / _DRHO
            step, rho_se[s] = _gauss_newton(v_obs, se_obs, va, se_a, jr, jk, mu[sel], t.te)
            new_rho = float(np.clip(max(rho[s], 0.0) + step[0], -_RHO_MAX, _RHO_MAX))
            moved |= not abs(new_rho - rho[s]) <= _STEP_TOL * rho_se[s]
            rho[s] = new_rho
            kappa[s] = float(np.clip(max(kappa[s], 0.0) + step[1], -_RHO_MAX, _RHO_MAX))
            gain[s] = float(jr[0])
        # the correction is convex in the rate (~rho mu^2): computed at the shrunk apparent
        # rates (r2mri/_sim_state.py) and added to each tile's own, so fit noise does not inflate it
        r_ref, s_ref = t.ref_state()
        done = _correct_many([(r_ref[t.sel_of[s]], s_ref[t.sel_of[s]], t.k[t.sel_of[s]], t.rho_tiles(rho, s)
                               if t.spread is not None else rho[s]) for s in t.sizes], t.te, t.sigma, t.coils, shape)
        for s, (m_s, s0_s) in zip(t.sizes, done):
            sel = t.sel_of[s]
            mu[sel] = t.r2_app[sel] + (m_s - r_ref[sel])
            s0_cur[sel] = t.s0_app[sel] * (s0_s / s_ref[sel])
        if n_done + 1 >= _MIN_STEPS and not moved:
            break
    return rho, rho_se, gain, mu, (rho, kappa, mu, s0_cur)


def _correction_and_errors(t: _TileSet, rho, rho_se, mu, mu_alt):
    """Corrected tile rates, the correction's SE (spread, shape), the upper extension for
    tile edges whose spread was not measurable, and those edges."""
    corrected = mu.copy()  # the last step's rates: the correction at the final rho
    shape_alt, hi, lo, up = (t.r2_app.copy() for _ in range(4))
    # not measured: too noisy, or more than 2 SE above the largest plausible spread (at 30
    # mg/g, SNR 15, one channel, outside the grid: rho 0.10 +- 0.02 would have read +340 %)
    unidentified = [s for s in t.sizes
                    if not (rho_se[s] <= _RHO_SE_MAX and rho[s] - _RHO_NEGATIVE_SE * rho_se[s] <= _RHO_PLAUSIBLE)]
    misfit: list[int] = []
    for s in t.sizes:
        sel = t.sel_of[s]
        r, e = rho[s], rho_se[s]
        r_ref, s_ref = t.ref_state()
        args = (r_ref[sel], s_ref[sel], t.k[sel], t.te, t.sigma, t.coils)
        off = t.r2_app[sel] - r_ref[sel]  # corrections at the shrunk rates, added to each tile's own
        if s in unidentified:
            # the spread is not measurable here: no correction, and the interval reaches up
            # to the correction of the largest plausible spread
            corrected[sel] = t.r2_app[sel]
            # measured but implausibly large: the interval reaches the estimate's correction
            r_up = max(_RHO_PLAUSIBLE, min(r, _RHO_MAX)) if e <= _RHO_SE_MAX else _RHO_PLAUSIBLE
            up[sel] = _correct(*args, r_up, _SHAPE)[0] + off
            continue
        if r + _RHO_NEGATIVE_SE * e < 0:
            # a spread (a variance) cannot be negative: this far below zero the mixture model
            # does not describe the data (seen at SNR 10, 8 channels, outside the validated
            # grid: -0.9 % with the mirrored correction). No correction, and the interval
            # reaches to the mirrored one on both sides.
            corrected[sel] = up[sel] = shape_alt[sel] = t.r2_app[sel]
            lo[sel] = mu[sel]
            hi[sel] = 2 * t.r2_app[sel] - mu[sel]
            misfit.append(s)
            continue
        up[sel] = corrected[sel]
        shape_alt[sel] = mu_alt[sel]
        r_hi, r_lo = (float(np.clip(r + e, -_RHO_MAX, _RHO_MAX)), float(np.clip(r - e, -_RHO_MAX, _RHO_MAX)))
        if t.spread is not None:  # a spread per tile: the edge's pooled part moved by its SE
            hi[sel] = _correct(*args, t.rho_tiles({**rho, s: r_hi}, s), _SHAPE)[0] + off
            lo[sel] = _correct(*args, t.rho_tiles({**rho, s: r_lo}, s), _SHAPE)[0] + off
        elif abs(r) > 2 * e:
            # the correction is nearly proportional to rho: scaled (saves two inversions per
            # edge; the SE is a first-order quantity anyway)
            d = corrected[sel] - t.r2_app[sel]
            hi[sel], lo[sel] = t.r2_app[sel] + d * r_hi / r, t.r2_app[sel] + d * r_lo / r
        else:
            hi[sel] = _correct(*args, r_hi, _SHAPE)[0] + off
            lo[sel] = _correct(*args, r_lo, _SHAPE)[0] + off
    unchanged = np.zeros(t.nt, bool)
    for s in unidentified:
        unchanged |= t.sel_of[s]
    shape_alt[unchanged] = hi[unchanged] = lo[unchanged] = t.r2_app[unchanged]
    if t.spread is not None and t.spread.outlier.any():
        # tiles across a focal edge: fitted as two groups of voxels (r2mri/_spread_map.py)
        out = np.flatnonzero(t.spread.outlier)
        v = split_outlier_rates(t, out, {s: (0.0 if s in unidentified or s in misfit else max(rho[s], 0.0))
                                     for s in t.sizes})
        for arr in (corrected, hi, lo, shape_alt, up):
            arr[out] = np.where(np.isfinite(v), v, arr[out])  # a tile that could not be refitted keeps its own
    wsum = t.k.sum()

    def mean_of(v):
        return float(np.sum(t.k * v) / wsum)

    mean = mean_of(corrected)
    # both sides (one may sit on the rho bound): the larger change is the SE
    se_spread = max(abs(mean_of(hi) - mean), abs(mean_of(lo) - mean))
    return corrected, se_spread, mean_of(shape_alt) - mean, mean_of(up) - mean, unidentified, misfit


#: Estimators of the mean liver R2 that pool tiles (``liver_statistics(estimator=...)``).
POOLED_ESTIMATORS = ("tile-mixture", "tile-ncchi")


def headline_pooled(image: Any, mask: np.ndarray, *, noise_sigma: float, coils: int, tile: "int | str",
                    seed: int, estimator: str):
    """The pooled headline of ``liver_statistics``: ``(PooledR2, MixtureCorrection or None, name)``.

    ``estimator="auto"`` or ``"tile-mixture"``: tiles corrected for their within-tile
    spread (:func:`mixture_corrected_mean_r2`); ``"tile-ncchi"``: the tiles as fitted.
    """
    from .stats import pooled_mean_r2

    if estimator == "tile-ncchi":
        pooled, corr, name = pooled_mean_r2(image, mask, noise_sigma=noise_sigma, coils=coils, tile=tile), None, \
            "tile-ncchi"
    else:
        pooled, corr = mixture_corrected_mean_r2(image, mask, noise_sigma=noise_sigma, coils=coils, tile=tile,
                                                 seed=seed)
        name = "tile-mixture"
    pooled.estimator = name  # type: ignore[attr-defined]  # as r2mri/_gre.py names its pooled result
    return pooled, corr, name


def widen_interval(lo: float, hi: float, mean: float, corr: "MixtureCorrection | None") -> tuple[float, float]:
    """Add the correction's own standard error to each side of a 95 % interval, in quadrature,
    and the bound of the tiles whose spread was not measurable to the upper side."""
    if corr is None:
        return lo, hi
    if np.isfinite(corr.se_r2_per_s) and corr.se_r2_per_s > 0:
        extra = _Z95 * corr.se_r2_per_s
        lo, hi = mean - float(np.hypot(mean - lo, extra)), mean + float(np.hypot(hi - mean, extra))
    # the other shape's headline lies inside the interval (its difference is not a random error)
    d = corr.shape_difference_r2_per_s
    if np.isfinite(d):
        lo, hi = min(lo, mean + d), max(hi, mean + d)
    # tiles whose spread was not measurable: a bound, added in full to the upper side
    return lo, hi + corr.upper_r2_per_s
