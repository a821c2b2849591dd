"""`r2mri batch`: cohorts made of symlinks, and the red-warning / heterogeneity columns.

A cohort folder of links to exams stored elsewhere once gave "no exam found" (exit 2);
cohort.csv counted warnings without saying which of them change the reading.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from r2mri.batch._cohort import read_cohort, row_from_report, write_cohort
from r2mri.batch._discover import discover
from r2mri.report._page_notes import warning_items

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from r2mri import phantom

    root = tmp_path_factory.mktemp("store")
    ph = phantom.generate(lic=5.0, seed=1, matrix=(24, 24), pixel_mm=16.0, n_slices=1)
    phantom.write(ph, root / "exam1", format="dicom")
    return root


def test_links_to_exams_are_followed_once_and_loops_end(store, tmp_path):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "exam1").symlink_to(store / "exam1")
    (cohort / "again").symlink_to(store / "exam1")  # a second link to the same exam
    (cohort / "loop").symlink_to(tmp_path)  # a link to an ancestor
    (cohort / "dangling").symlink_to(tmp_path / "nowhere")
    via = tmp_path / "via"
    via.symlink_to(cohort)  # the cohort itself given through a link
    for root in (cohort, via):
        exams, skipped = discover([root])
        assert len(exams) == 1
        assert [(s.path.endswith("dangling"), s.reason) for s in skipped if "truth" not in s.path] == [
            (True, "symbolic link to nothing")]
        assert len(exams[0].inputs) == 5  # five echo series of one slice, each file once


def test_cohort_row_counts_red_warnings_and_flags_heterogeneity(tmp_path):
    exam = SimpleNamespace(exam_id="S/1", subject="S", session="1", study_date=None)
    rep = {"warnings": ["heterogeneity: WARNING - patchy liver",
                        "calibration c: 1.5 T unknown; assumed from the protocol",  # red: assumed field
                        "qc: 3 % of voxels at the noise floor",
                        "liver ROI: automatic proposal; check it"],
           "qc": {"protocol_findings": [{"severity": "error", "code": "te", "message": "first TE late"}]},
           "heterogeneity": {"warning": "heterogeneity: WARNING - patchy liver"}}
    row = row_from_report(exam, rep, input_label="x", seconds=1.0)
    assert row["n_warnings"] == 4
    assert row["n_red_warnings"] == sum(r == 0 for r, _ in warning_items(rep)) == 2
    assert row["heterogeneous"] is True
    calm = row_from_report(exam, {"warnings": [], "heterogeneity": {"warning": None}}, input_label="x", seconds=1.0)
    old = row_from_report(exam, {"warnings": []}, input_label="x", seconds=1.0)  # report without the block
    assert (calm["n_red_warnings"], calm["heterogeneous"], old["heterogeneous"]) == (0, False, None)
    csv_path, json_path = write_cohort(tmp_path, [row, dict(old, exam_id="S/2", session="2")])
    for path in (csv_path, json_path):
        back = {r["exam_id"]: r for r in read_cohort(path)}
        assert (back["S/1"]["n_red_warnings"], back["S/1"]["heterogeneous"]) == (2, True)
        assert back["S/2"]["heterogeneous"] is None


def test_progress_line_says_when_an_exam_has_red_warnings():
    import io

    from r2mri.batch._run import _Progress

    stream = io.StringIO()
    progress = _Progress(2, stream=stream)
    progress({"exam_id": "S/1", "status": "ok", "lic_mg_per_g": 6.96, "n_red_warnings": 2}, True)
    progress({"exam_id": "S/2", "status": "ok", "lic_mg_per_g": 3.2, "n_red_warnings": 0}, False)
    assert stream.getvalue().splitlines() == [
        "[1/2] S/1: LIC 6.96 mg/g, 2 red warning(s) that change the reading: see its report",
        "[2/2] S/2: LIC 3.20 mg/g (up to date, reused)"]


def test_cohort_row_names_the_thresholds_inside_the_interval(tmp_path):
    """A trial statistician filtering exams whose category the measurement cannot settle:
    the demo's 3.20 (3.196-3.212) spans 3.2 mg/g; an interval in one category gives ""."""
    exam = SimpleNamespace(exam_id="S/1", subject="S", session="1", study_date=None)
    spans = {"warnings": [], "category": {"name": "Chelation target range (3.2-7 mg/g)",
                                          "ci95_thresholds_mg_per_g": [3.2]}}
    two = {"warnings": [], "category": {"name": "x", "ci95_thresholds_mg_per_g": [3.2, 7.0]}}
    clear = {"warnings": [], "category": {"name": "x", "ci95_thresholds_mg_per_g": []}}
    rows = [row_from_report(exam, r, input_label="x", seconds=1.0) for r in (spans, two, clear, {"warnings": []})]
    assert [r["category_ci95_thresholds_mg_per_g"] for r in rows] == ["3.2", "3.2;7", "", None]
    csv_path, _ = write_cohort(tmp_path, [dict(r, exam_id=f"S/{i}", session=str(i)) for i, r in enumerate(rows)])
    back = [r["category_ci95_thresholds_mg_per_g"] for r in read_cohort(csv_path)]
    assert back == ["3.2", "3.2;7", None, None]  # CSV cannot tell "" from missing
