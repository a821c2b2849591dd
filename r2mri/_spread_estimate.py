"""The within-tile spread of R2 per tile edge by simulated moments (item 2 of
:mod:`r2mri._headline`): the tiles' voxels (:class:`_TileSet`), their echo-wise
dispersion, the simulator at the tiles' states and the Gauss-Newton steps in
``(rho, kappa)`` (docs/statistics.md section 2, "Heterogeneous livers").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _kappa_guard
from ._mixture import _correct_many, _draw_spread
from ._s0_shading import field_kappa
from ._sim_state import shrunk_state
from ._spread_map import SpreadMap
from ._tile_bias import tile_fit_bias
from ._tile_bias_sim import simulated_fit_bias

_DRHO = 0.02  # trial step in rho for the statistic's response (finite difference)
_MUT_MAX = 2.5  # [D] echoes of the spread statistic: median mu t <= 2.5 (>= 8 % of S0), at least 2
_MIN_STEPS = 2  # Gauss-Newton steps of the spread estimate: at least, and then until rho moves by
_STEP_TOL = 0.25  # [D] less than this fraction of its SE (a relative SD of 0.3 inside 8 x 8 tiles needs 4-5)
_CLASS_AT_SHRUNK = True  # Box term and its class at the shrunk states (False: at the tile's own fit, as before)
_KAPPA_FROM = "prior"  # kappa (the within-tile S0 spread) has a normal prior from the tiles' S0 field
# (r2mri/_s0_shading.py) in the joint (rho, kappa) fit; "joint": no prior, the design before branch kappa (and the
# fall-back when too few tiles hold the surface). Small livers at 30 mg/g, SNR 20 (24 livers per cell, paired):
# uniform 8 channels rho +0.0053 -> -0.0001 (SD 0.0070 -> 0.0011), LIC +3.72 -> -0.35 %; docs/statistics.md "kappa
# from the S0 field". Measured and not kept: kappa held at the field's value (as good on those livers; on a
# 64 x 64 x 11 liver at 0.5 mg/g, SNR 50 it read rho +0.026 where the plane missed the shading's curvature), a
# two-stage fit (rho alone, then one joint step; branch rhobias), a parametric-bootstrap bias correction of rho
# (8 replicates: uniform 8 channels +3.72 -> +3.32 %, x1.5-2 CPU)
_RHO_MAX = 0.15  # |rho| bound [D, r2mri's choice]: relative SD 0.39 of R2 inside a tile, ~3x the
# largest spread inside the tiles of the issue-16 grid (SD 0.4 in log LIC voxel to voxel: rho ~0.03-0.05);
# reached only where the spread is not identified (30 mg/g, SNR 20), where it bounds the correction


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
    """RSS magnitude of ``coils`` channels with the whole amplitude on the first (exact in law):
    ``|A + sigma z|^2`` plus ``sigma^2`` times a chi-square of ``2 coils - 1`` degrees of freedom
    (one draw instead of ``2 coils - 1`` normals; with one channel a squared normal)."""
    re = amp + sigma * rng.standard_normal(amp.shape)
    if coils <= 1:
        return np.sqrt(re * re + (sigma * rng.standard_normal(amp.shape)) ** 2)
    return np.sqrt(re * re + sigma**2 * rng.chisquare(2 * int(coils) - 1, amp.shape))


def _ncchi_draw_normals(amp, sigma, coils, rng):
    """:func:`_ncchi_draw` from ``2 coils`` normals per magnitude (the draw before the
    chi-square shortcut; kept for benchmarks/small20.py's same-process comparison)."""
    re = amp + sigma * rng.standard_normal(amp.shape)
    power = re * re + (sigma * rng.standard_normal(amp.shape)) ** 2
    for _ in range(coils - 1):
        power += (sigma * rng.standard_normal(amp.shape)) ** 2 + (sigma * rng.standard_normal(amp.shape)) ** 2
    return np.sqrt(power)



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
    kappa_prior: "dict | None" = None  # kappa per edge from the S0 field (r2mri/_s0_shading.py): the prior's mean
    kappa_se: "dict | None" = None  # its standard error per edge (the prior's SD)
    kappa_dropped: set = field(default_factory=set)  # edges whose prior the guard dropped (r2mri/_kappa_guard.py)
    xyz: "np.ndarray | None" = None  # grid indices of the voxels in ``y`` (r2mri/_s0_texture.py)
    rho_per_kappa_mean: dict = field(default_factory=dict)  # d rho / d (kappa's prior mean) per edge at the last
    # step (r2mri/_s0_texture.py: the headline's shift were the prior to see the measured fine S0 texture)

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
    sizes = [int(v) for v in np.unique(pooled.tile_size)]
    se_rel = pooled.tile_se_r2_per_s / np.maximum(pooled.tile_r2_per_s, 1e-3)
    sel_of = {s: pooled.tile_size == s for s in sizes}
    # the tile fit's own first-order bias (r2mri/_tile_bias.py; +0.8 % per 8 x 8 tile at
    # 30 mg/g, SNR 20, 8 channels) is taken off before the spread correction. Evaluated at the
    # tiles' shrunk states (r2mri/_sim_state.py), whose SE also decides which tiles are too noisy
    # for it: a tile's own SE follows its own noise (a tile reading low has a smaller SE), and
    # chosen by it the Box class read low and the noisy class high (uniform small livers, 30 mg/g,
    # SNR 20, 8 channels: -1.19 / +0.37 % of R2 left; benchmarks/small20.py)
    kn = k if getattr(pooled, "tile_noise_voxels", None) is None else pooled.tile_noise_voxels  # r2mri/_corr_tiles.py
    if _CLASS_AT_SHRUNK:
        r_sh, s_sh = shrunk_state(pooled.tile_r2_per_s, s0_app, se_rel, k, list(sel_of.values()), te)
        b_s0, b_r2 = tile_fit_bias(r_sh, s_sh, te, kn, sigma, coils)
    else:
        b_s0, b_r2 = tile_fit_bias(pooled.tile_r2_per_s, s0_app, te, kn, sigma, coils)
    skipped = b_r2 == 0.0
    # tiles too noisy for the Box term: their bias simulated at the shrunk states (r2mri/_tile_bias_sim.py)
    sim_r2 = simulated_fit_bias(pooled.tile_r2_per_s, s0_app, se_rel, k, list(sel_of.values()), skipped, te, sigma,
                                coils, seed, conditioned=not _CLASS_AT_SHRUNK, k_noise=kn,
                                draw=getattr(pooled, "tile_noise_draw", None))
    b_s0, b_r2 = b_s0 + sim_r2[0], b_r2 + sim_r2[1]
    kappa_prior = kappa_se = None
    xyz = np.stack(np.unravel_index(pooled.voxel_index[keep], np.asarray(image.data).shape[:3]), axis=1)
    if _KAPPA_FROM == "prior":  # kappa from the tiles' S0 field, not from the dispersions (r2mri/_s0_shading.py)
        kappa_prior, kappa_se = field_kappa(xyz, tile_of, k, s0_app - b_s0, sel_of)
    return _TileSet(te, sigma, coils, y, tile_of, k, pooled.tile_r2_per_s - b_r2, s0_app - b_s0, sizes,
                    sel_of, float(np.sum(k * b_r2) / k.sum()), float(np.sum(k[skipped]) / k.sum()), se_rel,
                    fit_bias_sim_r2=float(np.sum(k * sim_r2[1]) / k.sum()), fit_bias_sim_se=sim_r2[2],
                    kappa_prior=kappa_prior, kappa_se=kappa_se, xyz=xyz)


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


def _echo_weights(se_obs, se_a, mu_t, te):
    """Weights of the echoes in the moment fit: inverse variance, and only echoes within the
    cumulant regime (median mu t <= _MUT_MAX, at least two): later echoes weigh the slowest
    voxels, i.e. the tail's shape, not the spread."""
    w = 1.0 / np.maximum(se_obs**2 + se_a**2, 1e-30)
    mut = np.median(mu_t) * te
    return np.where(mut <= max(_MUT_MAX, np.sort(mut)[1]), w, 0.0)


def _gauss_newton(v_obs, se_obs, va, se_a, jr, jk, mu_t, te, prior=None):
    """One weighted Gauss-Newton step in (rho, kappa) from the echo-wise dispersions of one
    tile edge (in rho alone, kappa's step 0, when ``jk`` is None); returns (step, SE of rho)."""
    w = _echo_weights(se_obs, se_a, mu_t, te)
    jac = np.stack([jr, jk], axis=1) if jk is not None else jr[:, None]
    info, score = jac.T @ (w[:, None] * jac), jac.T @ (w * (v_obs - va))
    if prior is not None and jk is not None:  # a normal prior on kappa: (current, prior mean, prior SE)
        k_cur, k_mean, k_se = prior
        info[1, 1] += 1.0 / k_se**2
        score[1] += (k_mean - k_cur) / k_se**2
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full((jac.shape[1],) * 2, np.inf)
    step = cov @ score
    step = np.append(step, 0.0) if jk is None else step
    if not np.all(np.isfinite(step)):
        step = np.zeros(2)
    se = float(np.sqrt(cov[0, 0])) if np.isfinite(cov[0, 0]) and cov[0, 0] >= 0 else float("inf")
    return step, se


def _prior_gain(w, jr, jk, k_se) -> float:
    """d rho / d (kappa's prior mean) at a Gauss-Newton fixed point: the posterior covariance of
    (rho, kappa) times the prior's information, ``cov[0, 1] / k_se^2`` (negative: a larger prior
    kappa lowers rho)."""
    jac = np.stack([jr, jk], axis=1)
    info = jac.T @ (w[:, None] * jac)
    info[1, 1] += 1.0 / k_se**2
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return 0.0
    g = float(cov[0, 1] / k_se**2)
    return g if np.isfinite(g) else 0.0


def _recorrect(t: _TileSet, rho, mu, s0_cur, shape: str) -> None:
    """The tiles' rates and S0 (``mu``, ``s0_cur``, in place) corrected for the spread ``rho`` per edge.

    The correction is convex in the rate (~rho mu^2): computed at the shrunk apparent rates
    (r2mri/_sim_state.py) and added to each tile's own, so fit noise does not inflate it."""
    r_ref, s_ref = t.ref_state()
    done = _correct_many([(r_ref[t.sel_of[s]], s_ref[t.sel_of[s]], t.k[t.sel_of[s]], t.rho_tiles(rho, s)
                           if t.spread is not None else rho[s]) for s in t.sizes], t.te, t.sigma, t.coils, shape)
    for s, (m_s, s0_s) in zip(t.sizes, done):
        sel = t.sel_of[s]
        mu[sel] = t.r2_app[sel] + (m_s - r_ref[sel])
        s0_cur[sel] = t.s0_app[sel] * (s0_s / s_ref[sel])


def _estimate_spread(t: _TileSet, simulated, n_steps: int, shape: str, start=None):
    """The method of simulated moments for (rho, kappa) per tile edge; the tiles' rates are
    re-corrected after each step (the simulation runs at the corrected rates and S0).

    The joint system is nearly singular when few echoes are in the cumulant regime (30 mg/g,
    SNR 20: two echoes, rho and kappa correlate -0.985); iterated to its root it read rho
    +0.0026 +- 0.0006 high in uniform small 8-channel livers (benchmarks/rhobias.py). So
    kappa has a normal prior from the tiles' S0 field (``t.kappa_prior`` +- ``t.kappa_se``,
    r2mri/_s0_shading.py) in each step: where two echoes cannot separate rho from kappa the
    prior holds kappa, where more echoes can (low R2) the data decide, and rho's SE is the
    posterior's (kappa's uncertainty included). Without it (too few tiles for the surface,
    ``_KAPPA_FROM = "joint"``) the steps are the plain joint ones. An optional guard
    (r2mri/_kappa_guard.py, off by default: measured, not shipped) drops the prior for an edge
    where the data's own kappa lies > 3 SE above it: ``t.kappa_dropped``.

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
    prior = t.kappa_prior is not None
    if prior and start is None:
        kappa = dict(t.kappa_prior)  # the prior's mean as the start
    rho_se, gain = {}, {}
    dropped: set = set()  # tile edges whose prior the guard dropped (r2mri/_kappa_guard.py)

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
            pr = (max(kappa[s], 0.0), t.kappa_prior[s], max(t.kappa_se[s], 1e-6)) if prior else None
            if pr is not None and (_kappa_guard._GUARD != "none" or _kappa_guard.RECORD is not None):  # fine S0 texture
                kd, kd_se = _kappa_guard.data_kappa(_echo_weights(se_obs, se_a, mu[sel], t.te), jr, jk, v_obs - va,
                                                    pr[0])
                if _kappa_guard.RECORD is not None:
                    _kappa_guard.RECORD.append((s, pr[1], pr[2], kd, kd_se))
                pr = None if s in dropped else _kappa_guard.guarded_prior(pr, kd, kd_se)
                if pr is None:  # dropped once, dropped for the rest of this estimate (no flip-flop between steps)
                    dropped.add(s)
            step, rho_se[s] = _gauss_newton(v_obs, se_obs, va, se_a, jr, jk, mu[sel], t.te, pr)
            t.rho_per_kappa_mean[s] = (_prior_gain(_echo_weights(se_obs, se_a, mu[sel], t.te), jr, jk, pr[2])
                                       if pr is not None else 0.0)
            new_rho = float(np.clip(max(rho[s], 0.0) + step[0], -_RHO_MAX, _RHO_MAX))
            moved |= not abs(new_rho - rho[s]) <= _STEP_TOL * rho_se[s]
            rho[s] = new_rho
            kappa[s] = float(np.clip(max(kappa[s], 0.0) + step[1], -_RHO_MAX, _RHO_MAX))
            gain[s] = float(jr[0])
        _recorrect(t, rho, mu, s0_cur, shape)
        if n_done + 1 >= _MIN_STEPS and not moved:
            break
    t.kappa_dropped |= dropped
    return rho, rho_se, gain, mu, (rho, kappa, mu, s0_cur)
