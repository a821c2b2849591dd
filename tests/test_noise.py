"""Noise physics: the non-central chi mean and the sigma / coil-count estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammaln, hyp1f1

from r2mri import InputError
import r2mri.noise as noise_mod
from r2mri.noise import NoiseEstimate, estimate_noise, ncchi_mean

TE = np.array([6.0, 9.0, 12.0, 15.0, 18.0]) * 1e-3


def _reference_mean(a, sigma, n):
    x = a * a / (2 * sigma * sigma)
    c = math.sqrt(2) * math.exp(gammaln(n + 0.5) - gammaln(n))
    return sigma * c * hyp1f1(-0.5, n, -x)


def _reference_deriv(a, sigma, n):
    # d/dA of the mean: A&S 13.4.8, d/dz 1F1(a; b; z) = a/b 1F1(a+1; b+1; z)
    x = a * a / (2 * sigma * sigma)
    c = math.sqrt(2) * math.exp(gammaln(n + 0.5) - gammaln(n))
    return c / (2 * n) * hyp1f1(0.5, n + 1, -x) * a / sigma


AMPLITUDES = np.concatenate([np.linspace(0.0, 20.0, 401), np.geomspace(20.0, 5000.0, 200)])


@pytest.mark.parametrize("coils", [1, 2, 3, 4, 8, 16, 32])
def test_ncchi_mean_matches_scipy_hyp1f1(coils):
    # Series / asymptotic expansion summed to 1e-16, so rounding dominates: 1e-12.
    # scipy's hyp1f1 agrees with mpmath to < 1e-12 here.
    sigma = 1.7
    a = AMPLITUDES * sigma
    tol = 1e-12
    ref = np.array([_reference_mean(v, sigma, coils) for v in a])
    np.testing.assert_allclose(ncchi_mean(a, sigma, coils), ref, rtol=tol)
    refd = np.array([_reference_deriv(v, sigma, coils) for v in a])
    np.testing.assert_allclose(ncchi_mean(a, sigma, coils, derivative=True), refd, rtol=tol,
                               atol=1e-300)


@pytest.mark.parametrize("coils", [1, 2, 4, 8, 32, 64])
def test_kernel_table_matches_the_exact_mean(coils):
    # The fitting kernels read E[M] from a cubic Hermite table (r2mri.noise.ncchi_table)
    # built on exact node values and derivatives, h = 1/128 in nu = A / sigma. Error
    # bounds (cubic Hermite): h^4/384 M for E/sigma and sqrt(3)/216 h^3 M for dE/dA,
    # M = max|d^4 (E/sigma) / d nu^4| = 0.47 for n = 1 (mpmath, nu <= 18; smaller for
    # larger n): 4.6e-12 (relative: E >= 1.25 sigma, so 3.7e-12) and 1.8e-9 (absolute;
    # dE/dA runs from 0 at A = 0 to 1). Tolerances 1e-11 and 5e-9. Above the table the
    # kernels use the exact expansion (compared too, nu up to 40).
    tab = noise_mod.ncchi_table(coils)
    lg = math.lgamma(coils + 0.5) - math.lgamma(coils)
    rng = np.random.default_rng(coils)
    sigma = 2.5
    nu = np.concatenate([rng.uniform(0.0, 19.0, 3000), np.linspace(0.0, 0.1, 11),
                         np.linspace(17.9, 18.1, 21), rng.uniform(19.0, 40.0, 200)])
    a = nu * sigma
    got = np.array([noise_mod._ncchi_eval(v, sigma, np.int64(coils), lg, tab) for v in a])
    ref_m = ncchi_mean(a, sigma, coils)
    ref_d = ncchi_mean(a, sigma, coils, derivative=True)
    np.testing.assert_allclose(got[:, 0], ref_m, rtol=1e-11)
    np.testing.assert_allclose(got[:, 1], ref_d, rtol=0, atol=5e-9)
    assert not tab.flags.writeable


def test_ncchi_mean_limits_and_monte_carlo():
    # A = 0: the chi mean sigma sqrt(2) Gamma(n+1/2)/Gamma(n); A >> sigma: E[M] -> A
    for n in (1, 4):
        assert ncchi_mean(0.0, 2.0, n) == pytest.approx(2.0 * math.sqrt(2) * math.exp(gammaln(n + 0.5) - gammaln(n)), rel=1e-6)
        assert ncchi_mean(1e4, 1.0, n) == pytest.approx(1e4, rel=1e-7)
    # Monte Carlo, 200,000 samples: standard error of the mean <= sd/sqrt(N) ~ 2.2e-3 sigma;
    # 5 standard errors = 0.011 sigma.
    rng = np.random.default_rng(3)
    for n, a in [(1, 2.0), (4, 1.5), (2, 5.0)]:
        re = rng.normal(0, 1, (200_000, n))
        re[:, 0] += a
        im = rng.normal(0, 1, (200_000, n))
        m = np.sqrt((re**2 + im**2).sum(1))
        assert abs(m.mean() - ncchi_mean(a, 1.0, n)) < 0.011


@settings(max_examples=30, deadline=None, derandomize=True)
@given(a=st.floats(0, 1e4), sigma=st.floats(1e-3, 1e3), n=st.integers(1, 12))
def test_ncchi_mean_bounds(a, sigma, n):
    # E[M] >= A (Jensen) and E[M] <= sqrt(E[M^2]) = sqrt(A^2 + 2 n sigma^2)
    m = float(ncchi_mean(a, sigma, n))
    assert m >= a * (1 - 1e-6)
    assert m <= math.sqrt(a * a + 2 * n * sigma * sigma) * (1 + 1e-6)


def test_ncchi_mean_bad_arguments():
    with pytest.raises(InputError, match="sigma"):
        ncchi_mean(1.0, 0.0, 1)
    with pytest.raises(InputError, match="coils"):
        ncchi_mean(1.0, 1.0, 0)


def _phantom(rng, sigma, coils, shape=(64, 64, 2), zero_background=False):
    """Tissue disc (R2 40..120 s^-1) in air, n-channel root-sum-of-squares magnitude."""
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    disc = (x**2 + y**2) < 0.5
    r2 = 40.0 + 80.0 * (x + 1) / 2
    amp = np.where(disc, 1000.0, 0.0)[..., None, None] * np.exp(-r2[..., None, None] * TE)
    amp = np.broadcast_to(amp, shape + (TE.size,))
    total = np.zeros(amp.shape)
    for c in range(coils):  # the signal on one coil; noise on every coil
        re = rng.normal(0, sigma, amp.shape) + (amp if c == 0 else 0.0)
        im = rng.normal(0, sigma, amp.shape)
        total += re**2 + im**2
    data = np.sqrt(total)
    if zero_background:
        data[~disc] = 0.0
    return data, disc


def _sigma_se(sigma, coils, n_voxels, n_echoes):
    # Sampling error of the background estimate (the derivation behind every tolerance
    # below): for air, M^2 / sigma^2 is chi-square with 2n degrees of freedom, so over the
    # N m values of N voxels x m echoes, S2 / sigma^2 = sum M^2 / sigma^2 is chi-square with
    # 2 n N m dof. The maximum-likelihood sigma^2 at the (correct, integer) n is
    # S2 / (2 n N m): relative variance 2 / (2 n N m) = 1 / (n N m); by the delta method
    # sigma has relative SE 1 / (2 sqrt(n N m)). The selection cut (sum_k M_k^2 below its
    # 99.9th percentile) is modelled in the likelihood, so its bias is << SE. Tolerance:
    # 4 SE (two-sided normal tail 6e-5).
    return sigma / (2.0 * math.sqrt(coils * n_voxels * n_echoes))


@pytest.mark.parametrize("coils", [1, 4])
def test_background_estimate(coils):
    # ~2500 air voxels x 2 slices x 5 echoes: SE of sigma 0.3 % (n = 1) / 0.16 % (n = 4).
    rng = np.random.default_rng(coils)
    data, disc = _phantom(rng, 12.0, coils)
    est = estimate_noise(data)
    assert isinstance(est, NoiseEstimate) and est.method == "background"
    assert est.coils == coils
    se = _sigma_se(12.0, coils, est.n_voxels, TE.size)
    assert est.sigma_se == pytest.approx(se, rel=0.01)
    assert abs(est.sigma - 12.0) < 4 * se
    assert est.n_voxels <= 2 * np.count_nonzero(~disc)  # air only
    d = est.to_dict()
    assert d["coils"] == coils and d["coils_log_lr"] > 20


@pytest.mark.parametrize("spec, coils, seed", [
    ("ferriscan-1.5t-lic7", 4, 0),   # SNR 50
    ("low-snr-1.5t-lic7", 8, 1),     # SNR 10: the moment estimator gave sigma +40 %, 5 coils
    ("ferriscan-3t-lic3.2", 8, 2),
    ("cpmg-1.5t-lic3.2", 4, 3),
])
def test_background_estimate_on_phantoms(spec, coils, seed):
    # Shipped specs on a coarse grid (same 384 mm field of view, 3 slices): ~16,000 air
    # voxels x 5 echoes, SE of sigma (see _sigma_se) 0.09 % for n = 4, 0.06 % for n = 8.
    from r2mri.phantom import generate

    ph = generate(spec, matrix=(96, 96), pixel_mm=4.0, n_slices=3, seed=seed)
    truth = ph.summary
    assert truth["coils"] == coils
    est = estimate_noise(ph.image)
    assert est.method == "background" and not est.notes
    se = _sigma_se(truth["noise_sigma"], coils, est.n_voxels, ph.image.n_echoes)
    assert abs(est.sigma - truth["noise_sigma"]) < 4 * se
    # n: integer maximum likelihood; the runner-up integer is e^-20 times less likely
    assert est.coils == coils and est.coils_log_lr > 20
    assert round(est.coils_estimate) == coils
    # the selection is the air around the body: all of it but the ~0.1 % cut tail
    # (binomial SD sqrt(0.001 N) ~ 4 voxels), no tissue
    air = int(np.count_nonzero(ph.truth.labels == 0))
    assert 0.995 * air <= est.n_voxels <= air


def test_dark_tissue_inside_the_body_is_not_background():
    # A core of tissue at the noise floor (amplitude 1 sigma at every echo) inside a
    # bright body wall: it passes any intensity test but is not connected to the edge.
    rng = np.random.default_rng(11)
    sigma, coils = 10.0, 4
    data, disc = _phantom(rng, sigma, coils)
    x, y = np.meshgrid(np.linspace(-1, 1, 64), np.linspace(-1, 1, 64), indexing="ij")
    core = (x**2 + y**2) < 0.3
    shape = (int(core.sum()), 2, TE.size)
    re = rng.normal(sigma, sigma, shape)
    tot = re**2 + rng.normal(0, sigma, shape) ** 2
    for _ in range(coils - 1):
        tot += rng.normal(0, sigma, shape) ** 2 + rng.normal(0, sigma, shape) ** 2
    data[core] = np.sqrt(tot)
    est = estimate_noise(data)
    assert est.coils == coils
    assert abs(est.sigma - sigma) < 4 * _sigma_se(sigma, coils, est.n_voxels, TE.size)
    assert est.n_voxels <= 2 * np.count_nonzero(~disc)


def test_zero_rim_and_no_air():
    rng = np.random.default_rng(12)
    data, disc = _phantom(rng, 6.0, 2)
    data[0] = 0.0  # a zero-filled row (< 5 % of voxels): connects air, never used
    est = estimate_noise(data)
    assert est.method == "background" and est.coils == 2 and not est.notes
    assert abs(est.sigma - 6.0) < 4 * _sigma_se(6.0, 2, est.n_voxels, TE.size)
    # body filling the field of view, air only in an enclosed hole: intensity rule, noted
    bright = data + 1000.0
    hole = np.zeros(disc.shape, dtype=bool)
    hole[16:48, 16:48] = True  # 25 % of the voxels: the 10 % lowest seed lies inside
    bright[hole] = data[~disc][: hole.sum()]
    est = estimate_noise(bright)
    assert est.method == "background" and "no air connected" in est.notes[0]
    assert est.coils == 2 and est.n_voxels <= 2 * hole.sum()
    assert abs(est.sigma - 6.0) < 4 * _sigma_se(6.0, 2, est.n_voxels, TE.size)


def test_background_estimate_with_mask():
    rng = np.random.default_rng(9)
    data, disc = _phantom(rng, 5.0, 1)
    air = ~np.broadcast_to(disc[..., None], data.shape[:3])
    est = estimate_noise(data, air)
    assert est.coils == 1 and est.n_voxels == air.sum()
    assert abs(est.sigma - 5.0) < 4 * _sigma_se(5.0, 1, est.n_voxels, TE.size)
    with pytest.raises(InputError, match="mask: shape"):
        estimate_noise(data, air[..., 0])


def test_zeroed_background_falls_back_to_residuals():
    # Background set to 0 by the scanner: sigma from residuals of mono-exponential fits in
    # the brightest 20 % of tissue voxels (Gaussian regime, SNR > 20 at every echo).
    # ~500 voxels x (5 - 2) dof: relative SE of sigma ~ 1/sqrt(2 * 1500) = 1.8 %; 6 % = 3 SE.
    rng = np.random.default_rng(5)
    data, _ = _phantom(rng, 4.0, 1, zero_background=True)
    with pytest.warns(RuntimeWarning, match="background unusable"):
        est = estimate_noise(data, echo_times_s=TE)
    assert est.method == "residual" and est.coils == 1
    assert est.sigma == pytest.approx(4.0, rel=0.06)


def test_noise_estimate_impossible():
    with pytest.raises(InputError, match="cannot estimate noise"):
        estimate_noise(np.zeros((10, 10, 1, 2)))
