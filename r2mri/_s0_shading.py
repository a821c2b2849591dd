"""The within-tile spread of S0 from the smooth S0 field across the tiles (``kappa`` of
:mod:`r2mri._spread_estimate`), from a statistic that does not involve the spread of R2.

Why: at 30 mg/g only two echoes are in the spread statistic's cumulant regime, and the
joint moment fit of (rho, kappa) from two echo-wise dispersions is nearly singular (rho
and kappa correlate -0.985 liver to liver; iterated to its root along that ridge it reads
rho +0.0017 high; docs/statistics.md "The spread estimate's bias at rho = 0"). The S0
spread inside a tile comes mostly from the receive shading, which is smooth over the liver
(in the phantom a Gaussian sensitivity fall-off of 120 mm, r2mri/phantom/_noise.py; a tile
spans 12-48 mm). Its within-tile variance can
therefore be read from the tile fits' S0 across the liver: a low-order surface in log S0
fitted to the tiles' apparent S0 (each tile's intercept, an average of its voxels; a
uniform within-tile R2 spread moves every tile's intercept by the same factor, which the
surface's constant absorbs), evaluated at every voxel, and its relative variance inside
each tile, pooled per tile edge as the spread statistic pools its dispersions. It enters
the moment fit as a normal prior on kappa (r2mri/_spread_estimate.py): it decides where two
echoes cannot separate rho from kappa, the data decide where more echoes can.

What it misses: S0 texture at the scale of a tile or finer (proton-density variation,
partial volume at the liver's edge) is not in a smooth surface; where the prior decides,
kappa then reads low and rho high (the spread correction over-corrects). Measured with the
phantom's optional fine S0 texture (``s0_log_sd``, r2mri/phantom/_s0_texture.py; small livers,
30 mg/g, SNR 20, paired): log-SD 0.02 moves the headline <= +0.2 %, 0.05 over 1 voxel +0.3 to
+0.7 %, 0.1 over 1 voxel +1.9 to +2.6 % (full size +2.6 %, intervals miss). The tiles' log S0
about the surface does not see it (a tile averages it away), so it cannot widen the prior.
Two real (normal) livers read 0.01-0.02 at the 1-voxel scale, where the prior moves the
headline by <= 0.2 % (benchmarks/s0_texture_real.py); iron-overloaded and cirrhotic livers
were not available. docs/statistics.md ("kappa from
the S0 field") has the measurements. A guard that drops the prior where the data's own kappa
lies > 3 SE above it (r2mri/_kappa_guard.py) was measured and is off: at full size it also
fires on the joint fit's own bias in textured-LIC livers. Per exam, r2mri/_s0_texture.py measures the
fine texture from the covariances between echoes where three echoes are above the floor and moves the
headline by the prior's shift where it is material (branch s0warn); at 30 mg/g, SNR 20 it cannot see it.
"""

from __future__ import annotations

import numpy as np

_DEGREE = 1  # [D, r2mri's choice] polynomial degree of the log S0 surface in (x, y[, z]) with few tiles: a
# plane. On small livers (64 x 64 x 3 of 6 mm, ~27 tiles of 8 x 8, 30 mg/g, SNR 20, one channel, 10 livers) it
# read kappa 0.0057 +- 0.0019 (SD) against the truth's 0.0057; a quadratic surface 0.0049 +- 0.0034 (10
# coefficients from ~27 tiles); with 8 channels 0.00003 / 0.00007 against 0.00028
_TILES_FOR_QUADRATIC = 10  # [D, r2mri's choice] tiles per coefficient from which the surface is quadratic: on a
# 64 x 64 x 11 liver (~470 tiles, 0.5 mg/g, SNR 50, one channel) the plane read the 8 x 8 tiles' kappa 0.0045
# against 0.0077 in the truth (they sit in the dark, curved part of the shading), the quadratic 0.0074
# (docs/statistics.md "kappa from the S0 field")


_MIN_TILES_PER_COEF = 2  # [D, r2mri's choice] tiles per coefficient of the surface (8 tiles for a plane)
# below which kappa is not read from the S0 field (None: r2mri/_spread_estimate.py fits it with rho)


def _design(coords: np.ndarray, degree: int) -> np.ndarray:
    """Monomials of the (centred, scaled) coordinates up to ``degree`` (columns: 1, x, y, ..., x^2, xy, ...)."""
    n, d = coords.shape
    cols = [np.ones(n)]
    for p in range(1, degree + 1):
        for idx in np.ndindex(*(p + 1,) * d):
            if sum(idx) == p:
                cols.append(np.prod([coords[:, j] ** idx[j] for j in range(d)], axis=0))
    return np.stack(cols, axis=1)


def field_kappa(voxel_xyz, tile_of, k, s0_tile, sel_of):
    """:func:`shading_kappa` at the degree the tiles support (a plane, or a quadratic surface
    with ``_TILES_FOR_QUADRATIC`` tiles per coefficient), its SE widened by the surface's
    model error: the difference between the plane's and the quadratic's kappa. Returns
    ``(kappa, se)`` per edge, or ``(None, None)`` (too few tiles)."""
    k1, se1 = shading_kappa(voxel_xyz, tile_of, k, s0_tile, sel_of, degree=1)
    k2, se2 = shading_kappa(voxel_xyz, tile_of, k, s0_tile, sel_of, degree=2)
    if k1 is None:
        return None, None
    n_coef2 = _design(np.zeros((1, int(np.sum(np.ptp(np.asarray(voxel_xyz, float), axis=0) > 0)))), 2).shape[1]
    quad = k2 is not None and np.sum(k > 0) >= _TILES_FOR_QUADRATIC * n_coef2
    kap, se = (k2, se2) if quad else (k1, se1)
    model = {s: abs(k2[s] - k1[s]) if k2 is not None else 0.0 for s in sel_of}
    return kap, {s: float(np.hypot(se[s], model[s])) for s in sel_of}


def shading_kappa(voxel_xyz: np.ndarray, tile_of: np.ndarray, k: np.ndarray, s0_tile: np.ndarray,
                  sel_of: dict, degree: int = _DEGREE) -> dict:
    """Pooled within-tile relative variance of S0 per tile edge, from the smooth S0 field.

    Parameters
    ----------
    voxel_xyz : ndarray, shape (n, 3)
        Voxel coordinates (any length unit; only relative positions matter).
    tile_of : ndarray of int, shape (n,)
        Tile of each voxel.
    k : ndarray, shape (n_tiles,)
        Voxels per tile.
    s0_tile : ndarray, shape (n_tiles,)
        Each tile's fitted S0 (the apparent intercept).
    sel_of : dict
        ``{edge: boolean selection of tiles}``.
    degree : int
        Degree of the log S0 surface (2: quadratic).

    Returns
    -------
    (dict, dict) or (None, None)
        ``{edge: kappa}``, the relative variance of S0 inside that edge's tiles (sum of
        squared deviations of S(x) / tile mean over the tiles, over their degrees of freedom),
        and ``{edge: its standard error}`` (delta method from the surface's coefficients, plus
        the spread of the surface noise's own contribution); ``(None, None)`` with fewer than
        ``_MIN_TILES_PER_COEF`` tiles per coefficient of the surface.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.stack(np.meshgrid(np.arange(16.0), np.arange(16.0), indexing="ij"), -1).reshape(-1, 2)
    >>> xyz = np.c_[xy, np.zeros(len(xy))]
    >>> tile = (xy[:, 0] // 4 * 4 + xy[:, 1] // 4).astype(int)
    >>> s_vox = np.exp(0.02 * xy[:, 0])  # a shading gradient of 2 % per voxel
    >>> k = np.bincount(tile).astype(float)
    >>> s0 = np.bincount(tile, weights=s_vox) / k
    >>> kap, se = shading_kappa(xyz, tile, k, s0, {4: np.ones(16, bool)})
    >>> bool(abs(kap[4] - 0.02**2 * 15 / 12 * 16 / 15) < 2e-5)  # (n^2 - 1) / 12 voxels^2 in x, 16 / 15 per dof
    True
    """
    xyz = np.asarray(voxel_xyz, dtype=np.float64)
    keep = np.ptp(xyz, axis=0) > 0  # a single slice: no z terms
    xyz = xyz[:, keep]
    centre, scale = xyz.mean(axis=0), np.maximum(np.ptp(xyz, axis=0) / 2, 1e-12)
    u = (xyz - centre) / scale
    nt = k.size
    # tile centroids and the log S0 surface fitted to the tiles, weighted by their voxels
    cen = np.stack([np.bincount(tile_of, weights=u[:, j], minlength=nt) for j in range(u.shape[1])], 1)
    cen /= np.maximum(k, 1)[:, None]
    ok = np.isfinite(s0_tile) & (s0_tile > 0) & (k > 0)
    a = _design(cen[ok], degree)
    if ok.sum() < _MIN_TILES_PER_COEF * a.shape[1]:  # too few tiles for the surface: the caller fits kappa
        return None, None
    w = np.sqrt(k[ok])
    aw = a * w[:, None]
    coef, *_ = np.linalg.lstsq(aw, np.log(s0_tile[ok]) * w, rcond=None)
    # the surface's own noise (tile S0 noise and what the tiles' R2 texture leaves in their intercepts)
    # adds its within-tile variance to kappa: its expectation, from the coefficients' covariance, is taken off
    res = np.log(s0_tile[ok]) * w - aw @ coef
    cov = np.linalg.pinv(aw.T @ aw) * float(res @ res) / (ok.sum() - a.shape[1])
    d = _design(u, degree)
    sv = np.exp(d @ coef)
    mean = np.bincount(tile_of, weights=sv, minlength=nt) / np.maximum(k, 1)
    x = sv / mean[tile_of]
    ss = np.bincount(tile_of, weights=(x - 1.0) ** 2, minlength=nt)
    dbar = np.stack([np.bincount(tile_of, weights=d[:, j], minlength=nt) for j in range(d.shape[1])], 1)
    dc = d - (dbar / np.maximum(k, 1)[:, None])[tile_of]  # log S0's design centred in its tile (first order)
    ss_noise = np.bincount(tile_of, weights=np.einsum("ij,jk,ik->i", dc, cov, dc), minlength=nt)
    dof = np.maximum(k - 1, 0.0)
    kappa, se = {}, {}
    for s, sel in sel_of.items():
        d_s = dof[sel].sum()
        if d_s <= 0:
            kappa[s], se[s] = 0.0, 0.0
            continue
        v = np.isin(tile_of, np.flatnonzero(sel))
        kappa[s] = float(max(ss[sel].sum() - ss_noise[sel].sum(), 0.0) / d_s)
        grad = 2.0 * (dc[v].T @ (dc[v] @ coef)) / d_s  # d kappa / d coef (log S0 to first order)
        noise = ss_noise[sel].sum() / d_s  # the surface noise's part, ~chi-square of (coefficients - 1) dof
        se[s] = float(np.sqrt(max(grad @ cov @ grad, 0.0) + 2.0 * noise**2 / max(a.shape[1] - 1, 1)))
    return kappa, se
