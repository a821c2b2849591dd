"""Phase images: phantom -> DICOM (magnitude + phase series) -> r2mri.load -> phase_rad.

Tolerances: phase written in the Siemens convention (12-bit, 2 pi / 4096 per step) reads
back within half a step, pi / 4096 rad; magnitude within half its RescaleSlope, and
identical with or without the phase series. Mismatched phase gives the warning
``phase-not-paired`` and no phase, never a silent pairing.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

import r2mri
from r2mri import InputError
from r2mri.cli import main
from r2mri.image import MultiEchoImage
from r2mri.phantom import generate, write

SMALL = dict(matrix=(40, 32), pixel_mm=9.0, n_slices=3)
HALF_STEP = math.pi / 4096


@pytest.fixture(scope="module")
def ph():
    return generate("gre-1.5t-fat15-lic3.2", **SMALL, seed=2)


@pytest.fixture(scope="module")
def written(ph, tmp_path_factory):
    root = tmp_path_factory.mktemp("phase")
    return {
        "multi": write(ph, root / "multi", format="dicom-multiecho", phase=True),
        "multi-mag": write(ph, root / "multi-mag", format="dicom-multiecho"),
        "perte": write(ph, root / "perte", format="dicom", phase=True),
        "enh": write(ph, root / "enh", format="dicom-enhanced", phase=True),
    }


def _wrapped(a, b) -> np.ndarray:
    return np.abs(np.angle(np.exp(1j * (np.asarray(a, np.float64) - np.asarray(b, np.float64)))))


def _codes(img) -> dict:
    return {f.code: f for f in img.protocol_report()}


@pytest.mark.parametrize("form", ["multi", "perte", "enh"])
def test_round_trip_phase_within_quantisation(ph, written, form):
    img = r2mri.load(written[form])
    assert img.phase_rad is not None and img.phase_rad.dtype == np.float32
    assert img.phase_rad.shape == img.data.shape == ph.image.data.shape
    err = _wrapped(img.phase_rad, ph.image.phase_rad)
    assert err.max() <= HALF_STEP * (1 + 1e-5) + 1e-6  # + float32 rounding of the radians
    codes = _codes(img)
    assert "phase-paired" in codes and "phase-not-paired" not in codes
    assert "series-left-out" not in codes  # the phase series are used, not left out
    assert img.metadata["series_left_out"] == []


def test_magnitude_unchanged_by_the_phase_series(ph, written):
    a = r2mri.load(written["multi"])
    b = r2mri.load(written["multi-mag"])
    assert b.phase_rad is None
    np.testing.assert_array_equal(a.data, b.data)
    slope = float(pydicom.dcmread(next((written["multi"] / "dicom").glob("IM*.dcm"))).RescaleSlope)
    assert np.max(np.abs(a.data - ph.image.data)) <= slope / 2 + float(np.spacing(np.float32(ph.image.data.max())))


def test_per_te_series_with_phase_keep_their_numbers(written):
    info = r2mri.io.list_datasets(written["perte"])
    assert [s["series_number"] for s in info["series"]] == [1, 3, 5, 7, 9, 11]
    assert [s["series_number"] for s in info["complex_series"]] == [2, 4, 6, 8, 10, 12]
    assert {s["complex_component"] for s in info["complex_series"]} == {"P"}
    assert info["candidates"][0]["series_left_out"] == []


def test_phase_headers_follow_the_siemens_convention(written):
    ds = pydicom.dcmread(next((written["multi"] / "dicom").glob("PH*.dcm")))
    assert list(ds.ImageType)[:3] == ["ORIGINAL", "PRIMARY", "P"]
    assert (ds.BitsStored, float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (12, 2.0, -4096.0)
    assert int(ds.pixel_array.max()) <= 4095
    enh = pydicom.dcmread(written["enh"] / "dicom" / "PH0001.dcm")
    assert enh.ComplexImageComponent == "PHASE" and enh.BitsStored == 12
    pvt = enh.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    assert (float(pvt.RescaleSlope), float(pvt.RescaleIntercept)) == (2.0, -4096.0)
    assert enh.PerFrameFunctionalGroupsSequence[0].MRImageFrameTypeSequence[0].ComplexImageComponent == "PHASE"


def test_phase_alone_is_never_magnitude(written, tmp_path):
    only = tmp_path / "only"
    shutil.copytree(written["multi"] / "dicom", only)
    for p in only.glob("IM*.dcm"):
        p.unlink()
    with pytest.raises(InputError, match="no magnitude image.*never analysed as magnitude"):
        r2mri.load(only)


def _copy(written, tmp_path, name) -> Path:
    out = tmp_path / name
    shutil.copytree(written["multi"] / "dicom", out)
    return out


def test_missing_phase_image_gives_a_finding(written, tmp_path):
    d = _copy(written, tmp_path, "missing")
    sorted(d.glob("PH*.dcm"))[4].unlink()
    img = r2mri.load(d)
    assert img.phase_rad is None
    f = _codes(img)["phase-not-paired"]
    assert f.severity == "warning" and "have no phase" in f.message


def test_shifted_phase_geometry_gives_a_finding(written, tmp_path):
    d = _copy(written, tmp_path, "shift")
    for p in d.glob("PH*.dcm"):
        ds = pydicom.dcmread(p)
        ds.PixelSpacing = [str(float(v) * 1.1) for v in ds.PixelSpacing]
        ds.save_as(p)
    img = r2mri.load(d)
    assert img.phase_rad is None
    assert "pixel spacing" in _codes(img)["phase-not-paired"].message


def test_unknown_phase_units_give_a_finding(written, tmp_path):
    d = _copy(written, tmp_path, "units")
    for p in d.glob("PH*.dcm"):
        ds = pydicom.dcmread(p)
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.BitsStored, ds.HighBit = 16, 15
        ds.save_as(p)
    img = r2mri.load(d)
    assert img.phase_rad is None
    assert "units not recognised" in _codes(img)["phase-not-paired"].message


def _ri_slope(mag: np.ndarray) -> float:
    return float(f"{float(mag.max()) / 30000.0:.6g}")  # exact in a 16-character DS


def _to_real_imag(ph, src: Path, dst: Path, *, keep_magnitude: bool) -> None:
    """Rewrite the phase series as a real and an imaginary series (signed values with an
    intercept, 16-bit), from the phantom's magnitude and phase."""
    dst.mkdir()
    if keep_magnitude:
        for p in src.glob("IM*.dcm"):
            shutil.copy(p, dst / p.name)
    mag = ph.image.data.astype(np.float64)
    slope = _ri_slope(mag)
    uids = {"R": generate_uid(), "I": generate_uid()}
    for p in sorted(src.glob("PH*.dcm")):
        base = pydicom.dcmread(p)
        k, e = int(base.InstanceNumber - 1) % ph.image.shape[2], int(base.InstanceNumber - 1) // ph.image.shape[2]
        plane = mag[:, :, k, e] * np.exp(1j * ph.image.phase_rad[:, :, k, e])
        for comp, values in (("R", plane.real), ("I", plane.imag)):
            ds = pydicom.dcmread(p)
            ds.ImageType = ["ORIGINAL", "PRIMARY", comp, "ND"]
            ds.SeriesInstanceUID = uids[comp]
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesNumber = 20 if comp == "R" else 21
            ds.BitsStored, ds.HighBit = 16, 15
            ds.RescaleSlope = f"{slope:.9g}"
            ds.RescaleIntercept = f"{-32768 * slope:.9g}"
            stored = np.clip(np.rint(values.T / slope) + 32768, 0, 65535).astype(np.uint16)
            ds.PixelData = stored.tobytes()
            for key in ("SmallestImagePixelValue", "LargestImagePixelValue"):
                if key in ds:
                    del ds[key]
            ds.save_as(dst / f"{comp}{p.name}")


@pytest.mark.parametrize("keep_magnitude", [True, False])
def test_real_and_imaginary_series(ph, written, tmp_path, keep_magnitude):
    d = tmp_path / "ri"
    _to_real_imag(ph, written["multi"] / "dicom", d, keep_magnitude=keep_magnitude)
    img = r2mri.load(d)
    mag = ph.image.data.astype(np.float64)
    slope = _ri_slope(mag)
    # R and I each within slope / 2: the phase within (slope / 2) sqrt(2) / |S| (first order)
    bound = slope / 2 * math.sqrt(2) / np.maximum(mag, 1e-9) * 1.01 + 1e-5
    big = mag > 200 * slope  # far above quantisation: the first-order bound holds
    assert np.all(_wrapped(img.phase_rad, ph.image.phase_rad)[big] <= bound[big])
    if keep_magnitude:
        assert "phase-paired" in _codes(img)
    else:
        assert "magnitude-from-real-imaginary" in _codes(img)
        assert np.max(np.abs(img.data - mag)) <= slope * math.sqrt(2) / 2 + 1e-3


def test_phase_field_is_validated():
    data = np.ones((2, 2, 1, 3), np.float32)
    te = [0.001, 0.002, 0.003]
    with pytest.raises(InputError, match="phase_rad: shape"):
        MultiEchoImage(data, te, phase_rad=np.zeros((2, 2, 1, 2)))
    with pytest.raises(InputError, match=r"outside \[-pi, pi\]"):
        MultiEchoImage(data, te, phase_rad=np.full(data.shape, 4096.0))
    img = MultiEchoImage(data, te, phase_rad=np.zeros(data.shape, np.float64))
    assert img.phase_rad.dtype == np.float32
    assert img.select_echoes([0, 2]).phase_rad.shape == (2, 2, 1, 2)


def test_cli_load_says_phase(written, capsys):
    assert main(["load", str(written["multi"])]) == 0
    assert "phase: yes" in capsys.readouterr().out
    assert main(["load", str(written["multi-mag"])]) == 0
    assert "phase: no" in capsys.readouterr().out


def test_phase_needs_a_phase_image(tmp_path):
    plain = generate("gre-1.5t-lic3.2", **SMALL)
    with pytest.raises(InputError, match="no phase image"):
        write(plain, tmp_path / "x", format="dicom-multiecho", phase=True)
    with pytest.raises(InputError, match="phase: written for formats"):
        write(generate("gre-1.5t-fat15-lic3.2", **SMALL), tmp_path / "y", format="nifti-per-echo", phase=True)


def test_phase_dicom_is_valid_and_reproducible(ph, written, tmp_path):
    again = write(generate("gre-1.5t-fat15-lic3.2", **SMALL, seed=2), tmp_path / "again",
                  format="dicom-multiecho", phase=True)
    for p in sorted((written["multi"] / "dicom").glob("PH*.dcm")):
        assert (again / "dicom" / p.name).read_bytes() == p.read_bytes()
    from _tools import need_tool

    need_tool("dciodvfy")
    import subprocess

    for form in ("multi", "enh"):
        f = sorted((written[form] / "dicom").glob("PH*.dcm"))[0]
        res = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True, timeout=60)
        errors = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("Error")]
        assert not errors, (form, errors)


def test_mixed_enhanced_object(ph, written, tmp_path):
    """One Enhanced MR object with magnitude and phase frames (ComplexImageComponent MIXED),
    rescale per frame, one BitsStored (16) for both: the phase pairs by slope/intercept."""
    from pydicom.sequence import Sequence

    mag = pydicom.dcmread(written["enh"] / "dicom" / "IM0001.dcm")
    phs = pydicom.dcmread(written["enh"] / "dicom" / "PH0001.dcm")
    for src in (mag, phs):
        pvt = src.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
        for item in src.PerFrameFunctionalGroupsSequence:
            item.PixelValueTransformationSequence = Sequence([pvt[0]])
    del mag.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
    mag.PerFrameFunctionalGroupsSequence = Sequence(list(mag.PerFrameFunctionalGroupsSequence)
                                                    + list(phs.PerFrameFunctionalGroupsSequence))
    mag.NumberOfFrames = 2 * int(phs.NumberOfFrames)
    mag.ComplexImageComponent = "MIXED"
    mag.PixelData = mag.PixelData + phs.PixelData
    (tmp_path / "mixed").mkdir()
    mag.save_as(tmp_path / "mixed" / "IM0001.dcm")
    img = r2mri.load(tmp_path / "mixed")
    ref = r2mri.load(written["enh"])
    np.testing.assert_array_equal(img.data, ref.data)
    assert _wrapped(img.phase_rad, ph.image.phase_rad).max() <= HALF_STEP * (1 + 1e-5) + 1e-6
    assert "phase-paired" in _codes(img)


def test_cli_phantom_with_fat_and_phase(tmp_path, capsys):
    import json

    out = tmp_path / "cli"
    assert main(["phantom", "gre-1.5t-fat15-lic3.2", "-o", str(out), "--format", "dicom-multiecho",
                 "--phase", "--pdff", "30", "--lic", "7", "--b0-peak-hz", "-40", "--coils", "2"]) == 0
    text = capsys.readouterr().out
    assert "liver PDFF 30 %" in text and "phase written" in text
    truth = json.loads((out / "truth.json").read_text())
    assert truth["mean_liver_pdff_percent"] == pytest.approx(30.0)
    assert truth["lic_of_mean_r2_mg_per_g"] == pytest.approx(7.0)
    assert min(truth["min_liver_field_hz"], truth["max_liver_field_hz"]) >= -40.0
    assert {p.name for p in (out / "truth").iterdir()} >= {"pdff_percent.nii.gz", "water.nii.gz", "fat.nii.gz",
                                                           "field_hz.nii.gz"}
    assert len(list((out / "dicom").glob("PH*.dcm"))) == len(list((out / "dicom").glob("IM*.dcm")))


def test_nifti_part_phase(ph, tmp_path):
    import json

    import nibabel as nib

    out = write(ph, tmp_path / "nii", format="nifti", phase=True)
    img = nib.load(out / "phantom_part-phase_MEGRE.nii.gz")
    np.testing.assert_array_equal(np.asarray(img.dataobj), ph.image.phase_rad)  # float32, exact
    np.testing.assert_allclose(img.affine, ph.image.affine)
    side = json.loads((out / "phantom_part-phase_MEGRE.json").read_text())
    assert side["Units"] == "rad" and side["EchoTime"] == pytest.approx(list(ph.image.echo_times_s))


def test_phase_of_another_acquisition_is_named_not_used(ph, written, tmp_path):
    d = _copy(written, tmp_path, "other")
    uid = generate_uid()
    for p in sorted(d.glob("PH*.dcm")):
        ds = pydicom.dcmread(p)
        ds.SeriesInstanceUID, ds.SeriesNumber = uid, 40
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PixelSpacing = [str(float(v) * 1.5) for v in ds.PixelSpacing]
        ds.save_as(d / f"X{p.name}")
    img = r2mri.load(d)
    assert _wrapped(img.phase_rad, ph.image.phase_rad).max() <= HALF_STEP * (1 + 1e-5) + 1e-6
    f = _codes(img)["phase-paired"]
    assert "#40" in f.message and "pixel spacing" in f.message and "phase-not-paired" not in _codes(img)
