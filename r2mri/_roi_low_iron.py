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

A red warning on every normal liver is alarm fatigue (branch r2starroi): the warning is red
only with evidence that the reading may be wrong (:func:`low_iron_evidence`: the ROI
straddles the top of the range, or liver-like tissue above the range borders it), else a
reminder note. Measured with the evidence passed (benchmarks/_low_iron_hook.py; a 1-line
hook in :func:`r2mri.roi.liver_roi`): uniform 0.5/0.7 mg/g livers and ISMRM case 12 get the
note; the textured 1 mg/g runs off by > 5 % all keep a red ROI warning (docs/statistics.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["LOW_IRON_WARN_FRACTION", "NOISE_MARGIN_SD", "STRADDLE_FRACTION", "BORDER_FRACTION", "RING_VOXELS",
           "BORDER_CORE_MM", "low_iron_fraction", "border_mask", "low_iron_evidence", "low_iron_warning"]

#: Fraction of the ROI inside the normal-liver R2* range (by more than the noise margin)
#: above which the automatic ROI warns [D: r2mri's own limit, between 0.004 (uniform 1 mg/g
#: livers, all noise) and 0.078 (the least of the 8 textured 1 mg/g runs off by > 5 % with
#: no other reading-changing warning) on the runs of the module docstring].
LOW_IRON_WARN_FRACTION = 0.05
#: Margin below the top of the normal range, in SDs of the 3x3 median's noise [D: a
#: one-sided 2.3 % tail per voxel of a uniform liver at the top of the range].
NOISE_MARGIN_SD = 2.0
#: Fraction of the ROI whose 3x3 median R2* lies *above* the top of the normal range by the
#: noise margin, above which the ROI straddles the range (part of it R2* can tell from normal
#: tissue, part it cannot) and the low-iron warning stays red [D: r2mri's own; a uniform liver
#: at or below the top has at most the one-sided 2-SD noise tail, 2.3 %; measured: uniform
#: 0.5/0.7 mg/g livers (SNR 20/50, 1/8 channels) 0.000-0.013, ISMRM 2012 case 12 0.008;
#: textured 1 mg/g livers 0.000-0.73, those reading high (+7 to +14 %) 0.57-0.73;
#: benchmarks/README.md "GRE automatic ROI"].
STRADDLE_FRACTION = 0.05
#: In-plane width (voxels) of the ring around the grown candidate searched for liver-like
#: tissue above the normal range [D: as r2mri._roi_iron.DARK_RIM_VOXELS].
RING_VOXELS = 3
#: Liver-like tissue (the ROI's S0 within ``BORDER_S0_SD`` robust SDs, its PDFF within
#: r2mri._roi_patches.PDFF_TOLERANCE_POINTS) in that ring at R2* above the normal range by the
#: noise margin, as a fraction of the ROI, above which the warning stays red [D: uniform
#: 0.5/0.7 mg/g livers 0.000 (0.002 with thin rims); textured 1 mg/g livers 0.000-0.37, and
#: 0.32 / 0.37 on the two runs only this keeps red (ROI in the liver's low part, -28 / -32 %,
#: no other red warning, straddle 0.046 / 0.031); measured as for STRADDLE_FRACTION].
BORDER_FRACTION = 0.05
#: In-plane erosion (mm) a liver-like piece next to the candidate must survive to count as a
#: region [D: the ROI's own edge erosion, r2mri.roi.liver_roi erode_mm = 5 mm, which takes the
#: partial-volume band off an organ's edge].
BORDER_CORE_MM = 5.0
#: Robust SDs of the ROI's high-passed log S0 within which a neighbour counts as liver-like
#: [D: the growing's own band, k = 3 in r2mri.roi].
BORDER_S0_SD = 3.0
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


def border_mask(roi: np.ndarray, above: np.ndarray, candidate: np.ndarray, logs: np.ndarray,
                pdff: "np.ndarray | None" = None, tissue: "np.ndarray | None" = None,
                voxel_mm: tuple[float, float] = (1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """``(thick, like)``: the voxels :func:`low_iron_evidence` counts as ``border``, and all
    liver-like voxels above the range in the ring (``border_rim``). ``above``: voxels above
    the normal range by the noise margin; ``voxel_mm``: in-plane voxel size (x, y).

    Liver-like (``like``): outside the ``candidate``, in ``tissue``, high-passed log S0
    within :data:`BORDER_S0_SD` robust SDs of the ROI's median and PDFF within 3 points of
    it. Counted (``thick``): the ring voxels (:data:`RING_VOXELS` in-plane of the
    candidate) of in-plane pieces of such tissue that touch the candidate and keep a core
    after an in-plane erosion by :data:`BORDER_CORE_MM`: a rim at the organ's edge
    (partial volume with the body wall, fat or lung, where a real liver's R2* rises:
    ISMRM 2012 case 12, a band 3 voxels wide along the lateral edge) is not a region of
    the liver at a higher iron."""
    from ._roi_patches import PDFF_TOLERANCE_POINTS

    sel = np.asarray(roi, dtype=bool)
    cand = np.asarray(candidate, dtype=bool)
    ls = np.asarray(logs, dtype=np.float64)
    v = ls[sel]
    m = float(np.median(v))
    rsd = 1.4826 * float(np.median(np.abs(v - m)))
    with np.errstate(invalid="ignore"):
        like = ~cand & above & np.isfinite(ls) & (np.abs(ls - m) <= BORDER_S0_SD * rsd)
    if tissue is not None:
        like &= np.asarray(tissue, dtype=bool)
    if pdff is not None:
        p = np.asarray(pdff, dtype=np.float64)
        pr = p[sel & np.isfinite(p)]
        if pr.size:
            with np.errstate(invalid="ignore"):
                like &= np.abs(p - float(np.median(pr))) <= PDFF_TOLERANCE_POINTS
    square = np.ones((3, 3, 1), dtype=bool)
    ring = ndimage.binary_dilation(cand, structure=square, iterations=RING_VOXELS) & ~cand
    inplane = np.zeros((3, 3, 3), dtype=bool)
    inplane[:, :, 1] = True
    labels, k = ndimage.label(like, structure=inplane)
    ri, rj = (int(np.floor(BORDER_CORE_MM / float(d) + 1e-9)) for d in voxel_mm)
    ii, jj = np.mgrid[-ri:ri + 1, -rj:rj + 1]
    disk = ((ii * float(voxel_mm[0])) ** 2 + (jj * float(voxel_mm[1])) ** 2 <= BORDER_CORE_MM**2 + 1e-9)[:, :, None]
    core = ndimage.binary_erosion(like, structure=disk) if (ri or rj) else like
    touch = ndimage.binary_dilation(cand, structure=square)
    keep = np.zeros(k + 1, dtype=bool)
    keep[np.unique(labels[core])] = True
    touching = np.zeros(k + 1, dtype=bool)
    touching[np.unique(labels[touch & like])] = True
    keep &= touching
    keep[0] = False
    return keep[labels] & ring, like & ring


def low_iron_evidence(roi: np.ndarray, r2_median3_per_s: np.ndarray, normal_max_per_s: float, noise_sd_per_s: float,
                      candidate: "np.ndarray | None" = None, logs: "np.ndarray | None" = None,
                      pdff: "np.ndarray | None" = None, tissue: "np.ndarray | None" = None,
                      voxel_mm: tuple[float, float] = (1.0, 1.0)) -> dict[str, Any]:
    """What says that a low-iron automatic ROI may read wrong, beyond R2* lying in the normal range.

    - ``straddle``: the fraction of ``roi`` whose 3x3 median R2* lies above the top of the
      normal range by :data:`NOISE_MARGIN_SD` noise SDs. A liver whose R2* spans the top
      is one where R2* tells part of the liver from other tissue and part not: the growing
      band may have cut its low side or taken a neighbour in (the textured 1 mg/g
      phantoms, +7 to +26 %). A uniform liver at or below the top has only the noise tail.
    - ``border``: the fraction (of the ROI) of voxels within :data:`RING_VOXELS` in-plane of
      the grown ``candidate``, outside it, in ``tissue``, that look like the ROI (high-passed
      log S0 ``logs`` within :data:`BORDER_S0_SD` robust SDs of the ROI's median; ``pdff``
      within 3 points of the ROI's median, when given) and whose R2* lies above the top by
      the noise margin: the liver continues at a higher iron than the ROI holds (an ROI
      grown in the low part of a patchy liver read -20 to -39 %). Only pieces thicker
      than the ROI's edge erosion count (:func:`border_mask`: a rim at the organ's edge is
      partial volume; ``border_rim`` holds the count with it). None without
      ``candidate`` and ``logs``.

    Examples
    --------
    >>> med = np.full((30, 30, 1), 30.0); roi = np.zeros(med.shape, bool); roi[5:20, 5:25] = True
    >>> flat, body = np.zeros(med.shape), np.ones(med.shape, bool)
    >>> ev = low_iron_evidence(roi, med, 37.77, 1.0, roi, flat, None, body, voxel_mm=(3.0, 3.0))
    >>> ev["straddle"], ev["border"]
    (0.0, 0.0)
    >>> med[20:28, 5:25] = 55.0          # liver-like tissue of higher R2* next to the ROI, 24 mm thick
    >>> low_iron_evidence(roi, med, 37.77, 1.0, roi, flat, None, body, voxel_mm=(3.0, 3.0))["border"]
    0.2
    >>> med[22:28] = 30.0                # a rim of 2 voxels (6 mm) only: the organ's edge
    >>> ev = low_iron_evidence(roi, med, 37.77, 1.0, roi, flat, None, body, voxel_mm=(3.0, 3.0))
    >>> ev["border"], ev["border_rim"]
    (0.0, 0.1333)
    """
    med = np.asarray(r2_median3_per_s, dtype=np.float64)
    roi = np.asarray(roi, dtype=bool)
    sel = roi & np.isfinite(med)
    n = max(int(np.count_nonzero(sel)), 1)
    sd = float(noise_sd_per_s) if np.isfinite(noise_sd_per_s) else 0.0
    above = np.isfinite(med) & (med > float(normal_max_per_s) + NOISE_MARGIN_SD * sd)
    out: dict[str, Any] = {"straddle": round(float(np.count_nonzero(above & sel)) / n, 4), "border": None}
    if candidate is None or logs is None:
        return out
    thick, like = border_mask(sel, above, candidate, logs, pdff, tissue, voxel_mm)
    out["border"] = round(float(np.count_nonzero(thick)) / n, 4)
    out["border_rim"] = round(float(np.count_nonzero(like)) / n, 4)
    return out


def low_iron_warning(roi: np.ndarray, r2_per_s: np.ndarray, r2_median3_per_s: np.ndarray,
                     normal_max_per_s: float | None, floor_per_s: float | None, *,
                     candidate: "np.ndarray | None" = None, logs: "np.ndarray | None" = None,
                     pdff: "np.ndarray | None" = None, tissue: "np.ndarray | None" = None,
                     voxel_mm: tuple[float, float] = (1.0, 1.0)) -> tuple[dict[str, Any], str | None]:
    """A warning when an automatic R2* ROI reaches the normal-liver range: red (reading-changing)
    only with evidence that the reading may be wrong, else a plain note.

    Above :data:`LOW_IRON_WARN_FRACTION` of the ROI inside the range (:func:`low_iron_fraction`),
    the warning is red when the ROI straddles the top of the range or borders liver-like
    tissue above it (:func:`low_iron_evidence`: more than :data:`STRADDLE_FRACTION` /
    :data:`BORDER_FRACTION` of the ROI), or when that evidence cannot be looked at (no
    ``candidate`` and ``logs``: the hook of :func:`r2mri.roi.liver_roi` without them; the
    warning then stays red as before). Otherwise the whole ROI lies at the normal-liver
    level with nothing liver-like of higher R2* next to it: whatever tissue of normal R2*
    the ROI holds or misses, its reading stays in the normal range, and the note says
    that R2* cannot separate low-iron liver from its neighbours (a reminder, not red: it
    starts "liver ROI: automatic proposal", ranked with that reminder on the report page).
    An ROI grown in another organ of normal R2* (the textured 1 mg/g phantoms' spleen
    side, -33 to -49 %) is not this check's to find: the right-side check warns there.

    Returns ``({"fraction", "noise_sd_per_s", "normal_max_per_s", "straddle", "border",
    "red"}, text or None)``; no check (``({}, None)``) without a finite normal range (R2
    curves, unmapped 3 T curves, a mapping of unknown uncertainty).

    Examples
    --------
    >>> truth = np.full((30, 30, 1), 45.0); truth[:10] = 28.0
    >>> info, w = low_iron_warning(np.ones(truth.shape, bool), truth + 0.5, truth, 37.77, 23.67)
    >>> info["fraction"], info["red"], w.startswith("liver ROI: WARNING")
    (0.3333, True, True)
    >>> low_iron_warning(np.ones(truth.shape, bool), truth + 0.5, truth + 20.0, 37.77, 23.67)[1] is None
    True
    >>> flat = np.full((30, 30, 1), 30.0); roi = np.zeros(flat.shape, bool); roi[5:25, 5:25] = True
    >>> info, w = low_iron_warning(roi, flat, flat, 37.77, 23.67, candidate=roi, logs=np.zeros(flat.shape))
    >>> info["red"], w.startswith("liver ROI: automatic proposal")
    (False, True)
    """
    if normal_max_per_s is None or floor_per_s is None or not np.isfinite(normal_max_per_s):
        # infinite: a mapped curve whose mapping's uncertainty r2mri does not know (r2mri._r2star_floor)
        return {}, None
    f, sd = low_iron_fraction(roi, r2_per_s, r2_median3_per_s, normal_max_per_s)
    info = {"fraction": round(f, 4), "noise_sd_per_s": None if not np.isfinite(sd) else round(sd, 2),
            "normal_max_per_s": round(float(normal_max_per_s), 2)}
    if f <= LOW_IRON_WARN_FRACTION:
        return info, None
    ev = low_iron_evidence(roi, r2_median3_per_s, normal_max_per_s, sd, candidate, logs, pdff, tissue, voxel_mm)
    info.update(ev)
    info["red"] = bool(ev["border"] is None or ev["straddle"] > STRADDLE_FRACTION or ev["border"] > BORDER_FRACTION)
    rng = f"{floor_per_s:.1f}-{normal_max_per_s:.1f} s^-1, Obrzut 2020"
    if not info["red"]:
        return info, (f"liver ROI: automatic proposal at the normal-liver level - {f:.0%} of the region has R2* within "
                      f"the normal-liver range ({rng}), and neither the region nor tissue next to it that looks like "
                      "it lies above that range (no sign of liver at a higher iron level); R2* cannot tell low-iron "
                      "liver from neighbouring tissue of the same R2*: check the ROI")
    why = ("evidence not available" if ev["border"] is None else
           f"{ev['straddle']:.0%} of the region lies above the range, and tissue next to it with its S0"
           f"{' and fat fraction' if pdff is not None else ''} above the range amounts to {ev['border']:.0%} of it")
    return info, (f"liver ROI: WARNING - {f:.0%} of the automatic liver region has R2* within the normal-liver "
                  f"range ({rng}; {why}): at this iron level R2* cannot tell low-iron liver from neighbouring "
                  "tissue, so the automatic ROI may miss low-iron liver or include other tissue and the headline "
                  "may be off by more than its interval: check the ROI or give a mask")
