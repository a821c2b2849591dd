"""The R2* (gradient-echo) path of analyze: curve declarations and choice, requirements,
the tile-pooled fat-water headline, the PDFF block and the GRE protocol findings (issue 15).

Synthetic GRE livers: r2mri.fatwater.magnitude_signal + complex Gaussian noise, SNR 50
((W + F) / sigma), one coil. Small volumes (a few thousand voxels) keep the file fast.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import r2mri
import r2mri.stats
from r2mri import _gre
from r2mri._calibration_requirements import NOT_STATED, check_requirements, choose_calibration
from r2mri.calibration import (check_applicability, default_calibration, get_calibration, lic_from_r2,
                               list_calibrations)
from r2mri.errors import CalibrationError, InputError
from r2mri.fatwater import load_fat_spectrum, magnitude_signal
from r2mri.io.protocol import check_protocol

SIGMA = 2.0  # W + F = 100: SNR 50
TE_15 = 0.0012 + 0.001 * np.arange(6)  # 6 echoes at 1.5 T (issue 15's vendor example)
TE_3 = 0.00115 + 0.00115 * np.arange(12)  # 12 echoes at 3 T


def _liver_signal(b0, te, pdff, r2):
    c = load_fat_spectrum().basis(te, b0)
    return magnitude_signal(c, te, 100.0 * (1 - pdff / 100), 100.0 * pdff / 100, r2)


def _noisy(m, seed):
    rng = np.random.default_rng(seed)
    return np.hypot(m + SIGMA * rng.standard_normal(m.shape), SIGMA * rng.standard_normal(m.shape))


def gre_image(b0, te, pdff, r2, *, shape=(36, 36, 2), radius=13, seed=0, field=True):
    """A liver disk in air (noise only around it): the shape analyze estimates sigma from."""
    x, y = np.mgrid[: shape[0], : shape[1]]
    disk = (x - shape[0] / 2) ** 2 + (y - shape[1] / 2) ** 2 < radius**2
    liver = np.repeat(disk[..., None], shape[2], axis=2)
    m = np.where(liver[..., None], _liver_signal(b0, te, pdff, r2), 0.0)
    img = r2mri.MultiEchoImage(_noisy(m, seed), te, field_strength_t=b0 if field else None, sequence="GRE")
    return img, liver


@pytest.fixture(scope="module")
def gre15():
    img, liver = gre_image(1.5, TE_15, 15.0, 200.0)
    return img, liver, r2mri.analyze(img, mask=liver, threads=1)


# ---------------------------------------------------------------------- calibrations
def test_every_shipped_curve_declares_what_it_was_built_on():
    keys = {"fat_corrected", "fitting_model", "echo_time_first_ms", "echo_time_last_ms", "reference_standard"}
    for name in list_calibrations():
        cal = get_calibration(name)
        assert keys <= set(cal.built_on), name
        assert cal.to_dict()["built_on"] == dict(cal.built_on)
        assert cal.built_on["reference_standard"] != "", name
    sp = get_calibration("st-pierre-2005").built_on
    assert (sp["echo_time_first_ms"], sp["echo_time_last_ms"]) == (6.0, 18.0)
    assert "biopsy" in sp["reference_standard"]
    hz = get_calibration("hernando-2022-r2star-1.5t").built_on
    assert "FerriScan" in hz["reference_standard"] and hz["fat_corrected"] == NOT_STATED


def test_schema_1_files_still_load_and_schema_2_needs_built_on(tmp_path):
    body = ('name = "x"\nquantity = "R2*"\nfield_strength_t = 1.5\nsequence = "GRE"\n'
            '[formula]\nkind = "linear"\nslope = 0.03\nintercept = 0.0\n')
    f = tmp_path / "v1.toml"
    f.write_text("schema_version = 1\n" + body)
    assert set(get_calibration(f).built_on.values()) == {NOT_STATED}
    f2 = tmp_path / "v2.toml"
    f2.write_text("schema_version = 2\n" + body)
    with pytest.raises(CalibrationError, match=r"v2.toml.*\[built_on\]"):
        get_calibration(f2)
    good = ('[built_on]\nfat_corrected = true\nfitting_model = "m"\necho_time_first_ms = 1.0\n'
            'echo_time_last_ms = 6.0\nreference_standard = "biopsy"\n')
    f2.write_text("schema_version = 2\n" + body + good)
    assert get_calibration(f2).built_on["fat_corrected"] is True
    for bad, match in [(good.replace("true", '"yes"'), "fat_corrected"),
                       (good.replace("1.0", "7.0"), "echo_time_first_ms 7 > echo_time_last_ms 6"),
                       (good + "colour = 1\n", "unknown key")]:
        f2.write_text("schema_version = 2\n" + body + bad)
        with pytest.raises(CalibrationError, match=match):
            get_calibration(f2)


def test_3t_r2star_bridge_is_storey_scaling_of_hernando_and_labelled_derived():
    cal = get_calibration("hernando-2022-r2star-3t-scaled")
    assert cal.derived and not cal.verified and cal.field_strength_t == 3.0 and cal.sequence == "GRE"
    r3 = np.array([60.0, 200.0, 800.0])
    # Storey 2007: R2*_3T = 2.00 R2*_1.5T - 11  ->  R2*_1.5T = (R2*_3T + 11) / 2
    expect = lic_from_r2((r3 + 11.0) / 2.0, "hernando-2022-r2star-1.5t")
    assert lic_from_r2(r3, cal) == pytest.approx(expect, rel=1e-12)
    assert cal.rate([0.5, 5.0, 20.0]).r2_per_s == pytest.approx(
        2.0 * get_calibration("hernando-2022-r2star-1.5t").rate([0.5, 5.0, 20.0]).r2_per_s - 11.0, rel=1e-12)
    assert "derived, not biopsy-validated" in cal.label
    assert "not confirmed" in cal.citation["status"] and "10.1002/jmri.20816" in cal.field_scaling["doi"]
    w = check_applicability(cal, field_strength_t=2.89, sequence="GRE")
    assert len(w) == 1 and "not biopsy-validated" in w[0]


def test_default_curve_from_the_data():
    def img(b0, seq):
        return r2mri.MultiEchoImage(np.ones((1, 1, 1, 6)), TE_15, field_strength_t=b0, sequence=seq)

    assert choose_calibration(img(1.5, "SE"), "ncchi") == "st-pierre-2005"
    assert choose_calibration(img(None, None), "auto") == "st-pierre-2005"
    assert choose_calibration(img(1.494, "GRE"), "fatwater") == "hernando-2022-r2star-1.5t"
    with pytest.raises(CalibrationError, match=r"2.89 T.*--calibration-file.*hernando-2022-r2star-3t-scaled"):
        choose_calibration(img(2.89, "GRE"), "fatwater")
    # spin echo at 3 T: St Pierre, which check_applicability then refuses naming the SE bridge
    assert choose_calibration(img(3.0, "SE"), "ncchi") == "st-pierre-2005"
    with pytest.raises(CalibrationError, match="st-pierre-2005-3t-scaled"):
        check_applicability("st-pierre-2005", img(3.0, "SE"))
    with pytest.raises(CalibrationError, match="hernando-2022-r2star-3t-scaled"):
        default_calibration(field_strength_t=3.0, sequence="GRE")


def test_requirements_refuse_unless_forced(tmp_path):
    text = (get_calibration("hernando-2022-r2star-1.5t").source and
            open(get_calibration("hernando-2022-r2star-1.5t").source).read())
    text = (text.replace('name = "hernando-2022-r2star-1.5t"', 'name = "site-fat"')
            .replace('fat_corrected = "not stated"', "fat_corrected = true")
            .replace('echo_time_first_ms = "not stated"', "echo_time_first_ms = 1.0")
            .replace('echo_time_last_ms = "not stated"', "echo_time_last_ms = 6.0"))
    path = tmp_path / "site-fat.toml"
    path.write_text(text)
    cal = get_calibration(path)
    img = r2mri.MultiEchoImage(np.ones((1, 1, 1, 6)), TE_15, field_strength_t=1.5, sequence="GRE")
    assert check_requirements(cal, img, "fatwater") == []
    with pytest.raises(CalibrationError, match=r"site-fat: built on fat-corrected.*'monoexp'.*--force") as err:
        check_requirements(cal, img, "monoexp")
    assert "\n" not in str(err.value)
    w = check_requirements(cal, img, "monoexp", force=True)
    assert len(w) == 1 and "overridden with force" in w[0]
    late = dataclasses.replace(img, echo_times_s=TE_15 + 0.010)  # 11.2-16.2 ms vs the curve's 1-6 ms
    with pytest.raises(CalibrationError, match="do not overlap"):
        check_requirements(cal, late, "fatwater")
    longer = r2mri.MultiEchoImage(np.ones((1, 1, 1, 12)), TE_3 * 0.9, field_strength_t=1.5, sequence="GRE")
    w = check_requirements(cal, longer, "fatwater")
    assert len(w) == 1 and "reach beyond" in w[0]
    # a curve without fat correction (or not stated) fed a fat-water R2*: a warning, never a refusal
    w = check_requirements(get_calibration("wood-2005-r2star"), img, "fatwater")
    assert len(w) == 1 and "agree only in a liver without fat" in w[0]
    # for the radiologist: which curve, its field and its source, no developer references
    assert w[0].startswith("calibration wood-2005-r2star (a 1.5 T curve, Wood JC et al. 2005) does not say")
    assert "docs/" not in w[0] and "fat-water" in w[0]


# ---------------------------------------------------------------------- analyze
def test_gre_analyze_picks_fatwater_hernando_and_meets_the_truth(gre15):
    img, liver, res = gre15
    assert res.fit.model == "fatwater" and res.calibration.name == "hernando-2022-r2star-1.5t"
    assert res.settings["resolved"]["model"] == "fatwater" and res.settings["options"]["model"] == "auto"
    truth = lic_from_r2(200.0, "hernando-2022-r2star-1.5t")
    assert res.headline_lic_mg_per_g == pytest.approx(truth, rel=0.03)
    lo, hi = res.statistics.ci95_lic_mg_per_g
    assert lo < res.headline_lic_mg_per_g < hi
    assert res.statistics.estimator == "tile-fw-mixture"  # issue 16: the tiles corrected for their spread
    head = res.statistics.blocks["headline"]
    assert "R2*" in head["definition"] and head["tiles"] == _gre.GRE_TILE
    # PDFF block: the mean of the tile-pooled fit's tile PDFF (SE ~0.05 points here) and the
    # voxel statistics; per-voxel PDFF SD at SNR 50 is ~2-3 points, so the voxel mean and median
    # of ~500 voxels are within 0.5 points of 15 % (the fit is unbiased to 0.3 points here)
    pd = res.statistics.blocks["pdff_percent"]
    assert set(pd) == {"mean", "se", "median", "sd", "voxel_mean", "n_voxels", "mean_method", "n_tiles"}
    assert pd["mean_method"] == "tile-fw-ncchi" and pd["n_tiles"] == head["n_tiles"]
    assert 0 < pd["se"] < 0.3 and pd["mean"] == pytest.approx(15.0, abs=0.3 + 3 * pd["se"])
    assert pd["voxel_mean"] == pytest.approx(15.0, abs=0.5) and pd["median"] == pytest.approx(15.0, abs=0.5)
    assert res.statistics.blocks["qc"]["fraction_beyond_r2_range"] == 0.0
    assert not any("beyond the R2* range" in w for w in res.warnings)
    assert 0.5 < pd["sd"] < 5.0 and pd["n_voxels"] > 0.9 * int(np.count_nonzero(res.roi.mask))
    codes = {f.code for f in res.findings}
    assert not codes & {"ferriscan-echo-times", "echo-times-not-ferriscan", "repetition-time-not-ferriscan"}
    assert {"gre-echo-spacing", "gre-phase"} <= codes


def test_pdff_block_absent_for_other_models(gre15):
    img, liver, _ = gre15
    fit = r2mri.fit(img, model="monoexp", mask=liver, threads=1)
    stats = r2mri.stats.liver_statistics(fit, liver, "hernando-2022-r2star-1.5t", image=img, noise_sigma=SIGMA)
    assert "pdff_percent" not in stats.blocks and _gre.pdff_block(fit, liver) is None


def test_gre_plain_exponential_is_warned(gre15):
    img, liver, _ = gre15
    res = r2mri.analyze(img, mask=liver, model="monoexp", noise_sigma=SIGMA, threads=1)
    assert any("biased" in w and "fatwater" in w and "docs/" not in w for w in res.warnings)


def test_gre_without_field_strength_is_one_clear_line():
    img, liver = gre_image(1.5, TE_15, 5.0, 100.0, shape=(12, 12, 1), radius=4, field=False)
    with pytest.raises(InputError, match=r"^image: the fat-water R2\* model .* field strength.*--field-strength") as err:
        r2mri.analyze(img, mask=liver)
    assert "\n" not in str(err.value)


def test_fatwater_refused_on_spin_echo():
    img = r2mri.MultiEchoImage(np.ones((4, 4, 1, 5)), np.arange(6, 19, 3) / 1e3, field_strength_t=1.5,
                               sequence="SE", echo_train_length=1)
    with pytest.raises(InputError, match="'fatwater' needs gradient-echo data"):
        r2mri.analyze(img, model="fatwater")


def test_gre_3t_refuses_without_a_choice_then_uses_the_labelled_bridge():
    img, liver = gre_image(3.0, TE_3, 15.0, 300.0, shape=(24, 24, 1), radius=10)
    with pytest.raises(CalibrationError, match=r"^image: .*3 T.*hernando-2022-r2star-3t-scaled"):
        r2mri.analyze(img, mask=liver)
    res = r2mri.analyze(img, mask=liver, calibration="hernando-2022-r2star-3t-scaled", threads=1)
    assert res.calibration.derived and any("not biopsy-validated" in w for w in res.warnings)
    # one warning about the bridge: the 3 T protocol finding says the same and stays a finding only
    assert sum("biopsy" in w for w in res.warnings) == 1 and not any("field-strength-3t" in w for w in res.warnings)
    truth = lic_from_r2(300.0, "hernando-2022-r2star-3t-scaled")
    assert res.headline_lic_mg_per_g == pytest.approx(truth, rel=0.03)
    f = {x.code: x for x in res.findings}["field-strength-3t"]
    assert "hernando-2022-r2star-3t-scaled" in f.message


def test_fat_corrected_curve_with_plain_fit_refused_then_forced(gre15, tmp_path):
    img, liver, _ = gre15
    src = open(get_calibration("hernando-2022-r2star-1.5t").source).read()
    path = tmp_path / "fc.toml"
    path.write_text(src.replace('name = "hernando-2022-r2star-1.5t"', 'name = "site-fc"')
                    .replace('fat_corrected = "not stated"', "fat_corrected = true"))
    with pytest.raises(CalibrationError, match=r"site-fc: built on fat-corrected.*--force"):
        r2mri.analyze(img, mask=liver, model="monoexp", calibration_file=path, noise_sigma=SIGMA)
    res = r2mri.analyze(img, mask=liver, model="monoexp", calibration_file=path, noise_sigma=SIGMA, force=True,
                        threads=1)
    assert any("overridden with force" in w for w in res.warnings)


# ---------------------------------------------------------------------- headline accuracy
@pytest.mark.parametrize("b0, te, cal", [(1.5, TE_15, "hernando-2022-r2star-1.5t"),
                                         (3.0, TE_3, "hernando-2022-r2star-3t-scaled")])
def test_pooled_headline_within_3_percent_over_fat_and_iron(b0, te, cal):
    """Issue 15: headline LIC within 3 % of truth at SNR 50 for PDFF 0-45 %, R2* 30-500 s^-1.
    Measured worst: 0.36 % (1.5 T), 1.1 % (3 T); the voxel mean is off by up to 2.8 % / 16 %."""
    mask = np.ones((20, 20, 1), bool)
    for i, (pdff, r2) in enumerate([(0, 30), (0, 500), (15, 200), (45, 30), (45, 500), (30, 350)]):
        m = np.broadcast_to(_liver_signal(b0, te, pdff, r2), mask.shape + (te.size,))
        img = r2mri.MultiEchoImage(_noisy(m, i), te, field_strength_t=b0, sequence="GRE")
        fit = r2mri.fit(img, model="fatwater", threads=1)
        p = _gre.pooled_mean_r2star(img, fit, mask, noise_sigma=SIGMA, coils=1)
        assert lic_from_r2(p.mean_r2_per_s, cal) == pytest.approx(lic_from_r2(r2, cal), rel=0.03), (pdff, r2)
        # and the rate within 5 measurement SEs plus the 1 % bias measured at 3 T, R2* 500
        assert abs(p.mean_r2_per_s - r2) < 5 * p.se_r2_per_s + 0.012 * r2, (pdff, r2, p.mean_r2_per_s)


def _uniform(b0, te, pdff, r2, seed, shape=(40, 50, 1)):
    m = np.broadcast_to(_liver_signal(b0, te, pdff, r2), shape + (te.size,))
    return r2mri.MultiEchoImage(_noisy(m, seed), te, field_strength_t=b0, sequence="GRE")


@pytest.mark.parametrize("b0, te, pdff", [(1.5, TE_15, 10.0), (3.0, TE_3, 30.0)])
def test_roi_pdff_at_r2star_800_is_the_tile_mean_within_1_5_points(b0, te, pdff):
    """Issue 15: ROI PDFF within 1.5 points at R2* 800 s^-1, SNR 50. The per-voxel PDFF spread
    there is 10-18 points (CRB), and the voxel mean was -2.1 (1.5 T, PDFF 10) and -3.0 (3 T,
    PDFF 30) points off; the tile-pooled mean (16 voxels averaged before the fit) was -0.96 and
    -0.05 (SE 0.39, 0.19; benchmarks/gre_pdff.py)."""
    img = _uniform(b0, te, pdff, 800.0, seed=int(b0 * 10 + pdff))
    fit = r2mri.fit(img, model="fatwater", noise_sigma=SIGMA, coils=1, threads=1)
    mask = np.ones(img.shape, bool)
    cal = "hernando-2022-r2star-1.5t" if b0 == 1.5 else "hernando-2022-r2star-3t-scaled"
    st = r2mri.stats.liver_statistics(fit, mask, cal, image=img, noise_sigma=SIGMA, coils=1, n_bootstrap=50)
    pd = st.blocks["pdff_percent"]
    assert pd["mean_method"] == "tile-fw-ncchi" and 0.05 < pd["se"] < 0.6
    assert abs(pd["mean"] - pdff) < 1.5 and abs(pd["mean"] - pdff) < 0.5 + 3 * pd["se"]
    assert st.headline_r2_per_s == pytest.approx(800.0, rel=0.03)


def test_r2star_beyond_the_train_is_warned_as_not_measured():
    """3 T, 6 echoes from 1.2 ms (third echo 3.2 ms) at R2* 1500 s^-1: ~70 % of the voxels have
    fewer than 3 echoes above 2 sigma (BELOW_NOISE) or sit on the upper bound; the statistics
    say so in qc and in one warning line (benchmarks/gre_pdff.py: headline off by -5..+16 %)."""
    te = 0.0012 + 0.001 * np.arange(6)
    img = _uniform(3.0, te, 10.0, 1500.0, seed=7, shape=(20, 20, 1))
    fit = r2mri.fit(img, model="fatwater", noise_sigma=SIGMA, coils=1, threads=1)
    st = r2mri.stats.liver_statistics(fit, np.ones(img.shape, bool), "hernando-2022-r2star-3t-scaled",
                                      image=img, noise_sigma=SIGMA, coils=1, n_bootstrap=20)
    qc = st.blocks["qc"]
    assert qc["fraction_beyond_r2_range"] > 0.5 and qc["r2_upper_bound_per_s"] == pytest.approx(2500.0)
    (w,) = [w for w in st.warnings if "beyond the R2* range" in w]
    assert "\n" not in w and "not reliable" in w
    assert not any("ROI voxels at the noise floor (too few echoes" in w for w in st.warnings)  # one line, not two


def test_tiles_the_pooled_fit_leaves_out_are_warned():
    """No voxel beyond the range, but 48 of 100 ROI voxels in tiles the pooled fit dropped."""
    from types import SimpleNamespace

    fit = SimpleNamespace(status=np.zeros((10, 10, 1), np.uint8), r2_per_s=np.full((10, 10, 1), 300.0),
                          options={"r2_bounds_per_s": [0.0, 2500.0]})
    valid = np.ones((10, 10, 1), bool)
    q, w = _gre.range_check(fit, valid, SimpleNamespace(n_tiles_dropped=3, n_voxels_dropped=48))
    assert q["fraction_beyond_r2_range"] == 0.0 and q["n_tiles_dropped"] == 3
    assert w.startswith("qc: 3 tiles (48.0 % of ROI voxels) could not be fitted")
    assert _gre.range_check(fit, valid, SimpleNamespace(n_tiles_dropped=0, n_voxels_dropped=0))[1] is None


def test_both_range_warnings_are_given_in_one_line():
    """60 of 100 ROI voxels beyond the range and 48 in dropped tiles: one line says both."""
    from types import SimpleNamespace

    from r2mri.status import FitStatus

    st = np.zeros((10, 10, 1), np.uint8)
    st.reshape(-1)[:60] = FitStatus.BELOW_NOISE
    fit = SimpleNamespace(status=st, r2_per_s=np.full((10, 10, 1), 300.0), options={"r2_bounds_per_s": [0.0, 2500.0]})
    q, w = _gre.range_check(fit, np.ones((10, 10, 1), bool), SimpleNamespace(n_tiles_dropped=3, n_voxels_dropped=48))
    assert q["fraction_beyond_r2_range"] == pytest.approx(0.6)
    assert "\n" not in w and w.startswith("qc: 60.0 % of ROI voxels are beyond")
    assert w.endswith("; 3 tiles (48.0 % of ROI voxels) could not be fitted by the tile-pooled estimator and are "
                      "left out of the headline")


# ---------------------------------------------------------------------- protocol findings
def _gre_img(te_s, b0=1.5):
    return r2mri.MultiEchoImage(np.ones((2, 2, 1, len(te_s))), np.asarray(te_s), field_strength_t=b0,
                                sequence="GRE", echo_train_length=len(te_s))


def _codes(img):
    return {f.code: f for f in check_protocol(img)}


def test_gre_typical_train_has_no_warning_and_no_ferriscan_finding():
    c = _codes(_gre_img(TE_15))
    assert {k for k, f in c.items() if f.severity != "info"} == set()
    assert c["gre-echo-spacing"].details["in_opposed_period_ms"] == pytest.approx(
        1e3 / (3.4 * r2mri.io._headers.PROTON_GYROMAGNETIC_MHZ_PER_T * 1.5), abs=1e-4)  # 4.61 ms
    # GRE on the FerriScan echo times: still no FerriScan finding (TE/TR are SE rules)
    c = _codes(_gre_img(np.array([6, 9, 12, 15, 18, 21]) / 1e3))
    assert not set(c) & {"ferriscan-echo-times", "echo-times-not-ferriscan", "repetition-time-not-ferriscan"}


def test_gre_echo_count():
    assert _codes(_gre_img(TE_15[:5]))["gre-echo-count"].severity == "warning"
    assert "gre-echo-count" not in _codes(_gre_img(TE_15))


def test_gre_echo_spacing_at_the_in_phase_period_is_warned():
    period = 1.0 / (3.4e-6 * r2mri.io._headers.PROTON_GYROMAGNETIC_MHZ_PER_T * 1e6 * 1.5)
    f = _codes(_gre_img(0.001 + period * np.arange(6)))["gre-echo-spacing"]
    assert f.severity == "warning" and f.details["spacing_in_periods"] == pytest.approx(1.0, abs=1e-3)
    f = _codes(_gre_img(0.001 + 0.5 * period * np.arange(6)))["gre-echo-spacing"]  # in/opposed alternate
    assert f.severity == "info"


def test_gre_first_echo_late_and_last_echo_short():
    # TE3 = 7 ms: ln(25) / 7 ms = 460 s^-1 < 582 s^-1 (LIC 15 mg/g on Hernando 1.5 T)
    f = _codes(_gre_img(0.005 + 0.001 * np.arange(6)))["gre-first-echo-late"]
    assert f.severity == "warning" and f.details["r2star_window_per_s"][1] == pytest.approx(np.log(25) / 0.007, rel=1e-3)
    # 6 echoes over 1.5 ms: 10 % decay needs R2* 70 s^-1 > normal liver 39.2 s^-1 (Storey 2007)
    f = _codes(_gre_img(0.001 + 0.0003 * np.arange(6)))["gre-last-echo-short"]
    assert f.severity == "warning" and "39.2" in f.message
    # 3 T uses the 3 T normal value and the 3 T curve
    f = _codes(_gre_img(0.001 + 0.0002 * np.arange(6), b0=3.0))["gre-last-echo-short"]
    assert "69.1" in f.message


def test_gre_phase_availability():
    img = _gre_img(TE_15)
    assert _codes(img)["gre-phase"].details == {"phase": False}
    img.phase_rad = np.zeros(img.data.shape, np.float32)  # grephantom's loader adds the field
    assert _codes(img)["gre-phase"].details == {"phase": True}


def test_pooled_headline_without_water_fat_maps_starts_from_the_data():
    # a fat-water fit result without extra water/fat maps (other fitter versions) still pools
    mask = np.ones((16, 16, 1), bool)
    m = np.broadcast_to(_liver_signal(1.5, TE_15, 15.0, 200.0), mask.shape + (TE_15.size,))
    img = r2mri.MultiEchoImage(_noisy(m, 7), TE_15, field_strength_t=1.5, sequence="GRE")
    fit = r2mri.fit(img, model="fatwater", threads=1)
    full = _gre.pooled_mean_r2star(img, fit, mask, noise_sigma=SIGMA)
    fit.extra = {"pdff_percent": fit.extra["pdff_percent"]}
    bare = _gre.pooled_mean_r2star(img, fit, mask, noise_sigma=SIGMA)
    # same global minimum from another start: equal to the fit's tolerance
    assert bare.mean_r2_per_s == pytest.approx(full.mean_r2_per_s, rel=1e-5)
    assert full.mean_r2_per_s == pytest.approx(200.0, abs=5 * full.se_r2_per_s)


def test_a_1_5t_r2star_curve_at_3t_names_the_r2star_bridge():
    with pytest.raises(CalibrationError, match=r"derived at 1.5 T, the acquisition is at 2.89 T.*hernando-2022-r2star-3t-scaled"):
        check_applicability("hernando-2022-r2star-1.5t", field_strength_t=2.89, sequence="GRE")


def test_headline_ci95_covers_the_truth():
    """40 seeded draws (1.5 T, PDFF 15 %, R2* 200 s^-1, 20 x 20 voxels): the headline's 95 %
    interval holds the true LIC in >= 35 (binomial n 40, p 0.95: P(X < 35) = 1.4 %); measured
    344/360 (95.6 %) over six field/PDFF/R2* cases in docs/fatwater.md."""
    m = np.broadcast_to(_liver_signal(1.5, TE_15, 15.0, 200.0), (20, 20, 1, TE_15.size))
    truth = lic_from_r2(200.0, "hernando-2022-r2star-1.5t")
    hits = 0
    for seed in range(40):
        img = r2mri.MultiEchoImage(_noisy(m, 100 + seed), TE_15, field_strength_t=1.5, sequence="GRE")
        fit = r2mri.fit(img, model="fatwater", noise_sigma=SIGMA, threads=1)
        st = r2mri.stats.liver_statistics(fit, np.ones(img.shape, bool), "hernando-2022-r2star-1.5t", image=img,
                                          n_bootstrap=300)
        lo, hi = st.ci95_lic_mg_per_g
        hits += lo <= truth <= hi
    assert hits >= 35


def test_gre_without_air_asks_for_sigma_instead_of_a_fat_biased_tissue_estimate():
    # a liver block with no air: the tissue noise estimate fits mono-exponentials, whose
    # residuals on fatty liver hold the fat-water beat (sigma overestimated)
    img, liver = gre_image(1.5, TE_15, 5.0, 100.0, shape=(20, 20, 2), radius=40)
    assert liver.all()
    with pytest.raises(InputError, match="biased by fat for the fat-water fit; pass noise_sigma"):
        r2mri.analyze(img, mask=liver, threads=1)
    res = r2mri.analyze(img, mask=liver, threads=1, noise_sigma=SIGMA, coils=1)
    assert res.fit.model == "fatwater"
