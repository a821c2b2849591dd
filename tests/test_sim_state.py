"""The simulated-moments state with the tile fits' noise shrunk out (r2mri/_sim_state.py, issue 16)."""

from __future__ import annotations

import numpy as np

import r2mri._headline as H
import r2mri._spread_estimate as E
from r2mri import MultiEchoImage
from r2mri._sim_state import shrunk_state

TE = np.array([6, 9, 12, 15, 18]) / 1e3


def test_noise_only_collapses_and_keeps_the_amplitude_at_t_ref():
    rng = np.random.default_rng(0)
    n = 2000
    se = np.full(n, 0.1)
    mu = 200.0 * np.exp(0.1 * rng.standard_normal(n))  # all of it fit noise
    s0 = 1000.0 * np.exp(-0.5 * rng.standard_normal(n))  # real shading: must survive
    m, s = shrunk_state(mu, s0, se, np.full(n, 64.0), [np.ones(n, bool)], TE)
    assert np.ptp(np.log(m)) < 0.02  # between-tile variance of log R2 ~ 0 after the noise: ~collapsed
    w = np.exp(-2 * mu[:, None] * TE)
    t_ref = (w @ TE) / w.sum(1)
    np.testing.assert_allclose(s * np.exp(-m * t_ref), s0 * np.exp(-mu * t_ref), rtol=1e-12)


def test_real_texture_keeps_its_variance():
    rng = np.random.default_rng(1)
    n = 20000
    true = 0.3 * rng.standard_normal(n)  # tile-to-tile texture, SD 0.3 in log R2
    se = np.full(n, 0.1)
    mu = 200.0 * np.exp(true + se * rng.standard_normal(n))
    m, _ = shrunk_state(mu, np.full(n, 1000.0), se, np.ones(n), [np.ones(n, bool)], TE)
    # constrained Bayes: the variance of the states is the texture's (0.09), not 0.09 + 0.01,
    # nor the posterior means' 0.09^2 / 0.10; SE of a variance of 20,000 draws ~1 %
    assert abs(np.var(np.log(m)) / 0.09 - 1) < 0.04


def test_spread_at_snr20_8_channels_not_over_estimated():
    """Tiles of 16 voxels (two rows of each 8 x 8 block), relative R2 spread 0.037 (gamma),
    R2 231 s^-1 (30 mg/g), SNR 20, 8 channels: the noisy tile states made rho read
    0.0448 against their own 0.0368 (+3.0 SE); with them shrunk 0.0378 (+0.4 SE)."""
    n, mu, s0, rho, coils = 256, 231.0, 1000.0, 0.037, 8
    rng = np.random.default_rng(0)
    g = rng.gamma(1 / rho, rho, size=(n, n, 1))
    img = MultiEchoImage(E._ncchi_draw(s0 * np.exp(-mu * g[..., None] * TE), s0 / 20, coils, rng), TE)
    mask = np.zeros((n, n, 1), bool)
    mask[np.arange(n) % 8 < 2] = True
    _p, c = H.mixture_corrected_mean_r2(img, mask, noise_sigma=s0 / 20, coils=coils, seed=0)
    # the tiles' own spread: relative variance about each tile's mean over k - 1 dof
    gg = g[:, :, 0].reshape(n // 8, 8, n // 8, 8)[:, :2].transpose(0, 2, 1, 3).reshape(-1, 16)
    own = float(np.sum((gg / gg.mean(1, keepdims=True) - 1) ** 2) / (gg.shape[0] * 15))
    assert list(c.rho) == [8]
    assert abs(c.rho[8] - own) < 2 * c.rho_se[8], (c.rho, own, c.rho_se)
