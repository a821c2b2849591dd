"""The true-spread oracle of the ``tile-mixture`` headline (issue 16), shared by the benchmarks.

The same tiles and tile fits as the headline (``r2mri._spread_estimate._tile_set``: the
pooled fit less its Box and simulated fit-bias terms), corrected with the phantom's *true*
within-tile spread instead of the estimated one:

- ``mu_edge``: the true relative variance of R2 about each tile's mean, pooled per tile
  edge over ``k - 1`` degrees of freedom (``rho_true``; what the estimator models: one
  spread per edge);
- ``mu_tile``: each tile with its own ``k`` voxels' true variance about their own mean
  (tests the one-spread-per-edge assumption).

Both are computed at the tiles' shrunk states and added to each tile's own rate, as the
headline does (r2mri/_sim_state.py). If an oracle is right and the estimate is not, the
spread estimate is the culprit; if the oracle is wrong too, the tiles or the correction
are (docs/statistics.md section 2). Used by ``benchmarks/snr20.py`` (``oracle()``),
``benchmarks/spreadmap.py`` and ``benchmarks/hetero_scaling.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Oracle:
    t: object  # r2mri._spread_estimate._TileSet
    tile_true: np.ndarray  # true mean R2 of each tile's voxels (s^-1)
    ss: np.ndarray  # per tile: sum of squared relative deviations of the true R2 about the tile's mean
    rho_true: dict  # true pooled relative within-tile variance per tile edge
    mu_edge: np.ndarray  # tile rates corrected with rho_true (one per edge)
    mu_tile: np.ndarray  # tile rates corrected with each tile's own true spread

    def mean(self, v: np.ndarray) -> float:
        """Voxel-weighted mean over the tiles."""
        return float(np.sum(self.t.k * v) / self.t.k.sum())


def true_spread_oracle(ph, pooled, sigma: float, coils: int, seed: int = 0, exclude=None) -> Oracle:
    """The oracle of the phantom ``ph`` (``r2mri.phantom.generate``) on the tiles of ``pooled``
    (``r2mri.stats.pooled_mean_r2`` of its image); ``seed`` as the headline's (the simulated fit bias).
    ``exclude``: boolean per tile, tiles left out of the pooled ``rho_true`` (the headline's split
    tiles, ``r2mri._spread_map``: their two populations are not the texture it models)."""
    import r2mri._mixture as M
    import r2mri._spread_estimate as E

    t = E._tile_set(ph.image, pooled, sigma, coils, seed)
    r = ph.truth.r2_per_s.reshape(-1)[pooled.voxel_index].astype(float)[pooled.voxel_tile >= 0]
    k = t.k
    tile_true = np.bincount(t.tile_of, weights=r, minlength=t.nt) / np.maximum(k, 1)
    ss = np.bincount(t.tile_of, weights=((r - tile_true[t.tile_of]) / tile_true[t.tile_of]) ** 2, minlength=t.nt)
    keep = np.ones(t.nt, bool) if exclude is None else ~np.asarray(exclude, bool)
    rho_true = {s: float(ss[t.sel_of[s] & keep].sum() / max((k[t.sel_of[s] & keep] - 1).sum(), 1)) for s in t.sizes}
    r_ref, s_ref = t.ref_state()
    done = M._correct_many([(r_ref[t.sel_of[s]], s_ref[t.sel_of[s]], k[t.sel_of[s]], rho_true[s]) for s in t.sizes],
                           t.te, sigma, coils, M._SHAPE)
    mu_edge = t.r2_app.copy()
    for s, (m_s, _s0) in zip(t.sizes, done):
        mu_edge[t.sel_of[s]] += m_s - r_ref[t.sel_of[s]]
    # each tile's own k voxels' variance about their own mean: ss / k (exact inversion, every tile)
    mu_t = M._invert_mixture(r_ref, s_ref, k, t.te, sigma, coils, ss / np.maximum(k, 1), M._SHAPE)[0]
    return Oracle(t, tile_true, ss, rho_true, mu_edge, t.r2_app + (mu_t - r_ref))
