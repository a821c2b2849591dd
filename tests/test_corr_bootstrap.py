"""The between-tile bootstrap on spatially correlated noise (r2mri/_corr_bootstrap.py, issue 16)."""

from types import SimpleNamespace

import numpy as np
import pytest

from r2mri._corr_bootstrap import correlated_bootstrap
from r2mri._corr_tiles import material_rho
from r2mri.noise import estimate_noise
from r2mri.phantom import generate
from r2mri.stats import liver_statistics, pooled_mean_r2

GEO = dict(matrix=(128, 128), pixel_mm=3.0, n_slices=2, coils=8, lic=7.0, snr=50.0)


def _neighbour_sums(p, shape, edge=4):
    """Sum over pairs of edge- or corner-adjacent tiles (same slice) of k_t k_u d_t d_u, and the sum of
    k_t^2 d_t^2: their ratio + 1 is the variance of the weighted mean over what independent tiles give."""
    ii, jj, kk = np.unravel_index(p.voxel_index, shape)
    t, nt = p.voxel_tile, p.n_tiles
    n = np.bincount(t, minlength=nt)
    pos = [np.round(np.bincount(t, c, nt) / n).astype(int) for c in (ii // edge, jj // edge, kk)]
    k, d = p.tile_voxels.astype(float), p.tile_r2_per_s - p.mean_r2_per_s
    where = {c: i for i, c in enumerate(zip(*pos))}
    num = sum(k[i] * k[j] * d[i] * d[j] for (a, b, c), i in where.items() for dx in (-1, 0, 1) for dy in (-1, 0, 1)
              if (dx or dy) and (j := where.get((a + dx, b + dy, c))) is not None)
    return num, float(np.sum(k * k * d * d))


@pytest.fixture(scope="module")
def livers():
    out = []
    for seed in range(1, 9):
        ph = generate(seed=seed, noise_smoothing_voxels=1.03, **GEO)
        rho = material_rho(estimate_noise(ph.image).spatial_correlation)
        out.append((ph, rho))
    return out


def test_tiles_correlated_as_factor_F(livers):
    # uniform liver, 4 x 4 tiles, lag-1 r 0.79: the tiles' R2 deviations from the mean, correlated between
    # neighbours, give the variance of the weighted mean F x the independent-tile value; F from the voxel
    # correlation measured in the air (r2mri/_corr_tiles.py) ~1.8. Pooled over 8 livers (per-liver values
    # scatter with SD ~0.3: SE of the pooled ratio ~0.1)
    num = den = 0.0
    fs = []
    for ph, rho in livers:
        assert rho is not None
        p = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=float(ph.summary["noise_sigma"]), coils=8,
                           tile=4, noise_rho=rho)
        a, b = _neighbour_sums(p, ph.truth.liver_mask.shape)
        num, den = num + a, den + b
        fs.append(p.tile_noise_between)
    assert np.mean(fs) == pytest.approx(1.8, abs=0.1)
    assert 1.0 + num / den == pytest.approx(np.mean(fs), abs=0.3)


def test_bootstrap_stretched_by_sqrt_F_on_uniform_liver(livers):
    # a uniform liver's bootstrap is all noise: the stretch is sqrt(F) (v_noise capped at v_boot) or
    # slightly less; the replicates are the same draws (same seed), stretched about the headline
    ph, rho = livers[0]
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": sigma, "coils": 8})
    corr = estimate_noise(ph.image).spatial_correlation
    st = liver_statistics(fit, mask, image=ph.image, seed=0, n_bootstrap=400, noise_correlation=corr)
    s = st.blocks["headline"]["bootstrap_noise_stretch"]
    big_f = 1.8
    assert 1.0 < s <= np.sqrt(big_f) + 0.05
    assert s > 1.15  # most of a uniform liver's bootstrap variance is noise
    se_b = st.blocks["r2_per_s"]["headline_se_bootstrap"]
    from unittest import mock

    with mock.patch("r2mri._corr_bootstrap.correlated_bootstrap", lambda boot, *a, **k: (boot, None)):
        st0 = liver_statistics(fit, mask, image=ph.image, seed=0, n_bootstrap=400, noise_correlation=corr)
    assert st0.blocks["headline"]["bootstrap_noise_stretch"] is None
    assert se_b / st0.blocks["r2_per_s"]["headline_se_bootstrap"] == pytest.approx(s, rel=1e-9)
    assert st.headline_r2_per_s == st0.headline_r2_per_s


def test_white_noise_untouched():
    # F = 1 (white noise, or no air): the replicates come back as they are
    b = np.random.default_rng(0).normal(100.0, 1.0, 500)
    out, s = correlated_bootstrap(b, 100.0, 1.0, 1.0)
    assert out is b and s is None
    ph = generate(seed=1, **dict(GEO, matrix=(64, 64), pixel_mm=6.0))
    mask = ph.truth.liver_mask
    fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": float(ph.summary["noise_sigma"]), "coils": 8})
    corr = estimate_noise(ph.image).spatial_correlation
    assert material_rho(corr) is None
    a, c = (liver_statistics(fit, mask, image=ph.image, seed=0, n_bootstrap=200, noise_correlation=x)
            for x in (None, corr))
    assert a.blocks["headline"]["bootstrap_noise_stretch"] is None
    assert a.ci95_lic_mg_per_g == c.ci95_lic_mg_per_g
    assert a.blocks["r2_per_s"]["headline_se_bootstrap"] == c.blocks["r2_per_s"]["headline_se_bootstrap"]


def test_stretch_keeps_texture_share():
    # half the bootstrap variance is noise: F = 2 adds (F - 1) x that half, s^2 = 1.5
    b = 50.0 + np.random.default_rng(1).standard_normal(2000)
    v = float(np.var(b, ddof=1))
    out, s = correlated_bootstrap(b, 50.0, np.sqrt(2.0 * v / 2.0), 2.0)
    assert s == pytest.approx(np.sqrt(1.5), rel=1e-12)
    assert float(np.var(out, ddof=1)) == pytest.approx(1.5 * v, rel=1e-12)
