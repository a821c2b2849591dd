"""GRE phantoms with water, fat (6-peak spectrum), a B0 field map and a phase image.

Truth checks against the reference fat-water model of r2mri.fatwater (physics in one
place), noise checks against the complex Gaussian model (phase noise sigma / |S| at high
SNR), and the spec rules. Small matrices: each phantom is well under a second.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from r2mri import InputError
from r2mri.calibration import r2_from_lic
from r2mri.fatwater import load_fat_spectrum, magnitude_signal
from r2mri.phantom import LABELS, generate, list_specs
from r2mri.phantom._noise import coil_maps, rss_and_combined, rss_noisy

SMALL = dict(matrix=(64, 56), pixel_mm=6.0, n_slices=3)
NAME = "gre-1.5t-fat15-lic3.2"


@pytest.fixture(scope="module")
def clean():
    return generate(NAME, **SMALL, snr=math.inf)


@pytest.fixture(scope="module")
def noisy():
    return generate(NAME, **SMALL, seed=3)


def _complex_truth(ph) -> np.ndarray:
    """(W + F c(t)) exp(-R2* t) exp(i 2 pi psi t) in the liver, from the truth maps."""
    t, te = ph.truth, ph.image.echo_times_s
    m = t.liver_mask
    c = load_fat_spectrum(ph.spec.fat_spectrum).basis(te, ph.spec.field_strength_t)
    w, f, r, psi = (a[m][:, None] for a in (t.water, t.fat, t.r2_per_s, t.field_hz))
    return (w + f * c[None, :]) * np.exp((-r + 2j * np.pi * psi) * te[None, :])


def test_named_gre_fat_specs_are_shipped():
    names = set(list_specs())
    assert {"gre-1.5t-fat15-lic3.2", "gre-1.5t-fat40-lic7-12echo"} <= names


def test_noise_free_magnitude_is_the_fatwater_model(clean):
    t, img = clean.truth, clean.image
    m = t.liver_mask
    c = load_fat_spectrum().basis(img.echo_times_s, 1.5)
    ref = magnitude_signal(c, img.echo_times_s, t.water[m], t.fat[m], t.r2_per_s[m])
    # float32 storage: relative error within a few float32 ulps
    np.testing.assert_allclose(img.data[m], ref, rtol=1e-6)
    np.testing.assert_allclose(t.water + t.fat, t.s0, rtol=1e-12)


def test_noise_free_phase_is_the_complex_model(clean):
    m = clean.truth.liver_mask
    expected = np.angle(_complex_truth(clean))
    diff = np.angle(np.exp(1j * (clean.image.phase_rad[m].astype(np.float64) - expected)))
    assert np.max(np.abs(diff)) < 1e-5  # complex64 arithmetic
    # echo 1 phase is not zero: fat and field both turn it
    assert np.abs(expected[:, 0]).mean() > 0.05


def test_truth_maps_and_summary(clean):
    t, s = clean.truth, clean.summary
    m = t.liver_mask
    assert np.all(t.pdff_percent[m] == 15.0)
    assert np.all(t.pdff_percent[t.labels == LABELS["subcutaneous_fat"]] == 90.0)
    assert np.all(t.pdff_percent[t.labels == LABELS["vessel"]] == 0.0)
    assert np.all(np.isnan(t.pdff_percent[t.labels == LABELS["air"]]))
    body = t.labels != LABELS["air"]
    assert np.nanmax(np.abs(t.field_hz[body])) == pytest.approx(60.0, rel=1e-12)
    # smooth: neighbouring voxels (6 mm apart) differ by far less than the peak
    assert np.nanmax(np.abs(np.diff(t.field_hz, axis=0))) < 0.1 * 60.0
    assert s["mean_liver_pdff_percent"] == pytest.approx(15.0)
    assert s["fat_spectrum"]["name"] == "liver-fat-6peak" and s["fat_spectrum"]["doi"] == "10.1002/nbm.1622"
    assert s["calibration"] == "hernando-2022-r2star-1.5t"
    assert s["mean_liver_r2_per_s"] == pytest.approx(float(r2_from_lic(3.2, "hernando-2022-r2star-1.5t")))
    assert s["rate_quantity"] == "R2*" and s["lic_of_mean_r2_mg_per_g"] == pytest.approx(3.2)


def test_phase_noise_is_sigma_over_signal(noisy):
    """Roemer combination with unit-RSS sensitivities: complex Gaussian noise of SD sigma
    per part, so at high SNR the phase error has SD sigma / |S| (first-order)."""
    m = noisy.truth.liver_mask
    s = _complex_truth(noisy)[:, 0]
    err = np.angle(np.exp(1j * (noisy.image.phase_rad[m][:, 0] - np.angle(s))))
    z = err * np.abs(s) / noisy.summary["noise_sigma"]
    n = z.size
    assert n > 800
    # SD of a unit normal estimated from n samples: standard error 1/sqrt(2n); 5 SE bound
    assert np.std(z) == pytest.approx(1.0, abs=5 / math.sqrt(2 * n) + 0.01)
    assert abs(np.mean(z)) < 5 / math.sqrt(n)


def test_real_signal_gives_the_magnitude_of_rss_noisy():
    """For a real signal the complex path draws the same noise: same RSS magnitude."""
    rng_shape = (12, 10, 2, 3)
    x = np.linspace(-100, 100, 12)
    y = np.linspace(-80, 80, 10)
    sens, _ = coil_maps(x, y, 4, 0.5, np.ones((12, 10), bool))
    sig = np.random.default_rng(0).uniform(10, 100, rng_shape)
    a = rss_noisy(sig, sens, 5.0, np.random.default_rng(9))
    b, comb = rss_and_combined(sig.astype(np.complex128), sens, 5.0, np.random.default_rng(9))
    np.testing.assert_allclose(a, b, rtol=2e-6)
    # noise-free part of the combination is the signal itself (unit-RSS sensitivities)
    _, comb0 = rss_and_combined(sig.astype(np.complex128), sens, 1e-30, np.random.default_rng(9))
    np.testing.assert_allclose(comb0, sig, rtol=1e-5)


def test_grid_by_parameters():
    ph = generate(NAME, **SMALL, snr=math.inf, pdff_percent=45.0, lic=25.0)
    assert ph.summary["mean_liver_pdff_percent"] == pytest.approx(45.0)
    assert ph.summary["lic_of_mean_r2_mg_per_g"] == pytest.approx(25.0)
    ph0 = generate(NAME, **SMALL, snr=math.inf, pdff_percent=0.0, lic=0.5)
    assert np.all(ph0.truth.fat[ph0.truth.liver_mask] == 0)


def test_plain_gre_phantom_is_unchanged():
    ph = generate("gre-1.5t-lic3.2", **SMALL, seed=1)
    assert ph.image.phase_rad is None and ph.truth.pdff_percent is None
    assert "fat_water" not in ph.summary


@pytest.mark.parametrize("bad, text", [
    (dict(pdff_percent=10.0), "needs fat_water"),
    (dict(sequence="SE", echo_times_ms=[6.0, 9.0], fat_water=True), "GRE' only"),
    (dict(fat_water=True, fat_spectrum="nope"), "unknown name"),
    (dict(pdff_percent=100.0, fat_water=True), "pdff_percent"),
    (dict(field_strength_t=3.0), "must name an R2* calibration"),
    (dict(b0_peak_hz=5000.0), "b0_peak_hz"),
    (dict(b0_peak_hz=20.0, decay="biexp", biexp_slow_fraction=0.2), "must be 'mono'"),
])
def test_spec_rules(bad, text):
    base = dict(sequence="GRE", echo_times_ms=[1.2, 2.2, 3.2])
    base.update(bad)
    with pytest.raises(InputError, match=text.replace("*", r"\*")):
        generate(**SMALL, **base)


def _calibration_available(name: str) -> bool:
    from r2mri.calibration import get_calibration

    try:
        get_calibration(name)
    except InputError:
        return False
    return True


@pytest.mark.skipif(not _calibration_available("hernando-2022-r2star-3t-scaled"),
                    reason="the 3 T R2* bridge calibration ships with the GRE analyze work (issue 15)")
def test_3t_gre_fat_phantom():
    ph = generate("gre-3t-fat15-lic3.2", **SMALL, snr=math.inf)
    s = ph.summary
    assert s["field_strength_t"] == 3.0 and s["lic_of_mean_r2_mg_per_g"] == pytest.approx(3.2)
    # fat basis at 3 T: the main peak (-3.4 ppm) turns twice as fast as at 1.5 T
    m = ph.truth.liver_mask
    c = load_fat_spectrum().basis(ph.image.echo_times_s, 3.0)
    ref = magnitude_signal(c, ph.image.echo_times_s, ph.truth.water[m], ph.truth.fat[m], ph.truth.r2_per_s[m])
    np.testing.assert_allclose(ph.image.data[m], ref, rtol=1e-6)
    assert np.nanmax(np.abs(ph.truth.field_hz)) == pytest.approx(120.0)


@pytest.mark.parametrize("kw", [dict(), dict(pdff_percent=0.0, lic=15.0), dict(pdff_percent=45.0, lic=0.5)])
def test_noise_free_phantom_is_recovered_by_the_fatwater_fit(kw):
    """The phantom and the fitter share one model: without noise the magnitude fat-water
    fit returns the truth (to the fitter's convergence tolerance)."""
    import r2mri

    ph = generate(NAME, matrix=(32, 32), pixel_mm=12.0, n_slices=2, snr=math.inf, **kw)
    m = ph.truth.liver_mask
    res = r2mri.fit(ph.image, model="fatwater", mask=m)
    np.testing.assert_allclose(res.r2_per_s[m], ph.truth.r2_per_s[m], rtol=1e-4)
    np.testing.assert_allclose(res.extra["pdff_percent"][m], ph.truth.pdff_percent[m], atol=1e-3)
