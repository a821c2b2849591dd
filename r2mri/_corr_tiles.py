"""Spatially correlated noise carried into the tile statistics (effective voxels per tile).

Why: the tile estimator (r2mri/stats.py ``pooled_mean_r2``, r2mri/_headline.py) fits the
mean magnitude of the ``k`` voxels of a tile, and its fit weights, fit-bias terms
(r2mri/_tile_bias.py, _tile_bias_sim.py) and measurement SE (r2mri/_measurement_se.py) take
the noise variance of that mean as ``sigma_M^2 / k``. With noise correlated between voxels
(interpolated reconstructions, r2mri/_noise_correlation.py; the real 1.5 T series reads lag-1
0.79) it is ``sigma_M^2 sum_{i,j in tile} r(i - j) / k^2``: an 8 x 8 tile then behaves as ~7
independent voxels, and its fit bias (second order in that variance) was +19.7 % of R2 at
30 mg/g, SNR 20, 8 channels against +2.0 % with white noise (benchmarks/corr_noise.py
``--decompose``).

What: ``r(dx, dy) = rho(|dx|) rho(|dy|)`` (separable, ``rho(0) = 1``, lags beyond those
measured taken as 0, as :func:`r2mri._noise_correlation.block_variance_factor`), summed over
the pairs of used voxels of each tile on its actual footprint (partial edge tiles too):
``f_t = sum_{i,j in t} r(i - j) / k_t``, the tile's noise count ``k_t / f_t``. The tile means
are also correlated with their neighbours' (pairs across tile borders): the SE of the
voxel-weighted mean is scaled by ``sqrt(F)``, ``F`` the sum of ``r`` over all pairs of used
voxels over its sum over the pairs inside tiles (linear regime, tiles of similar SE); the
between-tile bootstrap's noise share is multiplied by the same ``F`` (r2mri/_corr_bootstrap.py).

Applied only when the measured correlation is material, by the same rule as the report's
warning (:func:`r2mri._noise_correlation.correlation_warning`: lag-1 ``|rho| >= 0.2`` and
more than 3 SE); otherwise (no air, white noise) nothing changes, bit for bit. The magnitude
loses the sign of ``rho`` (zero-filling's negative lobes read positive), which errs towards a
larger variance.
"""

from __future__ import annotations

import numpy as np

__all__ = ["material_rho", "tile_noise_factors"]


def material_rho(corr: "dict | None") -> "dict[int, float] | None":
    """``rho_by_lag`` of a :func:`r2mri._noise_correlation.noise_correlation` result when the
    report warns about it, else None (white noise, no air): the statistics then assume
    independent voxels, as before.

    Examples
    --------
    >>> material_rho(None) is None
    True
    """
    from ._noise_correlation import correlation_warning

    if not corr or correlation_warning(corr) is None:
        return None
    return {int(lag): float(v or 0.0) for lag, v in corr["rho_by_lag"].items()}


def tile_noise_factors(ii: np.ndarray, jj: np.ndarray, kk: np.ndarray, tile: np.ndarray, n_tiles: int,
                       shape: tuple, rho_by_lag: dict) -> tuple[np.ndarray, float]:
    """Per tile ``f_t = sum_{i,j in t} r(i - j) / k_t`` and the ROI-wide factor ``F`` (module docstring).

    Parameters
    ----------
    ii, jj, kk : ndarray of int
        Voxel coordinates (in-plane x, y and slice) of the used voxels.
    tile : ndarray of int
        Tile of each voxel (``-1``: not in a tile; such voxels are ignored).
    n_tiles : int
    shape : tuple
        Spatial grid shape (x, y, z).
    rho_by_lag : dict
        In-plane correlation per lag (voxels).

    Returns
    -------
    (ndarray, float)
        ``f`` per tile (1 for white noise) and ``F`` (>= 1 for positive correlation).

    Examples
    --------
    >>> import numpy as np
    >>> ii, jj = np.divmod(np.arange(4), 2); kk = np.zeros(4, int)
    >>> f, F = tile_noise_factors(ii, jj, kk, np.zeros(4, int), 1, (2, 2, 1), {1: 0.79})
    >>> round(float(f[0]), 2), F  # one 2 x 2 tile: (1 + 0.79)^2 = 3.2
    (3.2, 1.0)
    """
    ii, jj, kk = (np.asarray(a, dtype=np.int64) for a in (ii, jj, kk))
    tile = np.asarray(tile, dtype=np.int64)
    use = tile >= 0
    ii, jj, kk, tile = ii[use], jj[use], kk[use], tile[use]
    grid = np.full(tuple(shape), -1, dtype=np.int64)
    grid[ii, jj, kk] = tile
    lags = [d for d, v in rho_by_lag.items() if v]
    big = max(lags, default=0)

    def rho(d):
        return 1.0 if d == 0 else float(rho_by_lag.get(d) or 0.0)

    within = np.zeros(int(n_tiles))
    total = 0.0
    nx, ny = shape[0], shape[1]
    for dx in range(-big, big + 1):
        for dy in range(-big, big + 1):
            r = rho(abs(dx)) * rho(abs(dy))
            if (dx == 0 and dy == 0) or r == 0.0:
                continue
            x2, y2 = ii + dx, jj + dy
            inb = (x2 >= 0) & (x2 < nx) & (y2 >= 0) & (y2 < ny)
            other = np.full(ii.size, -1, dtype=np.int64)
            other[inb] = grid[x2[inb], y2[inb], kk[inb]]
            within += r * np.bincount(tile[other == tile], minlength=int(n_tiles))
            total += r * float(np.count_nonzero(other >= 0))
    k = np.bincount(tile, minlength=int(n_tiles)).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(k > 0, (k + within) / k, 1.0)
    n = float(ii.size)
    big_f = (n + total) / (n + float(within.sum())) if n > 0 else 1.0
    return f, float(big_f)


_FILTER_HALF = 4  # [D, r2mri's choice] taps each side of the noise-shaping filter (lags 1-3 measured)


def correlation_filter(rho_by_lag: dict, half: int = _FILTER_HALF) -> np.ndarray:
    """1-D filter whose autocorrelation is ``rho(d)`` (lags measured; 0 beyond): the square root
    of the spectrum (clipped at 0), truncated to ``2 half + 1`` taps, unit energy.

    Examples
    --------
    >>> h = correlation_filter({1: 0.79, 2: 0.39, 3: 0.12})
    >>> round(float(np.sum(h[1:] * h[:-1])), 2)  # lag-1 autocorrelation
    0.79
    """
    n = 64
    acf = np.zeros(n)
    acf[0] = 1.0
    for d, v in rho_by_lag.items():
        if v and 0 < int(d) < n // 2:
            acf[int(d)] = acf[-int(d)] = float(v)
    spec = np.maximum(np.fft.fft(acf).real, 0.0)
    h = np.fft.fftshift(np.fft.ifft(np.sqrt(spec)).real)
    c = n // 2
    h = h[c - half:c + half + 1]
    return h / np.sqrt(np.sum(h * h))


def correlated_tile_noise(k: np.ndarray, side: np.ndarray, n_echoes: int, coils: int, rng: np.random.Generator,
                          filt: np.ndarray) -> list:
    """Channel noise (unit SD) of tiles correlated in-plane by the separable ``filt``: tile ``t``
    is the first ``k_t`` voxels (raster order) of a ``side_t x side_t`` block. Per tile edge
    ``(idx, z0, q, inside)``: the component along the amplitude and the sum of squares of the
    other ``2 coils - 1`` (float32, (tiles, echoes, side^2)), and the voxels inside each tile."""
    from scipy.ndimage import correlate1d

    half = filt.size // 2
    groups = []
    for s in np.unique(side):
        idx = np.flatnonzero(side == s)
        s = int(s)
        w = s + 2 * half
        z = rng.standard_normal((2 * int(coils), idx.size, n_echoes, w, w))
        z = correlate1d(z, filt, axis=-2, mode="constant")[..., half:half + s, :]
        z = correlate1d(z, filt, axis=-1, mode="constant")[..., half:half + s]
        z = z.reshape(2 * int(coils), idx.size, n_echoes, s * s)
        inside = np.arange(s * s)[None, :] < np.asarray(k)[idx][:, None]  # (tiles, voxels)
        groups.append((idx, z[0].astype(np.float32), np.sum(z[1:] ** 2, axis=0).astype(np.float32), inside))
    return groups


def tile_means_from_noise(amp: np.ndarray, groups: list, sigma: float) -> np.ndarray:
    """Mean root-sum-of-squares magnitude of each tile at amplitudes ``amp`` (tiles, echoes)
    with the noise of :func:`correlated_tile_noise`."""
    amp = np.asarray(amp, dtype=np.float64)
    out = np.empty(amp.shape)
    for idx, z0, q, inside in groups:
        re = amp[idx][:, :, None] + sigma * z0
        m = np.sqrt(re * re + sigma**2 * q)
        out[idx] = np.sum(m * inside[:, None, :], axis=2) / inside.sum(axis=1)[:, None]
    return out


def correlated_tile_means(amp: np.ndarray, k: np.ndarray, side: np.ndarray, sigma: float, coils: int,
                          rng: np.random.Generator, filt: np.ndarray) -> np.ndarray:
    """Mean root-sum-of-squares magnitude of tiles whose voxels' channel noise is correlated
    in-plane by the separable ``filt``: tile ``t`` is the first ``k_t`` voxels (raster order) of a
    ``side_t x side_t`` block; ``amp`` (tiles, echoes) the amplitude. Returns (tiles, echoes).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = correlated_tile_means(np.full((4000, 1), 50.0), np.full(4000, 4), np.full(4000, 2), 1.0, 1, rng,
    ...                           correlation_filter({1: 0.79, 2: 0.39, 3: 0.12}))
    >>> round(float(np.var(y) * 4 / 3.2), 1)  # the 2 x 2 mean's variance: (1 + 0.79)^2 / 4
    1.0
    """
    amp = np.asarray(amp, dtype=np.float64)
    return tile_means_from_noise(amp, correlated_tile_noise(k, side, amp.shape[1], coils, rng, filt), sigma)


#: [D, r2mri's choice] normal draws per simulation call of correlated tiles (~0.5 s); each tile-echo of an
#: 8 x 8 tile with 8 channels takes 16 x 16^2 draws where k / f independent voxels took ~35
BLOCK_DRAW_BUDGET = 24_000_000


def block_reps(side: np.ndarray, n_echoes: int, coils: int, lo: int, hi: int) -> int:
    """Replicates of a correlated-tile simulation within :data:`BLOCK_DRAW_BUDGET`, in ``[lo, hi]``."""
    per = float(np.sum((np.asarray(side, dtype=np.float64) + 2 * _FILTER_HALF) ** 2)) * n_echoes * 2 * int(coils)
    return int(np.clip(BLOCK_DRAW_BUDGET // max(per, 1.0), lo, hi))


_CACHE_BYTES = 400_000_000  # [D, r2mri's choice] noise kept between the simulators' calls (common random numbers)


def tile_draw(k: np.ndarray, side: np.ndarray, rho_by_lag: dict, sigma: float, coils: int):
    """``draw(amp, key, sel)``: the mean magnitudes (tiles, echoes) of the tiles ``sel`` at
    amplitudes ``amp``, their noise correlated as measured (:func:`correlated_tile_means`),
    drawn from the seed ``key`` (a tuple of ints; the same key and tiles give the same noise,
    kept between calls up to ``_CACHE_BYTES``: the fit-bias simulation's secant steps reuse it);
    ``draw.side`` / ``draw.k`` / ``draw.rho``: the tiles' edges and voxel counts, the
    correlation. The tile-bias and measurement-SE simulators (r2mri/_tile_bias_sim.py,
    _measurement_se.py) use it in place of independent voxels."""
    filt = correlation_filter(rho_by_lag)
    k, side = np.asarray(k), np.asarray(side)
    cache: dict = {}
    used = [0]

    def draw(amp, key, sel):
        sel = np.asarray(sel)
        ck = (tuple(key), hash(sel.tobytes()), sel.size)
        groups = cache.get(ck)
        if groups is None:
            groups = correlated_tile_noise(k[sel], side[sel], np.shape(amp)[1], coils, np.random.default_rng(list(key)),
                                           filt)
            size = sum(g[1].nbytes + g[2].nbytes for g in groups)
            if used[0] + size <= _CACHE_BYTES:
                cache[ck] = groups
                used[0] += size
        return tile_means_from_noise(amp, groups, sigma)

    draw.k, draw.side, draw.rho = k, side, rho_by_lag  # type: ignore[attr-defined]
    return draw
