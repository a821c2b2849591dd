"""The liver's heterogeneity (r2mri._heterogeneity): noise-corrected R2 CV, deconvolved
category fractions and the warning, against the truth of phantoms and synthetic draws."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from r2mri import calibration as cal
from r2mri._heterogeneity import (category_fractions, deconvolved_r2_distribution, liver_heterogeneity,
                                  warn_cv_level)
from r2mri.stats import liver_statistics

sys.path.insert(0, str(Path(__file__).parent))
from _liver_phantoms import fitted_phantom, liver_with_vessels  # noqa: E402


# --------------------------------------------------------------------------- synthetic
def test_cv_interval_covers_the_truth_of_lognormal_textures():
    """Log-normal true R2 (CV 0.15) plus Gaussian fit noise of known SD (relative 10-25 %,
    as from 1 to 15 mg/g at SNR 20-50): the truth (the draw's own population CV) lies in
    the 95 % interval in >= 90 % of 40 draws and the mean error is within 0.005
    (SE of the mean ~0.0007)."""
    rng = np.random.default_rng(11)
    hits, errs = 0, []
    for _ in range(40):
        t = 100.0 * np.exp(rng.normal(0.0, 0.15, 3000))
        se = t * rng.uniform(0.10, 0.25, t.size)
        r = t + rng.normal(0.0, 1.0, t.size) * se
        h = liver_heterogeneity(r, se, headline_lic_mg_per_g=5.0)
        truth = t.std() / t.mean()
        lo, hi = h.r2_cv_ci95
        hits += lo <= truth <= hi
        errs.append(h.r2_cv_noise_corrected - truth)
    assert hits >= 36, hits
    assert abs(np.mean(errs)) < 0.005, np.mean(errs)


def test_homogeneous_draws_give_a_cv_near_zero_and_no_warning():
    rng = np.random.default_rng(3)
    t = np.full(4000, 102.3)  # 7.0 mg/g, on a category threshold
    se = t * rng.uniform(0.1, 0.2, t.size)
    r = t + rng.normal(0, 1, t.size) * se
    h = liver_heterogeneity(r, se, headline_lic_mg_per_g=7.0)
    assert h.measurable and h.warning is None
    # the upper end is set by the 5 % model uncertainty of the noise variance:
    # sqrt(1.96 x 0.05) x rms(relative SE) = 0.31 x 0.16 = 0.05
    assert h.r2_cv_ci95[0] == 0.0 and h.r2_cv_ci95[1] < 0.06
    assert h.different_fraction < 0.01


def test_deconvolution_recovers_a_focal_share_that_counting_noisy_voxels_smears():
    """20 % of the voxels at 15 mg/g-like R2 inside a 5 mg/g liver, 15 % relative noise."""
    rng = np.random.default_rng(5)
    t = np.where(rng.random(5000) < 0.2, float(cal.r2_from_lic(20.0)), float(cal.r2_from_lic(5.0)))
    se = 0.15 * t
    r = t + rng.normal(0, 1, t.size) * se
    truth = category_fractions(cal.lic_from_r2(t))
    noisy = category_fractions(cal.lic_from_r2(r))
    g, p = deconvolved_r2_distribution(r, se)
    est = category_fractions(cal.lic_from_r2(g), p)
    for k in truth:
        assert abs(est[k] - truth[k]) < 0.03, (k, est, truth)
    # counting the noisy voxels puts > 5 % of the ROI into the empty band between
    assert noisy["increased-risk"] > 0.05 and truth["increased-risk"] == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_a_small_noisy_high_iron_cluster_is_counted_not_dropped(seed):
    """A 25 mg/g focus (R2 216.5 s^-1) as 0.3 % of a textured 3 mg/g liver (R2 ~60 s^-1,
    relative SE 20 %), its fits far too noisy for the noise subtraction (heavy-tailed
    errors of scale 120 s^-1, plug-in SEs >= 100 s^-1 > 5 x the median, as measured at SNR
    20 with 8 channels). Dropping it gave an interval that missed the truth and lost its
    share of >15 mg/g. The CV stays that of the other voxels (below the truth, by the
    cluster's share of the variance), but the interval reaches the truth and the >15 mg/g
    share is the cluster's."""
    rng = np.random.default_rng(seed)
    t_bulk = 60.0 * np.exp(rng.normal(0.0, 0.15, 20000))
    t = np.concatenate([t_bulk, np.full(60, 216.5)])
    se = np.concatenate([0.2 * t_bulk, 100.0 * np.exp(np.abs(rng.normal(0.0, 1.5, 60)))])
    noise = np.concatenate([rng.normal(0.0, 1.0, 20000) * se[:20000],
                            np.clip(120.0 * rng.standard_t(3, 60), -170.0, 780.0)])
    h = liver_heterogeneity(t + noise, se, headline_lic_mg_per_g=3.0)
    truth = t.std() / t.mean()
    assert h.measurable and h.details["fraction_se_outliers"] == pytest.approx(60 / 20060)
    bulk = t_bulk.std() / t_bulk.mean()  # ~0.15: the CV of the measured voxels
    assert abs(h.r2_cv_noise_corrected - bulk) < 0.01 and h.r2_cv_noise_corrected < truth - 0.03
    assert h.r2_cv_ci95[0] <= truth <= h.r2_cv_ci95[1], (h.r2_cv_ci95, truth)
    assert h.category_fractions["greatly-increased-risk"] == pytest.approx(60 / 20060, rel=0.05)
    assert "cluster" in h.details["se_outliers_note"] and h.r2_cv_se is None
    json.dumps(h.to_dict(), allow_nan=False)


def test_not_measurable_without_standard_errors_or_at_the_noise_floor():
    r = np.full(100, 50.0)
    h = liver_heterogeneity(r, None, headline_lic_mg_per_g=2.0)
    assert not h.measurable and h.r2_cv_noise_corrected is None and h.warning is None
    se = np.full(100, 5.0)
    status = np.zeros(100, np.uint8)
    status[:3] = 3  # BELOW_NOISE: 3 % of the ROI
    h = liver_heterogeneity(r, se, status, headline_lic_mg_per_g=2.0)
    assert not h.measurable and "noise floor" in h.to_dict()["note"]
    json.dumps(h.to_dict(), allow_nan=False)


def test_not_measurable_when_the_standard_errors_overstate_the_voxel_errors():
    """The real 3 T liver of benchmarks/real_liver.py fitted with a model that ignores its
    bipolar readouts: voxel R2 SD 10.4 s^-1, fit SE RMS 14.2 s^-1 (mean 71 s^-1). The
    old rule reported CV 0.0 [0, 0] (a uniform liver); the SEs contradict the spread
    by far more than 3 of the variance's SEs, so it is not measurable, and says why."""
    rng = np.random.default_rng(5)
    t = 71.0 * np.exp(rng.normal(0.0, 0.10, 1500))
    r = t + rng.normal(0.0, 6.0, t.size)          # real errors: SD 6
    se = np.full(t.size, 14.2)                     # claimed: 14.2
    h = liver_heterogeneity(r, se, headline_lic_mg_per_g=0.9)
    assert not h.measurable and h.r2_cv_noise_corrected is None and h.warning is None
    assert "smaller than the fits' own standard errors" in h.to_dict()["note"]
    # correct SEs on the same liver: measurable, the truth (CV 0.10) inside the interval
    h = liver_heterogeneity(r, np.full(t.size, 6.0), headline_lic_mg_per_g=0.9)
    lo, hi = h.r2_cv_ci95
    assert h.measurable and lo <= t.std() / t.mean() <= hi


def test_warn_cv_level_is_the_cv_that_puts_the_share_outside_the_target_band():
    from scipy.stats import norm

    level = warn_cv_level("st-pierre-2005")
    r_lo, r_hi = (float(v) for v in cal.r2_from_lic(np.array([3.2, 7.0])))
    centre = np.sqrt(r_lo * r_hi)
    outside = norm.cdf(np.log(r_lo / centre) / level) + norm.sf(np.log(r_hi / centre) / level)
    assert outside == pytest.approx(0.10, abs=1e-9)


# --------------------------------------------------------------------------- phantoms
@pytest.mark.parametrize("lic, snr, coils", [(1.0, 20, 1), (3.2, 20, 1), (7.0, 50, 1), (15.0, 100, 1),
                                              (7.0, 20, 4)])
def test_no_warning_on_homogeneous_phantoms(lic, snr, coils):
    """Uniform livers, SNR 20-100, one channel (and four: non-central chi noise); 3.2,
    7.0 and 15 sit on category thresholds."""
    ph, fit = fitted_phantom(lic, 7, coils, snr=snr)
    from r2mri.roi import liver_roi

    roi = liver_roi(ph.image, fit, mask=liver_with_vessels(ph))
    s = liver_statistics(fit, roi, image=ph.image, n_bootstrap=50)
    het = s.to_dict()["heterogeneity"]
    assert het["measurable"], het.get("note")
    assert het["warning"] is None and not any(w.startswith("heterogeneity") for w in s.warnings)
    assert het["r2_cv_ci95"][0] < 0.03 and het["r2_cv_noise_corrected"] < 0.05
    assert het["different_category_fraction"] < 0.05


def test_high_iron_at_low_snr_is_not_measurable_and_says_so():
    ph, fit = fitted_phantom(40.0)  # SNR 50, 1 channel: ~4 % of the voxels at the noise floor
    from r2mri.roi import liver_roi

    s = liver_statistics(fit, liver_roi(ph.image, fit, mask=liver_with_vessels(ph)), image=ph.image,
                         n_bootstrap=50)
    het = s.to_dict()["heterogeneity"]
    assert het["measurable"] is False and het["r2_cv_noise_corrected"] is None
    assert het["category_fractions"] is None and "not measurable" in het["note"]
    assert not any(w.startswith("heterogeneity") for w in s.warnings)
    # the headline's tiles still bound the CV from below: ~0 for a uniform liver
    assert het["r2_cv_lower_bound_tiles_ci95"][0] == 0.0 and het["r2_cv_lower_bound_tiles"] < 0.03


def test_tiles_bound_the_cv_of_a_textured_liver_too_noisy_for_voxels():
    """Log-normal LIC texture (CV 0.3), SNR 50, one channel. At 15 mg/g 0.9 % of the voxels
    have an SE over 5 x the median (the high-R2 tail): the CV of the others is given, a
    little low (the tail trimmed) with an interval that reaches the truth (0.165
    [0.156-0.192] against 0.175), and it warns. At 30 mg/g (2.1 % at the noise floor) the
    voxels are not measurable; the noise-corrected CV of the tiles bounds it from below,
    within 20 % (texture finer than a tile is averaged out): 3 x 3 tiles 0.145 against
    0.153."""
    from r2mri.roi import liver_roi

    ph, fit = fitted_phantom(15.0, 7, 1, lic_cv=0.3)
    roi = liver_roi(ph.image, fit, mask=liver_with_vessels(ph))
    s = liver_statistics(fit, roi, image=ph.image, n_bootstrap=50)
    het = s.to_dict()["heterogeneity"]
    t = ph.truth.r2_per_s[roi.mask]
    truth = t.std() / t.mean()
    assert het["measurable"] and 0.0 < het["fraction_se_outliers"] <= 0.02
    assert het["r2_cv_ci95"][0] <= truth <= het["r2_cv_ci95"][1] and 0.85 * truth < het["r2_cv_noise_corrected"] < truth
    assert het["warning"] and het["warning"] in s.warnings

    # 20 mg/g: 1.6 % outliers trim the tail, the voxels read 0.150 [0.136-0.213] against
    # 0.168 and do not warn; the 3 x 3 tiles' bound (0.161) clears the level and warns
    ph, fit = fitted_phantom(20.0, 7, 1, lic_cv=0.3)
    roi = liver_roi(ph.image, fit, mask=liver_with_vessels(ph))
    s = liver_statistics(fit, roi, image=ph.image, n_bootstrap=50)
    het = s.to_dict()["heterogeneity"]
    t = ph.truth.r2_per_s[roi.mask]
    assert het["measurable"] and het["r2_cv_ci95"][0] < warn_cv_level() < het["r2_cv_ci95"][1]
    assert het["r2_cv_lower_bound_tiles_ci95"][0] >= warn_cv_level()
    assert het["r2_cv_lower_bound_tiles"] < t.std() / t.mean()
    assert "between tiles of 3x3 voxels" in het["warning"] and het["warning"] in s.warnings

    ph, fit = fitted_phantom(30.0, 7, 1, lic_cv=0.3)
    roi = liver_roi(ph.image, fit, mask=liver_with_vessels(ph))
    s = liver_statistics(fit, roi, image=ph.image, n_bootstrap=50)
    het = s.to_dict()["heterogeneity"]
    t = ph.truth.r2_per_s[roi.mask]
    truth = t.std() / t.mean()
    assert not het["measurable"] and het["fraction_at_noise_floor_or_no_se"] > 0.005
    lb, (lo, hi) = het["r2_cv_lower_bound_tiles"], het["r2_cv_lower_bound_tiles_ci95"]
    assert 0.8 * truth < lb < truth and lo <= lb <= hi
    assert het["tiles_used"] == "3x3" and het["tilings_tried"] == {"2x2": "too noisy", "3x3": "used"}


@functools.lru_cache(maxsize=None)
def _heterogeneous(snr: float):
    from r2mri.fitting import fit
    from r2mri.phantom import generate
    from r2mri.roi import liver_roi

    ph = generate("heterogeneous-1.5t", matrix=(64, 64), pixel_mm=6.0, seed=3, snr=snr)
    res = fit(ph.image, model="ncchi", noise_sigma=ph.summary["noise_sigma"], coils=4)
    roi = liver_roi(ph.image, res, mask=liver_with_vessels(ph))
    return ph, res, roi, liver_statistics(res, roi, image=ph.image, n_bootstrap=50)


@pytest.mark.parametrize("snr, frac_tol", [(20, 0.12), (50, 0.04)])
def test_heterogeneous_phantom_cv_fractions_and_warning(snr, frac_tol):
    """The shipped heterogeneous phantom (log-normal CV 0.3, gradient, focal 1 and 15 mg/g;
    4 channels): CV within 0.015 of the ROI's truth and inside its 95 % interval; category
    fractions within the measured accuracy of the deconvolution (+-10 points at SNR 20,
    <= 3 at SNR 50, docs/statistics.md) and closer than counting the noisy voxels at SNR 20;
    the warning fires."""
    ph, fit, roi, s = _heterogeneous(snr)
    het = s.to_dict()["heterogeneity"]
    m = roi.mask
    t = ph.truth.r2_per_s[m]
    cv_truth = t.std() / t.mean()
    assert het["measurable"]
    assert abs(het["r2_cv_noise_corrected"] - cv_truth) < 0.015
    lo, hi = het["r2_cv_ci95"]
    assert lo <= cv_truth <= hi
    truth = category_fractions(ph.truth.lic_mg_per_g[m])
    est = het["category_fractions"]
    assert max(abs(est[k] - truth[k]) for k in truth) < frac_tol, (est, truth)
    if snr == 20:
        noisy = category_fractions(cal.lic_from_r2(fit.r2_per_s[m].astype(float)))
        assert max(abs(est[k] - truth[k]) for k in truth) < max(abs(noisy[k] - truth[k]) for k in truth)
    assert het["warning"] and het["warning"] in s.warnings
    assert sum(w.startswith("heterogeneity: WARNING") for w in s.warnings) == 1
    # plain words: the category as the page names it ("Chelation target range (3.2-7 mg/g)"),
    # never its identifier ("target-range"); the CV spelled out
    from r2mri.calibration import CATEGORIES

    w = het["warning"]
    if het["different_category_fraction"] >= 0.10:
        assert any(f"beyond the headline's category, {c.label}" in w for c in CATEGORIES), w
    assert not any(c.name in w for c in CATEGORIES if "-" in c.name), w
    assert "coefficient of variation" in w or "beyond the headline's category" in w
    json.dumps(s.to_dict(), allow_nan=False)


def test_truth_json_carries_the_heterogeneity_truth():
    ph = _heterogeneous(50)[0]
    liver = ph.truth.liver_mask
    t = ph.truth.r2_per_s[liver]
    assert ph.summary["cv_liver_r2"] == pytest.approx(t.std() / t.mean(), rel=1e-12)
    frac = ph.summary["liver_category_fractions"]
    assert frac == category_fractions(ph.truth.lic_mg_per_g[liver])
    assert sum(frac.values()) == pytest.approx(1.0) and frac["normal"] > 0  # the 1 mg/g focal region
    json.dumps(ph.summary, allow_nan=False)


def test_report_json_and_page_rows():
    from r2mri.report._json import _heterogeneity_null_reasons
    from r2mri.report._page import _heterogeneity_rows

    block = {"measurable": False, "r2_cv_noise_corrected": None, "r2_cv_se": None, "r2_cv_ci95": None,
             "category_fractions": None, "different_category_fraction": None, "note": "not measurable: x"}
    reasons: dict = {}
    _heterogeneity_null_reasons(block, reasons)
    assert reasons["heterogeneity.r2_cv_noise_corrected"] == "not measurable: x"
    assert _heterogeneity_rows(block) == [("R2 CV, noise removed", "not measurable (noise)")]
    block.update(r2_cv_lower_bound_tiles=0.16, r2_cv_lower_bound_tiles_ci95=[0.155, 0.165])
    assert _heterogeneity_rows(block) == [("R2 CV at least (tiles; 95 % CI)", "0.160 (0.155\u20130.165)")]
    het = _heterogeneous(50)[3].to_dict()["heterogeneity"]
    rows = _heterogeneity_rows(het)
    assert rows[0][1].startswith(f"{het['r2_cv_noise_corrected']:.3f}")
    assert rows[1][1].count("/") == 4


def test_page_flag_under_the_headline():
    """The headline box carries one red line when (and only when) the block warns."""
    from r2mri.report._page import _heterogeneity_flag

    assert _heterogeneity_flag(None) is None
    assert _heterogeneity_flag({"measurable": True, "warning": None, "r2_cv_noise_corrected": 0.03}) is None
    block = {"measurable": True, "warning": "heterogeneity: WARNING - ...", "different_category_fraction": 0.281,
             "r2_cv_noise_corrected": 0.216}
    assert _heterogeneity_flag(block) == ("Heterogeneous liver: 28 % of the ROI more than 15 % beyond the headline "
                                          "category; R2 CV 0.22")
    assert len(_heterogeneity_flag(block, "R2*")) <= 96  # one line of the box, not shortened
    tiles = {"measurable": False, "warning": "heterogeneity: WARNING - ...", "r2_cv_noise_corrected": None,
             "r2_cv_lower_bound_tiles": 0.171}
    assert _heterogeneity_flag(tiles, "R2*") == "Heterogeneous liver: R2* CV at least 0.17 between tiles"
