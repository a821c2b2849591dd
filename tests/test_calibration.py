"""Calibration curves: published formulas, thresholds, inverse pair, clipping, flags, applicability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import r2mri
from r2mri.calibration import (
    CATEGORIES,
    UMOL_PER_MG,
    calibrate,
    check_applicability,
    default_calibration,
    get_calibration,
    lic_category,
    lic_from_r2,
    list_calibrations,
    r2_from_lic,
    t2star_ms_from_r2star_per_s,
)
from r2mri.errors import CalibrationError

SHIPPED = [
    "st-pierre-2005",
    "wood-2005-r2star",
    "hankins-2009-r2star",
    "garbowski-2014-t2star",
    "hernando-2022-r2star-1.5t",
    "st-pierre-2005-3t-scaled",
]

# Float64 evaluation of a closed form: relative error of a few ulp per operation; 1e-12
# relative is ~5000 ulp, far above rounding and far below any formula mistake.
RTOL_FLOAT = 1e-12


def _st_pierre_by_hand(r2: float) -> float:
    # St Pierre 2005 as published: LIC = (29.75 - sqrt(900.7 - 2.283 R2))^1.424
    return (29.75 - math.sqrt(900.7 - 2.283 * r2)) ** 1.424


def test_shipped_curves_listed_and_lazy_export():
    assert set(SHIPPED) <= set(list_calibrations())
    assert r2mri.lic_from_r2 is lic_from_r2 and r2mri.r2_from_lic is r2_from_lic


@pytest.mark.parametrize("r2", [18.0, 30.0, 45.3, 100.0, 200.0, 285.0, 394.0])
def test_st_pierre_matches_published_equation(r2):
    assert lic_from_r2(r2) == pytest.approx(_st_pierre_by_hand(r2), rel=RTOL_FLOAT)


@pytest.mark.parametrize(
    "name, rate, expected",
    [
        # Wood 2005: LIC = 0.0254 R2* + 0.202
        ("wood-2005-r2star", 100.0, 0.0254 * 100 + 0.202),
        # Hankins 2009: LIC = 0.028 R2* - 0.45
        ("hankins-2009-r2star", 100.0, 0.028 * 100 - 0.45),
        # Hernando 2022 (1.5 T): LIC = -0.16 + 0.02603 R2*
        ("hernando-2022-r2star-1.5t", 100.0, -0.16 + 0.02603 * 100),
        # Garbowski 2014: LIC = 31.94 T2*^-1.014 with T2* in ms; R2* 100 /s -> T2* 10 ms
        ("garbowski-2014-t2star", 100.0, 31.94 * 10.0**-1.014),
        ("garbowski-2014-t2star", 500.0, 31.94 * 2.0**-1.014),
        # 3 T bridge: St Pierre on R2_3T / 1.47 (Ghugre 2015)
        ("st-pierre-2005-3t-scaled", 147.0, (29.75 - math.sqrt(900.7 - 2.283 * 100.0)) ** 1.424),
    ],
)
def test_other_curves_match_published_equations(name, rate, expected):
    assert lic_from_r2(rate, calibration=name) == pytest.approx(expected, rel=RTOL_FLOAT)


def test_t2star_conversion_is_explicit():
    assert t2star_ms_from_r2star_per_s(50.0) == pytest.approx(20.0, rel=RTOL_FLOAT)
    cal = get_calibration("garbowski-2014-t2star")
    assert cal.quantity == "T2*" and cal.to_dict()["quantity_unit"] == "ms"


def test_threshold_r2_values_on_st_pierre():
    # domain.md section 4 gives 45.3, 63.6, 102.3, 161.7 /s, rounded to 0.1 /s from a
    # derivation with rounded intermediates; exact evaluation gives 45.229, 63.592,
    # 102.320, 161.751. Tolerance 0.1 /s = one unit of the quoted last digit.
    r2 = r2_from_lic([1.8, 3.2, 7.0, 15.0])
    np.testing.assert_allclose(r2, [45.3, 63.6, 102.3, 161.7], atol=0.1)
    # And back: the thresholds themselves, to float precision.
    np.testing.assert_allclose(lic_from_r2(r2), [1.8, 3.2, 7.0, 15.0], rtol=1e-10)
    # Hand evaluation of the forward form R2 = (900.7 - (29.75 - LIC^(1/1.424))^2)/2.283
    for lic, val in zip([1.8, 3.2, 7.0, 15.0], r2):
        assert val == pytest.approx((900.7 - (29.75 - lic ** (1 / 1.424)) ** 2) / 2.283, rel=RTOL_FLOAT)


def test_st_pierre_domain_and_range_edges():
    cal = get_calibration("st-pierre-2005")
    lo, hi = cal.rate_domain_per_s
    assert lo == pytest.approx((900.7 - 29.75**2) / 2.283, rel=RTOL_FLOAT)  # 6.8495
    assert hi == pytest.approx(900.7 / 2.283, rel=RTOL_FLOAT)  # 394.52
    assert 6.84 < lo < 6.86 and 394.4 < hi < 394.6
    # calibrated LIC 0.3-42.7 mg/g -> R2 about 18-285 /s (domain.md)
    rlo, rhi = cal.calibrated_rate_range_per_s
    assert rlo == pytest.approx(18.0, abs=0.1) and rhi == pytest.approx(285.0, abs=0.5)


def test_clipping_never_nan_and_flags():
    r = np.array([-50.0, 0.0, 5.0, 6.9, 17.0, 100.0, 300.0, 394.5, 400.0, 1e6, np.nan, np.inf])
    m = calibrate(r)
    finite = np.isfinite(r)
    assert np.all(np.isfinite(m.lic_mg_per_g[finite]))
    assert np.all(np.isnan(m.lic_mg_per_g[~finite]))
    top = 29.75**1.424  # LIC at R2 = 900.7/2.283, where the sqrt vanishes
    np.testing.assert_allclose(m.lic_mg_per_g[[0, 1, 2]], 0.0, atol=0)
    np.testing.assert_allclose(m.lic_mg_per_g[[8, 9]], top, rtol=RTOL_FLOAT)
    assert m.clipped.tolist() == [True, True, True, False, False, False, False, False, True, True, False, False]
    # extrapolated: LIC outside 0.3-42.7 (R2 below ~17.96 or above ~285.35), finite only
    assert m.extrapolated.tolist() == [True, True, True, True, True, False, True, True, True, True, False, False]
    assert m.extrapolated_fraction == pytest.approx(9 / 10)


def test_inverse_clipping_never_nan():
    rates = r2_from_lic(np.array([-1.0, 0.0, 200.0]))
    cal = get_calibration("st-pierre-2005")
    np.testing.assert_allclose(rates, [cal.rate_domain_per_s[0]] * 2 + [cal.rate_domain_per_s[1]], rtol=RTOL_FLOAT)
    m = cal.rate([-1.0, 1.0, 200.0])
    assert m.clipped.tolist() == [True, False, True]
    assert m.extrapolated.tolist() == [True, False, True]


def test_scalar_in_scalar_out_and_shape_kept():
    assert isinstance(lic_from_r2(100.0), float) and isinstance(r2_from_lic(3.0), float)
    a = np.full((3, 4, 2), 80.0, dtype=np.float32)
    assert lic_from_r2(a).shape == (3, 4, 2)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(SHIPPED),
    u=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)
def test_inverse_pair_property(name, u):
    """r2_from_lic(lic_from_r2(R)) == R and back, on each curve's domain."""
    cal = get_calibration(name)
    lo, hi = cal.rate_domain_per_s
    hi = min(hi, 3000.0)
    rate = lo + u * (hi - lo)
    lic = lic_from_r2(rate, name)
    back = r2_from_lic(lic, name)
    # Tolerance: near the lower St Pierre edge LIC = u^1.424 with u = 29.75 - sqrt(...)
    # computed with cancellation: absolute error ~ eps*29.75 ~ 7e-15 in u, which maps to
    # ~2*29.75/2.283*7e-15 ~ 2e-13 /s in R2; 1e-9 /s absolute plus 1e-10 relative covers it.
    assert back == pytest.approx(rate, rel=1e-10, abs=1e-9)
    assert lic_from_r2(back, name) == pytest.approx(lic, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(lic=st.floats(min_value=0.0, max_value=120.0, allow_nan=False))
def test_inverse_pair_from_lic(lic):
    # LIC -> R2 -> LIC on St Pierre: relative error bounded by the condition number of
    # u^p near u = 0 (LIC < 1e-6), hence the 1e-9 absolute floor.
    assert lic_from_r2(r2_from_lic(lic)) == pytest.approx(lic, rel=1e-9, abs=1e-9)


def test_monotonic_on_grid():
    for name in SHIPPED:
        r = np.linspace(0, 600, 2001)
        lic = lic_from_r2(r, name)
        assert np.all(np.diff(lic) >= 0), name


def test_bridge_equals_st_pierre_on_scaled_rate():
    r = np.linspace(10, 500, 50)
    np.testing.assert_allclose(
        lic_from_r2(r * 1.47, "st-pierre-2005-3t-scaled"), lic_from_r2(r), rtol=RTOL_FLOAT
    )
    cal = get_calibration("st-pierre-2005-3t-scaled")
    assert cal.derived and not cal.verified and cal.field_strength_t == 3.0
    assert "not biopsy-validated" in cal.label


def test_citations_present_and_status_honest():
    for name in SHIPPED:
        cal = get_calibration(name)
        c = cal.citation
        assert c["authors"] and c["year"] and c["journal"], name
        assert c.get("doi", "") == "" or c["doi"].startswith("10."), name
    # [R] curves in domain.md must be verified = false; [C] ones true
    assert not get_calibration("st-pierre-2005").verified
    assert not get_calibration("wood-2005-r2star").verified
    assert not get_calibration("hankins-2009-r2star").verified
    assert get_calibration("garbowski-2014-t2star").verified
    assert get_calibration("hernando-2022-r2star-1.5t").verified
    assert get_calibration("hernando-2022-r2star-1.5t").citation["doi"] == "10.1148/radiol.213256"


def test_categories_and_boundaries():
    names = [lic_category(v).name for v in [0.0, 1.8, 1.81, 3.2, 3.3, 7.0, 7.01, 15.0, 15.1, 60]]
    assert names == [
        "normal", "normal", "mildly-raised", "mildly-raised", "target-range",
        "target-range", "increased-risk", "increased-risk",
        "greatly-increased-risk", "greatly-increased-risk",
    ]
    d = lic_category(5.0).to_dict()
    assert d["thresholds_mg_per_g"] == [1.8, 3.2, 7.0, 15.0] and "St Pierre" in d["source"]
    assert len(CATEGORIES) == 5
    with pytest.raises(CalibrationError, match="lic_mg_per_g"):
        lic_category(float("nan"))


def test_umol_factor():
    # 1000 / 55.845 = 17.9067; domain.md quotes 17.91
    assert round(UMOL_PER_MG, 2) == 17.91


def test_applicability():
    w = check_applicability("st-pierre-2005", field_strength_t=1.5, sequence="SE", echo_train_length=1)
    assert w == ["calibration st-pierre-2005: formula as widely quoted; the original paper was not available to check it"]
    with pytest.raises(CalibrationError, match=r"st-pierre-2005.*1.5 T.*3 T.*st-pierre-2005-3t-scaled"):
        check_applicability("st-pierre-2005", field_strength_t=3.0, sequence="SE", echo_train_length=1)
    with pytest.raises(CalibrationError, match="gradient-echo"):
        check_applicability("st-pierre-2005", field_strength_t=1.5, sequence="GRE")
    with pytest.raises(CalibrationError, match=r"CPMG.*echo_train_length=32"):
        check_applicability("st-pierre-2005", field_strength_t=1.5, sequence="SE", echo_train_length=32)
    with pytest.raises(CalibrationError, match="CPMG"):
        check_applicability("st-pierre-2005", field_strength_t=1.5, sequence="SE-CPMG")
    with pytest.raises(CalibrationError, match="spin-echo"):
        check_applicability("hernando-2022-r2star-1.5t", field_strength_t=1.5, sequence="SE")
    assert check_applicability("hernando-2022-r2star-1.5t", field_strength_t=1.494, sequence="GRE", echo_train_length=6) == []
    w = check_applicability("st-pierre-2005-3t-scaled", field_strength_t=2.89, sequence="SE", echo_train_length=1)
    assert len(w) == 1 and w[0].count("not biopsy-validated") == 1  # one warning, said once
    w = check_applicability("st-pierre-2005")
    assert any("field strength" in s for s in w) and any("sequence" in s for s in w)
    img = r2mri.MultiEchoImage(np.ones((2, 2, 1, 5)), np.arange(6, 19, 3) / 1e3, field_strength_t=3.0,
                               sequence="SE", echo_train_length=1)
    with pytest.raises(CalibrationError):
        check_applicability("st-pierre-2005", img)
    assert default_calibration(field_strength_t=1.5, sequence="SE") == "st-pierre-2005"
    assert default_calibration(field_strength_t=1.5, sequence="GRE") == "hernando-2022-r2star-1.5t"
    with pytest.raises(CalibrationError, match="3 T"):
        default_calibration(img)


def test_custom_calibration_file(tmp_path):
    f = tmp_path / "site.toml"
    f.write_text(
        'name = "site-3t"\nquantity = "R2"\nfield_strength_t = 3.0\nsequence = "SE"\n'
        'verified = true\n[formula]\nkind = "linear"\nslope = 0.05\nintercept = -1.0\n'
        '[range]\nlic_min_mg_per_g = 0.5\nlic_max_mg_per_g = 30\n'
        '[citation]\nauthors = "Site"\nyear = 2026\njournal = "internal validation"\n'
    )
    cal = get_calibration(f)
    assert cal.name == "site-3t" and get_calibration(str(f)).name == "site-3t"
    assert lic_from_r2(100.0, cal) == pytest.approx(4.0, rel=RTOL_FLOAT)
    assert r2_from_lic(4.0, cal) == pytest.approx(100.0, rel=RTOL_FLOAT)
    check_applicability(cal, field_strength_t=3.0, sequence="SE", echo_train_length=1)


@pytest.mark.parametrize(
    "body, match",
    [
        ('name="x"\nfield_strength_t=1.5\nsequence="SE"\n[formula]\nkind="linear"\nslope=1\nintercept=0\n', "quantity"),
        ('name="x"\nquantity="R2"\nfield_strength_t=1.5\nsequence="SE"\n[formula]\nkind="cubic"\n', "kind"),
        ('name="x"\nquantity="R2"\nfield_strength_t=1.5\nsequence="SE"\n[formula]\nkind="linear"\nslope=-1\nintercept=0\n', "slope"),
        ('name="x"\nquantity="R2"\nfield_strength_t=1.5\nsequence="GRE"\n[formula]\nkind="linear"\nslope=1\nintercept=0\n', "does not match"),
        ('name="x"\nquantity="R2"\nfield_strength_t=1.5\nsequence="SE"\n[formula]\nkind="linear"\nslope=1\n', "intercept"),
        ("this is not toml = = \n", "not valid TOML"),
    ],
)
def test_bad_calibration_files(tmp_path, body, match):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(CalibrationError, match=match):
        get_calibration(f)


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(CalibrationError, match="unknown curve 'nope'"):
        get_calibration("nope")
    with pytest.raises(CalibrationError, match="not found"):
        get_calibration(tmp_path / "missing.toml")


def test_every_reason_a_curve_does_not_apply_is_named_at_once():
    # a 3 T CPMG train (the MR-BIAS Siemens series) fails the 1.5 T single-echo curve for
    # two reasons; naming only the field sent users to the 3 T bridge, which then
    # refused the echo train
    from r2mri.calibration import check_applicability

    with pytest.raises(CalibrationError) as err:
        check_applicability("st-pierre-2005", field_strength_t=3.0, sequence="SE", echo_train_length=32)
    msg = str(err.value)
    assert "at 3 T" in msg and "CPMG" in msg and "3t-scaled" not in msg
    assert "\n" not in msg
