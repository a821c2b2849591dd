"""Measurement standard error of the tile-pooled mean R2, at the tiles' shrunk states.

Why: :func:`r2mri.stats.pooled_mean_r2` combined the tiles' own fit SEs,
``sqrt(sum (k_t se_t)^2) / sum k_t``, each ``se_t`` the Fisher SE of the tile fit at
that tile's *estimate*. Where the decay sits on the magnitude floor (30 mg/g, SNR 20,
8 channels: the first echo at ~4 sigma in the dark coil regions) a tile's fit can run off
to R2 ~1,000 s^-1 against ~230 true, and the Fisher SE there is 10^3-10^4 s^-1 (the
echoes carry almost no information about a rate that fast). Such SEs are plug-in
artefacts, not the spread of the tile's estimate: on a full-size liver (SD 0.4 in log LIC
over 4 voxels, 30 mg/g, SNR 20, 8 channels, seed 0) 20 of 1,805 tiles held 98 % of the
variance, the combined SE read 7.8 s^-1 (3.4 % of R2; interval +-16 % in LIC) while the
simulated spread of the same tile mean was 0.9 s^-1 and the seed-to-seed SD of the
headline 1.4 % in LIC.

What: each tile's SE is the spread of its fit at its *shrunk* state
(:func:`r2mri._sim_state.shrunk_state`: ``log R2`` pulled towards its tile edge's mean by
the share of the between-tile variance that is not fit noise, the amplitude at
``t_ref`` kept), i.e. at a state the tile could have come from rather than at its own
noisy fit:

- tiles whose Fisher SE there is at most ``_REL_SE_FISHER`` of R2 (the Box domain of
  :mod:`r2mri._tile_bias`): the Fisher SE of the tile fit (its own weights, the same
  non-central chi model), at the shrunk state;
- noisier tiles: the SD of the tile fit over ``reps`` simulated tiles of ``k`` uniform
  voxels at the shrunk state (the known noise, the same fit; fits that fail are left out
  as the real tile would have been); at most 2,500 s^-1, half the fit's range of R2
  (``_SD_MAX_R2``). The Fisher SE under-states these: on the liver
  above, tiles of relative SE 0.15-0.3 (Fisher) 0.45 against 0.53 s^-1 simulated, above
  0.3 0.21 against 0.39 s^-1.

The combination over tiles is unchanged (tiles independent, voxel-weighted).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fisher_se_r2", "pooled_measurement_se"]

_REL_SE_FISHER = 0.15  # [D, r2mri's choice] relative Fisher SE of R2 up to which the Fisher SE is used (the
# Box-term bound of r2mri/_tile_bias.py; beyond it the fit's distribution is skewed and heavier-tailed)
_SD_MAX_R2 = 2500.0  # largest SD (s^-1) of a tile's fitted R2: the tile fit keeps R2 in (0, 5000) s^-1
# (r2mri.stats._tile_fit) and a variable within [a, b] has a variance of at most (b - a)^2 / 4 (T. Popoviciu,
# Mathematica (Cluj) 9:129-145, 1935; journal details cited from memory, the inequality is elementary). Without
# it a 3-voxel tile whose simulated fits mostly failed at one seed (its Fisher fallback: 128,000 s^-1)
# moved the measurement SE of a full-size liver from 0.84 to 4.15 s^-1 with the statistics seed
# (benchmarks/mc_seed.py, 30 mg/g, SNR 20, 8 channels, liver 6)
_DRAW_BUDGET = 2_000_000  # [D, r2mri's choice] simulated voxel-echo magnitudes per call (~0.1 s)
_REPS_MIN, _REPS_MAX = 8, 32  # [D, r2mri's choice] simulated tiles per noisy tile


def fisher_se_r2(r2: np.ndarray, s0: np.ndarray, te: np.ndarray, k: np.ndarray, sigma: float,
                 coils: int) -> np.ndarray:
    """Fisher SE of the tile fit's R2 (s^-1) at the states ``(s0, r2)`` (the weights and model
    of :func:`r2mri.stats._tile_fit`); ``inf`` where the information is singular.

    Examples
    --------
    >>> import numpy as np
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> se = fisher_se_r2(np.array([50.0]), np.array([1000.0]), te, np.array([1.0]), 10.0, 1)
    >>> bool(1.0 < se[0] < 2.0)  # about sigma / (S0 sqrt(sum (te - mean te)^2)) x exp(R2 t)
    True
    """
    from ._tile_bias import tile_fit_fisher

    t = tile_fit_fisher(r2, s0, te, k, sigma, coils)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(np.where(t["det"] > 0, t["f00"] / t["det"], np.inf))


def _simulated_sd(r2, s0, te, k, sigma, coils, seed, draw=None, draw_sel=None):
    """SD of the tile fit's R2 over simulated tiles of ``k`` uniform voxels at ``(s0, r2)``;
    NaN where fewer than half the simulated fits succeed."""
    from .stats import _tile_fit

    kk = np.maximum(np.round(k), 1).astype(np.int64)
    nt = r2.size
    reps = int(np.clip(_DRAW_BUDGET // max(int(kk.sum()) * te.size, 1), _REPS_MIN, _REPS_MAX))
    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(nt), kk)
    amp = (s0[:, None] * np.exp(-r2[:, None] * te[None, :]))[owner]
    y = np.empty((reps, nt, te.size))
    if draw is not None:  # noise correlated between voxels, on each tile's block (r2mri/_corr_tiles.py)
        from ._corr_tiles import block_reps

        reps = min(reps, block_reps(draw.side[draw_sel], te.size, coils, _REPS_MIN, _REPS_MAX))
        y = np.stack([draw(s0[:, None] * np.exp(-r2[:, None] * te[None, :]), (int(seed), 1, r), draw_sel)
                      for r in range(reps)])
    for r in range(reps if draw is None else 0):
        re = amp + sigma * rng.standard_normal(amp.shape)
        mag = np.sqrt(re * re + sigma**2 * rng.chisquare(2 * int(coils) - 1, amp.shape))
        for e in range(te.size):
            y[r, :, e] = np.bincount(owner, weights=mag[:, e], minlength=nt) / kk
    fit, _s0, _se, ok = _tile_fit(y.reshape(reps * nt, te.size), te, np.tile(kk.astype(np.float64), reps),
                                  float(sigma), int(coils))
    ok = ok.reshape(reps, nt)
    fit = np.where(ok, fit.reshape(reps, nt), 0.0)
    n_ok = ok.sum(axis=0)
    m = fit.sum(axis=0) / np.maximum(n_ok, 1)
    sd = np.sqrt(np.sum(np.where(ok, (fit - m) ** 2, 0.0), axis=0) / np.maximum(n_ok - 1, 1))
    return np.where(n_ok >= max(reps // 2, 2), sd, np.nan)


def pooled_measurement_se(r2: np.ndarray, s0: np.ndarray, se: np.ndarray, k: np.ndarray, tile_size: np.ndarray,
                          te: np.ndarray, sigma: float, coils: int, seed: int = 0,
                          k_noise: "np.ndarray | None" = None, draw=None) -> tuple[float, np.ndarray]:
    """SE (s^-1) of the voxel-weighted mean of the tile rates, and each tile's SE (module docstring).

    Parameters
    ----------
    r2, s0, se : ndarray, shape (tiles,)
        The tiles' fitted R2 (s^-1), S0 and the fit's own (plug-in) SE of R2.
    k : ndarray, shape (tiles,)
        Voxels per tile.
    tile_size : ndarray, shape (tiles,)
        Tile edge of each tile (the shrinkage groups).
    te : ndarray
        Echo times (s).
    sigma, coils : float, int
        Noise SD per real/imaginary part of one channel; channels combined.
    seed : int, default 0
        Seed of the simulated tiles (deterministic).
    k_noise : ndarray, optional
        Each tile's noise count where the noise is correlated between voxels
        (r2mri/_corr_tiles.py); default ``k``. ``k`` still weights the mean.
    draw : callable, optional
        That noise on the tiles' blocks (:func:`r2mri._corr_tiles.tile_draw`) for the simulated
        tiles; without it ``k_noise`` independent voxels.

    Returns
    -------
    (float, ndarray)

    Examples
    --------
    >>> import numpy as np
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> r2 = np.r_[np.full(99, 100.0), 900.0]; k = np.full(100, 64.0)
    >>> s0 = 1000 * np.exp((r2 - 100.0) * 0.006)  # one tile's fit ran off, its first echo as the others'
    >>> se = np.r_[np.full(99, 0.2), 5000.0]  # and its plug-in SE is huge
    >>> m, per_tile = pooled_measurement_se(r2, s0, se, k, np.full(100, 8), te, 10.0, 1)
    >>> bool(m < 0.05 < np.sqrt(np.sum((k * se) ** 2)) / k.sum()), bool(per_tile[-1] < 1.0)
    (True, True)
    """
    from ._sim_state import shrunk_state

    r2 = np.asarray(r2, dtype=np.float64)
    s0 = np.asarray(s0, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    te = np.asarray(te, dtype=np.float64)
    size = np.asarray(tile_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_rel = np.where((r2 > 0) & np.isfinite(se), se / r2, np.inf)
    groups = [size == s for s in np.unique(size)]
    r_ref, s_ref = shrunk_state(r2, s0, se_rel, k, groups, te)
    kn = k if k_noise is None else np.asarray(k_noise, dtype=np.float64)
    out = fisher_se_r2(r_ref, s_ref, te, kn, sigma, coils)
    noisy = np.flatnonzero(~(out <= _REL_SE_FISHER * r_ref))
    if noisy.size:
        sd = _simulated_sd(r_ref[noisy], s_ref[noisy], te, kn[noisy], sigma, coils, seed, draw, noisy)
        # a tile whose simulated fits mostly fail: the larger of its Fisher SE at the shrunk state and its own
        out[noisy] = np.where(np.isfinite(sd), sd, np.fmax(out[noisy], np.where(np.isfinite(se[noisy]), se[noisy], 0)))
    out = np.where(np.isfinite(out), out, se)
    # no SE above what the fit's bounded range allows (the plug-in Fisher SEs of the fallback reached 10^5 s^-1)
    out = np.minimum(out, _SD_MAX_R2)
    return float(np.sqrt(np.sum((k * out) ** 2)) / np.sum(k)), out
