"""Fat-water R2* (model="fatwater"): exactness, agreement with scipy, accuracy at SNR 50
against the Cramer-Rao bound, the swap rule, and the fat bias of the plain exponential."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import curve_fit, least_squares

import r2mri
from r2mri.errors import InputError
from r2mri.fatwater import cramer_rao_std, load_fat_spectrum, magnitude_jacobian, magnitude_signal
from r2mri.fatwater.fit import FAT_FLOOR_FRACTION
from r2mri.io._headers import PROTON_GYROMAGNETIC_MHZ_PER_T

SPEC = load_fat_spectrum()
# typical vendor trains (issue 15): 6 echoes, TE1 1.2 ms, spacing 1 ms; and 12 echoes
TE6 = 0.0012 + 0.001 * np.arange(6)
TE12 = 0.0012 + 0.001 * np.arange(12)
TE_IRREGULAR = np.array([1.1, 2.3, 3.2, 4.6, 5.5, 7.0, 8.2]) * 1e-3  # not equally spaced
TRAINS = [(1.5, TE6), (3.0, TE6), (1.5, TE12), (3.0, TE12), (3.0, TE_IRREGULAR)]
R2S = np.array([30.0, 60.0, 100.0, 200.0, 400.0, 800.0])
PDFFS = np.array([0.0, 0.05, 0.10, 0.20, 0.30, 0.45])


def _grid():
    r, p = np.meshgrid(R2S, PDFFS)
    return r.ravel(), p.ravel()


def _noisy(basis, te, water, fat, r2, sigma, n, seed):
    """Complex Gaussian noise (SD sigma per channel) on the complex signal, then magnitude."""
    rng = np.random.default_rng(seed)
    z = (water + fat * basis) * np.exp(-r2 * te)
    return np.abs(z + sigma * (rng.standard_normal((n, te.size)) + 1j * rng.standard_normal((n, te.size))))


def test_spectrum_is_data_with_its_source():
    assert SPEC.verified
    assert SPEC.citation["doi"] == "10.1002/nbm.1622"
    assert SPEC.frequencies_ppm == (-3.80, -3.40, -2.60, -1.94, -0.39, 0.60)
    np.testing.assert_allclose(np.array(SPEC.relative_amplitudes) * 0.999,
                               [0.087, 0.693, 0.128, 0.004, 0.039, 0.048], atol=1e-12)
    # field scaling f = ppm 1e-6 gamma B0, gamma from r2mri.io._headers (CODATA 2018)
    np.testing.assert_allclose(SPEC.frequencies_hz(3.0),
                               np.array(SPEC.frequencies_ppm) * PROTON_GYROMAGNETIC_MHZ_PER_T * 3.0)
    # basis at t = 0 is the total fat signal per unit F
    assert SPEC.basis([0.0], 1.5)[0] == pytest.approx(1.0, abs=1e-12)


def test_spectrum_errors(tmp_path):
    with pytest.raises(InputError, match="unknown name 'nope'"):
        load_fat_spectrum("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('frequencies_ppm = [-3.4, 0.6]\nrelative_amplitudes = [1.0]\nverified = false\n'
                   '[citation]\ndoi = "x"\n')
    with pytest.raises(InputError, match="2 frequencies but 1 amplitudes"):
        load_fat_spectrum(bad)
    with pytest.raises(InputError, match="field_strength_t: the fat-water model needs"):
        r2mri.fit(np.ones(6), TE6, model="fatwater")
    with pytest.raises(InputError, match="swap_rule: unknown"):
        r2mri.fit(np.ones(6), TE6, model="fatwater", field_strength_t=1.5, swap_rule="x")


def test_jacobian_matches_finite_differences():
    c = SPEC.basis(TE6, 1.5)
    p = np.array([70.0, 30.0, 150.0])
    J = magnitude_jacobian(c, TE6, *p)
    for i in range(3):
        h = np.zeros(3)
        h[i] = 1e-6 * max(abs(p[i]), 1.0)
        num = (magnitude_signal(c, TE6, *(p + h)) - magnitude_signal(c, TE6, *(p - h))) / (2 * h[i])
        np.testing.assert_allclose(J[:, i], num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("field_t,te", TRAINS, ids=["1.5T-6", "3T-6", "1.5T-12", "3T-12", "3T-irregular"])
def test_noise_free_is_exact(field_t, te):
    r2, pdff = _grid()
    y = magnitude_signal(SPEC.basis(te, field_t), te, 1000.0 * (1 - pdff), 1000.0 * pdff, r2)
    res = r2mri.fit(y, te, model="fatwater", field_strength_t=field_t)
    assert res.model == "fatwater" and res.status_counts() == {"ok": r2.size}
    np.testing.assert_allclose(res.r2_per_s, r2, rtol=1e-4)
    np.testing.assert_allclose(res.extra["pdff_percent"], 100 * pdff, atol=1e-4 * 100)
    np.testing.assert_allclose(res.extra["water"] + res.extra["fat"], 1000.0, rtol=1e-4)
    assert np.all(res.r_squared >= 1 - 1e-6)  # float32 maps


def test_multi_echo_image_carries_the_field():
    y = magnitude_signal(SPEC.basis(TE6, 3.0), TE6, 80.0, 20.0, 120.0)
    img = r2mri.MultiEchoImage(data=np.broadcast_to(y, (2, 2, 1, 6)).copy(), echo_times_s=TE6,
                               field_strength_t=3.0)
    res = r2mri.fit(img, model="fatwater", mask=np.array([[[True], [False]], [[True], [True]]]))
    assert res.options["field_strength_t"] == 3.0 and res.options["fat_spectrum"] == "liver-fat-6peak"
    assert res.status[0, 1, 0] == r2mri.FitStatus.MASKED and np.isnan(res.r2_per_s[0, 1, 0])
    np.testing.assert_allclose(res.extra["pdff_percent"][res.status == 0], 20.0, atol=1e-4)


def test_agrees_with_scipy_least_squares():
    """Same model, same data: r2mri reaches the global least-squares minimum that scipy finds
    from four starts (min_residual rule), and scipy started at r2mri's answer does not move."""
    c = SPEC.basis(TE6, 1.5)
    y = _noisy(c, TE6, 75.0, 25.0, 150.0, 2.0, 40, seed=7)
    res = r2mri.fit(y, TE6, model="fatwater", field_strength_t=1.5, swap_rule="min_residual", xtol=1e-10)
    ours = np.c_[res.extra["water"], res.extra["fat"], res.r2_per_s].astype(np.float64)
    lo, hi = [0.0, 0.0, 0.0], [np.inf, np.inf, 1000.0]
    for yi, pi in zip(y, ours):
        fun = lambda p: magnitude_signal(c, TE6, *p) - yi  # noqa: E731
        best = min((least_squares(fun, p0, bounds=(lo, hi), xtol=1e-14, ftol=1e-14, gtol=1e-14)
                    for p0 in ([90, 10, 100], [10, 90, 100], [75, 25, 150], [25, 75, 150])),
                   key=lambda r: r.cost)
        ours_cost = 0.5 * np.sum(fun(pi) ** 2)
        assert ours_cost <= best.cost * (1 + 1e-5) + 1e-10
        again = least_squares(fun, pi, bounds=(lo, hi), xtol=1e-14, ftol=1e-14, gtol=1e-14)
        np.testing.assert_allclose(pi, again.x, rtol=2e-5, atol=1e-4)


# SNR 50 = (W + F) / sigma at t = 0. Cases where the last echo stays >= ~2 sigma above the
# noise; the noise floor (R2* 800 s^-1 here) is the next milestone (docs/fatwater.md).
SNR_CASES = [(1.5, TE6, r, p) for r in (30.0, 100.0, 300.0, 500.0) for p in (0.0, 0.10, 0.30, 0.45)] + \
            [(3.0, TE12, r, p) for r in (30.0, 100.0, 200.0) for p in (0.0, 0.10, 0.30, 0.45)]


@pytest.mark.parametrize("field_t,te,r2,pdff", SNR_CASES)
def test_snr50_bias_within_issue_targets(field_t, te, r2, pdff):
    """Median R2* within 3 % and median PDFF within 1.5 points of truth, widened by the
    sampling error of a median (1.2533 CRB / sqrt(n), 3 SD); spread of R2* at the bound."""
    n, sigma = 1000, 2.0
    c = SPEC.basis(te, field_t)
    w, f = 100.0 * (1 - pdff), 100.0 * pdff
    y = _noisy(c, te, w, f, r2, sigma, n, seed=int(r2 * 100 + pdff * 1000 + field_t * 10))
    res = r2mri.fit(y, te, model="fatwater", field_strength_t=field_t)
    crb = cramer_rao_std(c, te, w + 1e-6, f + 1e-6, r2, sigma)
    med_err = 3 * 1.2533 / np.sqrt(n)
    assert abs(np.median(res.r2_per_s) - r2) <= 0.03 * r2 + med_err * crb["r2star_per_s"]
    assert abs(np.median(res.extra["pdff_percent"]) - 100 * pdff) <= 1.5 + 100 * med_err * crb["pdff"]
    assert 0.85 <= np.std(res.r2_per_s) / crb["r2star_per_s"] <= 1.15
    # reported R2* standard error (Jacobian and residual sigma) matches the bound on average
    assert np.median(res.r2_std_per_s) / crb["r2star_per_s"] == pytest.approx(1.0, abs=0.2)


# Noise floor (R2* 500-800 s^-1): the noise-corrected model E[M] with sigma known. Corners
# of the issue grid (the whole grid is benchmarks/bench_fatwater.py); the tolerance is the
# issue's 3 % / 1.5 points widened by the sampling error of the median (3 SD).
FLOOR_CASES = [(1.5, TE6, 800.0, 0.10), (1.5, TE12, 800.0, 0.30), (1.5, TE6, 500.0, 0.45),
               (3.0, TE12, 500.0, 0.45), (3.0, TE6, 800.0, 0.30)]


@pytest.mark.parametrize("field_t,te,r2,pdff", FLOOR_CASES)
def test_snr50_noise_floor_at_800_per_s(field_t, te, r2, pdff):
    n, sigma = 1000, 2.0
    c = SPEC.basis(te, field_t)
    w, f = 100.0 * (1 - pdff), 100.0 * pdff
    y = _noisy(c, te, w, f, r2, sigma, n, seed=3)
    res = r2mri.fit(y, te, model="fatwater", field_strength_t=field_t, noise_sigma=sigma)
    assert res.options["noise_method"] == "given" and res.options["coils"] == 1
    assert res.options["noise_floor_handling"].startswith("non-central chi")
    crb = cramer_rao_std(c, te, w, f, r2, sigma)
    med_err = 3 * 1.2533 / np.sqrt(n)
    assert abs(np.median(res.r2_per_s) - r2) <= 0.03 * r2 + med_err * crb["r2star_per_s"]
    assert abs(np.median(res.extra["pdff_percent"]) - 100 * pdff) <= 1.5 + 100 * med_err * crb["pdff"]
    if (field_t, te.size, r2, pdff) == (1.5, 6, 800.0, 0.10):
        # the Gaussian fit of the same data is biased low by the floor, and says so
        with pytest.warns(RuntimeWarning, match="noise floor biases R2. low; pass noise_sigma"):
            plain = r2mri.fit(y, te, model="fatwater", field_strength_t=field_t)
        assert np.median(plain.r2_per_s) < 0.93 * r2


def test_noise_floor_below_noise_status():
    """Fewer than 3 echoes above k_sigma * sigma (3 = the parameters): status BELOW_NOISE."""
    c = SPEC.basis(TE12, 1.5)
    y = magnitude_signal(c, TE12, np.array([90.0, 90.0]), 10.0, np.array([100.0, 900.0]))
    res = r2mri.fit(y, TE12, model="fatwater", field_strength_t=1.5, noise_sigma=10.0)
    assert res.status.tolist() == [r2mri.FitStatus.OK, r2mri.FitStatus.BELOW_NOISE]
    assert res.options["k_sigma"] == 2.0 and np.all(np.isfinite(res.r2_per_s))


def test_noise_floor_sigma_and_coils_from_the_air():
    """An image with air around the liver: sigma and coils come from the background (as for
    the SE models), and the noise-corrected fit of 4-coil root-sum-of-squares data is unbiased."""
    rng = np.random.default_rng(21)
    coils, sigma, r2, pdff = 4, 2.0, 700.0, 0.2
    c = SPEC.basis(TE12, 1.5)
    body = np.zeros((40, 40), bool)
    body[8:32, 8:32] = True
    z = np.where(body[..., None], (100 * (1 - pdff) + 100 * pdff * c) * np.exp(-r2 * TE12), 0)
    noise = sigma * (rng.standard_normal((coils, 40, 40, 12)) + 1j * rng.standard_normal((coils, 40, 40, 12)))
    y = np.sqrt(np.sum(np.abs(z[None] / np.sqrt(coils) + noise) ** 2, axis=0))[:, :, None, :]
    res = r2mri.fit(y, TE12, model="fatwater", field_strength_t=1.5, mask=body[:, :, None])
    assert res.options["noise_method"] == "background" and res.options["coils"] == coils
    assert res.options["noise_sigma"] == pytest.approx(sigma, rel=0.03)
    crb = cramer_rao_std(c, TE12, 80.0, 20.0, r2, sigma)["r2star_per_s"]
    inside = res.r2_per_s[body[:, :, None]]
    assert abs(np.median(inside) - r2) <= 0.03 * r2 + 3 * 1.2533 * crb / np.sqrt(inside.size)


def test_kernel_cache_key_follows_noise_py():
    """numba keys the on-disk cache of r2mri/fatwater/_kernels.py on that file only; it
    compiles r2mri/noise.py's E[M] in, so it carries noise.py's hash (as fitting/_kernels)."""
    import hashlib
    from pathlib import Path

    from r2mri.fatwater import _kernels

    noise_py = Path(r2mri.__file__).resolve().parent / "noise.py"
    assert _kernels._NOISE_PY_SHA256 == hashlib.sha256(noise_py.read_bytes()).hexdigest(), \
        "update _NOISE_PY_SHA256 in r2mri/fatwater/_kernels.py"


@pytest.mark.parametrize("pdff", [0.10, 0.45])
def test_swap_rule_picks_the_water_dominant_solution(pdff):
    c = SPEC.basis(TE6, 1.5)
    w, f, r2 = 100.0 * (1 - pdff), 100.0 * pdff, 100.0
    y0 = magnitude_signal(c, TE6, w, f, r2)
    # a fat-dominant local minimum exists: scipy from a fat-dominant start stays there
    sw = least_squares(lambda p: magnitude_signal(c, TE6, *p) - y0, [10.0, 90.0, r2],
                       bounds=([0, 0, 0], [np.inf, np.inf, 1000]), xtol=1e-14, ftol=1e-14)
    assert sw.x[1] / sw.x[:2].sum() > 0.5 and sw.cost > 0
    for rule in ("liver", "min_residual"):  # noise-free: both rules find the truth
        res = r2mri.fit(y0, TE6, model="fatwater", field_strength_t=1.5, swap_rule=rule)
        assert float(res.extra["pdff_percent"]) == pytest.approx(100 * pdff, abs=1e-4)
    # at SNR 50 the swapped minimum often has the lower residual (6 echoes at 1.5 T): the
    # liver rule (PDFF <= 50 % preferred) keeps the right branch, min_residual does not
    n, sigma = 1000, 2.0
    y = _noisy(c, TE6, w, f, r2, sigma, n, seed=11)
    crb = cramer_rao_std(c, TE6, w, f, r2, sigma)["pdff"] * 100
    liver = r2mri.fit(y, TE6, model="fatwater", field_strength_t=1.5)
    plain = r2mri.fit(y, TE6, model="fatwater", field_strength_t=1.5, swap_rule="min_residual")
    far_liver = np.mean(np.abs(liver.extra["pdff_percent"] - 100 * pdff) > 5 * crb)
    far_plain = np.mean(np.abs(plain.extra["pdff_percent"] - 100 * pdff) > 5 * crb)
    assert far_liver <= 0.005
    assert far_plain >= 0.05


def test_monoexp_is_biased_by_fat():
    """A plain exponential on fatty liver (1.5 T, 6 echoes, R2* 100 s^-1) underestimates R2*
    more as PDFF grows; the fat-water fit on the same curves is exact."""
    c = SPEC.basis(TE6, 1.5)
    pdff = np.array([0.0, 0.05, 0.10, 0.20, 0.30])
    y = magnitude_signal(c, TE6, 100 * (1 - pdff), 100 * pdff, 100.0)
    mono = r2mri.fit(y, TE6, model="monoexp").r2_per_s.astype(np.float64)
    # r2mri's monoexp is the least-squares exponential (scipy agrees): the bias is the model's
    for yi, mi in zip(y, mono):
        (s0, r), _ = curve_fit(lambda t, s0, r: s0 * np.exp(-r * t), TE6, yi, p0=[yi[0], 100.0])
        assert mi == pytest.approx(r, rel=1e-4)
    bias = mono / 100.0 - 1
    assert abs(bias[0]) < 1e-5
    assert np.all(np.diff(bias) < 0)  # more fat, lower R2*
    assert bias[2] < -0.08 and bias[3] < -0.18  # >= 8 % low at PDFF 10 %, >= 18 % at 20 %
    fw = r2mri.fit(y, TE6, model="fatwater", field_strength_t=1.5)
    np.testing.assert_allclose(fw.r2_per_s, 100.0, rtol=1e-4)


def test_bad_voxels_and_bounds():
    y = magnitude_signal(SPEC.basis(TE6, 1.5), TE6, np.array([90.0, 90.0, 0.0]), 10.0, 100.0)
    y[1, 2] = np.nan
    y[2] = 0.0
    res = r2mri.fit(y, TE6, model="fatwater", field_strength_t=1.5, r2_bounds_per_s=(0.0, 50.0))
    assert res.status.tolist() == [r2mri.FitStatus.BOUND_HIT, r2mri.FitStatus.BAD_INPUT,
                                   r2mri.FitStatus.BAD_INPUT]
    assert res.r2_per_s[0] == pytest.approx(50.0) and np.isnan(res.r2_per_s[1])


def test_auto_on_a_gradient_echo_image_is_the_fat_water_model():
    # r2mri.fit(model="auto") picks fatwater for GRE input as analyze does (issue 15)
    c = SPEC.basis(TE6, 1.5)
    y = _noisy(c, TE6, 85.0, 15.0, 200.0, 2.0, 64, seed=5).reshape(8, 8, 1, -1)
    img = r2mri.MultiEchoImage(y, TE6, field_strength_t=1.5, sequence="GRE")
    res = r2mri.fit(img, noise_sigma=2.0)
    assert res.model == "fatwater" and "gradient-echo" in res.options["auto_rule"]
    assert abs(np.median(res.r2_per_s) / 200.0 - 1) < 0.05
    no_field = r2mri.MultiEchoImage(y, TE6, sequence="GRE")
    with pytest.warns(UserWarning, match="without fat"):
        assert r2mri.fit(no_field, noise_sigma=2.0).model != "fatwater"


# Fat bound (docs/fatwater.md "Fat bound and PDFF rule"): F >= -a W, a = FAT_FLOOR_FRACTION,
# PDFF signed.
FAT_FLOOR = FAT_FLOOR_FRACTION


def test_fat_bound_reaches_the_constrained_minimum_at_pdff_0():
    """At PDFF 0 about half the voxels want F < 0; r2mri's oblique bound F >= -a W gives the
    minimum scipy finds in the coordinates (W, u = F + a W, R2*) with the box u >= 0."""
    c = SPEC.basis(TE6, 1.5)
    y = _noisy(c, TE6, 100.0, 0.0, 300.0, 2.0, 40, seed=17)
    res = r2mri.fit(y, TE6, model="fatwater", field_strength_t=1.5, xtol=1e-10)
    assert res.options["fat_floor_fraction"] == FAT_FLOOR and res.options["pdff_rule"].startswith("signed")
    w, f = res.extra["water"].astype(np.float64), res.extra["fat"].astype(np.float64)
    assert np.all(f >= -FAT_FLOOR * w * (1 + 1e-6)) and np.mean(f < 0) > 0.2
    np.testing.assert_allclose(res.s0, w + f, rtol=1e-6)
    np.testing.assert_allclose(res.extra["pdff_percent"], 100 * f / (w + f), atol=1e-4)
    lo, hi = [0.0, 0.0, 0.0], [np.inf, np.inf, 1000.0]
    for yi, wi, fi, ri in zip(y, w, f, res.r2_per_s.astype(np.float64)):
        fun = lambda q: magnitude_signal(c, TE6, q[0], q[1] - FAT_FLOOR * q[0], q[2]) - yi  # noqa: E731
        best = min((least_squares(fun, q0, bounds=(lo, hi), xtol=1e-14, ftol=1e-14, gtol=1e-14)
                    for q0 in ([90, 19, 300], [100, 10, 250], [100, 5, 350])), key=lambda r: r.cost)
        ours = np.array([wi, max(fi + FAT_FLOOR * wi, 0.0), ri])
        assert 0.5 * np.sum(fun(ours) ** 2) <= best.cost * (1 + 1e-4) + 1e-8


@pytest.fixture(scope="module")
def pdff0_r2_800():
    """R2* 800 s^-1, PDFF 0, SNR 50, noise-corrected fit: 1.5 T and 3 T, 12 echoes (the two
    trains with the largest bias under F >= 0: -3.7 % and +5.3 %)."""
    n, sigma, out = 3000, 2.0, {}
    for field_t in (1.5, 3.0):
        c = SPEC.basis(TE12, field_t)
        y = _noisy(c, TE12, 100.0, 0.0, 800.0, sigma, n, seed=int(31 * field_t))
        res = r2mri.fit(y, TE12, model="fatwater", field_strength_t=field_t, noise_sigma=sigma)
        crb = cramer_rao_std(c, TE12, 100.0, 1e-6, 800.0, sigma)
        out[field_t] = res, crb
    return out


@pytest.mark.parametrize("field_t", [1.5, 3.0])
def test_r2star_800_at_pdff_0_within_3_percent(pdff0_r2_800, field_t):
    """The issue's 3 % at R2* 800 s^-1 and PDFF 0, widened by 3 SE of a median
    (1.2533 CRB / sqrt(n)); and no pile-up of voxels on F = 0 (with F >= 0 it held half)."""
    res, crb = pdff0_r2_800[field_t]
    n = res.r2_per_s.size
    med_se = 1.2533 * crb["r2star_per_s"] / np.sqrt(n)
    assert abs(np.median(res.r2_per_s) - 800.0) <= 0.03 * 800.0 + 3 * med_se
    fat = res.extra["fat"]
    assert np.mean(fat == 0) < 0.01 and 0.2 < np.mean(fat < 0) < 0.8


def test_signed_pdff_roi_statistics_at_pdff_0():
    """ROI statistics of the signed voxel PDFF at PDFF 0 (R2* 400 s^-1, 1.5 T, 6 echoes,
    SNR 50): mean and median within the issue's 1.5 points (+3 SE); a voxel map clipped at
    0 would put the mean ~0.4 x its spread high (+2.1 points, measured)."""
    n, sigma = 2000, 2.0
    c = SPEC.basis(TE6, 1.5)
    y = _noisy(c, TE6, 100.0, 0.0, 400.0, sigma, n, seed=41)
    res = r2mri.fit(y, TE6, model="fatwater", field_strength_t=1.5, noise_sigma=sigma)
    pd = res.extra["pdff_percent"][res.status == r2mri.FitStatus.OK].astype(np.float64)
    se = 100 * cramer_rao_std(c, TE6, 100.0, 1e-6, 400.0, sigma)["pdff"] / np.sqrt(pd.size)
    assert pd.min() >= -100 * FAT_FLOOR / (1 - FAT_FLOOR) - 1e-3
    assert abs(np.mean(pd)) <= 1.5 + 3 * se and abs(np.median(pd)) <= 1.5 + 3 * 1.2533 * se
    assert np.mean(np.maximum(pd, 0)) > 1.5  # what clipping each voxel would report


def test_default_r2star_range_follows_the_field_and_the_third_echo():
    """Rule (docs/fatwater.md "R2* range"): upper bound min(2 x R2* of LIC 40 mg/g on the
    Hernando 2022 1.5 T line scaled by B0 / 1.5 T, 8 / TE3). With 0-1000 s^-1 for every train,
    a 3 T short train at R2* 1500 s^-1 put every voxel on the bound; now it is measured within the
    issue's 3 % (SNR 50; median -0.9..-1.9 % over PDFF 0-30 % in benchmarks/gre_pdff.py, 2000 voxels)."""
    from r2mri.fatwater.fit import default_r2star_bounds

    ceiling = (40.0 + 0.16) / 0.02603  # s^-1 at 1.5 T
    assert default_r2star_bounds(TE6, 1.5) == (0.0, pytest.approx(8.0 / TE6[2]))
    te_short = 0.0004 + 0.0004 * np.arange(12)
    assert default_r2star_bounds(te_short, 1.5)[1] == pytest.approx(2 * ceiling, rel=1e-9)
    assert default_r2star_bounds(te_short, 3.0)[1] == pytest.approx(4 * ceiling, rel=1e-9)
    te = 0.0006 + 0.0006 * np.arange(12)
    c = SPEC.basis(te, 3.0)
    rng = np.random.default_rng(5)
    z = (85.0 + 15.0 * c) * np.exp(-1500.0 * te)
    y = np.abs(z + 2.0 * (rng.standard_normal((300, te.size)) + 1j * rng.standard_normal((300, te.size))))
    res = r2mri.fit(y, te, model="fatwater", field_strength_t=3.0, noise_sigma=2.0)
    assert res.options["r2_bounds_per_s"][1] == pytest.approx(8.0 / te[2])
    assert res.options["r2_bounds_rule"].startswith("default")
    assert np.mean(res.status == r2mri.FitStatus.OK) > 0.9  # 1-3 % BELOW_NOISE (benchmarks/gre_pdff.py)
    assert np.median(res.r2_per_s) == pytest.approx(1500.0, rel=0.03)
    old = r2mri.fit(y, te, model="fatwater", field_strength_t=3.0, noise_sigma=2.0, r2_bounds_per_s=(0.0, 1000.0))
    assert np.mean(old.status == r2mri.FitStatus.BOUND_HIT) > 0.9 and old.options["r2_bounds_rule"] == "given"
