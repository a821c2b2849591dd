"""A texture-free basis for the headline's 95 % interval (issue 16, branch widetex; opt-in).

Why: the default interval starts from the wider of a bootstrap over the tiles and the
measurement SE (r2mri/stats.py). Resampling tiles treats the liver as a sample of a
larger one, so on a textured liver the bootstrap SE is mostly the spread of the *true* R2
between tiles divided by sqrt(tiles): not an error of this liver's own mean, which is the
headline's truth. benchmarks/interval_terms.py (small livers, true mask, 16 livers per
cell): the bootstrap SE was 0.95-4.4 % of R2 against a measurement SE of 0.2-2.7 %, and
the intervals were 2.8-4.7x wider than the seed-to-seed SD of the error at 1-7 mg/g
(1.4-1.5x at 30 mg/g, SNR 20).

Dropping the bootstrap alone is not enough: the tiles leave out the voxels of tiles with
less than half their voxels in the ROI (28 of 1,699 on those livers), and on a textured
liver the left-out voxels' mean differs from the rest (-0.44 % of R2 at 1 mg/g on one
texture: that liver's whole error at fixed texture). That difference is a sampling error
of the same kind as the automatic ROI's (r2mri/_roi_sampling.py), so it is estimated the
same way: ``roi_sampling_se_r2`` with S = the voxels the tiles used and L = the ROI.

What: with ``liver_statistics(..., interval="texture-free")`` the interval's basis is the
headline +- 1.96 x sqrt(measurement SE^2 + left-out-voxel SE^2) instead of the union with
the tile bootstrap; the widening steps after it (the spread correction's own error, the
noise sigma's, and in ``analyze`` the ROI sampling term and dark-liver widening) are
unchanged. The truth it is built for is the mean R2 over the ROI's liver: when the ROI is
only part of the liver, the part it misses must be carried by the ROI sampling term
(``analyze`` adds it; a caller of ``liver_statistics`` with a hand-drawn ROI does not get
it), so this is not the default.

Measured (benchmarks/interval_terms.py, 8 textured cells x 16 livers): the half-width / 1.96
fell from 2.8-4.7x the error's seed SD to 0.6-1.7x, and coverage fell to 13/16 in one cell
(SD 0.4, width 4, 1 mg/g, SNR 50) and 14/16 in two: the measurement SE and the left-out term
do not carry all of a textured liver's error (on one texture the noise alone matches them;
between textures the error moves by more, see benchmarks/README.md). Experimental: a
warning says so in every report that uses it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._roi_sampling import roi_sampling_se_r2
from .errors import InputError

__all__ = ["apply"]

_Z95 = 1.959963984540054  # Phi^-1(0.975)
MODES = ("bootstrap", "texture-free")
WARNING = ("headline: interval basis 'texture-free' is experimental: on textured small livers it held the truth in "
           "13 of 16 livers in some cells (benchmarks/README.md, interval_terms); the default basis is not")


def apply(mode: str, lo: float, hi: float, mean: float, se_meas: float, pooled: Any, fit: Any,
          liver: np.ndarray, warnings: "list | None" = None) -> "tuple[float, float, dict | None]":
    """The interval's basis ``(lo, hi, block)`` in R2 (s^-1); unchanged with ``mode="bootstrap"``.

    ``pooled`` is the tile-pooled headline (``PooledR2``; ``None``: voxel-mean fallback,
    unchanged), ``fit`` the voxel fit (``r2_per_s``, optional ``r2_std_per_s``), ``liver``
    the ROI (bool). ``block`` goes to the report's headline block (None by default). With
    ``"texture-free"`` a warning is appended to ``warnings``: the basis is experimental.

    Examples
    --------
    >>> apply("bootstrap", 9.0, 11.0, 10.0, 0.1, None, None, None)
    (9.0, 11.0, None)
    """
    if mode not in MODES:
        raise InputError(f"interval: expected one of {MODES}, got {mode!r}")
    if mode == "bootstrap" or pooled is None or getattr(fit, "model", None) == "fatwater":
        return lo, hi, None
    if not np.isfinite(se_meas):
        return lo, hi, {"basis": "bootstrap", "reason": "measurement SE not finite"}
    liver = np.asarray(liver, bool)
    used = np.zeros(liver.size, bool)
    vt = np.asarray(pooled.voxel_tile)
    used[np.asarray(pooled.voxel_index)[vt >= 0]] = True
    used = used.reshape(liver.shape)
    left = roi_sampling_se_r2(fit.r2_per_s, getattr(fit, "r2_std_per_s", None), used, liver | used)
    se = float(np.hypot(se_meas, left["se_r2_per_s"]))
    block = {"basis": "texture-free", "se_measurement_r2_per_s": se_meas,
             "se_left_out_voxels_r2_per_s": left["se_r2_per_s"], "left_out_fraction": left["unmeasured_fraction"],
             "bootstrap_ci95_r2_per_s": [lo, hi]}
    if warnings is not None:
        warnings.append(WARNING)
    return mean - _Z95 * se, mean + _Z95 * se, block
