"""The phantom's optional fine S0 texture (r2mri/phantom/_s0_texture.py; issue 16, kappa prior check)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from r2mri import InputError
from r2mri.phantom import generate

SMALL = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3, snr=math.inf, coils=1, lic=30.0)


@pytest.fixture(scope="module")
def pair():
    base = generate(**SMALL, texture_seed=2, lic_log_sd=0.4, lic_correlation_voxels=4.0)
    tex = generate(**SMALL, texture_seed=2, lic_log_sd=0.4, lic_correlation_voxels=4.0, s0_log_sd=0.1,
                   s0_correlation_voxels=1.0)
    return base, tex


def test_s0_texture_is_exact_lognormal_and_leaves_truth(pair):
    base, tex = pair
    m = base.truth.liver_mask
    f = tex.truth.s0[m] / base.truth.s0[m]
    # the factor is standardised over the liver: log-SD exact before the mean-1 rescale (a shift in log)
    assert np.log(f).std() == pytest.approx(0.1, rel=1e-9)
    assert f.mean() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_array_equal(tex.truth.r2_per_s, base.truth.r2_per_s)  # truth is on R2
    assert tex.summary["lic_of_mean_r2_mg_per_g"] == base.summary["lic_of_mean_r2_mg_per_g"]
    np.testing.assert_array_equal(tex.truth.s0[~m], base.truth.s0[~m])  # only the liver is textured
    # independent of the LIC texture of the same seed: |corr| within ~3 / sqrt(n) of 0 (n ~ 1,700 voxels;
    # the 4-voxel LIC texture has ~n / 30 independent values, so allow 3 / sqrt(n / 30))
    r = np.corrcoef(np.log(f), np.log(base.truth.lic_mg_per_g[m]))[0, 1]
    assert abs(r) < 3 / math.sqrt(m.sum() / 30)
    # a 1-voxel Gaussian kernel: neighbours correlate exp(-1 / 4) = 0.78 (Gaussian-smoothed white noise) [D]
    lf = np.full(m.shape, np.nan)
    lf[m] = np.log(f)
    a, b = lf[:-1], lf[1:]
    ok = np.isfinite(a) & np.isfinite(b)
    assert np.corrcoef(a[ok], b[ok])[0, 1] == pytest.approx(math.exp(-0.25), abs=0.06)


def test_s0_texture_default_off_and_validated():
    a = generate(**SMALL, seed=1)
    assert "s0_texture_log_sd" not in a.summary
    with pytest.raises(InputError, match="s0_log_sd"):
        generate(**SMALL, s0_log_sd=-0.1)
    with pytest.raises(InputError, match="s0_correlation_voxels"):
        generate(**SMALL, s0_correlation_voxels=0.0)
