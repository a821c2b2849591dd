"""Monte-Carlo error of the liver statistics over their own seed (issue 16, benchmarks/mc_seed.py).

``liver_statistics(seed=...)`` seeds simulations (the spread statistic, the tile-fit bias, the
bootstrap). The same exam read with another seed must give nearly the same headline: its
Monte-Carlo SD must be small against the interval's SE (half-width / 1.96).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from r2mri.phantom import generate
from r2mri.stats import liver_statistics

_Z95 = 1.959963984540054


@pytest.fixture(scope="module")
def small_liver():
    """64 x 64 x 3 voxels of 6 mm (1,699 liver voxels), 7 mg/g, SD 0.4 in log LIC over 4 voxels,
    SNR 20, 8 channels, true liver mask."""
    ph = generate(matrix=(64, 64), pixel_mm=6.0, n_slices=3, lic=7.0, snr=20.0, coils=8, seed=1, texture_seed=1,
                  lic_log_sd=0.4, lic_correlation_voxels=4.0)
    mask = ph.truth.liver_mask
    fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": float(ph.summary["noise_sigma"]), "coils": 8})
    return fit, mask, ph.image


def test_headline_monte_carlo_sd_is_small_against_the_interval(small_liver):
    """Six statistics seeds on one liver: SD of the headline / median interval SE below 0.1.

    The bound is issue 16's target (a Monte-Carlo SD below 0.1 x the interval's SE), which
    the spread statistic's copies of the ROI aim at (r2mri/_headline.py, _replicates_needed:
    2-3 copies here). Measured on this liver over 8 seeds: 0.044 (0.081 with one copy, 0.025
    with 8). The interval's half-width must not move by more than 10 % of itself either
    (measured: SD 3.7 % of it over 8 seeds).
    """
    fit, mask, image = small_liver
    heads, halves = [], []
    for seed in range(6):
        st = liver_statistics(fit, mask, image=image, seed=seed)
        lo, hi = st.ci95_lic_mg_per_g
        heads.append(st.headline_lic_mg_per_g)
        halves.append((hi - lo) / 2)
    se = float(np.median(halves)) / _Z95
    sd = float(np.std(heads, ddof=1))
    assert sd < 0.1 * se, (sd, se, heads)
    assert float(np.std(halves, ddof=1)) < 0.1 * float(np.median(halves)), halves


def test_measurement_se_of_a_tile_is_bounded_by_the_fit_range():
    """A 3-voxel tile far below the floor (its simulated fits fail, its plug-in SE 1e5 s^-1) gets
    at most 2,500 s^-1 (half the tile fit's 0-5,000 s^-1 range), not its Fisher fallback."""
    from r2mri._measurement_se import pooled_measurement_se

    te = np.array([6, 9, 12, 15, 18]) / 1e3
    r2 = np.r_[np.full(50, 240.0), 1500.0]
    s0 = np.r_[np.full(50, 100.0), 30.0]
    se = np.r_[np.full(50, 5.0), 1e5]
    k = np.r_[np.full(50, 64.0), 3.0]
    _, per_tile = pooled_measurement_se(r2, s0, se, k, np.r_[np.full(50, 8), 2], te, 5.0, 8)
    assert per_tile[-1] <= 2500.0, per_tile[-1]
    assert np.all(per_tile[:50] < 50.0), per_tile[:50].max()  # the ordinary tiles as before (25.9 s^-1)


def test_spread_map_weight_is_continuous_in_the_reliability():
    """An edge's spread map no longer switches on or off at a median reliability of 0.5
    (r2mri/_spread_map.py, map_weight): the reliability carries the statistics' Monte-Carlo
    error (SD ~0.02 on the issue-16 cell, liver 7, at 0.44-0.49), and the switch made the
    headline jump with the seed by the map's whole effect. 1,600 tiles, the between-tile
    variance equal to the noise's (reliability ~0.5), the SEs scaled by 0.90-1.10 in steps
    of 1 %: the weight passes 0.5 and the offsets move by at most 12 % of their largest size
    per step (the switch: 100 %); far from 0.5 the map is the switch's."""
    from r2mri._spread_map import map_weight, spread_map

    rng = np.random.default_rng(3)
    n = 1600
    dev = rng.standard_normal(n)
    k, sel = np.full(n, 64.0), {8: np.ones(n, bool)}
    rhat = 0.02 + 0.004 * np.sqrt(2.0) * dev
    offs, ws = [], []
    for f in np.arange(0.90, 1.105, 0.01):
        m = spread_map(rhat, np.full(n, 0.004 * f), k, sel, 0.15)
        offs.append(np.zeros(n) if m is None else m.offset)
        ws.append(0.0 if m is None else m.weight[8])
    ws, offs = np.array(ws), np.array(offs)
    assert ws.max() > 0.5 > ws.min(), ws  # the old switch is crossed
    size = np.sqrt(np.mean(offs**2, axis=1))
    steps = np.sqrt(np.mean(np.diff(offs, axis=0) ** 2, axis=1))
    assert steps.max() < 0.12 * size.max(), (steps / size.max(), ws)
    # clear cases: the switch's answer
    assert map_weight(0.39) == 0.0 and map_weight(0.61) == 1.0
    clear = spread_map(0.02 + 0.004 * np.sqrt(1.25) * dev, np.full(n, 0.002), k, sel, 0.15)  # reliability ~0.8
    assert clear.weight[8] == 1.0
    assert spread_map(0.02 + 0.004 * dev, np.full(n, 0.004), k, sel, 0.15) is None  # noise only
