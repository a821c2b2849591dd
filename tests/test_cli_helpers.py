"""`r2mri analyze` with its helper processes (r2mri/commands/_helper.py): the same
outputs as one process, the work done here when a helper dies, no process left over."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from r2mri import phantom as P
from r2mri.cli import main
from r2mri.commands import _helper

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the helpers need fork")

SMALL = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
VOLATILE = {"created_utc", "timings_s", "software"}


@pytest.fixture(scope="module")
def dicom_input(tmp_path_factory):
    base = tmp_path_factory.mktemp("helpers")
    ph = P.generate(lic=7.0, seed=3, **SMALL)
    return P.write(ph, base / "dicom", format="dicom")


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _uids(path: Path) -> set[str]:
    return {el.value for el in pydicom.dcmread(path).iterall() if el.VR == "UI" and isinstance(el.value, str)}


def _source_uids(path: Path, inputs: set[str]) -> list[str]:
    """UIDs of a written DICOM object that refer to the input (study, series, images)."""
    return sorted(_uids(path) & inputs)


def _same_outputs(a: Path, b: Path, dicom_input: Path) -> None:
    inputs = set().union(*(_uids(p) for p in dicom_input.rglob("*.dcm")))
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert "dicom/pm_r2.dcm" in {os.fspath(n) for n in names}
    for rel in names:
        pa, pb = a / rel, b / rel
        if pa.suffix == ".json":
            assert _strip(json.loads(pa.read_text())) == _strip(json.loads(pb.read_text())), rel
        elif pa.name.endswith(".nii.gz"):
            x, y = nib.load(pa), nib.load(pb)
            assert np.array_equal(np.asarray(x.dataobj), np.asarray(y.dataobj), equal_nan=True), rel
            assert np.array_equal(x.affine, y.affine), rel
        elif pa.suffix == ".dcm":
            assert _source_uids(pa, inputs) == _source_uids(pb, inputs), rel
            assert _source_uids(pa, inputs), rel
            if pa.name != "sc_report.dcm":  # the page capture shows the time of the run
                assert pydicom.dcmread(pa).get("PixelData") == pydicom.dcmread(pb).get("PixelData"), rel


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_helpers_give_the_outputs_of_one_process(dicom_input, tmp_path, monkeypatch, capsys):
    assert main(["analyze", str(dicom_input), "-o", str(tmp_path / "helpers")]) == 0
    with_helpers = capsys.readouterr().out
    assert _no_children_left()
    monkeypatch.setattr(_helper, "ENABLED", False)
    assert main(["analyze", str(dicom_input), "-o", str(tmp_path / "alone")]) == 0
    alone = capsys.readouterr().out
    assert alone.splitlines()[:-1] == with_helpers.splitlines()[:-1]  # all but "outputs written to OUT"
    _same_outputs(tmp_path / "alone", tmp_path / "helpers", dicom_input)
    rep = json.loads((tmp_path / "helpers" / "report.json").read_text())
    assert rep["input"]["format"] == "dicom"
    assert rep["timings_s"]["load_in_helper"] > 0


def _dies(*args, **kwargs):
    os._exit(1)


@pytest.mark.parametrize("helper", ["_load", "_write"])
def test_work_is_done_here_when_a_helper_dies(helper, dicom_input, tmp_path, monkeypatch):
    monkeypatch.setattr(_helper, helper, _dies)
    assert main(["analyze", str(dicom_input), "-o", str(tmp_path / "dead")]) == 0
    assert _no_children_left()
    monkeypatch.undo()
    monkeypatch.setattr(_helper, "ENABLED", False)
    assert main(["analyze", str(dicom_input), "-o", str(tmp_path / "alone")]) == 0
    _same_outputs(tmp_path / "alone", tmp_path / "dead", dicom_input)


def test_a_load_error_ends_the_helpers(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.dcm").write_bytes(b"not a dicom file")
    assert main(["analyze", str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("r2mri: error: ") and str(bad) in err[0], err
    assert not (tmp_path / "o").exists()
    assert _no_children_left()


def test_an_analysis_error_ends_the_helpers(dicom_input, tmp_path, capsys):
    """The writer is running (forked after the load) when the analysis fails: it is
    ended without writing anything."""
    assert main(["analyze", str(dicom_input), "--calibration", "no-such-curve", "-o", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("r2mri: error: ")
    assert not (tmp_path / "o").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o")]
    assert _no_children_left()
