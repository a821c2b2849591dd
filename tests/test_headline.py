"""Headline in heterogeneous livers (issue 16): the within-tile spread correction ``tile-mixture``.

The full grid (texture SD 0-0.4 in log LIC, widths 1-8 voxels, LIC 1-30, SNR 20-100,
1 and 8 channels) is in ``python -m benchmarks.hetero``; these are a few corners.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from r2mri import MultiEchoImage
from r2mri._headline import mixture_corrected_mean_r2
from r2mri.stats import liver_statistics, pooled_mean_r2

TE = np.array([6, 9, 12, 15, 18]) / 1e3
_Z95 = 1.959963984540054


@functools.lru_cache(maxsize=None)
def _textured(lic, sd, scale, snr=50.0, coils=1, seed=3):
    """(phantom, voxel fit) of a 64 x 64 x 11 FerriScan phantom (6 mm, ~5,900 liver voxels)."""
    from r2mri.fitting import fit
    from r2mri.phantom import generate

    ph = generate(matrix=(64, 64), pixel_mm=6.0, lic_mg_per_g=lic, lic_log_sd=sd, lic_correlation_voxels=scale,
                  texture_seed=seed, snr=snr, coils=coils, seed=seed)
    sigma = ph.summary["noise_sigma"]
    return ph, fit(ph.image, model="ncchi", noise_sigma=sigma, coils=coils, mask=ph.truth.liver_mask, threads=1)


def _headline(ph, f, estimator):
    s = liver_statistics(f, ph.truth.liver_mask, image=ph.image, estimator=estimator, n_bootstrap=500)
    return s, ph.summary["lic_of_mean_r2_mg_per_g"]


def _noise_free_spread(shape_of_spread, rel_sd, seed=1):
    """A 32 x 32 x 2 image whose R2 varies from voxel to voxel about 150 /s (independent
    draws of the given shape and relative SD), S0 1000, sigma 0.1 (SNR 1e4)."""
    rng = np.random.default_rng(seed)
    shape = (32, 32, 2)
    z = rng.standard_normal(shape)
    if shape_of_spread == "lognormal":
        s2 = np.log1p(rel_sd**2)
        r2 = 150.0 * np.exp(np.sqrt(s2) * z - s2 / 2)
    else:
        r2 = 150.0 * (1.0 + rel_sd * z)
    sigma = 0.1
    amp = 1000.0 * np.exp(-r2[..., None] * TE)
    noisy = np.sqrt((amp + sigma * rng.standard_normal(amp.shape)) ** 2 + (sigma * rng.standard_normal(amp.shape)) ** 2)
    return MultiEchoImage(noisy, TE), np.ones(shape, bool), sigma, r2.mean()


@pytest.mark.parametrize("shape_of_spread", ["normal", "lognormal"])
def test_noise_free_spread_is_undone(shape_of_spread):
    """8 x 8 tiles, R2 with relative SD 0.2 (rho 0.04, about the largest of the issue-16
    grid) from voxel to voxel: the pooled fit reads the mixture ~6 % low. The correction
    assumes a gamma-like shape (skewness 2 CV, between the normal's 0 and the log-normal's
    3 CV); it recovers the mean R2 within 1 % for both, and the interval reaches the truth."""
    from r2mri._headline import widen_interval

    img, mask, sigma, truth = _noise_free_spread(shape_of_spread, 0.2)
    before = pooled_mean_r2(img, mask, noise_sigma=sigma, tile=8)
    after, corr = mixture_corrected_mean_r2(img, mask, noise_sigma=sigma, tile=8)
    assert before.mean_r2_per_s / truth - 1 < -0.04  # the defect: a mixture decays slower
    assert after.mean_r2_per_s == pytest.approx(truth, rel=0.01)
    assert corr.rho[8] == pytest.approx(0.2**2, rel=0.25)  # the statistic depends on the shape too
    m = after.mean_r2_per_s
    lo, hi = widen_interval(m - _Z95 * after.se_r2_per_s, m + _Z95 * after.se_r2_per_s, m, corr)
    assert lo <= truth <= hi


def test_small_tiles_are_corrected_for_their_own_voxels_spread():
    """2 x 2 tiles, R2 normal with relative SD 0.2 independent from voxel to voxel, SNR
    1e4. The dispersion statistic estimates the variance between voxels (k - 1 degrees of
    freedom per tile); the mixture a tile's fit sees is its own 4 voxels, whose variance
    about their own mean is 3/4 of it on average. Correcting with the full variance
    over-corrects by a third of the defect."""
    img, mask, sigma, truth = _noise_free_spread("normal", 0.2)
    before = pooled_mean_r2(img, mask, noise_sigma=sigma, tile=2)
    after, corr = mixture_corrected_mean_r2(img, mask, noise_sigma=sigma, tile=2)
    defect = before.mean_r2_per_s / truth - 1
    assert defect < -0.03
    assert abs(after.mean_r2_per_s / truth - 1) < 0.15 * abs(defect)
    assert corr.rho[2] == pytest.approx(0.2**2, rel=0.15)


def test_implausibly_large_spread_is_not_applied():
    """A relative SD of 0.3 inside 8 x 8 tiles (rho 0.09, more than 2 SE above the largest
    plausible 0.05): not corrected, a warning, and the interval reaches the correction at
    the estimate (noise-free, so that correction holds the truth)."""
    from r2mri._headline import widen_interval

    img, mask, sigma, truth = _noise_free_spread("normal", 0.3)
    after, corr = mixture_corrected_mean_r2(img, mask, noise_sigma=sigma, tile=8)
    assert corr.unidentified == [8] and corr.warnings
    assert after.mean_r2_per_s / truth - 1 < -0.1
    m = after.mean_r2_per_s
    lo, hi = widen_interval(m - _Z95 * after.se_r2_per_s, m + _Z95 * after.se_r2_per_s, m, corr)
    assert lo <= truth <= hi


def test_issue_phantom_sd03_scale4_snr50():
    """The independent phantom of issue 16 (SD 0.3 in log LIC over 4 voxels, SNR 50, one
    channel) at ~5 mg/g: headline within 2 % of the LIC of the mean liver R2 and the truth
    inside the 95 % interval (one seed; the seed-to-seed SD is ~0.3 %)."""
    ph, f = _textured(5.0, 0.3, 4.0)
    s, truth = _headline(ph, f, "auto")
    assert s.estimator == "tile-mixture"
    assert abs(s.headline_lic_mg_per_g / truth - 1) <= 0.02
    lo, hi = s.ci95_lic_mg_per_g
    assert lo <= truth <= hi
    mix = s.to_dict()["headline"]["mixture"]
    assert mix["se_spread_r2_per_s"] >= 0 and "4" in mix["rho_by_tile_size"]


def test_fine_texture_at_30_mg_per_g():
    """The worst corner at SNR 50: SD 0.4 in log LIC changing from voxel to voxel at 30 mg/g.
    The uncorrected tiles read > 5 % low (benchmarks/hetero.py: -13 % over 8 seeds); the
    correction is within 4 %, and the truth within the 95 % interval (widened by the
    correction's own error)."""
    ph, f = _textured(30.0, 0.4, 1.0)
    before, truth = _headline(ph, f, "tile-ncchi")
    after, _ = _headline(ph, f, "tile-mixture")
    assert before.headline_lic_mg_per_g / truth - 1 < -0.05
    assert abs(after.headline_lic_mg_per_g / truth - 1) <= 0.04
    lo, hi = after.ci95_lic_mg_per_g
    assert lo <= truth <= hi


@pytest.mark.parametrize("lic", [0.5, 15.0, 40.0])
def test_homogeneous_liver_unchanged(lic):
    """A uniform liver: the spread correction is within noise of zero, so the headline moves
    by less than a quarter of the 95 % half-width (and <= 0.5 %) from the uncorrected tiles
    less their first-order fit bias (r2mri/_tile_bias.py: -0.34 % in LIC at 40 mg/g, the
    same in every seed; benchmarks/snr20.py; the few edge tiles too noisy for it get the
    simulated term instead)."""
    from r2mri.calibration import lic_from_r2

    ph, f = _textured(lic, 0.0, 1.0)
    before, truth = _headline(ph, f, "tile-ncchi")
    after, _ = _headline(ph, f, "tile-mixture")
    lo, hi = after.ci95_lic_mg_per_g
    mx = after.to_dict()["headline"]["mixture"]
    fit_bias, simulated = mx["tile_fit_bias_r2_per_s"], mx["tile_fit_bias_simulated_r2_per_s"]
    assert 0 <= fit_bias - simulated <= 0.005 * before.headline_r2_per_s  # the Box term
    # edge tiles too noisy for it get a simulated bias (r2mri/_tile_bias_sim.py): at 40 mg/g about 1 % of
    # the voxels, 0.15 % of the mean R2 (24 livers: their error +0.14 +- 0.03 % -> -0.00 +- 0.03 % of R2)
    assert abs(simulated) <= 0.0025 * before.headline_r2_per_s
    shift = abs(after.headline_lic_mg_per_g - float(lic_from_r2(before.headline_r2_per_s - fit_bias)))
    assert shift <= 0.25 * (hi - lo) / 2 and shift <= 0.005 * truth
    assert lo <= truth <= hi


def test_unmeasurable_spread_is_not_guessed():
    """30 mg/g at SNR 8 on a small liver (~1,700 voxels, 8 x 8 tiles only): the spread
    inside the tiles cannot be measured (SE of rho 0.030 > 0.025 with kappa's prior from the
    S0 field, branch kappa; 0.197 with kappa fitted jointly). (At SNR 10 it sat at the bound:
    0.023-0.060 over statistics seeds, so whether it was measured depended on the seed;
    benchmarks/mc_seed.py, branch mcseed.) The tiles are then left
    uncorrected, a warning says so, and the interval's upper end reaches the correction
    of a plausible spread, so it still holds the truth (the uncorrected tiles read low).
    (At SNR 20 this liver's spread is measured since the simulation runs at the shrunk
    tile states, r2mri/_sim_state.py: SE 0.009-0.023 over seeds 0-5, intervals held the
    truth in 6 of 6. At SNR 10 it is measured since kappa has the S0 field's prior,
    r2mri/_s0_shading.py: SE 0.013-0.014 on seeds 0-1, intervals held the truth.)"""
    from r2mri.fitting import fit
    from r2mri.phantom import generate

    ph = generate(matrix=(64, 64), pixel_mm=6.0, n_slices=3, lic_mg_per_g=30.0, lic_log_sd=0.4,
                  lic_correlation_voxels=4.0, texture_seed=0, snr=8.0, coils=1, seed=0)
    f = fit(ph.image, model="ncchi", noise_sigma=ph.summary["noise_sigma"], coils=1, mask=ph.truth.liver_mask,
            threads=1)
    s, truth = _headline(ph, f, "auto")
    mix = s.to_dict()["headline"]["mixture"]
    assert mix["unidentified_tile_sizes"] == [8] and mix["upper_extension_r2_per_s"] > 0
    assert any("could not be measured" in w for w in s.warnings)
    lo, hi = s.ci95_lic_mg_per_g
    assert lo <= truth <= hi


@pytest.mark.parametrize("rho", [0.005, 0.05, 0.15])
def test_gamma_like_spread_moments(rho):
    """The spread the correction assumes (Wilson-Hilferty cube of a normal, normalised):
    on its 9 Gauss-Hermite nodes (exact for these polynomials) mean 1, relative variance
    rho within 0.01 %, skewness 2 CV (a gamma's) within 0.6 %."""
    from r2mri._mixture import _GH_W, _GH_X, _draw_spread

    g = _draw_spread(rho, _GH_X, "gamma")
    m = float(np.sum(g * _GH_W))
    v = float(np.sum((g - m) ** 2 * _GH_W))
    skew = float(np.sum((g - m) ** 3 * _GH_W)) / v**1.5
    assert m == pytest.approx(1.0, abs=1e-12)
    assert v == pytest.approx(rho, rel=1e-4)
    assert skew == pytest.approx(2.0 * np.sqrt(v), rel=6e-3)


def test_immaterial_misfit_is_recorded_without_a_warning(monkeypatch):
    """The shipped uniform `ferriscan-1.5t-lic7` (seed 0, ~79,000 liver voxels, 4 coils): the
    2-voxel tiles' spread comes out ~3 SE below zero (-7.7e-5 +- 2.5e-5), a misfit by the
    2-SE rule, yet the mirrored correction those tiles were spared is ~0.007 s^-1 of 102
    s^-1. It is recorded in the mixture block; a warning needs > 0.5 % of the mean R2 (the
    warning text is checked by setting that threshold to zero). Whether the spread lands
    beyond -2 SE is the simulator's draw (branch small20: -4.4e-5 +- 2.5e-5, -1.8 SE, with
    the chi-square draw; -5.0e-5 +- 2.4e-5 with the normals), so the rule is set at 1 SE here."""
    import r2mri
    from r2mri import _headline
    from r2mri.phantom import generate

    monkeypatch.setattr(_headline, "_RHO_NEGATIVE_SE", 1.0)

    ph = generate("ferriscan-1.5t-lic7", seed=0)
    res = r2mri.analyze(ph.image)  # the automatic ROI of the report
    assert not any("below zero" in w for w in res.warnings)
    mask = res.roi.mask
    sigma, coils = ph.summary["noise_sigma"], ph.summary["coils"]
    pooled, corr = mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils)
    d = corr.to_dict()
    assert d["misfit_tile_sizes"] == [2]
    shift = d["misfit_mirrored_correction_r2_per_s"]
    assert 0 < abs(shift) < 0.005 * pooled.mean_r2_per_s
    assert not any("below zero" in w for w in corr.warnings)
    monkeypatch.setattr(_headline, "_MISFIT_MATERIAL", 0.0)
    _, corr0 = mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils)
    assert any("below zero by more than 1 standard errors" in w for w in corr0.warnings)


def test_tiles_too_noisy_for_the_bias_term_are_simulated_and_warned():
    """40 mg/g, SNR 20, 8 channels (64 x 64 x 11 at 6 mm): nearly all tiles have a relative
    SE of R2 above 15 %, so their bias is simulated (r2mri/_tile_bias_sim.py; 16 livers:
    +14.2 +- 1.5 % in LIC without it, +0.0 +- 1.1 % with it); the share and the simulated
    part are in the mixture block, and as the bias taken off is > 1.5 % of the mean R2 a
    warning says what is left of such corrections is not in the interval. The same on a
    small (64 x 64 x 3) 30 mg/g liver at SNR 20 with 8 channels (bias taken off 2.6 % of R2
    on average over 96 such livers, SD 0.4 texture; benchmarks/hetero_scaling.py). At 7 mg/g, SNR 50 none is skipped and nothing is said."""
    from r2mri.phantom import generate

    out = {}
    for lic, snr, coils, slices in ((40, 20, 8, 11), (30, 20, 8, 3), (7, 50, 1, 11)):
        ph = generate(matrix=(64, 64), pixel_mm=6.0, n_slices=slices, lic_mg_per_g=lic, snr=snr, coils=coils, seed=1)
        p, c = mixture_corrected_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=ph.summary["noise_sigma"],
                                         coils=coils)
        d = c.to_dict()
        out[lic] = (d["tile_fit_bias_skipped_fraction"], d["tile_fit_bias_simulated_r2_per_s"] / p.mean_r2_per_s,
                    c.warnings)
    assert out[40][0] > 0.5 and out[40][1] > 0.03
    assert out[30][0] > 0.1 and out[30][1] > 0.005
    for lic in (40, 30):
        assert any(w.startswith("headline: the tile fits are noisy here") for w in out[lic][2])
    assert out[7][0] == 0.0 and out[7][1] == 0.0 and not any("tile fits are noisy" in w for w in out[7][2])


def test_spread_at_the_grids_own_level_is_corrected():
    """Branch s0combo: a relative SD of 0.22 inside 8 x 8 tiles about 150 /s (noise-free;
    rho read 0.056 +- 0.001) is inside what log-SD 0.4 of LIC gives at this iron level (the St
    Pierre curve's relative R2 variance 0.057 at the tiles' apparent ~11 mg/g; full-size phantoms at
    7 mg/g, SD 0.4 over 1 voxel, hold 0.051 inside their 8 x 8 tiles). Before, the bound was
    0.05 everywhere: such a spread was called implausible, the tiles were left uncorrected and
    the headline read ~8 % low (full size with fine S0 texture: -5 to -11 %). Now it is
    corrected, within 1 % as the other noise-free spreads."""
    from r2mri._rho_bound import lognormal_rho

    img, mask, sigma, truth = _noise_free_spread("normal", 0.22)
    after, corr = mixture_corrected_mean_r2(img, mask, noise_sigma=sigma, tile=8)
    assert corr.rho[8] > 0.05 + 2 * corr.rho_se[8]  # above the old bound
    assert corr.unidentified == [] and not corr.warnings
    assert after.mean_r2_per_s == pytest.approx(truth, rel=0.01)
    # the bound covers the phantom grid's own within-tile truth at 3-7 mg/g (0.050 / 0.051, benchmarks/README.md)
    assert min(lognormal_rho(3.0), lognormal_rho(7.0)) > 0.055
