"""The between-tile bootstrap of the headline on spatially correlated noise.

Why: ``liver_statistics`` (r2mri/stats.py) resamples the tiles of the tile-pooled headline
independently (a bootstrap over clusters of voxels). With noise correlated between voxels
(interpolated reconstructions, r2mri/_noise_correlation.py) neighbouring tiles' means are
correlated too, and the variance of their voxel-weighted mean is ``F`` times what an
independent resampling of the tiles reads (``F``: the sum of the voxel noise correlation
``r(i - j)`` over all pairs of used voxels over its sum over pairs inside tiles,
:func:`r2mri._corr_tiles.tile_noise_factors`; at lag-1 / 2 / 3 0.79 / 0.39 / 0.12 ~1.8 for
4 x 4 tiles, ~1.3 for 8 x 8: ``g(inf)^2 / g(a)^2`` of
:func:`r2mri._noise_correlation.block_variance_factor` on a large ROI; 1.78 read from the tiles'
own neighbour covariance against 1.77, tests/test_corr_bootstrap.py). The measurement SE is already scaled by ``sqrt(F)``
(r2mri/_corr_tiles.py, branch corrfix; r2mri/_gre.py, branch gcorr); the bootstrap was not.

What [D, r2mri's choice, measured in benchmarks/corr_boot.py]: only the noise's share of
the bootstrap variance is correlated as measured in the air; the rest (the spread of the tiles'
true rates, texture) is the liver's own, and the headline's truth is the mean over this liver,
not over a population of livers, so it is not inflated. The noise share of independent tiles is
``v_noise = se_meas^2 / F`` (the measurement SE before its ``sqrt(F)``), capped at the bootstrap
variance ``v_boot``; the replicates are stretched about the headline by

    ``s = sqrt(1 + (F - 1) min(v_noise, v_boot) / v_boot)``

so their variance is ``v_boot + (F - 1) v_noise`` (the linear regime: tiles' errors small
against the rate). A uniform liver (``v_boot ~ v_noise``) gets ``sqrt(F)``; a textured one
whose bootstrap is mostly texture nearly 1. A block bootstrap (resampling groups of
neighbouring tiles) would carry the correlation without a model, but a small liver holds few
blocks (64 x 64 x 3 of 6 mm: ~30 blocks of 2 x 2 tiles of 4 x 4), so its percentiles are
noisy, and it would also widen the texture term, which needs no widening; not used.

White noise, no air, or a correlation below the report's warning rule (``F = 1``): the
replicates are returned as they are, bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["correlated_bootstrap"]


def correlated_bootstrap(boot: np.ndarray, mean: float, se_meas: float,
                         big_f: float) -> tuple[np.ndarray, "float | None"]:
    """Bootstrap replicates of the headline mean rate stretched for correlated noise (module docstring).

    Parameters
    ----------
    boot : ndarray
        Replicates of the voxel-weighted mean over tiles resampled independently (s^-1).
    mean : float
        The headline mean rate (s^-1), the centre of the stretch.
    se_meas : float
        Measurement SE of the mean, already carrying ``sqrt(F)`` (s^-1).
    big_f : float
        ``F`` (:func:`r2mri._corr_tiles.tile_noise_factors`); 1 for white noise.

    Returns
    -------
    (ndarray, float or None)
        The replicates (the same array when nothing changes) and the stretch ``s`` (None when
        not applied).

    Examples
    --------
    >>> import numpy as np
    >>> b = 100.0 + np.random.default_rng(0).standard_normal(4000)  # a uniform liver: all noise, SD 1
    >>> out, s = correlated_bootstrap(b, 100.0, np.sqrt(1.35), 1.35)
    >>> round(s, 3), round(float(np.std(out) / np.std(b)), 3)
    (1.162, 1.162)
    >>> correlated_bootstrap(b, 100.0, 1.0, 1.0)[1] is None  # white noise: untouched
    True
    """
    boot = np.asarray(boot)
    if not (np.isfinite(big_f) and big_f > 1.0 and se_meas is not None and np.isfinite(se_meas) and se_meas > 0
            and boot.size > 1):
        return boot, None
    v_boot = float(np.var(boot, ddof=1))
    if not (np.isfinite(v_boot) and v_boot > 0):
        return boot, None
    v_noise = min(float(se_meas) ** 2 / float(big_f), v_boot)
    s = float(np.sqrt(1.0 + (float(big_f) - 1.0) * v_noise / v_boot))
    return float(mean) + s * (boot - float(mean)), s
