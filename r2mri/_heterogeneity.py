"""The liver's heterogeneity: voxel R2 spread with the noise removed, and clinical categories.

Two measures of the ROI's *true* voxel R2 (what the voxels would read without noise),
each from the voxel fits ``r2_per_s`` and their standard errors ``r2_std_per_s``:

**CV after removing noise (moments).** With ``r_i = t_i + e_i`` (truth + fit error,
``E e_i = 0``, ``Var e_i = se_i^2``) the spread of the truth over the ROI is

    v = (1/n) sum (r_i - mean r)^2 - (1/n) sum se_i^2,    CV = sqrt(max(v, 0)) / mean r

(population SD over the ROI's voxels, as the phantom truth defines it). ``se_i`` is the
fit's sandwich standard error (docs/fitting.md), which matches the voxels' real error
SD within 1-2 % in the near-Gaussian regime (measured on the FerriScan phantom, 64 x 64,
1 channel: var(error) / mean(se^2) = 1.01-1.02 at 1-7 mg/g and SNR 20-100, 0.96-0.99 at
15-40 mg/g and SNR 100). Its standard error, about the ROI's own truth (only the noise
is random), is ``sqrt(sum(4 d_i^2 se_i^2 + 2 se_i^4)) / n`` (Gaussian errors,
``d_i^2`` estimated by ``(r_i - mean r)^2 - se_i^2`` floored at 0), to which a model
term ``NOISE_VAR_REL_UNCERTAINTY * mean(se^2)`` is added in quadrature: the measured
mismatch of the noise variance above, so the interval carries the estimator's own
error. The 95 % interval maps ``v -+ 1.96 SE(v)`` through ``sqrt(max(., 0)) / mean r``.

**When it is not measurable.** At high iron and low SNR the voxel fits leave the
Gaussian regime: voxels at the noise floor, a long right tail of R2 and plug-in SEs that
are far too large for a few voxels (LIC 30 mg/g, SNR 50, 1 channel: mean(se^2) 2.6 x the
real error variance; 40 mg/g: 26 x). Subtracting the noise then gives nonsense (negative
variances of -0.3 in CV units). Voxels whose SE exceeds ``SE_OUTLIER_FACTOR`` (5) x the
median SE (coil shading alone spreads the SEs by less than 3 x) are left out of both
terms when they are at most ``MAX_SE_OUTLIER_FRACTION`` (2 %) of the ROI. They are not
dropped from the ROI: they are the high-R2 tail of a textured liver, or a focal
high-iron region (25 mg/g in a 3 mg/g liver at SNR 20, 8 channels: the CV of the other
voxels read 0.189 against a truth of 0.225, outside its interval). The CV stays that of
the measured voxels (the outliers are selected on their noise, so their fitted R2 reads
high), but the interval reaches up to them as a cluster at their median fitted R2 with
their robust spread, the category fractions count them at that median
(``_with_unmeasured``, ``se_outliers_note``), and when the voxels do not warn the tiles'
bound below is tried as well (the trimmed tail makes the voxel CV read low). The
measure is reported only when at most ``MAX_FLOOR_FRACTION`` (0.5 %) of the voxels are at
the noise floor or lack a finite SE and at most 2 % are such outliers [D: full-size
phantoms, docs/statistics.md section 4; the limit was 0.5 % for both together, which left
a 7 mg/g liver of log-SD 0.4 at SNR 20 (0.8 % outliers, all in its high tail)
unmeasured and unwarned]. It is also not
measurable when the voxel R2 variance lies more than ``SE_CONTRADICTION_Z`` (3) of its
SEs below ``mean(se^2)``: the SEs then overstate the voxel errors (a model that does not
fit, smoothed noise) and subtracting them would report a spuriously uniform liver (a real
3 T liver fitted with the complex model despite bipolar readouts read CV 0.0 [0, 0]). Else the CV and the category fractions are ``None`` with the
reason, and the report says that the heterogeneity is not measurable at this iron level
and SNR (not a warning of heterogeneity: a statement that it cannot be seen). Measured
(64 x 64 phantoms, 1 channel, before the 2 % limit): measurable up to 5 mg/g at SNR 20,
15 mg/g at SNR 50, 40 mg/g at SNR 100.

**Lower bound from tiles.** Then the same noise subtraction is applied to tile-pooled R2
(voxel-weighted, each tile's fit SE; ``r2mri.stats.pooled_mean_r2``), which averages
the noise before the fit: the between-tile CV is a lower bound of the voxel CV (texture
finer than a tile is averaged out). Tilings are tried finest first: 2 x 2, 3 x 3, then
the headline's adaptive tiles; the first whose SEs pass the checks is used. It is given
(``r2_cv_lower_bound_tiles``, 95 % interval with a 15 % model uncertainty of the tiles'
noise variance [D: the tiles' SE was 5-12 % short on uniform phantoms]) when tiles with
an SE over 5 x the median hold at most 2 % of the voxels and the tiles' RMS relative SE
is at most 0.07 [D]; it warns when its interval lies above the CV level below. Measured (64 x 64 phantoms, 10-40 mg/g,
SNR 20-100): 0.000-0.024 on uniform livers; 0.113-0.172 against a truth of 0.151-0.180
on textured ones (20 mm texture; 2 x 2 tiles within 0.01 of the truth at SNR 50-100).

**Category fractions (deconvolved).** The fraction of the ROI in each clinical category
(``r2mri.calibration.CATEGORIES``) of the *true* voxel LIC. Counting the noisy voxel LIC
puts noise into the tails (homogeneous phantoms, SNR 20, 1 channel: at 1 mg/g 6.4 % of
the voxels read "mildly raised", at 7 mg/g 2.7 % read below 3.2 and 1.4 % above 15 mg/g;
deconvolved: 0.0 %, 0.0 % and 0.1 %). Instead the distribution ``G`` of the true voxel R2 is
estimated by nonparametric maximum likelihood under the model
``r_i ~ N(t_i, s_i(t_i)^2)``, ``t_i ~ G`` (``s_i`` the voxel's SE carried to the true R2,
:func:`deconvolved_r2_distribution`): the "Kiefer-Wolfowitz NPMLE" (Kiefer and Wolfowitz,
1956, as cited by Koenker R, Gu J, "REBayes: an R package for empirical Bayes mixture
methods", cemmap working paper CWP37/17 [C: citation as read there; journal, volume and
pages not checked]), with heteroscedastic known errors as in "Multivariate,
heteroscedastic empirical Bayes via nonparametric maximum likelihood", arXiv:2109.03466
[C: abstract read]; computed on a fixed grid of R2 by the fixed-support EM iteration (as
in the R packages ssa::uni.npmle, ebTobit::EM [C: their docs]). The
masses of ``G`` are mapped to LIC through the calibration and summed per category. To
keep the cost bounded, voxels are grouped by SE and histogrammed in R2 before the EM.
Accuracy against the truth of the ROI (largest error of any category, percentage points;
64 x 64 phantoms, 1 channel, seeds 4 and 5; docs/statistics.md): homogeneous livers at
1, 5, 10 mg/g <= 0.1 / 0.0 / 0.0 at SNR 20 / 50 / 100 (10 mg/g not measurable at SNR 20;
counting the noisy voxels: 21 / 1.8 / 0.0); log-normal textures (CV 0.3 at 2-10 mg/g) and the heterogeneous phantom
<= 12.6 / 6.0 / 1.5 (counting: 19.3 / 5.4 / 1.4; the 6.0 is the 2 mg/g texture that
straddles 1.8 mg/g, where counting did better). Deconvolution is ill-posed: at SNR 20
read the fractions to about +-12 points.

**Warning rule** (r2mri's own choice [D], not published constants). The report warns
in one line when either

* heterogeneity is demonstrated (the CV's 95 % interval excludes 0) and at least
  ``WARN_SHARE`` (10 %) of the ROI lies in another category than the headline's *by a
  clear margin*: LIC above ``upper x (1 + WARN_MARGIN)`` or below
  ``lower / (1 + WARN_MARGIN)`` of the headline's band, ``WARN_MARGIN`` = 0.15 (the
  margin keeps a homogeneous liver that sits on a threshold from warning: its
  deconvolved spread is a few per cent in R2); or
* the lower end of the 95 % interval of the noise-corrected R2 CV reaches the level at
  which a log-normal liver centred in the 3.2-7 mg/g band has ``WARN_SHARE`` of its
  voxels outside the band: ``CV = h / z``, ``h`` half the band's width in log R2 under
  the calibration used, ``z = Phi^-1(1 - WARN_SHARE / 2)`` (0.145 for St Pierre at
  1.5 T): the two rules ask the same share.

Published thresholds for "clinically relevant" heterogeneity could not be found; the
values above are documented choices, set so that no homogeneous phantom warns
(SNR 20-100) and the shipped heterogeneous phantom (focal regions) does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import calibration as _cal
from ._npmle import deconvolved_r2_distribution
from .status import FitStatus

__all__ = ["Heterogeneity", "liver_heterogeneity", "category_fractions", "deconvolved_r2_distribution",
           "tile_candidates", "warn_cv_level", "WARN_SHARE", "WARN_MARGIN"]

_Z95 = 1.959963984540054  # Phi^-1(0.975)
#: Relative uncertainty of the noise variance mean(se^2) (model error of the
#: subtraction) [D: measured mismatch 0.96-1.02 on phantoms, module docstring].
NOISE_VAR_REL_UNCERTAINTY = 0.05
#: Largest share of ROI voxels at the noise floor (or without a finite SE) for which the
#: voxel noise is treated as Gaussian [D].
MAX_FLOOR_FRACTION = 0.005
#: Largest share of ROI voxels with an SE over ``SE_OUTLIER_FACTOR`` x the median for which
#: the CV is given (they widen its interval, ``_with_unmeasured``) [D: docs/statistics.md
#: section 4, full-size phantoms at SNR 20-50, 1 and 8 channels].
MAX_SE_OUTLIER_FRACTION = 0.02
#: Voxels with an SE above this many median SEs are plug-in outliers [D: coil shading
#: alone spreads the SEs < 3-fold on the phantoms].
SE_OUTLIER_FACTOR = 5.0
#: The voxel R2 variance is this many of its SEs *below* the fits' mean squared SE: the
#: SEs overstate the voxel errors, so noise removal is invalid (not measurable) [D: at 3
#: SEs a uniform liver with correct SEs is refused ~0.1 % of the time; a real 3 T liver
#: fitted with a model that ignores its bipolar-readout phase had var 108 against
#: mean(se^2) 200 (s^-2), benchmarks/real_liver.py, and was reported CV 0.0 [0, 0]].
SE_CONTRADICTION_Z = 3.0
#: Warning rule, r2mri's own choices [D] (module docstring).
WARN_SHARE = 0.10
WARN_MARGIN = 0.15
#: The band whose width sets the CV level of the warning (module docstring).
_WARN_CV_BAND_MG_PER_G = (3.2, 7.0)
#: What the CV level of the warning (:func:`warn_cv_level`) means, for the warning's reader.
_LEVEL_WORDS = (f", the variation at which {100 * WARN_SHARE:.0f} % of a liver centred in the chelation target "
                f"range ({_WARN_CV_BAND_MG_PER_G[0]:g}-{_WARN_CV_BAND_MG_PER_G[1]:g} mg/g) lies outside it")
#: Tile fallback (voxels too noisy): largest share of ROI voxels in outlying tiles and
#: largest RMS relative SE of the tiles; model uncertainty of the tiles' noise variance
#: [D: measured on 64 x 64 phantoms at 15-40 mg/g, SNR 20-50, docs/statistics.md].
MAX_TILE_OUTLIER_FRACTION = 0.02
MAX_TILE_REL_SE = 0.07
TILE_NOISE_VAR_REL_UNCERTAINTY = 0.15


@dataclass
class Heterogeneity:
    """Heterogeneity of the liver ROI (:func:`liver_heterogeneity`); ``to_dict()`` is the
    report.json block ``heterogeneity``."""

    r2_cv_noise_corrected: float | None
    r2_cv_se: float | None
    r2_cv_ci95: list | None
    category_fractions: dict[str, float] | None
    different_fraction: float | None
    measurable: bool
    warning: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "r2_cv_noise_corrected": self.r2_cv_noise_corrected,
            "r2_cv_se": self.r2_cv_se,
            "r2_cv_ci95": self.r2_cv_ci95,
            "category_fractions": self.category_fractions,
            "different_category_fraction": self.different_fraction,
            "measurable": self.measurable,
            "warning": self.warning,
            **self.details,
        }


def category_fractions(lic_mg_per_g: Any, weights: Any = None) -> dict[str, float]:
    """Fraction of values (or of ``weights``) in each clinical LIC category.

    Parameters
    ----------
    lic_mg_per_g : array_like
        LIC values (mg Fe / g dry tissue); non-finite values are ignored.
    weights : array_like, optional
        Mass of each value (default 1).

    Returns
    -------
    dict
        ``{category name: fraction}`` for every band of ``r2mri.calibration.CATEGORIES``
        (upper-inclusive, as :func:`r2mri.calibration.lic_category`), summing to 1.

    Examples
    --------
    >>> category_fractions([1.0, 2.0, 5.0, 5.0])["target-range"]
    0.5
    """
    lic = np.asarray(lic_mg_per_g, dtype=np.float64).ravel()
    w = np.ones_like(lic) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    ok = np.isfinite(lic) & np.isfinite(w)
    lic, w = lic[ok], w[ok]
    total = float(w.sum())
    out = {}
    for cat in _cal.CATEGORIES:
        sel = np.ones(lic.shape, dtype=bool)
        if cat.lower_mg_per_g is not None:
            sel &= lic > cat.lower_mg_per_g
        if cat.upper_mg_per_g is not None:
            sel &= lic <= cat.upper_mg_per_g
        out[cat.name] = float(w[sel].sum() / total) if total > 0 else 0.0
    return out


def _different_fraction(lic: np.ndarray, w: np.ndarray, headline_category: Any) -> float:
    """Mass outside the headline's band by more than WARN_MARGIN (relative, in LIC)."""
    lo, hi = headline_category.lower_mg_per_g, headline_category.upper_mg_per_g
    out = np.zeros(lic.shape, dtype=bool)
    if hi is not None:
        out |= lic > hi * (1.0 + WARN_MARGIN)
    if lo is not None:
        out |= lic < lo / (1.0 + WARN_MARGIN)
    return float(w[out].sum() / max(w.sum(), 1e-300))


def warn_cv_level(calibration: "str | Any" = _cal.DEFAULT_CALIBRATION) -> float:
    """R2 CV at which a log-normal liver centred in the 3.2-7 mg/g band has ``WARN_SHARE``
    of its voxels outside the band (the CV level of the warning).

    Examples
    --------
    >>> round(warn_cv_level("st-pierre-2005"), 3)
    0.145
    """
    from scipy.stats import norm

    lo, hi = (float(v) for v in _cal.r2_from_lic(np.array(_WARN_CV_BAND_MG_PER_G), calibration))
    return float(0.5 * np.log(hi / lo) / norm.isf(WARN_SHARE / 2.0))


def _cv_moments(r: np.ndarray, se: np.ndarray) -> tuple[float, float, float, float]:
    """(v, SE(v), mean r, mean se^2) of the noise-corrected variance."""
    n = r.size
    mean = float(r.mean())
    d2 = (r - mean) ** 2
    se2 = se * se
    v = float(d2.mean() - se2.mean())
    t2 = np.maximum(d2 - se2, 0.0)
    var_v = float(np.sum(4.0 * t2 * se2 + 2.0 * se2 * se2)) / n**2
    var_v += (NOISE_VAR_REL_UNCERTAINTY * float(se2.mean())) ** 2
    return v, float(np.sqrt(var_v)), mean, float(se2.mean())


def tile_candidates(image: Any, mask: Any, noise_sigma: float, coils: int, headline: Any = None):
    """Tile-pooled R2 of the ROI for the fallback, finest first, computed lazily: 2 x 2 and
    3 x 3 tiles (``r2mri.stats.pooled_mean_r2``), then the headline's own (adaptive) tiles.

    Yields ``(name, (r2_per_s, se_per_s, n_voxels))``; a size that cannot be fitted is
    skipped.
    """
    from .errors import InputError
    from .stats import pooled_mean_r2

    for size in (2, 3):
        try:
            p = pooled_mean_r2(image, mask, noise_sigma=noise_sigma, coils=coils, tile=size)
        except InputError:
            continue
        yield f"{size}x{size}", (p.tile_r2_per_s, p.tile_se_r2_per_s, p.tile_voxels)
    if headline is not None:
        yield "headline (adaptive)", (headline.tile_r2_per_s, headline.tile_se_r2_per_s, headline.tile_voxels)


def _tile_bound_of(r: np.ndarray, se: np.ndarray, k: np.ndarray) -> tuple[float, list, dict] | None:
    """(bound, 95 % interval, checks) of one tiling, or None with the checks failing."""
    good = np.isfinite(r) & np.isfinite(se) & (se > 0) & (r > 0)
    if good.sum() < 20:
        return None
    ok = good & (se <= SE_OUTLIER_FACTOR * np.median(se[good]))
    excluded = float(k[~ok].sum() / k.sum())
    r, se, k = r[ok], se[ok], k[ok]
    w = k / k.sum()
    rel = float(np.sqrt(np.sum(w * (se / r) ** 2)))
    checks = {"tiles_excluded_voxel_fraction": excluded, "tiles_rms_relative_se": rel}
    if excluded > MAX_TILE_OUTLIER_FRACTION or rel > MAX_TILE_REL_SE:
        return None
    mu = float(np.sum(w * r))
    d2, se2 = (r - mu) ** 2, se * se
    v = float(np.sum(w * d2) - np.sum(w * se2))
    var_v = float(np.sum(w * w * (4.0 * np.maximum(d2 - se2, 0.0) * se2 + 2.0 * se2 * se2)))
    var_v += (TILE_NOISE_VAR_REL_UNCERTAINTY * float(np.sum(w * se2))) ** 2
    sv = np.sqrt(var_v)
    ci = [float(np.sqrt(max(v - _Z95 * sv, 0.0)) / mu), float(np.sqrt(max(v + _Z95 * sv, 0.0)) / mu)]
    return float(np.sqrt(max(v, 0.0)) / mu), ci, checks


def _tile_lower_bound(tiles: Any, level: float, details: dict, q: str = "R2") -> str | None:
    """Noise-corrected spread of tile-pooled R2 (a lower bound of the voxel CV) into
    ``details``, from the first (finest) tiling of ``tiles`` that passes the checks; the
    warning line when its 95 % interval lies above ``level``.

    ``tiles`` is one ``(r2, se, n_voxels)`` triple or an iterable of ``(name, triple)``
    (:func:`tile_candidates`). Tiles with an SE above ``SE_OUTLIER_FACTOR`` x the median
    are left out; a tiling is used only when they hold at most
    ``MAX_TILE_OUTLIER_FRACTION`` of the voxels and its RMS relative SE is at most
    ``MAX_TILE_REL_SE`` [D: measured, docs/statistics.md].
    """
    if tiles is None:
        return None
    if isinstance(tiles, tuple) and len(tiles) == 3 and not isinstance(tiles[0], str):
        tiles = [("given", tiles)]
    tried = {}
    for name, triple in tiles:
        r, se, k = (np.asarray(a, dtype=np.float64).ravel() for a in triple)
        got = _tile_bound_of(r, se, k)
        tried[name] = "used" if got is not None else "too noisy"
        if got is not None:
            break
    details["tilings_tried"] = tried
    if got is None:
        return None
    lb, ci, checks = got
    details.update(checks)
    details["r2_cv_lower_bound_tiles"] = lb
    details["r2_cv_lower_bound_tiles_ci95"] = ci
    details["tiles_used"] = name
    details["warn_cv_level"] = level
    if ci[0] >= level:
        where = f"tiles of {name} voxels" if "x" in name else "tiles"
        return ("heterogeneity: WARNING - the single headline hides clinically different regions: the "
                f"{q} varies between {where} with a coefficient of variation of at least {lb:.3f} (95 % CI "
                f"{ci[0]:.3f}-{ci[1]:.3f}), above {level:.3f}{_LEVEL_WORDS} (the single voxels are too noisy "
                "to say more)")
    return None


def _rate_name(cal: Any) -> str:
    """"R2*" for an R2* or T2* curve (gradient echo), else "R2": the warning names the page's rate."""
    return "R2*" if str(getattr(cal, "quantity", "R2")) in ("R2*", "T2*") else "R2"


def _with_unmeasured(v: float, se_v: float, mean: float, n_used: int, r_out: np.ndarray) -> list:
    """95 % interval of the CV over used + unmeasured voxels (the SE outliers, fitted R2 ``r_out``).

    The outliers' fits are too noisy to subtract their noise (plug-in SEs of 60 to 60,000
    s^-1 for one 216 s^-1 focal region), and they are selected on their noise (a plug-in
    SE grows with a noise-raised R2: in a uniform 10 mg/g liver at SNR 20, 8 channels, their
    median read ~170 s^-1 above the mean). So the CV stays that of the measured voxels, and
    the interval spans what the outliers can add: its low end counts them at the measured
    voxels' mean (no spread), its high end as a cluster at their median fitted R2 with
    their robust SD (1.4826 MAD, noise included) as spread.
    """
    n = n_used + r_out.size
    r_med = float(np.median(r_out))
    s_rob = 1.4826 * float(np.median(np.abs(r_out - r_med)))
    m_all = (n_used * mean + r_out.size * r_med) / n
    v_hi = (n_used * (max(v + _Z95 * se_v, 0.0) + (mean - m_all) ** 2)
            + r_out.size * ((r_med - m_all) ** 2 + s_rob**2)) / n
    lo = float(np.sqrt(max(n_used / n * (v - _Z95 * se_v), 0.0)) / mean)
    return [lo, float(np.sqrt(v_hi) / m_all)]


def _voxel_measures(rg: np.ndarray, sg: np.ndarray, cal: Any, head_cat: Any, details: dict,
                    r_out: np.ndarray | None = None) -> Heterogeneity:
    """CV with interval, deconvolved fractions and the warning from usable voxels; ``r_out``
    (fitted R2 of the SE outliers left out of the moments) widens the interval and is
    counted into the fractions at its voxel LIC."""
    r_out = np.zeros(0) if r_out is None else np.asarray(r_out, dtype=np.float64)
    v, se_v, mean, mse2 = _cv_moments(rg, sg)
    cv = float(np.sqrt(max(v, 0.0)) / mean)
    ci = [float(np.sqrt(max(v - _Z95 * se_v, 0.0)) / mean), float(np.sqrt(max(v + _Z95 * se_v, 0.0)) / mean)]
    cv_se = float(se_v / (2.0 * np.sqrt(v) * mean)) if v > _Z95 * se_v else None
    details.update(r2_sd_raw_per_s=float(rg.std()), r2_noise_rms_per_s=float(np.sqrt(mse2)),
                   r2_sd_noise_corrected_per_s=float(np.sqrt(max(v, 0.0))), r2_mean_voxel_per_s=mean)
    if cv_se is None:
        details["r2_cv_se_note"] = "CV within 1.96 SE of 0: the interval, not an SE, describes it"
    grid, mass = deconvolved_r2_distribution(rg, sg)
    lic_grid = np.asarray(_cal.lic_from_r2(grid, cal), dtype=np.float64)
    if r_out.size:
        # the outliers are part of the ROI: a focal high-iron region at low SNR is exactly
        # such a cluster (25 mg/g in a 3 mg/g liver, SNR 20, 8 channels: 0.25 % of the ROI,
        # SE 10 x the median; leaving it out read the CV 0.189 against a truth of 0.225
        # with the truth outside the interval, and lost its category share)
        ci = _with_unmeasured(v, se_v, mean, rg.size, r_out)
        cv_se = None
        details["r2_cv_se_note"] = "voxels too noisy for the noise subtraction: the interval, not an SE, describes it"
        share = r_out.size / (rg.size + r_out.size)
        lic_med = float(_cal.lic_from_r2(float(np.median(r_out)), cal))
        lic_grid = np.append(lic_grid, lic_med)
        mass = np.append(mass * (1.0 - share), share)
        details["se_outliers_median_lic_mg_per_g"] = lic_med
        details["se_outliers_note"] = (
            f"{100 * share:.2f} % of the ROI with an SE over {SE_OUTLIER_FACTOR:g} x the median (median voxel "
            f"LIC {lic_med:.1f} mg/g): the CV is that of the other voxels; the interval spans what they can add "
            "(from none to a cluster at their median R2 with their spread); the category fractions count them "
            "at their median")
    fractions = category_fractions(lic_grid, mass)
    diff = _different_fraction(lic_grid, mass, head_cat)
    level = warn_cv_level(cal)
    details["warn_cv_level"] = level
    reasons = []
    q = _rate_name(cal)
    if diff >= WARN_SHARE and ci[0] > 0:  # the category's label, as on the page
        reasons.append(f"{100 * diff:.0f} % of the liver ROI has an LIC more than {100 * WARN_MARGIN:.0f} % "
                       f"beyond the headline's category, {head_cat.label}")
    if ci[0] >= level:
        reasons.append(f"the voxel {q} varies with a coefficient of variation of {cv:.3f} (95 % CI {ci[0]:.3f}-"
                       f"{ci[1]:.3f}) after noise removal, above {level:.3f}{_LEVEL_WORDS}")
    warning = None
    if reasons:
        warning = ("heterogeneity: WARNING - the single headline hides clinically different regions: "
                   + "; ".join(reasons))
    return Heterogeneity(cv, cv_se, ci, fractions, diff, True, warning, details)


def _method_details(cal: Any, head_cat: Any, n_all: int) -> dict[str, Any]:
    """The first ``details`` of the heterogeneity block: the method and the warning rule in
    words, the headline's category and the ROI's voxel count ``n_all``."""
    details: dict[str, Any] = {
        "method": ("CV: population SD of the true voxel R2 over the ROI / mean voxel R2, the SD from "
                   "var(voxel R2) minus mean(fit SE^2); 95 % interval from the noise and a "
                   f"{100 * NOISE_VAR_REL_UNCERTAINTY:g} % uncertainty of the noise variance. Category "
                   "fractions: the true voxel R2 distribution deconvolved from the fit noise "
                   "(Kiefer-Wolfowitz NPMLE; Gaussian noise of the voxel's fit SE carried to the true R2), "
                   f"mapped to LIC by {cal.name}. When the voxels are too noisy: the same CV of the headline's "
                   "tile-pooled R2, a lower bound"),
        "warning_rule": (f"CV's 95 % interval above 0 and >= {100 * WARN_SHARE:g} % of the ROI outside the headline's "
                         f"category by more than {100 * WARN_MARGIN:g} % of its bound, or the R2 CV's 95 % "
                         "interval above the CV at "
                         f"which {100 * WARN_SHARE:g} % of a log-normal liver centred in 3.2-7 mg/g lies outside "
                         "that band (r2mri's own choice, not a published threshold)"),
        "headline_category": head_cat.name,
        "n_voxels": n_all,
    }
    return details


def _gaussian_regime(r: np.ndarray, se: np.ndarray, status: Any,
                     details: dict) -> tuple[str | None, np.ndarray, np.ndarray]:
    """Whether the voxel noise is Gaussian enough to subtract its variance.

    Returns ``(reason, good, outlier)``: why not (None: it is), the voxels with a finite
    R2 and SE, and those with an SE over ``SE_OUTLIER_FACTOR`` x the median; the shares at
    the noise floor and of SE outliers go into ``details``.
    """
    n_all = r.size
    st = (np.zeros(n_all, np.uint8) if status is None else np.asarray(status).ravel())
    good = np.isfinite(r) & np.isfinite(se) & (se > 0)
    floor = (st == FitStatus.BELOW_NOISE) | ~good
    if n_all < 50 or good.sum() < 50:
        return f"not measurable: {int(good.sum())} voxels with a finite R2 and SE (< 50)", good, None
    med = float(np.median(se[good]))
    outlier = good & (se > SE_OUTLIER_FACTOR * med)
    details["fraction_at_noise_floor_or_no_se"] = float(floor.mean())
    details["fraction_se_outliers"] = float(outlier.mean())
    if floor.mean() > MAX_FLOOR_FRACTION or outlier.mean() > MAX_SE_OUTLIER_FRACTION:
        return (f"not measurable at this iron level and SNR: {100 * floor.mean():.1f} % of the voxels at the noise "
                f"floor or without an SE (limit {100 * MAX_FLOOR_FRACTION:g} %), {100 * outlier.mean():.1f} % with "
                f"an SE over {SE_OUTLIER_FACTOR:g} x the median (limit {100 * MAX_SE_OUTLIER_FRACTION:g} %): the "
                "voxel noise is not Gaussian, its variance cannot be removed"), good, outlier
    return None, good, outlier


def liver_heterogeneity(r2_per_s: Any, r2_se_per_s: Any, status: Any = None, *,
                        headline_lic_mg_per_g: float,
                        calibration: "str | Any" = _cal.DEFAULT_CALIBRATION,
                        tiles: Any = None) -> Heterogeneity:
    """Noise-corrected voxel R2 CV, deconvolved category fractions and the warning.

    Parameters
    ----------
    r2_per_s : array_like
        Voxel R2 of the ROI (s^-1), finite.
    r2_se_per_s : array_like or None
        Their fit standard errors (``FitResult.r2_std_per_s`` at the ROI); without them
        the heterogeneity is not measurable.
    status : array_like of FitStatus, optional
        Voxel fit status (BELOW_NOISE voxels count against the Gaussian-noise regime).
    headline_lic_mg_per_g : float
        The headline LIC (its category is the reference of the warning).
    calibration : str or Calibration
    tiles : tuple of arrays (r2_per_s, se_per_s, n_voxels) or iterable, optional
        Tile-pooled fits of the ROI: one triple, or ``(name, triple)`` pairs finest first
        (:func:`tile_candidates`, evaluated only when needed). When the voxels are too
        noisy, the first tiling whose SEs are trustworthy gives a lower bound of the
        voxel CV (``r2_cv_lower_bound_tiles``: texture finer than a tile is averaged out).

    Returns
    -------
    Heterogeneity

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> t = 100.0 * np.exp(rng.normal(0, 0.2, 5000))  # log-normal R2, CV ~0.2
    >>> h = liver_heterogeneity(t + rng.normal(0, 10, t.size), np.full(t.size, 10.0),
    ...                         headline_lic_mg_per_g=7.0)
    >>> round(h.r2_cv_noise_corrected, 2), h.measurable
    (0.2, True)
    """
    cal = _cal.get_calibration(calibration)
    r = np.asarray(r2_per_s, dtype=np.float64).ravel()
    head_cat = _cal.lic_category(headline_lic_mg_per_g)
    n_all = r.size
    details = _method_details(cal, head_cat, n_all)

    def not_measurable(reason: str) -> Heterogeneity:
        details["note"] = reason
        warning = _tile_lower_bound(tiles, warn_cv_level(cal), details, _rate_name(cal))
        return Heterogeneity(None, None, None, None, None, False, warning, details)

    if r2_se_per_s is None:
        return not_measurable("not measurable: the voxel fits carry no standard errors")
    se = np.asarray(r2_se_per_s, dtype=np.float64).ravel()
    reason, good, outlier = _gaussian_regime(r, se, status, details)
    if reason is not None:
        return not_measurable(reason)
    use = good & ~outlier
    rg, sg = r[use], se[use]
    details["n_voxels_used"] = int(use.sum())
    v, se_v, _, mse2 = _cv_moments(rg, sg)
    if v + SE_CONTRADICTION_Z * se_v < 0:
        return not_measurable(
            f"not measurable: the voxel R2 spread (SD {rg.std():.3g} s^-1) is smaller than the fits' own "
            f"standard errors claim (RMS {np.sqrt(mse2):.3g} s^-1): the SEs do not describe the voxel errors "
            "(model misfit, e.g. readout phase errors in a complex fit, or spatially smoothed noise), so the "
            "noise cannot be removed")
    het = _voxel_measures(rg, sg, cal, head_cat, details, r_out=r[outlier])
    if het.warning is None and outlier.any():
        # the trimmed voxels are the high-R2 tail, so the voxel CV reads low; the tiles'
        # bound (their noise averaged before the fit) may still show the spread: a CV 0.3
        # texture at 30 mg/g, SNR 100 (truth 0.155) read 0.147 [0.139-0.172] from the
        # voxels, 2 x 2 tiles bound it above the level
        het.warning = _tile_lower_bound(tiles, warn_cv_level(cal), details, _rate_name(cal))
    return het
