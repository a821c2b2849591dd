"""The measured difference between the liver's and the ROI's mean voxel R2 (issue 16, branch coarsecov).

The ROI-sampling SE (:mod:`r2mri._roi_sampling`) treats the liver left out of the ROI (the
eroded edge, the rim around vessels) as a random sample of a stationary texture. The ROI
rules do not leave voxels out at random: around a patch the rules call non-parenchyma, and
in a candidate that skips low-R2 tissue, the left-out voxels are correlated with the
texture. On autogrid's coarse livers (SD 0.4 in log LIC, texture scale 8 voxels, 1 mg/g,
SNR 100, 1 and 8 channels, 20 livers) the liver's mean true R2 was below the ROI's by
0.42 % on average (one liver 2.0 %, 3.3 stationary SE), so the interval held the truth in
7/10 (1 channel) with the stationary SE alone.

But those voxels were fitted: their mean voxel R2 measures the difference directly. On
the same livers, ``mean R2(liver) - mean R2(ROI)`` from the fitted voxel R2 matched the one
from the true R2 (over the same candidate) to 0.01 s^-1 (about 0.03 % of R2; the fit noise
averages out over ~15 000 voxels). The interval's side toward which that difference
points is extended by it (linearly, the headline is not moved), so the interval holds both
the ROI's mean and the liver's. Assumed: the left-out voxels' fits are as good as the
ROI's. Partial volume at the edge or at vessel margins (not in the phantoms) makes their
R2 differ as well; the interval then widens towards it, which is conservative.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["left_out_difference_r2"]


def left_out_difference_r2(r2: np.ndarray, se: np.ndarray | None, roi_mask: np.ndarray,
                           liver_mask: np.ndarray) -> dict[str, Any]:
    """``mean R2(liver) - mean R2(ROI)`` (s^-1) from the fitted voxel R2, with its noise SE.

    Parameters
    ----------
    r2 : ndarray, (x, y, z)
        Voxel R2 (s^-1).
    se : ndarray or None, (x, y, z)
        The fit's SE of each voxel R2 (s^-1); non-finite where unknown. With a map, voxels
        without a finite SE are left out of both means.
    roi_mask, liver_mask : ndarray of bool
        The ROI S and the liver L (the ROI's candidate without vessels; S is added to it).

    Returns
    -------
    dict
        ``difference_r2_per_s`` (mean over L minus mean over S, voxels with a finite fit),
        ``noise_se_r2_per_s`` (from the voxel SEs, ``sqrt(sum w^2 se^2)``, ``w = 1_L / n_L -
        1_S / n_S``; 0 without a SE map), ``n_left_out`` (fitted voxels of L outside S).

    Examples
    --------
    >>> liver = np.zeros((20, 20, 1), bool); liver[2:18, 2:18] = True
    >>> roi = liver.copy(); roi[2:18, 2:6] = False          # a quarter left out
    >>> r2 = np.where(roi, 100.0, 80.0)                      # and it reads 20 s^-1 lower
    >>> out = left_out_difference_r2(r2, None, roi, liver)
    >>> round(out["difference_r2_per_s"], 6), out["n_left_out"]
    (-5.0, 64)
    """
    roi = np.asarray(roi_mask, bool)
    liver = np.asarray(liver_mask, bool) | roi
    r2 = np.asarray(r2, np.float64)
    ok = np.isfinite(r2)
    if se is not None:
        se = np.asarray(se, np.float64)
        ok &= np.isfinite(se)
    s, lv = roi & ok, liver & ok
    n_s, n_l = int(np.count_nonzero(s)), int(np.count_nonzero(lv))
    out: dict[str, Any] = {"difference_r2_per_s": 0.0, "noise_se_r2_per_s": 0.0, "n_left_out": n_l - n_s}
    if n_s < 10 or n_l == n_s:
        return out
    out["difference_r2_per_s"] = float(np.mean(r2[lv]) - np.mean(r2[s]))
    if se is not None:
        w = lv / n_l - s / n_s
        out["noise_se_r2_per_s"] = float(np.sqrt(np.sum((w * np.where(ok, se, 0.0)) ** 2)))
    return out
