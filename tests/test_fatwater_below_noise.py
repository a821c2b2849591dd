"""Fat-water BELOW_NOISE: the same rule, the same meaning, at every channel count and in
both fits (magnitude and complex; docs/fatwater.md "Noise floor at high R2* (rule)").

An echo counts as signal when it exceeds ``r2mri.noise.noise_floor_threshold(k_sigma,
coils) * sigma``, the level pure noise of ``coils`` root-sum-of-squares channels exceeds
with probability ``p = exp(-k_sigma^2 / 2)``. A voxel is BELOW_NOISE when fewer than 3
echoes (the magnitude model's 3 parameters; 3 complex echoes for the complex fit's 5)
count in the leading run, which one echo below the threshold (an opposed-phase dip) does
not end and two consecutive ones (the floor) do. Echoes of pure noise are independent, so
the BELOW_NOISE fraction of pure-noise voxels is an exact Markov-chain probability
(``pure_noise_below_probability``: 0.9839 at k_sigma 2 for 6 and 12 echoes) at every
channel count. Under the former rule (any 3 echoes) 12-echo pure noise was OK in 21.5 %
of voxels (``binom.cdf(2, 12, p)`` = 0.785 BELOW_NOISE); the complex fit had no such
status at all (0.000).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest

import r2mri
from r2mri.fatwater import load_fat_spectrum
from r2mri.fatwater._kernels import _signal_echoes, pure_noise_below_probability
from r2mri.noise import noise_floor_threshold
from r2mri.status import FitStatus

SIGMA = 10.0
N_VOX = 2000
TE = 0.0012 + 0.001 * np.arange(12)  # 1.5 T train of the shipped GRE phantoms
P_ECHO = float(np.exp(-2.0))  # k_sigma = 2: the one-channel tail at 2 sigma


def _pure_noise(coils: int, m: int, seed: int):
    """RSS magnitude of ``coils`` channels of pure noise, and the phase of channel 0."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, SIGMA, size=(N_VOX, m, coils, 2))
    return np.sqrt(np.sum(z * z, axis=(2, 3))), np.arctan2(z[..., 0, 1], z[..., 0, 0])


def _rule(y: np.ndarray, thr: float) -> np.ndarray:
    """The rule in numpy, voxel by voxel: leading-run count of echoes above ``thr`` < 3."""
    return np.array([_signal_echoes(np.ascontiguousarray(v, dtype=np.float64), thr) < 3 for v in y])


def test_signal_echo_run_skips_one_dip_and_stops_at_the_floor():
    thr = 2.0
    assert _signal_echoes(np.array([5.0, 1.0, 5.0, 5.0, 1.0, 1.0, 5.0, 5.0]), thr) == 3  # dip skipped; spikes after the floor not
    assert _signal_echoes(np.array([5.0, 5.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0]), thr) == 2
    assert _signal_echoes(np.array([1.0, 5.0, 5.0, 1.0, 5.0, 5.0]), thr) == 4  # dips at echoes 1 and 4 (3 T train)
    assert _signal_echoes(np.array([2.0, 2.0, 5.0]), thr) == 0  # at the threshold is not above


def test_pure_noise_probability_is_the_chain():
    assert pure_noise_below_probability(3, 0.5) == pytest.approx(0.875)  # all 3 must pass
    assert pure_noise_below_probability(4, 0.5) == pytest.approx(1 - 0.5**3 - 3 * 0.5**4)  # 111x, 1011, 1101
    assert pure_noise_below_probability(12, P_ECHO) == pytest.approx(0.98393, abs=1e-5)


@pytest.mark.parametrize("m", [6, 12])
@pytest.mark.parametrize("coils", [1, 8])
def test_pure_noise_below_noise_fraction(coils, m):
    y, _ = _pure_noise(coils, m, seed=31 + 10 * coils + m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = r2mri.fit(y.reshape(N_VOX, 1, 1, m), TE[:m], model="fatwater", field_strength_t=1.5,
                        noise_sigma=SIGMA, coils=coils)
    frac = float(np.mean(res.status == FitStatus.BELOW_NOISE))
    expected = pure_noise_below_probability(m, P_ECHO)
    se = np.sqrt(expected * (1 - expected) / N_VOX)
    assert abs(frac - expected) < 4 * se, (frac, expected, se)
    assert res.options["noise_threshold_sigma"] == pytest.approx(noise_floor_threshold(2.0, coils))
    # the status is the data's leading-run count, voxel by voxel
    assert np.array_equal(res.status.reshape(-1) == FitStatus.BELOW_NOISE,
                          _rule(y, noise_floor_threshold(2.0, coils) * SIGMA))


@pytest.mark.parametrize("coils", [1, 8])
def test_complex_fit_flags_the_voxels_the_magnitude_fit_flags(coils):
    """The complex fit (phase given) tests the magnitude as read with the same threshold:
    on pure noise it flags the same voxels as the magnitude fit (exactly; at 8 channels
    the voxels whose floor-corrected magnitude is 0 at every echo stay BAD_INPUT, as
    before), at the same rate as the chain. Before: 0.000 BELOW_NOISE."""
    m = 6
    y, ph = _pure_noise(coils, m, seed=7 + coils)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = r2mri.fit(y.reshape(N_VOX, 1, 1, m), TE[:m], model="fatwater", field_strength_t=1.5,
                        noise_sigma=SIGMA, coils=coils, phase_rad=ph.reshape(N_VOX, 1, 1, m))
    assert res.options["fit"] == "complex"
    assert res.options["noise_threshold_sigma"] == pytest.approx(noise_floor_threshold(2.0, coils))
    st = res.status.reshape(-1)
    flagged = (st == FitStatus.BELOW_NOISE) | (st == FitStatus.BAD_INPUT)
    assert np.array_equal(flagged, _rule(y, noise_floor_threshold(2.0, coils) * SIGMA))
    expected = pure_noise_below_probability(m, P_ECHO)
    se = np.sqrt(expected * (1 - expected) / N_VOX)
    assert abs(np.mean(flagged) - expected) < 4 * se
    assert np.mean(st == FitStatus.BAD_INPUT) < 0.02  # all 6 echoes under 3.74 sigma: rare


def test_complex_fit_keeps_healthy_fatty_voxels_ok():
    """1.5 T, 6 echoes, PDFF 45 %, R2* 200 s^-1, SNR 20, 8 channels: echo 2 (2.2 ms) dips near
    opposed phase to |S| = 2.7 sigma (expected magnitude 4.8 sigma, at the 4.72 sigma
    threshold: below it in about half the voxels); the run steps over it (the leading-3 rule
    flagged 0.21-0.49 of such voxels). Flagging needs echo 3 (expected 7.0 sigma) under the
    threshold beside the dip as well: rare (the rule grid's cell: 0.003)."""
    m, coils, sig, n = 6, 8, 5.0, 400
    te = TE[:m]
    c = load_fat_spectrum().basis(te, 1.5)
    s = (55.0 + 45.0 * c) * np.exp(-200.0 * te)
    rng = np.random.default_rng(3)
    z = rng.normal(0, sig, (n, coils, m)) + 1j * rng.normal(0, sig, (n, coils, m))
    z[:, 0, :] += s
    y = np.sqrt(np.sum(np.abs(z) ** 2, axis=1))
    res = r2mri.fit(y.reshape(n, 1, 1, m), te, model="fatwater", field_strength_t=1.5, noise_sigma=sig,
                    coils=coils, phase_rad=np.angle(z[:, 0, :]).reshape(n, 1, 1, m))
    assert np.mean(res.status == FitStatus.BELOW_NOISE) <= 0.01
    assert abs(np.median(res.r2_per_s) / 200.0 - 1) < 0.05  # per-voxel CRB ~8 %; median of 400


def test_complex_kernel_cache_key_follows_its_imports():
    """numba keys the on-disk cache of fatwater/_complex_kernels.py on that file only; it
    compiles functions of fatwater/_kernels.py and fitting/_kernel_shared.py in."""
    from r2mri.fatwater import _complex_kernels as CK

    root = Path(r2mri.__file__).resolve().parent
    for name, rel in (("_FATWATER_KERNELS_PY_SHA256", "fatwater/_kernels.py"),
                      ("_FITTING_KERNEL_SHARED_PY_SHA256", "fitting/_kernel_shared.py")):
        assert getattr(CK, name) == hashlib.sha256((root / rel).read_bytes()).hexdigest(), \
            f"update {name} in r2mri/fatwater/_complex_kernels.py"
