"""Correlated noise carried into the fat-water (GRE R2*) tile statistics (r2mri/_gre.py with
r2mri/_corr_tiles.py, issue 16)."""

import numpy as np
import pytest

import r2mri
from r2mri._corr_tiles import material_rho, tile_noise_factors
from r2mri._gre import pooled_mean_r2star
from r2mri.noise import estimate_noise
from r2mri.phantom import generate
from r2mri.stats import liver_statistics

GEO = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=2, b0_peak_hz=0.0, lic=3.2, snr=50.0, coils=8)
SPEC = "gre-1.5t-fat15-lic3.2"


def _fitted(**kw):
    ph = generate(SPEC, seed=3, **GEO, **kw)
    fit = r2mri.fit(ph.image, model="fatwater", mask=ph.truth.liver_mask, threads=1)
    return ph, fit, float(ph.summary["noise_sigma"])


def test_white_noise_bit_identical():
    ph, fit, sigma = _fitted()
    corr = estimate_noise(ph.image).spatial_correlation
    assert corr is not None and material_rho(corr) is None  # white: below the warning rule
    a, b = (liver_statistics(fit, ph.truth.liver_mask, ph.spec.calibration_name, image=ph.image, noise_sigma=sigma,
                             coils=8, n_bootstrap=200, noise_correlation=c) for c in (None, corr))
    assert a.headline_lic_mg_per_g == b.headline_lic_mg_per_g
    assert a.ci95_lic_mg_per_g == b.ci95_lic_mg_per_g
    assert a.blocks["r2_per_s"]["headline_se_measurement"] == b.blocks["r2_per_s"]["headline_se_measurement"]
    assert a.blocks["pdff_percent"] == b.blocks["pdff_percent"]


def test_correlated_tile_se_matches_spread_between_tiles():
    # uniform liver: the tiles' R2* differ by their noise only, so their SD is the tile SE. With the
    # smooth1.03 noise (lag-1 r 0.79) a 4 x 4 tile mean's variance is ~9.6 x sigma^2 / 16, and the
    # independent-voxel SE is ~3x too small; the corrected one matches (SE of an SD from n tiles ~ 1/sqrt(2n))
    ph, fit, sigma = _fitted(noise_smoothing_voxels=1.03)
    rho = material_rho(estimate_noise(ph.image).spatial_correlation)
    assert rho is not None and abs(rho[1] - 0.79) < 0.03
    valid = ph.truth.liver_mask & np.isfinite(fit.r2_per_s)
    p0 = pooled_mean_r2star(ph.image, fit, valid, noise_sigma=sigma, coils=8)
    p1 = pooled_mean_r2star(ph.image, fit, valid, noise_sigma=sigma, coils=8, noise_rho=rho)
    assert p1.mean_r2_per_s == p0.mean_r2_per_s  # the same tiles and fits: only the noise terms move
    assert np.array_equal(p1.tile_r2_per_s, p0.tile_r2_per_s)
    full = p1.tile_voxels == 16
    sd = float(np.std(p1.tile_r2_per_s[full], ddof=1))
    tol = 3.0 / np.sqrt(2 * full.sum())
    assert float(np.median(p1.tile_se_r2_per_s[full])) == pytest.approx(sd, rel=tol)
    assert float(np.median(p0.tile_se_r2_per_s[full])) < 0.5 * sd
    f = p1.tile_voxels / p1.tile_noise_voxels
    assert np.allclose(p1.tile_se_r2_per_s, p0.tile_se_r2_per_s * np.sqrt(f))
    t = p1.fw_tiles
    ii, jj, kk = t["voxels"]
    keep = np.zeros(int(t["tile_of"].max()) + 1, bool)
    keep[t["kept"]] = True
    big_f = tile_noise_factors(ii, jj, kk, np.where(keep[t["tile_of"]], t["tile_of"], -1), keep.size,
                               valid.shape, rho)[1]
    w = (p0.tile_voxels * p0.tile_se_r2_per_s) ** 2
    assert p1.se_r2_per_s / p0.se_r2_per_s == pytest.approx(np.sqrt(big_f * np.sum(w * f) / np.sum(w)), rel=1e-9)


def test_analyze_gre_warning_says_corrected():
    # the fat-water route now carries the measured correlation: the report's line is the "corrected" one
    # (a quality note on the page), not the red "statistics assume independent voxels"
    ph = generate(SPEC, seed=4, noise_smoothing_voxels=1.03, **dict(GEO, n_slices=1))
    res = r2mri.analyze(ph.image, mask=ph.truth.liver_mask, threads=1)
    lines = [w for w in res.warnings if w.startswith("noise: spatially correlated")]
    assert len(lines) == 1
    assert "count each tile's noise with this correlation" in lines[0]
    assert "assume independent voxels" not in lines[0]
