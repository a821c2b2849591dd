"""benchmarks.floorpiece's per-voxel intake verdicts come from the library's own record
(r2mri._roi_low_intake.low_side_pieces(record=...), branch recordhook), on the synthetic maps
of tests/test_roi_low_intake.py (no fit, about a second)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from benchmarks.floorpiece import INTAKE_LABELS, intake_verdicts  # noqa: E402
from r2mri._roi_low_intake import low_side_pieces  # noqa: E402
from test_roi_low_intake import FLOOR, _maps, _spleen_touching  # noqa: E402


def _named(code):
    return {name: int(np.count_nonzero(code == c)) for c, name in INTAKE_LABELS.items()}


def test_verdicts_of_a_taken_patch_are_the_library_take():
    true, r2, cand, maps = _maps(0, patch=True)
    out, _ = low_side_pieces(cand, maps, r2, FLOOR, 3.0)
    record: list = []
    low_side_pieces(cand, maps, r2, FLOOR, 3.0, record=record)
    code, pieces = intake_verdicts(cand, maps, r2, FLOOR, 3.0, None)
    # the voxels coded taken are exactly the library's takes (taken voxels join the candidate and
    # are never in a later piece), all in its result
    assert np.array_equal(code == 1, np.any([q["taken"] for q in record], axis=0))
    assert not ((code == 1) & ~out).any()
    # most of the patch was in a tested piece (its last verdict: taken, or trimmed and tested again)
    patch = true == 20.0
    assert np.count_nonzero((code >= 1) & (code <= 6) & patch) >= 0.7 * np.count_nonzero(patch)
    assert np.count_nonzero((code == 1) & patch) >= 0.5 * np.count_nonzero(patch)
    # no taken or trimmed voxel in the spleen
    assert not ((code >= 1) & (code <= 2) & (true == 16.4)).any()
    assert pieces and pieces[0]["round"] == 0 and pieces[0]["same"] and pieces[0]["above_floor"]


def test_verdicts_of_a_refused_spleen_are_floor():
    r2, cand, maps = _spleen_touching(1)
    code, pieces = intake_verdicts(cand, maps, r2, FLOOR, 3.0, None)
    n = _named(code)
    assert n["intake_taken"] == 0 and n["intake_trimmed"] == 0 and n["intake_s0"] == 0
    assert n["intake_floor"] >= 400  # seed 1: the spleen's pieces of 478 and 35 voxels
    assert all(not p["above_floor"] for p in pieces)
