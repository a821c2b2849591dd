"""Large patches of a patchy liver at the edge of the automatic ROI (issue 16).

The parenchyma extension (:func:`r2mri._roi_parenchyma.extend_to_parenchyma`) refuses an
added piece larger than a quarter of the grown region as a possible leak into a
neighbouring organ. On a coarse texture the liver's own low-iron half is such a piece:
on ``gre-1.5t-fat15-lic3.2`` at 5 mg/g (SD 0.4 in log LIC over 8 voxels, 128 x 128 x 5
voxels of 3 mm) the growing kept 30-45 % of the liver, and the missing patches joined
as one piece of 0.3-1.0 of the region (textures 1-8, SNR 20/50, 1/8 channels). This
module tells such a piece from a leak by what a patch of the same organ shares with the
region and another organ does not (the R2 cannot: it is what differs between patches,
and at 1 mg/g the liver's R2* is the phantom's fat and muscle R2*):

- **S0** (high-passed log S0, as the growing uses it): a piece of one tissue has the
  region's level and spread; a piece that crossed into muscle, fat, viscera and spleen
  holds several levels. Measured on those runs (no size limit, pieces > 10 % of the
  region): liver pieces on the low-R2 side had a robust SD 0.6-1.2 x the region's (1.2
  at SNR 20) and a median within 0.04 of it; leaks 1.1-2.4 x with medians +0.05 to
  +0.07 (one pure fat piece 1.0 x, median +0.04, told by its PDFF).
  Iron-rich pieces have a noisier S0 (it is extrapolated through a faster decay: 1.6 x
  at SNR 20), so the spread test is for pieces below the region's median R2 only.
- **PDFF** (fat-water fits): the fat fraction of a liver does not follow its iron; a
  piece of another tissue has its own. Liver pieces: median within 1.4 points of the
  region's; leaks 4-17 points away (the pure fat piece: 17), except two organ
  mixtures at SNR 50 (1 point; iron side, left to ``iron_pieces`` and its warning).

:func:`left_out_warning` is the check the brief of issue 16 asks for whatever the
extension does: tissue connected to the final region that looks like it (the same
tests) and lies above the parenchymal floor, whatever its R2, larger than
:data:`LEFT_OUT_WARN_FRACTION` of the region, gets a reading-changing warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["S0_SPREAD_RATIO", "S0_LEVEL_LOG", "PDFF_TOLERANCE_POINTS", "LEFT_OUT_WARN_FRACTION",
           "same_tissue", "left_out_warning", "pdff_map"]

#: Largest robust SD of a low-side piece's high-passed log S0, as a multiple of the
#: region's, for one tissue [D: r2mri's own limit; liver pieces up to 1.2 x (SNR 20),
#: organ mixtures 1.1-2.4 x on the runs of the module docstring: the level and PDFF
#: tests catch the overlap].
S0_SPREAD_RATIO = 1.25
#: Largest difference of a piece's median high-passed log S0 from the region's [D: liver
#: pieces within 0.04, organ mixtures +0.05 to +0.07 on the runs of the module docstring:
#: a thin margin, which the PDFF test backs on fat-water fits].
S0_LEVEL_LOG = 0.05
#: Largest difference of a piece's median PDFF from the region's, in points [D: liver
#: pieces within 1.4, leaks 4-17 on the runs of the module docstring].
PDFF_TOLERANCE_POINTS = 3.0
#: Left-out tissue (all pieces together) above which the automatic ROI warns, as a
#: fraction of the region [D: the extension's own limit on one piece, 0.25].
LEFT_OUT_WARN_FRACTION = 0.25


def pdff_map(fit: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """The fat-water fit's PDFF map (percent, ``fit.extra["pdff_percent"]``) on ``shape``, or None."""
    p = (getattr(fit, "extra", None) or {}).get("pdff_percent")
    p = None if p is None else np.asarray(p, dtype=np.float64)
    return p if p is not None and p.shape == shape else None


def _robust_sd(v: np.ndarray) -> float:
    m = float(np.median(v))
    return 1.4826 * float(np.median(np.abs(v - m)))


def same_tissue(piece: np.ndarray, region: np.ndarray, logs: np.ndarray, logr: np.ndarray,
                pdff: np.ndarray | None = None) -> tuple[bool, dict[str, Any]]:
    """Whether a piece looks like the region's tissue by its S0 (low-R2 side) and PDFF.

    ``logs``: high-passed log S0 (3x3 median), ``logr``: log R2 (3x3 median), ``pdff``:
    PDFF map in percent or ``None``. Returns ``(verdict, measures)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> logs = 0.05 * rng.standard_normal((20, 20, 1)); logr = np.full(logs.shape, 4.0)
    >>> region = np.zeros(logs.shape, bool); region[:10] = True
    >>> piece = ~region; logr[piece] = 3.5
    >>> same_tissue(piece, region, logs, logr)[0]
    True
    >>> logs[15:] += 0.4      # half the piece is another organ
    >>> same_tissue(piece, region, logs, logr)[0]
    False
    """
    vs_r, vs_p = logs[region], logs[piece]
    m: dict[str, Any] = {"s0_spread_ratio": None, "s0_level": None, "pdff_difference": None}
    if vs_r.size < 10 or vs_p.size < 10:
        return False, m
    ok = True
    if float(np.median(logr[piece])) <= float(np.median(logr[region])):
        sd_r = _robust_sd(vs_r)
        ratio = _robust_sd(vs_p) / sd_r if sd_r > 0 else np.inf
        level = abs(float(np.median(vs_p)) - float(np.median(vs_r)))
        m["s0_spread_ratio"], m["s0_level"] = round(ratio, 3), round(level, 3)
        ok = ratio <= S0_SPREAD_RATIO and level <= S0_LEVEL_LOG
    if pdff is not None:
        pr, pp = pdff[region], pdff[piece]
        pr, pp = pr[np.isfinite(pr)], pp[np.isfinite(pp)]
        if pr.size >= 10 and pp.size >= 10:
            d = abs(float(np.median(pp)) - float(np.median(pr)))
            m["pdff_difference"] = round(d, 2)
            ok = ok and d <= PDFF_TOLERANCE_POINTS
    return bool(ok), m


def left_out_warning(region: np.ndarray, loose: np.ndarray, logs: np.ndarray, logr: np.ndarray,
                     pdff: np.ndarray | None = None) -> tuple[dict[str, Any], str | None]:
    """Tissue connected to ``region`` that looks like it and was left out.

    ``loose``: the region extended once with no R2 band (only the parenchymal floor,
    the S0 band and the edge limit: :func:`r2mri._roi_parenchyma.extend_to_parenchyma`).
    Its face-connected pieces outside the region that pass :func:`same_tissue` are
    counted; above :data:`LEFT_OUT_WARN_FRACTION` of the region, a warning. Returns
    ``({"fraction", "pieces"}, warning or None)``.

    Examples
    --------
    >>> logs = np.zeros((20, 20, 1)); logr = np.full(logs.shape, 4.0)
    >>> region = np.zeros(logs.shape, bool); region[:12] = True
    >>> loose = np.ones(logs.shape, bool); logr[12:] = 3.0
    >>> info, warn = left_out_warning(region, loose, logs + 0.01 * np.arange(20)[None, :, None], logr)
    >>> info["fraction"], warn is not None
    (0.6667, True)
    """
    n0 = max(int(np.count_nonzero(region)), 1)
    pieces, n = ndimage.label(loose & ~region, structure=ndimage.generate_binary_structure(3, 1))
    info: dict[str, Any] = {"fraction": 0.0, "pieces": []}
    if n == 0:
        return info, None
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    total = 0
    for p in np.flatnonzero(sizes[1:] >= 10) + 1:
        piece = pieces == p
        same, m = same_tissue(piece, region, logs, logr, pdff)
        if same:
            total += int(sizes[p])
            info["pieces"].append({"fraction": round(float(sizes[p]) / n0, 4), **m})
    info["fraction"] = round(total / n0, 4)
    if info["fraction"] <= LEFT_OUT_WARN_FRACTION:
        return info, None
    return info, (f"liver ROI: WARNING - tissue connected to the automatic liver region that looks like it "
                  f"(S0{', fat fraction' if pdff is not None else ''}, R2 above the normal-liver floor) but lies "
                  f"outside its R2 range was left out ({info['fraction']:.0%} of the region): on a patchy liver "
                  "the ROI then holds only part of the iron distribution and the headline may be off by more "
                  "than its interval: check the ROI or give a mask")
