"""Fat-water R2* with phase (model="fatwater", phase_rad=...): complex fit with a field map,
against known smooth field maps, the water/fat swap without a PDFF prior, the spatial step
and the phase sign convention (docs/fatwater.md, "Complex fit")."""

from __future__ import annotations

import numpy as np
import pytest

import r2mri
from r2mri.errors import InputError
from r2mri.fatwater import load_fat_spectrum

SPEC = load_fat_spectrum()
TE6 = 0.0012 + 0.001 * np.arange(6)  # 1.5 T vendor train (issue 15): TE1 1.2 ms, spacing 1 ms


def _complex_phantom(te, field_t, pdff, r2, sigma, n=24, seed=0, fmax_hz=150.0):
    """n x n x 1 image, smooth field map up to +-fmax_hz and smooth initial phase; complex
    Gaussian noise of SD sigma per channel. Returns magnitude, phase, field map (Hz)."""
    x, y = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    psi = fmax_hz * (0.6 * x + 0.4 * y**2 * np.sign(y) + 0.3 * x * y) / 1.3  # |psi| <= fmax
    phi0 = 0.5 + 0.8 * x
    c = SPEC.basis(te, field_t)
    z = (100.0 * (1 - pdff) + 100.0 * pdff * c) * np.exp(-r2 * te) \
        * np.exp(1j * (phi0[..., None] + 2 * np.pi * psi[..., None] * te))
    rng = np.random.default_rng(seed)
    z = z + sigma * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
    return np.abs(z)[:, :, None], np.angle(z)[:, :, None], psi[:, :, None], phi0[:, :, None]


def test_complex_noise_free_is_exact():
    mag, ph, psi, phi0 = _complex_phantom(TE6, 1.5, 0.3, 200.0, 0.0, n=6)
    res = r2mri.fit(mag, TE6, model="fatwater", field_strength_t=1.5, phase_rad=ph)
    assert res.options["fit"] == "complex" and res.status_counts() == {"ok": 36}
    np.testing.assert_allclose(res.r2_per_s, 200.0, rtol=1e-4)
    np.testing.assert_allclose(res.extra["pdff_percent"], 30.0, atol=1e-3)
    np.testing.assert_allclose(res.extra["field_map_hz"], psi, atol=1e-3)
    np.testing.assert_allclose(res.extra["phase0_rad"], phi0, atol=1e-5)
    assert r2mri.fit(mag, TE6, model="fatwater", field_strength_t=1.5).options["fit"] == "magnitude"


@pytest.mark.parametrize("field_t,pdff", [(1.5, 0.10), (1.5, 0.45), (3.0, 0.10), (3.0, 0.45)])
def test_complex_fit_field_map_and_no_swap(field_t, pdff):
    """SNR 50, smooth field up to +-150 Hz, no PDFF prior (min_residual): the field map is
    found in every voxel (no swap: a swap moves psi by the main fat frequency, 217 Hz at
    1.5 T) and R2*, PDFF meet the issue's targets."""
    sigma, r2 = 2.0, 100.0
    mag, ph, psi, _ = _complex_phantom(TE6, field_t, pdff, r2, sigma, seed=int(10 * field_t + 100 * pdff))
    res = r2mri.fit(mag, TE6, model="fatwater", field_strength_t=field_t, phase_rad=ph,
                    swap_rule="min_residual")
    err = res.extra["field_map_hz"] - psi
    assert np.max(np.abs(err)) < 25.0  # no swap; noise SD of psi here is 1-3 Hz
    assert abs(np.median(err)) < 1.0
    assert abs(np.median(res.r2_per_s) / r2 - 1) <= 0.03
    assert abs(np.median(res.extra["pdff_percent"]) - 100 * pdff) <= 1.5
    assert res.options["spatial_step"] and res.options["psi_period_hz"] == pytest.approx(1000.0)


def test_complex_spatial_step_repairs_isolated_swaps():
    """3 T, PDFF 45 %, SNR 20, R2* 400 s^-1, no PDFF prior: per voxel some fits land on the
    swapped minimum; the in-plane median step repairs most of them (same data as a plain
    list of curves, which has no image plane, keep theirs)."""
    mag, ph, psi, _ = _complex_phantom(TE6, 3.0, 0.45, 400.0, 5.0, n=32, seed=1)
    kw = dict(model="fatwater", field_strength_t=3.0, swap_rule="min_residual")
    img = r2mri.fit(mag, TE6, phase_rad=ph, **kw)
    flat = r2mri.fit(mag.reshape(-1, 6), TE6, phase_rad=ph.reshape(-1, 6), **kw)
    swapped_img = np.mean(np.abs(img.extra["field_map_hz"] - psi) > 100)
    swapped_flat = np.mean(np.abs(flat.extra["field_map_hz"] - psi.ravel()) > 100)
    assert not flat.options["spatial_step"] and img.options["n_refit_spatial"] > 0
    assert swapped_flat > 0.04 and swapped_img < 0.5 * swapped_flat


def test_complex_phase_from_image_and_errors():
    mag, ph, psi, _ = _complex_phantom(TE6, 1.5, 0.2, 100.0, 0.0, n=4)
    img = r2mri.MultiEchoImage(data=mag, echo_times_s=TE6, field_strength_t=1.5)
    img.phase_rad = ph  # the optional field of MultiEchoImage (read with getattr)
    res = r2mri.fit(img, model="fatwater")
    assert res.options["fit"] == "complex"
    np.testing.assert_allclose(res.extra["field_map_hz"], psi, atol=1e-3)
    with pytest.raises(InputError, match="phase_rad: shape"):
        r2mri.fit(mag, TE6, model="fatwater", field_strength_t=1.5, phase_rad=ph[..., :5])
    with pytest.raises(InputError, match="phase_rad: phase images are used by model 'fatwater' only"):
        r2mri.fit(mag, TE6, model="monoexp", phase_rad=ph)
    with pytest.raises(InputError, match="phase_rad: values up to 4096"):
        r2mri.fit(mag, TE6, model="fatwater", field_strength_t=1.5, phase_rad=np.full(mag.shape, 4096.0))


def test_complex_detects_the_conjugate_phase_convention():
    """Phase images of the opposite sign convention (conjugated) are detected on the
    brightest voxels and fitted as such: the same PDFF and R2*, the field map negated."""
    mag, ph, psi, phi0 = _complex_phantom(TE6, 1.5, 0.3, 150.0, 2.0, n=16, seed=4)
    kw = dict(model="fatwater", field_strength_t=1.5)
    given = r2mri.fit(mag, TE6, phase_rad=ph, **kw)
    flipped = r2mri.fit(mag, TE6, phase_rad=-ph, **kw)
    assert given.options["phase_convention"] == "as given"
    assert flipped.options["phase_convention"].startswith("conjugate")
    assert flipped.options["phase_convention_residual_ratio"] < 0.8
    np.testing.assert_allclose(flipped.extra["field_map_hz"], -given.extra["field_map_hz"], atol=1e-3)
    np.testing.assert_allclose(flipped.extra["pdff_percent"], given.extra["pdff_percent"], atol=1e-4)
    assert abs(np.median(flipped.extra["pdff_percent"]) - 30.0) < 1.5
    # no fat at all: both conventions fit alike, the given one is kept
    mag0, ph0, _, _ = _complex_phantom(TE6, 1.5, 0.0, 150.0, 2.0, n=16, seed=5)
    assert r2mri.fit(mag0, TE6, phase_rad=-ph0, **kw).options["phase_convention"] == "as given"


def test_complex_fat_bound_at_pdff_0():
    """The complex fit has the magnitude fit's fat bound (F >= -a W, docs/fatwater.md "Fat
    bound"): at R2* 800 s^-1, PDFF 0, SNR 50 (1.5 T, 12 echoes) the ROI mean PDFF is within
    1.5 points (+3 SE; +4.9 with F >= 0) and R2* within 3 % (+3 SE of a median; -3.8 % with F >= 0)."""
    from r2mri.fatwater import cramer_rao_std

    te = 0.0012 + 0.001 * np.arange(12)
    n, sigma, r2 = 2000, 2.0, 800.0
    c = SPEC.basis(te, 1.5)
    rng = np.random.default_rng(8)
    psi = rng.uniform(-50, 50, (n, 1))
    z = 100.0 * np.exp(-r2 * te) * np.exp(1j * (0.3 + 2 * np.pi * psi * te))
    z = z + sigma * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
    res = r2mri.fit(np.abs(z), te, model="fatwater", field_strength_t=1.5, phase_rad=np.angle(z))
    ok = res.status == r2mri.FitStatus.OK
    fat, water = res.extra["fat"], res.extra["water"]
    assert np.all(fat[ok] >= -res.options["fat_floor_fraction"] * water[ok] * (1 + 1e-6))
    # complex noise: the magnitude CRB is the complex one's upper bound (twice the data)
    crb = cramer_rao_std(c, te, 100.0, 1e-6, r2, sigma)
    pd = res.extra["pdff_percent"][ok]
    assert abs(np.mean(pd)) <= 1.5 + 3 * 100 * crb["pdff"] / np.sqrt(pd.size)
    assert abs(np.median(res.r2_per_s) / r2 - 1) <= 0.03 + 3 * 1.2533 * crb["r2star_per_s"] / r2 / np.sqrt(n)
