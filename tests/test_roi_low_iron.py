"""The low-iron warning of the automatic GRE (R2*) ROI (issue 16, r2mri/_roi_low_iron.py).

``gre-1.5t-fat15-lic3.2`` at 1 mg/g, 128 x 128 x 5 voxels of 3 mm (the ``r2mri demo``
geometry), SNR 50, 1 channel. Textured (SD 0.4 in log LIC over 8 voxels, texture and
noise seed 1): the automatic ROI misses low-iron patches and reads +12 % high; before
this check its only warning was "automatic proposal". Uniform (seed 0): R2* 44.6 s^-1,
above the normal-liver range (<= 37.77 s^-1, Obrzut 2020), reads within 0.1 %: no warning.
"""

from __future__ import annotations

import numpy as np
import pytest

from r2mri._roi_low_iron import LOW_IRON_WARN_FRACTION, low_iron_fraction

GEOMETRY = dict(matrix=(128, 128), pixel_mm=3.0, n_slices=5)
NORMAL_MAX = 37.77


def _run(sd, seed):
    import r2mri
    from r2mri.phantom import generate

    ph = generate("gre-1.5t-fat15-lic3.2", lic=1.0, snr=50.0, coils=1, seed=seed, texture_seed=seed, lic_log_sd=sd,
                  lic_correlation_voxels=8.0, **GEOMETRY)
    res = r2mri.analyze(ph.image)
    return 100 * (res.statistics.headline_lic_mg_per_g / float(ph.summary["lic_of_mean_r2_mg_per_g"]) - 1), res


def _low_iron(warnings):
    return [w for w in warnings if w.startswith("liver ROI: WARNING") and "normal-liver range" in w]


def test_fraction_counts_what_the_noise_cannot_explain():
    """A uniform liver 1 SD of the median's noise above the range: its noise tail is not
    counted (2 SD margin: expected 0.1 %); a third of it at 28 s^-1 is."""
    rng = np.random.default_rng(3)
    sd_voxel = 6.0
    sd_med = sd_voxel * np.sqrt(np.pi / 2) / 3
    truth = np.full((60, 60, 2), NORMAL_MAX + sd_med)
    r2 = truth + sd_voxel * rng.standard_normal(truth.shape)
    med = truth + sd_med * rng.standard_normal(truth.shape)   # the 3x3 median's own noise
    roi = np.ones(truth.shape, bool)
    f, sd = low_iron_fraction(roi, r2, med, NORMAL_MAX)
    assert f < 0.01 and sd == pytest.approx(sd_med, rel=0.1)
    truth[:20] = 28.0
    f, _ = low_iron_fraction(roi, truth + sd_voxel * rng.standard_normal(truth.shape),
                             truth + sd_med * rng.standard_normal(truth.shape), NORMAL_MAX)
    assert f == pytest.approx(1 / 3, abs=0.02)


def test_textured_low_iron_liver_off_by_more_than_5_percent_is_warned_in_red():
    err, res = _run(0.4, 1)
    assert err > 5, err   # the case the check is for: the ROI misses low-iron patches
    info = res.roi.options["low_iron"]
    assert info["fraction"] > LOW_IRON_WARN_FRACTION, info
    assert len(_low_iron(res.roi.warnings)) == 1, res.roi.warnings


def test_uniform_1_mg_per_g_liver_above_the_normal_range_is_not_warned():
    err, res = _run(0.0, 0)
    assert abs(err) < 0.5, err
    assert res.roi.options["low_iron"]["fraction"] < 0.2 * LOW_IRON_WARN_FRACTION
    assert not [w for w in res.roi.warnings if w.startswith("liver ROI: WARNING")], res.roi.warnings
