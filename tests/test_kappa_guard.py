"""The guard on kappa's prior from the S0 field (r2mri/_kappa_guard.py; off by default, measured
and not shipped): fine S0 texture, which the smooth field cannot see, must not be read as
spread of R2 where the data can tell. These tests hold the design's behaviour on simulated
sets (the benchmarks' ``fb3``), so the measurements stay reproducible.

Simulated tile sets like a full-size liver's (256 tiles of 8 x 8 voxels, 16,384 voxels) at
30 mg/g (R2 238 s^-1), SNR 20, 8 channels, no spread of R2 (rho = 0): two echoes in the
spread statistic. S0 carries a smooth shading (1 %/voxel) and, in the textured sets, an
independent log-normal factor per voxel of log-SD 0.15 (within-tile relative variance
exp(0.0225) - 1 = 0.023, which the field does not see). Without the guard rho reads
+0.0095 high (the phantom livers at log-SD 0.1: +0.004, docs/statistics.md "A guard on
kappa's prior"); the data's own kappa has an SE of ~0.004 on these sets, so the texture
stands ~5.5 SE above the prior, as log-SD 0.1 does on full-size livers. Tolerances: 3 Monte
Carlo SE of the mean over the sets.
"""

from __future__ import annotations

import numpy as np
import pytest

import r2mri._kappa_guard as G
import r2mri._spread_estimate as E
from r2mri._s0_shading import field_kappa
from r2mri.noise import ncchi_mean_interpolated
from r2mri.stats import _tile_fit

TE_S = np.array([6, 9, 12, 15, 18]) / 1e3
N_SETS = 16
_EDGE, _N = 8, 16
_x, _y = (a.ravel() for a in np.meshgrid(np.arange(_N * _EDGE), np.arange(_N * _EDGE), indexing="ij"))
XYZ = np.c_[_x, _y, np.zeros(_x.size)].astype(float)
TILE_OF = (_x // _EDGE) * _N + _y // _EDGE
NT = _N * _N
K = np.bincount(TILE_OF).astype(float)
S0_LOG_SD = 0.15


def _tile_set(seed, texture, coils=8, r2=238.0):
    rng = np.random.default_rng(seed)
    s0 = 20.0 * np.exp(0.01 * (XYZ[:, 0] - XYZ[:, 0].mean()))
    if texture:
        s0 = s0 * np.exp(S0_LOG_SD * rng.standard_normal(s0.size) - S0_LOG_SD**2 / 2)
    amp = s0[:, None] * np.exp(-r2 * TE_S[None, :])
    y = E._ncchi_draw(amp, 1.0, coils, rng)
    expected, noisy = np.zeros((NT, TE_S.size)), np.zeros((NT, TE_S.size))
    np.add.at(expected, TILE_OF, ncchi_mean_interpolated(amp, 1.0, coils)[0])
    np.add.at(noisy, TILE_OF, y)
    r2_app, s0_app = _tile_fit(expected / K[:, None], TE_S, K, 1.0, coils)[:2]
    sel = {64: np.ones(NT, bool)}
    kappa, kappa_se = field_kappa(XYZ, TILE_OF, K, _tile_fit(noisy / K[:, None], TE_S, K, 1.0, coils)[1], sel)
    return E._TileSet(TE_S, 1.0, coils, y, TILE_OF, K, r2_app, s0_app, [64], sel, kappa_prior=kappa,
                      kappa_se=kappa_se)


def _rho(sets, mode=None):
    """rho per set with the guard ``mode`` (None: the module default) at the module's threshold."""
    old = G._GUARD
    try:
        G._GUARD = old if mode is None else mode
        return np.array([E._estimate_spread(t, E._simulator(t, 10_000 + i, 2), 6, "gamma")[0][64]
                         for i, t in enumerate(sets)])
    finally:
        G._GUARD = old


@pytest.fixture(scope="module")
def textured():
    return [_tile_set(seed, True) for seed in range(N_SETS)]


@pytest.fixture(scope="module")
def plain():
    return [_tile_set(100 + seed, False) for seed in range(N_SETS)]


def test_prior_alone_reads_fine_s0_texture_as_spread(textured):
    """The problem the guard is for: the field's prior holds kappa low and rho takes the texture."""
    rho = _rho(textured, "none")
    assert rho.mean() > 0.006 and rho.mean() > 5 * rho.std(ddof=1) / np.sqrt(rho.size), rho.mean()


def test_shipped_default_is_off():
    """Measured and not shipped (docs/statistics.md, "A guard on kappa's prior")."""
    assert G._GUARD == "none"


def test_guard_removes_the_texture_bias(textured):
    rho = _rho(textured, "fallback")
    se = rho.std(ddof=1) / np.sqrt(rho.size)
    assert se < 0.001  # resolves a tenth of the prior's bias at 3 SE
    assert abs(rho.mean()) < 3 * se, (rho.mean(), se)
    assert sum(64 in t.kappa_dropped for t in textured) >= 0.9 * len(textured)  # reported where it acted


def test_guard_leaves_untextured_sets_alone(plain):
    """Without texture the data's kappa is not 3 SE above the prior's: rho as before on every set."""
    before, after = _rho(plain, "none"), _rho(plain, "fallback")
    np.testing.assert_array_equal(after, before)
    assert not any(t.kappa_dropped for t in plain)


def test_guarded_prior_is_one_sided():
    prior = (0.0, 0.005, 0.001)
    assert G.guarded_prior(prior, -0.05, 0.004, "fallback", 2.0) == prior  # data below: texture cannot lower kappa
    assert G.guarded_prior(prior, -0.05, 0.004, "widen", 1.0) == prior
    assert G.guarded_prior(prior, 0.0135, 0.004, "fallback", 2.0) is None  # 2.06 combined SEs above
    assert G.guarded_prior(prior, 0.0125, 0.004, "fallback", 2.0) == prior  # 1.82
    assert G.guarded_prior(prior, 0.0125, 0.004, "widen", 1.0)[2] == pytest.approx(np.hypot(0.001, 0.0075))
    assert G.guarded_prior(prior, 0.06, 0.01, "fallback", 2.0) == prior  # the data's SE above _SE_MAX: no guard
