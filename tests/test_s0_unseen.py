"""Fine S0 texture where the per-exam check cannot measure it (r2mri/_s0_unseen.py, branch s0fine30):
the interval's lower side must reach the headline's over-read.

Simulated tile sets like a full-size liver's (256 tiles of 8 x 8 voxels) at 30 mg/g (R2 238 s^-1),
SNR 20, 8 channels, no spread of R2 (rho = 0), as tests/test_kappa_guard.py's: S0 with a smooth
shading and, in the textured sets, an independent log-normal factor per voxel of log-SD 0.15
(within-tile variance 0.023, which the S0 field's prior on kappa does not see). The prior alone
then reads rho high and the corrected rates over-read; the data's own kappa sees the texture with
an SE of ~0.004. Tolerances: the design's own 95 % reach (excess + 1.96 SE) must hold the over-read
on at least 90 % of the sets, the issue's coverage target.
"""

from __future__ import annotations

import numpy as np
import pytest

import r2mri._s0_unseen as U
import r2mri._spread_estimate as E
from r2mri._s0_shading import field_kappa
from r2mri.noise import ncchi_mean_interpolated
from r2mri.stats import _tile_fit

TE_S = np.array([6, 9, 12, 15, 18]) / 1e3
N_SETS = 12
_EDGE, _N = 8, 16
_x, _y = (a.ravel() for a in np.meshgrid(np.arange(_N * _EDGE), np.arange(_N * _EDGE), indexing="ij"))
XYZ = np.c_[_x, _y, np.zeros(_x.size)].astype(float)
TILE_OF = (_x // _EDGE) * _N + _y // _EDGE
NT = _N * _N
K = np.bincount(TILE_OF).astype(float)


def _tile_set(seed, texture, coils=8, r2=238.0):
    rng = np.random.default_rng(seed)
    s0 = 20.0 * np.exp(0.01 * (XYZ[:, 0] - XYZ[:, 0].mean()))
    if texture:
        s0 = s0 * np.exp(0.15 * rng.standard_normal(s0.size) - 0.15**2 / 2)
    amp = s0[:, None] * np.exp(-r2 * TE_S[None, :])
    y = E._ncchi_draw(amp, 1.0, coils, rng)
    expected, noisy = np.zeros((NT, TE_S.size)), np.zeros((NT, TE_S.size))
    np.add.at(expected, TILE_OF, ncchi_mean_interpolated(amp, 1.0, coils)[0])
    np.add.at(noisy, TILE_OF, y)
    r2_app, s0_app = _tile_fit(expected / K[:, None], TE_S, K, 1.0, coils)[:2]
    sel = {64: np.ones(NT, bool)}
    kappa, kappa_se = field_kappa(XYZ, TILE_OF, K, _tile_fit(noisy / K[:, None], TE_S, K, 1.0, coils)[1], sel)
    return E._TileSet(TE_S, 1.0, coils, y, TILE_OF, K, r2_app, s0_app, [64], sel, kappa_prior=kappa,
                      kappa_se=kappa_se, xyz=XYZ)


def _run(seed, texture):
    """(over-read of the corrected mean R2 in s^-1, the unseen block, extension by design)."""
    t = _tile_set(seed, texture)
    rho, _, _, mu, _ = E._estimate_spread(t, E._simulator(t, 10_000 + seed, 2), 6, "gamma")
    over = float(np.sum(t.k * (mu - t.r2_app)) / t.k.sum())  # the true rho is 0: any correction is an over-read
    ext = {}
    for mode in ("conflict", "reach"):
        block: dict = {}
        ext[mode] = U.lower_extension(t, rho, set(), "gamma", block, mode)
    return over, block["unseen"], ext


@pytest.fixture(scope="module")
def textured():
    return [_run(seed, True) for seed in range(N_SETS)]


@pytest.fixture(scope="module")
def plain():
    return [_run(100 + seed, False) for seed in range(N_SETS)]


def test_prior_over_reads_and_the_data_kappa_sees_the_texture(textured):
    over = np.array([o for o, _, _ in textured])
    assert over.mean() > 1.0, over  # s^-1: the problem (rho +0.0095 at this texture, tests/test_kappa_guard.py)
    z = np.array([b["by_tile_size"]["64"]["z"] for _, b, _ in textured])
    assert np.mean(z > U._Z) >= 0.9, z


def test_reach_holds_the_over_read(textured):
    """The shipped design's lower extension is at least the over-read on >= 90 % of the sets."""
    held = [e["reach"] >= o for o, _, e in textured]
    assert np.mean(held) >= 0.9, [(round(o, 2), round(e["reach"], 2)) for o, _, e in textured]
    assert U._MODE == "reach"


def test_without_texture_the_conflict_test_stays_quiet(plain):
    """No texture: the data's kappa is not 3 SE above the prior on any set (one-sided, ~1 in 700 each)."""
    assert all(e["conflict"] == 0.0 for _, _, e in plain)


def test_calibrated_reading_carries_the_leak_models_error(monkeypatch):
    """r2mri/_s0_leak.py: the simulated leak's measured model error (``_MODEL_ERROR`` of the leak, 1 SE)
    is in the calibrated reading's SE, so that a residual leak of ~0.38 of it on livers without S0
    texture (benchmarks/README.md "s0fine30") stands ~1 SE, not ~2 SE, above zero."""
    import r2mri._s0_leak as L

    monkeypatch.setattr(L, "simulated_reading", lambda *a, **k: {"8": (0.0070, 0.0004)})
    tex = {"measurable": True, "by_tile_size": {"8": {"s0_var": 0.0096, "s0_var_se": 0.0014, "usable": False}}}
    m = L.calibrate(tex, None, {8: 0.05}, set(), "gamma", 0)["by_tile_size"]["8"]
    assert m["s0_var"] == pytest.approx(0.0026)
    assert m["s0_var_se"] == pytest.approx(np.sqrt(0.0014**2 + 0.0004**2 + (L._MODEL_ERROR * 0.0070) ** 2))
    assert m["s0_var"] / m["s0_var_se"] < 1.2
