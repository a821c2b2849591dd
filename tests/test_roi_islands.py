"""Slice continuity (r2mri/_roi_islands.py): pieces of a grown candidate reached only
through a thick slice are dropped; the liver's own cross-sections are kept."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from r2mri._roi_islands import slice_continuity


def _disk(shape, ci, cj, r):
    i, j = np.mgrid[: shape[0], : shape[1]]
    return (i - ci) ** 2 + (j - cj) ** 2 <= r * r


def test_neighbour_reached_through_the_next_slice_is_dropped():
    """Liver in 4 slices shrinking toward the dome; a 'heart' in slices 2-3, apart from
    the liver in-plane, whose edge lies over the liver of slice 1 (the path the 3-D
    growth takes)."""
    shape = (60, 60, 4)
    cand = np.zeros(shape, bool)
    for k, r in enumerate((20, 18, 15, 11)):
        cand[:, :, k] = _disk(shape[:2], 30, 24, r)
    heart = _disk(shape[:2], 30, 49, 8)
    cand[:, :, 2] |= heart
    cand[:, :, 3] |= heart
    assert (heart & cand[:, :, 1]).any()  # the overlap a 6-connected growth crosses
    kept, info = slice_continuity(cand)
    assert not (kept[:, :, 2:] & heart[:, :, None]).any()
    for k in range(4):  # every liver cross-section kept whole
        liver_k = _disk(shape[:2], 30, 24, (20, 18, 15, 11)[k])
        assert (kept[:, :, k] & liver_k).sum() == liver_k.sum()
    assert info["dropped"] == 2 and info["dropped_voxels"] == 2 * heart.sum()


def test_single_slice_and_uniform_candidates_are_untouched():
    c = np.zeros((20, 20, 1), bool)
    c[2:8, 2:8, 0] = c[12:18, 12:18, 0] = True
    kept, info = slice_continuity(c)
    assert (kept == c).all() and info["dropped"] == 0
    c3 = np.repeat(_disk((40, 40), 20, 20, 12)[:, :, None], 5, axis=2)
    kept, info = slice_continuity(c3)
    assert (kept == c3).all() and info["dropped"] == 0


@pytest.mark.parametrize("spec", ["ferriscan-1.5t-lic7", "heterogeneous-focal-1.5t"])
def test_phantom_livers_keep_every_piece(spec):
    """The shipped phantoms' true liver masks (vessels and all) lose nothing."""
    from r2mri.phantom import generate

    ph = generate(spec, seed=1, matrix=(96, 96), pixel_mm=4.0)
    lm = np.asarray(ph.truth.liver_mask, bool)
    kept, info = slice_continuity(lm)
    assert info["dropped"] == 0 and (kept == lm).all()


REAL = Path(os.environ.get("R2MRI_REALDATA", "/work/realdata")) / "ismrm2012" / "12.mat"


@pytest.mark.skipif(not REAL.is_file(), reason="real data (benchmarks/real_liver.py) not present")
def test_real_liver_roi_has_no_slice_crossing_islands():
    """ISMRM 2012 case 12 (1.5 T, 3 slices): the ROI of stop 20 had 11 islands outside the
    right lobe's region (tissue to the patient's left reached through the next slice, found
    by this rule). Since the ROI grows only through voxels whose R2* the data determine
    (r2mri/_roi_evidence.py) it holds one piece in slices 0 and 2 and nothing for the rule
    to drop: the rule stays unwired (docs/statistics.md, "ROI islands")."""
    import r2mri
    from benchmarks.real_liver import image, load_ismrm, roi_islands

    data, te, b0 = load_ismrm(REAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = r2mri.analyze(image(data, te, b0, 1.5), threads=1)
    isl = roi_islands(res)
    assert isl["roi_pieces_per_slice"][0] == isl["roi_pieces_per_slice"][2] == 1
    assert isl["candidate_pieces_dropped"] == 0 and isl["roi_voxels_dropped"] == 0
    # a normal liver (R2* ~27 s^-1, 0.54 mg/g) lies inside the normal-liver R2* range: the
    # low-iron warning is true for it (r2mri/_roi_low_iron.py: 99 % of the ROI)
    assert res.roi.options["low_iron"]["fraction"] > 0.9
    assert any("normal-liver range" in w for w in res.roi.warnings)
