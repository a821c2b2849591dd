"""The report blocks of :func:`r2mri.stats.liver_statistics` from its headline estimate.

Moved out of ``r2mri/stats.py`` (branch split3): ``stats.py`` computes the headline
(mean liver R2, its interval, the sigma check) into a :class:`HeadlineEstimate`; this
module writes the ``report.json`` blocks from it and from the ROI's voxels: the
distributions (R2, LIC in mg/g and umol/g, fractions above thresholds), ``per_slice``,
``qc``, ``headline``, ``heterogeneity`` (r2mri/_heterogeneity.py), ``sigma_check``
and, for fat-water fits, ``pdff_percent``. No new numbers: each block as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import _gre, _headline
from . import calibration as _cal
from .status import FitStatus


@dataclass
class HeadlineEstimate:
    """The headline of :func:`r2mri.stats.liver_statistics`, as its report blocks need it.

    Attributes
    ----------
    estimator : str
        The estimator used (``"tile-mixture"``, ``"tile-ncchi"``, ``"tile-fw-..."``, ``"voxel-mean"``).
    mean_r2_per_s, lo_r2_per_s, hi_r2_per_s : float
        The mean liver R2 and its 95 % interval (s^-1), after every widening step.
    se_measurement_per_s, se_bootstrap_per_s : float
        The measurement SE and the bootstrap SE of the mean (NaN when not available).
    pooled : PooledR2 or None
        The tile-pooled fit (None: the voxel-mean fallback).
    mixture : Any
        The within-tile spread correction (r2mri/_headline.py), or None.
    boot_stretch : Any
        The bootstrap's stretch for correlated noise (r2mri/_corr_bootstrap.py), or None.
    texture_free : Any
        The interval-basis block of r2mri/_texture_free_ci.py.
    sigma_check : Any
        The noise sigma check (r2mri/_sigma_check.py), or None when not made.
    calibrated : Any
        ``calibrate([mean, lo, hi])``: the headline LIC, its interval and their flags.
    """

    estimator: str
    mean_r2_per_s: float
    lo_r2_per_s: float
    hi_r2_per_s: float
    se_measurement_per_s: float
    se_bootstrap_per_s: float
    pooled: Any
    mixture: Any
    boot_stretch: Any
    texture_free: Any
    sigma_check: Any
    calibrated: Any

    @property
    def lic_mg_per_g(self) -> tuple[float, float, float]:
        """The headline LIC and its 95 % interval (mg Fe/g dry tissue)."""
        lic_head, lic_lo, lic_hi = (float(v) for v in self.calibrated.lic_mg_per_g)
        return lic_head, lic_lo, lic_hi


def _summary(values: np.ndarray, percentiles: Sequence[float]) -> dict[str, Any]:
    """``n``, mean, median, SD, IQR and ``percentiles`` of ``values`` (None for each when empty)."""
    if values.size == 0:
        return {"n": 0, "mean": None, "median": None, "sd": None, "iqr": None,
                "percentiles": {str(p): None for p in percentiles}}
    q = np.percentile(values, list(percentiles) + [25, 75])
    return {
        "n": int(values.size),
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "sd": float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
        "iqr": [float(q[-2]), float(q[-1])],
        "percentiles": {f"{p:g}": float(v) for p, v in zip(percentiles, q[:-2])},
    }


def distribution_blocks(r2v: np.ndarray, licv: np.ndarray, percentiles: Sequence[float],
                        h: HeadlineEstimate) -> tuple[dict, dict, dict, dict]:
    """The blocks ``r2_per_s``, ``lic_mg_per_g``, ``lic_umol_per_g`` and ``fraction_above``
    of the ROI's voxel R2 ``r2v`` (s^-1) and LIC ``licv`` (mg/g) with the headline ``h``."""
    lic_head, lic_lo, lic_hi = h.lic_mg_per_g
    se_meas, se_boot = h.se_measurement_per_s, h.se_bootstrap_per_s
    r2_block = _summary(r2v, percentiles)
    r2_block.update(
        headline_mean=h.mean_r2_per_s,
        headline_se_measurement=se_meas if np.isfinite(se_meas) else None,
        headline_se_bootstrap=se_boot if np.isfinite(se_boot) else None,
        headline_ci95=[h.lo_r2_per_s, h.hi_r2_per_s],
        estimator=h.estimator,
    )
    lic_block = _summary(licv, percentiles)
    lic_block = {"of_mean_r2": lic_head, **lic_block, "ci95": [lic_lo, lic_hi]}
    umol = {key: (None if v is None else v * _cal.UMOL_PER_MG) for key, v in lic_block.items()
            if key in ("of_mean_r2", "mean", "median", "sd")}
    umol["iqr"] = [v * _cal.UMOL_PER_MG for v in lic_block["iqr"]]
    umol["percentiles"] = {p: v * _cal.UMOL_PER_MG for p, v in lic_block["percentiles"].items()}
    umol["ci95"] = [lic_lo * _cal.UMOL_PER_MG, lic_hi * _cal.UMOL_PER_MG]
    umol["factor_umol_per_mg"] = _cal.UMOL_PER_MG
    fraction_above = {f"{t:g}": float(np.mean(licv > t)) for t in _cal.THRESHOLDS_MG_PER_G}
    lic_block["fraction_above"] = fraction_above
    return r2_block, lic_block, umol, fraction_above


def per_slice_block(valid: np.ndarray, r2v: np.ndarray, licv: np.ndarray, pooled: Any, cal: Any) -> list[dict]:
    """The ``per_slice`` block: voxel means and the slice's own headline R2 (its tiles' mean)."""
    per_slice = []
    kk = np.nonzero(valid)[2]
    for k in np.unique(kk):
        sel = kk == k
        entry: dict[str, Any] = {
            "slice": int(k),
            "n_voxels": int(np.count_nonzero(sel)),
            "r2_mean_voxel": float(np.mean(r2v[sel])),
            "lic_mean_voxel": float(np.mean(licv[sel])),
            "lic_median_voxel": float(np.median(licv[sel])),
        }
        if pooled is not None:
            ts = pooled.tile_slice == k
            if ts.any():
                r2s = float(np.sum(pooled.tile_voxels[ts] * pooled.tile_r2_per_s[ts]) / np.sum(pooled.tile_voxels[ts]))
            else:
                r2s = float(np.mean(r2v[sel]))
        else:
            r2s = float(np.mean(r2v[sel]))
        entry["r2_headline"] = r2s
        entry["lic_of_mean_r2"] = float(_cal.lic_from_r2(r2s, cal))
        per_slice.append(entry)
    return per_slice


def qc_block(fit: Any, roi: Any, valid: np.ndarray, stv: np.ndarray, cm: Any, h: HeadlineEstimate,
             sigma: float | None, n_coils: int, cal: Any, warnings: list) -> dict:
    """The ``qc`` block; its warnings (noise floor, extrapolated voxels, fat-water range
    and voxel-tile checks) are appended to ``warnings``."""
    n = int(np.count_nonzero(valid))
    head = h.calibrated
    below = int(np.count_nonzero(stv == FitStatus.BELOW_NOISE))
    bound = int(np.count_nonzero(stv == FitStatus.BOUND_HIT))
    failed_in_roi = int(np.count_nonzero(np.isin(stv, [FitStatus.NOT_CONVERGED, FitStatus.TOO_FEW_ECHOES,
                                                        FitStatus.BAD_INPUT, FitStatus.MASKED])))
    removed = dict(getattr(roi, "removed", {}) or {})
    qc = {
        "n_voxels": n,
        "extrapolated_fraction": cm.extrapolated_fraction,
        "clipped_fraction": cm.clipped_fraction,
        "fraction_at_noise_floor": below / n,
        "fraction_bound_hit": bound / n,
        "fit_failures": failed_in_roi + int(removed.get("fit_failed", 0)),
        "fit_failures_in_roi": failed_in_roi,
        "fit_failures_removed": int(removed.get("fit_failed", 0)),
        "headline_extrapolated": bool(head.extrapolated[0]),
        "headline_clipped": bool(head.clipped[0]),
        "noise_sigma": sigma,
        "coils": n_coils,
    }
    if getattr(fit, "model", None) == "fatwater":  # R2* beyond the train's range (r2mri._gre, issue 15)
        rq, rw = _gre.range_check(fit, valid, h.pooled)
        qc.update(rq)
        warnings += [rw] if rw else []
        from ._voxel_consistency import voxel_tile_check  # voxel fits vs the tile-pooled fit

        vq, vw = voxel_tile_check(fit, valid, h.pooled)
        qc.update(vq)
        warnings += [vw] if vw else []
    elif qc["fraction_at_noise_floor"] > 0.05:
        warnings.append(f"qc: {100 * qc['fraction_at_noise_floor']:.1f} % of ROI voxels at the noise floor "
                        "(too few echoes above the noise: their voxel R2 is not a measurement; the headline uses their "
                        "pooled signal)")
    if cm.extrapolated_fraction > 0.05:
        warnings.append(f"qc: {100 * cm.extrapolated_fraction:.1f} % of ROI voxel LIC values outside the calibrated "
                        f"range of {cal.name} (voxel values are noisy; the headline is "
                        f"{'outside' if head.extrapolated[0] else 'inside'} it)")
    return qc


def _ci95_method(h: HeadlineEstimate, n_bootstrap: int, seed: int) -> str:
    """The ``headline.ci95_method`` text: how the interval was formed, step by step."""
    pooled, mixture, sig_chk = h.pooled, h.mixture, h.sigma_check
    return (f"union of the bootstrap percentile interval over "
            f"{'tiles' if pooled is not None else 'voxels'} ({int(n_bootstrap)} resamples, seed {seed}) "
            + ("stretched for the measured noise correlation, " if h.boot_stretch is not None else "")
            + "and mean +- 1.96 measurement SE" + (", widened by the within-tile spread correction's "
                                                 "own SE in quadrature" if mixture is not None else "")
            + (", with the noise sigma read in the liver and its SE times dR2/dsigma (block sigma_check)"
               if sig_chk is not None and sig_chk.corrected else
               ", and by the noise sigma's SE times dR2/dsigma (block sigma_check)"
               if sig_chk is not None and sig_chk.sigma_air_se is not None else "")
            + ", mapped through the calibration")


def headline_block(h: HeadlineEstimate, cal: Any, tile: "int | str", n: int, n_bootstrap: int, seed: int) -> dict:
    """The ``headline`` block: the LIC of the mean liver R2, its interval and how both were made."""
    lic_head, lic_lo, lic_hi = h.lic_mg_per_g
    pooled, mixture, estimator = h.pooled, h.mixture, h.estimator
    rate = "R2" if cal.sequence == "SE" else "R2*"
    conv = "FerriScan convention" if rate == "R2" else "the mean-rate convention of the R2 route"
    return {
        "lic_mg_per_g": lic_head,
        "lic_umol_per_g": lic_head * _cal.UMOL_PER_MG,
        "r2_per_s": h.mean_r2_per_s,
        "ci95_lic_mg_per_g": [lic_lo, lic_hi],
        "estimator": estimator,
        "definition": (f"LIC of the mean liver {rate} ({conv}); mean {rate} by the tile-pooled "
                       f"noise-corrected estimator{' of the fat-water model' if str(estimator).startswith('tile-fw') else ''}"
                       + (f", corrected for the spread of {rate} within tiles" if mixture is not None else "")
                       if pooled is not None else
                       f"LIC of the mean liver {rate} ({conv}); mean {rate} = mean of voxel {rate} (fallback)"),
        "tiles": getattr(pooled, "tile", tile) if pooled is not None else None,
        "tile_sizes": ({str(s): int(np.sum(pooled.tile_size == s)) for s in np.unique(pooled.tile_size)}
                       if pooled is not None else None),
        "n_tiles": pooled.n_tiles if pooled is not None else None,
        "n_voxels_used": pooled.n_voxels_used if pooled is not None else n,
        "ci95_method": _ci95_method(h, n_bootstrap, seed),
        "mixture": mixture.to_dict() if mixture is not None else None,
        "bootstrap_noise_stretch": h.boot_stretch,
        "interval_basis": h.texture_free,
        "calibration": cal.name,
    }


def heterogeneity_block(fit: Any, valid: np.ndarray, r2v: np.ndarray, stv: np.ndarray, lic_head: float, cal: Any,
                        pooled: Any = None, image: Any = None, sigma: float | None = None, coils: int = 1):
    """The ``heterogeneity`` block (r2mri._heterogeneity) from the fit's voxel R2 and SE;
    with the tile-ncchi headline (``pooled``), tile-pooled fits are the fallback when the
    voxels are too noisy."""
    from ._heterogeneity import liver_heterogeneity, tile_candidates

    std = getattr(fit, "r2_std_per_s", None)
    se = None if std is None else np.asarray(std, dtype=np.float64)[valid]
    if getattr(fit, "model", None) == "fatwater" and image is not None and sigma is not None:
        from ._gre_heterogeneity import gre_tile_candidates  # fat-water tiles (the SE tile fit reads fat as decay)

        tiles = gre_tile_candidates(image, fit, valid, sigma, coils, pooled)
    else:
        tiles = None if pooled is None else tile_candidates(image, valid, sigma, coils, pooled)
    return liver_heterogeneity(r2v, se, stv, headline_lic_mg_per_g=lic_head, calibration=cal, tiles=tiles)


def report_blocks(fit: Any, roi: Any, valid: np.ndarray, r2v: np.ndarray, stv: np.ndarray, cm: Any,
                  h: HeadlineEstimate, category: Any, *, cal: Any, image: Any, sigma: float | None, n_coils: int,
                  tile: "int | str", n_bootstrap: int, seed: int, percentiles: Sequence[float], sigma_check: str,
                  warnings: list) -> dict:
    """Every block of :meth:`r2mri.stats.LiverStatistics.to_dict` but ``warnings``.

    ``category`` is the headline's LIC category; the blocks' warnings are appended to
    ``warnings`` (qc's first, then the heterogeneity's).
    """
    licv = cm.lic_mg_per_g
    n = int(np.count_nonzero(valid))
    r2_block, lic_block, umol, fraction_above = distribution_blocks(r2v, licv, percentiles, h)
    per_slice = per_slice_block(valid, r2v, licv, h.pooled, cal)
    qc = qc_block(fit, roi, valid, stv, cm, h, sigma, n_coils, cal, warnings)
    headline = headline_block(h, cal, tile, n, n_bootstrap, seed)
    het = heterogeneity_block(fit, valid, r2v, stv, h.lic_mg_per_g[0], cal,
                              h.pooled if h.estimator in _headline.POOLED_ESTIMATORS
                              or str(h.estimator).startswith("tile-fw") else None, image, sigma, n_coils)
    if het.warning:
        warnings.append(het.warning)
    sig_chk = h.sigma_check
    blocks = {
        "headline": headline,
        "r2_per_s": r2_block,
        "lic_mg_per_g": lic_block,
        "lic_umol_per_g": umol,
        "category": {**category.to_dict(), "of": "lic_mg_per_g.of_mean_r2"},
        "fraction_above": fraction_above,
        "per_slice": per_slice,
        "qc": qc,
        "umol_per_mg": _cal.UMOL_PER_MG,
        "heterogeneity": het.to_dict(),
        "sigma_check": (sig_chk.to_dict() if sig_chk is not None else
                        {"status": "not made", "reason": "off" if sigma_check == "off" else
                         "no tile-pooled R2 headline of the SE model (the noise sigma enters it only there)"}),
    }
    if getattr(fit, "model", None) == "fatwater":  # PDFF of the ROI (r2mri._gre, issue 15)
        blocks["pdff_percent"] = _gre.pdff_block(fit, valid, h.pooled)
    return blocks
