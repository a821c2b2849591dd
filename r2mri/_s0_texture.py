"""Fine S0 texture of the liver: the within-tile variance of log S0 that a smooth S0 surface
misses, measured from the covariances between *different* echoes (noise drops out).

Why (issue 16): the tile-mixture estimator takes kappa, the within-tile relative variance
of S0, from a prior built on a smooth S0 surface over the tiles (r2mri/_s0_shading.py).
Texture at or below the tile scale (proton density, partial volume) is not in that
surface; where the prior decides kappa (few echoes in the cumulant regime: 30 mg/g, SNR
20) rho takes the missing variance and the headline over-reads: +0.3 to +0.7 % at phantom
log-SD 0.05 over 1 voxel, +1.9 to +2.6 % at 0.1 (docs/statistics.md, "*Measured with fine S0
texture*"). Two real normal livers read 0.01-0.02 over 1 voxel (benchmarks/s0_texture_real.py).

Method: per echo, log magnitude minus a least-squares polynomial surface per slice
(quadratic); in tiles, the within-tile covariance of two different echoes is, for
log M_e = log S0 - R2 t_e + noise_e, ``var(log S0) - (t_e + t_e') cov(log S0, R2) + t_e t_e'
var(R2)``: fitted by least squares over the echo pairs (:func:`decompose`). Noise
independent between echoes drops out whatever its spatial correlation. Three unknowns
need three echoes whose log magnitude follows log S0 (:func:`echoes_above_floor`); at 30
mg/g, SNR 20 only the first echo is there, and the measurement cannot see S0 texture at
all (:func:`exam_texture` then says so). SE: bootstrap over tiles.

:func:`prior_shift` turns the measurement into the headline's expected shift through the
estimator's own sensitivity to kappa's prior mean (r2mri/_spread_estimate.py records it);
:func:`texture_warning` is the report's one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TILES = (2, 4, 8)
LAGS = (1, 2, 3, 4)
_SURFACE_DEGREE = 2  # [D, r2mri's choice] the per-slice surface removed before the tiles: quadratic (a plane
# leaves 3-11x more on the two real livers: shading and anatomy curvature; benchmarks/s0_texture_real.py)
_ATTENUATION_MAX = 0.5  # [D, r2mri's choice] an echo is used when its log magnitude follows log A by at least
# half (d E[log M] / d log A at the median amplitude, :func:`log_response`: A >= ~1.2 sigma with one channel,
# ~4 sigma with 8); each tile's deviations are divided by that factor at the tile's own amplitude
_TILE_RESPONSE_MIN = 0.3  # [D] a tile whose response at a used echo is below this is left out (too dark)
_MIN_ECHOES = 3  # three unknowns (var log S0, cov, var R2) from the echo pairs
_MAX_ECHOES = 3  # [D, r2mri's choice] only the first three of them: later echoes, nearer the floor, leak LIC
# texture into var log S0 (second order in the log-magnitude response, which grows with the spread of R2 t inside a
# tile): medium livers (128 x 128 x 6 of 3 mm), 7 mg/g, SNR 20, one channel, no S0 texture, LIC SD 0.4 over 1
# voxel, 8 x 8 tiles: all 5 echoes +0.0118 +- 0.0025 / +0.0071 +- 0.0033 (seeds 500 / 501), the first 3 +0.0061 +-
# 0.0058 / -0.0038 +- 0.0064 (benchmarks/s0_warn.py; docs/statistics.md "*The per-exam check*")
_N_BOOT = 100  # bootstrap replicates over tiles for the SE [D]
_R2T_VAR_MAX = 0.04  # [D, r2mri's choice] a tile edge is used only where the within-tile variance of R2 t at the last
# echo used (the decomposition's own var R2 times t^2) is at most this: above it the second-order response of log
# magnitude near the floor leaks LIC texture into var log S0 (medium livers, 7 mg/g, SNR 20, no S0 texture, 8 x 8
# tiles: LIC SD 0.4 over 1 voxel, R2 t variance 0.06-0.07, read +0.0104 +- 0.0030 / +0.0124 +- 0.0037 with 8
# channels; over 4 / 8 voxels, 0.008-0.03, within 1.3 SE of 0; full size over 4 voxels 0.023-0.027 read -0.0030 +-
# 0.0025, -0.0015 +- 0.0022 (one channel), +0.0015 +- 0.0011 (8); over 1 voxel 0.047-0.081; benchmarks/s0_warn.py)
# (above it the edge is not left out since branch s0combo: its reading minus the simulated leak, r2mri/_s0_leak.py)
_WARN_SHIFT = 0.005  # [D, issue 16's bias bound for uniform livers] warn when the expected shift of the headline LIC
# exceeds 0.5 %
_WARN_Z = 3.0  # [D] ... and the shift is > 3 SE (the measurement's own noise moves a liver without texture in ~1 of
# 700; with the first 3 echoes the SE is ~2x that of all 5)
_CORRECT = True  # the headline takes the prior's shift where the texture is measured (:func:`apply_correction`)
_REFIT = True  # where the correction applies, the measured texture goes into kappa's prior (mean + var log S0, SD
# widened by its SE) and the spread estimate is made again (x2 CPU where it acts); False: the linear step of
# :func:`prior_shift` instead. Full size, 7 mg/g, SNR 20, log-SD 0.1 over 1 voxel, paired against no texture (before
# +1.2 to +2.1 %): linear -0.44 / -0.50 (8 ch, seeds 500 / 501), -1.05 (8 ch, LIC SD 0.4 over 4 voxels), +0.23 %
# (1 ch); refit -0.21 / -0.27, -0.37, -0.03 % (benchmarks/s0_warn.py, docs/statistics.md)
_STEP_MODEL_ERROR = 0.25  # [D, measured] the step's model error, as a fraction of the linear shift, in the interval
# (1 SE): on full-size uniform livers (7 mg/g, SNR 20, 8 channels, seeds 500-501) the linear step over-shot the
# paired change by 24-25 % at log-SD 0.1 over 1 voxel and 5-36 % at 0.05 (tag full4), the refit by 10-18 %
_CORRECT_MIN_R2 = 0.003  # [D, r2mri's choice] ... and the shift exceeds 0.3 % of the mean R2 (~0.5 % in LIC at the
# FerriScan curve's slope, d ln LIC / d ln R2 ~ 1.5-1.9 at 3-30 mg/g)


def _surface_points(v: np.ndarray, ij: np.ndarray, z: np.ndarray, degree: int) -> np.ndarray:
    """``v`` minus a least-squares polynomial surface in the in-plane indices ``ij``, per slice ``z``."""
    out = np.full(v.shape, np.nan)
    for zz in np.unique(z):
        sl = np.flatnonzero(z == zz)
        ii, jj = ij[sl, 0].astype(np.float64), ij[sl, 1].astype(np.float64)
        x = (ii - ii.mean()) / max(ii.std(), 1.0)
        y = (jj - jj.mean()) / max(jj.std(), 1.0)
        cols = [np.ones_like(x)]
        for p in range(1, degree + 1):
            cols += [x ** (p - q) * y ** q for q in range(p + 1)]
        a = np.stack(cols, axis=1)
        if sl.size < 3 * a.shape[1]:
            a = a[:, :1]
        coef, *_ = np.linalg.lstsq(a, v[sl], rcond=None)
        out[sl] = v[sl] - a @ coef
    return out


def surface_residual(values: np.ndarray, mask: np.ndarray, degree: int = 2) -> np.ndarray:
    """``values`` minus a least-squares polynomial surface in the in-plane indices, per slice.

    Returns an array of ``values``' shape, NaN outside ``mask``. A slice with fewer than
    3 voxels per coefficient keeps its mean only.
    """
    out = np.full(values.shape, np.nan)
    ii, jj, kk = np.nonzero(mask)
    if ii.size:
        out[ii, jj, kk] = _surface_points(values[ii, jj, kk].astype(np.float64), np.stack([ii, jj], 1), kk, degree)
    return out


def within_tile_variance(resid: np.ndarray, mask: np.ndarray, tile: int) -> tuple[float, float, int]:
    """Pooled within-tile variance of ``resid`` over ``mask`` in ``tile`` x ``tile`` in-plane tiles.

    Tiles on the image grid (origin 0), kept when at least half their voxels are in the
    mask (``r2mri.stats.pooled_mean_r2``'s rule) and at least 2 are. Returns
    ``(variance, se, n_tiles)``; the SE treats tiles as independent (ratio of sums).
    """
    ii, jj, kk = np.nonzero(mask)
    v = resid[ii, jj, kk]
    ty = -(-mask.shape[1] // tile)
    tx = -(-mask.shape[0] // tile)
    tid = (kk * tx + ii // tile) * ty + jj // tile
    _, inv = np.unique(tid, return_inverse=True)
    n = np.bincount(inv).astype(np.float64)
    s1 = np.bincount(inv, weights=v)
    s2 = np.bincount(inv, weights=v * v)
    ss = s2 - s1 * s1 / n
    keep = (n >= max(2, (tile * tile + 1) // 2))
    if not keep.any():
        return float("nan"), float("nan"), 0
    ss, dof = ss[keep], n[keep] - 1.0
    var = float(ss.sum() / dof.sum())
    se = float(np.sqrt(np.sum((ss - var * dof) ** 2)) / dof.sum())
    return var, se, int(keep.sum())


def _centred(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, values - np.nanmean(np.where(mask, values, np.nan)), 0.0)


def _tile_products(v: np.ndarray, tid: np.ndarray, min_n: int):
    """Per tile ``tid`` the (echo x echo) sums of products of ``v`` (voxel, echo)'s deviations from
    the tile mean, and n - 1; tiles with at least ``min_n`` voxels."""
    _, inv = np.unique(tid, return_inverse=True)
    nt, ne = int(inv.max()) + 1, v.shape[1]
    n = np.bincount(inv, minlength=nt).astype(np.float64)
    s1 = np.zeros((nt, ne))
    np.add.at(s1, inv, v)
    s2 = np.zeros((nt, ne, ne))
    np.add.at(s2, inv, v[:, :, None] * v[:, None, :])
    ss = s2 - s1[:, :, None] * s1[:, None, :] / n[:, None, None]
    keep = n >= min_n
    return ss[keep], n[keep] - 1.0


def tile_cross_covariance(resid_e: np.ndarray, mask: np.ndarray, tile: int, min_fill: bool = True):
    """Within-tile covariance between echoes: per tile the (echo x echo) sums of products of the
    deviations from the tile mean, and the tile's n - 1.

    ``resid_e`` (x, y, z, echo). Tiles as :func:`within_tile_variance` forms them
    (``min_fill=False``: any tile with >= 2 voxels, for one tile per slice). Returns
    ``(ss, dof)`` of shapes (tile, echo, echo) and (tile,).
    """
    ii, jj, kk = np.nonzero(mask)
    v = resid_e[ii, jj, kk, :].astype(np.float64)
    tx, ty = -(-mask.shape[0] // tile), -(-mask.shape[1] // tile)
    return _tile_products(v, (kk * tx + ii // tile) * ty + jj // tile,
                          max(2, (tile * tile + 1) // 2) if min_fill else 2)


def lag_cross_covariance(resid_e: np.ndarray, mask: np.ndarray, lag: int) -> np.ndarray:
    """(echo x echo) mean product of the slice-centred residuals at in-plane lag ``lag`` (rows
    and columns pooled, symmetrised), over voxel pairs both in ``mask``."""
    ne = resid_e.shape[3]
    r = np.stack([np.stack([_centred(resid_e[:, :, z, e], mask[:, :, z]) for z in range(mask.shape[2])], axis=2)
                  for e in range(ne)], axis=3)
    c, cnt = np.zeros((ne, ne)), 0
    for a, b, both in ((r[lag:], r[:-lag], mask[lag:] & mask[:-lag]),
                       (r[:, lag:], r[:, :-lag], mask[:, lag:] & mask[:, :-lag])):
        c += np.einsum("ie,if->ef", a[both], b[both])
        cnt += int(both.sum())
    c /= max(cnt, 1)
    return 0.5 * (c + c.T)


def _pair_design(te_s: np.ndarray, extra: "list | None"):
    """Rows (e < e'): [1, -(t_e + t_e'), t_e t_e'], and [d_e + d_e', d_e d_e'] per extra echo term d."""
    e1, e2 = np.triu_indices(te_s.size, 1)
    cols = [np.ones(e1.size), -(te_s[e1] + te_s[e2]), te_s[e1] * te_s[e2]]
    for d in extra or []:
        cols += [d[e1] + d[e2], d[e1] * d[e2]]
    return np.stack(cols, axis=1), e1, e2


def decompose(cov: np.ndarray, te_s: np.ndarray, extra: "list | None" = None) -> np.ndarray:
    """Off-diagonal echo covariances -> (var log S0, cov(log S0, R2*), var R2*[, 2 per extra term]).

    With log M_e = log S0 - R2* t_e (+ q d_e per extra term: the fat fraction with d_e =
    Re c(t_e) - 1, a bipolar readout's odd/even offset with d_e = +-1) + noise_e, noise
    independent between echoes (whatever its spatial correlation), the covariance of echoes
    e != e' is var(log S0) - (t_e + t_e') cov(log S0, R2*) + t_e t_e' var(R2*) (+ (d_e + d_e')
    cov(log S0, q) + d_e d_e' var(q)); least squares over the pairs.
    """
    a, e1, e2 = _pair_design(np.asarray(te_s, np.float64), extra)
    coef, *_ = np.linalg.lstsq(a, cov[e1, e2], rcond=None)
    return coef


def _summarise(ss, dof, te_s, extra, n_boot, rng) -> dict[str, Any]:
    """:func:`decompose` of the pooled within-tile covariance, with its bootstrap SE over tiles."""
    cov = ss.sum(axis=0) / dof.sum()
    coef = decompose(cov, te_s, extra)
    boot = []
    for _ in range(n_boot if dof.size > 1 else 0):
        k = rng.integers(0, dof.size, dof.size)
        boot.append(decompose(ss[k].sum(axis=0) / dof[k].sum(), te_s, extra)[0])
    t0 = te_s[0]  # the model's value of the first echo's own variance (noise excluded)
    fit11 = coef[0] - 2 * t0 * coef[1] + t0 * t0 * coef[2]
    for i, d in enumerate(extra or []):
        fit11 += 2 * d[0] * coef[3 + 2 * i] + d[0] ** 2 * coef[4 + 2 * i]
    return {"s0_var": float(coef[0]), "s0_var_se": float(np.std(boot, ddof=1)) if len(boot) > 1 else float("nan"),
            "s0_log_sd": float(np.sqrt(max(coef[0], 0.0))), "s0_r2_cov": float(coef[1]), "r2_var": float(coef[2]),
            "extra_terms": [float(c) for c in coef[3:]], "noise_var_echo1": float(cov[0, 0] - fit11),
            "raw_var_echo1": float(cov[0, 0]), "n_tiles": int(dof.size)}


def cross_echo_texture(resid_e: np.ndarray, mask: np.ndarray, te_s: np.ndarray, tiles=TILES, lags=LAGS,
                       extra: "list | None" = None, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """Within-tile variance of log S0 from the covariances between echoes: noise-free.

    Parameters
    ----------
    resid_e : ndarray (x, y, z, echo)
        log magnitude per echo minus its smooth surface per slice (:func:`surface_residual`).
    mask : ndarray of bool (x, y, z)
    te_s : ndarray (echo,)
        Echo times in seconds.
    extra : list of ndarray (echo,), optional
        Further per-echo terms (``Re c(t_e) - 1`` of the fat basis; +-1 for a bipolar
        readout's odd/even echoes): each adds its variance and its covariance with log S0
        to the decomposition (needs enough echo pairs).

    Returns
    -------
    dict
        ``tiles[T]``: ``s0_var`` (within-tile variance of log S0, ~kappa), its bootstrap SE
        over tiles, ``s0_log_sd``, ``r2_var`` (within-tile variance of R2*, s^-2), ``noise_var_echo1``
        (the first echo's own variance minus the model: the noise share at that echo);
        ``voxel``: the same over whole slices; ``rho[lag]``: the texture's correlation at lag,
        ``scale_c[lag]`` the Gaussian kernel SD it implies.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> te = np.array([1.0, 2.0, 3.0, 4.0]) / 1e3
    >>> m = np.ones((64, 64, 1), bool)
    >>> logs0 = 0.05 * rng.standard_normal(m.shape)
    >>> r = logs0[..., None] - 30.0 * te + 0.03 * rng.standard_normal(m.shape + (4,))
    >>> e = cross_echo_texture(r, m, te, tiles=(4,), lags=(1,), n_boot=20)
    >>> bool(abs(e["tiles"][4]["s0_log_sd"] - 0.05) < 0.004)
    True
    """
    te_s = np.asarray(te_s, np.float64)
    rng = np.random.default_rng(seed)

    out: dict[str, Any] = {"tiles": {}}
    for t in tiles:
        out["tiles"][int(t)] = _summarise(*tile_cross_covariance(resid_e, mask, int(t)), te_s, extra, n_boot, rng)
    big = int(max(mask.shape[:2]))
    out["voxel"] = _summarise(*tile_cross_covariance(resid_e, mask, big, min_fill=False), te_s, extra, n_boot, rng)
    v0 = out["voxel"]["s0_var"]
    out["rho"], out["scale_c"] = {}, {}
    for lag in lags:
        a = decompose(lag_cross_covariance(resid_e, mask, int(lag)), te_s, extra)[0]
        rho = float(a / v0) if v0 > 0 else float("nan")
        out["rho"][int(lag)] = rho
        out["scale_c"][int(lag)] = gaussian_scale_voxels(rho, int(lag))
    return out


def gaussian_scale_voxels(rho: float, lag: int) -> float:
    """Kernel SD c (voxels) of a Gaussian-smoothed white field whose correlation at ``lag`` is rho."""
    if not (0.0 < rho < 1.0):
        return float("nan")
    return float(lag / (2.0 * np.sqrt(-np.log(rho))))


# ------------------------------------------------------------------------ one exam
def log_response(amp_over_sigma: np.ndarray, coils: int) -> np.ndarray:
    """d E[log M] / d log A of a root-sum-of-squares magnitude M of ``coils`` channels at amplitude
    A (in units of the noise SD per real/imaginary part of one channel): 1 far above the noise
    floor, towards 0 on it. Texture in log S0 reaches log M times this factor.

    Computed on a grid of log(A / sigma) with common random numbers (``|A + sigma z|^2`` plus
    ``sigma^2`` times a chi-square of ``2 coils - 1`` degrees of freedom, exact in law) and
    interpolated.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(log_response(np.array([2.0, 4.0, 8.0]), 1), 2).tolist()  # one channel (Rician)
    [0.86, 1.0, 1.0]
    >>> np.round(log_response(np.array([2.0, 4.0, 8.0]), 8), 2).tolist()  # eight (brute force: 0.20, 0.52, 0.82)
    [0.2, 0.52, 0.82]
    """
    rng = np.random.default_rng(12345)
    n = 20_000
    z, c = rng.standard_normal(n), rng.chisquare(2 * max(int(coils), 1) - 1, n)
    grid = np.linspace(np.log(0.25), np.log(200.0), 120)
    f = np.array([np.mean(np.log((np.exp(g) + z) ** 2 + c)) / 2.0 for g in grid])
    d = np.gradient(f, grid)
    return np.interp(np.log(np.maximum(np.asarray(amp_over_sigma, np.float64), 1e-6)), grid, d, left=0.0, right=1.0)


def echoes_above_floor(y: np.ndarray, sigma: float, coils: int) -> np.ndarray:
    """Echoes (boolean, leading ones) whose log magnitude follows log S0 by at least
    ``1 - _ATTENUATION_MAX`` (:func:`log_response` at the median amplitude).

    ``y`` (voxel, echo) magnitudes, ``sigma`` the noise SD per real/imaginary part of one
    channel, ``coils`` the channels combined by root-sum-of-squares.

    Examples
    --------
    >>> import numpy as np
    >>> te = np.array([6, 12, 18, 24]) / 1e3
    >>> y = 100.0 * np.exp(-100.0 * te) * np.ones((50, 1))  # 55, 30, 17, 9 at sigma 2
    >>> echoes_above_floor(y, 2.0, 1).tolist(), echoes_above_floor(y, 2.0, 8).tolist()
    ([True, True, True, True], [True, True, True, False])
    """
    floor2 = 2.0 * max(int(coils), 1) * float(sigma) ** 2
    a = np.sqrt(np.maximum(np.median(np.asarray(y, np.float64) ** 2, axis=0) - floor2, 0.0)) / float(sigma)
    ok = log_response(a, coils) >= 1.0 - _ATTENUATION_MAX
    return np.cumprod(ok).astype(bool)  # a later echo above a failed one (a fat oscillation) is not used


def exam_texture(y: np.ndarray, xyz: np.ndarray, tile_of: np.ndarray, sel_of: dict, te_s: np.ndarray,
                 sigma: float, coils: int, n_boot: int = _N_BOOT, seed: int = 0) -> dict[str, Any]:
    """Within-tile variance of log S0 beyond a per-slice quadratic surface, per tile edge, in the
    estimator's own tiles.

    Parameters
    ----------
    y : ndarray (voxel, echo)
        Magnitudes of the ROI voxels in the headline's tiles.
    xyz : ndarray of int (voxel, 3)
        Their grid indices.
    tile_of : ndarray of int (voxel,)
        Tile of each voxel; ``sel_of`` ``{edge: boolean over tiles}``.
    te_s : ndarray (echo,)
        Echo times (s).
    sigma, coils : float, int
        Noise SD per real/imaginary part of one channel; channels (root-sum-of-squares).

    Returns
    -------
    dict
        ``echoes_above_floor``, ``measurable`` (at least ``_MIN_ECHOES``), and per tile edge
        (``by_tile_size``, str keys) ``s0_var`` (var log S0 ~ the kappa a smooth surface
        misses), ``s0_var_se`` (bootstrap over tiles), ``n_tiles``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> ij = np.stack(np.meshgrid(np.arange(64), np.arange(64), indexing="ij"), -1).reshape(-1, 2)
    >>> xyz = np.c_[ij, np.zeros(len(ij), int)]
    >>> tile = ij[:, 0] // 4 * 16 + ij[:, 1] // 4
    >>> te = np.array([2, 4, 6, 8]) / 1e3
    >>> s0 = 1000 * np.exp(0.05 * rng.standard_normal(len(ij)))
    >>> y = np.abs(s0[:, None] * np.exp(-50 * te) + 5 * rng.standard_normal((len(ij), 4)))
    >>> e = exam_texture(y, xyz, tile, {4: np.ones(256, bool)}, te, 5.0, 1)
    >>> e["measurable"], bool(abs(e["by_tile_size"]["4"]["s0_var"] - 0.05**2 * 15 / 16) < 4e-4)
    (True, True)
    """
    te_s = np.asarray(te_s, np.float64)
    use = echoes_above_floor(y, sigma, coils)
    out: dict[str, Any] = {"echoes_above_floor": int(use.sum()), "measurable": bool(use.sum() >= _MIN_ECHOES),
                           "by_tile_size": {}}
    if not out["measurable"]:
        return out
    use[np.flatnonzero(use)[_MAX_ECHOES:]] = False
    out["echoes_used"] = int(use.sum())
    yy = np.asarray(y, np.float64)[:, use]
    ok = np.all(yy > 0, axis=1)
    ij, z = np.asarray(xyz)[ok, :2], np.asarray(xyz)[ok, 2]
    resid = np.stack([_surface_points(np.log(yy[ok, e]), ij, z, _SURFACE_DEGREE) for e in range(yy.shape[1])], 1)
    tid = np.asarray(tile_of)[ok]
    # each tile's response of log M to log A at its own amplitude (near the floor texture is attenuated)
    nt = int(tid.max()) + 1
    cnt = np.maximum(np.bincount(tid, minlength=nt), 1)
    p2 = np.stack([np.bincount(tid, weights=yy[ok, e] ** 2, minlength=nt) / cnt for e in range(yy.shape[1])], 1)
    resp = log_response(np.sqrt(np.maximum(p2 - 2.0 * max(int(coils), 1) * sigma**2, 0.0)) / sigma, coils)
    bright = np.all(resp >= _TILE_RESPONSE_MIN, axis=1)[tid]
    resid = resid / np.maximum(resp[tid], _TILE_RESPONSE_MIN)
    rng = np.random.default_rng(seed)
    for s, sel in sel_of.items():
        v = np.isin(tid, np.flatnonzero(sel)) & bright
        if v.sum() < 4:
            continue
        ss, dof = _tile_products(resid[v], tid[v], 2)
        if dof.size < 2:
            continue
        r = _summarise(ss, dof, te_s[use], None, n_boot, rng)
        out["by_tile_size"][str(int(s))] = {"s0_var": r["s0_var"], "s0_var_se": r["s0_var_se"],
                                            "n_tiles": r["n_tiles"], "r2_var": r["r2_var"],
                                            "r2t_var_last_echo": float(r["r2_var"] * te_s[use][-1] ** 2)}
        out["by_tile_size"][str(int(s))]["usable"] = bool(out["by_tile_size"][str(int(s))]["r2t_var_last_echo"]
                                                          <= _R2T_VAR_MAX)
    return out


def prior_shift(t: Any, rho: dict, skip: "list | set", shape: str, texture: dict) -> dict[str, Any]:
    """The headline's expected shift (R2, s^-1) were kappa's prior mean raised by the measured
    texture: through the estimator's sensitivity d rho / d (prior mean) per tile edge
    (``t.rho_per_kappa_mean``, r2mri/_spread_estimate.py) and the correction at the moved rho.

    Returns ``{"shift_r2_per_s", "shift_se_r2_per_s", "r2_per_kappa_by_tile_size": {edge: d mean R2 / d kappa}}``;
    negative: the headline reads high by that much. Edges in ``skip`` (not corrected) add nothing.
    """
    from ._spread_estimate import _recorrect

    gain = getattr(t, "rho_per_kappa_mean", None) or {}
    wsum = float(t.k.sum())
    base_mu, base_s0 = t.r2_app.copy(), t.s0_app.copy()
    _recorrect(t, rho, base_mu, base_s0, shape)
    shift, var, per, moved = 0.0, 0.0, {}, dict(rho)
    for s in t.sizes:
        m = texture.get("by_tile_size", {}).get(str(int(s)))
        if m is None or s in skip or s not in gain or not np.isfinite(m["s0_var_se"]) or not m.get("usable", True):
            continue
        dk = max(abs(m["s0_var"]), m["s0_var_se"], 1e-4)
        mu, s0 = t.r2_app.copy(), t.s0_app.copy()
        _recorrect(t, {**rho, s: float(rho[s] + gain[s] * dk)}, mu, s0, shape)
        g = float(np.sum(t.k * (mu - base_mu)) / wsum / dk)  # d mean R2 / d kappa's prior mean, this edge
        per[str(int(s))] = g
        shift += g * m["s0_var"]
        var += (g * m["s0_var_se"]) ** 2
        moved[s] = float(rho[s] + gain[s] * m["s0_var"])
    mu, s0 = t.r2_app.copy(), t.s0_app.copy()
    _recorrect(t, moved, mu, s0, shape)  # every measured edge at once: the tiles' rates were the prior to see it
    return {"shift_r2_per_s": float(shift), "shift_se_r2_per_s": float(np.sqrt(var)), "r2_per_kappa_by_tile_size": per,
            "rho_moved_by_tile_size": {str(int(k)): v for k, v in moved.items()}, "_tile_delta": mu - base_mu}


def step_se(block: dict) -> float:
    """SE of the headline's step (R2, s^-1): the measurement's and ``_STEP_MODEL_ERROR`` of the shift."""
    return float(np.hypot(block["shift_se_r2_per_s"], _STEP_MODEL_ERROR * block["shift_r2_per_s"]))


def apply_correction(block: "dict | None", mean_r2_per_s: float) -> bool:
    """Whether the headline takes the prior's shift (``_CORRECT``): the texture measured, the
    shift downwards (texture only adds S0 variance: the prior then holds kappa too low and the
    headline reads high), larger than ``_WARN_Z`` SE and than ``_CORRECT_MIN_R2`` of the mean R2."""
    if not (_CORRECT and block and block.get("measurable") and "shift_r2_per_s" in block):
        return False
    sh, se = -block["shift_r2_per_s"], block["shift_se_r2_per_s"]
    return bool(sh > _WARN_Z * se and sh > _CORRECT_MIN_R2 * abs(mean_r2_per_s))


def texture_warning(block: "dict | None", lic_now: float, lic_moved: float) -> "str | None":
    """The report's line when the expected shift of the headline LIC exceeds ``_WARN_SHIFT`` and
    the shift is > ``_WARN_Z`` SE; None otherwise (also where the texture is not measurable).

    Examples
    --------
    >>> b = {"measurable": True, "shift_r2_per_s": -3.0, "shift_se_r2_per_s": 0.5, "s0_log_sd": 0.08}
    >>> texture_warning(b, 10.2, 10.0)[:40]
    'headline: the liver signal is more textu'
    >>> texture_warning({**b, "shift_se_r2_per_s": 1.5}, 10.2, 10.0) is None
    True
    """
    if not block or not block.get("measurable"):
        return None
    sh, se = -block.get("shift_r2_per_s", 0.0), block.get("shift_se_r2_per_s", np.inf)
    rel = lic_now / lic_moved - 1.0 if lic_moved > 0 else 0.0
    if not (rel > _WARN_SHIFT and sh > _WARN_Z * se):
        return None
    return (f"headline: the liver signal is more textured at fine scale than the iron-spread correction assumes; "
            f"the headline may read ~{100 * rel:.1f} % high and its interval may not hold the true value")


def report_warning(mixture: Any, mean_r2_per_s: float, cal: Any) -> list:
    """``liver_statistics``' hook: the texture block of ``mixture.extra`` gets the expected shift in
    LIC (``shift_lic_percent``, negative: the headline reads high) and, where it is material,
    :func:`texture_warning`'s line (a list of 0 or 1 line)."""
    block = getattr(mixture, "extra", {}).get("s0_texture") if mixture is not None else None
    if not block or not block.get("measurable") or "shift_r2_per_s" not in block:
        return []
    from .calibration import lic_from_r2

    if block.get("applied"):  # the headline took the shift already (r2mri/_headline.py)
        moved, before = (float(lic_from_r2(r, cal)) for r in (mean_r2_per_s, mean_r2_per_s - block["shift_r2_per_s"]))
        block["shift_lic_percent"] = 100.0 * (moved / before - 1.0) if before > 0 else 0.0
        return [f"headline: the liver signal is more textured at fine scale than the iron-spread correction assumes; "
                f"the headline was lowered by {-block['shift_lic_percent']:.1f} % for it (measured on this exam, "
                "included in the interval)"]
    now, moved = (float(lic_from_r2(r, cal)) for r in (mean_r2_per_s, mean_r2_per_s + block["shift_r2_per_s"]))
    block["shift_lic_percent"] = 100.0 * (moved / now - 1.0) if now > 0 else 0.0
    line = texture_warning(block, now, moved)
    return [line] if line else []
