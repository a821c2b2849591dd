"""Within-tile spread correction of the GRE (fat-water) headline and its tile heterogeneity bound (issue 16).

Small synthetic blocks (no anatomy): 1.5 T, 6 echoes TE 1.2 + 1.0 k ms, W + F = 100 with
PDFF 15 %, magnitude with Rician noise (one channel). Tolerances from the estimator's own
reported error (measurement SE and the correction's SE in quadrature), not "it ran".
"""

from __future__ import annotations

import numpy as np
import pytest

import r2mri
from r2mri import _gre
from r2mri._gre_mixture import fw_mixture_signal, invert_fw_mixture
from r2mri.fatwater import load_fat_spectrum, magnitude_signal
from r2mri.stats import liver_statistics

TE = 0.0012 + 0.001 * np.arange(6)
BASIS = load_fat_spectrum().basis(TE, 1.5)
SIGMA = 2.0  # SNR 50 at W + F = 100
SHAPE = (32, 32, 2)


def _block(r2map, seed):
    rng = np.random.default_rng(seed)
    amp = np.hypot(85.0 + 15.0 * BASIS.real, 15.0 * BASIS.imag)  # |W + F c(t)|
    m = amp[None, :] * np.exp(-r2map.reshape(-1, 1) * TE[None, :])
    m = m.reshape(r2map.shape + (TE.size,))
    data = np.hypot(m + SIGMA * rng.standard_normal(m.shape), SIGMA * rng.standard_normal(m.shape))
    img = r2mri.MultiEchoImage(data, TE, field_strength_t=1.5, sequence="GRE")
    return img, r2mri.fit(img, model="fatwater", noise_sigma=SIGMA, coils=1, threads=1)


def _lognormal_r2(mean_r2, sd_log, seed):
    z = np.random.default_rng(100 + seed).standard_normal(SHAPE)  # voxel-to-voxel texture (width 1)
    w = np.exp(sd_log * z)
    return mean_r2 * w / w.mean()


@pytest.fixture(scope="module")
def textured():
    r2 = _lognormal_r2(275.0, 0.3, 0)  # ~7 mg/g at 1.5 T (Hernando 2022), relative variance ~0.09
    img, fit = _block(r2, 0)
    return r2, img, fit


def _headline(img, fit, estimator="auto"):
    st = liver_statistics(fit, np.ones(SHAPE, bool), "hernando-2022-r2star-1.5t", image=img, noise_sigma=SIGMA,
                          coils=1, estimator=estimator, n_bootstrap=200)
    return st


def test_inversion_recovers_the_mean_rate_of_a_noise_free_mixture():
    cr, ci = BASIS.real, BASIS.imag
    for r2, rho in ((45.0, 0.17), (275.0, 0.17), (600.0, 0.05)):
        true = np.array([[85.0, 15.0, r2]])
        y = fw_mixture_signal(true, np.array([rho]), TE, cr, ci, SIGMA, 1)
        app = _gre._fit_tiles(y, np.array([16.0]), true, TE, cr, ci, SIGMA, 1)[0]
        back = invert_fw_mixture(app, np.array([16.0]), np.array([rho]), TE, cr, ci, SIGMA, 1)
        assert app[0, 2] < r2  # the tile fit reads a mixture low
        assert abs(back[0, 2] / r2 - 1) < 2e-3, (r2, rho, app, back)


def test_textured_gre_liver_headline_corrected_and_covered(textured):
    r2, img, fit = textured
    truth = float(r2.mean())
    before = _headline(img, fit, "tile-ncchi")
    after = _headline(img, fit)
    assert before.estimator == "tile-fw-ncchi" and after.estimator == "tile-fw-mixture"
    lo, hi = after.blocks["r2_per_s"]["headline_ci95"]
    half = (hi - lo) / 2
    # before: the mixture reads low by many of its own SEs (about -7 % here)
    assert before.headline_r2_per_s < truth * 0.96
    # after: within the widened interval, and within 2 % (the correction's error is ~1 %)
    assert lo <= truth <= hi, (lo, truth, hi)
    assert abs(after.headline_r2_per_s / truth - 1) < 0.02
    assert half < 0.05 * truth
    mix = after.blocks["headline"]["mixture"]
    assert 0.04 < mix["rho_by_tile_size"]["4"] < 0.14  # truth: relative variance ~0.09 between voxels


def test_uniform_gre_liver_not_moved():
    img, fit = _block(np.full(SHAPE, 275.0), 3)
    before = _headline(img, fit, "tile-ncchi")
    after = _headline(img, fit)
    se = after.blocks["r2_per_s"]["headline_se_measurement"]
    assert abs(after.headline_r2_per_s - before.headline_r2_per_s) < 0.5 * se + 0.002 * 275.0
    assert abs(after.headline_r2_per_s / 275.0 - 1) < 0.005
    assert not any(w.startswith("headline: the spread") for w in after.warnings)


def test_spread_not_measurable_beyond_the_echo_train_widens_upward():
    # R2* 1150 s^-1 (~30 mg/g at 1.5 T): two echoes above 8 % of S0, the spread is not identified
    img, fit = _block(np.full((16, 16, 1), 1150.0), 5)
    st = liver_statistics(fit, np.ones((16, 16, 1), bool), "hernando-2022-r2star-1.5t", image=img,
                          noise_sigma=SIGMA, coils=1, n_bootstrap=200)
    mix = st.blocks["headline"]["mixture"]
    assert mix["unidentified_tile_sizes"] == [4] and mix["upper_extension_r2_per_s"] > 0.05 * 1150
    assert any(w.startswith("headline: the spread of R2* inside the 4x4 tiles cannot be measured")
               for w in st.warnings)
    lo, hi = st.blocks["r2_per_s"]["headline_ci95"]
    assert hi - st.headline_r2_per_s > mix["upper_extension_r2_per_s"]


def test_gre_tile_bound_measures_a_smooth_texture(textured):
    from scipy import ndimage

    from r2mri._gre_heterogeneity import gre_tile_candidates
    from r2mri._heterogeneity import _tile_lower_bound

    z = ndimage.gaussian_filter(np.random.default_rng(7).standard_normal(SHAPE), (3, 3, 0))
    r2 = 275.0 * np.exp(0.4 * z / z.std())
    img, fit = _block(r2, 7)
    details: dict = {}
    warn = _tile_lower_bound(gre_tile_candidates(img, fit, np.ones(SHAPE, bool), SIGMA, 1), 0.2, details)
    cv = float(r2.std() / r2.mean())
    assert details["tiles_used"] == "2x2"
    lb = details["r2_cv_lower_bound_tiles"]
    assert 0.75 * cv < lb <= 1.02 * cv, (lb, cv)  # 2 x 2 tiles average out little of a 3-voxel texture
    assert warn is not None and warn.startswith("heterogeneity: WARNING")
    # a uniform liver: the bound's interval reaches 0 and nothing warns
    img0, fit0 = _block(np.full(SHAPE, 275.0), 8)
    d0: dict = {}
    assert _tile_lower_bound(gre_tile_candidates(img0, fit0, np.ones(SHAPE, bool), SIGMA, 1), 0.2, d0) is None
    assert d0["r2_cv_lower_bound_tiles_ci95"][0] < 0.02


def test_signal_at_the_noise_floor_after_one_echo_is_warned_and_widened():
    # 30 mg/g at 1.5 T (R2* ~1160 s^-1), SNR 20 per channel, 8 channels: the second echo is at the
    # noise floor; the fits return a finite, far too low R2* with status OK (benchmarks/gre_hetero.py)
    rng = np.random.default_rng(11)
    sigma, coils, shape = 5.0, 8, (16, 16, 1)
    amp = np.hypot(85.0 + 15.0 * BASIS.real, 15.0 * BASIS.imag) * np.exp(-1160.0 * TE)
    a = np.broadcast_to(amp, shape + (TE.size,))
    data = np.sqrt((a + sigma * rng.standard_normal(a.shape)) ** 2 + sigma**2 * rng.chisquare(2 * coils - 1, a.shape))
    img = r2mri.MultiEchoImage(data, TE, field_strength_t=1.5, sequence="GRE")
    fit = r2mri.fit(img, model="fatwater", noise_sigma=sigma, coils=coils, threads=1)
    st = liver_statistics(fit, np.ones(shape, bool), "hernando-2022-r2star-1.5t", image=img, noise_sigma=sigma,
                          coils=coils, n_bootstrap=200)
    assert st.blocks["qc"]["fraction_tiles_at_noise_floor"] > 0.9
    assert any(w.startswith("qc: WARNING - in") and "noise floor from the second echo" in w for w in st.warnings)
    lo, hi = st.blocks["r2_per_s"]["headline_ci95"]
    assert hi > 1160.0  # the interval reaches the truth although the estimate does not
    # a measurable liver (7 mg/g, same noise) is not flagged
    img7, fit7 = _block(np.full((16, 16, 1), 275.0), 12)
    st7 = liver_statistics(fit7, np.ones((16, 16, 1), bool), "hernando-2022-r2star-1.5t", image=img7,
                           noise_sigma=SIGMA, coils=1, n_bootstrap=200)
    assert st7.blocks["qc"]["fraction_tiles_at_noise_floor"] == 0.0


def test_high_tail_beyond_the_train_is_left_out_of_the_tile_bound_only_as_a_tail():
    from r2mri._gre_heterogeneity import _without_high_tail

    rng = np.random.default_rng(3)
    r2 = 275.0 * np.exp(0.4 * rng.standard_normal(400))
    se = np.full(400, 5.0)
    hi = np.argsort(r2)[-20:]  # the top 5 %: beyond the train, SE 20 x the median
    se[hi] = 100.0
    k = np.full(400, 4.0)
    r_cut, se_cut, k_cut = _without_high_tail(r2, se, k)
    assert r_cut.size == 380 and np.all(se_cut == 5.0)
    assert r_cut.std() / r_cut.mean() < r2.std() / r2.mean()  # still a lower bound of the CV
    se_low = se.copy()
    se_low[hi] = 5.0
    se_low[np.argsort(r2)[:20]] = 100.0  # noisy tiles at the *low* end (dark coil regions): not a tail
    assert _without_high_tail(r2, se_low, k) is None
