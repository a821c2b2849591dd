"""A low-iron liver on the GRE (R2*) route: the automatic ROI cannot rely on R2* (issue 16).

The automatic ROI grows the liver by R2 (and S0) contrast and admits patches by the
normal-liver R2* floor (:mod:`r2mri._r2star_floor`: 23.67-37.77 s^-1 at 1.5 T, Obrzut
2020). Where part of the liver lies inside that normal range, R2* has no contrast left
to tell its low-iron parenchyma from other tissue: on ``gre-1.5t-fat15-lic3.2`` at 1 mg/g
with a coarse texture (SD 0.4 in log LIC over 8 voxels; ~10 % of the liver at true R2*
<= 26-29 s^-1; the phantom's fat and muscle at R2* 40 s^-1, illustrative) the ROI either
missed the low patches (+7 to +26 %) or took in other tissue (-16 to -49 %), and at SNR 50
8 of 32 runs were off by more than 5 % without a reading-changing warning (grefloor,
benchmarks/README.md "GRE automatic ROI").

:func:`low_iron_warning` looks at the ROI itself: the fraction of its voxels whose
in-plane 3x3 median R2* lies inside the normal-liver range by more than twice the noise
of that median (so a uniform liver just above the range does not count its noise tail).
Measured (same phantom, ``r2mri.analyze``, the final automatic ROI):

- textured 1 mg/g, SNR 50, the 8 runs off by > 5 % with no other red warning: 0.078-0.51;
- uniform 1 mg/g (R2* 44.6 s^-1), SNR 20/50, 1/8 channels: 0.000-0.004; 1.5-3.2 mg/g: 0.00;
- uniform 0.5 and 0.7 mg/g (R2* 25 and 33 s^-1, inside the normal range): 0.08-0.98.
  These livers are at the floor and the warning is true for them: their ROIs read
  within 1 % (one, 0.7 mg/g at SNR 20 8 channels, -7.5 %, warned by another check too),
  but nothing in R2* would have kept out a neighbouring tissue of the same R2*. The same
  holds for a normal real liver (ISMRM 2012 case 12, R2* ~27 s^-1: 99 % of its ROI).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LOW_IRON_WARN_FRACTION", "NOISE_MARGIN_SD", "low_iron_fraction", "low_iron_warning"]

#: Fraction of the ROI inside the normal-liver R2* range (by more than the noise margin)
#: above which the automatic ROI warns [D: r2mri's own limit, between 0.004 (uniform 1 mg/g
#: livers, all noise) and 0.078 (the least of the 8 textured 1 mg/g runs off by > 5 % with
#: no other reading-changing warning) on the runs of the module docstring].
LOW_IRON_WARN_FRACTION = 0.05
#: Margin below the top of the normal range, in SDs of the 3x3 median's noise [D: a
#: one-sided 2.3 % tail per voxel of a uniform liver at the top of the range].
NOISE_MARGIN_SD = 2.0
#: SD of the median of n normal samples over the SD of one, n large: sqrt(pi / 2) / sqrt(n)
#: [the asymptotic variance of the sample median, pi sigma^2 / (2 n), e.g. Kendall & Stuart,
#: The Advanced Theory of Statistics; applied to n = 9 (3 x 3): an approximation].
_MEDIAN9_SD_RATIO = float(np.sqrt(np.pi / 2.0) / 3.0)


def low_iron_fraction(roi: np.ndarray, r2_per_s: np.ndarray, r2_median3_per_s: np.ndarray,
                      normal_max_per_s: float) -> tuple[float, float]:
    """Fraction of ``roi`` whose 3x3 median R2* lies inside the normal-liver range by the noise margin.

    ``r2_per_s``: the voxel R2* map; ``r2_median3_per_s``: its in-plane 3x3 median (what
    the ROI growing uses). The noise of the median is estimated from the ROI's own
    voxel-minus-median residual (robust SD x sqrt(pi/2)/3). Returns ``(fraction,
    median_noise_sd_per_s)``; ``(0.0, nan)`` for fewer than 10 finite voxels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = np.full((30, 30, 1), 45.0); truth[:10] = 28.0     # a third of the liver at 28 s^-1
    >>> r2 = truth + 2.0 * rng.standard_normal(truth.shape)
    >>> f, sd = low_iron_fraction(np.ones(r2.shape, bool), r2, truth, 37.77)
    >>> round(f, 2)
    0.33
    """
    r2 = np.asarray(r2_per_s, dtype=np.float64)
    med = np.asarray(r2_median3_per_s, dtype=np.float64)
    sel = np.asarray(roi, dtype=bool) & np.isfinite(r2) & np.isfinite(med)
    if np.count_nonzero(sel) < 10:
        return 0.0, float("nan")
    res = r2[sel] - med[sel]
    sd = 1.4826 * float(np.median(np.abs(res - np.median(res)))) * _MEDIAN9_SD_RATIO
    return float(np.mean(med[sel] <= normal_max_per_s - NOISE_MARGIN_SD * sd)), sd


def low_iron_warning(roi: np.ndarray, r2_per_s: np.ndarray, r2_median3_per_s: np.ndarray,
                     normal_max_per_s: float | None, floor_per_s: float | None) -> tuple[dict[str, Any], str | None]:
    """A reading-changing warning when an automatic R2* ROI reaches the normal-liver range.

    Returns ``({"fraction", "noise_sd_per_s", "normal_max_per_s"}, warning or None)``;
    no check (``({}, None)``) without a normal range (R2 curves, unmapped 3 T curves).

    Examples
    --------
    >>> truth = np.full((30, 30, 1), 45.0); truth[:10] = 28.0
    >>> info, w = low_iron_warning(np.ones(truth.shape, bool), truth + 0.5, truth, 37.77, 23.67)
    >>> info["fraction"], w is not None
    (0.3333, True)
    >>> low_iron_warning(np.ones(truth.shape, bool), truth + 0.5, truth + 20.0, 37.77, 23.67)[1] is None
    True
    """
    if normal_max_per_s is None or floor_per_s is None:
        return {}, None
    f, sd = low_iron_fraction(roi, r2_per_s, r2_median3_per_s, normal_max_per_s)
    info = {"fraction": round(f, 4), "noise_sd_per_s": None if not np.isfinite(sd) else round(sd, 2),
            "normal_max_per_s": round(float(normal_max_per_s), 2)}
    if f <= LOW_IRON_WARN_FRACTION:
        return info, None
    return info, (f"liver ROI: WARNING - {f:.0%} of the automatic liver region has R2* within the normal-liver "
                  f"range ({floor_per_s:.1f}-{normal_max_per_s:.1f} s^-1, Obrzut 2020): at this iron level R2* "
                  "cannot tell low-iron liver from neighbouring tissue, so the automatic ROI may miss low-iron "
                  "liver or include other tissue and the headline may be off by more than its interval: "
                  "check the ROI or give a mask")
