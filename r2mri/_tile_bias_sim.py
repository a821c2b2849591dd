"""Simulated bias of the tile fits too noisy for the first-order (Box) term.

Why: :mod:`r2mri._tile_bias` takes the first-order bias (Box 1971) off each tile fit, but
only where the tile's relative SE of R2 is <= 15 %: beyond it the expansion fails. At
30 mg/g and SNR 20 those tiles are the partial 8 x 8 tiles at the liver's edge (a few to
a few tens of voxels) and, with 8 channels, many whole ones: 20-30 % of the ROI's voxels.
Left as fitted they read high (the fit of a decay at the magnitude floor), and that
was most of the headline's bias at 30 mg/g, SNR 20 (benchmarks/hetero_scaling.py,
docs/statistics.md "Small livers at 30 mg/g, SNR 20"): on 64 x 64 x 3 livers of 6 mm
(SD 0.4 in log LIC over 4 voxels, 8 channels) these tiles carried +2.3 % of the mean
R2 (+4.4 % in LIC), and the share does not fall with more slices, only with a finer
in-plane grid (fewer voxels in partial tiles).

What: a parametric bootstrap of the tile fit (Efron & Tibshirani, "An Introduction to
the Bootstrap", Chapman & Hall 1993, the chapter on bias estimation; cited from memory): for each such tile,
``reps`` tiles of ``k`` uniform voxels are simulated at a reference state, with the known
non-central chi noise, fitted with the same tile fit, and the mean shift of the R2 fits
that succeed (the real tile was kept because its fit did) is the bias taken off; the
tile's S0 is moved with it so that its amplitude at ``t_ref`` stays
(:func:`s0_keeping_amplitude`).

The reference states (branch small20, benchmarks/small20.py). First the tiles' shrunk
states (:mod:`r2mri._sim_state`; a state drawn from the tile's own noisy fit carries that
noise into the bias, which is convex in R2). But the noisy tiles are often the
high-iron ones (a higher R2 has fewer echoes above the floor), and the shrinkage pulls
them towards the edge's mean, where the bias is smaller: on small livers at 30 mg/g, SNR
20 (SD 0.4, width 4) their true apparent R2 was 8-11 % above the shrunk states (log), and
the simulated bias 1.16 / 2.08 % of the mean R2 (1 / 8 channels) against 1.49 / 3.28 % at
the true states. Drawing the states from each tile's posterior instead (Jensen) changed
nothing (1.08 / 2.08 %). So the states are now found by indirect inference (Gourieroux,
Monfort & Renault 1993, who proposed it; J. Applied Econometrics 8:S85-S118, journal
details cited from memory): the shrunk rates of each tile edge's noisy tiles times one
factor ``c`` (S0 pivoted at ``t_ref``), ``c`` chosen by secant steps so that the simulated
mean fit of those tiles equals their observed mean fit; their corrected mean is then
the states' mean. (A second factor on S0 was unstable: the fitted S0 and R2 err together.)
Which tiles are "too noisy" is decided by the SE at the shrunk state, by the caller
(:func:`r2mri._spread_estimate._tile_set`): chosen by their own SE, the Box class was
the tiles that happened to read low and the noisy class those that read high.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_bias_warning", "s0_keeping_amplitude", "simulated_fit_bias", "simulated_tile_bias"]

_DRAW_BUDGET = 4_000_000  # [D, r2mri's choice] simulated voxel-echo magnitudes per call (~0.2 s)
_REPS_MIN, _REPS_MAX = 8, 64  # [D, r2mri's choice] replicates per tile


def simulated_tile_bias(r2: np.ndarray, s0: np.ndarray, te: np.ndarray, k: np.ndarray, sigma: float, coils: int,
                        seed: int = 0, reps: "int | None" = None,
                        min_rel_se: "float | None" = None, log_s0: bool = False, draw=None, draw_sel=None,
                        fits: "list | None" = None) -> tuple:
    """Bias ``(b_r2, se_b_r2)`` of the tile fit's R2 at ``(s0, r2)`` by simulation.

    Parameters
    ----------
    r2, s0 : ndarray, shape (tiles,)
        Reference state of each tile (R2 in s^-1, S0 in signal units).
    te : ndarray
        Echo times (s).
    k : ndarray, shape (tiles,)
        Voxels averaged per tile.
    sigma : float
        Noise SD per real/imaginary part of one channel.
    coils : int
        Channels combined by root-sum-of-squares.
    seed : int, default 0
        Seed of the simulation (deterministic).
    reps : int, optional
        Replicates per tile; default from a budget of simulated magnitudes, 8-64.
    min_rel_se : float, optional
        Count only the replicates whose own relative SE of R2 is above this (the real
        tiles were simulated because theirs was: the same selection), where at least a
        quarter of them are; else every replicate that fits.
    log_s0 : bool, default False
        Also return the mean shift of the fitted ``log S0`` per tile.
    draw, draw_sel : optional
        Correlated noise (:func:`r2mri._corr_tiles.tile_draw`) and the tiles it is for:
        each replicate's tile means drawn by it (``k``: the noise counts, the fit's weights).

    Returns
    -------
    (ndarray, ndarray)
        Mean shift of the fitted R2 (s^-1) per tile and its Monte Carlo SE; zero (and SE
        0) where fewer than half the replicates fit. (The S0 that goes with the corrected
        R2: :func:`s0_keeping_amplitude`.)

    Examples
    --------
    >>> import numpy as np
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> b_r2, se = simulated_tile_bias(np.full(50, 240.0), np.full(50, 20.0), te, np.full(50, 16.0), 1.0, 8)
    >>> bool(np.mean(b_r2) / 240.0 > 0.01)  # 16-voxel tiles at 30 mg/g, SNR 20, 8 channels read high
    True
    """
    from .stats import _tile_fit

    r2 = np.asarray(r2, dtype=np.float64)
    s0 = np.asarray(s0, dtype=np.float64)
    te = np.asarray(te, dtype=np.float64)
    kk = np.maximum(np.round(np.asarray(k, dtype=np.float64)), 1).astype(np.int64)
    nt = r2.size
    if nt == 0:
        return np.zeros(0), np.zeros(0)
    if reps is None:
        reps = int(np.clip(_DRAW_BUDGET // max(int(kk.sum()) * te.size, 1), _REPS_MIN, _REPS_MAX))
    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(nt), kk)  # tile of each simulated voxel
    amp = (s0[:, None] * np.exp(-r2[:, None] * te[None, :]))[owner]  # (voxels, echoes)
    if draw is not None:  # noise correlated between voxels, on each tile's block (r2mri/_corr_tiles.py)
        from ._corr_tiles import block_reps

        reps = min(reps, block_reps(draw.side[draw_sel], te.size, coils, _REPS_MIN, _REPS_MAX))
    y = np.empty((reps, nt, te.size))
    for r in range(reps if draw is not None else 0):
        y[r] = draw(s0[:, None] * np.exp(-r2[:, None] * te[None, :]), (int(seed), r), draw_sel)
    for r in range(reps if draw is None else 0):
        # RSS magnitude of `coils` channels, the whole amplitude on one (exact in law):
        # |A + sigma z|^2 plus sigma^2 chi^2 with 2 coils - 1 degrees of freedom
        re = amp + sigma * rng.standard_normal(amp.shape)
        m = np.sqrt(re * re + sigma**2 * rng.chisquare(2 * int(coils) - 1, amp.shape))
        for e in range(te.size):
            y[r, :, e] = np.bincount(owner, weights=m[:, e], minlength=nt) / kk
    r2_f, s0_f, se_f, ok = _tile_fit(y.reshape(reps * nt, te.size), te, np.tile(kk.astype(np.float64), reps),
                                     float(sigma), int(coils))
    ok = ok.reshape(reps, nt)
    enough = ok.sum(axis=0) >= max(reps // 2, 2)
    if min_rel_se is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            sel = ok & (se_f.reshape(reps, nt) > min_rel_se * r2_f.reshape(reps, nt))
        ok = np.where(enough & (sel.sum(axis=0) >= max(reps // 4, 2)), sel, ok)
    n_ok = ok.sum(axis=0)
    if fits is not None:  # the replicate fits and which count, (reps, tiles) each
        fits[:] = [r2_f.reshape(reps, nt), ok & enough[None, :]]
    d_r2 = np.where(ok, r2_f.reshape(reps, nt) - r2[None, :], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        b_r2 = np.where(enough, d_r2.sum(0) / np.maximum(n_ok, 1), 0.0)
        var = np.where(ok, (d_r2 - b_r2[None, :]) ** 2, 0.0).sum(0) / np.maximum(n_ok - 1, 1)
        se = np.where(enough, np.sqrt(var / np.maximum(n_ok, 1)), 0.0)
        d_ls0 = np.where(ok, np.log(np.maximum(s0_f.reshape(reps, nt), 1e-300) / s0[None, :]), 0.0)
        b_ls0 = np.where(enough, d_ls0.sum(0) / np.maximum(n_ok, 1), 0.0)
    return (b_r2, se, b_ls0) if log_s0 else (b_r2, se)


def s0_keeping_amplitude(s0: np.ndarray, r2: np.ndarray, b_r2: np.ndarray, te: np.ndarray) -> np.ndarray:
    """Shift ``b_s0`` of S0 such that ``(s0 - b_s0, r2 - b_r2)`` keeps the tile's amplitude at
    ``t_ref`` (the echo time where a weighted log-linear fit's amplitude and slope errors are
    uncorrelated, as in :mod:`r2mri._sim_state`).

    The fitted S0 and R2 of a noisy tile err together (a rate read high extrapolates to a
    high S0); the amplitude at ``t_ref`` is what the data fix. Taking the simulated mean S0
    shift off as well (an earlier version) made the spread statistic read rho 0.044-0.048
    against the tiles' own 0.037 (16-voxel tiles, SNR 20, 8 channels; 0.038-0.039 without
    it and with this pivot; tests/test_sim_state.py).

    Examples
    --------
    >>> import numpy as np
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> b = s0_keeping_amplitude(np.array([100.0]), np.array([240.0]), np.array([10.0]), te)
    >>> bool(6.5 < b[0] < 7.0)  # t_ref ~6.8 ms at 240 s^-1: S0 lowered by 1 - exp(-10 x 0.0068)
    True
    """
    r2 = np.asarray(r2, dtype=np.float64)
    te = np.asarray(te, dtype=np.float64)
    w = np.exp(-2.0 * np.maximum(r2, 0.0)[:, None] * te[None, :])
    t_ref = (w @ te) / w.sum(axis=1)
    return np.asarray(s0, dtype=np.float64) * (1.0 - np.exp(-np.asarray(b_r2, dtype=np.float64) * t_ref))


def simulated_fit_bias(r2: np.ndarray, s0: np.ndarray, se_rel: np.ndarray, k: np.ndarray, groups, skipped: np.ndarray,
                       te: np.ndarray, sigma: float, coils: int, seed: int = 0, conditioned: bool = False,
                       k_noise: "np.ndarray | None" = None, draw=None) -> tuple:
    """``(b_s0, b_r2, se)`` of the headline's tiles: the simulated fit bias of the ``skipped``
    tiles, zero elsewhere. ``se``: Monte Carlo SE of the voxel-weighted mean shift (s^-1).

    The states: each tile's shrunk state (:func:`r2mri._sim_state.shrunk_state` over
    ``groups``, one boolean selection per tile edge) with the rates of each group's skipped
    tiles scaled by one factor ``c`` (S0 moved to keep each tile's amplitude at ``t_ref``),
    ``c`` chosen so that the simulated mean fit of those tiles equals their observed mean
    fit (indirect inference, module docstring). ``conditioned``: the real tiles were chosen by
    their own relative SE (> 15 %), so only replicates that are too count (the same selection);
    the headline chooses them by the SE at their shrunk state instead, which does not follow
    the tile's own noise, and simulates without that condition. S0 is then moved to keep each
    tile's amplitude at ``t_ref``. ``k_noise``: the tiles' noise counts where the noise is
    correlated between voxels (r2mri/_corr_tiles.py), the fit's weights; default ``k``, which
    weights the means either way. ``draw``: that noise on the tiles' blocks
    (:func:`r2mri._corr_tiles.tile_draw`); without it ``k_noise`` independent voxels.

    Examples
    --------
    >>> import numpy as np
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> r2, s0, k = np.full(40, 240.0), np.full(40, 20.0), np.full(40, 16.0)
    >>> b_s0, b_r2, se = simulated_fit_bias(r2, s0, np.full(40, 0.2), k, [np.ones(40, bool)], np.arange(40) < 20,
    ...                                     te, 1.0, 8)
    >>> bool(np.all(b_r2[20:] == 0) and np.mean(b_r2[:20]) / 240.0 > 0.01)  # only the skipped tiles, ~+4 %
    True
    """
    from ._sim_state import shrunk_state
    from ._tile_bias import _REL_SE_MAX

    r2 = np.asarray(r2, dtype=np.float64)
    s0 = np.asarray(s0, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    b_s0, b_r2 = np.zeros(r2.size), np.zeros(r2.size)
    idx = np.flatnonzero(np.asarray(skipped, bool) & np.isfinite(r2) & (r2 > 0))
    if idx.size == 0:
        return b_s0, b_r2, 0.0
    r_ref, s_ref = shrunk_state(r2, s0, se_rel, k, groups, te, _VB_MAX_REL_SE) if _STATES == "shrunk" else (r2, s0)
    r_ref, s_ref = r_ref[idx], s_ref[idx]
    w = np.exp(-2.0 * r_ref[:, None] * te[None, :])
    t_ref = (w @ te) / w.sum(axis=1)
    # one factor per group of the skipped tiles (a tile outside every group: a group of its own)
    gid = np.full(idx.size, -1)
    for j, sel in enumerate(groups):
        gid[np.asarray(sel, bool)[idx]] = j
    gid[gid < 0] = len(groups) + np.arange(np.sum(gid < 0))
    _, gid = np.unique(gid, return_inverse=True)
    ng, kw = int(gid.max()) + 1, k[idx]
    kn = kw if k_noise is None else np.asarray(k_noise, dtype=np.float64)[idx]
    obs = np.bincount(gid, weights=kw * r2[idx], minlength=ng)
    # one factor per group on the rates (S0 pivoted at t_ref), found by secant steps; the search's
    # simulations with a quarter of the replicates (the same first ones: common random numbers):
    # the corrected mean depends on the factor only through the bias's slope, which is small.
    # (Matching S0 with a second factor as well was unstable: the fitted S0 and R2 err together.)
    c, hist = np.ones(ng), []
    reps = int(np.clip(_DRAW_BUDGET // max(int(np.round(kn).sum()) * te.size, 1), _REPS_MIN, _REPS_MAX))
    for it in range(_II_EVALS):
        rr = r_ref * c[gid]
        ss = s_ref * np.exp((rr - r_ref) * t_ref)
        fits: list = []
        br, se = simulated_tile_bias(rr, ss, te, kn, sigma, coils, seed=seed,
                                     min_rel_se=_REL_SE_MAX if conditioned else None,
                                     reps=reps if it + 1 == _II_EVALS else max(reps // 4, _REPS_MIN),
                                     draw=draw, draw_sel=idx, fits=fits)
        # relative gap of each group's mean fit (tiles without a simulated bias: their own state)
        gap_mean = (np.bincount(gid, weights=kw * (rr + br), minlength=ng) - obs) / np.bincount(gid, weights=kw * rr,
                                                                                               minlength=ng)
        gap = gap_mean if _II_MATCH == "mean" else _robust_gap(r2[idx], fits, gid, ng, kw, _II_MATCH)
        hist.append((c.copy(), gap))
        if it + 1 == _II_EVALS:
            break
        if it == 0:
            c_new = c * (1.0 - gap)
        else:
            (c0, g0), (c1, g1) = hist[-2], hist[-1]
            with np.errstate(invalid="ignore", divide="ignore"):
                c_new = np.where(np.abs(g1 - g0) > 1e-12, c1 - g1 * (c1 - c0) / (g1 - g0), c1)
        c = np.clip(np.where(np.isfinite(c_new), c_new, c), *_II_FACTOR)
    # the mean shift at the matched states: the group's corrected mean is then its states' mean (matched on a
    # robust statistic, the group's mean fit differs from the simulated one: that difference is taken off too)
    b_r2[idx] = br if _II_MATCH == "mean" else br - (gap_mean * np.bincount(gid, weights=kw * rr, minlength=ng)
                                                   / np.bincount(gid, weights=kw, minlength=ng))[gid]
    b_s0[idx] = s0_keeping_amplitude(s0[idx], r2[idx], b_r2[idx], te)  # each tile keeps its amplitude at t_ref
    return b_s0, b_r2, float(np.sqrt(np.sum((kw * se) ** 2)) / k.sum())


# Alternatives measured on the coarse 30 mg/g liver, SNR 20, 8 channels with its floor fits pooled (branch floor30,
# benchmarks/results/floor30/): the indirect inference on the tiles' own fitted states (``_STATES = "own"``), one
# factor per tile instead of per tile edge (``gid = np.arange(idx.size)``, not kept), and matched on a robust
# statistic of the fits (``_II_MATCH``: "median", or "log", the mean log R2) instead of their mean. Not shipped:
# see docs/statistics.md, "Liver at the noise floor".
_STATES = "shrunk"  # [D] reference states of the simulated tiles: "shrunk" (r2mri/_sim_state.py) or "own"
_II_MATCH = "mean"  # [D] statistic of the tile fits that the indirect inference matches: "mean", "median", "log"


def _wmedian(v, w):
    o = np.argsort(v)
    cw = np.cumsum(w[o])
    return float(v[o][np.searchsorted(cw, 0.5 * cw[-1])])


def _robust_gap(r2_obs, fits, gid, ng, kw, how):
    """Relative gap, per group, of the simulated tiles' fits against the observed ones on a robust
    statistic (``how``: "median", or "log": the mean of log R2), voxel-weighted."""
    f, ok = fits
    gap = np.zeros(ng)
    for g in range(ng):
        sel = gid == g
        fo, wo = r2_obs[sel], kw[sel]
        fs, oks = f[:, sel], ok[:, sel]
        ws = np.broadcast_to(wo, fs.shape)[oks]
        fs = fs[oks]
        if fs.size < 2 or np.any(fo <= 0) or np.any(fs <= 0):
            continue
        if how == "median":
            gap[g] = _wmedian(fs, ws) / _wmedian(fo, wo) - 1.0
        else:
            gap[g] = float(np.exp(np.sum(ws * np.log(fs)) / ws.sum() - np.sum(wo * np.log(fo)) / wo.sum()) - 1.0)
    return gap
_II_EVALS = 3  # [D, r2mri's choice] simulations of the indirect inference (start, then two secant steps)
_II_FACTOR = (0.67, 1.5)  # [D, r2mri's choice] bounds of the factor on the shrunk rates
_VB_MAX_REL_SE = 0.3  # [D, r2mri's choice] the states' between-tile variance from the tiles of relative SE up to
# this (r2mri/_sim_state.py, _between_variance; branch est30): on coarse 30 mg/g SNR 20 8-channel livers the tiles'
# SEs are calibrated up to 0.5 (SD of the z-score 0.99-1.03), 0.68 above; 0.3 and 0.5 gave the same headline
# (-0.54 / -0.56 % in LIC, paired, 12 livers). None: from every tile of the edge (before est30).


_FIT_BIAS_WARN = 0.015  # [D, r2mri's choice] tile-fit bias taken off (Box + simulated), as a share of the mean
# R2, above which the report warns. 1.5 % of R2 is ~2.8 % in LIC (d ln LIC / d ln R2 ~1.9 on the St Pierre
# curve at 1-30 mg/g); on small livers at 30 mg/g, SNR 20 what was left after such corrections measured 35-55 %
# of them (benchmarks/hetero_scaling.py), i.e. 1-1.6 % in LIC here, near issue 16's 2 % bound; since the states
# by indirect inference (branch small20, benchmarks/small20.py) +0.5 to +0.8 % of R2 with one channel, -0.2 to
# 0 % with eight. The fire counts that follow are from before that branch. Fires on 93/96
# small (64 x 64 x 3) 8-channel livers there, 45/96 with one channel, 11/144 full-size SNR 20 livers


def fit_bias_warning(fit_bias_r2: float, simulated_r2: float, skipped_share: float, mean_r2: float) -> "str | None":
    """The report's warning when the tile fits' own noise bias is large, else ``None``.

    ``fit_bias_r2``: the voxel-weighted bias taken off the tile fits (Box and simulated
    terms, s^-1); ``simulated_r2``: its simulated part; ``skipped_share``: voxel share of
    the tiles too noisy for the Box term; ``mean_r2``: the headline's mean R2 (s^-1).

    Examples
    --------
    >>> fit_bias_warning(0.5, 0.2, 0.05, 240.0) is None
    True
    >>> fit_bias_warning(6.0, 4.0, 0.3, 240.0).startswith("headline: the tile fits are noisy")  # 2.5 %
    True
    """
    share = fit_bias_r2 / mean_r2 if mean_r2 > 0 else 0.0
    if not share > _FIT_BIAS_WARN:
        return None
    return (f"headline: the tile fits are noisy here: {100 * share:.1f} % of the mean R2 was taken off as their own "
            f"bias ({100 * simulated_r2 / mean_r2:.1f} % of it simulated for the {100 * skipped_share:.0f} % of the ROI "
            "too noisy for the first-order term); what such corrections left measured up to +0.8 % of the mean R2 "
            "with one channel and within 0.2 % with eight on small livers at 30 mg/g, SNR 20 (the headline there "
            "+0.9 to +1.3 % high in LIC with one channel), and +0.5 % with eight on full-size coarsely patchy "
            "livers (+1.0 % in LIC), which the interval does not include")
