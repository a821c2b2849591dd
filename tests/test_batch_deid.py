"""`r2mri batch --deidentify`: no original identifier in any output byte; keyed pseudonyms."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import pydicom
import pytest

import r2mri
import r2mri.batch as batch
from r2mri.batch._deid import Deidentifier

from _cohort_data import DICOM_EXAMS, IDENTIFIERS, _dicom_study, _nifti_exam

KEY = b"a test key that is long enough, 0123456789"


@pytest.fixture(scope="module")
def deid_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("deid")
    _dicom_study(root, 0, DICOM_EXAMS[0][0], DICOM_EXAMS[0][1])
    _nifti_exam(root, "01", "2023-02-01", 3.0, "nifti-per-echo", seed=30)
    originals = {
        "uids": sorted({str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID)
                        for f in (root / "dicom").rglob("x*")}
                       | {str(pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID)
                          for f in (root / "dicom").rglob("x*")}),
    }
    keyfile = root / "key.txt"
    keyfile.write_bytes(KEY + b"\n")
    out = root.parent / (root.name + "_out")
    res = batch.run([root / "dicom", root / "bids"], out, jobs=1, deidentify=keyfile, shift_dates=True,
                    progress=False)
    return root, out, res, originals


def _texts(path):
    """Every byte a reader could see: the file, gunzipped content, a PDF's page text."""
    data = path.read_bytes()
    yield data
    if path.name.endswith(".gz"):
        yield gzip.decompress(data)
    if path.suffix == ".pdf" and shutil.which("pdftotext"):
        yield subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True).stdout


def test_no_original_identifier_in_any_output_byte(deid_run):
    root, out, res, originals = deid_run
    assert res.n_failed == 0 and res.n_ran == 2
    secrets = set(originals["uids"])
    for ids in IDENTIFIERS.values():
        secrets |= {ids["id"], ids["birth"], ids["accession"], *ids["name"].split("^")}
    # dates are shifted (both spellings), and input paths (file names carry the BIDS label) are gone
    secrets |= {"20230110", "2023-01-10", "20230201", "2023-02-01", "sub-B_ses", str(root)}
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20 and any(p.suffix == ".dcm" for p in files) and any(p.suffix == ".pdf" for p in files)
    pdf_texts = 0
    for path in files:
        for blob in _texts(path):
            pdf_texts += path.suffix == ".pdf" and not blob.startswith(b"%PDF")
            for s in secrets:
                assert s.encode() not in blob, f"{s!r} found in {path.relative_to(out)}"
    if shutil.which("pdftotext"):
        assert pdf_texts == 2  # the page text of both report.pdf was really checked


def test_subjects_are_keyed_pseudonyms_and_dicom_says_identity_removed(deid_run):
    root, out, res, _ = deid_run
    d = Deidentifier(KEY, shift_dates=True)
    rows = {r["subject"]: r for r in res.rows}
    assert set(rows) == {d.pseudonym("PAT-A"), d.pseudonym("B")}
    shift = d.offset_days("PAT-A")
    assert 1 <= shift <= 365 and rows[d.pseudonym("PAT-A")]["study_date"] == d.shift_date("2023-01-10", "PAT-A")
    assert rows[d.pseudonym("PAT-A")]["input"].startswith("deidentified:")
    # de-identifying the headers does not change the measurement
    single = r2mri.analyze(sorted(str(p) for p in (root / "dicom").rglob("x*")))
    assert rows[d.pseudonym("PAT-A")]["lic_mg_per_g"] == pytest.approx(single.headline_lic_mg_per_g, rel=1e-12)
    assert Deidentifier(b"another key, also long enough").pseudonym("PAT-A") != d.pseudonym("PAT-A")
    dcm = sorted((out / d.pseudonym("PAT-A")).rglob("*.dcm"))
    assert len(dcm) >= 4
    for f in dcm:
        ds = pydicom.dcmread(f)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.PatientID == d.pseudonym("PAT-A") and not ds.get("PatientBirthDate")
        assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113107"]
        assert ds.StudyInstanceUID.startswith("2.25.")
    # the same key and inputs: the same pseudonymous folders, reused
    again = batch.run([root / "dicom", root / "bids"], out, jobs=1, deidentify=root / "key.txt",
                      shift_dates=True, progress=False)
    assert (again.n_ran, again.n_reused) == (0, 2)


def test_a_short_key_is_refused(tmp_path):
    (tmp_path / "k").write_bytes(b"short")
    with pytest.raises(batch.run.__globals__["InputError"], match="at least 16"):
        batch.run([tmp_path], tmp_path / "o", deidentify=tmp_path / "k")
