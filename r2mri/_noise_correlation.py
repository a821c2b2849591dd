"""Spatial correlation of the noise, from the pure-noise air around the body.

Why: r2mri's estimators treat the noise of neighbouring voxels as independent (the tile
fits' weights, the measurement SE of the tile mean, the noise's share of the within-tile
spread). Scanners that reconstruct on a finer grid than they acquire (k-space zero-filling:
Siemens "interpolation", GE "ZIP"; image filters) correlate it: the real 1.5 T liver of
benchmarks/real_liver.py (ISMRM 2012 case 12) reads 0.79 / 0.43 / 0.17 at lags 1 / 2 / 3
(benchmarks/corr_noise.py). The variance of a mean over a block of ``k`` voxels is then
larger than ``sigma^2 / k``.

What [D]: magnitude images only. In pure noise the squared magnitude of a root-sum-of-squares
image is ``M^2 = sum_c |n_c|^2``; for circular complex Gaussian noise whose correlation
between two voxels is ``rho`` in every channel (channels independent),
``corr(M_1^2, M_2^2) = |rho|^2`` exactly, whatever the channel count (Isserlis' theorem:
``cov(|z_1|^2, |z_2|^2) = |E z_1 conj(z_2)|^2``). So ``rho`` at in-plane lags 1-3 (rows and
columns pooled) and through-plane lag 1 is ``sqrt`` of the lag correlation of ``M^2`` over
pairs of air voxels, echo by echo (noise between echoes is independent and drops out). The
sign of ``rho`` is lost: the negative side lobes of a zero-filled reconstruction (-0.22 at
lag 3) read positive, which errs towards a larger variance. The SE of the lag-1 value is the
spread of the estimate over blocks (slice x echo x 4 bands of rows). A noise level that
varies across the air (coil profiles, ghosts) adds a positive offset at every lag, and the
square root of a near-zero estimate is biased up by its noise: the lag-1 value is the one
to trust (1.5 T series: 0.79 from the magnitude, 0.77 from the complex real part; lags 2 / 3
0.47 / 0.34 against 0.36 / 0.05; benchmarks/corr_noise.py ``--real``).

The variance factor of a mean over an ``a x a`` in-plane block, noise correlated separably
with ``rho(d)`` per axis (lags beyond those measured taken as 0), is ``g(a)^2`` with
``g(a) = 1 + 2 sum_{d=1}^{a-1} (1 - d / a) rho(d)`` (the variance of a mean of a stationary
series); the block holds ``a^2 / g(a)^2`` independent voxels. At high SNR the magnitude's
noise is the complex noise projected on the signal's phase, correlated with the same ``rho``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["noise_correlation", "block_variance_factor", "correlation_warning"]

#: [D, r2mri's choice] lag-1 correlation from which the report warns: the variance of a
#: 2 x 2 tile's mean is then >= 1.44 x the independent-voxel value (SE >= 1.2 x), and the
#: estimate must also exceed 3 SE (white noise reads |rho|^2 ~ 1 / sqrt(pairs), not 0).
WARN_LAG1 = 0.2
_BANDS = 4
_MIN_PAIRS = 200


def _lag_sums(q: np.ndarray, air: np.ndarray, axis: int, lag: int) -> tuple[float, int]:
    a = [slice(None)] * air.ndim
    b = [slice(None)] * air.ndim
    a[axis], b[axis] = slice(lag, None), slice(None, -lag)
    both = air[tuple(a)] & air[tuple(b)]
    return float(np.sum((q[tuple(a)] * q[tuple(b)])[both])), int(both.sum())


def noise_correlation(data: np.ndarray, air: np.ndarray, lags=(1, 2, 3), erode: int = 2,
                      max_echoes: "int | None" = 2) -> "dict[str, Any] | None":
    """Correlation ``rho`` of the channel noise between voxels, from air voxels of a magnitude image.

    Parameters
    ----------
    data : ndarray, shape (x, y[, z], echo)
        Magnitude images (root-sum-of-squares of any channel count).
    air : ndarray of bool, spatial shape
        Pure-noise voxels (as :func:`r2mri.estimate_noise` selects them).
    lags : tuple of int
        In-plane lags (voxels).
    erode : int
        In-plane erosion of ``air`` first (edge ringing and partial volume next to the body
        are not noise); skipped when it leaves too few pairs.
    max_echoes : int or None
        Use only the last ``max_echoes`` echoes (None: all). [D, r2mri's choice] 2: on the
        default 256 x 256 x 11 x 5 phantom :func:`r2mri.estimate_noise` then takes 0.17 s
        CPU against 0.11 s without this estimate (all 5 echoes: 0.33 s; load ~14); lag-1 SE
        on the 1.5 T series 0.006 (all 4 echoes 0.004).

    Returns
    -------
    dict or None
        ``rho_by_lag`` {lag: rho in-plane}, ``rho_through_plane`` (lag 1 across slices, or
        None), ``rho_lag1_se``, ``magnitude_squared_correlation`` {lag: value}, ``pairs``,
        ``variance_factor_2x2`` / ``_4x4`` (:func:`block_variance_factor`); None when fewer
        than 200 lag-1 pairs of air voxels exist.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> rng = np.random.default_rng(0)
    >>> n = [gaussian_filter(rng.standard_normal((96, 96, 1, 4)), (1, 1, 0, 0), mode="wrap") for _ in range(2)]
    >>> est = noise_correlation(np.hypot(*n), np.ones((96, 96, 1), bool), erode=0)
    >>> abs(est["rho_by_lag"][1] - 0.78) < 3 * est["rho_lag1_se"] + 0.01  # exp(-1 / 4) = 0.78
    True
    """
    data = np.asarray(data)
    air = np.asarray(air, dtype=bool)
    if data.ndim < 3 or air.shape != data.shape[:-1]:
        return None
    if air.ndim == 2:
        data, air = data[:, :, None, :], air[:, :, None]
    if max_echoes is not None and data.shape[-1] > max_echoes:
        data = data[..., -int(max_echoes):]
    if erode > 0:
        from scipy import ndimage as ndi

        st = np.zeros((3, 3, 3), bool)
        st[:, :, 1] = True
        eroded = ndi.binary_erosion(air, st, iterations=erode)
        if _lag_sums(np.zeros(air.shape), eroded, 0, 1)[1] >= _MIN_PAIRS:
            air = eroded
    if _lag_sums(np.zeros(air.shape), air, 0, 1)[1] < _MIN_PAIRS:
        return None
    nz, m = air.shape[2], data.shape[-1]
    bands = np.array_split(np.arange(air.shape[0]), _BANDS)
    num = {lag: 0.0 for lag in lags}
    cnt = {lag: 0 for lag in lags}
    var_sum, var_n = 0.0, 0
    tp_num, tp_cnt = 0.0, 0
    blocks = []
    for e in range(m):
        q = data[..., e].astype(np.float64) ** 2
        q -= q[air].mean()
        var_sum += float(np.sum(q[air] ** 2))
        var_n += int(air.sum())
        for lag in lags:
            for ax in (0, 1):
                s, c = _lag_sums(q, air, ax, lag)
                num[lag] += s
                cnt[lag] += c
        if nz > 1:
            s, c = _lag_sums(q, air, 2, 1)
            tp_num, tp_cnt = tp_num + s, tp_cnt + c
        for z in range(nz):
            for rows in bands:
                qa, aa = q[rows, :, z], air[rows, :, z]
                if aa.sum() < 50:
                    continue
                v = np.mean(qa[aa] ** 2)
                s0, c0 = _lag_sums(qa, aa, 0, 1)
                s1, c1 = _lag_sums(qa, aa, 1, 1)
                if c0 + c1 >= 25:
                    blocks.append((s0 + s1) / (c0 + c1) / v)
    var = var_sum / var_n
    c2 = {int(lag): (num[lag] / cnt[lag] / var if cnt[lag] else float("nan")) for lag in lags}
    rho = {lag: float(np.sqrt(max(v, 0.0))) if np.isfinite(v) else None for lag, v in c2.items()}
    se_c2 = float(np.std(blocks, ddof=1) / np.sqrt(len(blocks))) if len(blocks) >= 4 else None
    r1 = rho.get(1)
    se_rho = None if se_c2 is None or not r1 else float(se_c2 / (2.0 * max(r1, np.sqrt(se_c2))))
    return {"rho_by_lag": rho,
            "rho_through_plane": float(np.sqrt(max(tp_num / tp_cnt / var, 0.0))) if tp_cnt >= _MIN_PAIRS else None,
            "rho_lag1_se": se_rho, "magnitude_squared_correlation": {k: float(v) for k, v in c2.items()},
            "magnitude_squared_lag1_se": se_c2, "pairs": int(cnt[lags[0]]),
            "variance_factor_2x2": block_variance_factor(rho, 2), "variance_factor_4x4": block_variance_factor(rho, 4),
            "method": "lag correlation of the squared magnitude in air = |rho|^2 (sign of rho lost)"}


def block_variance_factor(rho_by_lag: dict, side: int) -> float:
    """Variance of the mean over a ``side x side`` block over its independent-voxel value.

    Examples
    --------
    >>> round(block_variance_factor({1: 0.79, 2: 0.39, 3: 0.12}, 2), 2)  # (1 + 0.79)^2
    3.2
    """
    g = 1.0 + 2.0 * sum((1.0 - d / side) * float(rho_by_lag.get(d) or 0.0) for d in range(1, side))
    return float(g * g)


def correlation_warning(corr: "dict | None", corrected: bool = False) -> "str | None":
    """One report line when the lag-1 correlation is material (>= ``WARN_LAG1`` and > 3 SE), else None.

    ``corrected``: the headline's tile statistics carry it (r2mri/_corr_tiles.py; the R2 tile
    headline, and the fat-water one's tile SEs, r2mri/_gre.py): the line then gives what that leaves
    on phantoms."""
    if not corr:
        return None
    r1, c2, se = corr["rho_by_lag"].get(1), corr["magnitude_squared_correlation"].get(1), corr["magnitude_squared_lag1_se"]
    if r1 is None or r1 < WARN_LAG1 or (se is not None and c2 < 3.0 * se):
        return None
    # phantom figures: benchmarks/README.md "Spatially correlated noise" (small livers, lag-1 r 0.79)
    # r = 0.26: 32 seeds per uniform 8-channel cell, distinct between cells (branch corrboot, benchmarks/corr_boot.py)
    if corrected:  # after r2mri/_corr_tiles.py (branch corrfix; same README section, "+fix" columns)
        return (f"noise: spatially correlated (lag-1 r = {r1:.2f} in the air, an interpolated or filtered "
                f"reconstruction; a 2 x 2 mean's variance x{corr['variance_factor_2x2']:.1f}): the headline's tile "
                "statistics count each tile's noise with this correlation, which widens the 95 % interval (on "
                "phantoms at r = 0.79 it then covered the truth in 14-16 of 16 livers per cell, mean headline -1 to "
                "+4 %; at r = 0.26 in 31-32 of 32); the spread correction still assumes independent voxels")
    return (f"noise: spatially correlated (lag-1 r = {r1:.2f} in the air, an interpolated or filtered "
            f"reconstruction; a 2 x 2 mean's variance x{corr['variance_factor_2x2']:.1f}): the statistics assume "
            "independent voxels, so the 95 % interval may be too narrow and the headline biased high where "
            "the decay nears the noise floor (phantoms at r = 0.79: coverage down to 9/16, +15 to +26 % at "
            "30 mg/g, SNR 20)")
