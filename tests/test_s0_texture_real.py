"""The cross-echo S0-texture estimator of benchmarks/s0_texture_real.py on a synthetic liver
with a known log-normal S0 texture, R2* texture and spatially correlated noise (as in the
1.5 T challenge case, whose background noise correlates 0.79 at lag 1)."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

st = pytest.importorskip("benchmarks.s0_texture_real")

TE_S = np.array([1.74, 4.82, 7.90, 10.97]) / 1e3  # the 1.5 T case's echoes


def _field(rng, shape, c):
    f = gaussian_filter(rng.standard_normal(shape), (c, c, 0), mode="reflect")
    return (f - f.mean()) / f.std()


def _liver(s0_log_sd):
    rng = np.random.default_rng(7)
    shape = (96, 96, 2)
    yy, xx = np.mgrid[:96, :96]
    mask = np.repeat((((yy - 48) / 44.0) ** 2 + ((xx - 48) / 40.0) ** 2 < 1)[..., None], 2, axis=2)
    shading = (0.4 * (xx - 48) / 48.0 - 0.3 * ((yy - 48) / 48.0) ** 2)[..., None]  # smooth: the surface removes it
    log_s0 = np.log(300.0) + shading + s0_log_sd * _field(rng, shape, 1.0)  # kernel SD 1 voxel
    r2 = 30.0 + 3.0 * _field(rng, shape, 2.0)  # R2* texture, SD 3 s^-1
    sig = np.exp(log_s0[..., None] - r2[..., None] * TE_S)
    noise = np.stack([gaussian_filter(rng.standard_normal(shape), (0.8, 0.8, 0)) for _ in TE_S], axis=3)
    noise *= 10.0 / noise.std()  # sigma 10 per voxel (SNR 30), correlated in-plane, independent between echoes
    mag = np.abs(sig + noise)
    resid_e = np.stack([st.surface_residual(np.log(mag[..., e]), mask) for e in range(TE_S.size)], axis=3)
    truth = st.surface_residual(log_s0, mask)
    return mask, resid_e, truth


@pytest.fixture(scope="module")
def liver():
    return _liver(0.05)


@pytest.mark.parametrize("tile", [2, 4, 8])
def test_cross_echo_recovers_within_tile_s0_variance(liver, tile):
    mask, resid_e, truth = liver
    est = st.cross_echo_texture(resid_e, mask, TE_S, tiles=(tile,), lags=(1,), n_boot=60)["tiles"][tile]
    want = st.within_tile_variance(truth, mask, tile)[0]  # this realisation's texture
    noisy = st.within_tile_variance(resid_e[..., 0], mask, tile)[0]
    assert noisy > 1.5 * want  # the first echo alone would read the noise as texture
    # tolerance: 4 bootstrap SEs (tiles independent) plus the R2* texture's leak, which the
    # decomposition removes only to first order in t R2* (~1e-5 here)
    assert abs(est["s0_var"] - want) < 4 * est["s0_var_se"] + 1e-5, (est["s0_var"], want, est["s0_var_se"])
    assert est["s0_var_se"] < 0.25 * want


def test_no_texture_reads_none():
    """Without S0 texture the correlated noise is not read as texture (the first echo's own
    within-tile variance is all noise)."""
    mask, resid_e, _ = _liver(0.0)
    est = st.cross_echo_texture(resid_e, mask, TE_S, tiles=(2, 8), lags=(1,), n_boot=60)["tiles"]
    for t in (2, 8):
        assert abs(est[t]["s0_var"]) < 4 * est[t]["s0_var_se"] + 1e-5, (t, est[t])
        assert est[t]["raw_var_echo1"] > 10 * abs(est[t]["s0_var"])


def test_correlation_scale_of_the_texture(liver):
    mask, resid_e, _ = liver
    est = st.cross_echo_texture(resid_e, mask, TE_S, tiles=(2,), lags=(1, 2), n_boot=2)
    # Gaussian kernel SD 1 voxel: rho(1) = exp(-1/4) = 0.78, rho(2) = exp(-1) = 0.37
    assert est["rho"][1] == pytest.approx(np.exp(-0.25), abs=0.08)
    assert est["scale_c"][1] == pytest.approx(1.0, abs=0.25)


def test_phantom_unit_within_matches_theory():
    # white field (scale -> 0): within-tile variance 1; kernel SD 1 voxel, 2 x 2 tiles: 1 - mean
    # pair correlation over the tile = 1 - (2 exp(-1/4) + exp(-1/2)) / 3 (pairs in a 2 x 2 tile)
    u = st.phantom_unit_within(2, 1.0)
    assert u == pytest.approx(1 - (2 * np.exp(-0.25) + np.exp(-0.5)) / 3, rel=0.05)
