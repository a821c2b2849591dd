"""Narrow left-out bays of liver-like tissue count as inside for the edge erosion (rule 1; branch edgelow).

Rule 1 of :func:`r2mri.roi.liver_roi` removes the voxels within ``erode_mm`` (5 mm) of the
candidate's in-plane edge: the partial-volume edge against other tissue. A grown candidate
on a patchy low-iron liver does not end only at other tissue: it also ends at low-R2 liver
that the growing and the extension left out (the band and the floor's noise test of
:func:`r2mri._roi_evidence.above_floor`), in narrow bays and channels between the pieces it
took. There the erosion removes a further 5 mm of the low side of every left-out patch. On
the coarse-texture livers of ``benchmarks.autogrid`` at 1 mg/g and SNR 20 (SD 0.4 in log LIC
over 8 voxels, cell 8, 1 channel, k 5000-5014 even, 8 livers) 64 % of the eroded liver
voxels had left-out liver as their nearest outside voxel (35 % another organ, 1.4 % a vessel,
none a hole: the candidate is filled), their mean true R2 was 3.8 % below the liver's, and
the erosion took the selection error of the pooled liver voxels from +1.58 +- 0.13 %
(no erosion) to +3.46 +- 0.58 % (``benchmarks/results/edgelow-variants.log``).

:func:`liver_like_bays` finds those bays: the voxels an in-plane closing of the candidate
adds (a disk of radius ``ceil(erode_mm / voxel)`` voxels: gaps up to about twice the erosion
width, concavities of the same size), kept where the tissue looks like the candidate's by its
high-passed log S0 (within :data:`BAY_S0_SD` robust SDs of the candidate tissue's median;
muscle and bone lie 6-16 SDs below on the phantom, the left-out liver within 3) and, per
face-connected bay, where the median voxel R2 is at or above the parenchymal floor (the spleen
and viscera have the liver's S0 at low iron; the test costs 40 % of the bays' gain on cells 8 / 9,
without it spleen and viscera entered a 0.5 mg/g ROI, benchmarks/README.md).
Rule 1 then counts them as inside (as :func:`r2mri._roi_iron.erosion_inside` does for the
dark edge), so the candidate keeps its edge there; the edge against everything else is
eroded as before. The bays themselves stay out of the ROI (the candidate is not changed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ._roi_edge_grade import RING_CONTRAST, contrast_ring

__all__ = ["BAY_S0_SD", "BAY_MIN_VOXELS", "liver_like_bays", "with_liver_like_bays"]

#: Half-width of the S0 test of a bay voxel, in robust SDs of the candidate tissue's high-passed
#: log S0 [D: r2mri's choice; coarse 1 mg/g SNR 20 livers (module docstring): left-out liver in
#: the 4-voxel ring at z -2.6..+1.1 (10th-90th percentile), muscle -12..-7, bone -16..-5, viscera
#: -5.5..-0.8; with 3 the bays kept out 1,260 of 1,261 muscle voxels on k 5015 and the selection
#: error was +2.25 +- 0.46 % against +2.07 +- 0.43 % with no S0 test].
BAY_S0_SD = 3.0
#: Fewest voxels with a finite R2 for a bay's median R2 to count against the floor [D: r2mri's choice,
#: as ``_roi_low_side``'s pieces (>= 10)].
BAY_MIN_VOXELS = 10


def _disk(radius_vox: int) -> np.ndarray:
    ii, jj = np.mgrid[-radius_vox:radius_vox + 1, -radius_vox:radius_vox + 1]
    return (ii**2 + jj**2 <= radius_vox**2)[:, :, None]


def liver_like_bays(cand: np.ndarray, logs: np.ndarray, tissue: np.ndarray, erode_mm: float,
                    voxel_mm: tuple[float, float], s0_sd: float = BAY_S0_SD, r2_per_s: np.ndarray | None = None,
                    floor_r2_per_s: float | None = None) -> np.ndarray:
    """Voxels outside ``cand`` that an in-plane closing of it adds and whose tissue looks like its own.

    Parameters
    ----------
    cand : ndarray of bool, shape (x, y, z)
        The grown (and extended) candidate.
    logs : ndarray
        High-passed log S0 (3x3 in-plane median; :class:`r2mri._roi_proposal.GrowthMaps`).
    tissue : ndarray of bool
        Tissue voxels (status OK, S0 above the background).
    erode_mm : float
        Rule 1's width; the closing's disk has ``ceil(erode_mm / min(voxel_mm))`` voxels radius.
    voxel_mm : (float, float)
        In-plane voxel size, mm.
    s0_sd : float
        Half-width of the S0 test, robust SDs.
    r2_per_s, floor_r2_per_s : ndarray and float, optional
        Voxel R2 and the parenchymal floor: a bay (face-connected piece) counts only when it has
        :data:`BAY_MIN_VOXELS` voxels with a finite R2 and their median is at or above the floor
        (the spleen, 16.4 s^-1 on the phantom, and the viscera, 13.2, have the liver's S0 at low
        iron: ``tests/test_roi_evidence.py``, 0.5 mg/g SNR 20 8 channels at 4 mm voxels, 37 -> 86
        spleen / viscera voxels in the ROI without this test).

    Returns
    -------
    ndarray of bool
        The bays (never in ``cand``).

    Examples
    --------
    >>> cand = np.zeros((30, 30, 1), bool); cand[5:25, 5:25] = True
    >>> cand[5:18, 16:18] = False   # a left-out channel 2 voxels wide of liver-like tissue
    >>> cand[5:18, 9:11] = False    # and one of another tissue (S0 far below the candidate's)
    >>> logs = 0.01 * (np.arange(30) % 3)[:, None, None] * np.ones(cand.shape); logs[:, 9:11] = -5.0
    >>> bays = liver_like_bays(cand, logs, np.ones(cand.shape, bool), 5.0, (1.5, 1.5))
    >>> int(bays.sum()), bool(bays[6:18, 16:18].all()), bool(bays[:, 9:11].any())
    (24, True, False)
    """
    from ._roi_grow import _MAD_TO_SD, _box

    out = np.zeros(cand.shape, dtype=bool)
    region = cand & tissue
    if erode_mm <= 0 or np.count_nonzero(region) < 10:
        return out
    r = int(np.ceil(erode_mm / min(voxel_mm) - 1e-9))
    box = _box(cand, r + 1)
    c = np.pad(cand[box], ((r + 1, r + 1), (r + 1, r + 1), (0, 0)))
    closed = ndimage.binary_closing(c, structure=_disk(r))[r + 1:-(r + 1), r + 1:-(r + 1)]
    vs = logs[region]
    med = float(np.median(vs))
    sd = _MAD_TO_SD * float(np.median(np.abs(vs - med)))
    with np.errstate(invalid="ignore"):
        like = tissue[box] & (np.abs(logs[box] - med) <= s0_sd * sd)
    out[box] = closed & ~cand[box] & like
    if r2_per_s is not None and floor_r2_per_s is not None and out.any():
        pieces, n = ndimage.label(out, structure=ndimage.generate_binary_structure(3, 1))
        r2 = np.asarray(r2_per_s, dtype=np.float64)
        fin = np.isfinite(r2)
        for p in range(1, n + 1):
            piece = pieces == p
            vals = r2[piece & fin]
            if vals.size < BAY_MIN_VOXELS or float(np.median(vals)) < floor_r2_per_s:
                out[piece] = False
    return out


def with_liver_like_bays(cand: np.ndarray, maps: Any, dark_edge: np.ndarray | None, erode_mm: float,
                         voxel_mm, options: dict[str, Any], r2_per_s: np.ndarray | None = None,
                         floor_r2_per_s: float | None = None) -> np.ndarray | None:
    """The hook of :func:`r2mri._roi_proposal.choose_candidate` (after the automatic self-check,
    whose high-iron fallback may replace the candidate): ``dark_edge`` (rule 1's extra
    inside, :func:`r2mri._roi_iron.erosion_inside`) joined by :func:`liver_like_bays` of the
    extended candidate and by the liver-like tissue within the erosion width whose local R2 lies
    within :data:`r2mri._roi_edge_grade.RING_CONTRAST` of the candidate's
    (:func:`r2mri._roi_edge_grade.contrast_ring`, branch erosion); records ``options["edge_bays"]``
    and ``options["edge_ring"]`` (the ring's voxels that are not bays). None stays None (empty candidate)."""
    if dark_edge is None or not cand.any():
        return dark_edge
    vox = (float(voxel_mm[0]), float(voxel_mm[1]))
    bays = liver_like_bays(cand, maps.logs, maps.tissue, erode_mm, vox, r2_per_s=r2_per_s,
                           floor_r2_per_s=floor_r2_per_s)
    options["edge_bays"] = int(np.count_nonzero(bays))
    ring = contrast_ring(cand, maps.logs, maps.tissue, maps.logr, erode_mm, vox, RING_CONTRAST, BAY_S0_SD)
    options["edge_ring"] = int(np.count_nonzero(ring & ~bays))
    return dark_edge | bays | ring
