"""DICOM outputs read back: Parametric Maps, SEG, TID 1500 SR and the Secondary Capture."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _report_fake import fake_dicom_result  # noqa: E402

from r2mri.report import write_outputs  # noqa: E402


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    res = fake_dicom_result()
    folder = tmp_path_factory.mktemp("dcm") / "out"
    paths = write_outputs(res, folder)  # dicom=None -> on, the input was DICOM
    return res, folder, paths


def _volume(ds):
    """(x, y, z) array from a multi-frame object, frames sorted by position along the normal."""

    frames = ds.pixel_array
    if frames.ndim == 2:
        frames = frames[None]
    iop = np.array(ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    pos = [np.dot(normal, np.array(f.PlanePositionSequence[0].ImagePositionPatient, float))
           for f in ds.PerFrameFunctionalGroupsSequence]
    order = np.argsort(pos)
    return np.transpose(frames[order], (2, 1, 0))


def _same_study(ds, res):
    src = res.image.source_datasets[0]
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.SeriesInstanceUID not in {d.SeriesInstanceUID for d in res.image.source_datasets}
    assert ds.PatientID == src.PatientID


def test_parametric_map_r2(out):
    res, folder, paths = out
    ds = pydicom.dcmread(paths["pm_r2"])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    _same_study(ds, res)
    rwvm = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert rwvm.MeasurementUnitsCodeSequence[0].CodeValue == "/s"
    assert rwvm.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
    q = rwvm.QuantityDefinitionSequence[0].ConceptCodeSequence[0]
    assert (q.CodeValue, q.CodingSchemeDesignator, q.CodeMeaning) == ("126394", "DCM", "R2")
    vol = _volume(ds) * float(rwvm.RealWorldValueSlope) + float(rwvm.RealWorldValueIntercept)
    r2 = res.fit.r2_per_s
    ok = np.isfinite(r2)
    np.testing.assert_allclose(vol[ok], r2[ok], rtol=1e-6)  # float32 pixels: exact
    assert np.all(vol[~ok] == 0)


def test_parametric_map_lic(out):
    res, folder, paths = out
    ds = pydicom.dcmread(paths["pm_lic"])
    _same_study(ds, res)
    rwvm = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert rwvm.MeasurementUnitsCodeSequence[0].CodeValue == "mg/g"
    q = rwvm.QuantityDefinitionSequence[0].ConceptCodeSequence[0]
    assert q.CodingSchemeDesignator == "99R2MRI"  # private: no standard LIC code exists
    vol = _volume(ds)
    lic = res.lic_mg_per_g
    ok = np.isfinite(lic)
    np.testing.assert_allclose(vol[ok], lic[ok], rtol=1e-6)


def test_segmentation_is_the_roi(out):
    res, folder, paths = out
    ds = pydicom.dcmread(paths["seg_liver_roi"])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    _same_study(ds, res)
    assert ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"  # SCT Liver
    np.testing.assert_array_equal(_volume(ds).astype(bool), res.roi.mask)


def test_structured_report_headline(out):
    import highdicom as hd

    res, folder, paths = out
    ds = pydicom.dcmread(paths["sr_report"])
    _same_study(ds, res)
    sr = hd.sr.srread(paths["sr_report"])
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == 1
    values = {}
    for m in groups[0].get_measurements():
        key = (m.name.value, m.unit.value, None if m.derivation is None else m.derivation.meaning)
        values[key] = m.value
    rep = res.report()
    assert values[("LIC-MEANR2", "mg/g", None)] == pytest.approx(rep["lic_mg_per_g"]["of_mean_r2"], rel=1e-9)
    assert values[("126394", "/s", "Mean")] == pytest.approx(rep["r2_per_s"]["mean"], rel=1e-9)
    assert values[("LIC-MEANR2", "umol/g", None)] == pytest.approx(rep["lic_umol_per_g"]["of_mean_r2"], rel=1e-9)
    assert all(np.isfinite(v) for v in values.values())


def test_secondary_capture_of_the_page(out):
    from PIL import Image

    res, folder, paths = out
    ds = pydicom.dcmread(paths["sc_report"])
    _same_study(ds, res)
    assert ds.PhotometricInterpretation == "RGB"
    png = np.asarray(Image.open(folder / "report.png").convert("RGB"))
    assert ds.pixel_array.shape == png.shape
    assert np.abs(ds.pixel_array.astype(int) - png.astype(int)).mean() < 1.0


def test_sr_leaves_out_values_that_are_not_finite(tmp_path):
    import highdicom as hd

    res = fake_dicom_result()
    res.statistics["lic_mg_per_g"]["median"] = float("nan")
    paths = write_outputs(res, tmp_path / "o")
    sr = hd.sr.srread(paths["sr_report"])
    ms = sr.content.get_volumetric_roi_measurement_groups()[0].get_measurements()
    assert all(np.isfinite(m.value) for m in ms)
    assert not any(m.name.value == "LIC-DW" and m.derivation is not None and m.derivation.meaning == "Median"
                   for m in ms)


def test_unusable_source_headers_give_one_line_input_error(tmp_path):
    from r2mri import InputError

    res = fake_dicom_result()
    for ds in res.image.source_datasets:
        del ds.StudyInstanceUID  # highdicom cannot reference a study without it
    with pytest.raises(InputError, match=r"no StudyInstanceUID \(Type 1\).*--no-dicom"):
        write_outputs(res, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_page_failure_leaves_no_folder(tmp_path, monkeypatch):
    from r2mri.report import _page

    def boom(*args, **kwargs):
        raise RuntimeError("page failed")

    monkeypatch.setattr(_page, "write_page", boom)
    with pytest.raises(RuntimeError, match="page failed"):
        write_outputs(fake_dicom_result(), tmp_path / "o")
    assert not (tmp_path / "o").exists()
    assert not list(tmp_path.iterdir())  # nor its temporary sibling


def _generated_uids(folder):
    """Every UI value of the DICOM outputs in ``folder`` that r2mri or highdicom generated
    (the source's study, series, instance and frame of reference UIDs and the class /
    transfer syntax UIDs left out), keyed by (file, attribute path)."""
    found = {}
    for f in sorted(Path(folder).glob("*.dcm")):
        ds = pydicom.dcmread(f)

        def walk(d, path):
            for el in d:
                if el.VR == "UI":
                    found[(f.name, path + el.keyword)] = str(el.value)
                elif el.VR == "SQ":
                    for i, item in enumerate(el.value):
                        walk(item, f"{path}{el.keyword}[{i}].")

        walk(ds, "")
    return found


def test_uid_seed_gives_the_same_uids_again_and_another_seed_other_ones(tmp_path, out):
    """write_outputs(uid_seed=...): a re-write has the
    same UIDs, so a PACS replaces the objects; another seed or no seed gives new ones."""
    from r2mri.report._dicom import write_dicom
    from r2mri.report._json import report_dict

    res, folder, _ = out
    first = write_outputs(res, tmp_path / "a", uid_seed="study-1/run-1")
    again = write_outputs(res, tmp_path / "b", uid_seed="study-1/run-1")
    write_dicom(res, report_dict(res), tmp_path / "c", page_rgb=np.zeros((8, 6, 3), np.uint8),
                uid_seed="study-1/run-2")
    a = _generated_uids(first["sr_report"].parent)
    assert a == _generated_uids(again["sr_report"].parent)
    source = {str(ds.get(k)) for ds in res.image.source_datasets
              for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")}
    generated = {k: v for k, v in a.items()
                 if v not in source and not k[1].endswith(("ClassUID", "TransferSyntaxUID", "ImplementationClassUID"))}
    # each object's series, SOP instance, dimension organization; the SR's observer and tracking UIDs
    assert len(set(generated.values())) >= 5 * 2 + 2 + 2
    for other in (_generated_uids(tmp_path / "c"), _generated_uids(folder / "dicom")):
        assert all(other[k] != v for k, v in generated.items()), "a generated UID repeated across seeds"
    seq = pydicom.dcmread(first["pm_r2"])
    assert seq.SOPInstanceUID == pydicom.dcmread(again["pm_r2"]).SOPInstanceUID
    assert seq.SOPInstanceUID.startswith("1.2.826.0.1.3680043.8.498.")  # pydicom's root, as generate_uid gives
