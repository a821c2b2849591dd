"""Rule 1 keeps the candidate's edge along narrow bays of left-out liver (r2mri._roi_edge_bays, branch edgelow).

Synthetic maps (no fit, well under a second), 1.5 mm voxels as on the autogrid bodies: a liver
candidate at 32 s^-1 (1 mg/g) with a low-iron patch, a dip of R2 across a vertical band
(32 - 14 exp(-d^2 / 18) s^-1, d the distance in voxels from the band's centre line) whose
lowest 3 columns (R2 < 22 s^-1) the growing left out as a channel 50 voxels deep from the
candidate's top edge, and a notch of another tissue (high-passed log S0 0.5 below the liver's,
~17 robust SDs) in its right edge. Measured R2 = true + noise of SD 7 s^-1 (a voxel's R2 SE at
SNR 20 with one channel). Rule 1 (5 mm) on main erodes 3 columns of the patch's low side on each
side of the channel: the ROI's mean R2 reads 1.2 s^-1 (4 %) high, about 13 SEs of its noise.
With the channel counted as inside, the ROI's mean R2 is the truth (the mean true R2 of what
rule 1 keeps of the candidate when it erodes the true outline, candidate and channel) within
4 SEs of the noise of a mean over the ROI (7 / sqrt(n) s^-1) plus what the bays' geometry
shifts (the closing does not fill the channel's mouth; on the truth, 0.02-0.08 s^-1), and
the edge against the other tissue is still eroded.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from r2mri._roi_edge_bays import liver_like_bays
from r2mri._roi_rules import edge_erosion

SHAPE = (80, 60, 3)
VOX = 1.5
ERODE_MM = 5.0


def _case(seed: int):
    rng = np.random.default_rng(seed)
    jj = np.arange(SHAPE[1])[None, :, None] * np.ones(SHAPE)
    ii = np.arange(SHAPE[0])[:, None, None] * np.ones(SHAPE)
    true = np.full(SHAPE, 32.0)
    dip = (ii < 50) & (jj < 36)
    true[dip] = (32.0 - 14.0 * np.exp(-((jj - 18.0) ** 2) / 18.0))[dip]
    cand = np.zeros(SHAPE, bool)
    cand[:, :36] = True
    cand[:50, 17:20] = False                  # the low-iron channel left out by the growing
    notch = (ii >= 60) & (ii < 64) & (jj >= 32) & (jj < 36)
    cand[notch] = False                        # another organ's notch in the right edge
    logs = 0.03 * rng.standard_normal(SHAPE)
    logs[notch] -= 0.5
    logs[:, 36:] -= 1.0                        # fat / other tissue beyond the right edge
    r2 = true + 7.0 * rng.standard_normal(SHAPE)
    return true, r2, cand, logs, notch


def test_the_erosion_keeps_the_edge_along_a_left_out_low_iron_channel():
    for seed in (0, 1, 2):
        true, r2, cand, logs, notch = _case(seed)
        bays = liver_like_bays(cand, logs, np.ones(SHAPE, bool), ERODE_MM, (VOX, VOX))
        # the truth: the candidate's voxels that rule 1 keeps when the liver's true outline (candidate and
        # channel) is eroded, as with a user mask of the outline
        outline = cand.copy()
        outline[:50, 17:20] = True
        truth = float(true[edge_erosion(outline, VOX, VOX, ERODE_MM) & cand].mean())
        on_main = edge_erosion(cand, VOX, VOX, ERODE_MM)
        fixed = edge_erosion(cand, VOX, VOX, ERODE_MM, dark_edge=bays)
        # what the bays' own geometry shifts (the channel's mouth at the outer edge), on the truth
        geometry = abs(float(true[fixed].mean()) - truth)
        assert geometry < 0.1, geometry
        n = int(np.count_nonzero(fixed))
        tol = 4.0 * 7.0 / np.sqrt(n) + geometry
        # main: the 3 columns on each side of the channel go, the ROI reads ~1.2 s^-1 (4 %, ~13 noise SEs) high
        assert float(r2[on_main].mean()) - truth > 2 * tol, (float(r2[on_main].mean()), truth)
        assert abs(float(r2[fixed].mean()) - truth) < tol, (float(r2[fixed].mean()), truth, tol)
        # the channel is a bay; the other organ's notch is not, and the edge along it is still eroded
        # (a channel voxel whose S0 noise is beyond 3 SDs, 0.3 % of them, stays out)
        assert bays[5:50, 17:20].mean() > 0.98 and not bays[notch].any()
        to_notch = np.stack([ndimage.distance_transform_edt(~notch[:, :, k], sampling=(VOX, VOX))
                             for k in range(SHAPE[2])], axis=-1)
        near_notch = cand & (to_notch - 0.5 * VOX < ERODE_MM)
        assert near_notch.any() and not (fixed & near_notch).any()


def test_a_bay_below_the_parenchymal_floor_is_not_counted():
    # the spleen (16.4 s^-1 on the phantom) has the liver's S0 at low iron: only its R2, pooled over the bay
    # (median of ~450 voxels of SD 7 s^-1: SE ~0.4 s^-1), tells it from low-iron liver (floor 18.0 s^-1)
    for seed in (0, 1, 2):
        true, r2, cand, logs, notch = _case(seed)
        rng = np.random.default_rng(seed + 10)
        for bay_r2, counted in ((16.4, False), (21.0, True)):
            r2[:50, 17:20] = bay_r2 + 7.0 * rng.standard_normal((50, 3, SHAPE[2]))
            bays = liver_like_bays(cand, logs, np.ones(SHAPE, bool), ERODE_MM, (VOX, VOX), r2_per_s=r2,
                                   floor_r2_per_s=18.0)
            assert bool(bays[5:50, 17:20].any()) is counted, (bay_r2, int(bays.sum()))
