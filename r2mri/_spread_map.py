"""A within-tile spread of R2 that varies from tile to tile (the ``tile-mixture`` headline).

Why: :mod:`r2mri._headline` estimates one relative within-tile spread ``rho`` per tile
edge, pooled over all the tiles of that edge, and corrects every tile with it. Real
spreads differ from tile to tile (a coarse texture is flat in some tiles and steep in
others; a tile across the edge of a spared region holds two populations of voxels), and
both halves of the estimator bend with the spread: the echo-wise dispersion statistic is
convex in it, the mixture correction concave. One pooled value therefore reads high
twice (docs/statistics.md, "A spread that varies between tiles"): at 30 mg/g, 8
channels, SNR 50, on ``heterogeneous-focal-1.5t`` (a 0.8 mg/g sphere in a 30 mg/g
liver) the 8 x 8 tiles' pooled spread read 0.012 against 0.0085 in the truth, and even
the true pooled spread over-corrected the ordinary tiles (+0.8 % in LIC; each tile with
its own true spread: -0.9 %, the bimodal tiles under-corrected by the gamma shape).

What: at the pooled estimate, each tile's own spread is read from its own echo-wise
dispersion by one linearised step of the same method of moments (the simulated
dispersion of the tile and its response to the spread; the variance of a sample
variance of ``k - 1`` degrees of freedom, ``2 v^2 / (k - 1)``, as its noise, inflated by
the simulation's own and calibrated per edge on one simulated copy of the ROI), for
tiles of at least 16 voxels. It is shrunk towards the edge's mean by empirical Bayes: the
between-tile variance ``tau^2`` by the moment estimator of DerSimonian & Laird
(Controlled Clinical Trials 7:177-188, 1986; the method, cited from memory), and each
tile keeps ``tau^2 / (tau^2 + se_t^2)`` of its deviation; an edge whose median
reliability is below 0.4 keeps the pooled value alone (its tiles' own spreads are
mostly noise), one above 0.6 the whole map, and in between a share rising linearly
(:func:`map_weight`; a hard switch at 0.5 before branch mapsmooth, which made the
headline jump with the statistics' seed). On a uniform liver ``tau^2`` is about zero
and nothing changes. Tiles
whose own spread is above 0.10 by more than three standard errors (twice the largest
pooled texture spread; the edge of a focal region: 0.13-0.66 in the phantom truth) are
outliers: they leave the edge's pooled statistic (their dispersion is not the texture's
and the gamma model does not describe them) and are fitted as two groups of voxels
(:func:`split_tiles`). The pooled spread is then estimated again with the tile-to-tile
part held fixed (r2mri/_headline.py). Since branch mcout the test is a ramp, not a step
(:func:`outlier_weight`: weight 0 at 2 SE, 1 at 4 SE; its spread and split rate count in
the share of its weight; it leaves the pooled statistic from weight 0.5, the old step), and
the tiles near it have their own spread measured again from 32 simulated copies
(:func:`_near_spreads`): with the ROI's 2 copies the distance moved with the statistics'
seed by ~0.6 SE and a tile of cell liver 2 crossed the step at 1 seed in 10.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SpreadMap", "calibrate_se", "map_weight", "material_weight", "outlier_weight", "split_outlier_rates",
           "split_tiles", "spread_map", "tile_spread_map", "tile_spreads"]

_MIN_DOF = 15  # [D, r2mri's choice] degrees of freedom (voxels - 1) a tile needs for a spread of its own:
# 4 x 4 tiles and larger. A 2 x 2 tile's own dispersion (3 dof) is too noisy and its linearised estimate
# ran away (noise-free 2 x 2 tiles of relative SD 0.4 read -7 %); small tiles share their edge's pooled spread
_LAMBDA_MIN = 0.5  # [D, r2mri's choice] median reliability tau^2 / (tau^2 + se^2) at which an edge's map gets
# half its weight: on heterogeneous-fine-1.5t at 30 mg/g, SNR 20, 8 channels it is 0.26 and the map read +2.2 %
# (seed 1; +0.9 % without); SNR 50 textures 0.55-0.86
_LAMBDA_RAMP = 0.1  # [D, r2mri's choice] half-width of the ramp of the edge's map weight in the median reliability:
# 0 below _LAMBDA_MIN - 0.1, 1 above _LAMBDA_MIN + 0.1 (was a hard switch at 0.5). The median moves with the
# statistics seed (SD ~0.02 at 0.44-0.49 on the issue-16 cell, liver 7, 2-3 copies): a switch there made the
# headline depend on the seed by the map's whole effect
_OUTLIER_SE = 3.0  # [D, r2mri's choice] SE by which a tile's own spread must exceed _OUTLIER_RHO
_OUTLIER_RHO = 0.10  # [D, r2mri's choice] a tile's own spread above which it holds two populations rather than
# a texture: twice the largest pooled texture spread (0.05); per tile, the SD 0.4 voxel-to-voxel texture at
# 30 mg/g reaches 0.073 (90th percentile of the phantom truth, heterogeneous-fine-1.5t), tiles across the
# 0.8 mg/g sphere of heterogeneous-focal-1.5t at 30 mg/g 0.13-0.66 (voxel R2 max/min 7-12 against 2-3).
# With 0.05 + 2 SE, 6 % of the fine texture's tiles were split by noise at SNR 20 (headline -3.0 %)
_OUTLIER_RAMP = 1.0  # [D, r2mri's choice, branch mcout] half-width in SE of the ramp of a tile's outlier weight:
# 0 at _OUTLIER_SE - 1 SE above _OUTLIER_RHO, 1 at _OUTLIER_SE + 1 (a hard step at _OUTLIER_SE before). The SE
# distance moves with the statistics seed (SD ~0.6-0.8 SE with 2 copies of the ROI: one tile of cell liver 2 read
# -2.1 to +0.3 around the step at 10 seeds) and the step moved the headline by that tile's whole own correction
# (+0.25 % in LIC at one seed in 10; benchmarks/mc_seed_trace.py)
_OUTLIER_COPIES = 32  # [D, r2mri's choice, branch mcout] simulated copies for the tiles whose SE distance lies
# within the ramp +-1 SE (a few tiles): their own spread and SE from these instead of the ROI's 1-8 copies, so
# that the simulation moves their distance by ~0.17 SE instead of ~0.58 (sqrt((1/R) / (1 + 1/R))); cell liver
# 2: MC SD / SE 0.119 -> 0.097, liver 7 0.098 -> 0.092 (docs/statistics.md, "The outlier test as a ramp")
_NEAR_MARGIN = 1.0  # [D, r2mri's choice, branch mcout] SE beyond the ramp's ends within which a tile's distance
# is measured again with _OUTLIER_COPIES (its Monte-Carlo SD with 2 copies is ~0.6 SE)
_MAP_MATERIAL = 0.001  # [D, r2mri's choice] a map without outlier tiles is used in full when it moves the mean
# corrected R2 by more than 0.1 % (a fifth of issue 16's 0.5 % for uniform livers), not at all below half of
# that (uniform livers: <= 0.05 %), and scaled in between so that its effect is continuous in its size
_SPLIT_RATIO_MIN = 1.5  # [D, r2mri's choice] the two groups' R2 must differ by this factor for the split to
# stand (focal edges: 2-8; a split of one population by noise a few per cent); else the tile is fitted whole
_OUTLIER_SHARE_MAX = 0.25  # [D, r2mri's choice] largest voxel share of an edge treated as outliers; above it
# the large spreads are the liver's texture, not a few tiles across a focal edge, and stay in the pool


@dataclass
class SpreadMap:
    """The tile-to-tile part of the within-tile spread.

    ``offset``: each ordinary tile's spread minus its edge's pooled one; ``outlier``: tiles
    out of the edge's pooled statistic (r2mri/_spread_estimate.py reads it: outlier weight at
    least 0.5, the old step; a weighted pool there would make it continuous); ``outlier_w``:
    each tile's outlier weight (:func:`outlier_weight`), the share in which it is corrected
    with ``fixed`` (its own estimate, bounded) and split, its edge's spread in the rest;
    ``weight``: per edge, the share of its shrunken deviations kept (:func:`map_weight`);
    ``material_weight``: the share kept for the map's size (:func:`tile_spread_map`).
    """

    offset: np.ndarray
    outlier: np.ndarray
    fixed: np.ndarray
    tau2: dict
    outlier_share: float = 0.0

    bound: float = np.inf
    weight: dict = field(default_factory=dict)
    material_weight: float = 1.0
    outlier_w: "np.ndarray | None" = None

    def __post_init__(self):
        if self.outlier_w is None:
            self.outlier_w = self.outlier.astype(np.float64)

    def apply(self, pooled_per_tile: np.ndarray) -> np.ndarray:
        """Each tile's spread from its edge's pooled spread (one value per tile), within +-bound; an
        outlier tile's own spread in the share ``outlier_w``."""
        own = np.clip(pooled_per_tile + self.offset, -self.bound, self.bound)
        return own + self.outlier_w * (self.fixed - own)

    def to_dict(self) -> dict:
        return {"tau2_by_tile_size": {str(k): float(v) for k, v in self.tau2.items()},
                "outlier_tiles": int(np.sum(self.outlier_w > 0)), "outlier_voxel_fraction": float(self.outlier_share),
                "outlier_weight_sum": float(np.sum(self.outlier_w)),
                "weight_by_tile_size": {str(k): float(v) for k, v in self.weight.items()},
                "material_weight": float(self.material_weight)}


def map_weight(median_reliability: float) -> float:
    """Share of an edge's shrunken tile deviations that its map keeps: a linear ramp in the
    median reliability ``tau^2 / (tau^2 + se^2)`` of its tiles, 0 at or below
    ``_LAMBDA_MIN - _LAMBDA_RAMP``, 1 at or above ``_LAMBDA_MIN + _LAMBDA_RAMP``.

    Why not a switch: the median reliability carries the statistics' Monte-Carlo error (the
    simulated copies of the ROI and the probe that calibrates the SEs); near the switch the
    headline moved with the seed by the map's whole effect. The ramp makes it continuous.

    Examples
    --------
    >>> map_weight(0.2), map_weight(0.5), map_weight(0.9)
    (0.0, 0.5, 1.0)
    """
    return float(np.clip((median_reliability - _LAMBDA_MIN + _LAMBDA_RAMP) / (2 * _LAMBDA_RAMP), 0.0, 1.0))


def material_weight(shift_rel: float) -> float:
    """Share of a map without outlier tiles that is used, from ``shift_rel``, the map's shift of
    the mean corrected rate relative to that mean: 0 up to ``_MAP_MATERIAL / 2``, 1 from
    ``_MAP_MATERIAL``, linear in between (the used shift is then continuous in the map's size).

    Examples
    --------
    >>> material_weight(0.0004), material_weight(-0.00075), material_weight(0.002)
    (0.0, 0.5, 1.0)
    """
    return float(np.clip((abs(shift_rel) - 0.5 * _MAP_MATERIAL) / (0.5 * _MAP_MATERIAL), 0.0, 1.0))


def outlier_weight(se_distance) -> np.ndarray:
    """A tile's weight as an outlier (a tile across the edge of a focal region, module docstring) from
    ``se_distance = (rho_t - _OUTLIER_RHO) / se_t``, its own spread's distance above ``_OUTLIER_RHO`` in
    standard errors: 0 up to ``_OUTLIER_SE - _OUTLIER_RAMP``, 1 from ``_OUTLIER_SE + _OUTLIER_RAMP``, linear
    in between. The tile's spread is its own estimate in this share and its edge's in the rest
    (:meth:`SpreadMap.apply`), its split rate likewise (r2mri/_headline.py).

    Why not a switch at ``_OUTLIER_SE``: the distance carries the statistics' Monte-Carlo error,
    and a tile near the switch moved the headline with the seed by its whole own correction.

    Examples
    --------
    >>> outlier_weight([1.5, 2.5, 3.0, 4.5]).tolist()
    [0.0, 0.25, 0.5, 1.0]
    """
    z = np.asarray(se_distance, dtype=np.float64)
    w = (z - _OUTLIER_SE + _OUTLIER_RAMP) / (2 * _OUTLIER_RAMP)
    return np.clip(np.where(np.isfinite(w), w, 0.0), 0.0, 1.0)


def tile_spreads(obs_ss, sim_ss, sim_ss_drho, drho, dof, mu, te, rho_tiles, replicates, mut_max):
    """Each tile's own spread and its SE: one linearised moment step from the pooled state.

    ``obs_ss``, ``sim_ss``, ``sim_ss_drho``: per tile and echo, the observed, simulated and
    simulated-at-``rho + drho`` sums of squares of the echo-wise dispersion; ``dof`` per
    tile; ``mu`` the tiles' corrected rates; ``rho_tiles`` the spread simulated per tile.
    Only echoes with ``mu te <= mut_max`` (at least two) count. Tiles with no degree of
    freedom get an infinite SE.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.array([63.0]); te = np.array([0.006, 0.009, 0.012])
    >>> sim = np.array([[1.0, 2.0, 3.0]]) * d[:, None] * 1e-3
    >>> r, se = tile_spreads(2 * sim, sim, 2 * sim, 0.01, d, np.array([100.0]), te, np.array([0.0]), 2, 2.5)
    >>> bool(abs(r[0] - 0.01) < 1e-12)  # observed = simulated at rho + 0.01
    True
    """
    d = np.maximum(dof, 1.0)[:, None]
    vo, va = obs_ss / d, sim_ss / d
    jr = (sim_ss_drho - sim_ss) / d / drho
    mut = mu[:, None] * te[None, :]
    use = mut <= np.maximum(mut_max, np.sort(mut, axis=1)[:, [1]])
    var = 2.0 * va**2 / d * (1.0 + 1.0 / replicates)  # observed and simulated sample variances
    w = np.where(use, 1.0 / np.maximum(var, 1e-300), 0.0)
    info = np.sum(w * jr * jr, axis=1)
    ok = (dof > 0) & (info > 0) & np.isfinite(info)
    with np.errstate(divide="ignore", invalid="ignore"):
        rhat = np.where(ok, rho_tiles + np.sum(w * jr * (vo - va), axis=1) / info, rho_tiles)
        se = np.where(ok, 1.0 / np.sqrt(info), np.inf)
    return rhat, se


def calibrate_se(se, dev_sim, se_sim, k, sel_by_edge):
    """Scale each edge's per-tile SE by the RMS of ``dev_sim / se_sim``: the deviations of the
    per-tile estimate on a simulated copy of the ROI whose every tile has the pooled spread.

    The simulated deviations also hold the sampling spread of each tile's own voxels (in the
    data that is signal, not noise), so the calibrated SE errs large: more shrinkage.
    """
    out = se.copy()
    for sel in sel_by_edge.values():
        ok = sel & np.isfinite(se_sim) & (se_sim > 0) & (k - 1 >= _MIN_DOF)
        if ok.sum() >= 3:
            out[sel] = se[sel] * float(np.sqrt(np.mean((dev_sim[ok] / se_sim[ok]) ** 2)))
    return out


def _dersimonian_laird(x, se, f=None):
    """Between-tile variance ``tau^2`` (moment estimator) and the random-effects mean; ``f``: each
    tile's share in them (frequency weights, 1 - its outlier weight; all 1 by default)."""
    f = np.ones(x.size) if f is None else f
    w = f / se**2
    xbar = np.sum(w * x) / w.sum()
    q = np.sum(w * (x - xbar) ** 2)
    tau2 = max(0.0, (q - (f.sum() - 1)) / (w.sum() - np.sum(w * w) / w.sum()))
    ws = f / (se**2 + tau2)
    return tau2, float(np.sum(ws * x) / ws.sum())


def spread_map(rhat, se, k, sel_by_edge, bound) -> "SpreadMap | None":
    """Empirical-Bayes spread per tile and the outlier tiles (module docstring).

    ``rhat``, ``se``: each tile's own spread estimate and SE (:func:`tile_spreads`); ``k``
    voxels per tile; ``sel_by_edge``: ``{edge: boolean selection}``; ``bound``: the largest
    spread used in a correction. Returns
    ``None`` when every edge is homogeneous (``tau^2 = 0``) and has no outlier.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> se = np.full(400, 0.004); rhat = 0.01 + se * rng.standard_normal(400)
    >>> spread_map(rhat, se, np.full(400, 64.0), {8: np.ones(400, bool)}, 0.15) is None  # noise only
    True
    """
    offset = np.zeros(rhat.size)
    w_out = np.zeros(rhat.size)
    tau2_by, weight_by = {}, {}
    for s, sel in sel_by_edge.items():
        ok = sel & np.isfinite(se) & (se > 0) & (k - 1 >= _MIN_DOF)
        wo = np.where(ok, outlier_weight((rhat - _OUTLIER_RHO) / np.where(ok, se, 1.0)), 0.0)
        if np.sum(k * wo) > _OUTLIER_SHARE_MAX * k[sel].sum():
            wo[:] = 0.0
        # a tile in the ramp is in the edge's map in the share 1 - wo (and out of the pooled statistic from
        # wo >= 0.5, the old step: r2mri/_spread_estimate.py, _TileSet.pooled, takes a selection)
        pool = ok & (wo < 1.0)
        w_out += wo
        if pool.sum() < 3:
            tau2_by[s] = 0.0
            continue
        tau2, centre = _dersimonian_laird(rhat[pool], se[pool], 1.0 - wo[pool])
        lam = tau2 / (tau2 + se[pool] ** 2)
        w = map_weight(float(np.median(lam)))
        if w == 0.0:  # the tiles' own spreads are mostly noise: the pooled one alone
            tau2_by[s] = 0.0
            continue
        tau2_by[s], weight_by[s] = tau2, w
        offset[pool] = w * lam * (rhat[pool] - centre)
    if not np.any(w_out > 0) and all(v == 0 for v in tau2_by.values()):
        return None
    outlier = w_out >= 0.5
    share = float(np.sum(k * w_out) / max(k.sum(), 1.0))
    return SpreadMap(offset, outlier, np.clip(rhat, 0.0, bound), tau2_by, share, bound, weight_by,
                     outlier_w=w_out)


def two_means(yy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two groups of voxels by 2-means (Lloyd) on their echo magnitudes ``yy`` (voxels, echoes),
    started from the midpoint of the first echo; and each voxel's chance of belonging to
    the other group.

    Why the magnitudes and not the decay's shape: a first version clustered on
    ``log(mean late echo / first echo)``, which ignores S0 but, near the magnitude floor,
    hardly separates a fast decay from a slow one: at 30 mg/g, SNR 20, 8 channels, across
    the 0.8 mg/g sphere of ``heterogeneous-focal-1.5t`` (first echo ~17 sigma in the slow
    voxels, ~6 sigma in the fast ones, the late echoes of the fast ones on the floor) the
    two groups' medians were -0.25 and -0.4 with a per-voxel noise of the same size, and 434
    of the 1,152 voxels of its 18 split tiles were put in the wrong group (the tiles read
    29 % low on average, the headline -0.35 % of R2). The echo vectors differ by ~10 sigma
    per echo there.

    The chance of a wrong assignment: the voxels' projection on the line between the two
    centroids, its SD within each group (noise and the group's own texture), and the normal
    tail beyond the cut midway between the centroids.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> r2 = np.r_[np.full(40, 240.0), np.full(24, 29.0)]
    >>> yy = 20 * np.exp(-r2[:, None] * te) + rng.standard_normal((64, 5))
    >>> lab, p = two_means(yy)
    >>> int(lab.sum()), bool(p.max() < 1e-3)  # the 24 slow voxels, no doubt about any
    (24, True)
    """
    from scipy.special import ndtr

    a = yy[:, 0]
    lab = a > 0.5 * (a.min() + a.max())
    for _ in range(50):
        if lab.all() or not lab.any():
            return np.ones(a.size, bool), np.zeros(a.size)
        c1, c0 = yy[lab].mean(axis=0), yy[~lab].mean(axis=0)
        new = np.sum((yy - c1) ** 2, axis=1) < np.sum((yy - c0) ** 2, axis=1)
        if np.array_equal(new, lab):
            break
        lab = new
    if lab.all() or not lab.any():
        return np.ones(a.size, bool), np.zeros(a.size)
    c1, c0 = yy[lab].mean(axis=0), yy[~lab].mean(axis=0)
    u = (c1 - c0) / max(float(np.linalg.norm(c1 - c0)), 1e-300)
    proj, cut = yy @ u, 0.5 * float((c1 + c0) @ u)
    sd = np.array([proj[g].std(ddof=1) if g.sum() > 1 else np.inf for g in (~lab, lab)])
    with np.errstate(divide="ignore", invalid="ignore"):
        p = ndtr(-np.abs(proj - cut) / np.where(lab, sd[1], sd[0]))
    return lab, np.where(np.isfinite(p), p, 0.5)


def split_tiles(y, tile_of, tiles, te, sigma, coils, detail: bool = False):
    """Fit the tiles ``tiles`` (outliers: the edge of a focal region) as two groups of voxels each.

    A tile across the edge of a spared or a focal high-iron region holds two populations
    (at 30 mg/g with a 0.8 mg/g region: R2 ~240 and ~29 s^-1); their mixture is not a
    spread the correction can undo (its tile fit read R2 up to 40 % low, and the gamma
    correction at the true spread recovered a tenth of it). The voxels are split in two
    by 2-means on their echo magnitudes (:func:`two_means`), and each group is fitted with
    the tile fit, less its first-order bias (:mod:`r2mri._tile_bias`).

    Returns ``(parent, r2, s0, k)`` per group (``parent``: index into ``tiles``); a tile
    whose groups cannot both be fitted, or whose groups' rates differ by less than a factor
    1.5, is returned as one group of all its voxels (NaN if even that fit fails). With
    ``detail``, also ``(mis, se)`` per group: the expected number of its voxels that belong
    to the other group (:func:`two_means`; 0 for a whole tile) and the fit's SE of R2.

    Examples
    --------
    >>> import numpy as np
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> r2 = np.r_[np.full(40, 240.0), np.full(24, 29.0)]
    >>> y = 1000 * np.exp(-r2[:, None] * te) + 1e-6
    >>> parent, r2_g, s0_g, k_g = split_tiles(y, np.zeros(64, int), np.array([0]), te, 1e-3, 1)
    >>> np.round(np.sort(r2_g)).tolist(), sorted(k_g.tolist())
    ([29.0, 240.0], [24.0, 40.0])
    """
    from .stats import _tile_fit
    from ._tile_bias import tile_fit_bias

    groups, parents, mis = [], [], []
    for j, tile in enumerate(tiles):
        idx = np.flatnonzero(tile_of == tile)
        lab, p_wrong = two_means(y[idx])
        two = 0 < lab.sum() < idx.size
        for g in ((lab, ~lab) if two else (np.ones(idx.size, bool),)):
            groups.append(idx[g])
            parents.append(j)
            mis.append(float(p_wrong[g].sum()) if two else 0.0)
    k = np.array([g.size for g in groups], dtype=np.float64)
    mis = np.asarray(mis)
    mean_y = np.stack([y[g].mean(axis=0) for g in groups])
    r2, s0, se, ok = _tile_fit(mean_y, te, k, sigma, coils)
    b_s0, b_r2 = tile_fit_bias(r2, s0, te, k, sigma, coils)
    r2, s0 = r2 - b_r2, s0 - b_s0
    parents = np.asarray(parents)
    good = ok & np.isfinite(r2) & (r2 > 0) & np.isfinite(s0) & (s0 > 0)
    # a split must find two populations: groups whose rates differ by less than _SPLIT_RATIO_MIN are one
    lo = np.full(len(tiles), np.inf)
    hi = np.zeros(len(tiles))
    np.minimum.at(lo, parents, np.where(good, r2, np.inf))
    np.maximum.at(hi, parents, np.where(good, r2, 0.0))
    two = np.bincount(parents, minlength=len(tiles)) == 2
    one_population = two & (hi < _SPLIT_RATIO_MIN * lo)
    good &= ~one_population[parents]
    bad_parent = np.unique(parents[~good])
    if bad_parent.size:  # fall back to one group for those tiles
        keep = ~np.isin(parents, bad_parent)
        whole = [np.flatnonzero(tile_of == tiles[j]) for j in bad_parent]
        kw = np.array([w.size for w in whole], dtype=np.float64)
        rw, sw, sew, okw = _tile_fit(np.stack([y[w].mean(axis=0) for w in whole]), te, kw, sigma, coils)
        bw_s0, bw_r2 = tile_fit_bias(rw, sw, te, kw, sigma, coils)
        rw, sw = np.where(okw, rw - bw_r2, np.nan), np.where(okw, sw - bw_s0, np.nan)  # NaN: caller keeps its own
        parents = np.r_[parents[keep], bad_parent]
        r2, s0, k = np.r_[r2[keep], rw], np.r_[s0[keep], sw], np.r_[k[keep], kw]
        mis, se = np.r_[mis[keep], np.zeros(kw.size)], np.r_[se[keep], sew]
    return (parents, r2, s0, k, (mis, se)) if detail else (parents, r2, s0, k)


def tile_spread_map(t, simulated, state, replicates: int, seed: int) -> "SpreadMap | None":
    """The spread map of the tiles ``t`` (``r2mri._spread_estimate._TileSet``) at the pooled ``state``
    ``(rho, kappa, mu, s0)``: each tile's own spread (:func:`tile_spreads`, SE calibrated by
    :func:`calibrate_se`), shrunk by :func:`spread_map`; ``None`` if immaterial (module docstring)."""
    from ._mixture import _SHAPE, _correct_many
    from ._spread_estimate import _DRHO, _MUT_MAX, _RHO_MAX, _echo_dispersion, _simulator

    rho, kappa, mu, s0 = state
    ra = np.maximum(t.rho_tiles({s: max(rho[s], 0.0) for s in t.sizes}), 0.0)
    ka = np.zeros(t.nt)
    for s in t.sizes:
        ka[t.sel_of[s]] = max(kappa[s], 0.0)
    obs, dof = _echo_dispersion(t.y, t.tile_of, t.nt)
    sim_a, sim_r = simulated(mu, s0, ra, ka), simulated(mu, s0, ra + _DRHO, ka)
    rhat, se = tile_spreads(obs, sim_a, sim_r, _DRHO, dof, mu, t.te, ra, replicates, _MUT_MAX)
    # the SE calibrated on one simulated copy of the ROI at the pooled spread (fresh draws): near the
    # magnitude floor the sample variances are not chi-square
    probe = _simulator(t, seed + 1, 1, _SHAPE)(mu, s0, ra, ka)
    rhat_p, se_p = tile_spreads(probe, sim_a, sim_r, _DRHO, dof, mu, t.te, ra, replicates, _MUT_MAX)
    se_cal = calibrate_se(se, rhat_p - ra, se_p, t.k, t.sel_of)
    # the tiles near the outlier ramp: their own spread and SE again from _OUTLIER_COPIES copies (their
    # calibration factor kept), so that their outlier weight hardly moves with the seed
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (rhat - _OUTLIER_RHO) / se_cal
    near = np.flatnonzero(np.isfinite(z) & (np.abs(z - _OUTLIER_SE) <= _OUTLIER_RAMP + _NEAR_MARGIN)
                          & (t.k - 1 >= _MIN_DOF))
    if near.size:
        rhat_n, se_n = _near_spreads(t, near, obs[near], dof[near], (mu, s0, ra, ka), seed)
        se_cal[near] = se_n * (se_cal[near] / se[near])
        rhat[near] = rhat_n
    se = se_cal
    sm = spread_map(rhat, se, t.k, t.sel_of, _RHO_MAX)
    if sm is None or not np.any(sm.offset):
        return sm
    # the tile-to-tile part is kept in full if it moves the mean corrected rate by more than _MAP_MATERIAL, not
    # below half of it (uniform livers: tau^2 ~1e-6, a shift <= 0.05 %, and it would double the estimator's
    # CPU), scaled in between (material_weight); with or without outlier tiles (before branch mapsmooth it was
    # kept in full beside outliers, so that one tile called an outlier by noise switched it on: liver 7 of the
    # issue-16 cell)
    r_ref, s_ref = t.ref_state()
    jobs = [(r_ref[t.sel_of[s]], s_ref[t.sel_of[s]], t.k[t.sel_of[s]], r) for s in t.sizes
            for r in (rho[s], np.clip(rho[s] + sm.offset[t.sel_of[s]], -_RHO_MAX, _RHO_MAX))]
    done = _correct_many(jobs, t.te, t.sigma, t.coils, _SHAPE)
    shift = sum(float(np.sum(t.k[t.sel_of[s]] * (done[2 * i + 1][0] - done[2 * i][0]))) for i, s in enumerate(t.sizes))
    wm = material_weight(shift / float(np.sum(t.k * mu)))
    if wm == 0.0 and not np.any(sm.outlier_w > 0):
        return None
    if wm < 1.0:
        sm.offset = sm.offset * wm
        sm.material_weight = wm
    return sm


def _near_spreads(t, tiles, obs, dof, state, seed: int):
    """Own spread and (uncalibrated) SE of the tiles ``tiles`` of ``t`` from ``_OUTLIER_COPIES`` simulated copies
    of their voxels (:func:`tile_spreads`), at ``state = (mu, s0, rho_t, kappa_t)`` (per tile of ``t``), with the
    statistic's simulator as in r2mri/_spread_estimate.py (shrunk states, gamma spread, common random numbers)."""
    from ._mixture import _SHAPE, _draw_spread
    from ._sim_state import shrunk_state
    from ._spread_estimate import _DRHO, _MUT_MAX, _echo_dispersion, _ncchi_draw

    mu, s0, ra, ka = state
    m_sh, s_sh = (shrunk_state(mu, s0, t.se_rel, t.k, [t.sel_of[s] for s in t.sizes], t.te)
                  if t.se_rel is not None else (mu, s0))
    vox = np.flatnonzero(np.isin(t.tile_of, tiles))
    local = np.searchsorted(tiles, t.tile_of[vox])  # tiles is sorted (np.flatnonzero)
    n = tiles.size
    rng = np.random.default_rng([seed, 16])
    draws = rng.standard_normal((_OUTLIER_COPIES, 2, vox.size))
    state0 = rng.bit_generator.state
    q2 = np.log1p(np.maximum(ka[tiles], 0.0))[local]

    def simulated(rho_t):
        rng.bit_generator.state = state0  # the same noise at rho and rho + _DRHO
        out = np.zeros((n, t.te.size))
        for r in range(_OUTLIER_COPIES):
            g = _draw_spread(rho_t[local], draws[r, 0], _SHAPE)
            h = np.exp(np.sqrt(q2) * draws[r, 1] - q2 / 2)
            amp = (s_sh[tiles][local] * h)[:, None] * np.exp(-(m_sh[tiles][local] * g)[:, None] * t.te[None, :])
            out += _echo_dispersion(_ncchi_draw(amp, t.sigma, t.coils, rng), local, n)[0]
        return out / _OUTLIER_COPIES

    return tile_spreads(obs, simulated(ra[tiles]), simulated(ra[tiles] + _DRHO), _DRHO, dof, mu[tiles], t.te,
                        ra[tiles], _OUTLIER_COPIES, _MUT_MAX)


def split_outlier_rates(t, out: np.ndarray, rho_by_edge, rho_hi=None, rho_lo=None) -> dict:
    """Rates of the tiles ``out`` of ``t`` (``r2mri._spread_estimate._TileSet``), each fitted as two groups
    of voxels (:func:`split_tiles`) and each group corrected for its edge's pooled spread
    ``rho_by_edge``; voxel-weighted per tile (NaN where a tile could not be fitted); and their errors.

    Returns a dict of per-tile arrays: ``rate``; ``hi``, ``lo`` (the groups corrected with
    ``rho_hi``, ``rho_lo``, the edges' spread moved by its SE; ``rate`` if not given);
    ``alt`` (the log-normal shape); ``se_fit`` (the groups' fit SEs combined, s^-1) and
    ``mis`` (the 2-means misassignment: the groups' rates apart times the expected number of
    voxels in the wrong group, over the tile's voxels, s^-1; docs/statistics.md).
    """
    from ._mixture import _SHAPE, _SHAPE_ALT, _correct_many

    parent, r2g, s0g, kg, (mis, seg) = split_tiles(t.y, t.tile_of, out, t.te, t.sigma, t.coils, detail=True)

    def per_group(d):
        e = np.zeros(t.nt)
        for s in t.sizes:
            e[t.sel_of[s]] = d[s]
        return e[out][parent]

    fin = np.isfinite(r2g) & np.isfinite(s0g)
    variants = [rho_by_edge] + [d for d in (rho_hi, rho_lo) if d is not None]
    res = {}
    if fin.any():
        jobs = [(r2g[fin], s0g[fin], kg[fin], per_group(d)[fin]) for d in variants]
        done = _correct_many(jobs, t.te, t.sigma, t.coils, _SHAPE)
        done += _correct_many(jobs[:1], t.te, t.sigma, t.coils, _SHAPE_ALT)
    else:
        done = [(np.zeros(0), None)] * (len(variants) + 1)
    names = ["rate"] + [n for n, d in (("hi", rho_hi), ("lo", rho_lo)) if d is not None] + ["alt"]
    kt = np.bincount(parent, weights=kg, minlength=out.size)
    for name, (m, _s0) in zip(names, done):
        mu_g = np.full(r2g.shape, np.nan)
        mu_g[fin] = m
        res[name] = np.bincount(parent, weights=kg * mu_g, minlength=out.size) / kt
    for name in ("hi", "lo"):
        res.setdefault(name, res["rate"])
    mu_g = np.full(r2g.shape, np.nan)
    mu_g[fin] = done[0][0]
    # the groups' fit noise, combined per tile (a group whose fit failed: NaN, the tile keeps its own)
    res["se_fit"] = np.sqrt(np.bincount(parent, weights=(kg * seg) ** 2, minlength=out.size)) / kt
    # misassignment: each voxel expected in the wrong group counts at the other group's rate
    n_two = np.bincount(parent, minlength=out.size) == 2
    lo_mu = np.full(out.size, np.inf)
    hi_mu = np.full(out.size, -np.inf)
    np.minimum.at(lo_mu, parent, mu_g)
    np.maximum.at(hi_mu, parent, mu_g)
    wrong = np.bincount(parent, weights=mis, minlength=out.size)
    res["mis"] = np.where(n_two, (hi_mu - lo_mu) * wrong / kt, 0.0)
    return res
