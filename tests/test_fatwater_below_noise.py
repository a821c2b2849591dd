"""Fat-water BELOW_NOISE means the same at every channel count (docs/fatwater.md).

A magnitude fat-water voxel is BELOW_NOISE when fewer than 3 echoes (the model's 3
parameters) exceed ``r2mri.noise.noise_floor_threshold(k_sigma, coils) * sigma``, the
level pure noise of ``coils`` root-sum-of-squares channels exceeds with probability
``p = exp(-k_sigma^2 / 2)``. Echoes of pure noise are independent, so the BELOW_NOISE
fraction of pure-noise voxels is ``binom.cdf(2, m, p)`` at every channel count (6
echoes: 0.964; 12 echoes: 0.785). Before the fix the threshold stayed at ``k_sigma *
sigma`` and 8-channel pure noise (mean 3.94 sigma) was never BELOW_NOISE (0.0000).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import r2mri
from r2mri.noise import noise_floor_threshold
from r2mri.status import FitStatus

SIGMA = 10.0
N_VOX = 2000
TE = 0.0012 + 0.001 * np.arange(12)  # 1.5 T train of the shipped GRE phantoms


def _pure_noise(coils: int, m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, SIGMA, size=(N_VOX, m, coils, 2))
    return np.sqrt(np.sum(z * z, axis=(2, 3)))


@pytest.mark.parametrize("m", [6, 12])
@pytest.mark.parametrize("coils", [1, 8])
def test_pure_noise_below_noise_fraction(coils, m):
    y = _pure_noise(coils, m, seed=31 + 10 * coils + m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = r2mri.fit(y.reshape(N_VOX, 1, 1, m), TE[:m], model="fatwater", field_strength_t=1.5,
                        noise_sigma=SIGMA, coils=coils)
    frac = float(np.mean(res.status == FitStatus.BELOW_NOISE))
    p = float(np.exp(-2.0))  # k_sigma = 2: the one-channel tail at 2 sigma
    expected = float(stats.binom.cdf(2, m, p))
    se = np.sqrt(expected * (1 - expected) / N_VOX)
    assert abs(frac - expected) < 4 * se, (frac, expected, se)
    assert res.options["noise_threshold_sigma"] == pytest.approx(noise_floor_threshold(2.0, coils))
    # the status is the data's count of echoes above the threshold, voxel by voxel
    count = np.sum(y > noise_floor_threshold(2.0, coils) * SIGMA, axis=1) < 3
    assert np.array_equal(res.status.reshape(-1) == FitStatus.BELOW_NOISE, count)
