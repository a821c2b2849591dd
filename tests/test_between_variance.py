"""The between-tile variance behind the simulated fit bias's reference states (branch est30).

On a coarsely patchy liver at the noise floor a few tiles carry relative SEs of 1-10; their
``se^2`` outweighed the texture in the all-tile moment estimate and ``v_b`` read 0, so every
simulated tile sat at the tile edge's mean state (r2mri/_sim_state.py, ``_between_variance``).
"""

import numpy as np

from r2mri._sim_state import _between_variance, shrunk_state

TE = np.array([6, 9, 12, 15, 18]) / 1e3


def _tiles(n=800, v_true=0.04, seed=0):
    """Tiles of true log R2 ~ N(log 240, v_true), 80 % precise (SE 0.05-0.15), 20 % at the floor: reported SE
    1-5, their fits bounded (log error SD 0.5; on the coarse liver the SEs above 0.5 over-state the error)."""
    rng = np.random.default_rng(seed)
    floor = rng.random(n) >= 0.8
    se = np.where(floor, rng.uniform(1.0, 5.0, n), rng.uniform(0.05, 0.15, n))
    err = np.where(floor, 0.5, se)
    lm = np.log(240.0) + np.sqrt(v_true) * rng.standard_normal(n) + err * rng.standard_normal(n)
    return np.exp(lm), se, np.full(n, 64.0)


def test_between_variance_survives_floor_tiles():
    mu, se, k = _tiles()
    lm = np.log(mu)
    w = k / k.sum()
    vb_all = max(np.sum(w * (lm - np.sum(w * lm)) ** 2) - np.sum(w * se**2), 0.0)
    assert vb_all == 0.0  # the all-tile estimate collapses (mean se^2 ~ 1.6 against 0.04)
    vb = _between_variance(lm, se**2, k, 0.3, vb_all)
    # ~640 precise tiles: SE of the moment estimate ~ sqrt(2 / 640) (0.04 + 0.01) ~ 0.003; 4 SE
    assert abs(vb - 0.04) < 0.012


def test_uniform_tiles_stay_collapsed():
    mu, se, k = _tiles(v_true=0.0, seed=1)
    lm = np.log(mu)
    vb = _between_variance(lm, se**2, k, 0.3, 0.0)
    assert vb < 0.003  # no texture: within 1 SE (~0.0015) of zero, plus its positive part


def test_shrunk_states_keep_texture_with_cap():
    mu, se, k = _tiles(seed=2)
    s0 = np.full(mu.size, 1000.0)
    old, _ = shrunk_state(mu, s0, se, k, [np.ones(mu.size, bool)], TE)
    new, _ = shrunk_state(mu, s0, se, k, [np.ones(mu.size, bool)], TE, vb_max_rel_se=0.3)
    assert np.std(np.log(old)) < 1e-9  # every tile at the mean
    prec = se <= 0.3
    # precise tiles keep ~ the texture's SD 0.2 (Louis: variance v_b), floor tiles stay near the mean
    assert 0.15 < np.std(np.log(new[prec])) < 0.25
    assert np.std(np.log(new[~prec])) < 0.1
