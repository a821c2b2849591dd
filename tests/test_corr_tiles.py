"""Correlated noise carried into the tile statistics (r2mri/_corr_tiles.py, issue 16)."""

from types import SimpleNamespace

import numpy as np
import pytest

from r2mri._corr_tiles import material_rho, tile_noise_factors
from r2mri._noise_correlation import block_variance_factor
from r2mri.noise import estimate_noise
from r2mri.phantom import generate
from r2mri.stats import liver_statistics, pooled_mean_r2

GEO = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=2, coils=8)
RHO = {1: 0.79, 2: 0.39, 3: 0.12}  # the phantom's smooth1.03 noise (r2mri/phantom/_noise_shape.py)


def _stats(ph, corr):
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": sigma, "coils": GEO["coils"]})
    return liver_statistics(fit, mask, image=ph.image, seed=0, n_bootstrap=200, noise_correlation=corr)


def test_factors_match_block_variance():
    # full square tiles: f = the block variance factor; one tile alone: no pairs across tiles (F = 1)
    for side in (2, 4, 8):
        ii, jj = np.divmod(np.arange(side * side), side)
        f, big_f = tile_noise_factors(ii, jj, np.zeros_like(ii), np.zeros_like(ii), 1, (side, side, 1), RHO)
        assert f[0] == pytest.approx(block_variance_factor(RHO, side), rel=1e-12)
        assert big_f == 1.0
    # 2 x 2 tiles of a 4 x 4 block: within-tile pairs 4 x 4 x 3.2 = 51.2 of 16 x 9.61 (4 x 4 block) in all
    ii, jj = np.divmod(np.arange(16), 4)
    f, big_f = tile_noise_factors(ii, jj, np.zeros_like(ii), (ii // 2) * 2 + jj // 2, 4, (4, 4, 1), RHO)
    assert np.allclose(f, (1 + 0.79) ** 2)
    assert big_f == pytest.approx(block_variance_factor(RHO, 4) * 16 / (4 * 4 * 3.2041), rel=1e-9)


@pytest.fixture(scope="module")
def white():
    return generate(lic=7.0, snr=20.0, seed=1, **GEO)


def test_white_noise_bit_identical(white):
    corr = estimate_noise(white.image).spatial_correlation
    assert corr is not None and material_rho(corr) is None  # white: below the warning rule
    a, b = _stats(white, None), _stats(white, corr)
    assert a.headline_lic_mg_per_g == b.headline_lic_mg_per_g
    assert a.ci95_lic_mg_per_g == b.ci95_lic_mg_per_g
    assert a.blocks["r2_per_s"]["headline_se_measurement"] == b.blocks["r2_per_s"]["headline_se_measurement"]


def test_correlated_se_scales_by_effective_voxels():
    # linear regime (7 mg/g, SNR 50), fixed 4 x 4 tiles: the measurement SE grows by sqrt(F x f), f the
    # tiles' own factor (k^2 SE^2-weighted), F their mutual correlation
    ph = generate(lic=7.0, snr=50.0, seed=2, noise_smoothing_voxels=1.03, **GEO)
    sigma, mask = float(ph.summary["noise_sigma"]), ph.truth.liver_mask
    rho = material_rho(estimate_noise(ph.image).spatial_correlation)
    assert rho is not None and abs(rho[1] - 0.79) < 0.03
    p0 = pooled_mean_r2(ph.image, mask, noise_sigma=sigma, coils=8, tile=4)
    p1 = pooled_mean_r2(ph.image, mask, noise_sigma=sigma, coils=8, tile=4, noise_rho=rho)
    assert p1.mean_r2_per_s == p0.mean_r2_per_s  # the same tiles and fits: only the noise terms move
    f = p1.tile_voxels / p1.tile_noise_voxels
    assert np.allclose(p1.tile_se_r2_per_s, p0.tile_se_r2_per_s * np.sqrt(f))
    ii, jj, kk = np.unravel_index(p1.voxel_index, mask.shape)
    big_f = tile_noise_factors(ii, jj, kk, p1.voxel_tile, p1.n_tiles, mask.shape, rho)[1]
    w = (p0.tile_voxels * p0.tile_se_r2_per_s) ** 2
    expect = np.sqrt(big_f * np.sum(w * f) / np.sum(w))
    assert p1.se_r2_per_s / p0.se_r2_per_s == pytest.approx(expect, rel=0.1)
    assert 3.0 < expect < 3.7  # 4 x 4 block sqrt(9.6) = 3.1; a large region's 1 + 2 (0.79 + 0.39 + 0.12) = 3.6


def test_block_draw_matches_tile_factor():
    # the simulators' correlated draw (8 x 8 tile, high SNR): variance of the tile mean = sigma^2 f / k,
    # f the footprint factor of the fit-bias and SE terms (Monte Carlo SE of a variance from 3000 tiles: 2.6 %)
    from r2mri._corr_tiles import correlated_tile_means, correlation_filter

    rng = np.random.default_rng(0)
    y = correlated_tile_means(np.full((3000, 1), 200.0), np.full(3000, 64), np.full(3000, 8), 1.0, 1, rng,
                              correlation_filter(RHO))
    assert float(np.var(y)) == pytest.approx(block_variance_factor(RHO, 8) / 64, rel=0.1)
