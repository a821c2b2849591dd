"""Tile lower bound of the heterogeneity block on the GRE (fat-water) route (issue 16).

Why: when the voxel fits are too noisy for the noise-corrected voxel CV (at high R2*,
real edges and vessels), :mod:`r2mri._heterogeneity` falls back on the between-tile CV of
tile-pooled rates, a lower bound of the voxel CV. Its tilings come from the spin-echo
tile fit (:func:`r2mri.stats.pooled_mean_r2`, one exponential), which on gradient-echo
data with fat reads the fat-water interference as decay. The GRE route had no tile bound
at all: on a real 3 T liver with a synthetic log-normal iron texture (true R2* CV
0.42-0.45), 11 of 12 runs carried no heterogeneity warning (docs/statistics.md, "Real
in-vivo data").

What: the same candidates, finest first, from the fat-water tile fit
(:func:`r2mri._gre.pooled_mean_r2star`): 2 x 2 and 3 x 3 tiles, then the headline's own
4 x 4 tiles (as fitted, before the within-tile spread correction: the correction moves
the rates, not their scatter), then the same tilings without their high tail beyond the
echo train (:func:`_without_high_tail`). The checks and the warning are those of
:func:`r2mri._heterogeneity._tile_lower_bound`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["gre_tile_candidates"]


def gre_tile_candidates(image: Any, fit: Any, mask: Any, noise_sigma: float, coils: int, headline: Any = None):
    """Fat-water tile-pooled R2* of the ROI for the heterogeneity fallback, finest first, lazily.

    Yields ``(name, (r2_per_s, se_per_s, n_voxels))`` as
    :func:`r2mri._heterogeneity.tile_candidates`; a size that cannot be fitted is skipped.

    Examples
    --------
    >>> import numpy as np, r2mri
    >>> from r2mri.fatwater import load_fat_spectrum, magnitude_signal
    >>> te = 0.0012 + 0.001 * np.arange(6)
    >>> y = magnitude_signal(load_fat_spectrum().basis(te, 1.5), te, 85.0, 15.0, 150.0)
    >>> img = r2mri.MultiEchoImage(np.broadcast_to(y, (8, 8, 1, 6)).copy(), te, field_strength_t=1.5)
    >>> fit = r2mri.fit(img, model="fatwater")
    >>> name, (r2, se, k) = next(gre_tile_candidates(img, fit, np.ones((8, 8, 1), bool), 0.01, 1))
    >>> name, r2.size, round(float(r2[0]), 1)
    ('2x2', 16, 150.0)
    """
    from ._gre import pooled_mean_r2star
    from .errors import InputError

    triples = []
    for size in (2, 3):
        try:
            p = pooled_mean_r2star(image, fit, mask, noise_sigma=noise_sigma, coils=coils, tile=size)
        except InputError:
            continue
        triple = (p.tile_r2_per_s, p.tile_se_r2_per_s, p.tile_voxels)
        triples.append((f"{size}x{size}", triple))
        yield f"{size}x{size}", triple
    if headline is not None and getattr(headline, "fw_tiles", None) is not None:
        triple = (np.asarray(headline.fw_tiles["params"])[:, 2], headline.tile_se_r2_per_s, headline.tile_voxels)
        triples.append(("headline (4x4)", triple))
        yield "headline (4x4)", triple
    for name, triple in triples:  # the same tilings with their censored high tail left out
        cut = _without_high_tail(*triple)
        if cut is not None:
            yield f"{name}, high-R2* tiles beyond the train left out", cut


def _without_high_tail(r2, se, k):
    """The tiles without those whose SE is above ``SE_OUTLIER_FACTOR`` x the median *and* whose R2*
    is above the median (a textured liver's high tail beyond the echo train), when they hold at
    most ``_MAX_HIGH_TAIL`` of the voxels; ``None`` if there are none or too many.

    Leaving out the top of a right-skewed distribution lowers its CV, so the bound stays a
    lower bound. Why: on a real 1.5 T liver (4 echoes from 1.74 ms) with a log-normal iron
    texture of SD 0.4 at 7 mg/g (true CV 0.43-0.46), 12 % of the voxels' SEs were outliers
    and every tiling was "too noisy" for the 2 % limit of r2mri._heterogeneity.
    """
    from ._heterogeneity import SE_OUTLIER_FACTOR

    r2, se, k = (np.asarray(a, dtype=np.float64) for a in (r2, se, k))
    good = np.isfinite(r2) & np.isfinite(se) & (se > 0)
    if good.sum() < 20:
        return None
    tail = good & (se > SE_OUTLIER_FACTOR * np.median(se[good])) & (r2 > np.median(r2[good]))
    if not tail.any() or k[tail].sum() > _MAX_HIGH_TAIL * k.sum():
        return None
    keep = ~tail
    return r2[keep], se[keep], k[keep]


_MAX_HIGH_TAIL = 0.25  # [D, r2mri's choice] largest voxel share of the high tail left out of a tile bound
