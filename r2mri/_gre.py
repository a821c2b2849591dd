"""Gradient-echo (R2*) path of :func:`r2mri.analyze`: model choice, headline R2*, PDFF block.

Hooked from :mod:`r2mri.analysis` (model choice) and :mod:`r2mri.stats` (headline and
the ``pdff_percent`` block) when the fit is ``model == "fatwater"`` (issue 15).

**Headline R2*** (``estimator = "tile-fw-ncchi"``): the tile-pooled idea of
:mod:`r2mri.stats` applied to the fat-water model. The ROI is cut into in-plane tiles
(default 4 x 4 voxels per slice; tiles less than half inside the ROI are not used, a
spatial rule); the magnitude signal is averaged over each tile's ROI voxels echo by echo,
and W, F and R2* of the tile are fitted to that mean curve with the noise floor modelled::

    E[M](t) = ncchi_mean(|W + F c(t)| exp(-R2* t), sigma, coils)

(``c`` the fat basis of :class:`r2mri.fatwater.FatSpectrum`, ``ncchi_mean`` of
:mod:`r2mri.noise`; iteratively reweighted Levenberg-Marquardt with the variance
``(A^2 + 2 n sigma^2 - E[M]^2) / k`` of a k-voxel mean). Averaging k voxels cuts the
noise by sqrt(k) before the non-linear fit, which removes the bias of the voxel fits at
low SNR; the noise floor is modelled, not subtracted. Each tile is fitted from the tile
mean of the voxel fit (W, F, R2*) and from its water/fat swap; the solution kept follows
the voxel fit's "liver" swap rule (PDFF <= 50 % when exactly one start gives it, else the
lower cost). Mean liver R2* = voxel-count-weighted mean of the tile R2*; its measurement
SE combines the tiles' covariance SEs (as :func:`r2mri.stats.pooled_mean_r2`).
Measured accuracy: docs/fatwater.md "In analyze".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError
from .status import FitStatus

__all__ = ["resolve_model", "pooled_mean_r2star", "pooled_headline", "pdff_block", "range_check", "GRE_TILE",
           "ESTIMATOR"]

#: In-plane tile edge (voxels) of the pooled fat-water headline [D, design choice: 16
#: voxels per tile lift a per-voxel SNR of 50 to 200 before the fit; measured in
#: docs/fatwater.md "In analyze"].
GRE_TILE = 4
#: Name of the headline estimator for fat-water fits (report.json ``headline.estimator``;
#: at most 16 characters, the length of a DICOM SR code value).
ESTIMATOR = "tile-fw-ncchi"

_R2_MAX = 5000.0  # s^-1, upper clip of the tile fit (as the SE tile fit of r2mri.stats), at least
# twice the voxel fit's upper R2* bound (docs/fatwater.md "R2* range"); a tile there is dropped and counted


# --------------------------------------------------------------------------- model choice
def resolve_model(img: Any, model: str, where: str) -> tuple[str, list[str]]:
    """The model :func:`r2mri.analyze` fits, and warnings about the choice.

    ``"auto"`` on gradient-echo input (``img.sequence`` of the GRE family) is
    ``"fatwater"``, which needs the field strength; ``"fatwater"`` on spin-echo input is
    refused (a spin echo refocuses the fat-water phase the model relies on); another
    model on gradient-echo input is fitted as asked, with a warning (a plain exponential
    R2* is biased by liver fat, docs/fatwater.md).

    Raises
    ------
    InputError
        GRE input without a field strength under ``"auto"``/``"fatwater"``, or
        ``"fatwater"`` on spin-echo input.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri import MultiEchoImage
    >>> img = MultiEchoImage(np.ones((1, 1, 1, 6)), np.arange(1, 7) / 1e3, field_strength_t=1.5, sequence="GRE")
    >>> resolve_model(img, "auto", "image")
    ('fatwater', [])
    """
    from .calibration import _sequence_kind

    kind = _sequence_kind(getattr(img, "sequence", None))
    b0 = getattr(img, "field_strength_t", None)
    if model == "fatwater" and kind in ("SE", "SE-CPMG"):
        raise InputError(f"{where}: model 'fatwater' needs gradient-echo data, the sequence is "
                         f"{img.sequence!r} (spin echo); use model 'auto'")
    if kind == "GRE" and model == "auto":
        model = "fatwater"
    if model == "fatwater" and b0 is None:
        raise InputError(f"{where}: the fat-water R2* model (gradient-echo input) needs the main field "
                         "strength, which the input does not record; pass field_strength_t= "
                         "(command line --field-strength 1.5 or 3)")
    warnings = []
    if kind == "GRE" and model != "fatwater":
        warnings.append(f"model: the R2* of this gradient-echo series was fitted with model {model!r}, which "
                        "ignores fat: in a fatty liver this R2*, and the LIC from it, are biased; the fat-water "
                        "model ('fatwater', the default) accounts for fat")
    return model, warnings


# --------------------------------------------------------------------------- tile fit
def _model(p: np.ndarray, te: np.ndarray, cr: np.ndarray, ci: np.ndarray, sigma: float, coils: int):
    """Amplitude, E[M] and Jacobian of E[M] over (W, F, R2*) for tiles ``p`` (nt, 3)."""
    from .noise import ncchi_mean_interpolated

    w, f, r = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    zr = w + f * cr[None, :]
    zi = f * ci[None, :]
    g = np.maximum(np.hypot(zr, zi), 1e-300)
    e = np.exp(-r * te[None, :])
    a = g * e
    m, d = ncchi_mean_interpolated(a, sigma, coils)
    jac = np.stack([e * zr / g, e * (zr * cr + zi * ci) / g, -te[None, :] * a], axis=-1)
    return a, m, d[..., None] * jac


def _fit_tiles(y: np.ndarray, k: np.ndarray, p0: np.ndarray, te, cr, ci, sigma: float, coils: int,
               max_iter: int = 80, r2_max: float = _R2_MAX, fat_floor: float = 0.1):
    """Weighted LM of the tile means ``y`` (nt, ne) from ``p0`` with W >= 0, F >= -fat_floor W
    (the voxel fit's signed fat bound) and 0 <= R2* <= r2_max; returns (p, cost, se_r2, ok,
    se_pdff_percent)."""
    from .noise import ncchi_mean_weights

    p = p0.astype(np.float64).copy()
    nt = p.shape[0]
    kk = k[:, None].astype(np.float64)

    def weights(a, m, kk):
        return ncchi_mean_weights(a, m, sigma, coils, kk)

    a, m, jac = _model(p, te, cr, ci, sigma, coils)
    w = weights(a, m, kk)
    cost = np.sum(w * (y - m) ** 2, axis=1)
    lam = np.full(nt, 1e-3)
    active = np.ones(nt, dtype=bool)
    eye = np.eye(3)
    for _ in range(max_iter):
        act = np.flatnonzero(active)
        if act.size == 0:
            break
        ja, wa, ya, ma = jac[act], w[act], y[act], m[act]
        h = np.einsum("tei,te,tej->tij", ja, wa, ja)
        g = np.einsum("tei,te,te->ti", ja, wa, ya - ma)
        damp = h + lam[act, None, None] * (h * eye[None])
        damp += 1e-12 * np.trace(h, axis1=1, axis2=2)[:, None, None] * eye[None]
        try:
            step = np.linalg.solve(damp, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.zeros_like(g)
        pn = p[act] + step
        pn[:, 0] = np.maximum(pn[:, 0], 0.0)
        pn[:, 1] = np.maximum(pn[:, 1], -fat_floor * pn[:, 0])  # signed fat, as the voxel fit
        pn[:, 2] = np.clip(pn[:, 2], 0.0, r2_max)
        an, mn, jn = _model(pn, te, cr, ci, sigma, coils)
        cn = np.sum(wa * (ya - mn) ** 2, axis=1)
        better = cn <= cost[act]
        amp = p[act, 0] + p[act, 1]
        tol = 1e-7 * np.stack([amp, amp, np.maximum(p[act, 2], 1.0)], axis=1) + 1e-300
        small = np.all(np.abs(pn - p[act]) <= tol, axis=1)
        bc = better[:, None]
        p[act] = np.where(bc, pn, p[act])
        a[act] = np.where(bc, an, a[act])
        m[act] = np.where(bc, mn, ma)
        jac[act] = np.where(better[:, None, None], jn, ja)
        lam_a = np.where(better, lam[act] / 10.0, lam[act] * 10.0)
        lam[act] = lam_a
        w[act] = weights(a[act], m[act], kk[act])  # IRLS: reweight at the new estimate
        cost[act] = np.sum(w[act] * (ya - m[act]) ** 2, axis=1)
        active[act] = ~((better & small) | (lam_a > 1e10))
    h = np.einsum("tei,te,tej->tij", jac, w, jac)
    se = np.full(nt, np.inf)
    se_pdff = np.full(nt, np.inf)
    good = np.all(np.isfinite(h), axis=(1, 2)) & (np.abs(np.linalg.det(h)) > 0)
    if good.any():
        cov = np.linalg.inv(h[good])
        se[good] = np.sqrt(np.maximum(cov[:, 2, 2], 0.0))
        # PDFF = F / (W + F): delta method, gradient (-F, W) / (W + F)^2
        wg, fg = p[good, 0], p[good, 1]
        s2 = np.maximum(wg + fg, 1e-300) ** 2
        gw, gf = -fg / s2, wg / s2
        var = gw * gw * cov[:, 0, 0] + 2 * gw * gf * cov[:, 0, 1] + gf * gf * cov[:, 1, 1]
        se_pdff[good] = 100.0 * np.sqrt(np.maximum(var, 0.0))
    ok = np.all(np.isfinite(p), axis=1) & np.isfinite(se) & (p[:, 2] > 0) & (p[:, 2] < r2_max)
    return p, cost, se, ok, se_pdff


def pooled_mean_r2star(image: Any, fit: Any, mask: np.ndarray, *, noise_sigma: float, coils: int = 1,
                       tile: int = GRE_TILE, noise_rho: "dict | None" = None):
    """Mean R2* of a region by the tile-pooled noise-corrected fat-water fit.

    Parameters
    ----------
    image : MultiEchoImage
        Magnitude data (x, y, z, echo) and echo times.
    fit : FitResult
        The voxel-wise fat-water fit (``model == "fatwater"``): its ``extra`` water/fat
        maps and R2* start the tile fits; its options give the field and spectrum.
    mask : ndarray of bool, shape (x, y, z)
        The region (voxels of the liver ROI with a finite R2*).
    noise_sigma : float
        Noise SD per real/imaginary part of one channel.
    coils : int
        Channels combined by root-sum-of-squares.
    tile : int
        In-plane tile edge in voxels.
    noise_rho : dict, optional
        In-plane noise correlation by lag (:func:`r2mri._corr_tiles.material_rho`): each
        tile's SE (R2* and PDFF) is scaled by ``sqrt(f_t)`` and the mean's SE by ``sqrt(F)``
        (:func:`r2mri._corr_tiles.tile_noise_factors`); None: independent voxels.

    Returns
    -------
    r2mri.stats.PooledR2
        With an extra attribute ``estimator = "tile-fw-ncchi"`` and
        ``tile_pdff_percent``.

    Raises
    ------
    InputError
        No tile with at least half its voxels in ``mask``; bad sigma or tile.

    Examples
    --------
    >>> import numpy as np, r2mri
    >>> from r2mri.fatwater import load_fat_spectrum, magnitude_signal
    >>> te = 0.0012 + 0.001 * np.arange(6)
    >>> y = magnitude_signal(load_fat_spectrum().basis(te, 1.5), te, 80.0, 20.0, 150.0)
    >>> img = r2mri.MultiEchoImage(np.broadcast_to(y, (8, 8, 1, 6)).copy(), te, field_strength_t=1.5)
    >>> res = r2mri.fit(img, model="fatwater")
    >>> p = pooled_mean_r2star(img, res, np.ones((8, 8, 1), bool), noise_sigma=0.01)
    >>> round(p.mean_r2_per_s, 2), p.n_tiles
    (150.0, 4)
    """
    from .fatwater import load_fat_spectrum

    _check_sigma_and_tile(noise_sigma, tile)
    opts = getattr(fit, "options", None) or {}
    b0 = opts.get("field_strength_t", getattr(image, "field_strength_t", None))
    if b0 is None:
        raise InputError("fit: the fat-water fit records no field strength")
    spec = load_fat_spectrum(opts.get("fat_spectrum") or "liver-fat-6peak")
    te = np.asarray(image.echo_times_s, dtype=np.float64)
    basis = spec.basis(te, float(b0))
    cr, ci = np.ascontiguousarray(basis.real), np.ascontiguousarray(basis.imag)
    m = np.asarray(mask, dtype=bool)
    data = np.asarray(image.data)
    if m.shape != data.shape[:3]:
        raise InputError(f"mask: shape {m.shape} does not match the image grid {data.shape[:3]}")
    (ii, jj, kk), tids, inv, k, per_slice = _roi_tiles(m, tile)
    nt = tids.size
    y = _tile_mean(data[ii, jj, kk, :].astype(np.float64), inv, k)
    hi_fit = float((opts.get("r2_bounds_per_s") or (0.0, 0.0))[1])
    r2_max = max(_R2_MAX, 2.0 * hi_fit)
    a_floor = float(opts.get("fat_floor_fraction", 0.1))
    p0 = _tile_starts(fit, data, te, (ii, jj, kk), inv, k, y, r2_max, a_floor)
    p, se, se_pdff, ok = _fit_both_starts(y, k, p0, te, cr, ci, float(noise_sigma), int(coils), r2_max, a_floor)
    at_cap = int(np.count_nonzero(np.isfinite(p[:, 2]) & (p[:, 2] >= r2_max)))
    if not ok.any():
        raise InputError("mask: no tile of the ROI could be fitted")
    f_noise, big_f = np.ones(nt), 1.0
    if noise_rho is not None:  # correlated noise: the tile mean's variance x f_t, the tiles' mutual x F
        from ._corr_tiles import tile_noise_factors

        f_noise, big_f = tile_noise_factors(ii, jj, kk, np.where(ok[inv], inv, -1), nt, m.shape, noise_rho)
        se, se_pdff = se * np.sqrt(f_noise), se_pdff * np.sqrt(f_noise)
    pooled = _pooled(p, se, ok, k, tids // per_slice, int(tile), f_noise, big_f, noise_rho is not None)
    _add_pdff_and_counts(pooled, p, se_pdff, ok, k, big_f, at_cap, r2_max)
    # what the within-tile spread correction (r2mri/_gre_mixture.py) needs: the fitted tiles'
    # (W, F, R2*), their voxels, the fat basis and the fit's bounds
    keep = np.flatnonzero(ok)
    pooled.fw_tiles = {  # type: ignore[attr-defined]
        "params": p[ok], "k": k[ok], "voxels": (ii, jj, kk), "tile_of": inv, "kept": keep, "te": te, "cr": cr,
        "ci": ci, "r2_max": r2_max, "fat_floor": a_floor, "y": y[ok], "sigma": float(noise_sigma), "coils": int(coils)}
    return pooled


def _check_sigma_and_tile(noise_sigma, tile) -> None:
    if not (np.isfinite(noise_sigma) and noise_sigma > 0):
        raise InputError(f"noise_sigma: must be a positive finite number, got {noise_sigma!r}")
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise InputError(f"tile: must be a positive integer, got {tile!r}")


def _roi_tiles(m: np.ndarray, tile: int):
    """The ROI's voxels in tiles with at least half their voxels in it (a spatial rule,
    never the signal): ``((ii, jj, kk), tile ids, tile index of each voxel, voxels per
    tile as float, tiles per slice)``."""
    from .stats import _tile_ids

    ii, jj, kk = np.nonzero(m)
    tid, per_slice = _tile_ids(ii, jj, kk, m.shape, int(tile))
    counts = np.bincount(tid)
    use = counts[tid] >= max(1, (tile * tile + 1) // 2)  # spatial rule, never the signal
    if not use.any():
        raise InputError(f"mask: no {tile}x{tile} tile has at least half its voxels in the ROI")
    ii, jj, kk, tid = ii[use], jj[use], kk[use], tid[use]
    tids, inv = np.unique(tid, return_inverse=True)
    k = np.bincount(inv, minlength=tids.size).astype(np.float64)
    return (ii, jj, kk), tids, inv, k, per_slice


def _tile_mean(values: np.ndarray, inv: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (voxel, ...) per tile (``inv``: tile index of each voxel)."""
    nt = k.size
    s = np.zeros((nt,) + values.shape[1:])
    np.add.at(s, inv, values)
    return s / k.reshape((nt,) + (1,) * (values.ndim - 1))


def _tile_starts(fit: Any, data: np.ndarray, te: np.ndarray, voxels, inv, k, y, r2_max: float,
                 a_floor: float) -> np.ndarray:
    """Start (W, F, R2*) of each tile fit: the tile mean of the voxel fit's maps over its
    voxels whose fit is OK (BELOW_NOISE/BOUND_HIT voxels can sit anywhere up to the R2*
    bound and lead the tile fit into the swapped basin), all voxels where a tile has none;
    within the voxel fit's bounds, all water at the first echo where nothing is usable."""
    ii, jj, kk = voxels
    nt = k.size
    extra = getattr(fit, "extra", None) or {}
    r2v = np.nan_to_num(np.asarray(fit.r2_per_s, dtype=np.float64)[ii, jj, kk])
    if extra.get("water") is not None and extra.get("fat") is not None:
        start = np.stack([np.nan_to_num(np.asarray(extra["water"], dtype=np.float64)[ii, jj, kk]),
                          np.nan_to_num(np.asarray(extra["fat"], dtype=np.float64)[ii, jj, kk]), r2v], axis=1)
    else:  # no water/fat maps: 90 % water at the first echo's amplitude, back-extrapolated
        amp = data[ii, jj, kk, 0].astype(np.float64) * np.exp(r2v * te[0])
        start = np.stack([0.9 * amp, 0.1 * amp, r2v], axis=1)
    st = getattr(fit, "status", None)
    okv = (np.ones(ii.size, bool) if st is None else np.asarray(st)[ii, jj, kk] == FitStatus.OK).astype(np.float64)
    n_ok = np.bincount(inv, weights=okv, minlength=nt)
    p0 = _tile_mean(start, inv, k)
    if np.any(n_ok > 0):
        s_ok = np.zeros((nt, 3))
        np.add.at(s_ok, inv, start * okv[:, None])
        has = n_ok > 0
        p0[has] = s_ok[has] / n_ok[has, None]
    p0[:, 0] = np.maximum(p0[:, 0], 0.0)
    p0[:, 1] = np.maximum(p0[:, 1], -a_floor * p0[:, 0])  # signed fat, as the voxel fit
    p0[:, 2] = np.clip(p0[:, 2], 1.0, 0.5 * r2_max)
    tot = p0[:, 0] + p0[:, 1]
    low = ~(tot > 0)
    p0[low, 0] = y[low, 0]  # no usable voxel start: all water at the first echo's amplitude
    return p0


def _fit_both_starts(y, k, p0, te, cr, ci, sigma: float, coils: int, r2_max: float, a_floor: float):
    """Fit every tile from its start and from the water-fat swapped start; keep the
    liver-like one (PDFF <= 50 %) when exactly one is, else the lower cost. Returns
    ``(params, R2* SE, PDFF SE, fitted)`` per tile."""
    swapped = np.maximum(p0[:, [1, 0, 2]], 0.0)
    fits = [_fit_tiles(y, k, p0, te, cr, ci, sigma, coils, r2_max=r2_max, fat_floor=a_floor),
            _fit_tiles(y, k, swapped, te, cr, ci, sigma, coils, r2_max=r2_max, fat_floor=a_floor)]
    (pa, ca, sa, oka, qa), (pb, cb, sb, okb, qb) = fits
    pdff_a = pa[:, 1] / np.maximum(pa[:, 0] + pa[:, 1], 1e-300)
    pdff_b = pb[:, 1] / np.maximum(pb[:, 0] + pb[:, 1], 1e-300)
    liver_a, liver_b = (pdff_a <= 0.5) & oka, (pdff_b <= 0.5) & okb
    take_b = np.where(liver_a != liver_b, liver_b, (cb < ca) & okb | ~oka)
    p = np.where(take_b[:, None], pb, pa)
    se = np.where(take_b, sb, sa)
    se_pdff = np.where(take_b, qb, qa)
    ok = np.where(take_b, okb, oka)
    return p, se, se_pdff, ok


def _pooled(p, se, ok, k, slice_of_tile, tile: int, f_noise, big_f: float, correlated: bool):
    """The ``PooledR2`` of the fitted tiles: voxel-weighted mean R2* and its SE (x sqrt(F)
    for correlated noise)."""
    from .stats import PooledR2

    r2, se, kt = p[ok, 2], se[ok], k[ok]
    se_mean = float(np.sqrt(np.sum((kt * se) ** 2)) / np.sum(kt))
    if correlated:
        se_mean *= float(np.sqrt(big_f))
    pooled = PooledR2(float(np.sum(kt * r2) / np.sum(kt)), se_mean,
                      r2, se, kt.astype(int), slice_of_tile[ok].astype(int), int(kt.sum()), int(r2.size),
                      np.full(int(r2.size), int(tile)),
                      tile_noise_voxels=kt / f_noise[ok] if correlated else None, tile_noise_between=big_f)
    pooled.estimator = ESTIMATOR  # type: ignore[attr-defined]
    pooled.tile = int(tile)  # type: ignore[attr-defined]
    return pooled


def _add_pdff_and_counts(pooled, p, se_pdff, ok, k, big_f: float, at_cap: int, r2_max: float) -> None:
    """Attach the tiles' PDFF and its voxel-weighted mean and SE, the dropped tiles and
    voxels and the tiles at the R2* cap to ``pooled``."""
    kt = k[ok]
    pdff = 100.0 * p[ok, 1] / np.maximum(p[ok, 0] + p[ok, 1], 1e-300)
    pooled.tile_pdff_percent = pdff  # type: ignore[attr-defined]
    pooled.tile_pdff_se_percent = se_pdff[ok]  # type: ignore[attr-defined]
    pooled.pdff_mean_percent = float(np.sum(kt * pdff) / np.sum(kt))  # type: ignore[attr-defined]
    pdff_se = float(np.sqrt(np.sum((kt * se_pdff[ok]) ** 2) * big_f) / np.sum(kt))  # x F: 1.0 for white noise
    pooled.pdff_se_percent = pdff_se  # type: ignore[attr-defined]
    pooled.n_tiles_dropped = int(k.size - kt.size)  # type: ignore[attr-defined]
    pooled.n_voxels_dropped = int(k.sum() - kt.sum())  # type: ignore[attr-defined]
    pooled.n_tiles_at_r2_cap = at_cap  # type: ignore[attr-defined]
    pooled.r2_cap_per_s = r2_max  # type: ignore[attr-defined]


def pooled_headline(fit: Any, image: Any, valid: np.ndarray, sigma: float, coils: int, tile: Any, *,
                    seed: int = 0, estimator: str = "auto", noise_rho: "dict | None" = None):
    """The tile-pooled mean rate for :func:`r2mri.stats.liver_statistics`: the fat-water
    pooled fit for ``fit.model == "fatwater"``, else :func:`r2mri.stats.pooled_mean_r2`.

    Fat-water, ``estimator`` ``"auto"`` or ``"tile-mixture"``: the tiles corrected for the
    spread of R2* inside them (:func:`r2mri._gre_mixture.gre_mixture_correction`,
    ``estimator = "tile-fw-mixture"``; the correction in the attribute ``mixture``);
    ``"tile-ncchi"``: the tiles as fitted (``"tile-fw-ncchi"``). ``noise_rho``: measured
    noise correlation carried into the fat-water tile SEs (:func:`pooled_mean_r2star`)."""
    if getattr(fit, "model", None) == "fatwater":
        pooled = pooled_mean_r2star(image, fit, valid, noise_sigma=sigma, coils=coils,
                                    tile=tile if isinstance(tile, (int, np.integer)) and not isinstance(tile, bool)
                                    else GRE_TILE, noise_rho=noise_rho)
        pooled.mixture = None  # type: ignore[attr-defined]
        if estimator in ("auto", "tile-mixture"):
            from ._gre_mixture import gre_mixture_correction

            pooled, pooled.mixture = gre_mixture_correction(image, pooled, noise_sigma=sigma, coils=coils,
                                                            seed=seed)
        return pooled
    from .stats import pooled_mean_r2

    return pooled_mean_r2(image, valid, noise_sigma=sigma, coils=coils, tile=tile)


# --------------------------------------------------------------------------- PDFF block
#: Fraction of ROI voxels beyond the measurable R2* range above which the report warns that
#: the LIC is a lower bound [D, design choice: the 5 % of the other qc warnings of r2mri.stats].
BEYOND_RANGE_WARN_FRACTION = 0.05


def pdff_block(fit: Any, valid: np.ndarray, pooled: Any = None) -> dict[str, Any] | None:
    """PDFF (%) of the ROI for ``fit.model == "fatwater"``; ``None`` for other models.

    ``mean`` is the voxel-weighted mean of the tile PDFF of the tile-pooled fit (``pooled``,
    :func:`pooled_mean_r2star`; ``mean_method = "tile-fw-ncchi"``) with ``se`` its SE from
    the spread of the tile PDFF (from the tile covariances with one tile; one degenerate tile
    near the noise would make the covariance SE meaningless); without ``pooled`` it is
    the mean of the voxel PDFF (``mean_method = "voxel-mean"``, ``se`` = SD / sqrt(n)).
    ``median``, ``sd``, ``voxel_mean`` and ``n_voxels`` are over the ``valid`` voxels with
    status OK and a finite PDFF. Why the tile mean: at R2* >= 600 s^-1 the per-voxel PDFF
    spread is 10-18 points and its mean is biased by the fat bound and by the status
    selection, the tile fit's (16 voxels averaged before the fit) is not (docs/fatwater.md
    "ROI PDFF"). The PDFF is signed (docs/fatwater.md "Fat bound and PDFF rule").

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> pd = np.array([[[5.0], [7.0]]])
    >>> fit = SimpleNamespace(model="fatwater", extra={"pdff_percent": pd}, status=np.zeros(pd.shape, np.uint8))
    >>> b = pdff_block(fit, np.ones(pd.shape, bool))
    >>> b["mean"], b["median"], b["mean_method"], b["n_voxels"]
    (6.0, 6.0, 'voxel-mean', 2)
    """
    if getattr(fit, "model", None) != "fatwater":
        return None
    pdff = (getattr(fit, "extra", None) or {}).get("pdff_percent")
    if pdff is None:
        return None
    pdff = np.asarray(pdff, dtype=np.float64)
    status = np.asarray(getattr(fit, "status", np.zeros(pdff.shape, np.uint8)))
    use = np.asarray(valid, dtype=bool) & np.isfinite(pdff) & (status == FitStatus.OK)
    v = pdff[use]
    block: dict[str, Any] = {"mean": None, "se": None, "median": None, "sd": None, "voxel_mean": None,
                             "n_voxels": int(v.size), "mean_method": "voxel-mean", "n_tiles": None}
    if v.size:
        sd = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
        block.update({"mean": float(np.mean(v)), "se": sd / np.sqrt(v.size), "median": float(np.median(v)),
                      "sd": sd, "voxel_mean": float(np.mean(v))})
    tp = getattr(pooled, "tile_pdff_percent", None)
    if tp is not None and np.size(tp) and np.isfinite(getattr(pooled, "pdff_mean_percent", np.nan)):
        kt = np.asarray(pooled.tile_voxels, dtype=np.float64)
        tp = np.asarray(tp, dtype=np.float64)
        mean = float(pooled.pdff_mean_percent)
        se = float(pooled.pdff_se_percent)  # from the tile covariances
        if tp.size > 1:  # between-tile SE of the weighted mean: robust to a degenerate tile's SE
            var = np.sum(kt * (tp - mean) ** 2) / np.sum(kt) * tp.size / (tp.size - 1)
            se = float(np.sqrt(var * np.sum(kt**2)) / np.sum(kt))
        block.update({"mean": mean, "se": se if np.isfinite(se) else None, "mean_method": ESTIMATOR,
                      "n_tiles": int(tp.size)})
    return block


def tiles_at_noise_floor(pooled: Any, echo: int = 1, z: float = 3.0) -> float:
    """Voxel share of the pooled fit's tiles whose mean magnitude at the second echo is within
    ``z`` standard errors of the pure-noise mean (amplitude 0): their signal is gone after
    one echo, so neither R2* nor the fat is measured there (``z = 3`` [D, r2mri's choice]:
    a one-sided 0.1 % chance that a tile with signal is flagged by its noise).

    Why: at 30 mg/g (R2* ~1160 s^-1) with a 1.2 ms first echo, SNR 20 and 8 channels the
    voxel fits returned R2* ~260 s^-1 with status OK (and BOUND_HIT at R2* = 0, not at the
    upper bound) and the tile fits ~500 s^-1: the headline read -53 % in LIC with none of
    the range warnings (benchmarks/gre_hetero.py, SD 0.4 over 8 voxels). The test looks at
    the data, not at the fits: the noise floor of a k-voxel tile mean is
    ``ncchi_mean(0) +- sd(0) / sqrt(k)``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> y = np.array([[300.0, 200.0], [300.0, 250.0]])  # second echo: floor (~1.25) vs signal
    >>> t = {"y": y / 100, "k": np.array([16.0, 16.0]), "sigma": 1.0, "coils": 1}
    >>> tiles_at_noise_floor(SimpleNamespace(fw_tiles=t))
    0.0
    >>> t["y"] = np.array([[3.0, 1.3], [3.0, 2.5]])
    >>> tiles_at_noise_floor(SimpleNamespace(fw_tiles=t))
    0.5
    """
    from .noise import ncchi_mean

    t = getattr(pooled, "fw_tiles", None)
    if not t or t.get("y") is None or np.shape(t["y"])[1] <= echo:
        return 0.0
    sigma, coils = float(t["sigma"]), int(t["coils"])
    floor = float(ncchi_mean(np.array([0.0]), sigma, coils)[0])
    sd0 = float(np.sqrt(max(2.0 * coils * sigma**2 - floor**2, 0.0)))
    k = np.asarray(t["k"], dtype=np.float64)
    gone = np.asarray(t["y"])[:, echo] <= floor + z * sd0 / np.sqrt(np.maximum(k, 1.0))
    return float(np.sum(k[gone]) / max(np.sum(k), 1.0))


def range_check(fit: Any, valid: np.ndarray, pooled: Any = None) -> tuple[dict[str, Any], str | None]:
    """Fraction of the ROI beyond the R2* range the fat-water fit measures, and a warning.

    Beyond the range are ROI voxels with status ``BELOW_NOISE`` (fewer than 3 echoes above
    the noise: R2* too high for the echo train) or ``BOUND_HIT`` at the upper R2* bound.
    They are left out of the voxel statistics, and the tile-pooled fit cannot recover them
    either where whole tiles are beyond the range: above :data:`BEYOND_RANGE_WARN_FRACTION`
    of the ROI a warning says that their R2* is a lower bound and the LIC is not reliable
    (measured, benchmarks/gre_pdff.py: the tile-pooled headline reads up to +20 % high near
    the limit of the train and -60..-90 % low far beyond it). Tiles the pooled fit leaves
    out (``pooled.n_voxels_dropped``) above the same fraction are warned too (in the same line when both
    apply). Returns ``({"fraction_beyond_r2_range",
    "r2_upper_bound_per_s", "n_tiles_dropped"}, warning or None)``.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> st = np.array([0, 0, 3, 2], np.uint8).reshape(1, 4, 1)
    >>> fit = SimpleNamespace(status=st, r2_per_s=np.array([100, 100, 900, 2500.0]).reshape(1, 4, 1),
    ...                       options={"r2_bounds_per_s": [0.0, 2500.0]})
    >>> q, w = range_check(fit, np.ones((1, 4, 1), bool))
    >>> q["fraction_beyond_r2_range"], w.split(":")[0]
    (0.5, 'qc')
    """
    status = np.asarray(fit.status)[valid]
    r2 = np.asarray(fit.r2_per_s, dtype=np.float64)[valid]
    hi = float(((getattr(fit, "options", None) or {}).get("r2_bounds_per_s") or (0.0, np.inf))[1])
    beyond = (status == FitStatus.BELOW_NOISE) | ((status == FitStatus.BOUND_HIT) & (r2 >= hi * (1 - 1e-6)))
    n = max(int(status.size), 1)
    frac = float(np.count_nonzero(beyond)) / n
    dropped = int(getattr(pooled, "n_tiles_dropped", 0) or 0)
    # tiles the pooled fit could not fit (at its R2* cap, or singular) are left out of the headline
    frac_dropped = float(getattr(pooled, "n_voxels_dropped", 0) or 0) / n
    info = {"fraction_beyond_r2_range": frac, "r2_upper_bound_per_s": hi if np.isfinite(hi) else None,
            "n_tiles_dropped": dropped if pooled is not None else None}
    floor_share = tiles_at_noise_floor(pooled)
    info["fraction_tiles_at_noise_floor"] = floor_share if pooled is not None else None
    if floor_share > BEYOND_RANGE_WARN_FRACTION:  # the data say so, whatever the fits' status
        return info, (f"qc: WARNING - in {100 * floor_share:.0f} % of the ROI (tiles of the headline) the signal "
                      "is at the noise floor from the second echo on: R2* there is beyond what this echo train "
                      "measures and the fits' R2* (and PDFF) are not reliable; the LIC is not reliable: near this "
                      "limit it can read high, far beyond it far too low; a shorter first echo and spacing "
                      "measure higher R2*")
    if max(frac, frac_dropped) <= BEYOND_RANGE_WARN_FRACTION:
        return info, None
    if frac <= BEYOND_RANGE_WARN_FRACTION:
        return info, (f"qc: {dropped} tiles ({100 * frac_dropped:.1f} % of ROI voxels) could not be fitted by the "
                      "tile-pooled estimator and are left out of the headline: the LIC is not reliable")
    also = (f"; {dropped} tiles ({100 * frac_dropped:.1f} % of ROI voxels) could not be fitted by the tile-pooled "
            "estimator and are left out of the headline" if frac_dropped > BEYOND_RANGE_WARN_FRACTION else "")
    return info, (f"qc: {100 * frac:.1f} % of ROI voxels are beyond the R2* range this echo train measures "
                  f"(fewer than 3 echoes above the noise, or R2* at the fit's upper bound {hi:.0f} s^-1): "
                  "their R2* is a lower bound and the LIC (and the ROI PDFF) is not reliable (near the limit "
                  "it can read high, far beyond it low: treat the LIC as a lower bound); a shorter first echo "
                  f"and spacing measure higher R2*{also}")
