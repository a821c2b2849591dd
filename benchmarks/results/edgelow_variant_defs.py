"""Branch edgelow: the experimental variants of the edge erosion's "inside" (benchmarks/results/edgelow_variants.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage


def candidate_holes(cand: np.ndarray) -> np.ndarray:
    """In-plane holes of ``cand`` (slice-by-slice fill minus ``cand``)."""
    out = np.zeros_like(cand)
    for k in np.flatnonzero(cand.any(axis=(0, 1))):
        out[:, :, k] = ndimage.binary_fill_holes(cand[:, :, k]) & ~cand[:, :, k]
    return out


def low_side_pieces_mask(cand: np.ndarray, maps: Any, floor_ext: float, grow_k: float,
                         pdff: np.ndarray | None) -> np.ndarray:
    """The pieces :func:`r2mri._roi_low_side.check_low_side` counts as low-side left-out liver."""
    from ._roi_grow import _BAND_CAP_R2, _BAND_CAP_S0, _BAND_FLOOR_S0, _EDGE_FLOOR, _MAD_TO_SD
    from ._roi_low_side import DEPTH_VOXELS, LOW_QUANTILE, S0_CORE_SD
    from ._roi_parenchyma import _extend_once
    from ._roi_patches import same_tissue

    out = np.zeros(cand.shape, dtype=bool)
    region = cand & maps.tissue
    if np.count_nonzero(region) < 10:
        return out
    loose, _, _ = _extend_once(cand, maps.tissue, maps.logr, maps.logs, maps.steps, floor_ext, grow_k,
                               (_BAND_FLOOR_S0, _BAND_CAP_S0), _BAND_CAP_R2, _EDGE_FLOOR, _MAD_TO_SD, None,
                               np.zeros(cand.shape, dtype=bool))
    if loose is None:
        return out
    vs = maps.logs[region]
    med_s = float(np.median(vs))
    sd_s = _MAD_TO_SD * float(np.median(np.abs(vs - med_s)))
    with np.errstate(invalid="ignore"):
        core = loose & (np.abs(maps.logs - med_s) <= S0_CORE_SD * sd_s)
    loose = ndimage.binary_dilation(region, ndimage.generate_binary_structure(3, 1), iterations=DEPTH_VOXELS,
                                    mask=core | region)
    low = float(np.quantile(maps.logr[region], LOW_QUANTILE))
    pieces, n = ndimage.label(loose & ~region, structure=ndimage.generate_binary_structure(3, 1))
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    for p in np.flatnonzero(sizes[1:] >= 10) + 1:
        piece = pieces == p
        if float(np.median(maps.logr[piece])) > low:
            continue
        if same_tissue(piece, region, maps.logs, maps.logr, pdff)[0]:
            out |= piece
    return out & ~cand


def liver_like_ring(cand: np.ndarray, maps: Any, floor_ext: float, width: int) -> np.ndarray:
    """Tissue within ``width`` in-plane voxels outside ``cand`` in the candidate's S0 core
    (1 robust SD of high-passed log S0) with R2 at or above ``floor_ext`` and at or below
    the candidate's median R2 (its low side)."""
    from ._roi_grow import _MAD_TO_SD
    from ._roi_low_side import S0_CORE_SD

    region = cand & maps.tissue
    vs = maps.logs[region]
    med_s = float(np.median(vs))
    sd_s = _MAD_TO_SD * float(np.median(np.abs(vs - med_s)))
    med_r = float(np.median(maps.logr[region]))
    ring = ndimage.binary_dilation(cand, np.ones((3, 3, 1), bool), iterations=width) & ~cand
    with np.errstate(invalid="ignore"):
        return ring & maps.tissue & (np.abs(maps.logs - med_s) <= S0_CORE_SD * sd_s) & (
            maps.logr >= np.log(floor_ext)) & (maps.logr <= med_r)


def _a(ctx):
    from ._roi_patches import pdff_map
    if ctx["maps"] is None:
        return None
    kw = ctx["ext_kw"]
    return low_side_pieces_mask(ctx["cand"], ctx["maps"], kw["floor_ext"], kw["grow_k"],
                                pdff_map(ctx["fit"], ctx["cand"].shape))


def _b(ctx):
    return candidate_holes(ctx["cand"])


def _c(ctx):
    if ctx["maps"] is None:
        return None
    return liver_like_ring(ctx["cand"], ctx["maps"], ctx["ext_kw"]["floor_ext"], 4)


def _ab(ctx):
    a = _a(ctx)
    return _b(ctx) if a is None else a | _b(ctx)


def _true_liver(ctx):  # oracle: left-out true liver counts as inside (upper bound of what any variant can do)
    return ctx["liver"] & ~ctx["cand"]


VARIANTS = {"A_low_side": _a, "B_holes": _b, "C_liver_like_ring": _c, "AB": _ab, "oracle_liver": _true_liver}


def closing_bays(cand: np.ndarray, radius_vox: int) -> np.ndarray:
    """Voxels an in-plane closing of ``cand`` by a disk of ``radius_vox`` adds (narrow bays and channels)."""
    ii, jj = np.mgrid[-radius_vox:radius_vox + 1, -radius_vox:radius_vox + 1]
    disk = (ii**2 + jj**2 <= radius_vox**2)[:, :, None]
    pad = radius_vox + 1
    c = np.pad(cand, ((pad, pad), (pad, pad), (0, 0)))
    closed = ndimage.binary_closing(c, structure=disk)[pad:-pad, pad:-pad]
    return closed & ~cand


def _diag(ctx):
    from ._roi_grow import _MAD_TO_SD
    cand, maps, labels = ctx["cand"], ctx["maps"], ctx["labels"]
    region = cand & maps.tissue
    vs = maps.logs[region]
    med_s = float(np.median(vs))
    sd_s = _MAD_TO_SD * float(np.median(np.abs(vs - med_s)))
    ring = ndimage.binary_dilation(cand, np.ones((3, 3, 1), bool), iterations=4) & ~cand
    print("floor_ext", ctx["ext_kw"]["floor_ext"], "cand median R2", float(np.exp(np.median(maps.logr[region]))),
          "sd_s", sd_s)
    for lab in np.unique(labels[ring]):
        m = ring & (labels == lab)
        z = (maps.logs[m] - med_s) / sd_s
        r = np.exp(maps.logr[m])
        print(f"label {lab}: n {m.sum()} tissue {maps.tissue[m].mean():.2f} z-S0 q10/50/90 "
              f"{np.nanpercentile(z, [10, 50, 90]).round(2)} R2 q10/50/90 {np.nanpercentile(r, [10, 50, 90]).round(1)}")
    return None


def _d(ctx):
    return closing_bays(ctx["cand"], 4)


def _ad(ctx):
    a = _a(ctx)
    return _d(ctx) if a is None else a | _d(ctx)


VARIANTS.update({"D_closing4": _d, "AD": _ad})


def _s0_like(ctx, zmax):
    from ._roi_grow import _MAD_TO_SD
    cand, maps = ctx["cand"], ctx["maps"]
    region = cand & maps.tissue
    vs = maps.logs[region]
    med_s = float(np.median(vs))
    sd_s = _MAD_TO_SD * float(np.median(np.abs(vs - med_s)))
    with np.errstate(invalid="ignore"):
        return maps.tissue & (np.abs(maps.logs - med_s) <= zmax * sd_s)


def _e(ctx):
    if ctx["maps"] is None:
        return None
    return closing_bays(ctx["cand"], 4) & _s0_like(ctx, 3.0)


def _d6(ctx):
    return closing_bays(ctx["cand"], 6)


def _e6(ctx):
    if ctx["maps"] is None:
        return None
    return closing_bays(ctx["cand"], 6) & _s0_like(ctx, 3.0)


VARIANTS = {"A_low_side": _a, "C_liver_like_ring": _c, "D_closing4": _d, "E_closing4_s0": _e,
            "D_closing6": _d6, "E_closing6_s0": _e6, "oracle_liver": _true_liver}


def _f(ctx):
    return closing_bays(ctx["cand"], 4), 1.0  # 1 mm: removes the voxels 8-adjacent... (edge-adjacent at 1.5 mm)


VARIANTS = {"D_closing4": _d, "F_closing4_rim": _f, "E_closing4_s0": _e}


def _g(ctx):
    e = _e(ctx)
    return None if e is None else (e, 1.0)


VARIANTS = {"E_closing4_s0": _e, "G_closing4_s0_rim": _g, "F_closing4_rim": _f}
