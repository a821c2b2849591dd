"""Rule 1's erosion next to liver-like bays below the parenchymal floor, graded (issue 16, branch erosion).

Rule 1 of :func:`r2mri.roi.liver_roi` removes the candidate's edge within ``erode_mm`` (5 mm)
against partial volume and misregistration with other tissue. :mod:`r2mri._roi_edge_bays` keeps
the edge along narrow bays of left-out tissue whose S0 looks like the candidate's and whose median
R2 is at or above the parenchymal floor. A bay below the floor is low-iron liver (patches under
~0.3 mg/g on coarse 1 mg/g livers) or viscera / spleen / a vessel, and neither its R2 (branch
bayfloor) nor its geometry (branch baygeom) tells which. The harm of keeping an edge is its
partial-volume error, ``f x (R2_out - R2_in)`` for a voxel with a fraction ``f`` of the outside
tissue: this module sizes the erosion next to a below-floor bay by that contrast instead of
deciding what the bay is. The designs (:data:`DESIGNS`, compared in ``benchmarks/erosion.py``):

- ``"full"``: the full erosion next to every below-floor bay (edgelow's rule).
- ``"inside"``: the bay counts as inside (no erosion next to it; the reference: edgelow's rule
  without its floor test).
- ``"rim1"`` / ``"rim2"``: the bay counts as inside for the erosion and only the candidate's
  voxels within 1 (2) voxels of it go (the partial-volume voxel itself).
- ``"rim1_lo"``: ``"rim1"`` only for bays whose median R2 is at least :data:`BAY_R2_LO_PER_S`
  (vessel / cyst bays keep the full erosion).
- ``"contrast"``: the bay counts as inside (no erosion) where its median R2 lies within
  :data:`BAY_CONTRAST` (fraction) below the median R2 of the candidate within the erosion width
  of it; other below-floor bays keep the full erosion.
- ``"contrast_rim1"``: the same, with the 1-voxel rim eroded.
- ``"ringNN"``: not bays but every liver-like (S0) tissue voxel outside the candidate within the
  erosion width counts as inside where the local mean R2 of such voxels (3x3-median R2, window of
  the erosion's width) lies within NN % of the candidate's local mean (:func:`contrast_ring`).

:func:`graded_codes` codes the bays for rule 1: 1 = inside, ``1 + n`` = inside with the
candidate's voxels within ``n`` voxels of it eroded (:func:`rim_of_graded`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["BAY_CONTRAST", "BAY_R2_LO_PER_S", "RING_CONTRAST", "contrast_ring", "DESIGN", "DESIGNS", "graded_codes", "rim_of_graded"]

DESIGNS = ("full", "inside", "rim1", "rim2", "rim1_lo", "contrast", "contrast_rim1", "ring20", "ring30", "ring40", "ring50")
#: The library's design (module docstring).
DESIGN = "ring30"
#: Lowest median R2 of a below-floor bay that ``"rim1_lo"`` grades, s^-1 [D: r2mri's choice; branch
#: baygeom's 119 below-floor bays: vessel bays 5.3-8.3 s^-1, liver bays 10.4-17.8].
BAY_R2_LO_PER_S = 10.0
#: Largest relative contrast ``(R2_in - R2_bay) / R2_in`` of a bay that ``"contrast"`` counts as inside
#: [D: r2mri's choice, compared in benchmarks/erosion.py].
BAY_CONTRAST = 0.25
#: Largest relative contrast of the ring design's local means (r2mri's choice, see DESIGN).
RING_CONTRAST = 0.30


def _rim_and_gate(design: str) -> tuple[int, str]:
    if design.startswith("ring"):
        return -1, ""
    return {"full": (-1, ""), "inside": (0, ""), "rim1": (1, ""), "rim2": (2, ""), "rim1_lo": (1, "lo"),
            "contrast": (0, "contrast"), "contrast_rim1": (1, "contrast")}[design]


def _inside_median(piece: np.ndarray, cand: np.ndarray, r2: np.ndarray, radius_vox: int) -> float:
    """Median finite R2 of the candidate's voxels within ``radius_vox`` (in-plane disk) of ``piece``."""
    sl = ndimage.find_objects(piece.astype(np.int8))[0]
    box = tuple(slice(max(s.start - radius_vox, 0), s.stop + radius_vox) for s in sl[:2]) + (sl[2],)
    ii, jj = np.mgrid[-radius_vox:radius_vox + 1, -radius_vox:radius_vox + 1]
    disk = (ii**2 + jj**2 <= radius_vox**2)[:, :, None]
    near = ndimage.binary_dilation(piece[box], structure=disk) & cand[box]
    vals = r2[box][near]
    vals = vals[np.isfinite(vals)]
    return float(np.median(vals)) if vals.size else float("nan")


def graded_codes(cand: np.ndarray, below: list[tuple[np.ndarray, float]], r2_per_s: np.ndarray,
                 radius_vox: int, design: str | None = None) -> np.ndarray | None:
    """Rule 1's codes for the below-floor bays ``below`` (``(piece, median R2)``) under ``design``.

    Returns None (no bay graded) or a uint8 array: 0 = not graded, 1 = inside, ``1 + n`` = inside with
    the candidate's voxels within ``n`` voxels eroded.

    Examples
    --------
    >>> cand = np.zeros((20, 20, 1), bool); cand[2:18, 2:12] = True
    >>> bay = np.zeros_like(cand); bay[5:15, 12:14] = True
    >>> r2 = np.where(cand, 20.0, 16.0)
    >>> int(graded_codes(cand, [(bay, 16.0)], r2, 4, "rim1").max()), graded_codes(cand, [(bay, 16.0)], r2, 4, "full")
    (2, None)
    >>> int(graded_codes(cand, [(bay, 16.0)], r2, 4, "contrast").max())   # 20 %: within 25 %
    1
    """
    rim, gate = _rim_and_gate(DESIGN if design is None else design)
    if rim < 0 or not below:
        return None
    codes = np.zeros(cand.shape, dtype=np.uint8)
    r2 = np.asarray(r2_per_s, dtype=np.float64)
    for piece, median in below:
        if gate == "lo" and not median >= BAY_R2_LO_PER_S:
            continue
        if gate == "contrast":
            inside = _inside_median(piece, cand, r2, radius_vox)
            if not (inside > 0 and (inside - median) / inside <= BAY_CONTRAST):
                continue
        codes[piece] = 1 + rim
    return codes if codes.any() else None


def rim_of_graded(cand: np.ndarray, inside: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Candidate voxels that rule 1 erodes next to graded bays (``inside`` coded by :func:`graded_codes`):
    within ``n`` voxels (distance from the voxel centre to the bay's edge, as rule 1 measures) of a bay
    coded ``1 + n``.

    Examples
    --------
    >>> cand = np.zeros((12, 12, 1), bool); cand[1:11, 1:6] = True
    >>> codes = np.zeros((12, 12, 1), np.uint8); codes[3:8, 6:8] = 2
    >>> int(rim_of_graded(cand, codes, 1.5, 1.5).sum())   # the column next to the bay, and its 2 diagonals
    7
    """
    out = np.zeros(cand.shape, dtype=bool)
    if inside.dtype != np.uint8:
        return out
    for code in np.unique(inside[inside >= 2]):
        width_mm = (int(code) - 1) * min(dx, dy)
        for k in np.flatnonzero((inside == code).any(axis=(0, 1))):
            dist = ndimage.distance_transform_edt(inside[:, :, k] != code, sampling=(dx, dy))
            out[:, :, k] |= cand[:, :, k] & (dist - 0.5 * min(dx, dy) < width_mm)
    return out


def contrast_ring(cand: np.ndarray, logs: np.ndarray, tissue: np.ndarray, logr: np.ndarray, erode_mm: float,
                  voxel_mm: tuple[float, float], contrast: float, s0_sd: float = 3.0) -> np.ndarray:
    """Liver-like tissue outside ``cand`` within the erosion width whose local R2 is within ``contrast``
    (relative) of the candidate's local R2 (design ``"ringNN"``, module docstring).

    ``logr``: 3x3 in-plane median of log R2; the local means are over an in-plane square of
    ``2 r + 1`` voxels (``r = ceil(erode_mm / voxel)``) and need at least 10 voxels on each side.
    """
    from ._roi_grow import _MAD_TO_SD, _box

    out = np.zeros(cand.shape, dtype=bool)
    region = cand & tissue
    if erode_mm <= 0 or np.count_nonzero(region) < 10:
        return out
    r = int(np.ceil(erode_mm / min(voxel_mm) - 1e-9))
    box = _box(cand, r + 1)
    c = cand[box]
    ii, jj = np.mgrid[-r:r + 1, -r:r + 1]
    ring = ndimage.binary_dilation(c, structure=(ii**2 + jj**2 <= r**2)[:, :, None]) & ~c
    vs = logs[region]
    med = float(np.median(vs))
    sd = _MAD_TO_SD * float(np.median(np.abs(vs - med)))
    rr = np.exp(logr[box])
    fin = np.isfinite(rr)
    with np.errstate(invalid="ignore"):
        like = ring & tissue[box] & (np.abs(logs[box] - med) <= s0_sd * sd) & fin
    size = (2 * r + 1, 2 * r + 1, 1)
    cin = c & fin
    rr0 = np.where(fin, rr, 0.0)
    n_out = ndimage.uniform_filter(like.astype(float), size, mode="constant") * (2 * r + 1) ** 2
    n_in = ndimage.uniform_filter(cin.astype(float), size, mode="constant") * (2 * r + 1) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        m_out = ndimage.uniform_filter(rr0 * like, size, mode="constant") * (2 * r + 1) ** 2 / n_out
        m_in = ndimage.uniform_filter(rr0 * cin, size, mode="constant") * (2 * r + 1) ** 2 / n_in
        ok = like & (n_out >= 9.5) & (n_in >= 9.5) & (np.abs(m_in - m_out) <= contrast * m_in)
    out[box] = ok
    return out
