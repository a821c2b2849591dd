"""Liver statistics: the headline LIC of the mean liver R2, its 95 % interval, distributions.

Headline (FerriScan convention, domain.md section 4): the LIC of the **mean liver R2**.
The plain mean of per-voxel R2 is biased at high iron: at SNR 50 (one channel, TE
6-18 ms) a voxel at R2 ~ 277 s^-1 (40 mg/g) has only two or three echoes above the
noise floor, its noise-corrected fit has a skewed error distribution, and the mean of
the voxel R2 over-estimates the mean R2 by about 8 % at 30 mg/g and 18 % at 40 mg/g
(measured, docs/statistics.md). The headline therefore uses:

**Tile-pooled noise-corrected estimator** (``estimator="tile-ncchi"``)

1. The ROI is cut into in-plane tiles of ``tile x tile`` voxels (default 3 x 3) on each
   slice; tiles with fewer than half their voxels in the ROI are not used (a spatial
   rule, so it does not select on noise).
2. In each tile the magnitude signal is averaged over the tile's ROI voxels, echo by
   echo. Its expectation is the mean of the voxels' non-central chi means, which for a
   tile of (nearly) equal amplitude ``A(TE) = S0 exp(-R2 TE)`` is
   ``ncchi_mean(A, sigma, coils)`` exactly (``r2mri.noise``), and its variance is
   ``(A^2 + 2 n sigma^2 - E[M]^2) / k`` for ``k`` voxels.
3. ``S0`` and ``R2`` of each tile are fitted to that curve by iteratively reweighted
   Levenberg-Marquardt (``E[M]`` evaluated as in the voxel-wise kernels, from the
   interpolation table of ``r2mri.noise.ncchi_table``, relative error < 4e-12). Averaging ``k`` voxels cuts the noise by ``sqrt(k)`` before
   the non-linear fit, which is what removes the bias; the noise floor itself is
   modelled, not subtracted.
4. Mean liver R2 = voxel-count-weighted mean of the tile R2 (equal to the mean of the
   voxels' true R2 to first order, because smooth heterogeneity is nearly constant
   within a 3 x 3 tile).

Needs the magnitude images (``image``) and the noise ``sigma`` / ``coils`` (from the
fit's options or given). Without them the headline falls back to the mean of the
per-voxel R2 (``estimator="voxel-mean"``) and a warning says so.

**95 % interval**: two components, both reported. (a) The per-voxel (per-tile)
uncertainties: the covariance of each tile fit gives ``se_t``; the measurement SE of the
mean is ``sqrt(sum k_t^2 se_t^2) / sum k_t``. (b) A bootstrap over tiles (clusters of
voxels; seeded, ``n_bootstrap`` resamples, percentile interval), which also carries the
spatial heterogeneity (on correlated noise its noise share is stretched by the tiles' mutual
correlation, r2mri/_corr_bootstrap.py). The reported ``ci95`` is the union of the bootstrap percentile
interval and ``mean +- 1.96 SE`` (never narrower than the measurement noise allows),
mapped through the calibration curve (monotonic, so interval ends map to interval ends).

**Heterogeneous livers**: the default (``estimator="auto"``) is ``"tile-mixture"``, the
tiles above corrected for the spread of R2 inside them, with the correction's own error
added to the interval (``r2mri/_headline.py``, docs/statistics.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import _corr_bootstrap, _gre, _headline, _s0_texture, _texture_free_ci
from . import _stats_blocks as _blocks
from . import calibration as _cal
from ._corr_tiles import material_rho
from ._pooled_tiles import PooledR2, _tile_fit, _tile_ids, pooled_mean_r2  # noqa: F401  (public here, as before)
from . import _sigma_check  # the noise sigma's own error (issue 16)
from ._numba_setup import njit
from .errors import InputError

__all__ = ["LiverStatistics", "liver_statistics", "pooled_mean_r2", "PooledR2", "PERCENTILES"]

#: Percentiles reported for R2 and LIC.
PERCENTILES = (5, 10, 25, 50, 75, 90, 95)
_Z95 = 1.959963984540054  # Phi^-1(0.975)


# --------------------------------------------------------------------------- statistics
@dataclass
class LiverStatistics:
    """Liver statistics; :meth:`to_dict` gives the report.json blocks.

    Attributes
    ----------
    headline_lic_mg_per_g : float
        LIC of the mean liver R2 (by ``estimator``), mg Fe / g dry tissue.
    headline_r2_per_s : float
        The mean liver R2 the headline is computed from.
    ci95_lic_mg_per_g : tuple of float
        95 % interval of the headline.
    estimator : str
        ``"tile-ncchi"`` or ``"voxel-mean"`` (fallback).
    category : LicCategory
    blocks : dict
        The report blocks (see :meth:`to_dict`).
    warnings : list of str
    """

    headline_lic_mg_per_g: float
    headline_r2_per_s: float
    ci95_lic_mg_per_g: tuple[float, float]
    estimator: str
    category: Any
    blocks: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """report.json blocks: ``r2_per_s``, ``lic_mg_per_g``, ``lic_umol_per_g``,
        ``category``, ``fraction_above``, ``per_slice``, ``headline``, ``qc``,
        ``heterogeneity`` (r2mri._heterogeneity), ``warnings``."""
        out = {k: v for k, v in self.blocks.items()}
        out["warnings"] = list(self.warnings)
        return out


def _fit_sigma(fit: Any, noise_sigma: float | None, coils: int | None) -> tuple[float | None, int]:
    opts = getattr(fit, "options", None) or {}
    sigma = noise_sigma if noise_sigma is not None else opts.get("noise_sigma")
    n = coils if coils is not None else opts.get("coils", 1)
    try:
        n = int(round(float(n))) if n is not None else 1
    except (TypeError, ValueError):
        n = 1
    if sigma is not None:
        sigma = float(sigma)
        if not (np.isfinite(sigma) and sigma > 0):
            sigma = None
    return sigma, max(n, 1)


@njit(error_model="numpy")
def _resampled_ratios(idx, wu, w, out):
    """``out[r] = sum_j wu[idx[r, j]] / sum_j w[idx[r, j]]``: the weighted means of the
    bootstrap resamples in one pass over the indices (numpy's ``wu[idx].sum(axis=1)``
    gathers two temporary arrays of the indices' size first: 0.20 -> 0.07 s of CPU for the
    2000 x 19,562 resamples of the FerriScan phantom). Sums run in index order
    (numpy sums pairwise): the means differ by rounding only (~1e-16 relative)."""
    for r in range(idx.shape[0]):
        s1 = 0.0
        s2 = 0.0
        for j in range(idx.shape[1]):
            k = idx[r, j]
            s1 += wu[k]
            s2 += w[k]
        out[r] = s1 / s2


def liver_statistics(
    fit: Any,
    roi: Any,
    calibration: "str | Any" = _cal.DEFAULT_CALIBRATION,
    *,
    image: Any = None,
    noise_sigma: float | None = None,
    coils: int | None = None,
    estimator: str = "auto",
    tile: "int | str" = "adaptive",
    n_bootstrap: int = 2000,
    seed: int = 0,
    percentiles: Sequence[float] = PERCENTILES,
    noise_correlation: "dict | None" = None,
    sigma_check: str = "correct",
    interval: str = "bootstrap",
) -> LiverStatistics:
    """Headline LIC of the mean liver R2 with its 95 % interval, and the distributions.

    Parameters
    ----------
    fit : FitResult
        ``r2_per_s``, ``status`` (and ``options`` with ``noise_sigma``/``coils``).
    roi : LiverROI or ndarray of bool
        The liver ROI (:func:`r2mri.roi.liver_roi`). A LiverROI's ``not_converged`` voxels
        (removed only because their voxel fit did not converge) also enter the tile-pooled
        headline, which fits magnitudes; a plain array is used as given.
    calibration : str, Path or Calibration, default "st-pierre-2005"
    image : MultiEchoImage, optional
        The magnitude images; needed for the tile-pooled headline estimator.
    noise_sigma, coils : optional
        Override the fit's noise parameters.
    estimator : {"auto", "tile-mixture", "tile-ncchi", "voxel-mean"}, default "auto"
        Mean liver R2 for the headline: ``"tile-mixture"`` (the tiles corrected for the
        spread of R2 within them, :mod:`r2mri._headline`; needs ``image`` and the noise
        sigma; raises without them), ``"tile-ncchi"`` (the tiles uncorrected: biased low
        in heterogeneous livers), ``"voxel-mean"`` (mean of the fit's voxel R2; biased
        high at high iron), ``"auto"`` (the first when possible, else the second with a
        warning). For a fat-water fit (``fit.model == "fatwater"``) the tile-pooled
        estimator fits the fat-water model to each tile (``"tile-fw-ncchi"``, r2mri/_gre.py)
        and ``blocks["pdff_percent"]`` holds the ROI's PDFF.
    tile : int or "adaptive", default "adaptive"
        Tiles of the pooled estimator (:func:`pooled_mean_r2`).
    n_bootstrap : int, default 2000
        Bootstrap resamples over tiles (voxels for the fallback) for ``ci95``.
    seed : int, default 0
        Seed of the bootstrap (results are deterministic).
    noise_correlation : dict, optional
        ``NoiseEstimate.spatial_correlation``: when the noise is materially correlated between
        voxels (the report's warning rule), the tile-pooled headline's noise counts, fit-bias
        terms and measurement SE account for it (r2mri/_corr_tiles.py); else ignored.
    percentiles : sequence of float
    sigma_check : {"correct", "liver", "widen", "off"}, default "correct"
        The noise sigma's own error (r2mri/_sigma_check.py, block ``sigma_check``): where the
        liver's echoes reach the noise floor, its sigma is read there and the headline uses it
        (``"liver"``: scaled by the tiles' R2 ratio, or recomputed when it differs from the
        air's beyond noise, with a warning), with its SE carried into the interval through the
        measured dR2/dsigma; elsewhere the air sigma's SE is carried. ``"correct"``: the liver's
        sigma only on a mismatch (the interval still reaches its headline); ``"widen"``: never
        (the interval reaches it; a mismatch warns in red); ``"off"``: none of it. Only the
        tile-pooled headline of the SE model is checked (not fat-water fits); ``per_slice``
        keeps the air's sigma.
    interval : {"bootstrap", "texture-free"}, default "bootstrap"
        The interval's basis before its widening steps (r2mri/_texture_free_ci.py, opt-in).

    Returns
    -------
    LiverStatistics

    Raises
    ------
    InputError
        Empty ROI or maps that do not match.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> r2 = np.full((10, 10, 2), 102.3)
    >>> fit = SimpleNamespace(r2_per_s=r2, status=np.zeros(r2.shape, np.uint8), options={})
    >>> s = liver_statistics(fit, np.ones(r2.shape, bool))
    >>> round(s.headline_lic_mg_per_g, 2), s.category.name, s.estimator
    (7.0, 'target-range', 'voxel-mean')
    """
    cal = _cal.get_calibration(calibration)
    valid, r2v, stv = _roi_voxels(fit, roi)
    warnings: list[str] = []
    cm = _cal.calibrate(r2v, cal)
    sigma, n_coils = _fit_sigma(fit, noise_sigma, coils)
    rng = np.random.default_rng(seed)
    _check_options(sigma_check, estimator, image, sigma)
    pooled, mixture, estimator, pool_mask = _pooled_headline(fit, roi, image, valid, sigma, n_coils, tile=tile,
                                                             seed=seed, estimator=estimator,
                                                             noise_correlation=noise_correlation, warnings=warnings)
    estimator, mean_r2, se_meas, units, weights = _headline_mean(pooled, estimator, fit, valid, r2v)
    b_lo, b_hi, se_boot, boot_stretch = _bootstrap_interval(units, weights, n_bootstrap, rng, pooled, mean_r2, se_meas)
    lo, hi = b_lo, b_hi
    if np.isfinite(se_meas):
        lo, hi = min(lo, mean_r2 - _Z95 * se_meas), max(hi, mean_r2 + _Z95 * se_meas)
    lo, hi, tf_block = _texture_free_ci.apply(interval, lo, hi, mean_r2, se_meas, pooled, fit, valid, warnings)
    lo, hi = _headline.widen_interval(lo, hi, mean_r2, mixture)  # the correction's own error
    sig_chk = None
    if pooled is not None and sigma_check != "off" and getattr(fit, "model", None) != "fatwater":
        sig_chk, mean_r2, lo, hi = _checked_sigma(image, pooled, pool_mask, sigma, n_coils, fit, mean_r2, lo, hi,
                                                  tile=tile, seed=seed, estimator=estimator,
                                                  noise_correlation=noise_correlation, mode=sigma_check)
        warnings.extend(sig_chk.warnings)
    warnings.extend(mixture.warnings if mixture is not None else [])
    warnings.extend(_s0_texture.report_warning(mixture, mean_r2, cal))  # fine S0 texture vs kappa's prior (issue 16)
    head = _cal.calibrate(np.array([mean_r2, lo, hi]), cal)
    h = _blocks.HeadlineEstimate(estimator, mean_r2, lo, hi, se_meas, se_boot, pooled, mixture, boot_stretch,
                                 tf_block, sig_chk, head)
    lic_head, lic_lo, lic_hi = h.lic_mg_per_g
    category = _cal.lic_category(lic_head)
    if head.extrapolated[0]:
        warnings.append(f"headline: LIC {lic_head:.2f} mg/g is outside the calibrated range of {cal.name}")
    if head.clipped[0]:
        warnings.append(f"headline: mean R2 {mean_r2:.1f} /s is outside the domain of {cal.name}; LIC clipped")
    blocks = _blocks.report_blocks(fit, roi, valid, r2v, stv, cm, h, category, cal=cal, image=image, sigma=sigma,
                                   n_coils=n_coils, tile=tile, n_bootstrap=n_bootstrap, seed=seed,
                                   percentiles=percentiles, sigma_check=sigma_check, warnings=warnings)
    return LiverStatistics(lic_head, mean_r2, (lic_lo, lic_hi), estimator, category, blocks, warnings)


# --------------------------------------------------------------------------- steps of liver_statistics
def _roi_voxels(fit: Any, roi: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(valid, r2v, stv)``: the ROI's voxels with a finite R2, their R2 (s^-1) and fit status.

    Raises ``InputError`` when the ROI and the map do not match or no voxel is left.
    """
    mask = np.asarray(getattr(roi, "mask", roi), dtype=bool)
    r2map = np.asarray(fit.r2_per_s, dtype=np.float64)
    status = np.asarray(getattr(fit, "status", np.zeros(r2map.shape, np.uint8)))
    if mask.shape != r2map.shape:
        raise InputError(f"roi: shape {mask.shape} does not match the R2 map {r2map.shape}")
    valid = mask & np.isfinite(r2map)
    n = int(np.count_nonzero(valid))
    if n == 0:
        raise InputError("roi: no voxel with a finite R2 in the liver ROI")
    return valid, r2map[valid], status[valid]


def _check_options(sigma_check: str, estimator: str, image: Any, sigma: float | None) -> None:
    """Refuse an unknown ``sigma_check`` or ``estimator``, and a pooled estimator without its inputs."""
    if sigma_check not in ("correct", "widen", "liver", "off"):
        raise InputError(f"sigma_check: expected 'correct', 'widen', 'liver' or 'off', got {sigma_check!r}")
    if estimator not in ("auto", "tile-mixture", "tile-ncchi", "voxel-mean"):
        raise InputError(f"estimator: expected 'auto', 'tile-mixture', 'tile-ncchi' or 'voxel-mean', got {estimator!r}")
    if estimator in _headline.POOLED_ESTIMATORS and (image is None or sigma is None):
        raise InputError(f"estimator: {estimator!r} needs the magnitude images (image=) and the noise sigma")


def _pooled_headline(fit: Any, roi: Any, image: Any, valid: np.ndarray, sigma: float | None, n_coils: int, *,
                     tile: "int | str", seed: int, estimator: str, noise_correlation: "dict | None",
                     warnings: list) -> tuple[Any, Any, str, "np.ndarray | None"]:
    """The tile-pooled headline fit, or why there is none (appended to ``warnings``).

    Returns ``(pooled, mixture, estimator, pool_mask)``: the pooled fit and its within-tile
    spread correction (None, None for the voxel-mean fallback), the estimator as resolved,
    and the voxels pooled (None where not formed: fat-water fits, no pooled estimator).
    """
    pooled = mixture = pool_mask = None
    if estimator == "voxel-mean":
        pass
    elif image is not None and sigma is not None:
        try:
            if getattr(fit, "model", None) == "fatwater":  # fat-water: R2* (issue 15)
                pooled = _gre.pooled_headline(fit, image, valid, sigma, n_coils, tile, seed=seed,
                                              estimator=estimator, noise_rho=material_rho(noise_correlation))
                mixture = pooled.mixture  # the within-tile spread correction of R2* (r2mri/_gre_mixture.py)
            else:
                # with the voxels whose own fit did not converge (r2mri/roi.py, LiverROI.not_converged)
                nc = getattr(roi, "not_converged", None)
                pool_mask = valid | nc if nc is not None and np.shape(nc) == valid.shape else valid
                pooled, mixture, estimator = _headline.headline_pooled(
                    image, pool_mask, noise_sigma=sigma, coils=n_coils, tile=tile, seed=seed, estimator=estimator,
                    noise_rho=material_rho(noise_correlation))
        except InputError as exc:
            warnings.append(f"headline: tile-pooled estimator not possible ({exc}); used the mean of voxel R2")
    elif image is None:
        warnings.append("headline: no magnitude images given; used the mean of voxel R2 (biased high at high iron)")
    else:
        warnings.append("headline: noise sigma unknown; used the mean of voxel R2 (biased high at high iron)")
    return pooled, mixture, estimator, pool_mask


def _headline_mean(pooled: Any, estimator: str, fit: Any, valid: np.ndarray,
                   r2v: np.ndarray) -> tuple[str, float, float, np.ndarray, np.ndarray]:
    """``(estimator, mean_r2, se_measurement, units, weights)`` of the headline: the pooled
    tiles', or the voxels' (fallback, SE from the fit's voxel SEs; NaN without them)."""
    if pooled is not None:
        estimator = getattr(pooled, "estimator", estimator)
        mean_r2, se_meas = pooled.mean_r2_per_s, pooled.se_r2_per_s
        units, weights = pooled.tile_r2_per_s, pooled.tile_voxels.astype(np.float64)
    else:
        n = int(np.count_nonzero(valid))
        estimator = "voxel-mean"
        std = getattr(fit, "r2_std_per_s", None)
        mean_r2 = float(np.mean(r2v))
        if std is not None:
            s = np.asarray(std, dtype=np.float64)[valid]
            s = s[np.isfinite(s)]
            se_meas = float(np.sqrt(np.sum(s**2)) / n) if s.size == n else float("nan")
        else:
            se_meas = float("nan")
        units, weights = r2v, np.ones(n)
    return estimator, mean_r2, se_meas, units, weights


def _bootstrap_interval(units: np.ndarray, weights: np.ndarray, n_bootstrap: int, rng: Any, pooled: Any,
                        mean_r2: float, se_meas: float) -> tuple[float, float, float, Any]:
    """``(lo, hi, se_bootstrap, stretch)``: the percentile interval of the weighted mean of
    ``units`` over ``n_bootstrap`` resamples (the mean and NaN without any), stretched for
    correlated noise (r2mri/_corr_bootstrap.py; ``stretch`` None when not)."""
    if not (n_bootstrap > 0 and units.size > 1):
        return mean_r2, mean_r2, float("nan"), None
    n_bootstrap = int(n_bootstrap)
    boot = np.empty(n_bootstrap)
    chunk = max(1, int(2_000_000 // units.size))  # bounded memory (~16 MB per array)
    wu = weights * units  # the same products as weights[idx] * units[idx], formed once
    # the means of one chunk are taken on a thread (the kernel releases the GIL) while
    # the next chunk's indices are drawn here: the same draws in the same order, the
    # same numbers (liver_statistics on the FerriScan phantom: 0.18 -> 0.145 s); the
    # thread ends with the call (the with block joins it, docs/architecture.md)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for start in range(0, n_bootstrap, chunk):
            stop = min(start + chunk, n_bootstrap)
            idx = rng.integers(0, units.size, size=(stop - start, units.size))
            if pending is not None:
                pending.result()
            pending = pool.submit(_resampled_ratios, idx, wu, weights, boot[start:stop])
        pending.result()
    boot_stretch = None
    if pooled is not None and pooled.tile_noise_between > 1.0:  # correlated noise (r2mri/_corr_bootstrap.py)
        boot, boot_stretch = _corr_bootstrap.correlated_bootstrap(boot, mean_r2, se_meas, pooled.tile_noise_between)
    b_lo, b_hi = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    return b_lo, b_hi, float(np.std(boot, ddof=1)), boot_stretch


def _checked_sigma(image: Any, pooled: Any, pool_mask: "np.ndarray | None", sigma: float, n_coils: int, fit: Any,
                   mean_r2: float, lo: float, hi: float, *, tile: "int | str", seed: int, estimator: str,
                   noise_correlation: "dict | None", mode: str) -> tuple[Any, float, float, float]:
    """The noise sigma's own error (r2mri/_sigma_check.py): ``(check, mean_r2, lo, hi)`` with
    the headline at the liver's sigma or the interval widened by sigma's SE."""
    sig_chk = _sigma_check.sigma_check(image, pooled, sigma, n_coils, _sigma_check.air_sigma_se(fit, sigma),
                                       noise_rho=material_rho(noise_correlation), mode=mode)
    if sig_chk.needs_rerun(mean_r2, lo, hi):  # the headline itself at the liver's sigma
        try:
            again = _headline.headline_pooled(image, pool_mask, noise_sigma=sig_chk.sigma_liver, coils=n_coils,
                                              tile=tile, seed=seed, estimator=estimator,
                                              noise_rho=material_rho(noise_correlation))
            sig_chk.r2_shift_relative = again[0].mean_r2_per_s / mean_r2 - 1.0
        except InputError:  # kept: the tiles' ratio
            pass
    mean_r2, lo, hi = sig_chk.apply(mean_r2, lo, hi)  # sigma's SE; the liver's sigma (r2mri/_sigma_check.py)
    return sig_chk, mean_r2, lo, hi
