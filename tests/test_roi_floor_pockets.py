"""Pockets of liver at the noise floor next to the candidate (r2mri/_roi_floor_pockets.py).

Synthetic 8-channel first echoes (sigma 1 per channel; noise floor mean 3.94, SD 0.70):
tissue around at amplitude 20, a bay of iron-rich liver at 1.8 sigma (a liver of S0 ~17
sigma at R2 370 s^-1 and TE 6 ms: 17 exp(-2.22) = 1.85), i.e. within 3 SEs of the floor
per 3 x 3 mean, but 6-7 SEs above it pooled over the bay's ~200-voxel core.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from r2mri._roi_floor_pockets import POCKET_MIN_CANDIDATE_RING, floor_pockets

FIT = SimpleNamespace(options={"noise_sigma": 1.0, "coils": 8})
BAY = (slice(8, 24), slice(8, 24), 0)


def _image(amp, seed):
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((8, 2) + amp.shape)
    noise[0, 0] += amp  # the coil-combined amplitude in one channel: same magnitude statistics
    return SimpleNamespace(data=np.sqrt((noise**2).sum(axis=(0, 1)))[..., None])


def _scene(bay_amp):
    amp = np.full((40, 40, 1), 20.0)
    amp[BAY] = bay_amp
    cand = np.zeros(amp.shape, bool)
    cand[4:32, 4:32] = True
    cand[8:24, 4:24] = False  # the bay, open on the left onto tissue with signal (the liver's neighbour)
    return amp, cand


@pytest.mark.parametrize("seed", range(5))
def test_bay_of_iron_rich_liver_joins(seed):
    amp, cand = _scene(1.8)
    add, info = floor_pockets(cand, _image(amp, seed), FIT, np.ones_like(cand), 3.0)
    bay = np.zeros_like(cand)
    bay[BAY] = True
    assert info["pockets"] == 1
    # the bay's voxels but not the tissue beyond it (columns 4-7) nor the candidate
    assert add[bay].mean() > 0.85
    assert not (add & ~bay).any()


def test_flow_void_stays_out():
    """A void (no first echo) enclosed the same way: the pooled test at 3 SEs refuses it
    (one-sided false-join rate 0.13 % per pocket; 0 of 400 seeds in the branch's check)."""
    amp, cand = _scene(0.0)
    for seed in range(20):
        add, info = floor_pockets(cand, _image(amp, seed), FIT, np.ones_like(cand), 3.0)
        assert not add.any() and info["refused"] == 1


def test_pocket_open_to_the_slice_edge_stays_out():
    """Dark tissue that reaches the slice's edge is not enclosed (air at the body's edge)."""
    amp, cand = _scene(1.8)
    amp[8:24, 0:24] = 1.8  # the bay runs out to the edge of the image
    add, info = floor_pockets(cand, _image(amp, 0), FIT, np.ones_like(cand), 3.0)
    assert not add.any() and info["refused"] >= 1


def test_pocket_mostly_outside_the_candidate_stays_out():
    """A dark region the candidate touches on one side only (a lung beyond the liver's
    dome: its border is mostly chest wall)."""
    amp = np.full((40, 40, 1), 20.0)
    amp[8:24, 8:24] = 1.8
    cand = np.zeros(amp.shape, bool)
    cand[24:34, 4:30] = True  # below the dark region only
    add, info = floor_pockets(cand, _image(amp, 0), FIT, np.ones_like(cand), 3.0)
    assert POCKET_MIN_CANDIDATE_RING >= 0.5
    assert not add.any() and info["refused"] == 1


def test_no_noise_model_no_pockets():
    amp, cand = _scene(1.8)
    add, info = floor_pockets(cand, _image(amp, 0), SimpleNamespace(options={}), np.ones_like(cand), 3.0)
    assert not add.any() and info == {"voxels": 0, "pockets": 0, "refused": 0}
