"""Low-iron liver taken into the ROI by pooled evidence (r2mri._roi_low_intake, issue 16).

Synthetic maps (no fit, well under a second): a textured liver region at 32 s^-1 (1 mg/g,
texture SD 0.2 in log R2 over ~4 voxels), a low-iron patch of it at 20 s^-1 (0.4 mg/g)
left out of the region, and a spleen at 16.4 s^-1 (below the parenchymal floor of 18 s^-1,
St Pierre 2005) of the same S0, every voxel with noise of SD 7 s^-1 (a voxel's R2 SE at
SNR 20 with one channel). Each voxel of the patch is within 2 of its SEs of the floor, so
the per-voxel test (r2mri._roi_evidence.above_floor) cannot take it in; the pooled median
of its ~400 white voxels has an SE of ~0.4 s^-1, 5 SEs from the floor.
"""

from __future__ import annotations

import types

import numpy as np
from scipy import ndimage

from r2mri._roi_evidence import above_floor
from r2mri._roi_grow import _smooth
from r2mri._roi_low_intake import VERDICTS, low_side_pieces

FLOOR = 18.0
SHAPE = (80, 60, 3)


def _maps(seed: int, patch: bool):
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.standard_normal(SHAPE), (4, 4, 0))
    true = 32.0 * np.exp(0.2 * tex / tex.std())
    true[:, 40:] = 16.4                      # spleen
    if patch:
        true[50:70, 22:36] = 20.0            # low-iron patch at the liver's edge
    tissue = np.ones(SHAPE, bool)
    tissue[:, 36:40] = False                 # fat between liver and spleen
    r2 = true + 7.0 * rng.standard_normal(SHAPE)
    cand = np.zeros(SHAPE, bool)
    cand[:, :36] = True
    cand[50:70, 22:36] = False               # the growing left the patch (or that part of the liver) out
    maps = types.SimpleNamespace(tissue=tissue, logr=_smooth(np.log(np.clip(r2, 1.0, None)), tissue),
                                 logs=0.03 * rng.standard_normal(SHAPE), steps=np.abs(0.03 * rng.standard_normal(SHAPE)))
    return true, r2, cand, maps


def test_low_iron_patch_is_taken_in_and_the_spleen_is_not():
    for seed in (0, 1, 2):
        true, r2, cand, maps = _maps(seed, patch=True)
        patch, spleen = true == 20.0, true == 16.4
        # the per-voxel test keeps most of the patch out (what the fix is for)
        per_voxel = above_floor(maps.logr, _smooth(np.full(SHAPE, 7.0), maps.tissue), FLOOR)
        assert np.count_nonzero(per_voxel & patch) < 0.5 * np.count_nonzero(patch)
        out, info = low_side_pieces(cand, maps, r2, FLOOR, 3.0)
        assert np.count_nonzero(out & patch) >= 0.7 * np.count_nonzero(patch), info
        assert not (out & spleen).any(), info
        assert info["pieces"] and info["pieces"][0]["median_r2_per_s"] - 2 * info["pieces"][0]["se_per_s"] > FLOOR


def _spleen_touching(seed: int):
    """No fat between liver and spleen and the same S0: only R2 tells them apart; the
    candidate holds the whole liver."""
    _, r2, cand, maps = _maps(seed, patch=False)
    rng = np.random.default_rng(seed + 10)
    r2[:, 36:40] = 16.4 + 7.0 * rng.standard_normal((80, 4, 3))
    maps.tissue[:, 36:40] = True
    maps.logr = _smooth(np.log(np.clip(r2, 1.0, None)), maps.tissue)
    cand[:, :36] = True
    return r2, cand, maps


def test_a_spleen_touching_the_liver_is_not_taken():
    for seed in (0, 1, 2):
        r2, cand, maps = _spleen_touching(seed)
        out, info = low_side_pieces(cand, maps, r2, FLOOR, 3.0)
        assert np.count_nonzero(out & ~cand) == 0, info
        # the spleen's rim pieces were tested and refused (their pooled R2 is below the floor)
        assert all(not p["above_floor"] for p in info["refused"]), info


def _same_info(a, b):
    return a["added"] == b["added"] and a["pieces"] == b["pieces"] and a["refused"] == b["refused"]


def test_record_of_a_taken_low_iron_patch():
    # branch recordhook: the record is what the loop decided; asking for it changes nothing
    true, r2, cand, maps = _maps(0, patch=True)
    patch = true == 20.0
    out0, info0 = low_side_pieces(cand, maps, r2, FLOOR, 3.0)
    record: list = []
    out, info = low_side_pieces(cand, maps, r2, FLOOR, 3.0, record=record)
    assert np.array_equal(out, out0) and _same_info(info, info0)
    assert {q["verdict"] for q in record} <= set(VERDICTS)
    taken = [q for q in record if q["verdict"] == "taken"]
    # the piece holding most of the patch was taken, with the row info reports and trimmed to the floor
    big = max(taken, key=lambda q: np.count_nonzero(q["mask"] & patch))
    assert np.count_nonzero(big["mask"] & patch) >= 0.7 * np.count_nonzero(patch)
    assert big["row"] in info["pieces"] and big["row"]["median_r2_per_s"] - 2 * big["row"]["se_per_s"] > FLOOR
    assert not (big["taken"] & ~big["mask"]).any()
    assert np.array_equal(big["taken"], big["mask"] & (maps.logr >= np.log(FLOOR)))
    # every voxel added before the fill is a recorded take; the rounds count up from 0
    union = np.any([q["taken"] for q in record], axis=0)
    assert not (union & ~out).any()
    assert [q["round"] for q in record] == sorted(q["round"] for q in record) and record[0]["round"] == 0


def test_record_of_a_refused_same_s0_spleen():
    for seed in (0, 1, 2):
        r2, cand, maps = _spleen_touching(seed)
        out0, info0 = low_side_pieces(cand, maps, r2, FLOOR, 3.0)
        record: list = []
        out, info = low_side_pieces(cand, maps, r2, FLOOR, 3.0, record=record)
        assert np.array_equal(out, out0) and _same_info(info, info0) and not (out & ~cand).any()
        tested = [q for q in record if q["verdict"] not in ("small", "above")]
        # the spleen's pieces (same S0 as the liver) reached the pooled test and were refused there,
        # below the floor; nothing taken, not even by the second look
        assert tested and all(q["verdict"] == "floor" for q in tested), [q["row"] for q in record]
        assert all(not q["taken"].any() for q in record)
        assert all(q["row"] in info["refused"] for q in sorted(tested, key=lambda q: -q["row"]["voxels"])[:5])
