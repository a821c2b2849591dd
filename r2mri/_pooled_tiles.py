"""The tile-pooled noise-corrected mean R2 of a region (the headline's estimator).

Moved out of ``r2mri/stats.py`` (branch split3; the names stay importable from
``r2mri.stats``): :func:`_tile_fit` fits ``ncchi_mean(S0 exp(-R2 TE), sigma, coils)``
to the mean magnitude of each tile, :func:`pooled_mean_r2` cuts the ROI into tiles
(a fixed edge or the adaptive quadtree) and averages the tiles' R2. The estimator
is described in the ``r2mri.stats`` module docstring and docs/statistics.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ._corr_tiles import tile_draw, tile_noise_factors
from ._measurement_se import pooled_measurement_se
from .errors import InputError

__all__ = ["pooled_mean_r2", "PooledR2"]


def _tile_start(y: np.ndarray, te: np.ndarray, sigma: float, coils: int) -> tuple[np.ndarray, np.ndarray]:
    """Start of :func:`_tile_fit`: ``(s0, r2)`` from the log-linear slope of the two first
    echoes, the noise floor subtracted in quadrature."""
    from .noise import ncchi_mean

    floor = float(ncchi_mean(0.0, sigma, coils))
    y0 = np.sqrt(np.maximum(y[:, 0] ** 2 - floor**2, (0.5 * sigma) ** 2))
    y1 = np.sqrt(np.maximum(y[:, 1] ** 2 - floor**2, (0.25 * sigma) ** 2))
    r2 = np.clip(np.log(np.maximum(y0, 1e-300) / np.maximum(y1, 1e-300)) / (te[1] - te[0]), 1.0, 2000.0)
    s0 = y0 * np.exp(r2 * te[0])
    return s0, r2


def _tile_model(s0_: np.ndarray, r2_: np.ndarray, te: np.ndarray, sigma: float,
                coils: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A, exp(-R2 TE), E[M], dE/dA)`` of each tile at ``(s0_, r2_)``, E[M] and dE/dA as the
    voxel-wise kernels evaluate them (the interpolation table)."""
    from .noise import ncchi_mean_interpolated

    e = np.exp(-r2_[:, None] * te[None, :])
    a = s0_[:, None] * e
    m, d = ncchi_mean_interpolated(a, sigma, coils)
    return a, e, m, d


def _lm_step(ya: np.ndarray, wa: np.ndarray, aa: np.ndarray, ea: np.ndarray, ma: np.ndarray, da: np.ndarray,
             la: np.ndarray, s0a: np.ndarray, r2a: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Levenberg-Marquardt step of the tiles still iterating: the proposed ``(s0, r2)``."""
    j0 = da * ea  # dm/dS0
    j1 = -da * aa * te[None, :]  # dm/dR2
    res = ya - ma
    h00 = np.sum(wa * j0 * j0, 1)
    h01 = np.sum(wa * j0 * j1, 1)
    h11 = np.sum(wa * j1 * j1, 1)
    g0 = np.sum(wa * j0 * res, 1)
    g1 = np.sum(wa * j1 * res, 1)
    a00, a11 = h00 * (1 + la), h11 * (1 + la)
    det = a00 * a11 - h01 * h01
    det = np.where(np.abs(det) > 0, det, np.inf)
    ds0 = (a11 * g0 - h01 * g1) / det
    dr2 = (a00 * g1 - h01 * g0) / det
    return np.maximum(s0a + ds0, 1e-12), np.clip(r2a + dr2, 0.0, 5000.0)


def _tile_se(w: np.ndarray, a: np.ndarray, e: np.ndarray, d: np.ndarray, te: np.ndarray,
             r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(se_r2, ok)`` of the tile fits: the R2 SE from the Fisher information at the estimate."""
    j0, j1 = d * e, -d * a * te[None, :]
    h00, h01, h11 = np.sum(w * j0 * j0, 1), np.sum(w * j0 * j1, 1), np.sum(w * j1 * j1, 1)
    det = h00 * h11 - h01 * h01
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.where(det > 0, h00 / det, np.inf))
    ok = np.isfinite(r2) & np.isfinite(se) & (r2 > 0) & (r2 < 5000.0)
    return se, ok


def _tile_fit(y: np.ndarray, te: np.ndarray, k: np.ndarray, sigma: float, coils: int,
              *, max_iter: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``y[t, e] ~ ncchi_mean(S0 exp(-R2 te), sigma, coils)`` per tile; vectorised LM.

    ``k[t]`` is the number of voxels averaged in tile t. Returns (r2, s0, se_r2, ok).
    """
    from .noise import ncchi_mean_weights

    nt, ne = y.shape
    te = np.asarray(te, dtype=np.float64)
    s0, r2 = _tile_start(y, te, sigma, coils)
    lam = np.full(nt, 1e-3)
    kk = k[:, None].astype(np.float64)
    a, e, m, d = _tile_model(s0, r2, te, sigma, coils)
    w = ncchi_mean_weights(a, m, sigma, coils, kk)
    cost = np.sum(w * (y - m) ** 2, axis=1)
    active = np.ones(nt, dtype=bool)
    for _ in range(max_iter):
        # only the tiles still iterating are computed (each tile's arithmetic is its own,
        # so the results are those of iterating every tile: most converge in a few steps)
        act = np.flatnonzero(active)
        if act.size == 0:
            break
        ya, wa, aa, ea, ma, da, la = y[act], w[act], a[act], e[act], m[act], d[act], lam[act]
        s0a, r2a = s0[act], r2[act]
        s0_new, r2_new = _lm_step(ya, wa, aa, ea, ma, da, la, s0a, r2a, te)
        a_n, e_n, m_n, d_n = _tile_model(s0_new, r2_new, te, sigma, coils)
        cost_new = np.sum(wa * (ya - m_n) ** 2, axis=1)
        better = cost_new <= cost[act]
        small = np.abs(r2_new - r2a) <= 1e-7 * np.maximum(r2a, 1.0)
        s0[act] = np.where(better, s0_new, s0a)
        r2[act] = np.where(better, r2_new, r2a)
        lam_a = np.where(better, la / 10.0, la * 10.0)
        lam[act] = lam_a
        bc = better[:, None]
        aa = np.where(bc, a_n, aa)
        ma = np.where(bc, m_n, ma)
        a[act] = aa
        e[act] = np.where(bc, e_n, ea)
        m[act] = ma
        d[act] = np.where(bc, d_n, da)
        # reweight at the new estimate (IRLS); the cost is re-evaluated with the new weights
        wa = ncchi_mean_weights(aa, ma, sigma, coils, kk[act])
        w[act] = wa
        cost[act] = np.sum(wa * (ya - ma) ** 2, axis=1)
        active[act] = ~((better & small) | (lam_a > 1e10))
    se, ok = _tile_se(w, a, e, d, te, r2)
    return r2, s0, se, ok


@dataclass
class PooledR2:
    """Result of :func:`pooled_mean_r2` (tile-pooled noise-corrected mean R2)."""

    mean_r2_per_s: float
    #: the measurement SE of the mean (s^-1), or a function that computes it on first use (``se_r2_per_s``)
    se_r2_lazy: Any
    tile_r2_per_s: np.ndarray
    tile_se_r2_per_s: np.ndarray
    tile_voxels: np.ndarray
    tile_slice: np.ndarray
    n_voxels_used: int
    n_tiles: int
    tile_size: np.ndarray
    #: flat index (into the mask) of each voxel used, and the tile it was pooled in
    voxel_index: "np.ndarray | None" = None
    voxel_tile: "np.ndarray | None" = None
    #: the tiles' noise counts (voxels over the correlated-noise factor, r2mri/_corr_tiles.py); None: tile_voxels
    tile_noise_voxels: "np.ndarray | None" = None
    #: their noise drawn on each tile's block, as measured (r2mri/_corr_tiles.py ``tile_draw``); None: independent
    tile_noise_draw: Any = None
    #: ``F``: the noise variance of the mean over what independent tiles give (r2mri/_corr_tiles.py); 1: white
    tile_noise_between: float = 1.0

    @property
    def se_r2_per_s(self) -> float:
        """Measurement SE of the mean R2 (s^-1); computed when first asked for: it simulates the
        noisy tiles (r2mri/_measurement_se.py), and the heterogeneity block's tilings never ask."""
        if callable(self.se_r2_lazy):
            self.se_r2_lazy = float(self.se_r2_lazy())
        return self.se_r2_lazy

    @se_r2_per_s.setter
    def se_r2_per_s(self, value: float) -> None:
        self.se_r2_lazy = value


def _tile_ids(ii, jj, kk, shape, tile):
    nx, ny, _ = shape
    tx, ty = -(-nx // tile), -(-ny // tile)
    return ((kk * tx) + ii // tile) * ty + jj // tile, tx * ty


def pooled_mean_r2(image: Any, mask: np.ndarray, *, noise_sigma: float, coils: int = 1,
                   tile: "int | str" = "adaptive", target_rel_se: float = 0.05,
                   levels: Sequence[int] = (2, 4, 8), noise_rho: "dict | None" = None) -> PooledR2:
    """Mean R2 of a region by the tile-pooled noise-corrected estimator.

    Parameters
    ----------
    image : MultiEchoImage
        Magnitude data (x, y, z, echo) and echo times.
    mask : ndarray of bool, shape (x, y, z)
        The region (the liver ROI).
    noise_sigma : float
        Noise SD per real/imaginary part of one channel (same units as the data).
    coils : int, default 1
        Channels combined by root-sum-of-squares.
    tile : int or "adaptive", default "adaptive"
        In-plane tile edge in voxels, or ``"adaptive"``: a quadtree over ``levels``
        (2 x 2, then 4 x 4, then 8 x 8): a 4 x 4 block is pooled as one tile when any of
        its 2 x 2 tiles has a relative standard error of R2 above ``target_rel_se`` (or
        failed), and likewise for 8 x 8. Small tiles keep heterogeneity where the signal
        allows; large ones only where the noise demands (high iron).
    target_rel_se : float, default 0.05
        Relative SE of a tile's R2 below which it is not merged further.
    levels : sequence of int
        Tile edges of the adaptive quadtree, each a multiple of the previous.
    noise_rho : dict, optional
        In-plane noise correlation by lag (:func:`r2mri._corr_tiles.material_rho`): each
        tile's SE, noise count and the mean's SE account for it (r2mri/_corr_tiles.py).

    Returns
    -------
    PooledR2

    Raises
    ------
    InputError
        No tile with at least half its voxels in ``mask``, or bad ``noise_sigma``/``tile``.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri import MultiEchoImage
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> data = 1000 * np.exp(-100.0 * te) * np.ones((9, 9, 1, 5))
    >>> p = pooled_mean_r2(MultiEchoImage(data, te), np.ones((9, 9, 1), bool), noise_sigma=1.0, tile=3)
    >>> round(p.mean_r2_per_s, 1), p.n_tiles
    (100.0, 9)
    """
    if not (np.isfinite(noise_sigma) and noise_sigma > 0):
        raise InputError(f"noise_sigma: must be a positive finite number, got {noise_sigma!r}")
    lv = _tile_levels(tile, levels)
    data = np.asarray(image.data)
    m = np.asarray(mask, dtype=bool)
    if m.shape != data.shape[:3]:
        raise InputError(f"mask: shape {m.shape} does not match the image grid {data.shape[:3]}")
    ii, jj, kk = _half_filled(m, lv[0])
    sig = data[ii, jj, kk, :].astype(np.float64)
    te = image.echo_times_s
    vtile, acc = _quadtree(sig, te, (ii, jj, kk), m.shape, lv, float(noise_sigma), int(coils), target_rel_se,
                           noise_rho)
    return _pooled_result(acc, vtile, te, (ii, jj, kk), m.shape, float(noise_sigma), int(coils), noise_rho)


def _tile_levels(tile: "int | str", levels: Sequence[int]) -> list[int]:
    """The tile edges :func:`pooled_mean_r2` tries, finest first (``InputError`` on bad ones)."""
    if tile == "adaptive":
        lv = [int(v) for v in levels]
        if not lv or any(v < 1 for v in lv) or any(b % a for a, b in zip(lv, lv[1:])):
            raise InputError(f"levels: expected increasing tile edges, each a multiple of the last, got {levels}")
    elif isinstance(tile, (int, np.integer)) and not isinstance(tile, bool) and tile >= 1:
        lv = [int(tile)]
    else:
        raise InputError(f"tile: must be a positive integer or 'adaptive', got {tile!r}")
    return lv


def _half_filled(m: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the mask's voxels in ``size x size`` tiles at least half inside the mask.

    The half-fill rule at the finest level: a spatial rule, it never looks at the signal.
    """
    ii, jj, kk = np.nonzero(m)
    tid0, _ = _tile_ids(ii, jj, kk, m.shape, size)
    counts = np.bincount(tid0)
    use = counts[tid0] >= max(1, (size * size + 1) // 2)
    if not use.any():
        raise InputError(f"mask: no {size}x{size} tile has at least half its voxels in the ROI")
    return ii[use], jj[use], kk[use]


def _fit_level(sig: np.ndarray, te: np.ndarray, ijk: tuple, shape: tuple, size: int, noise_sigma: float,
               coils: int, noise_rho: "dict | None") -> tuple:
    """Tiles of edge ``size`` over the voxels ``ijk`` (signals ``sig``), each fitted to its mean signal.

    Returns ``(tids, inv, per_slice, k, r2, s0, se, ok)``: the tile ids, each voxel's tile,
    the tiles per slice, the voxel counts and :func:`_tile_fit`'s results (``se`` scaled
    for correlated noise when ``noise_rho`` is given).
    """
    ii, jj, kk = ijk
    tid, per_slice = _tile_ids(ii, jj, kk, shape, size)
    tids, inv = np.unique(tid, return_inverse=True)
    nt = tids.size
    sums = np.zeros((nt, sig.shape[1]))
    np.add.at(sums, inv, sig)
    k = np.bincount(inv, minlength=nt).astype(np.float64)
    r2, s0, se, ok = _tile_fit(sums / k[:, None], te, k, noise_sigma, coils)
    if noise_rho is not None:  # correlated noise: the tile mean's variance x f (the fit's weights scale alike)
        se = se * np.sqrt(tile_noise_factors(ii, jj, kk, inv, nt, shape, noise_rho)[0])
    return tids, inv, per_slice, k, r2, s0, se, ok


def _parents_accept(tids: np.ndarray, good: np.ndarray, shape: tuple, size: int, next_size: int) -> np.ndarray:
    """Tiles of edge ``size`` to accept: those whose parent (edge ``next_size``) holds no
    failing child; the parents holding one are refitted whole at the next level."""
    ratio = next_size // size
    nx, ny, _ = shape
    tx, ty = -(-nx // size), -(-ny // size)
    px, py = -(-nx // next_size), -(-ny // next_size)
    sl_, rem = np.divmod(tids, tx * ty)
    ti, tj = np.divmod(rem, ty)
    parent = (sl_ * px + ti // ratio) * py + tj // ratio
    bad_parent = np.unique(parent[~good])
    return ~np.isin(parent, bad_parent)


def _quadtree(sig: np.ndarray, te: np.ndarray, ijk: tuple, shape: tuple, lv: list[int], noise_sigma: float,
              coils: int, target_rel_se: float, noise_rho: "dict | None") -> tuple[np.ndarray, dict]:
    """The tiles of :func:`pooled_mean_r2`, level by level of ``lv`` (one level: fixed tiles).

    Returns ``(vtile, acc)``: each voxel's accepted tile (-1: none) and the accepted
    tiles' ``r2``, ``se``, ``k``, ``slice``, ``size``, ``s0`` as lists of arrays, one per level.
    """
    ii, jj, kk = ijk
    pending = np.ones(ii.size, dtype=bool)  # voxels not yet assigned to an accepted tile
    vtile = np.full(ii.size, -1, dtype=np.int64)
    acc: dict[str, list] = {"r2": [], "se": [], "k": [], "slice": [], "size": [], "s0": []}
    for level_no, size in enumerate(lv):
        last = level_no == len(lv) - 1
        sel = np.nonzero(pending)[0]
        if sel.size == 0:
            break
        tids, inv, per_slice, k, r2, s0, se, ok = _fit_level(sig[sel], te, (ii[sel], jj[sel], kk[sel]), shape,
                                                             size, noise_sigma, coils, noise_rho)
        good = ok & (se <= target_rel_se * r2)
        accept = ok if last else _parents_accept(tids, good, shape, size, lv[level_no + 1])
        new_index = np.cumsum(accept) - 1 + sum(a.size for a in acc["r2"])
        vtile[sel[accept[inv]]] = new_index[inv[accept[inv]]]
        acc["r2"].append(r2[accept])
        acc["se"].append(se[accept])
        acc["s0"].append(s0[accept])
        acc["k"].append(k[accept])
        acc["slice"].append((tids // per_slice)[accept])
        acc["size"].append(np.full(int(accept.sum()), size))
        pending[sel[accept[inv]]] = False
        if last:
            break
    return vtile, acc


def _pooled_result(acc: dict, vtile: np.ndarray, te: np.ndarray, ijk: tuple, shape: tuple, noise_sigma: float,
                   coils: int, noise_rho: "dict | None") -> PooledR2:
    """The :class:`PooledR2` of the accepted tiles ``acc`` (:func:`_quadtree`), its measurement
    SE computed on first use."""
    ii, jj, kk = ijk
    r2 = np.concatenate(acc["r2"])
    se = np.concatenate(acc["se"])
    k = np.concatenate(acc["k"])
    tslice = np.concatenate(acc["slice"])
    if r2.size == 0:
        raise InputError("mask: no tile of the ROI could be fitted")
    mean = float(np.sum(k * r2) / np.sum(k))
    # each tile's SE at its shrunk state, not at its own noisy fit (r2mri/_measurement_se.py); on first use
    # (the tilings of the heterogeneity block use the tiles only: 2 of the 3 simulations of a full-size liver)
    se_args = (r2.copy(), np.concatenate(acc["s0"]), se.copy(), k.copy(), np.concatenate(acc["size"]), te,
               noise_sigma, coils)
    k_noise, se_scale, draw, big_f = None, 1.0, None, 1.0
    if noise_rho is not None:  # r2mri/_corr_tiles.py: each tile's noise count, and the tiles' mutual correlation
        f, big_f = tile_noise_factors(ii, jj, kk, vtile, r2.size, shape, noise_rho)
        k_noise, se_scale = k / f, float(np.sqrt(big_f))
        draw = tile_draw(k, np.concatenate(acc["size"]), noise_rho, noise_sigma, coils)

    def se_mean():
        if k_noise is None:
            return pooled_measurement_se(*se_args)[0]
        return se_scale * pooled_measurement_se(*se_args, k_noise=k_noise, draw=draw)[0]

    return PooledR2(mean, se_mean, r2, se, k.astype(int), tslice.astype(int), int(k.sum()), int(r2.size),
                    np.concatenate(acc["size"]).astype(int), np.ravel_multi_index((ii, jj, kk), shape), vtile,
                    tile_noise_voxels=k_noise, tile_noise_draw=draw, tile_noise_between=big_f)
