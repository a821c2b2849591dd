"""Do the voxel fat-water fits agree with the tile-pooled fit that gives the headline?

The headline R2* and ROI PDFF of a gradient-echo report come from the tile-pooled,
noise-corrected fat-water fit (r2mri/_gre.py); the voxel maps, histogram, voxel statistics,
PDFF median and heterogeneity block come from the voxel fits. When the voxel fits go wrong
as a population (water/fat swapped voxels; a noise floor read as slow decay, as the complex
fit of an 8-channel root-sum-of-squares magnitude did: voxel R2* -42 %, docs/fatwater.md
"Phase with a multi-channel magnitude"), the headline stays right and the rest misleads.
:func:`voxel_tile_check` measures that and returns one warning line.

Two measures over the ROI voxels with status OK (``qc`` keys):

- ``voxel_swap_fraction``: share of voxels whose PDFF lies on the other side of 50 % from
  the tile-pooled ROI PDFF (a water/fat swap moves PDFF p to about 100 - p);
- ``voxel_tile_pdff_diff``: median voxel PDFF - tile-pooled ROI PDFF (points); an
  undetected conjugate phase convention moved it by -5..-41 points at SNR 20;
- ``voxel_tile_r2_ratio``: median voxel R2* / voxel-weighted median of the tile R2*.
  Heterogeneity coarser than a tile is in both and cancels; noise and fine texture move
  the ratio by a few % (measured: within 0.97-1.04 on uniform livers at SNR 20-50,
  benchmarks/fatwater_floor.py); a voxel-fit bias moves it (0.58 for the -42 % above).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["voxel_tile_check", "SWAP_WARN_FRACTION", "R2_RATIO_WARN", "PDFF_DIFF_WARN_POINTS"]

#: [D] design choice, the 5 % of the other qc warnings (r2mri._gre.BEYOND_RANGE_WARN_FRACTION):
#: share of swapped voxels above which the report warns.
SWAP_WARN_FRACTION = 0.05
#: [D] design choice: |median voxel R2* / median tile R2* - 1| above which the report warns;
#: 2.5x the largest deviation measured on uniform livers without a voxel-fit bias (4 %).
R2_RATIO_WARN = 0.10
#: [D] design choice: |median voxel PDFF - tile-pooled ROI PDFF| (points) above which the
#: report warns; ~2x the largest deviation measured without a voxel-fit fault (2.7 points:
#: the magnitude fit at 3 T, LIC 7, PDFF 30 %, SNR 20; the complex fit: 0.8).
PDFF_DIFF_WARN_POINTS = 5.0


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    c = np.cumsum(w)
    return float(v[np.searchsorted(c, 0.5 * c[-1])])


def voxel_tile_check(fit: Any, valid: np.ndarray, pooled: Any) -> tuple[dict[str, Any], str | None]:
    """Agreement of the voxel fat-water fits with the tile-pooled fit (module docstring).

    Parameters
    ----------
    fit : FitResult
        The fat-water fit (``fit.extra["pdff_percent"]``, ``fit.r2_per_s``, ``fit.status``).
    valid : ndarray of bool
        The ROI voxels of the statistics.
    pooled : PooledR2 or None
        :func:`r2mri._gre.pooled_mean_r2star`'s result; ``None`` (no tile-pooled headline):
        nothing to compare, the qc values are ``None``.

    Returns
    -------
    (dict, str or None)
        ``{"voxel_swap_fraction", "voxel_tile_pdff_diff", "voxel_tile_r2_ratio"}`` and a
        warning line or ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> r2 = np.full((4, 4, 1), 300.0, np.float32); r2[0, :2] = 150.0
    >>> pdff = np.full((4, 4, 1), 15.0, np.float32); pdff[0, :2] = 85.0
    >>> fit = SimpleNamespace(r2_per_s=r2, status=np.zeros((4, 4, 1), np.uint8),
    ...                       extra={"pdff_percent": pdff})
    >>> pooled = SimpleNamespace(tile_r2_per_s=np.array([300.0]), tile_voxels=np.array([16]),
    ...                          pdff_mean_percent=15.0)
    >>> qc, warning = voxel_tile_check(fit, np.ones((4, 4, 1), bool), pooled)
    >>> qc["voxel_swap_fraction"], qc["voxel_tile_r2_ratio"]
    (0.125, 1.0)
    >>> warning.split(":")[0]
    'voxel fits'
    """
    from .status import FitStatus

    qc: dict[str, Any] = {"voxel_swap_fraction": None, "voxel_tile_pdff_diff": None, "voxel_tile_r2_ratio": None}
    pdff_map = (getattr(fit, "extra", None) or {}).get("pdff_percent")
    tile_r2 = getattr(pooled, "tile_r2_per_s", None)
    tile_pdff = getattr(pooled, "pdff_mean_percent", None)
    if pdff_map is None or tile_r2 is None or np.size(tile_r2) == 0 or tile_pdff is None:
        return qc, None
    ok = valid & (np.asarray(fit.status) == int(FitStatus.OK))
    p = np.asarray(pdff_map, dtype=np.float64)[ok]
    r = np.asarray(fit.r2_per_s, dtype=np.float64)[ok]
    fin = np.isfinite(p) & np.isfinite(r)
    p, r = p[fin], r[fin]
    if p.size == 0 or not np.isfinite(tile_pdff):
        return qc, None
    swapped = (p > 50.0) if tile_pdff <= 50.0 else (p <= 50.0)
    frac = float(np.mean(swapped))
    tiles = np.asarray(tile_r2, dtype=np.float64)
    w = np.asarray(pooled.tile_voxels, dtype=np.float64)
    good = np.isfinite(tiles) & (w > 0)
    ratio = float(np.median(r) / _weighted_median(tiles[good], w[good])) if good.any() else float("nan")
    dp = float(np.median(p) - tile_pdff)
    qc["voxel_swap_fraction"] = frac
    qc["voxel_tile_pdff_diff"] = dp
    qc["voxel_tile_r2_ratio"] = ratio if np.isfinite(ratio) else None
    parts = []
    if frac > SWAP_WARN_FRACTION:
        parts.append(f"{100 * frac:.1f} % of ROI voxels have PDFF on the other side of 50 % from the "
                     f"liver's tile-pooled PDFF {tile_pdff:.1f} % (water and fat swapped)")
    if abs(dp) > PDFF_DIFF_WARN_POINTS:
        parts.append(f"the median voxel PDFF is {dp:+.1f} points from the tile-pooled ROI PDFF")
    if np.isfinite(ratio) and abs(ratio - 1.0) > R2_RATIO_WARN:
        parts.append(f"the median voxel R2* is {100 * (ratio - 1):+.0f} % from the tile-pooled fit's")
    if not parts:
        return qc, None
    return qc, ("voxel fits: " + "; ".join(parts) + ": the voxel maps, histogram, voxel LIC/PDFF "
                "statistics and heterogeneity are unreliable (the headline LIC and ROI PDFF come "
                "from the tile-pooled fit and are not affected)")
