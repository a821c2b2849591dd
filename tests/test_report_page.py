"""Report page geometry: slices are shown radiologically whatever the acquisition plane."""

from __future__ import annotations

import numpy as np
import pytest

from r2mri.report._page import display_plane

# RAS affines of DICOM-standard acquisitions (LPS row/column cosines converted to RAS):
AXIAL = np.diag([-1.0, -1.0, 1.0, 1.0])  # rows of the DICOM frame toward L, columns toward P
RAS_AXIAL = np.eye(4)  # array x toward patient Right: must be flipped for display
CORONAL = np.array([[-1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])  # i -> L, j -> F


@pytest.mark.parametrize(
    "affine, plane, expect",
    [
        (AXIAL, "axial", lambda a: a.T),
        (RAS_AXIAL, "axial", lambda a: a.T[::-1, ::-1]),
        (CORONAL, "coronal", lambda a: a.T),
    ],
)
def test_display_plane(affine, plane, expect):
    arr = np.arange(12.0).reshape(4, 3)
    d = display_plane(affine)
    assert d["plane"] == plane
    np.testing.assert_array_equal(d["frame"](arr), expect(arr))
    assert d["labels"] == ("R", "L")


def test_patient_orientation_of_the_page():
    assert display_plane(AXIAL)["patient_orientation"] == ("L", "P")
    assert display_plane(CORONAL)["patient_orientation"] == ("L", "F")


def test_header_says_when_the_input_has_more_than_one_series():
    """A FerriScan input is five series (one per echo): the header must not read as if
    the first (TE 6 ms) were the whole acquisition."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _report_fake import fake_result

    from r2mri.report import report_dict
    from r2mri.report._page import render_page

    res = fake_result()
    rep = report_dict(res)
    rep["input"]["series_description"] = "LIC SE TE 6 ms"
    rep["input"]["series"] = [{"series_number": n, "series_description": f"LIC SE TE {te} ms"}
                              for n, te in zip(range(1, 6), (6, 9, 12, 15, 18))]
    texts = [t.get_text() for ax in render_page(res, rep).axes for t in ax.texts]
    assert "Series: LIC SE TE 6 ms (+4 more series: #2, #3, #4, #5)" in texts
