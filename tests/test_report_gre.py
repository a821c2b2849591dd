"""Reports of gradient-echo (R2*) fat-water results: labels, file names, DICOM codes (issue 15).

The result is hand-built (tests/_report_fake.py ``fake_gre_result``): exact R2*, PDFF,
water and fat maps and the magnitude data of the fat-water model, so every value
written is known.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _report_fake import fake_dicom_result, fake_gre_dicom_result, fake_gre_result  # noqa: E402
from _tools import dciodvfy, need_tool  # noqa: E402

from r2mri.report import SCHEMA_VERSION, report_dict, write_outputs  # noqa: E402
from r2mri.report._labels import quantity_of  # noqa: E402


@pytest.fixture(scope="module")
def gre(tmp_path_factory):
    res = fake_gre_dicom_result(with_field_map=True)
    folder = tmp_path_factory.mktemp("gre") / "out"
    paths = write_outputs(res, folder)
    return res, folder, paths, json.loads((folder / "report.json").read_text())


def test_quantity_of_follows_the_acquisition_then_the_model_then_the_calibration():
    from types import SimpleNamespace as NS

    def q(model, seq, cal_q=None):
        return quantity_of(NS(fit=NS(model=model), image=NS(sequence=seq), calibration=NS(quantity=cal_q)))

    assert q("fatwater", None) == "R2*"
    assert q("monoexp", "GRE") == "R2*"  # a plain exponential on GRE data is still R2*
    assert q("ncchi", "SE") == "R2" and q("ncchi", "SE-CPMG") == "R2"
    assert q("monoexp", None, "T2*") == "R2*" and q("monoexp", None, "R2*") == "R2*"
    assert q("monoexp", None, "R2") == "R2"


def test_report_json_names_the_quantity_and_carries_the_pdff(gre):
    res, _, _, rep = gre
    # 1.2 added the pdff keys checked here; later minor versions only add keys
    assert rep["schema_version"] == SCHEMA_VERSION and tuple(map(int, SCHEMA_VERSION.split("."))) >= (1, 2)
    assert rep["quantity"] == "R2*"
    assert rep["model"]["name"] == "fatwater"
    pdff = res.statistics["pdff_percent"]
    for key in ("mean", "se", "median", "sd", "voxel_mean"):
        assert rep["pdff_percent"][key] == pytest.approx(pdff[key], rel=1e-12)
    assert rep["pdff_percent"]["mean_method"] == pdff["mean_method"] == "tile-fw-ncchi"
    assert rep["pdff_percent"]["n_voxels"] == int(res.roi.mask.sum())
    # the rate keeps its key; it holds R2* (s^-1) here
    assert rep["r2_per_s"]["mean"] == pytest.approx(float(res.fit.r2_per_s[res.roi.mask].mean()), rel=1e-6)


def test_pdff_block_without_statistics_is_null_with_a_reason():
    res = fake_gre_result()
    del res.statistics["pdff_percent"]
    rep = report_dict(res)
    assert rep["pdff_percent"] == {k: None for k in ("mean", "se", "median", "sd", "voxel_mean", "n_voxels",
                                                       "mean_method", "n_tiles")}
    assert "liver PDFF" in rep["null_reasons"]["pdff_percent.mean"]


def test_se_report_keeps_its_keys_and_adds_only_the_quantity():
    rep = report_dict(fake_dicom_result())
    assert rep["quantity"] == "R2" and "pdff_percent" not in rep
    assert {"r2_per_s", "lic_mg_per_g", "lic_umol_per_g", "model", "calibration", "qc"} <= set(rep)


def test_nifti_names_units_and_values(gre):
    import nibabel as nib

    res, folder, _, _ = gre
    names = {p.name[: -len(".nii.gz")] for p in folder.glob("*.nii.gz")}
    assert names == {"R2starmap", "T2starmap", "S0map", "desc-R2starstd_R2starmap", "desc-LIC_map",
                     "desc-fitstatus_dseg", "desc-liver_mask", "desc-PDFF_map", "desc-water_S0map",
                     "desc-fat_S0map", "desc-fatwater_fieldmap"}
    ex = res.fit.extra
    expect = {"R2starmap": (res.fit.r2_per_s, "1/s"), "desc-PDFF_map": (ex["pdff_percent"], "%"),
              "desc-water_S0map": (ex["water"], "arbitrary"), "desc-fat_S0map": (ex["fat"], "arbitrary"),
              "desc-fatwater_fieldmap": (ex["field_map_hz"], "Hz"),
              "desc-R2starstd_R2starmap": (res.fit.r2_std_per_s, "1/s"),
              "T2starmap": (1.0 / res.fit.r2_per_s, "s")}
    for name, (arr, unit) in expect.items():
        got = np.asarray(nib.load(folder / f"{name}.nii.gz").dataobj)
        np.testing.assert_allclose(got, arr, rtol=1e-6, equal_nan=True, err_msg=name)
        side = json.loads((folder / f"{name}.json").read_text())
        assert side["Units"] == unit, name
    assert "R2*" in json.loads((folder / "R2starmap.json").read_text())["Description"]
    assert "fat fraction" in json.loads((folder / "desc-PDFF_map.json").read_text())["Description"]


def test_without_a_field_map_no_field_map_file(tmp_path):
    out = tmp_path / "o"
    write_outputs(fake_gre_result(), out)
    assert not (out / "desc-fatwater_fieldmap.nii.gz").exists() and (out / "desc-PDFF_map.nii.gz").exists()


def _volume(ds):
    frames = ds.pixel_array
    iop = np.array(ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    pos = [np.dot(normal, np.array(f.PlanePositionSequence[0].ImagePositionPatient, float))
           for f in ds.PerFrameFunctionalGroupsSequence]
    return np.transpose(frames[np.argsort(pos)], (2, 1, 0))


@pytest.mark.parametrize("kind, code, unit, values", [
    ("pm_r2star", ("126395", "DCM", "R2*"), "/s", lambda r: r.fit.r2_per_s),
    ("pm_pdff", ("129100", "DCM", "Fat fraction"), "%", lambda r: r.fit.extra["pdff_percent"]),
    ("pm_water", ("11713004", "SCT", "Water"), "[arb'U]", lambda r: r.fit.extra["water"]),
    ("pm_fat", ("256674009", "SCT", "Fat"), "[arb'U]", lambda r: r.fit.extra["fat"]),
    ("pm_fieldmap", ("110807", "DCM", "Field Map MR Signal Intensity"), "Hz", lambda r: r.fit.extra["field_map_hz"]),
])
def test_parametric_maps_are_coded_r2star_and_fat_fraction(gre, kind, code, unit, values):
    res, folder, paths, _ = gre
    assert not (folder / "dicom" / "pm_r2.dcm").exists()
    ds = pydicom.dcmread(paths[kind])
    rwvm = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    q = rwvm.QuantityDefinitionSequence[0].ConceptCodeSequence[0]
    assert (q.CodeValue, q.CodingSchemeDesignator, q.CodeMeaning) == code
    u = rwvm.MeasurementUnitsCodeSequence[0]
    assert (u.CodeValue, u.CodingSchemeDesignator) == (unit, "UCUM")
    want = np.asarray(values(res))
    ok = np.isfinite(want)
    np.testing.assert_allclose(_volume(ds)[ok], want[ok], rtol=1e-6)  # float32 pixels: exact


def test_sr_measures_r2star_and_pdff(gre):
    import highdicom as hd

    res, _, paths, rep = gre
    (group,) = hd.sr.srread(paths["sr_report"]).content.get_volumetric_roi_measurement_groups()
    num = {(m.name.value, m.unit.value, None if m.derivation is None else m.derivation.meaning,
            None if m.method is None else m.method.value): m.value for m in group.get_measurements()}
    headline = ("126395", "/s", "Mean", "tile-fw-ncchi")  # the GRE headline estimator of analyze
    assert num.pop(headline) == pytest.approx(rep["r2_per_s"]["headline_mean"], rel=1e-9)
    pd_mean = ("129100", "%", "Mean", "tile-fw-ncchi")  # the ROI PDFF of the tile-pooled fit
    assert num.pop(pd_mean) == pytest.approx(rep["pdff_percent"]["mean"], rel=1e-9)
    num = {k[:3]: v for k, v in num.items()}
    assert num[("126395", "/s", "Mean")] == pytest.approx(rep["r2_per_s"]["mean"], rel=1e-9)
    assert num[("126395", "/s", "Median")] == pytest.approx(rep["r2_per_s"]["median"], rel=1e-9)
    assert num[("129100", "%", "Mean")] == pytest.approx(rep["pdff_percent"]["voxel_mean"], rel=1e-9)
    assert num[("129100", "%", "Median")] == pytest.approx(rep["pdff_percent"]["median"], rel=1e-9)
    assert num[("LIC-MEANR2STAR", "mg/g", None)] == pytest.approx(rep["lic_mg_per_g"]["of_mean_r2"], rel=1e-9)
    assert not any(k[0] in ("126394", "LIC-MEANR2") for k in num)  # nothing is called R2


def test_dicom_outputs_conform(gre):
    """dciodvfy: no error in any object (warnings only for the private 99R2MRI scheme and
    the Parametric Map's QUANTITY image type, as for the SE objects)."""
    _, folder, _, _ = gre
    files = sorted((folder / "dicom").glob("*.dcm"))
    assert {f.name for f in files} == {"pm_r2star.dcm", "pm_pdff.dcm", "pm_lic.dcm", "seg_liver_roi.dcm",
                                       "sr_report.dcm", "sc_report.dcm", "pm_water.dcm", "pm_fat.dcm",
                                       "pm_fieldmap.dcm"}
    for f in files:
        errors, warns = dciodvfy(f)
        assert errors == [], (f.name, errors)
        assert all("99R2MRI" in w or "<QUANTITY>" in w for w in warns), (f.name, warns)


def test_page_says_r2star_and_pdff_never_r2_or_ferriscan(gre):
    _, folder, _, rep = gre
    text = subprocess.run([need_tool("pdftotext"), str(folder / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "LIC of mean R2* (headline)" in text and "Median-R2* voxel" in text
    pd = rep["pdff_percent"]
    assert pd["mean_method"] == "tile-fw-ncchi"  # analyze: the ROI PDFF of the tile-pooled fit
    assert (f"Liver fat (PDFF) {pd['mean']:.1f} % mean (SE {pd['se']:.2f} %; tile-pooled), "
            f"{pd['median']:.1f} % voxel median") in text
    assert not re.search(r"\bR2\b(?!\*)", text), "a bare R2 label on an R2* page"
    assert "ferriscan" not in text.lower()


def test_page_fit_curve_is_the_fat_water_model_through_the_data():
    """The curve drawn for the median-R2* voxel is magnitude_signal with its W, F, R2*: on the
    exact fake it passes through the measured points (float32 data)."""
    from r2mri.report._page import _fatwater_curve, _representative_voxel

    res = fake_gre_result()
    vox = _representative_voxel(res, np.asarray(res.roi.mask))
    model, envelope, pdff = _fatwater_curve(res, vox, res.image.echo_times_s)
    np.testing.assert_allclose(model, res.image.data[vox], rtol=1e-5)
    w, f = res.fit.extra["water"][vox], res.fit.extra["fat"][vox]
    assert envelope[0] == pytest.approx((w + f) * np.exp(-res.fit.r2_per_s[vox] * res.image.echo_times_s[0]))
    assert pdff == pytest.approx(float(res.fit.extra["pdff_percent"][vox]))
    assert not np.allclose(model, envelope, rtol=0.01)  # fat modulates the decay at these echoes


def test_cli_headline_names_r2star_and_the_pdff():
    from r2mri.commands.analyze import headline_lines

    rep = report_dict(fake_gre_result())
    lines = headline_lines(rep)
    assert f"from the mean liver R2* = {rep['r2_per_s']['headline_mean']:.1f} 1/s" in lines[0]
    assert f"liver PDFF mean {rep['pdff_percent']['mean']:.1f} %" in lines[2]
    assert "from the mean liver R2 = " in headline_lines(report_dict(fake_dicom_result()))[0]


def test_gre_fitted_without_fat_is_still_r2star_without_pdff_outputs(tmp_path):
    """A plain exponential on gradient-echo data measures R2*: R2* names, no PDFF anywhere."""
    res = fake_gre_dicom_result()
    res.fit.model, res.fit.extra = "monoexp", {}
    del res.statistics["pdff_percent"]
    paths = write_outputs(res, tmp_path / "o")
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["quantity"] == "R2*" and "pdff_percent" not in rep
    assert "R2starmap" in paths and "R2map" not in paths and "desc-PDFF_map" not in paths
    assert "pm_r2star" in paths and "pm_pdff" not in paths and "pm_r2" not in paths
    assert not {"pm_water", "pm_fat", "pm_fieldmap"} & set(paths)
    q = pydicom.dcmread(paths["pm_r2star"]).SharedFunctionalGroupsSequence[0] \
        .RealWorldValueMappingSequence[0].QuantityDefinitionSequence[0].ConceptCodeSequence[0]
    assert q.CodeValue == "126395"


def test_citation_of_an_open_author_list_reads_first_author_et_al(gre):
    _, _, _, rep = gre
    assert rep["calibration"]["citation_text"].startswith("Hernando D et al. Multicenter Reproducibility")


def test_magnitude_fatwater_fit_has_water_and_fat_maps_but_no_field_map(tmp_path):
    from r2mri.report._dicom_fatwater import fatwater_parametric_maps
    from r2mri.report._dicom_source import reference_headers, source_series

    res = fake_gre_dicom_result()  # no field_map_hz: a magnitude fit
    objs = fatwater_parametric_maps(res, reference_headers(source_series(res.image)), 90, "seed", None)
    assert set(objs) == {"pm_water", "pm_fat"}
    assert [int(ds.SeriesNumber) for ds in objs.values()] == [97, 98]
