"""NIfTI loading: 4-D + sidecar, per-echo files + sidecars, echo_times_ms, errors."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

import r2mri
from r2mri import InputError

import dicom_fixtures as fx


def test_4d_with_sidecar(tmp_path):
    paths, truth = fx.write_nifti_4d(tmp_path)
    img = r2mri.load(paths[0])
    np.testing.assert_array_equal(img.data, truth["data"])
    np.testing.assert_allclose(img.affine, truth["affine"], atol=1e-5)
    np.testing.assert_allclose(img.echo_times_ms, [6, 9, 12, 15, 18], atol=1e-9)
    assert img.field_strength_t == 1.5 and img.manufacturer == "TESTCO"
    assert img.sequence == "SE" and img.echo_train_length == 1
    assert img.metadata["repetition_time_s"] == 1.0
    assert img.metadata["format"] == "nifti" and img.source_datasets is None
    assert [f.code for f in img.protocol_report()] == ["ferriscan-echo-times"]


def test_4d_sidecar_unsorted_echoes_are_sorted(tmp_path):
    paths, truth = fx.write_nifti_4d(tmp_path, echo_times_ms=(12, 6, 9))
    img = r2mri.load(paths[0])
    np.testing.assert_allclose(img.echo_times_ms, [6, 9, 12], atol=1e-9)
    np.testing.assert_array_equal(img.data, truth["data"][..., [1, 2, 0]])


def test_per_echo_files_sorted_by_sidecar_echo_time(tmp_path):
    paths, truth = fx.write_nifti_per_echo(tmp_path, echo_times_ms=(9, 6, 12))
    img = r2mri.load(paths)
    np.testing.assert_allclose(img.echo_times_ms, [6, 9, 12], atol=1e-9)
    np.testing.assert_array_equal(img.data, truth["data"][..., [1, 0, 2]])
    assert img.metadata["echo_files"] == [[str(paths[1])], [str(paths[0])], [str(paths[2])]]


def test_glob_with_sidecars_and_folder_hint(tmp_path):
    paths, truth = fx.write_nifti_per_echo(tmp_path, echo_times_ms=(6, 9, 12))
    img = r2mri.load(sorted(tmp_path.iterdir()))  # .nii.gz and .json, like a shell glob
    np.testing.assert_array_equal(img.data, truth["data"])
    with pytest.raises(InputError, match="NIfTI files are there"):
        r2mri.load(tmp_path)


def test_echo_times_from_caller(tmp_path):
    paths, truth = fx.write_nifti_4d(tmp_path, sidecar=False, echo_times_ms=(6, 9, 12))
    with pytest.raises(InputError, match="no echo times"):
        r2mri.load(paths[0])
    img = r2mri.load(paths[0], echo_times_ms=[6, 9, 12])
    np.testing.assert_allclose(img.echo_times_s, [0.006, 0.009, 0.012])
    assert img.field_strength_t is None
    assert "echo-times-from-user" in {f.code for f in img.protocol_report()}
    with pytest.raises(InputError, match="echo_times_ms: 2 values given"):
        r2mri.load(paths[0], echo_times_ms=[6, 9])


def test_per_echo_without_sidecar_needs_echo_times(tmp_path):
    paths, truth = fx.write_nifti_per_echo(tmp_path, sidecar=False, echo_times_ms=(6, 9, 12))
    with pytest.raises(InputError, match="no echo time"):
        r2mri.load(paths)
    img = r2mri.load(paths, echo_times_ms=(6, 9, 12))
    np.testing.assert_array_equal(img.data, truth["data"])


def test_sidecar_and_image_disagree_on_echo_count(tmp_path):
    paths, _ = fx.write_nifti_4d(tmp_path, echo_times_ms=(6, 9, 12))
    (tmp_path / "sub-01_MESE.json").write_text(json.dumps({"EchoTime": [0.006, 0.009]}))
    with pytest.raises(InputError, match="sidecar lists 2 EchoTime values but the image has 3 echoes"):
        r2mri.load(paths[0])


def test_per_echo_grid_mismatch(tmp_path):
    paths, _ = fx.write_nifti_per_echo(tmp_path, echo_times_ms=(6, 9))
    img = nib.load(paths[1])
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.diag([1, 1, 2, 1])), paths[1])
    with pytest.raises(InputError, match="affine differs"):
        r2mri.load(paths)


def test_bad_nifti_inputs(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(InputError, match="unreadable NIfTI"):
        r2mri.load(bad, echo_times_ms=[1, 2])
    paths, _ = fx.write_nifti_4d(tmp_path / "a", echo_times_ms=(6, 9))
    (tmp_path / "a" / "sub-01_MESE.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable JSON sidecar"):
        r2mri.load(paths[0])
    with pytest.raises(InputError, match="mix of NIfTI"):
        r2mri.load([paths[0], tmp_path])
    one = tmp_path / "one.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.float32), np.eye(4)), one)
    with pytest.raises(InputError, match="only one echo"):
        r2mri.load(one, echo_times_ms=[5])
    nan = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(np.full((2, 2, 1, 2), np.nan, np.float32), np.eye(4)), nan)
    with pytest.raises(InputError, match="NaN"):
        r2mri.load(nan, echo_times_ms=[5, 10])


def test_per_echo_sidecars_with_different_tr_flagged(tmp_path):
    paths, _ = fx.write_nifti_per_echo(tmp_path, echo_times_ms=(6, 9, 12))
    sc = tmp_path / "sub-01_echo-2_MESE.json"
    meta = json.loads(sc.read_text())
    meta["RepetitionTime"] = 1.2
    sc.write_text(json.dumps(meta))
    f = {x.code: x for x in r2mri.load(paths).protocol_report()}
    assert f["repetition-time-differs"].severity == "error"
    assert sorted(f["repetition-time-differs"].details["per_series"].values()) == [1000.0, 1000.0, 1200.0]


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_header_describing_fewer_voxels_than_the_file_holds_is_refused(tmp_path, suffix):
    # nibabel reads the first voxels only: a lowered dimension would load a crop (fuzz 4256)
    paths, _ = fx.write_nifti_4d(tmp_path)
    img = nib.load(paths[0])
    data = np.asarray(img.dataobj)
    out = tmp_path / f"me{suffix}"
    nib.save(nib.Nifti1Image(data, img.affine, img.header), out)
    raw = bytearray(out.read_bytes() if suffix == ".nii" else __import__("gzip").decompress(out.read_bytes()))
    dim1 = np.frombuffer(bytes(raw[42:44]), "<i2")[0]
    raw[42:44] = np.int16(dim1 - 1).tobytes()  # dim[1] of the NIfTI-1 header
    out.write_bytes(bytes(raw) if suffix == ".nii" else __import__("gzip").compress(bytes(raw)))
    (tmp_path / "me.json").write_text(paths[0].with_name(paths[0].name.split(".")[0] + ".json").read_text())
    with pytest.raises(InputError, match="but the file holds .* bytes: the header does not match"):
        r2mri.load(out)


def test_malformed_sidecar_values_count_as_absent(tmp_path):
    # a list where a number belongs crashed the protocol checks (fuzz 4461)
    paths, truth = fx.write_nifti_4d(tmp_path)
    side = paths[0].with_name(paths[0].name.split(".")[0] + ".json")
    meta = json.loads(side.read_text())
    meta.update(PhilipsScaleSlope=[1.0, 2.0], FlipAngle={"x": 1}, EchoTrainLength="many")
    side.write_text(json.dumps(meta))
    img = r2mri.load(paths[0])
    np.testing.assert_array_equal(img.data, truth["data"])
    img.protocol_report()
    s = img.metadata["series"][0]
    assert s["philips_scale_slopes"] == [] and s["flip_angle_deg"] is None and s["echo_train_length"] is None
