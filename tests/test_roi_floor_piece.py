"""Second look at the low-side pieces the intake refused (r2mri/_roi_floor_piece.py, branch floorpiece)."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

import r2mri._roi_floor_piece as fp

FLOOR = 18.0  # St Pierre 2005's lowest calibrated R2, s^-1


def _maps(rng):
    """90 x 60 x 2 in-plane: the region (rows < 40, liver at 30 s^-1), below it a low-iron
    liver patch (rows 40-69, columns < 30, 22 s^-1, 0.5 mg/g) beside an organ just above the
    floor (columns >= 30, 19 s^-1) whose S0 is 0.15 higher in log, and air (rows >= 70).
    Voxel R2 noise 7 s^-1 (SNR 20); log S0 noise 0.03 (3x3 medians)."""
    shape = (90, 60, 2)
    true = np.full(shape, 30.0)
    logs = np.zeros(shape)
    liver_patch = np.zeros(shape, bool)
    liver_patch[40:70, :30] = True
    organ = np.zeros(shape, bool)
    organ[40:70, 30:] = True
    true[liver_patch], true[organ] = 22.0, 19.0
    logs[organ] = 0.15
    r2 = true + 7.0 * rng.standard_normal(shape)
    logr = np.log(np.clip(ndimage.median_filter(r2, size=(3, 3, 1)), 1.0, None))
    logs = logs + 0.03 * rng.standard_normal(shape)
    tissue = np.ones(shape, bool)
    tissue[70:] = False
    cand = np.zeros(shape, bool)
    cand[:40] = True
    maps = SimpleNamespace(tissue=tissue, logr=logr, logs=logs, steps=np.zeros(shape), se_map=np.full(shape, 7.0))
    return cand, maps, r2, liver_patch, organ


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_s0_core_takes_the_liver_half_of_a_half_organ_piece(seed):
    """A refused piece that is half liver (22 s^-1, 0.5 mg/g), half an organ just above the
    floor (19 s^-1) whose S0 is 0.15 higher in log (5 of the region's robust SDs): the
    intake's tissue test refuses the whole piece (its S0 level is off by half the organ's),
    as on main. Cut to the region's S0 core (1 robust SD), the liver half's core is taken
    (>= 60 % of its voxels: a voxel's S0 noise keeps it in the core with probability 0.68,
    and parts are tested 2 SE above the floor, SE ~0.4 s^-1 with hundreds of white voxels;
    in the intake, holes the taken parts enclose are then filled) and the organ stays out
    (<= 1 %: its S0 noise reaches the core at 4 SD, probability 3e-5 per voxel)."""
    from r2mri._roi_patches import same_tissue

    rng = np.random.default_rng(seed)
    cand, maps, r2, liver_patch, organ = _maps(rng)
    piece = liver_patch | organ
    region = cand & maps.tissue
    assert not same_tissue(piece, region, maps.logs, maps.logr)[0]
    black = np.broadcast_to(((np.add.outer(np.arange(90), np.arange(60)) % 2) == 0)[:, :, None], piece.shape)
    take, info = fp.second_look(piece, region, region, maps, r2, ~black & maps.tissue, FLOOR, 2.0, 10, None,
                                design="s0_core")
    assert np.count_nonzero(take & liver_patch) >= 0.6 * liver_patch.sum(), np.count_nonzero(take & liver_patch)
    assert np.count_nonzero(take & organ) <= 0.01 * organ.sum(), np.count_nonzero(take & organ)
    assert info.get("taken") == "s0_core"
    none, _ = fp.second_look(piece, region, region, maps, r2, ~black & maps.tissue, FLOOR, 2.0, 10, None,
                             design="none")
    assert not none.any()


def test_enclosure_of_a_bay_and_of_a_side_strip():
    """A piece the region surrounds: 1; a strip along the region's side (an organ touching
    the liver): its ring is half region, half beyond."""
    region = np.zeros((34, 30, 1), bool)
    region[2:28, 2:28] = True
    bay = np.zeros_like(region)
    bay[10:20, 10:20] = True
    strip = np.zeros_like(region)
    strip[28:30, 2:28] = True
    assert fp.enclosure(bay, region & ~bay) == 1.0
    assert 0.4 < fp.enclosure(strip, region) < 0.5
