"""Liver statistics: the headline LIC of the mean liver R2, its 95 % interval, distributions.

Headline (FerriScan convention, domain.md section 4): the LIC of the **mean liver R2**.
The plain mean of per-voxel R2 is biased at high iron: at SNR 50 (one channel, TE
6-18 ms) a voxel at R2 ~ 277 s^-1 (40 mg/g) has only two or three echoes above the
noise floor, its noise-corrected fit has a skewed error distribution, and the mean of
the voxel R2 over-estimates the mean R2 by about 8 % at 30 mg/g and 18 % at 40 mg/g
(measured, docs/statistics.md). The headline therefore uses:

**Tile-pooled noise-corrected estimator** (``estimator="tile-ncchi"``)

1. The ROI is cut into in-plane tiles of ``tile x tile`` voxels (default 3 x 3) on each
   slice; tiles with fewer than half their voxels in the ROI are not used (a spatial
   rule, so it does not select on noise).
2. In each tile the magnitude signal is averaged over the tile's ROI voxels, echo by
   echo. Its expectation is the mean of the voxels' non-central chi means, which for a
   tile of (nearly) equal amplitude ``A(TE) = S0 exp(-R2 TE)`` is
   ``ncchi_mean(A, sigma, coils)`` exactly (``r2mri.noise``), and its variance is
   ``(A^2 + 2 n sigma^2 - E[M]^2) / k`` for ``k`` voxels.
3. ``S0`` and ``R2`` of each tile are fitted to that curve by iteratively reweighted
   Levenberg-Marquardt (``E[M]`` evaluated as in the voxel-wise kernels, from the
   interpolation table of ``r2mri.noise.ncchi_table``, relative error < 4e-12). Averaging ``k`` voxels cuts the noise by ``sqrt(k)`` before
   the non-linear fit, which is what removes the bias; the noise floor itself is
   modelled, not subtracted.
4. Mean liver R2 = voxel-count-weighted mean of the tile R2 (equal to the mean of the
   voxels' true R2 to first order, because smooth heterogeneity is nearly constant
   within a 3 x 3 tile).

Needs the magnitude images (``image``) and the noise ``sigma`` / ``coils`` (from the
fit's options or given). Without them the headline falls back to the mean of the
per-voxel R2 (``estimator="voxel-mean"``) and a warning says so.

**95 % interval**: two components, both reported. (a) The per-voxel (per-tile)
uncertainties: the covariance of each tile fit gives ``se_t``; the measurement SE of the
mean is ``sqrt(sum k_t^2 se_t^2) / sum k_t``. (b) A bootstrap over tiles (clusters of
voxels; seeded, ``n_bootstrap`` resamples, percentile interval), which also carries the
spatial heterogeneity (on correlated noise its noise share is stretched by the tiles' mutual
correlation, r2mri/_corr_bootstrap.py). The reported ``ci95`` is the union of the bootstrap percentile
interval and ``mean +- 1.96 SE`` (never narrower than the measurement noise allows),
mapped through the calibration curve (monotonic, so interval ends map to interval ends).

**Heterogeneous livers**: the default (``estimator="auto"``) is ``"tile-mixture"``, the
tiles above corrected for the spread of R2 inside them, with the correction's own error
added to the interval (``r2mri/_headline.py``, docs/statistics.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import _corr_bootstrap, _gre, _headline, _s0_texture, _texture_free_ci
from . import calibration as _cal
from ._corr_tiles import material_rho, tile_draw, tile_noise_factors
from ._measurement_se import pooled_measurement_se
from . import _sigma_check  # the noise sigma's own error (issue 16)
from ._numba_setup import njit
from .errors import InputError
from .status import FitStatus

__all__ = ["LiverStatistics", "liver_statistics", "pooled_mean_r2", "PooledR2", "PERCENTILES"]

#: Percentiles reported for R2 and LIC.
PERCENTILES = (5, 10, 25, 50, 75, 90, 95)
_Z95 = 1.959963984540054  # Phi^-1(0.975)


# --------------------------------------------------------------------------- pooled fit
def _tile_fit(y: np.ndarray, te: np.ndarray, k: np.ndarray, sigma: float, coils: int,
              *, max_iter: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``y[t, e] ~ ncchi_mean(S0 exp(-R2 te), sigma, coils)`` per tile; vectorised LM.

    ``k[t]`` is the number of voxels averaged in tile t. Returns (r2, s0, se_r2, ok).
    """
    from .noise import ncchi_mean, ncchi_mean_interpolated, ncchi_mean_weights

    nt, ne = y.shape
    te = np.asarray(te, dtype=np.float64)
    floor = float(ncchi_mean(0.0, sigma, coils))
    # start: log-linear slope of the two first echoes, floor-subtracted in quadrature
    y0 = np.sqrt(np.maximum(y[:, 0] ** 2 - floor**2, (0.5 * sigma) ** 2))
    y1 = np.sqrt(np.maximum(y[:, 1] ** 2 - floor**2, (0.25 * sigma) ** 2))
    r2 = np.clip(np.log(np.maximum(y0, 1e-300) / np.maximum(y1, 1e-300)) / (te[1] - te[0]), 1.0, 2000.0)
    s0 = y0 * np.exp(r2 * te[0])
    lam = np.full(nt, 1e-3)
    kk = k[:, None].astype(np.float64)

    def model(s0_, r2_):
        # E[M] and dE/dA as the voxel-wise kernels evaluate them (interpolation table)
        e = np.exp(-r2_[:, None] * te[None, :])
        a = s0_[:, None] * e
        m, d = ncchi_mean_interpolated(a, sigma, coils)
        return a, e, m, d

    def weights(a, m, kk):
        return ncchi_mean_weights(a, m, sigma, coils, kk)

    a, e, m, d = model(s0, r2)
    w = weights(a, m, kk)
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
        s0_new = np.maximum(s0a + ds0, 1e-12)
        r2_new = np.clip(r2a + dr2, 0.0, 5000.0)
        a_n, e_n, m_n, d_n = model(s0_new, r2_new)
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
        wa = weights(aa, ma, kk[act])
        w[act] = wa
        cost[act] = np.sum(wa * (ya - ma) ** 2, axis=1)
        active[act] = ~((better & small) | (lam_a > 1e10))
    j0, j1 = d * e, -d * a * te[None, :]
    h00, h01, h11 = np.sum(w * j0 * j0, 1), np.sum(w * j0 * j1, 1), np.sum(w * j1 * j1, 1)
    det = h00 * h11 - h01 * h01
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.where(det > 0, h00 / det, np.inf))
    ok = np.isfinite(r2) & np.isfinite(se) & (r2 > 0) & (r2 < 5000.0)
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
    if tile == "adaptive":
        lv = [int(v) for v in levels]
        if not lv or any(v < 1 for v in lv) or any(b % a for a, b in zip(lv, lv[1:])):
            raise InputError(f"levels: expected increasing tile edges, each a multiple of the last, got {levels}")
    elif isinstance(tile, (int, np.integer)) and not isinstance(tile, bool) and tile >= 1:
        lv = [int(tile)]
    else:
        raise InputError(f"tile: must be a positive integer or 'adaptive', got {tile!r}")
    data = np.asarray(image.data)
    m = np.asarray(mask, dtype=bool)
    if m.shape != data.shape[:3]:
        raise InputError(f"mask: shape {m.shape} does not match the image grid {data.shape[:3]}")
    ii, jj, kk = np.nonzero(m)
    # half-fill rule at the finest level: a spatial rule, it never looks at the signal
    tid0, _ = _tile_ids(ii, jj, kk, m.shape, lv[0])
    counts = np.bincount(tid0)
    use = counts[tid0] >= max(1, (lv[0] * lv[0] + 1) // 2)
    if not use.any():
        raise InputError(f"mask: no {lv[0]}x{lv[0]} tile has at least half its voxels in the ROI")
    ii, jj, kk = ii[use], jj[use], kk[use]
    sig = data[ii, jj, kk, :].astype(np.float64)
    te = image.echo_times_s
    pending = np.ones(ii.size, dtype=bool)  # voxels not yet assigned to an accepted tile
    vtile = np.full(ii.size, -1, dtype=np.int64)
    acc_r2, acc_se, acc_k, acc_slice, acc_size, acc_s0 = [], [], [], [], [], []
    for level_no, size in enumerate(lv):
        last = level_no == len(lv) - 1
        sel = np.nonzero(pending)[0]
        if sel.size == 0:
            break
        tid, per_slice = _tile_ids(ii[sel], jj[sel], kk[sel], m.shape, size)
        tids, inv = np.unique(tid, return_inverse=True)
        nt = tids.size
        sums = np.zeros((nt, sig.shape[1]))
        np.add.at(sums, inv, sig[sel])
        k = np.bincount(inv, minlength=nt).astype(np.float64)
        r2, s0, se, ok = _tile_fit(sums / k[:, None], te, k, float(noise_sigma), int(coils))
        if noise_rho is not None:  # correlated noise: the tile mean's variance x f (the fit's weights scale alike)
            se = se * np.sqrt(tile_noise_factors(ii[sel], jj[sel], kk[sel], inv, nt, m.shape, noise_rho)[0])
        good = ok & (se <= target_rel_se * r2)
        if not last:
            # parents (next level) holding a failing child are refitted whole
            ratio = lv[level_no + 1] // size
            nx, ny, _ = m.shape
            tx, ty = -(-nx // size), -(-ny // size)
            px, py = -(-nx // lv[level_no + 1]), -(-ny // lv[level_no + 1])
            sl_, rem = np.divmod(tids, tx * ty)
            ti, tj = np.divmod(rem, ty)
            parent = (sl_ * px + ti // ratio) * py + tj // ratio
            bad_parent = np.unique(parent[~good])
            accept = ~np.isin(parent, bad_parent)
        else:
            accept = ok
        new_index = np.cumsum(accept) - 1 + sum(a.size for a in acc_r2)
        vtile[sel[accept[inv]]] = new_index[inv[accept[inv]]]
        acc_r2.append(r2[accept])
        acc_se.append(se[accept])
        acc_s0.append(s0[accept])
        acc_k.append(k[accept])
        acc_slice.append((tids // per_slice)[accept])
        acc_size.append(np.full(int(accept.sum()), size))
        pending[sel[accept[inv]]] = False
        if last:
            break
    r2 = np.concatenate(acc_r2)
    se = np.concatenate(acc_se)
    k = np.concatenate(acc_k)
    tslice = np.concatenate(acc_slice)
    if r2.size == 0:
        raise InputError("mask: no tile of the ROI could be fitted")
    mean = float(np.sum(k * r2) / np.sum(k))
    # each tile's SE at its shrunk state, not at its own noisy fit (r2mri/_measurement_se.py); on first use
    # (the tilings of the heterogeneity block use the tiles only: 2 of the 3 simulations of a full-size liver)
    se_args = (r2.copy(), np.concatenate(acc_s0), se.copy(), k.copy(), np.concatenate(acc_size), te,
               float(noise_sigma), int(coils))
    k_noise, se_scale, draw, big_f = None, 1.0, None, 1.0
    if noise_rho is not None:  # r2mri/_corr_tiles.py: each tile's noise count, and the tiles' mutual correlation
        f, big_f = tile_noise_factors(ii, jj, kk, vtile, r2.size, m.shape, noise_rho)
        k_noise, se_scale = k / f, float(np.sqrt(big_f))
        draw = tile_draw(k, np.concatenate(acc_size), noise_rho, float(noise_sigma), int(coils))

    def se_mean():
        if k_noise is None:
            return pooled_measurement_se(*se_args)[0]
        return se_scale * pooled_measurement_se(*se_args, k_noise=k_noise, draw=draw)[0]

    return PooledR2(mean, se_mean, r2, se, k.astype(int), tslice.astype(int), int(k.sum()), int(r2.size),
                    np.concatenate(acc_size).astype(int), np.ravel_multi_index((ii, jj, kk), m.shape), vtile,
                    tile_noise_voxels=k_noise, tile_noise_draw=draw, tile_noise_between=big_f)


# --------------------------------------------------------------------------- statistics
def _summary(values: np.ndarray, percentiles: Sequence[float]) -> dict[str, Any]:
    if values.size == 0:
        return {"n": 0, "mean": None, "median": None, "sd": None, "iqr": None,
                "percentiles": {str(p): None for p in percentiles}}
    q = np.percentile(values, list(percentiles) + [25, 75])
    return {
        "n": int(values.size),
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "sd": float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
        "iqr": [float(q[-2]), float(q[-1])],
        "percentiles": {f"{p:g}": float(v) for p, v in zip(percentiles, q[:-2])},
    }


@dataclass
class LiverStatistics:
    """Liver statistics; :meth:`to_dict` gives the report.json blocks.

    Attributes
    ----------
    headline_lic_mg_per_g : float
        LIC of the mean liver R2 (by ``estimator``), mg Fe / g dry tissue.
    headline_r2_per_s : float
        The mean liver R2 the headline is computed from.
    ci95_lic_mg_per_g : tuple of float
        95 % interval of the headline.
    estimator : str
        ``"tile-ncchi"`` or ``"voxel-mean"`` (fallback).
    category : LicCategory
    blocks : dict
        The report blocks (see :meth:`to_dict`).
    warnings : list of str
    """

    headline_lic_mg_per_g: float
    headline_r2_per_s: float
    ci95_lic_mg_per_g: tuple[float, float]
    estimator: str
    category: Any
    blocks: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """report.json blocks: ``r2_per_s``, ``lic_mg_per_g``, ``lic_umol_per_g``,
        ``category``, ``fraction_above``, ``per_slice``, ``headline``, ``qc``,
        ``heterogeneity`` (r2mri._heterogeneity), ``warnings``."""
        out = {k: v for k, v in self.blocks.items()}
        out["warnings"] = list(self.warnings)
        return out


def _fit_sigma(fit: Any, noise_sigma: float | None, coils: int | None) -> tuple[float | None, int]:
    opts = getattr(fit, "options", None) or {}
    sigma = noise_sigma if noise_sigma is not None else opts.get("noise_sigma")
    n = coils if coils is not None else opts.get("coils", 1)
    try:
        n = int(round(float(n))) if n is not None else 1
    except (TypeError, ValueError):
        n = 1
    if sigma is not None:
        sigma = float(sigma)
        if not (np.isfinite(sigma) and sigma > 0):
            sigma = None
    return sigma, max(n, 1)


@njit(error_model="numpy")
def _resampled_ratios(idx, wu, w, out):
    """``out[r] = sum_j wu[idx[r, j]] / sum_j w[idx[r, j]]``: the weighted means of the
    bootstrap resamples in one pass over the indices (numpy's ``wu[idx].sum(axis=1)``
    gathers two temporary arrays of the indices' size first: 0.20 -> 0.07 s of CPU for the
    2000 x 19,562 resamples of the FerriScan phantom). Sums run in index order
    (numpy sums pairwise): the means differ by rounding only (~1e-16 relative)."""
    for r in range(idx.shape[0]):
        s1 = 0.0
        s2 = 0.0
        for j in range(idx.shape[1]):
            k = idx[r, j]
            s1 += wu[k]
            s2 += w[k]
        out[r] = s1 / s2


def _heterogeneity(fit: Any, valid: np.ndarray, r2v: np.ndarray, stv: np.ndarray, lic_head: float, cal: Any,
                   pooled: Any = None, image: Any = None, sigma: float | None = None, coils: int = 1):
    """The ``heterogeneity`` block (r2mri._heterogeneity) from the fit's voxel R2 and SE;
    with the tile-ncchi headline (``pooled``), tile-pooled fits are the fallback when the
    voxels are too noisy."""
    from ._heterogeneity import liver_heterogeneity, tile_candidates

    std = getattr(fit, "r2_std_per_s", None)
    se = None if std is None else np.asarray(std, dtype=np.float64)[valid]
    if getattr(fit, "model", None) == "fatwater" and image is not None and sigma is not None:
        from ._gre_heterogeneity import gre_tile_candidates  # fat-water tiles (the SE tile fit reads fat as decay)

        tiles = gre_tile_candidates(image, fit, valid, sigma, coils, pooled)
    else:
        tiles = None if pooled is None else tile_candidates(image, valid, sigma, coils, pooled)
    return liver_heterogeneity(r2v, se, stv, headline_lic_mg_per_g=lic_head, calibration=cal, tiles=tiles)


def liver_statistics(
    fit: Any,
    roi: Any,
    calibration: "str | Any" = _cal.DEFAULT_CALIBRATION,
    *,
    image: Any = None,
    noise_sigma: float | None = None,
    coils: int | None = None,
    estimator: str = "auto",
    tile: "int | str" = "adaptive",
    n_bootstrap: int = 2000,
    seed: int = 0,
    percentiles: Sequence[float] = PERCENTILES,
    noise_correlation: "dict | None" = None,
    sigma_check: str = "correct",
    interval: str = "bootstrap",
) -> LiverStatistics:
    """Headline LIC of the mean liver R2 with its 95 % interval, and the distributions.

    Parameters
    ----------
    fit : FitResult
        ``r2_per_s``, ``status`` (and ``options`` with ``noise_sigma``/``coils``).
    roi : LiverROI or ndarray of bool
        The liver ROI (:func:`r2mri.roi.liver_roi`). A LiverROI's ``not_converged`` voxels
        (removed only because their voxel fit did not converge) also enter the tile-pooled
        headline, which fits magnitudes; a plain array is used as given.
    calibration : str, Path or Calibration, default "st-pierre-2005"
    image : MultiEchoImage, optional
        The magnitude images; needed for the tile-pooled headline estimator.
    noise_sigma, coils : optional
        Override the fit's noise parameters.
    estimator : {"auto", "tile-mixture", "tile-ncchi", "voxel-mean"}, default "auto"
        Mean liver R2 for the headline: ``"tile-mixture"`` (the tiles corrected for the
        spread of R2 within them, :mod:`r2mri._headline`; needs ``image`` and the noise
        sigma; raises without them), ``"tile-ncchi"`` (the tiles uncorrected: biased low
        in heterogeneous livers), ``"voxel-mean"`` (mean of the fit's voxel R2; biased
        high at high iron), ``"auto"`` (the first when possible, else the second with a
        warning). For a fat-water fit (``fit.model == "fatwater"``) the tile-pooled
        estimator fits the fat-water model to each tile (``"tile-fw-ncchi"``, r2mri/_gre.py)
        and ``blocks["pdff_percent"]`` holds the ROI's PDFF.
    tile : int or "adaptive", default "adaptive"
        Tiles of the pooled estimator (:func:`pooled_mean_r2`).
    n_bootstrap : int, default 2000
        Bootstrap resamples over tiles (voxels for the fallback) for ``ci95``.
    seed : int, default 0
        Seed of the bootstrap (results are deterministic).
    noise_correlation : dict, optional
        ``NoiseEstimate.spatial_correlation``: when the noise is materially correlated between
        voxels (the report's warning rule), the tile-pooled headline's noise counts, fit-bias
        terms and measurement SE account for it (r2mri/_corr_tiles.py); else ignored.
    percentiles : sequence of float
    sigma_check : {"correct", "liver", "widen", "off"}, default "correct"
        The noise sigma's own error (r2mri/_sigma_check.py, block ``sigma_check``): where the
        liver's echoes reach the noise floor, its sigma is read there and the headline uses it
        (``"liver"``: scaled by the tiles' R2 ratio, or recomputed when it differs from the
        air's beyond noise, with a warning), with its SE carried into the interval through the
        measured dR2/dsigma; elsewhere the air sigma's SE is carried. ``"correct"``: the liver's
        sigma only on a mismatch (the interval still reaches its headline); ``"widen"``: never
        (the interval reaches it; a mismatch warns in red); ``"off"``: none of it. Only the
        tile-pooled headline of the SE model is checked (not fat-water fits); ``per_slice``
        keeps the air's sigma.
    interval : {"bootstrap", "texture-free"}, default "bootstrap"
        The interval's basis before its widening steps (r2mri/_texture_free_ci.py, opt-in).

    Returns
    -------
    LiverStatistics

    Raises
    ------
    InputError
        Empty ROI or maps that do not match.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> r2 = np.full((10, 10, 2), 102.3)
    >>> fit = SimpleNamespace(r2_per_s=r2, status=np.zeros(r2.shape, np.uint8), options={})
    >>> s = liver_statistics(fit, np.ones(r2.shape, bool))
    >>> round(s.headline_lic_mg_per_g, 2), s.category.name, s.estimator
    (7.0, 'target-range', 'voxel-mean')
    """
    cal = _cal.get_calibration(calibration)
    mask = np.asarray(getattr(roi, "mask", roi), dtype=bool)
    r2map = np.asarray(fit.r2_per_s, dtype=np.float64)
    status = np.asarray(getattr(fit, "status", np.zeros(r2map.shape, np.uint8)))
    if mask.shape != r2map.shape:
        raise InputError(f"roi: shape {mask.shape} does not match the R2 map {r2map.shape}")
    valid = mask & np.isfinite(r2map)
    n = int(np.count_nonzero(valid))
    if n == 0:
        raise InputError("roi: no voxel with a finite R2 in the liver ROI")
    warnings: list[str] = []
    r2v = r2map[valid]
    cm = _cal.calibrate(r2v, cal)
    licv = cm.lic_mg_per_g
    stv = status[valid]

    # ---- headline --------------------------------------------------------------
    sigma, n_coils = _fit_sigma(fit, noise_sigma, coils)
    rng = np.random.default_rng(seed)
    pooled = mixture = None
    if sigma_check not in ("correct", "widen", "liver", "off"):
        raise InputError(f"sigma_check: expected 'correct', 'widen', 'liver' or 'off', got {sigma_check!r}")
    if estimator not in ("auto", "tile-mixture", "tile-ncchi", "voxel-mean"):
        raise InputError(f"estimator: expected 'auto', 'tile-mixture', 'tile-ncchi' or 'voxel-mean', got {estimator!r}")
    if estimator in _headline.POOLED_ESTIMATORS and (image is None or sigma is None):
        raise InputError(f"estimator: {estimator!r} needs the magnitude images (image=) and the noise sigma")
    if estimator == "voxel-mean":
        pass
    elif image is not None and sigma is not None:
        try:
            if getattr(fit, "model", None) == "fatwater":  # fat-water: R2* (issue 15)
                pooled = _gre.pooled_headline(fit, image, valid, sigma, n_coils, tile, seed=seed,
                                              estimator=estimator, noise_rho=material_rho(noise_correlation))
                mixture = pooled.mixture  # the within-tile spread correction of R2* (r2mri/_gre_mixture.py)
            else:
                # with the voxels whose own fit did not converge (r2mri/roi.py, LiverROI.not_converged)
                nc = getattr(roi, "not_converged", None)
                pool_mask = valid | nc if nc is not None and np.shape(nc) == valid.shape else valid
                pooled, mixture, estimator = _headline.headline_pooled(
                    image, pool_mask, noise_sigma=sigma, coils=n_coils, tile=tile, seed=seed, estimator=estimator,
                    noise_rho=material_rho(noise_correlation))
        except InputError as exc:
            warnings.append(f"headline: tile-pooled estimator not possible ({exc}); used the mean of voxel R2")
    elif image is None:
        warnings.append("headline: no magnitude images given; used the mean of voxel R2 (biased high at high iron)")
    else:
        warnings.append("headline: noise sigma unknown; used the mean of voxel R2 (biased high at high iron)")
    if pooled is not None:
        estimator = getattr(pooled, "estimator", estimator)
        mean_r2, se_meas = pooled.mean_r2_per_s, pooled.se_r2_per_s
        units, weights = pooled.tile_r2_per_s, pooled.tile_voxels.astype(np.float64)
    else:
        estimator = "voxel-mean"
        std = getattr(fit, "r2_std_per_s", None)
        mean_r2 = float(np.mean(r2v))
        if std is not None:
            s = np.asarray(std, dtype=np.float64)[valid]
            s = s[np.isfinite(s)]
            se_meas = float(np.sqrt(np.sum(s**2)) / n) if s.size == n else float("nan")
        else:
            se_meas = float("nan")
        units, weights = r2v, np.ones(n)
    boot_stretch = None
    if n_bootstrap > 0 and units.size > 1:
        boot = np.empty(int(n_bootstrap))
        chunk = max(1, int(2_000_000 // units.size))  # bounded memory (~16 MB per array)
        wu = weights * units  # the same products as weights[idx] * units[idx], formed once
        # the means of one chunk are taken on a thread (the kernel releases the GIL) while
        # the next chunk's indices are drawn here: the same draws in the same order, the
        # same numbers (liver_statistics on the FerriScan phantom: 0.18 -> 0.145 s); the
        # thread ends with the call (the with block joins it, docs/architecture.md)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for start in range(0, int(n_bootstrap), chunk):
                stop = min(start + chunk, int(n_bootstrap))
                idx = rng.integers(0, units.size, size=(stop - start, units.size))
                if pending is not None:
                    pending.result()
                pending = pool.submit(_resampled_ratios, idx, wu, weights, boot[start:stop])
            pending.result()
        if pooled is not None and pooled.tile_noise_between > 1.0:  # correlated noise (r2mri/_corr_bootstrap.py)
            boot, boot_stretch = _corr_bootstrap.correlated_bootstrap(boot, mean_r2, se_meas, pooled.tile_noise_between)
        b_lo, b_hi = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
        se_boot = float(np.std(boot, ddof=1))
    else:
        b_lo = b_hi = mean_r2
        se_boot = float("nan")
    lo, hi = b_lo, b_hi
    if np.isfinite(se_meas):
        lo, hi = min(lo, mean_r2 - _Z95 * se_meas), max(hi, mean_r2 + _Z95 * se_meas)
    lo, hi, tf_block = _texture_free_ci.apply(interval, lo, hi, mean_r2, se_meas, pooled, fit, valid, warnings)
    lo, hi = _headline.widen_interval(lo, hi, mean_r2, mixture)  # the correction's own error
    sig_chk = None
    if pooled is not None and sigma_check != "off" and getattr(fit, "model", None) != "fatwater":
        sig_chk = _sigma_check.sigma_check(image, pooled, sigma, n_coils, _sigma_check.air_sigma_se(fit, sigma),
                                           noise_rho=material_rho(noise_correlation), mode=sigma_check)
        if sig_chk.needs_rerun(mean_r2, lo, hi):  # the headline itself at the liver's sigma
            try:
                again = _headline.headline_pooled(image, pool_mask, noise_sigma=sig_chk.sigma_liver, coils=n_coils,
                                                  tile=tile, seed=seed, estimator=estimator,
                                                  noise_rho=material_rho(noise_correlation))
                sig_chk.r2_shift_relative = again[0].mean_r2_per_s / mean_r2 - 1.0
            except InputError:  # kept: the tiles' ratio
                pass
        mean_r2, lo, hi = sig_chk.apply(mean_r2, lo, hi)  # sigma's SE; the liver's sigma (r2mri/_sigma_check.py)
        warnings.extend(sig_chk.warnings)
    warnings.extend(mixture.warnings if mixture is not None else [])
    warnings.extend(_s0_texture.report_warning(mixture, mean_r2, cal))  # fine S0 texture vs kappa's prior (issue 16)
    head = _cal.calibrate(np.array([mean_r2, lo, hi]), cal)
    lic_head, lic_lo, lic_hi = (float(v) for v in head.lic_mg_per_g)
    category = _cal.lic_category(lic_head)
    if head.extrapolated[0]:
        warnings.append(f"headline: LIC {lic_head:.2f} mg/g is outside the calibrated range of {cal.name}")
    if head.clipped[0]:
        warnings.append(f"headline: mean R2 {mean_r2:.1f} /s is outside the domain of {cal.name}; LIC clipped")

    # ---- distributions -------------------------------------------------------------
    r2_block = _summary(r2v, percentiles)
    r2_block.update(
        headline_mean=mean_r2,
        headline_se_measurement=se_meas if np.isfinite(se_meas) else None,
        headline_se_bootstrap=se_boot if np.isfinite(se_boot) else None,
        headline_ci95=[lo, hi],
        estimator=estimator,
    )
    lic_block = _summary(licv, percentiles)
    lic_block = {"of_mean_r2": lic_head, **lic_block, "ci95": [lic_lo, lic_hi]}
    umol = {key: (None if v is None else v * _cal.UMOL_PER_MG) for key, v in lic_block.items()
            if key in ("of_mean_r2", "mean", "median", "sd")}
    umol["iqr"] = [v * _cal.UMOL_PER_MG for v in lic_block["iqr"]]
    umol["percentiles"] = {p: v * _cal.UMOL_PER_MG for p, v in lic_block["percentiles"].items()}
    umol["ci95"] = [lic_lo * _cal.UMOL_PER_MG, lic_hi * _cal.UMOL_PER_MG]
    umol["factor_umol_per_mg"] = _cal.UMOL_PER_MG
    fraction_above = {f"{t:g}": float(np.mean(licv > t)) for t in _cal.THRESHOLDS_MG_PER_G}

    # per slice
    per_slice = []
    kk = np.nonzero(valid)[2]
    for k in np.unique(kk):
        sel = kk == k
        entry: dict[str, Any] = {
            "slice": int(k),
            "n_voxels": int(np.count_nonzero(sel)),
            "r2_mean_voxel": float(np.mean(r2v[sel])),
            "lic_mean_voxel": float(np.mean(licv[sel])),
            "lic_median_voxel": float(np.median(licv[sel])),
        }
        if pooled is not None:
            ts = pooled.tile_slice == k
            if ts.any():
                r2s = float(np.sum(pooled.tile_voxels[ts] * pooled.tile_r2_per_s[ts]) / np.sum(pooled.tile_voxels[ts]))
            else:
                r2s = float(np.mean(r2v[sel]))
        else:
            r2s = float(np.mean(r2v[sel]))
        entry["r2_headline"] = r2s
        entry["lic_of_mean_r2"] = float(_cal.lic_from_r2(r2s, cal))
        per_slice.append(entry)

    below = int(np.count_nonzero(stv == FitStatus.BELOW_NOISE))
    bound = int(np.count_nonzero(stv == FitStatus.BOUND_HIT))
    failed_in_roi = int(np.count_nonzero(np.isin(stv, [FitStatus.NOT_CONVERGED, FitStatus.TOO_FEW_ECHOES,
                                                        FitStatus.BAD_INPUT, FitStatus.MASKED])))
    removed = dict(getattr(roi, "removed", {}) or {})
    qc = {
        "n_voxels": n,
        "extrapolated_fraction": cm.extrapolated_fraction,
        "clipped_fraction": cm.clipped_fraction,
        "fraction_at_noise_floor": below / n,
        "fraction_bound_hit": bound / n,
        "fit_failures": failed_in_roi + int(removed.get("fit_failed", 0)),
        "fit_failures_in_roi": failed_in_roi,
        "fit_failures_removed": int(removed.get("fit_failed", 0)),
        "headline_extrapolated": bool(head.extrapolated[0]),
        "headline_clipped": bool(head.clipped[0]),
        "noise_sigma": sigma,
        "coils": n_coils,
    }
    if getattr(fit, "model", None) == "fatwater":  # R2* beyond the train's range (r2mri._gre, issue 15)
        rq, rw = _gre.range_check(fit, valid, pooled)
        qc.update(rq)
        warnings += [rw] if rw else []
        from ._voxel_consistency import voxel_tile_check  # voxel fits vs the tile-pooled fit

        vq, vw = voxel_tile_check(fit, valid, pooled)
        qc.update(vq)
        warnings += [vw] if vw else []
    elif qc["fraction_at_noise_floor"] > 0.05:
        warnings.append(f"qc: {100 * qc['fraction_at_noise_floor']:.1f} % of ROI voxels at the noise floor "
                        "(too few echoes above the noise: their voxel R2 is not a measurement; the headline uses their "
                        "pooled signal)")
    if cm.extrapolated_fraction > 0.05:
        warnings.append(f"qc: {100 * cm.extrapolated_fraction:.1f} % of ROI voxel LIC values outside the calibrated "
                        f"range of {cal.name} (voxel values are noisy; the headline is "
                        f"{'outside' if head.extrapolated[0] else 'inside'} it)")
    rate = "R2" if cal.sequence == "SE" else "R2*"
    conv = "FerriScan convention" if rate == "R2" else "the mean-rate convention of the R2 route"
    headline = {
        "lic_mg_per_g": lic_head,
        "lic_umol_per_g": lic_head * _cal.UMOL_PER_MG,
        "r2_per_s": mean_r2,
        "ci95_lic_mg_per_g": [lic_lo, lic_hi],
        "estimator": estimator,
        "definition": (f"LIC of the mean liver {rate} ({conv}); mean {rate} by the tile-pooled "
                       f"noise-corrected estimator{' of the fat-water model' if str(estimator).startswith('tile-fw') else ''}"
                       + (f", corrected for the spread of {rate} within tiles" if mixture is not None else "")
                       if pooled is not None else
                       f"LIC of the mean liver {rate} ({conv}); mean {rate} = mean of voxel {rate} (fallback)"),
        "tiles": getattr(pooled, "tile", tile) if pooled is not None else None,
        "tile_sizes": ({str(s): int(np.sum(pooled.tile_size == s)) for s in np.unique(pooled.tile_size)}
                       if pooled is not None else None),
        "n_tiles": pooled.n_tiles if pooled is not None else None,
        "n_voxels_used": pooled.n_voxels_used if pooled is not None else n,
        "ci95_method": (f"union of the bootstrap percentile interval over "
                        f"{'tiles' if pooled is not None else 'voxels'} ({int(n_bootstrap)} resamples, seed {seed}) "
                        + ("stretched for the measured noise correlation, " if boot_stretch is not None else "")
                        + "and mean +- 1.96 measurement SE" + (", widened by the within-tile spread correction's "
                                                             "own SE in quadrature" if mixture is not None else "")
                        + (", with the noise sigma read in the liver and its SE times dR2/dsigma (block sigma_check)"
                           if sig_chk is not None and sig_chk.corrected else
                           ", and by the noise sigma's SE times dR2/dsigma (block sigma_check)"
                           if sig_chk is not None and sig_chk.sigma_air_se is not None else "")
                        + ", mapped through the calibration"),
        "mixture": mixture.to_dict() if mixture is not None else None,
        "bootstrap_noise_stretch": boot_stretch,
        "interval_basis": tf_block,
        "calibration": cal.name,
    }
    het = _heterogeneity(fit, valid, r2v, stv, lic_head, cal,
                         pooled if estimator in _headline.POOLED_ESTIMATORS or str(estimator).startswith("tile-fw")
                         else None, image, sigma, n_coils)
    if het.warning:
        warnings.append(het.warning)
    blocks = {
        "headline": headline,
        "r2_per_s": r2_block,
        "lic_mg_per_g": lic_block,
        "lic_umol_per_g": umol,
        "category": {**category.to_dict(), "of": "lic_mg_per_g.of_mean_r2"},
        "fraction_above": fraction_above,
        "per_slice": per_slice,
        "qc": qc,
        "umol_per_mg": _cal.UMOL_PER_MG,
        "heterogeneity": het.to_dict(),
        "sigma_check": (sig_chk.to_dict() if sig_chk is not None else
                        {"status": "not made", "reason": "off" if sigma_check == "off" else
                         "no tile-pooled R2 headline of the SE model (the noise sigma enters it only there)"}),
    }
    lic_block["fraction_above"] = fraction_above
    if getattr(fit, "model", None) == "fatwater":  # PDFF of the ROI (r2mri._gre, issue 15)
        blocks["pdff_percent"] = _gre.pdff_block(fit, valid, pooled)
    return LiverStatistics(lic_head, mean_r2, (lic_lo, lic_hi), estimator, category, blocks, warnings)
