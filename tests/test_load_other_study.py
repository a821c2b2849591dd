"""A folder holding series of another patient or study: named, never dropped silently.

r2mri/io/_other_study.py: the series of another patient or study that the dataset does
not use are a warning finding (``series-other-study``) naming each (number, description,
UID tail) and the reason; multi-echo candidates of two patients are refused in one line
naming both; a ``series=`` choice mixing patients or studies is refused.
"""

from __future__ import annotations

import json
import re

import pydicom
import pytest

import r2mri
from r2mri.cli import main
from r2mri.errors import InputError

import dicom_fixtures as fx


def _retag(paths, **values) -> None:
    for p in paths:
        ds = pydicom.dcmread(p)
        for k, v in values.items():
            setattr(ds, k, v)
        ds.save_as(p)


@pytest.fixture()
def two_patients(tmp_path):
    """Patient P-001: FerriScan per-TE set (series 10-14). Patient P-002: a 4-echo CPMG
    series (number 5), and a single-echo localizer (number 1) of P-002's study."""
    _, a = fx.write_per_te_series(tmp_path / "a")
    paths, b = fx.write_multiecho_series(tmp_path / "b", field_t=1.5)
    _retag(paths, PatientID="P-002")
    loc, _ = fx.write_per_te_series(tmp_path / "loc", echo_times_ms=(4.0,), study_uid=b["study_uid"],
                                    for_uid=b["for_uid"], first_series_number=1)
    _retag(loc, PatientID="P-002", SeriesDescription="localizer")
    return tmp_path, a, b


def test_two_patients_multi_echo_series_are_refused_naming_both(two_patients):
    d, a, b = two_patients
    with pytest.raises(InputError) as e:
        r2mri.load(d)
    msg = str(e.value)
    assert "\n" not in msg and "2 patients" in msg
    assert re.search(r"patient [AB]: per-te-series series 10,11,12,13,14", msg)
    assert re.search(r"patient [AB]: multi-echo series 5 \['MSE'\]", msg)
    assert "P-001" not in msg and "P-002" not in msg  # no PatientID in messages (they reach logs)
    assert "--series N,N" in msg  # numbers do not repeat: the numbers choose
    found = {s["series_number"]: s for s in r2mri.io.list_datasets(d)["series"]}
    assert {found[5]["patient"], found[10]["patient"]} == {"A", "B"} and "patient_id" not in found[5]
    assert found[5]["study_instance_uid"] == b["study_uid"] != found[10]["study_instance_uid"]


def test_chosen_patient_loads_and_names_the_other_patients_series(two_patients):
    d, a, b = two_patients
    img = r2mri.load(d, series=[10, 11, 12, 13, 14])
    assert img.metadata["series_instance_uids"] == a["series_uids"]
    other = img.metadata["series_other_study"]
    assert [s["series_number"] for s in other] == [1, 5]
    assert [r["code"] for r in other[1]["reasons"]] == ["other-patient", "other-study"]
    f = {x.code: x for x in img.protocol_report()}["series-other-study"]
    assert f.severity == "warning"
    assert "2 series of another patient or study" in f.message
    assert "#5 'MSE'" in f.message and "#1 'localizer'" in f.message
    assert "other patient (its PatientID differs from the dataset's)" in f.message and "P-00" not in f.message
    # the other patient's CPMG series, chosen, names the FerriScan series in turn
    img = r2mri.load(d, series=5)
    assert [s["series_number"] for s in img.metadata["series_other_study"]] == [10, 11, 12, 13, 14]


def test_series_of_two_patients_or_studies_refused(two_patients, tmp_path):
    d, a, b = two_patients
    with pytest.raises(InputError, match=r"and series #10 .* have different PatientIDs: choose the series of one patient"):
        r2mri.load(d, series=[10, 11, 1])


def test_same_patient_other_study_is_a_warning_not_a_refusal(tmp_path):
    """One patient, two studies (baseline and follow-up): the rule picks as before, and
    the other study's series are named (a single-echo series of another study too)."""
    _, pt = fx.write_per_te_series(tmp_path / "pt")
    _, me = fx.write_multiecho_series(tmp_path / "me", field_t=1.5)
    img = r2mri.load(tmp_path)
    assert img.metadata["series_instance_uids"] == pt["series_uids"]
    (s,) = img.metadata["series_other_study"]
    assert s["series_instance_uid"] == me["series_uids"][0]
    assert [r["code"] for r in s["reasons"]] == ["other-study"]
    assert s["echo_times_ms"] == [10.0, 20.0, 30.0, 40.0]
    # anonymised (PatientID blank): not compared, the study still is
    _retag(list((tmp_path / "me").glob("*.dcm")), PatientID="")
    (s,) = r2mri.load(tmp_path).metadata["series_other_study"]
    assert [r["code"] for r in s["reasons"]] == ["other-study"]


def test_other_patients_single_echo_series_beside_the_liver_series(tmp_path):
    """The audit's case: another patient's series (no multi-echo dataset of its own) beside
    the FerriScan set loads the set, with the warning naming the series and the reason."""
    _, a = fx.write_per_te_series(tmp_path / "a")
    loc, _ = fx.write_per_te_series(tmp_path / "b", echo_times_ms=(4.0,), first_series_number=3)
    _retag(loc, PatientID="P-XYZ", SeriesDescription="T1 SE")
    img = r2mri.load(tmp_path)
    assert img.metadata["series_instance_uids"] == a["series_uids"]
    f = {x.code: x for x in img.protocol_report()}["series-other-study"]
    assert f.message.startswith("1 series of another patient or study in the input not used")
    assert "#3 'T1 SE'" in f.message and "other patient (its PatientID differs" in f.message and "P-XYZ" not in f.message
    assert "other study" in f.message


def test_one_study_has_no_finding(tmp_path):
    fx.write_per_te_series(tmp_path)
    img = r2mri.load(tmp_path)
    assert img.metadata["series_other_study"] == []
    assert "series-other-study" not in {f.code for f in img.protocol_report()}


def test_cli_load_and_analyze_report_json(tmp_path, capsys):
    """Terminal and report.json: a FerriScan phantom beside another patient's CPMG series."""
    from r2mri.phantom import generate, write

    ph = generate("ferriscan-1.5t-lic3.2", matrix=(24, 20), pixel_mm=14.0, n_slices=1)
    write(ph, tmp_path / "ph", format="dicom")
    paths, _ = fx.write_multiecho_series(tmp_path / "ph" / "dicom" / "other", field_t=1.5)
    _retag(paths, PatientID="P-002")
    d = tmp_path / "ph" / "dicom"
    assert main(["load", str(d)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 patients" in err[0] and "'MSE'" in err[0]
    # the phantom's series 5 and the CPMG series 5: numbers repeat, the message offers UIDs
    assert "series= with the SeriesInstanceUIDs given here (series numbers repeat" in err[0]
    nums = ",".join(r2mri.io.list_datasets(d)["candidates"][0]["series_instance_uids"])
    assert f"UIDs {nums})" in err[0]  # the full UIDs to pass, comma-separated as --series takes them
    assert main(["load", str(d), "--series", nums]) == 0
    assert "[warning] series-other-study: 1 series of another patient or study" in capsys.readouterr().out
    mask = tmp_path / "ph" / "truth" / "liver_mask.nii.gz"
    assert main(["analyze", str(d), "--series", nums, "--mask", str(mask), "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "warning: protocol: series-other-study: 1 series of another patient or study" in err
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    (f,) = [x for x in rep["qc"]["protocol_findings"] if x["code"] == "series-other-study"]
    assert f["severity"] == "warning" and "#5 'MSE'" in f["message"] and "P-002" not in f["message"]
