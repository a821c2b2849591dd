"""Phantom writers: NIfTI/BIDS, FerriScan DICOM series, multi-echo and Enhanced MR DICOM.

Checks what a reader needs: values (within the documented quantisation), echo
times, geometry and identifiers read back with nibabel/pydicom and through
``r2mri.load``; byte-identical output for the same seed; dciodvfy without errors.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from r2mri import InputError
from r2mri.cli import main
from r2mri.phantom import generate, write

SMALL = dict(matrix=(48, 40), pixel_mm=8.0, n_slices=3)


@pytest.fixture(scope="module")
def ph():
    return generate(**SMALL, lic_mg_per_g=7.0, seed=4)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _tol(slope: float, values: np.ndarray) -> float:
    """Largest read-back error: half a quantisation step (stored = rint(value / slope))
    plus one float32 ulp at the largest value (the loader returns float32)."""
    return slope / 2 + float(np.spacing(np.float32(values.max())))


def _slope_of(root: Path) -> float:
    return max(float(pydicom.dcmread(f, stop_before_pixels=True).get("RescaleSlope", 0) or 0)
               for f in root.rglob("*.dcm")) or float(
        pydicom.dcmread(next(root.rglob("*.dcm")), stop_before_pixels=True)
        .SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleSlope)


def _load():
    try:
        from r2mri.io import load
    except ImportError:  # loader not in this checkout
        pytest.skip("r2mri.io.load not available")
    return load


def test_nifti_4d_with_bids_sidecar_and_truth(tmp_path, ph):
    out = write(ph, tmp_path / "n")
    img = nib.load(out / "phantom_MESE.nii.gz")
    np.testing.assert_array_equal(np.asarray(img.dataobj), ph.image.data)
    np.testing.assert_allclose(img.affine, ph.image.affine)
    side = json.loads((out / "phantom_MESE.json").read_text())
    assert side["EchoTime"] == pytest.approx([0.006, 0.009, 0.012, 0.015, 0.018])  # seconds (BIDS)
    assert side["MagneticFieldStrength"] == 1.5 and side["RepetitionTime"] == 1.0
    truth = json.loads((out / "truth.json").read_text())
    assert truth == json.loads(json.dumps(ph.summary))
    for name in ("r2_per_s", "lic_mg_per_g", "s0", "labels", "liver_mask"):
        arr = np.asarray(nib.load(out / "truth" / f"{name}.nii.gz").dataobj)
        want = getattr(ph.truth, name)
        np.testing.assert_allclose(arr, want.astype(arr.dtype), equal_nan=True)
    load = _load()
    back = load(out / "phantom_MESE.nii.gz")
    np.testing.assert_array_equal(back.data, ph.image.data)
    np.testing.assert_allclose(back.echo_times_s, ph.image.echo_times_s)


def test_nifti_per_echo_dcm2niix_style(tmp_path, ph):
    out = write(ph, tmp_path / "e", format="nifti-per-echo")
    files = sorted(out.glob("phantom_echo-*_MESE.nii.gz"))
    assert len(files) == 5
    for k, f in enumerate(files):
        side = json.loads(f.with_name(f.name.replace(".nii.gz", ".json")).read_text())
        assert side["EchoTime"] == pytest.approx(ph.image.echo_times_s[k]) and side["EchoNumber"] == k + 1
    back = _load()(files)
    np.testing.assert_array_equal(back.data, ph.image.data)
    np.testing.assert_allclose(back.affine, ph.image.affine)


def test_dicom_ferriscan_series(tmp_path, ph):
    out = write(ph, tmp_path / "d", format="dicom")
    series = sorted((out / "dicom").iterdir())
    assert [p.name for p in series] == ["S01_TE6", "S02_TE9", "S03_TE12", "S04_TE15", "S05_TE18"]
    uids, study = set(), set()
    tol = _tol(_slope_of(out / "dicom"), ph.image.data)
    for e, sdir in enumerate(series):
        files = sorted(sdir.glob("*.dcm"))
        assert len(files) == 3
        for k, f in enumerate(files):
            ds = pydicom.dcmread(f)
            assert float(ds.EchoTime) == pytest.approx(ph.image.echo_times_ms[e])
            assert int(ds.EchoTrainLength) == 1 and ds.ScanningSequence == "SE"
            assert float(ds.SliceThickness) == 5.0 and float(ds.SpacingBetweenSlices) == 7.5
            assert [float(v) for v in ds.PixelSpacing] == [8.0, 8.0]
            assert float(ds.ImagePositionPatient[2]) == pytest.approx((k - 1) * 7.5)
            real = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            assert np.max(np.abs(real - ph.image.data[:, :, k, e].T)) <= tol
            uids.add(ds.SeriesInstanceUID)
            study.add(ds.StudyInstanceUID)
    assert len(uids) == 5 and len(study) == 1
    back = _load()(out / "dicom")
    assert back.echo_train_length == 1 and back.sequence == "SE"
    np.testing.assert_allclose(back.echo_times_s, ph.image.echo_times_s)
    np.testing.assert_allclose(back.affine, ph.image.affine, atol=1e-6)
    assert np.max(np.abs(back.data - ph.image.data)) <= tol


def test_dicom_per_series_slopes_and_shuffled_names(tmp_path, ph):
    out = write(ph, tmp_path / "s", format="dicom", per_series_rescale=True, shuffle_files=True)
    files = sorted((out / "dicom").iterdir())
    assert len(files) == 15 and all(f.is_file() and not f.name.startswith("IM") for f in files)
    slopes = {}
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        slopes[float(ds.EchoTime)] = float(ds.RescaleSlope)
    assert len(set(slopes.values())) == 5  # one slope per series, all different
    back = _load()(out / "dicom")
    tol = _tol(max(slopes.values()), ph.image.data)
    assert np.max(np.abs(back.data - ph.image.data)) <= tol


def test_dicom_multiecho_and_enhanced(tmp_path, ph):
    load = _load()
    out = write(ph, tmp_path / "m", format="dicom-multiecho")
    tol = _tol(_slope_of(out / "dicom"), ph.image.data)
    files = sorted((out / "dicom").glob("*.dcm"))
    assert len(files) == 15
    assert len({pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID for f in files}) == 1
    back = load(out / "dicom")
    assert np.max(np.abs(back.data - ph.image.data)) <= tol
    out = write(ph, tmp_path / "x", format="dicom-enhanced")
    (f,) = sorted((out / "dicom").glob("*.dcm"))
    ds = pydicom.dcmread(f)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.1" and int(ds.NumberOfFrames) == 15
    te = [float(fr.MREchoSequence[0].EffectiveEchoTime) for fr in ds.PerFrameFunctionalGroupsSequence]
    assert te == pytest.approx(np.repeat(ph.image.echo_times_ms, 3))
    z = [float(fr.PlanePositionSequence[0].ImagePositionPatient[2]) for fr in ds.PerFrameFunctionalGroupsSequence]
    assert z == pytest.approx(np.tile([-7.5, 0.0, 7.5], 5))
    back = load(out / "dicom")
    np.testing.assert_allclose(back.echo_times_s, ph.image.echo_times_s)
    np.testing.assert_allclose(back.affine, ph.image.affine, atol=1e-6)
    assert np.max(np.abs(back.data - ph.image.data)) <= _tol(_slope_of(out / "dicom"), ph.image.data)


@pytest.mark.parametrize("fmt", ["dicom", "dicom-multiecho", "dicom-enhanced"])
@pytest.mark.parametrize("name", [None, "cpmg-1.5t-lic3.2", "gre-1.5t-lic3.2"])
def test_dciodvfy_reports_no_errors(tmp_path, name, fmt):
    from _tools import need_tool

    need_tool("dciodvfy")
    ph = generate(name, **SMALL)
    out = write(ph, tmp_path / fmt, format=fmt)
    f = sorted((out / "dicom").rglob("*.dcm"))[0]
    res = subprocess.run(["dciodvfy", str(f)], capture_output=True, text=True, timeout=60)
    errors = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("Error")]
    assert not errors, errors


@pytest.mark.parametrize("fmt", ["nifti", "nifti-per-echo", "dicom", "dicom-multiecho", "dicom-enhanced"])
def test_same_seed_same_bytes(tmp_path, fmt):
    a = write(generate(**SMALL, seed=9), tmp_path / "a", format=fmt)
    b = write(generate(**SMALL, seed=9), tmp_path / "b", format=fmt)
    c = write(generate(**SMALL, seed=10), tmp_path / "c", format=fmt)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa == fb
    image = [k for k in fa if not k.startswith("truth")]
    assert all(fa[k] != fc[k] for k in image)
    assert fa["truth/r2_per_s.nii.gz"] == fc["truth/r2_per_s.nii.gz"]


def test_write_errors(tmp_path, ph):
    out = write(ph, tmp_path / "o")
    with pytest.raises(InputError, match="exists"):
        write(ph, out)
    write(ph, out, overwrite=True, format="nifti-per-echo")
    assert (out / "phantom_echo-1_MESE.nii.gz").is_file() and not (out / "phantom_MESE.nii.gz").exists()
    with pytest.raises(InputError, match="format"):
        write(ph, tmp_path / "p", format="analyze")
    with pytest.raises(InputError, match="DICOM"):
        write(ph, tmp_path / "p", shuffle_files=True)
    with pytest.raises(InputError, match="per_series_rescale"):
        write(ph, tmp_path / "p", format="dicom-enhanced", per_series_rescale=True)
    assert not (tmp_path / "p").exists()


def test_cli(tmp_path, capsys):
    assert main(["phantom", "--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert "ferriscan-1.5t-lic15" in listed and listed[0] == "ferriscan-1.5t"  # the default first
    # no NAME: the default phantom (what `r2mri demo` analyses)
    assert main(["phantom", "-o", str(tmp_path / "d"), "--snr", "inf"]) == 0
    assert json.loads((tmp_path / "d" / "truth.json").read_text())["spec_name"] == "ferriscan-1.5t"
    spec = tmp_path / "tiny.toml"
    spec.write_text("lic_mg_per_g = 1.8\nmatrix = [32, 32]\npixel_mm = 12.0\nn_slices = 2\n")
    rc = main(["phantom", str(spec), "-o", str(tmp_path / "o"), "--format", "dicom", "--seed", "3",
               "--snr", "25", "--lic", "15"])
    assert rc == 0
    truth = json.loads((tmp_path / "o" / "truth.json").read_text())
    assert truth["seed"] == 3 and truth["snr"] == 25 and truth["lic_of_mean_r2_mg_per_g"] == pytest.approx(15.0)
    assert len(list((tmp_path / "o" / "dicom").rglob("*.dcm"))) == 10
    rc = main(["phantom", str(spec), "-o", str(tmp_path / "q"), "--snr", "inf", "--zero-background"])
    assert rc == 0 and json.loads((tmp_path / "q" / "truth.json").read_text())["noise_sigma"] == 0.0
    assert main(["phantom", "nope", "-o", str(tmp_path / "z")]) == 2
    assert "r2mri: error:" in capsys.readouterr().err


def test_cli_texture_and_focal(tmp_path):
    """--texture-sd / --texture-voxels / --focal reach the spec and the truth (issue 16)."""
    import nibabel as nib

    spec = tmp_path / "tex.toml"
    spec.write_text("lic_mg_per_g = 5.0\nlic_cv = 0.3\nmatrix = [48, 40]\npixel_mm = 8.0\nn_slices = 3\n"
                    "[[focal]]\ncenter_mm = [-40.0, -30.0, 0.0]\nradius_mm = 12.0\nlic_mg_per_g = 0.8\n")
    rc = main(["phantom", str(spec), "-o", str(tmp_path / "t"), "--snr", "inf", "--texture-sd", "0.25",
               "--texture-voxels", "2", "--focal=-90,0,0,20,25"])
    assert rc == 0
    truth = json.loads((tmp_path / "t" / "truth.json").read_text())
    assert truth["texture_log_sd"] == 0.25 and truth["texture_scale_voxels"] == 2.0
    assert truth["spec"]["lic_cv"] == 0.0  # replaced, not an error for giving the spread twice
    assert truth["spec"]["focal"] == [{"center_mm": [-90.0, 0.0, 0.0], "radius_mm": 20.0, "lic_mg_per_g": 25.0}]
    lic = np.asanyarray(nib.load(tmp_path / "t" / "truth" / "lic_mg_per_g.nii.gz").dataobj)
    liver = lic[np.isfinite(lic)]
    # the focal sphere is exactly 25 mg/g; the spec's spared region (0.8 mg/g) is gone: the
    # lowest texture voxel of a 5 mg/g liver with log-SD 0.25 over ~800 voxels is > 5 e^-4sd ~ 1.8
    assert liver.max() == pytest.approx(25.0) and liver.min() > 1.5
    rc = main(["phantom", str(spec), "-o", str(tmp_path / "u"), "--snr", "inf", "--texture-sd", "0", "--no-focal"])
    truth = json.loads((tmp_path / "u" / "truth.json").read_text())
    assert rc == 0 and truth["cv_liver_r2"] == pytest.approx(0.0, abs=1e-6) and truth["spec"]["focal"] == []
    with pytest.raises(SystemExit) as e:  # argparse: usage line and exit status 2
        main(["phantom", str(spec), "-o", str(tmp_path / "z"), "--focal", "1,2,3"])
    assert e.value.code == 2 and not (tmp_path / "z").exists()
