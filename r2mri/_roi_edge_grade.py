"""Rule 1's erosion sized by the contrast across the edge (issue 16, branch erosion).

Rule 1 of :func:`r2mri.roi.liver_roi` removes the candidate's edge within ``erode_mm`` (5 mm)
against partial volume and misregistration with other tissue. Kept, such an edge voxel reads
``f x (R2_out - R2_in)`` off for a fraction ``f`` of the outside tissue: the harm is in
proportion to the R2 contrast across the edge. On a patchy low-iron liver the grown candidate
also ends at low-iron liver the growing left out (coarse texture, 1 mg/g, SNR 20: the erosion
ring around those pieces was the largest part of the automatic ROI's selection error, branch
floorpiece), mostly not in narrow bays (:mod:`r2mri._roi_edge_bays`) but along wide left-out
regions; their R2 lies below the parenchymal floor as the spleen's and the viscera's do, so
neither R2 alone (branch bayfloor) nor the bays' geometry (baygeom) tells them apart.

:func:`contrast_ring` counts as inside, for the erosion only, the tissue outside the candidate
within the erosion width whose S0 looks like the candidate's (:data:`r2mri._roi_edge_bays.BAY_S0_SD`)
and whose local mean R2 lies within :data:`RING_CONTRAST` (relative) of the candidate's local mean
on the same window. The edge is eroded as before against tissue of another S0 (fat, muscle, bone)
and against liver-like tissue of a larger contrast (vessels, cysts; the viscera (13.2 s^-1 on the
phantom) at 0.5 mg/g (22.7 s^-1): 42 %; the spleen (16.4) at 1 mg/g (32.5): 50 %). Left-out
low-iron liver next to a low-iron part of the candidate reads within it. The ring never enters
the ROI: it only stops the erosion next to it.

Designs compared on the same fits (``benchmarks/erosion.py``, commit 5c3089f, benchmarks/README.md
section "erosion"): graded erosion along the below-floor bays only (1 or 2 voxels), a contrast gate
on those bays, and this ring at 20-50 %; the bays alone gained at most 0.25 % in LIC on the coarse
cell and 0.05 % on texture 4, the ring at 30 % 0.64 and 0.37 %.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["RING_CONTRAST", "contrast_ring"]

#: Largest relative difference of the local mean R2 of the liver-like tissue outside the candidate from
#: the candidate's for rule 1 to keep the edge against it [D: r2mri's choice (benchmarks/README.md,
#: "erosion"): 20 / 30 / 40 / 50 % took -0.24 / -0.64 / -0.84 / -0.86 % off the coarse 1 mg/g SNR 20
#: cell's selection error (8 livers) and let 4 / 10 / 15 / 18 more non-liver voxels in; at 0.5 mg/g
#: SNR 20 (roi_organs, seeds 1, 2) 30 % let 21 / 10 more non-liver voxels in and 40 % 43 / 20; 30 %
#: sits 12 points below the viscera's contrast at 0.5 mg/g (42 %); the local means' noise is a few %
#: at SNR 20 with one channel (estimated), so a few viscera voxels still pass].
RING_CONTRAST = 0.30
#: Fewest voxels on each side of the window for the local means to count.
_MIN_VOXELS = 10


def contrast_ring(cand: np.ndarray, logs: np.ndarray, tissue: np.ndarray, logr: np.ndarray, erode_mm: float,
                  voxel_mm: tuple[float, float], contrast: float = RING_CONTRAST, s0_sd: float = 3.0) -> np.ndarray:
    """Liver-like tissue outside ``cand`` within the erosion width whose local R2 is within ``contrast``
    (relative) of the candidate's local R2.

    Parameters
    ----------
    cand : ndarray of bool, shape (x, y, z)
        The grown (and extended) candidate.
    logs : ndarray
        High-passed log S0 (3x3 in-plane median; :class:`r2mri._roi_proposal.GrowthMaps`).
    tissue : ndarray of bool
        Tissue voxels.
    logr : ndarray
        3x3 in-plane median of log R2 (R2 in s^-1).
    erode_mm : float
        Rule 1's width: the ring is the in-plane disk of ``r = ceil(erode_mm / min(voxel_mm))`` voxels
        around ``cand``, and the local means are over in-plane squares of ``2 r + 1`` voxels (at least
        ``_MIN_VOXELS`` of the candidate and of the liver-like ring each).
    voxel_mm : (float, float)
        In-plane voxel size, mm.
    contrast : float
        Largest ``|mean_out - mean_in| / mean_in``.
    s0_sd : float
        Half-width of the S0 test in robust SDs of the candidate tissue's ``logs``
        (:data:`r2mri._roi_edge_bays.BAY_S0_SD`).

    Returns
    -------
    ndarray of bool
        Voxels outside ``cand`` that rule 1 counts as inside.

    Examples
    --------
    >>> cand = np.zeros((30, 40, 1), bool); cand[:, 10:30] = True
    >>> logr = np.log(np.where(np.arange(40) < 10, 26.0, np.where(np.arange(40) >= 30, 13.2, 32.0)))
    >>> logr = logr[None, :, None] * np.ones(cand.shape)
    >>> logs = 0.01 * (np.arange(30) % 3)[:, None, None] * np.ones(cand.shape)
    >>> ring = contrast_ring(cand, logs, np.ones(cand.shape, bool), logr, 5.0, (1.5, 1.5))
    >>> bool(ring[:, 7:10].all()), bool(ring[:, 30:].any())   # low-iron liver (-19 %) yes, viscera (-59 %) no
    (True, False)
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
    size, area = (2 * r + 1, 2 * r + 1, 1), float((2 * r + 1) ** 2)
    cin = c & fin
    rr0 = np.where(fin, rr, 0.0)
    n_out = ndimage.uniform_filter(like.astype(float), size, mode="constant") * area
    n_in = ndimage.uniform_filter(cin.astype(float), size, mode="constant") * area
    with np.errstate(invalid="ignore", divide="ignore"):
        m_out = ndimage.uniform_filter(rr0 * like, size, mode="constant") * area / n_out
        m_in = ndimage.uniform_filter(rr0 * cin, size, mode="constant") * area / n_in
        ok = like & (n_out >= _MIN_VOXELS - 0.5) & (n_in >= _MIN_VOXELS - 0.5) & (np.abs(m_in - m_out) <= contrast * m_in)
    out[box] = ok
    return out
