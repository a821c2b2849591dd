"""Protocol findings on per-TE series, multi-echo series and in-memory images; the load CLI."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

import r2mri
from r2mri.cli import main
from r2mri.io import Finding, check_protocol

import dicom_fixtures as fx


def _codes(img):
    return {f.code: f.severity for f in img.protocol_report()}


def test_ferriscan_protocol_is_clean(tmp_path):
    fx.write_per_te_series(tmp_path)
    img = r2mri.load(tmp_path)
    findings = img.protocol_report()
    assert [f.code for f in findings] == ["ferriscan-echo-times"]
    assert findings[0].severity == "info"
    assert findings[0].details["echo_times_ms"] == [6.0, 9.0, 12.0, 15.0, 18.0]


def test_tr_and_flip_differences_are_errors(tmp_path):
    _, truth = fx.write_per_te_series(tmp_path, n_slices=1, tr_ms=[1000, 1000, 1200, 1000, 1000],
                                      flip_deg=[90, 90, 90, 90, 80])
    # the automatic grouping leaves the two series out (an error, tests/test_load_grouping.py);
    # chosen explicitly, they load and the differences are error findings
    assert _codes(r2mri.load(tmp_path))["series-left-out"] == "error"
    f = {x.code: x for x in r2mri.load(tmp_path, series=truth["series_uids"]).protocol_report()}
    assert f["repetition-time-differs"].severity == "error"
    per = f["repetition-time-differs"].details["per_series"]
    assert per[truth["series_uids"][2]] == 1200.0 and per[truth["series_uids"][0]] == 1000.0
    assert f["flip-angle-differs"].severity == "error"
    assert f["flip-angle-differs"].details["per_series"][truth["series_uids"][4]] == 80.0
    # errors are listed first
    sev = [x.severity for x in r2mri.load(tmp_path, series=truth["series_uids"]).protocol_report()]
    assert sev == sorted(sev, key=["error", "warning", "info"].index)


def test_receive_coil_and_matrix_differences_are_warnings(tmp_path):
    paths, _ = fx.write_per_te_series(tmp_path, n_slices=1)
    ds = pydicom.dcmread(paths[1])
    ds.ReceiveCoilName = "Body18"
    ds.AcquisitionMatrix = [0, 128, 96, 0]
    ds.save_as(paths[1])
    c = _codes(r2mri.load(tmp_path))
    assert c["receive-coil-differs"] == "warning"
    assert "acquisition-matrix-differs" not in c  # only one series records it: nothing to compare
    ds = pydicom.dcmread(paths[2])
    ds.AcquisitionMatrix = [0, 256, 192, 0]
    ds.save_as(paths[2])
    assert _codes(r2mri.load(tmp_path))["acquisition-matrix-differs"] == "warning"


def test_rescale_difference_is_info(tmp_path):
    fx.write_per_te_series(tmp_path, n_slices=1, rescale=[(1, 0), (2, 0), (1, 0), (1, 0), (1, 0)])
    assert _codes(r2mri.load(tmp_path))["rescale-differs"] == "info"


def test_philips_scale_in_some_series_only_is_error(tmp_path):
    paths, _ = fx.write_per_te_series(tmp_path, n_slices=1, philips_scale=[2.0] * 5)
    ds = pydicom.dcmread(paths[0])
    del ds[0x2005, 0x0010]
    del ds[0x2005, 0x100E]
    del ds[0x2005, 0x100D]
    ds.save_as(paths[0])
    assert _codes(r2mri.load(tmp_path))["philips-scale-incomplete"] == "error"


def test_echo_times_not_ferriscan_and_too_few(tmp_path):
    fx.write_per_te_series(tmp_path, n_slices=1, echo_times_ms=(5, 10))
    c = _codes(r2mri.load(tmp_path))
    assert c["too-few-echoes"] == "error"
    assert c["echo-times-not-ferriscan"] == "warning"


def test_field_strength(tmp_path):
    fx.write_per_te_series(tmp_path / "a", n_slices=1, field_t=None)
    assert _codes(r2mri.load(tmp_path / "a"))["field-strength-missing"] == "warning"
    fx.write_per_te_series(tmp_path / "b", n_slices=1, field_t=0.55)
    assert _codes(r2mri.load(tmp_path / "b"))["field-strength-unsupported"] == "warning"
    # Siemens "3 T" systems report 2.89 T: a 3 T finding, not "no calibration applies",
    # agreeing with r2mri.calibration.FIELD_TOLERANCE_T
    fx.write_per_te_series(tmp_path / "c", n_slices=1, field_t=2.89362)
    c = _codes(r2mri.load(tmp_path / "c"))
    assert c["field-strength-3t"] == "warning" and "field-strength-unsupported" not in c


def test_clipping_counted_at_max_stored_value(tmp_path):
    paths, _ = fx.write_multiecho_series(tmp_path, n_slices=1, rows=4, cols=7)
    ds = pydicom.dcmread(paths[0])
    px = ds.pixel_array.copy()
    px[0, :3] = 4095  # BitsStored 12
    ds.PixelData = px.tobytes()
    ds.save_as(paths[0])
    img = r2mri.load(tmp_path)
    f = {x.code: x for x in img.protocol_report()}["clipped-voxels"]
    assert f.severity == "warning"
    assert sum(f.details["clipped_voxels_per_echo"]) == 3
    assert f.details["voxels_per_echo"] == 28


def test_in_memory_image_without_metadata():
    img = r2mri.MultiEchoImage(np.ones((2, 2, 1, 2)), [0.01, 0.02])
    codes = {f.code: f.severity for f in check_protocol(img)}
    assert codes == {"too-few-echoes": "error", "field-strength-missing": "warning", "sequence-unknown": "info"}
    cpmg = r2mri.MultiEchoImage(np.ones((2, 2, 1, 4)), [0.01, 0.02, 0.03, 0.04], field_strength_t=1.5,
                                sequence="SE-CPMG", echo_train_length=4)
    assert {f.code for f in check_protocol(cpmg)} == {"cpmg-echo-train", "echo-times-not-ferriscan"}
    # a multi-echo gradient-echo train is not a spin-echo train, and is judged as R2* (no FerriScan TEs)
    gre = r2mri.MultiEchoImage(np.ones((2, 2, 1, 4)), [0.001, 0.002, 0.003, 0.004], field_strength_t=1.5,
                               sequence="GRE", echo_train_length=4)
    codes = {f.code: f.severity for f in check_protocol(gre)}
    assert codes == {"not-spin-echo": "info", "gre-echo-count": "warning", "gre-echo-spacing": "info",
                     "gre-r2star-window": "info", "gre-phase": "info"}


def test_finding_to_dict_is_json_and_severity_checked():
    f = Finding("error", "x", "msg", {"a": np.float64(1.5), "b": np.arange(2)})
    assert json.loads(json.dumps(f.to_dict())) == {"severity": "error", "code": "x", "message": "msg",
                                                    "details": {"a": 1.5, "b": [0, 1]}}
    assert str(f) == "[error] x: msg"
    with pytest.raises(ValueError, match="severity"):
        Finding("fatal", "x", "msg")


# ---------------------------------------------------------------------- CLI
def test_cli_load_summary_and_exit_codes(tmp_path, capsys):
    fx.write_per_te_series(tmp_path / "ok", n_slices=2)
    assert main(["load", str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    assert "series found: 5" in out
    assert "echo times (ms): 6, 9, 12, 15, 18  [5 echoes]" in out
    assert "matrix (x, y, z): 5 x 6 x 2" in out
    assert "voxel size (mm): 1.25 x 1.5 x 7.5" in out
    assert "field strength: 1.5 T" in out
    assert "[info] ferriscan-echo-times" in out

    fx.write_per_te_series(tmp_path / "tr", n_slices=1, tr_ms=[1000, 900, 1000, 1000, 1000])
    assert main(["load", str(tmp_path / "tr"), "--json"]) == 1
    js = json.loads(capsys.readouterr().out)
    assert js["findings"][0]["code"] == "series-left-out"  # the TR 900 ms series (TE 9 ms)
    assert js["echo_times_ms"] == [6, 12, 15, 18]
    assert main(["load", str(tmp_path / "tr"), "--json", "--series", "10,11,12", "--series", "13,14"]) == 1
    js = json.loads(capsys.readouterr().out)
    assert js["findings"][0]["code"] == "repetition-time-differs"
    assert js["echo_times_ms"] == [6, 9, 12, 15, 18]

    (tmp_path / "empty").mkdir()
    assert main(["load", str(tmp_path / "empty")]) == 2
    assert "r2mri: error: no DICOM image found" in capsys.readouterr().err


def test_cli_series_and_echo_times(tmp_path, capsys):
    _, me = fx.write_multiecho_series(tmp_path, with_te=False)
    assert main(["load", str(tmp_path), "--series", me["series_uids"][0],
                 "--echo-times-ms", "10", "20", "30", "40"]) == 0
    out = capsys.readouterr().out
    assert "echo times (ms): 10, 20, 30, 40" in out and "echo-times-from-user" in out
