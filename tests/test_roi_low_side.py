"""The R2 route warns when low-iron liver is left out of the automatic ROI (issue 16).

Full-size bodies as ``benchmarks.autogrid`` builds them (``r2mri.phantom.generate``
defaults, 1 mg/g, SNR 20, one channel): a coarse texture (SD 0.4 in log LIC over 8
voxels, liver k = 600: noise seed 2600, texture seed 3600) and a uniform liver (k = 602,
noise seed 2602). Before ``r2mri._roi_low_side`` the coarse liver read +8.8 % with no
warning but the generic heterogeneity one; the check finds 5.0 % of the region of
low-side liver-like tissue left out (0.48 % on the uniform liver, limit 2 %), and since
branch lowside the ROI takes most of it in (``r2mri._roi_low_intake``). About 8 s of
CPU per liver.
"""

from __future__ import annotations

import pytest

from r2mri import _roi_low_side as low_side

LOW_TEXT = "at or below the low end of its range"


def _analyze(seed: int, texture_seed: int, sd: float, width: float):
    import r2mri
    from r2mri.phantom import generate

    ph = generate(lic=1.0, snr=20.0, coils=1, seed=seed, texture_seed=texture_seed, lic_log_sd=sd,
                  lic_correlation_voxels=width)
    return ph, r2mri.analyze(ph.image)


@pytest.fixture(scope="module")
def coarse():
    return _analyze(2600, 3600, 0.4, 8.0)


@pytest.fixture(scope="module")
def uniform():
    return _analyze(2602, 3602, 0.0, 0.0)


def test_coarse_low_iron_liver_is_taken_into_the_roi(coarse):
    """Branch lowside (r2mri/_roi_low_intake.py): the low-side pieces whose pooled R2 is above
    the floor come in. On main this liver read +8.84 % (95 % interval +5.34 to +12.39 %), its
    ROI's selection error (LIC of the mean true R2 over the pooled liver voxels) +9.23 %, with
    the red low-side warning; now +2.54 % (-0.87 to +5.96 %), selection +2.89 %, no warning
    (0.0086 left, limit 0.01), 4 ROI voxels of other tissue than liver and vessels (main 0)."""
    import numpy as np

    from r2mri import _roi_low_intake as intake
    from r2mri.calibration import lic_from_r2

    ph, res = coarse
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    roi, liver = res.roi.mask, ph.truth.liver_mask
    nc = res.roi.not_converged if res.roi.not_converged is not None else np.zeros_like(roi)
    sel = float(lic_from_r2(ph.truth.r2_per_s[(roi | nc) & liver].mean(), res.calibration)) / truth - 1
    # +9.23 % on main, +2.89 % now: the limit halfway (the seed is fixed; the estimator's own error is ~0.3 %)
    assert sel < 0.06, sel
    lo, hi = res.statistics.ci95_lic_mg_per_g
    assert lo <= truth <= hi, (lo, truth, hi)
    # no organ came in with it: 4 voxels measured, against ~77,000 in the ROI
    other = roi & ~liver & (ph.truth.labels != 5)  # 5: vessel (inside the liver)
    assert np.count_nonzero(other) <= 0.001 * np.count_nonzero(roi), np.count_nonzero(other)
    info = res.roi.options["low_side_left_out"]
    # what the check found before the intake: 0.050 measured, the warning's limit is 0.02
    assert info["before_intake_fraction"] > 2 * low_side.LOW_SIDE_WARN_FRACTION, info
    assert res.roi.options["low_side_intake"]["added"] > 0  # 6,320 voxels
    assert info["fraction"] <= intake.RESIDUAL_WARN_FRACTION, info
    assert not [w for w in res.warnings if LOW_TEXT in w], res.warnings


def test_uniform_low_iron_liver_gets_no_low_side_warning(uniform):
    _, res = uniform
    assert not [w for w in res.warnings if LOW_TEXT in w], res.warnings
    # measured 0.0048, a quarter of the limit
    assert res.roi.options["low_side_left_out"]["fraction"] < 0.5 * low_side.LOW_SIDE_WARN_FRACTION
