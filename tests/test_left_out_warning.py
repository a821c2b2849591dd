"""The warning that an automatic ROI's reading sits high (r2mri/_left_out_warning.py, branch floorpiece).

On main, a liver whose candidate's left-out parenchyma reads several % low (autogrid k 5014:
+4.87 %) got its interval widened toward it but no warning beyond the generic heterogeneity
one; these tests fail there (no such warning in ``stats.warnings``).
"""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

from r2mri._left_out_warning import WARN_SHIFT_PCT, left_out_shift_warning
from r2mri._roi_sampling import widen_for_roi_sampling
from r2mri.calibration import get_calibration, lic_from_r2, r2_from_lic
from r2mri.report._page_notes import warning_rank

CAL = get_calibration(None)
H_1MG = float(r2_from_lic(1.0, CAL))  # ~32.5 s^-1


def _liver(rng, low_out: bool, texture_sd: float = 0.1):
    """Disc liver on 64 x 64 x 4 at 1 mg/g with a coarse texture (SD 0.1 of R2 over 6 voxels)
    and voxel noise SE 0.24 R2 (SNR 20: autogrid read 0.235-0.255). ROI: the disc's core
    (r <= 22), and with ``low_out`` also without the liver within 3 voxels of its lowest 15 %
    (left out *because* of its R2, as on the coarse livers)."""
    ii, jj = np.mgrid[:64, :64]
    rr = (ii - 32) ** 2 + (jj - 30) ** 2
    liver = np.repeat((rr <= 26**2)[:, :, None], 4, axis=2)
    tex = ndimage.gaussian_filter(rng.standard_normal(liver.shape), (6, 6, 0), mode="wrap")
    true = H_1MG * (1 + texture_sd * tex / tex.std())
    roi = liver & np.repeat((rr <= 22**2)[:, :, None], 4, axis=2)
    if low_out:
        roi &= ~ndimage.binary_dilation(liver & (true < np.quantile(true[liver], 0.15)), np.ones((7, 7, 1), bool))
    se = 0.24 * true
    r2 = true + se * rng.standard_normal(true.shape)
    return r2, se, liver, roi, true


def _widen(r2, se, liver, roi, automatic=True):
    h = float(np.mean(r2[roi]))
    stats = SimpleNamespace(blocks={"r2_per_s": {"headline_mean": h, "headline_ci95": [h - 0.3, h + 0.3]},
                                    "headline": {}},
                            ci95_lic_mg_per_g=tuple(float(v) for v in lic_from_r2(np.array([h - 0.3, h + 0.3]), CAL)),
                            warnings=[])
    roi_obj = SimpleNamespace(candidate=liver, non_parenchyma=np.zeros_like(liver), mask=roi, automatic=automatic)
    fit = SimpleNamespace(r2_per_s=r2, r2_std_per_s=se)
    block = widen_for_roi_sampling(stats, roi_obj, fit, CAL)
    return stats, block


def test_low_side_left_out_warns_red_with_its_size():
    """Left-out liver 0.1 R2 below the ROI's over 15 % of it: the candidate's mean reads ~1.5
    s^-1 below the ROI's (a ~8 % LIC shift, 4x the 2 % limit); red, with the shift quoted."""
    rng = np.random.default_rng(21)
    r2, se, liver, roi, true = _liver(rng, low_out=True)
    stats, block = _widen(r2, se, liver, roi)
    shift_true = 100 * (float(lic_from_r2(true[liver].mean(), CAL)) / float(lic_from_r2(true[roi].mean(), CAL)) - 1)
    assert shift_true < -2 * WARN_SHIFT_PCT, shift_true
    assert block["left_out_lic_shift_pct"] < -WARN_SHIFT_PCT, block
    warns = [w for w in stats.warnings if "reads lower than the ROI" in w]
    assert len(warns) == 1 and "may read ~" in warns[0] and "high" in warns[0], stats.warnings
    assert warning_rank(warns[0]) == 0


def test_uniform_liver_does_not_warn():
    """No texture, the edge left out: the shift is fit noise only (noise SE of d ~0.06 s^-1,
    ~0.3 % in LIC), |shift| < 1 % in 10/10 draws; no warning."""
    rng = np.random.default_rng(22)
    for _ in range(10):
        r2, se, liver, roi, _ = _liver(rng, low_out=False, texture_sd=0.0)
        stats, block = _widen(r2, se, liver, roi)
        assert abs(block["left_out_lic_shift_pct"]) < 1.0 and not stats.warnings, block


def test_measured_shift_follows_the_true_one():
    """Textured livers with and without the low side left out (10 each): the measured shift
    is the true one (LIC at the liver's mean true R2 against the ROI's) within 4 noise SE of
    ``d`` mapped to LIC; it warns exactly when it is beyond 2 %."""
    rng = np.random.default_rng(24)
    for low_out in (False, True) * 5:
        r2, se, liver, roi, true = _liver(rng, low_out=low_out)
        stats, block = _widen(r2, se, liver, roi)
        h = float(np.mean(r2[roi]))
        shift_true = 100 * (float(lic_from_r2(h + true[liver].mean() - true[roi].mean(), CAL))
                            / float(lic_from_r2(h, CAL)) - 1)
        slope = 100 * (float(lic_from_r2(h + 1.0, CAL)) / float(lic_from_r2(h, CAL)) - 1)  # % per s^-1
        tol = 4 * slope * block["left_out_difference_noise_se_r2_per_s"]
        assert abs(block["left_out_lic_shift_pct"] - shift_true) < tol, (block, shift_true, tol)
        assert bool(stats.warnings) == (abs(block["left_out_lic_shift_pct"]) > WARN_SHIFT_PCT), block


def test_user_mask_gets_the_number_not_the_warning():
    rng = np.random.default_rng(23)
    r2, se, liver, roi, _ = _liver(rng, low_out=True)
    stats, block = _widen(r2, se, liver, roi, automatic=False)
    assert block["left_out_lic_shift_pct"] < -WARN_SHIFT_PCT and not stats.warnings


def test_untrusted_difference_is_silent():
    """Voxel fits too noisy for the difference (``used`` False, 30 mg/g SNR 20): no shift, no warning."""
    d = {"difference_r2_per_s": -5.0, "noise_se_r2_per_s": 0.5, "n_left_out": 1000, "used": False}
    assert left_out_shift_warning(d, H_1MG, CAL, automatic=True) == (None, None)


def test_patchy_liver_reading_3_percent_high_warns():
    """Branch leftwarn, re-pinned on the merged tree of stop 28 (with branch erosion's ring):
    autogrid's texture-4 liver k 12601 (SD 0.4 in log LIC over 4 voxels, 1 mg/g, SNR 20, one
    channel; noise seed 14601, texture seed 15601) reads +2.89 % with the automatic ROI. Its
    measured shift is -1.80 %: the 2 % limit of branch floorpiece left it with no warning but
    the heterogeneity one (this test fails there); at 1.25 % it warns, red. (branch leftwarn's
    own liver, k 13006, now reads +2.30 % with a shift of only -0.98 %: erosion's ring keeps
    the edge its difference used to see; it is the known miss, benchmarks/README.md "stop 28".)
    About 20 s of CPU (one full-size analysis)."""
    import r2mri
    from r2mri.phantom import generate

    ph = generate(lic=1.0, snr=20.0, coils=1, seed=14601, texture_seed=15601, lic_log_sd=0.4,
                  lic_correlation_voxels=4.0)
    res = r2mri.analyze(ph.image)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    error_pct = 100 * (res.statistics.headline_lic_mg_per_g / truth - 1)
    assert error_pct > 2.0, error_pct  # the liver this test is about (+2.89 % on the merged tree)
    block = res.statistics.blocks["headline"]["roi_sampling"]
    # the shift sits between the new limit and the old one (-1.80), clear of both by >= 0.2
    assert -2.0 < block["left_out_lic_shift_pct"] < -WARN_SHIFT_PCT - 0.2, block
    warns = [str(w) for w in res.warnings if "reads lower than the ROI" in str(w)]
    assert len(warns) == 1 and "high" in warns[0] and warning_rank(warns[0]) == 0, res.warnings


@pytest.mark.parametrize("k, error_pct, h, d, d_se, warns", [
    (13006, 3.04, 32.482, -0.3023, 0.0209, True),   # silent at the 2 % limit (shift -1.70)
    (13004, 2.29, 32.372, -0.2949, 0.0192, True),   # silent at 2 % (-1.67)
    (12716, 2.00, 32.367, -0.2487, 0.0187, True),   # silent at 2 % (-1.41), the smallest > +2 % shift
    (13205, 2.21, 32.418, -0.2387, 0.0186, True),   # fresh liver, not used to set the limit (-1.35)
    (9025, 0.54, 32.121, -0.1946, 0.0179, False),   # the largest shift within +-1 % (-1.11)
    (5002, 0.25, 32.085, -0.1738, 0.0189, False),   # coarse, reads +0.25 % (-1.00)
])
def test_limit_between_the_measured_livers(k, error_pct, h, d, d_se, warns):
    """Branch leftwarn: autogrid livers' measured ``(h, d)`` on main 9ec388e
    (benchmarks/results/leftwarn-{table,fresh}.json). Every liver reading > +2 % with the
    difference trusted warns at the 1.25 % limit; the livers of the brief's +-1 % set stay
    silent (largest |shift| 1.11 %, k 9025)."""
    diff = {"difference_r2_per_s": d, "noise_se_r2_per_s": d_se, "n_left_out": 15000, "used": True}
    shift, warn = left_out_shift_warning(diff, h, CAL, automatic=True)
    assert (warn is not None) == warns, (k, error_pct, shift)
    if warns:
        assert "high" in warn and f"~{abs(shift):.1f} %" in warn, warn
