"""How far the ROI's mean R2 can be from the whole liver's: the ROI sampling error (issue 16).

The headline is the LIC of the mean R2 of the *whole* liver parenchyma, but the ROI
leaves part of it out: the eroded edge (partial volume, breathing between series), the
rim around vessels, failed fits. On a uniform liver that costs nothing; on a patchy one
the left-out part has its own mean, and the ROI's mean differs from the liver's by
``(n_U / n_L) (mean_U - mean_S)`` (S the ROI, U the rest of the liver L). On the
shipped ``heterogeneous-focal-1.5t`` phantom (texture SD 0.3 in log LIC over 4 voxels)
the LIC of the mean true R2 over the automatic ROI differed from the whole liver's by
-1.2 % to +2.3 % over eight texture draws, while the headline's 95 % interval was
+-0.8 % wide and held the truth in 2 of 8.

Model: the true R2 is a stationary random field over the liver with covariance
``C(h)``. Then ``Var(mean_L - mean_S) = sum_x sum_y w(x) w(y) C(y - x)`` with
``w = 1_L / n_L - 1_S / n_S``. ``C`` is estimated from the ROI's own voxel R2 (in-plane
lags and slice lags by one 3-D FFT), the fit noise removed at lag 0 (the mean of the voxels'
``se^2``: voxel noise is white), and truncated at the first in-plane lag where the
radially averaged covariance is no longer positive (beyond it the estimate is noise).
The liver ``L`` is the ROI candidate less the voxels called vessels or fluid; the liver
outside the candidate (if the candidate missed some) is not counted.

The interval is widened in R2, each side in quadrature by ``1.96 SE``, then mapped
through the calibration. Assumed: the left-out part is a sample of the same texture
(stationarity); a systematic difference of the edge (e.g. partial volume in the data)
is not modelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import fft as _fft

__all__ = ["roi_sampling_se_r2", "widen_for_roi_sampling"]

_Z95 = 1.959963984540054  # two-sided 95 % normal quantile
_MIN_PAIRS = 50  # [D, r2mri's choice] voxel pairs below which a covariance lag is not estimated


def _box_of(mask: np.ndarray) -> tuple[slice, slice]:
    ii = np.flatnonzero(mask.any(axis=(1, 2)))
    jj = np.flatnonzero(mask.any(axis=(0, 2)))
    return slice(int(ii[0]), int(ii[-1]) + 1), slice(int(jj[0]), int(jj[-1]) + 1)


def roi_sampling_se_r2(r2: np.ndarray, se: np.ndarray | None, roi_mask: np.ndarray,
                       liver_mask: np.ndarray) -> dict[str, Any]:
    """SE (s^-1) of ``mean R2 over the liver - mean R2 over the ROI`` under a stationary texture.

    Parameters
    ----------
    r2 : ndarray, (x, y, z)
        Voxel R2 (s^-1).
    se : ndarray or None, (x, y, z)
        The fit's SE of each voxel R2 (s^-1); non-finite where unknown.
    roi_mask : ndarray of bool
        The ROI S (a subset of ``liver_mask``).
    liver_mask : ndarray of bool
        The liver L (the ROI's candidate without vessels).

    Returns
    -------
    dict
        ``se_r2_per_s``, ``unmeasured_fraction`` (n_U / n_L), ``n_liver``, ``n_roi``,
        ``texture_sd_r2_per_s`` (sqrt of C(0) after the noise), ``correlation_radius_voxels``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> liver = np.zeros((40, 40, 2), bool); liver[5:35, 5:35] = True
    >>> roi = liver.copy(); roi[5:35, 5:10] = False
    >>> r2 = 100 + 10 * rng.standard_normal(liver.shape)   # white texture, SD 10
    >>> out = roi_sampling_se_r2(r2, np.zeros(liver.shape), roi, liver)
    >>> round(out["unmeasured_fraction"], 3), 0.1 < out["se_r2_per_s"] < 0.4
    (0.167, True)
    """
    liver = np.asarray(liver_mask, bool) | np.asarray(roi_mask, bool)
    roi = np.asarray(roi_mask, bool)
    n_l, n_s = int(np.count_nonzero(liver)), int(np.count_nonzero(roi))
    out: dict[str, Any] = {"se_r2_per_s": 0.0, "unmeasured_fraction": 1.0 - n_s / max(n_l, 1),
                           "n_liver": n_l, "n_roi": n_s, "texture_sd_r2_per_s": None,
                           "correlation_radius_voxels": None}
    if n_s < 10 or n_l == n_s:
        return out
    bx, by = _box_of(liver)
    r2b = np.asarray(r2, np.float64)[bx, by]
    seb = np.full(r2b.shape, np.nan) if se is None else np.asarray(se, np.float64)[bx, by]
    sb, lb = roi[bx, by], liver[bx, by]
    # voxels that estimate the covariance (without a fit SE map: all finite ones, and
    # the noise stays in C(0), which only widens the interval)
    use = sb & np.isfinite(r2b) & (np.isfinite(seb) if se is not None else True)
    if np.count_nonzero(use) < 10:
        return out
    nx, ny, nz = r2b.shape
    # every lag of the box (in-plane and between slices) by one zero-padded 3-D FFT:
    # sum_x a(x) b(x + h) = irfftn(conj(A) B). Slice lags were capped at 3 before; on
    # the full-size focal ROI with the coarse phantom's texture (Gaussian width 8
    # voxels in-plane, 1.6 slices) lags >= 4 hold 8 % of the variance (docs/statistics.md).
    shape = tuple(_fft.next_fast_len(2 * n, real=True) for n in (nx, ny, nz))  # >= 2n - 1: no wrap
    f = np.where(use, r2b - float(np.mean(r2b[use])), 0.0)
    m = use.astype(np.float64)
    w = lb / n_l - sb / n_s

    def _corr(a):
        fa = _fft.rfftn(a, shape)
        return _fft.irfftn(fa * np.conj(fa), shape)

    n_use = float(np.count_nonzero(use))
    cnt = np.rint(_corr(m))
    est = cnt >= _MIN_PAIRS
    cov = np.where(est, _corr(f) / np.maximum(cnt, 1.0), 0.0)
    xw = _corr(w)
    # weights 1/n of the voxels the covariance is estimated on: their pair sums are cnt / n^2
    xu = cnt / n_use**2
    # noise: white, at lag 0 only
    noise_var = float(np.mean(seb[use] ** 2)) if se is not None else 0.0
    c00 = max(float(cov[0, 0, 0]) - noise_var, 0.0)
    cov[0, 0, 0] = c00
    hx = _fft.fftfreq(shape[0], 1.0 / shape[0])[:, None]
    hy = _fft.fftfreq(shape[1], 1.0 / shape[1])[None, :]
    rad = np.rint(np.hypot(hx, hy)).astype(int)
    counts = np.bincount(rad.ravel(), minlength=rad.max() + 1)

    # The covariance about the ROI's own mean is low by Var(mean_S) at every lag (the
    # mean absorbs part of the texture): add it back, Var(mean_S) = sum u u C with
    # u = 1/n on the voxels used, to a fixed point (3 rounds). Then truncate at the first
    # in-plane radius where the radial mean covariance of the slice itself is <= 0
    # (beyond it the estimate is noise), at every slice lag. Slice lags are not cut by
    # the same rule: the first non-positive slice lag of a noisy sum selects positive
    # ones (Monte Carlo, slices independent: variance 1.10-1.11x the exact one).
    # the window is the same in-plane disk at every slice lag: sum over slice lags first
    c_u, e_u = np.sum(cov * xu, axis=2), np.sum(est * xu, axis=2)
    c_w, e_w = np.sum(cov * xw, axis=2), np.sum(est * xw, axis=2)
    shift = 0.0
    for _ in range(3):
        radial = np.bincount(rad.ravel(), weights=(cov[:, :, 0] + shift * est[:, :, 0]).ravel(),
                             minlength=rad.max() + 1)
        prof = radial / np.maximum(counts, 1)
        nonpos = np.flatnonzero(prof[1:] <= 0)
        r_cut = int(nonpos[0]) + 1 if nonpos.size else int(rad.max())
        inside = rad < r_cut
        shift = max(float(np.sum(c_u[inside])) + shift * float(np.sum(e_u[inside])), 0.0)
    var = float(np.sum(c_w[inside])) + shift * float(np.sum(e_w[inside]))
    out.update(se_r2_per_s=float(np.sqrt(max(var, 0.0))), texture_sd_r2_per_s=float(np.sqrt(c00)),
               correlation_radius_voxels=r_cut)
    return out


def widen_for_roi_sampling(stats: Any, roi: Any, fit: Any, calibration: Any) -> dict[str, Any] | None:
    """Widen ``stats``' 95 % interval (in place) by the ROI sampling SE and the measured
    liver-minus-ROI difference; returns the report block.

    ``stats`` is a :class:`r2mri.stats.LiverStatistics`, ``roi`` a
    :class:`r2mri.roi.LiverROI` (``candidate`` and ``non_parenchyma`` masks), ``fit`` the
    voxel fit. Each side of the R2 interval ``[lo, hi]`` around the headline R2 ``h``
    becomes ``h -+ sqrt((h - lo)^2 + (1.96 SE)^2)``, and the side toward the measured
    ``d = mean R2(liver) - mean R2(ROI)`` of the fitted voxels moves out by ``|d|`` where
    the voxel fits are precise enough to trust it (:mod:`r2mri._left_out_shift`; SE then
    includes ``d``'s noise SE in quadrature), mapped to LIC by the calibration.
    The numbers go to ``stats.blocks["headline"]["roi_sampling"]`` (report.json).
    Returns ``None`` (and leaves ``stats`` alone) when the ROI has no candidate.
    """
    cand = getattr(roi, "candidate", None)
    if cand is None:
        return None
    non_par = getattr(roi, "non_parenchyma", None)
    liver = cand & ~non_par if non_par is not None else cand
    from ._left_out_shift import left_out_difference_r2

    se_map = getattr(fit, "r2_std_per_s", None)
    est = roi_sampling_se_r2(fit.r2_per_s, se_map, roi.mask, liver)
    diff = left_out_difference_r2(fit.r2_per_s, se_map, roi.mask, liver)  # branch coarsecov
    blocks = stats.blocks
    r2_block = blocks.get("r2_per_s", {})
    h = r2_block.get("headline_mean")
    ci = r2_block.get("headline_ci95")
    block = {"method": "stationary-texture covariance of the ROI's voxel R2 (r2mri/_roi_sampling.py); "
                       "the side toward the measured liver-minus-ROI mean voxel R2 extended by it "
                       "(r2mri/_left_out_shift.py)", **est,
             "left_out_difference_r2_per_s": diff["difference_r2_per_s"],
             "left_out_difference_noise_se_r2_per_s": diff["noise_se_r2_per_s"],
             "left_out_median_relative_se": diff["median_relative_se"],
             "left_out_difference_used": diff["used"]}
    from ._left_out_warning import left_out_shift_warning as _shift  # the reading at the candidate (floorpiece)
    block["left_out_lic_shift_pct"], warn = _shift(diff, h, calibration, automatic=getattr(roi, "automatic", False))
    stats.warnings.extend([warn] if warn and isinstance(getattr(stats, "warnings", None), list) else [])
    head = blocks.get("headline")
    d = diff["difference_r2_per_s"] if diff["used"] else 0.0
    d_se = diff["noise_se_r2_per_s"] if diff["used"] else 0.0
    if h is None or ci is None or (est["se_r2_per_s"] <= 0 and d == 0):
        block["widened"] = False
        if head is not None:
            head["roi_sampling"] = block
        return block
    half = _Z95 * float(np.hypot(est["se_r2_per_s"], d_se))
    lo = h - float(np.hypot(h - ci[0], half)) - max(-d, 0.0)
    hi = h + float(np.hypot(ci[1] - h, half)) + max(d, 0.0)
    block["widened"] = True
    set_headline_interval(stats, (lo, hi), calibration, "widened by the ROI sampling SE in quadrature",
                          "roi_sampling", block)
    return block


def set_headline_interval(stats: Any, r2_ci: "tuple[float, float]", calibration: Any, note: str, key: str,
                          block: dict) -> None:
    """Write a widened 95 % R2 interval ``r2_ci`` (s^-1) into ``stats`` in place.

    The R2 ends are mapped to LIC by the calibration (an upper end beyond the curve's
    domain becomes its largest LIC), the LIC interval never narrows, and ``block`` goes to
    ``stats.blocks["headline"][key]`` with ``ci95_before_lic_mg_per_g``; ``note`` is added
    to the headline's ``ci95_method``. Shared by the ROI-sampling and dark-liver widenings.
    """
    from . import calibration as _cal

    cal = _cal.get_calibration(calibration)
    lo, hi = r2_ci
    lic_lo, lic_hi = (float(v) for v in _cal.lic_from_r2(np.array([max(lo, 0.0), hi]), calibration=cal))
    if not np.isfinite(lic_hi):  # above the curve's domain: its largest LIC
        lic_hi = float(cal.lic_domain_mg_per_g[1])
    lic_lo, lic_hi = min(lic_lo, stats.ci95_lic_mg_per_g[0]), max(lic_hi, stats.ci95_lic_mg_per_g[1])
    block["ci95_before_lic_mg_per_g"] = list(stats.ci95_lic_mg_per_g)
    stats.ci95_lic_mg_per_g = (lic_lo, lic_hi)
    blocks = stats.blocks
    if "r2_per_s" in blocks:
        blocks["r2_per_s"]["headline_ci95"] = [lo, hi]
    head = blocks.get("headline")
    if head is not None:
        head["ci95_lic_mg_per_g"] = [lic_lo, lic_hi]
        head["ci95_method"] = str(head.get("ci95_method", "")) + "; " + note
        head[key] = block
    if "lic_mg_per_g" in blocks:
        blocks["lic_mg_per_g"]["ci95"] = [lic_lo, lic_hi]
    if "lic_umol_per_g" in blocks:
        blocks["lic_umol_per_g"]["ci95"] = [lic_lo * _cal.UMOL_PER_MG, lic_hi * _cal.UMOL_PER_MG]
