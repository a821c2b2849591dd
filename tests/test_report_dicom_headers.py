"""DICOM outputs from de-identified and minimal source headers, and what the SR carries.

Issue 12 item 2: a source without a Type 2 or Type 3 attribute (removed by a
de-identifier, left out by a research export) still gives every output, and each DICOM
output passes dciodvfy without errors (Type 2 written empty, Type 3 left out). Item 6:
the TID 1500 SR read back equals report.json; every output names r2mri in its
ContributingEquipmentSequence.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import warnings

import nibabel as nib
import numpy as np
import pydicom
import pytest
from _tools import dciodvfy, need_tool

import r2mri
from r2mri import phantom as P
from r2mri.cli import main
from r2mri.report import report_dict
from r2mri.report._dicom import write_dicom
from r2mri.report._sr import CATEGORY_CODES, calibration_status

SMALL = dict(matrix=(32, 32), pixel_mm=10.0, n_slices=2)
KINDS = ("pm_r2", "pm_lic", "seg_liver_roi", "sr_report", "sc_report")
TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
         "AccessionNumber", "ReferringPhysicianName")
OTHERS = ("Manufacturer", "InstitutionName", "SeriesDescription", "BodyPartExamined")
STRIPPED = TYPE2 + OTHERS
PAGE_RGB = np.tile(np.arange(48, dtype=np.uint8)[None, :, None] * 5, (64, 1, 3))  # a stand-in page


@pytest.fixture(scope="module")
def phantom_dicom(tmp_path_factory):
    base = tmp_path_factory.mktemp("deid")
    ph = P.generate(lic=7.0, seed=3, **SMALL)
    src = P.write(ph, base / "ph", format="dicom")
    outline = np.isin(ph.truth.labels, [P.LABELS["liver"], P.LABELS["vessel"]])
    return base, ph, src / "dicom", outline


@pytest.fixture(scope="module")
def analysed(phantom_dicom):
    _, _, dicom_dir, outline = phantom_dicom
    res = r2mri.analyze(str(dicom_dir), mask=outline)
    return res, report_dict(res)


def _with_sources(res, datasets):
    return dataclasses.replace(res, image=dataclasses.replace(res.image, source_datasets=datasets))


def _stripped(datasets, keywords):
    out = []
    for ds in datasets:
        ds = copy.deepcopy(ds)
        for kw in keywords:
            if kw in ds:
                delattr(ds, kw)
        out.append(ds)
    return out


def _assert_conformant(paths):
    need_tool("dciodvfy")
    assert set(paths) >= set(KINDS)
    for key in KINDS:
        errors, _ = dciodvfy(paths[key])
        assert not errors, (key, errors)


@pytest.mark.parametrize("keyword", STRIPPED)
def test_a_missing_attribute_costs_no_dicom_output(analysed, tmp_path, keyword):
    res, rep = analysed
    assert keyword in res.image.source_datasets[0]  # the phantom has it: the test removes it
    paths = write_dicom(_with_sources(res, _stripped(res.image.source_datasets, [keyword])), rep, tmp_path,
                        page_rgb=PAGE_RGB)
    _assert_conformant(paths)
    for key in KINDS:
        ds = pydicom.dcmread(paths[key])
        if keyword in TYPE2:  # Type 2: present and empty
            assert keyword in ds and ds[keyword].value in ("", None), (key, keyword)
        elif keyword == "InstitutionName":  # Type 3: left out, never invented
            assert keyword not in ds, key
        elif keyword == "Manufacturer":  # ours, not the source's
            assert ds.Manufacturer == "r2mri", key
    if keyword == "BodyPartExamined":
        assert pydicom.dcmread(paths["pm_r2"]).BodyPartExamined == "ABDOMEN"  # a liver analysis


def test_invalid_type2_values_are_written_empty_and_the_source_is_untouched(analysed, tmp_path):
    """What anonymisers write (a date "ANON", a sex "U", ISO dates and times, an over-long
    accession number) is not valid for the VR: written empty, the source left as it was.
    An invalid Type 3 attribute (an age without its unit letter) is left out."""
    res, rep = analysed
    bad = {"PatientBirthDate": "ANON", "PatientSex": "U", "StudyDate": "2026-01-01", "StudyTime": "12:00:00",
           "AccessionNumber": "X" * 20}
    sources = copy.deepcopy(res.image.source_datasets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom warns about the invalid values: intended
        for ds in sources:
            for kw, value in bad.items():
                setattr(ds, kw, value)
            ds.PatientAge = "45"  # Patient Study module, Type 3; AS wants "045Y"
        paths = write_dicom(_with_sources(res, sources), rep, tmp_path, page_rgb=PAGE_RGB)
    _assert_conformant(paths)
    for key in KINDS:
        ds = pydicom.dcmread(paths[key])
        for kw in bad:
            assert ds[kw].value in ("", None), (key, kw)
        assert "PatientAge" not in ds, key
    assert str(sources[0].PatientBirthDate) == "ANON"


@pytest.fixture(scope="module")
def stripped_run(phantom_dicom):
    """`r2mri analyze` on the phantom with every attribute of STRIPPED removed from every file."""
    base, ph, dicom_dir, outline = phantom_dicom
    stripped = base / "stripped"
    shutil.copytree(dicom_dir, stripped)
    for f in sorted(stripped.rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        for kw in STRIPPED:
            if kw in ds:
                delattr(ds, kw)
        ds.save_as(f)
    mask = base / "outline.nii.gz"
    nib.save(nib.Nifti1Image(outline.astype(np.uint8), ph.image.affine), mask)
    out = base / "out"
    code = main(["analyze", str(stripped), "--mask", str(mask), "-o", str(out)])
    return out, code


def test_all_attributes_missing_together_keeps_every_output(stripped_run, tmp_path):
    out, code = stripped_run
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"report.json", "report.pdf", "report.png", "settings.json", "R2map.nii.gz", "T2map.nii.gz",
            "S0map.nii.gz", "desc-LIC_map.nii.gz", "desc-liver_mask.nii.gz", "dicom"} <= names
    rep = json.loads((out / "report.json").read_text())
    assert rep["input"]["format"] == "dicom" and rep["input"]["patient_id"] is None
    _assert_conformant({key: out / "dicom" / f"{key}.dcm" for key in KINDS})


def _sr_items(ds):
    """(value type, concept code value) -> list of values, over the whole content tree."""
    found: dict = {}

    def walk(items):
        for it in items:
            code = it.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in it else None
            if it.ValueType == "TEXT":
                found.setdefault(("TEXT", code), []).append(it.TextValue)
            elif it.ValueType == "CODE":
                found.setdefault(("CODE", code), []).append(it.ConceptCodeSequence[0])
            walk(it.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return found


def test_sr_carries_the_report_values(stripped_run):
    """Each headline value of report.json is in the SR, as a coded measurement or a text item."""
    import highdicom as hd

    out, _ = stripped_run
    rep = json.loads((out / "report.json").read_text())
    sr = hd.sr.srread(out / "dicom" / "sr_report.dcm")
    (group,) = sr.content.get_volumetric_roi_measurement_groups()
    num = {}
    for m in group.get_measurements():
        key = (m.name.value, m.unit.value, None if m.derivation is None else m.derivation.meaning,
               None if m.method is None else m.method.value)
        assert key not in num, key  # every measurement is told apart by its name, unit, derivation, method
        num[key] = m.value
    lic, r2 = rep["lic_mg_per_g"], rep["r2_per_s"]
    assert r2["estimator"] == "tile-mixture"
    expected = {
        ("LIC-MEANR2", "mg/g", None, None): lic["of_mean_r2"],
        ("LIC-MEANR2", "umol/g", None, None): rep["lic_umol_per_g"]["of_mean_r2"],
        ("LIC-CI95-LOW", "mg/g", None, None): lic["ci95"][0],
        ("LIC-CI95-HIGH", "mg/g", None, None): lic["ci95"][1],
        ("126394", "/s", "Mean", "tile-mixture"): r2["headline_mean"],
        ("126394", "/s", "Mean", "voxel-mean"): r2["mean"],
        ("126394", "/s", "Median", None): r2["median"],
        ("LIC-DW", "mg/g", "Mean", "voxel-mean"): lic["mean"],
        ("LIC-DW", "mg/g", "Median", None): lic["median"],
        ("118565006", "mL", None, None): rep["roi"]["volume_ml"],  # SCT Volume
    }
    assert set(num) == set(expected)
    for key, value in expected.items():
        assert num[key] == pytest.approx(value, rel=1e-9), key
    items = _sr_items(pydicom.dcmread(out / "dicom" / "sr_report.dcm"))
    (category,) = items[("CODE", "LIC-CATEGORY")]
    assert category.CodeValue == CATEGORY_CODES[rep["category"]["name"]]
    assert category.CodeMeaning == rep["category"]["label"]
    assert category.CodingSchemeDesignator == "99R2MRI"
    cal = rep["calibration"]
    assert items[("TEXT", "CALIBRATION")] == [cal["name"]]
    assert items[("TEXT", "CALIB-STATUS")] == [calibration_status(cal)]
    # st-pierre-2005: said in words, as its file's plain status, not as a developer flag
    assert calibration_status(cal) == ("Published calibration shipped with r2mri: formula as widely quoted; "
                                       "the original paper was not available to check it")
    assert items[("TEXT", "CALIB-CITATION")] == [cal["citation_text"]]
    assert items[("TEXT", "DECAY-MODEL")] == [rep["model"]["name"]]
    assert rep["warnings"] and items[("TEXT", "QC-WARNING")] == rep["warnings"]


def test_private_scheme_is_declared_where_it_is_used(stripped_run):
    out, _ = stripped_run
    for key in ("pm_lic", "sr_report"):
        ds = pydicom.dcmread(out / "dicom" / f"{key}.dcm")
        schemes = {it.CodingSchemeDesignator: it for it in ds.CodingSchemeIdentificationSequence}
        assert "liver iron concentration" in schemes["99R2MRI"].CodingSchemeName


def test_every_output_names_r2mri_as_contributing_equipment(stripped_run):
    """IHE AI Results: the producing software, its model and version on every result object."""
    out, _ = stripped_run
    for key in KINDS:
        ds = pydicom.dcmread(out / "dicom" / f"{key}.dcm")
        ours = [it for it in ds.ContributingEquipmentSequence if it.Manufacturer == "r2mri"]
        assert len(ours) == 1, key
        purpose = ours[0].PurposeOfReferenceCodeSequence[0]
        assert (purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning) == (
            "109102", "DCM", "Processing Equipment"), key
        assert ours[0].ManufacturerModelName == "r2mri"
        assert ours[0].SoftwareVersions == r2mri.__version__
