"""The in-plane holes the dark-rim join encloses are filled (issue 16, branch coarse23).

On ``heterogeneous-coarse-1.5t`` at 30 mg/g, SNR 20, 8 channels, the candidate grew around
iron-rich liver whose first echo was barely above the noise floor: neither grown nor decayed
to the floor, it stayed out as holes once :func:`join_decayed_rim` closed the rim around it.
"""

from __future__ import annotations

import numpy as np

from r2mri._roi_iron import DARK_RIM_VOXELS, fill_joined_holes, join_decayed_rim


def _case():
    """40 x 40 x 2: a grown candidate (rows 5-24, columns 5-34) with below it a rim of liver
    decayed to the floor (rows 25-27, DARK_RIM_VOXELS deep), in which two voxels (rows
    25-26, column 12) are liver neither grown nor decayed (first echo barely above the
    floor) and a column (rows 25-27, column 20) is not decayed either, open to the outside;
    a hole the candidate already had (a refused piece, rows 10-12, columns 15-17) in
    slice 0 only."""
    shape = (40, 40, 2)
    cand = np.zeros(shape, bool)
    cand[5:25, 5:35] = True
    cand[10:13, 15:18, 0] = False  # a hole before the join
    decayed = np.zeros(shape, bool)
    decayed[25:25 + DARK_RIM_VOXELS, 5:35] = True
    notch = np.zeros(shape, bool)
    notch[25:27, 12] = True
    decayed[notch] = False
    decayed[25:28, 20] = False  # a gap through the rim: not a hole
    return cand, decayed, notch


def test_holes_enclosed_by_the_rim_join_are_filled():
    cand, decayed, notch = _case()
    joined, n_joined = join_decayed_rim(cand, decayed, np.ones_like(cand))
    assert n_joined == int(decayed.sum())  # the whole rim is within reach
    assert not (joined & notch).any()  # the join alone leaves them out, enclosed
    out, n_filled = fill_joined_holes(cand, joined)
    assert n_filled == int(notch.sum()) == 4
    assert (out & notch).sum() == notch.sum()
    assert not out[25:28, 20].any()  # open to the outside: stays out
    assert not out[10:13, 15:18, 0].any()  # the candidate's own hole stays out
    assert np.array_equal(out & ~notch, joined)  # nothing else changes


def test_no_join_no_fill():
    cand, decayed, notch = _case()
    out, n = fill_joined_holes(cand, cand)
    assert n == 0 and np.array_equal(out, cand)
