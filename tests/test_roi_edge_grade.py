"""Rule 1's erosion sized by the contrast across the edge (r2mri._roi_edge_grade, branch erosion).

Synthetic maps (no fit, well under a second), 1.5 mm voxels as on the autogrid bodies: a liver candidate
at 32 s^-1 (1 mg/g) whose left edge meets low-iron liver the growing left out (26 s^-1, -19 %, the same
S0) over a wide region (not a bay: 20 voxels), and whose right edge meets an organ with the liver's S0
at low iron (viscera, 13.2 s^-1 on the phantom: -59 %). Measured R2 = true + noise of SD 7 s^-1 (a voxel's
R2 SE at SNR 20 with one channel); the ring test reads the 3x3 in-plane median of it (as the growing's
``logr``; log S0 likewise), averaged over a 9 x 9 window: its noise is ~0.5-1 s^-1, 2-3 % of 32 s^-1, far
inside the margins between the two contrasts (19 %, 59 %) and the 30 % limit. Against the fat above and
below (S0 far below) rule 1 erodes as before. Fails on main (the erosion takes 3 columns along both edges).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from r2mri import _roi_edge_grade as grade
from r2mri._roi_rules import edge_erosion

SHAPE = (60, 80, 3)
VOX = 1.5
ERODE_MM = 5.0


def _case(seed: int):
    rng = np.random.default_rng(seed)
    true = np.full(SHAPE, 32.0)
    cand = np.zeros(SHAPE, bool)
    cand[5:55, 25:55] = True
    true[:, :25] = 26.0                          # left-out low-iron liver (left)
    true[:, 55:] = 13.2                          # viscera with the liver's S0 at low iron (right)
    logs = 0.03 * rng.standard_normal(SHAPE)
    logs[:5] -= 1.0                              # fat above and below: S0 far below the liver's
    logs[55:] -= 1.0
    logs = ndimage.median_filter(logs, size=(3, 3, 1))   # as the growing's maps (3x3 in-plane median)
    r2 = true + 7.0 * rng.standard_normal(SHAPE)
    logr = np.log(ndimage.median_filter(np.clip(r2, 1.0, None), size=(3, 3, 1)))
    return cand, logs, logr


def _near(cand, cols):
    """Candidate voxels within the erosion width of the columns ``cols`` (rows 10-44: away from the fat)."""
    m = np.zeros(SHAPE, bool)
    m[10:45, cols] = True
    return m & cand


def test_the_edge_is_kept_against_low_contrast_liver_and_eroded_against_viscera():
    for seed in (0, 1, 2):
        cand, logs, logr = _case(seed)
        ring = grade.contrast_ring(cand, logs, np.ones(SHAPE, bool), logr, ERODE_MM, (VOX, VOX), grade.RING_CONTRAST)
        kept = edge_erosion(cand, VOX, VOX, ERODE_MM, dark_edge=ring)
        on_main = edge_erosion(cand, VOX, VOX, ERODE_MM)
        left, right = _near(cand, slice(25, 28)), _near(cand, slice(52, 55))
        # main erodes 3 columns (centres within 5 mm + half a voxel of the outside centre) along both edges
        assert not (on_main & left).any() and not (on_main & right).any()
        # the left-out liver (19 % contrast) counts as inside: its edge is kept
        assert (kept & left).sum() > 0.95 * left.sum(), (seed, int((kept & left).sum()), int(left.sum()))
        # the viscera (59 % contrast, the liver's S0) do not: the partial-volume edge against them still goes,
        # and no voxel of the fat (S0 test) or of the viscera counts as inside
        assert not (kept & right).any(), (seed, int((kept & right).sum()))
        assert not ring[:, 55:].any() and not ring[:5].any() and not ring[55:].any()
