"""Spatially correlated noise: the phantom option and r2mri's estimate from the air (issue 16)."""

import numpy as np
import pytest

from r2mri._noise_correlation import block_variance_factor, correlation_warning, noise_correlation
from r2mri.noise import estimate_noise
from r2mri.phantom import generate
from r2mri.phantom._noise_shape import lag_correlation

GEO = dict(lic=7.0, snr=20.0, matrix=(64, 64), pixel_mm=6.0, n_slices=3)


@pytest.fixture(scope="module")
def phantoms():
    return {name: generate(coils=coils, seed=3, **GEO, **kw) for name, coils, kw in (
        ("white", 8, {}), ("smooth", 8, {"noise_smoothing_voxels": 1.03}),
        ("zip2", 1, {"noise_interpolation": 2}))}


def test_shaped_noise_keeps_sigma_per_voxel(phantoms):
    # air: E[M^2] = 2 n sigma^2 whatever the correlation; the SE of the mean of M^2 grows
    # with the correlation: bound it with the 2 x 2 block factor of rho^2 (<= 3.2) over
    # independent voxels, 5 SE
    for name in ("smooth", "zip2"):
        ph = phantoms[name]
        sigma, n = ph.summary["noise_sigma"], ph.summary["coils"]
        m2 = ph.image.data[ph.truth.labels == 0].astype(float) ** 2 / (2 * n * sigma**2)
        se = np.sqrt(1.0 / n / m2.size * 16)  # var(M^2 / 2n sigma^2) = 1 / n; x16: generous cluster factor
        assert abs(m2.mean() - 1.0) < 5 * se, name


def test_shaper_matches_its_exact_correlation():
    from types import SimpleNamespace

    from r2mri.phantom._noise_shape import noise_shaper

    b = np.random.default_rng(0).standard_normal((64, 64, 2, 4)).astype(np.float32)
    noise_shaper(SimpleNamespace(noise_interpolation=2, noise_smoothing_voxels=0.0))(b)
    r = np.mean(b[1:] * b[:-1]) / np.mean(b * b)
    exact = lag_correlation((64, 64), interpolation=2)[1][0]
    assert abs(np.std(b) - 1) < 0.02  # 32,768 values, SE of the SD ~ 0.004 x block factor
    assert abs(r - exact) < 0.03  # SE of a lag correlation over ~8,000 independent values ~ 0.011


@pytest.mark.parametrize("name", ["smooth", "zip2"])
def test_lag1_correlation_recovered_from_magnitude(phantoms, name):
    ph = phantoms[name]
    air = ph.truth.labels == 0
    est = noise_correlation(ph.image.data, air)
    kw = {"smooth": {"smoothing_voxels": 1.03}, "zip2": {"interpolation": 2}}[name]
    truth = lag_correlation((64, 64), **kw)[1][0]
    assert abs(est["rho_by_lag"][1] - truth) < 3 * est["rho_lag1_se"] + 0.005
    assert correlation_warning(est) is not None


def test_white_noise_reads_no_correlation(phantoms):
    ph = phantoms["white"]
    est = noise_correlation(ph.image.data, ph.truth.labels == 0)
    assert abs(est["magnitude_squared_correlation"][1]) < 3 * est["magnitude_squared_lag1_se"]
    assert correlation_warning(est) is None


def test_estimate_noise_reports_it(phantoms):
    est = estimate_noise(phantoms["smooth"].image)
    assert est.method == "background"
    c = est.spatial_correlation
    assert c is not None and abs(c["rho_by_lag"][1] - 0.79) < 3 * c["rho_lag1_se"] + 0.01
    assert "spatially correlated" in correlation_warning(c)
    assert estimate_noise(phantoms["white"].image).spatial_correlation["rho_by_lag"][1] < 0.2


def test_block_variance_factor():
    assert block_variance_factor({}, 4) == 1.0
    # 1-D variance of a mean of 2: (1 + rho) / 2 over 1 / 2; squared for the 2 x 2 block
    assert block_variance_factor({1: 0.5}, 2) == pytest.approx(2.25)
    # 3 x 3, rho(1) only: g = 1 + 2 (2/3) rho
    assert block_variance_factor({1: 0.3}, 3) == pytest.approx((1 + 0.4) ** 2)


def test_analyze_reports_and_warns():
    import json

    import r2mri
    from r2mri.report._json import dumps, report_dict

    ph = generate(matrix=(48, 48), pixel_mm=8.0, n_slices=2, seed=0, noise_smoothing_voxels=1.03)
    rep = json.loads(dumps(report_dict(r2mri.analyze(ph.image))))
    c = rep["qc"]["noise_spatial_correlation"]
    assert abs(c["rho_by_lag"]["1"] - 0.79) < 3 * c["rho_lag1_se"] + 0.005
    assert any("spatially correlated" in str(w) for w in rep["warnings"])
