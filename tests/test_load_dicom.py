"""DICOM loading: per-TE series, multi-echo series, Enhanced MR, selection, geometry, errors."""

from __future__ import annotations

import numpy as np
import nibabel as nib
import pydicom
import pytest

import r2mri
from r2mri import InputError
from r2mri.io import list_datasets

import dicom_fixtures as fx


def _assert_matches(img, truth):
    np.testing.assert_array_equal(img.data, truth["data"].astype(np.float32))
    np.testing.assert_allclose(img.echo_times_s, truth["echo_times_ms"] * 1e-3, rtol=0, atol=1e-12)
    np.testing.assert_allclose(img.affine, truth["affine"], rtol=0, atol=1e-9)


def test_per_te_series_exact_values_geometry_and_metadata(tmp_path):
    paths, truth = fx.write_per_te_series(tmp_path / "dicom")
    (tmp_path / "dicom" / "VERSION").write_text("not dicom\n")
    (tmp_path / "dicom" / "notes.txt").write_text("hello")
    img = r2mri.load(tmp_path)
    _assert_matches(img, truth)
    assert img.shape == (5, 6, 3)
    assert img.voxel_size_mm == pytest.approx((1.25, 1.5, 7.5))
    assert img.field_strength_t == 1.5
    assert img.sequence == "SE" and img.echo_train_length == 1
    m = img.metadata
    assert m["dataset_kind"] == "per-te-series"
    assert m["series_instance_uids"] == truth["series_uids"]
    assert m["study_instance_uid"] == truth["study_uid"]
    assert m["frame_of_reference_uid"] == truth["for_uid"]
    assert m["repetition_time_s"] == 1.0 and m["flip_angle_deg"] == 90.0
    assert m["patient_id"] == "P-001" and m["accession_number"] == "ACC42"
    assert m["study_date"] == "20260101" and m["patient_name"] == "TEST^LIVER"
    assert m["pixel_spacing_mm"] == [1.5, 1.25]
    assert m["slice_thickness_mm"] == 5.0
    assert m["slice_spacing_mm"] == pytest.approx(7.5)
    assert m["slice_gap_mm"] == pytest.approx(2.5)
    assert len(m["series"]) == 5 and {s["receive_coil"] for s in m["series"]} == {"Body"}
    assert sorted(m["skipped_files"]) == sorted(str(tmp_path / "dicom" / n) for n in ("VERSION", "notes.txt"))
    # echo_files: per echo, files in slice order (first echo's files are the source datasets)
    assert [len(f) for f in m["echo_files"]] == [3] * 5
    src = img.source_datasets
    assert len(src) == 3 and all("PixelData" not in d for d in src)
    normal = fx.NORMAL
    pos = [float(np.dot(np.asarray(d.ImagePositionPatient, float), normal)) for d in src]
    assert pos == sorted(pos)
    assert [str(d.SeriesInstanceUID) for d in src] == [truth["series_uids"][0]] * 3
    assert [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in m["echo_files"][0]] == [
        d.SOPInstanceUID for d in src
    ]


def test_rescale_applied_per_file(tmp_path):
    rescale = [(1.0, 0.0), (2.0, 0.0), (0.5, 3.0), (1.0, -10.0), (0.25, 0.0)]
    _, truth = fx.write_per_te_series(tmp_path, rescale=rescale)
    img = r2mri.load(tmp_path)
    _assert_matches(img, truth)
    # a voxel by hand: stored * slope + intercept
    raw = truth["raw"]
    assert img.data[2, 4, 1, 2] == np.float32(raw[1, 2, 4, 2] * 0.5 + 3.0)


def test_philips_private_scale_differing_converts_to_floating_values(tmp_path):
    ss = [1.0, 2.0, 1.0, 1.0, 4.0]
    _, truth = fx.write_per_te_series(tmp_path, philips_scale=ss)
    img = r2mri.load(tmp_path)
    assert img.metadata["philips_floating_point_values"] is True
    np.testing.assert_allclose(img.data, truth["data"] / np.array(ss), rtol=1e-6)
    codes = {f.code: f.severity for f in img.protocol_report()}
    assert codes["philips-scale-differs"] == "warning"


def test_philips_private_scale_identical_keeps_display_values(tmp_path):
    _, truth = fx.write_per_te_series(tmp_path, philips_scale=[3.0] * 5)
    img = r2mri.load(tmp_path)
    assert img.metadata["philips_floating_point_values"] is False
    _assert_matches(img, truth)


def test_multiecho_series_sorted_by_echo_time_and_position(tmp_path):
    _, truth = fx.write_multiecho_series(tmp_path)
    img = r2mri.load(tmp_path)
    _assert_matches(img, truth)
    assert img.metadata["dataset_kind"] == "multi-echo"
    assert img.sequence == "SE-CPMG" and img.echo_train_length == 4
    assert img.field_strength_t == 3.0


def test_multiecho_without_echo_time_uses_echo_numbers_and_user_times(tmp_path):
    _, truth = fx.write_multiecho_series(tmp_path, with_te=False)
    with pytest.raises(InputError, match="EchoTime is missing"):
        r2mri.load(tmp_path)
    img = r2mri.load(tmp_path, echo_times_ms=[10, 20, 30, 40])
    _assert_matches(img, truth)
    assert "echo-times-from-user" in {f.code for f in img.protocol_report()}
    with pytest.raises(InputError, match="echo_times_ms: 3 values given"):
        r2mri.load(tmp_path, echo_times_ms=[10, 20, 30])


def test_enhanced_mr_multiframe(tmp_path):
    _, truth = fx.write_enhanced(tmp_path / "enh.dcm")
    img = r2mri.load(tmp_path / "enh.dcm")
    _assert_matches(img, truth)
    assert img.metadata["dataset_kind"] == "enhanced"
    assert img.metadata["repetition_time_s"] == 1.0
    # five echoes at each slice position of one object: a multi-echo train, whatever
    # EchoTrainLength (1 here) says (docs/loading.md, tests/test_vendor_headers.py)
    assert img.echo_train_length == 5 and img.sequence == "SE-CPMG"
    assert len(img.source_datasets) == 1 and img.source_datasets[0].NumberOfFrames == 15


def test_affine_agrees_with_nibabel_dicom_wrapper_and_nifti_round_trip(tmp_path):
    paths, truth = fx.write_per_te_series(tmp_path / "d", n_slices=3)
    img = r2mri.load(tmp_path / "d")
    # independent check: nibabel's own DICOM wrapper, one slice at a time
    with pytest.warns(UserWarning):  # "DICOM readers are highly experimental"
        from nibabel.nicom import dicomwrappers

    for k, ds in enumerate(img.source_datasets):
        w = dicomwrappers.wrapper_from_data(ds)
        ijk = np.array([[0, 0, 0, 1], [4, 0, 0, 1], [0, 5, 0, 1], [3, 2, 0, 1]], float).T
        ours = img.affine @ (ijk + np.array([[0], [0], [k], [0]]))
        # nibabel.nicom indexes (row, column) and its affine is LPS: swap i/j, flip x/y
        lps_theirs = w.affine @ ijk[[1, 0, 2, 3]]
        np.testing.assert_allclose(ours[:3], np.diag([-1, -1, 1]) @ lps_theirs[:3], atol=1e-6)
        # and the pixel values agree: ours is theirs transposed
        w_pix = dicomwrappers.wrapper_from_data(pydicom.dcmread(img.metadata["echo_files"][0][k]))
        np.testing.assert_array_equal(img.data[:, :, k, 0], w_pix.get_data().T)
    # voxel world position straight from the DICOM header: IPP + i*dc*F_row + j*dr*F_col
    ds = img.source_datasets[1]
    i, j = 3, 4
    lps = (np.asarray(ds.ImagePositionPatient, float) + i * 1.25 * fx.ROW_COS + j * 1.5 * fx.COL_COS)
    np.testing.assert_allclose((img.affine @ [i, j, 1, 1])[:3], lps * [-1, -1, 1], atol=1e-9)
    # NIfTI round trip keeps every voxel at the same world position
    f = tmp_path / "rt.nii.gz"
    nib.save(nib.Nifti1Image(img.data, img.affine), f)
    back = nib.load(f)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(back.dataobj), img.data)
    # and a NIfTI reloaded through r2mri.load with the echo times gives the same image
    img2 = r2mri.load(f, echo_times_ms=img.echo_times_ms)
    np.testing.assert_array_equal(img2.data, img.data)
    np.testing.assert_allclose(img2.affine, img.affine, atol=1e-5)


def test_selection_rule_and_series_argument(tmp_path):
    _, me = fx.write_multiecho_series(tmp_path / "me", field_t=1.5)  # 4 echoes
    _, pt = fx.write_per_te_series(tmp_path / "pt")  # 5 echoes
    info = list_datasets(tmp_path)
    assert [c["kind"] for c in info["candidates"]] == ["per-te-series", "multi-echo"]
    img = r2mri.load(tmp_path)
    assert img.metadata["series_instance_uids"] == pt["series_uids"]
    assert len(img.metadata["candidates"]) == 2
    img = r2mri.load(tmp_path, series=me["series_uids"][0])
    _assert_matches(img, me)
    img = r2mri.load(tmp_path, series=pt["series_uids"][:3])
    assert img.echo_times_ms.tolist() == pytest.approx([6.0, 9.0, 12.0], abs=1e-12)
    with pytest.raises(InputError, match="not found"):
        r2mri.load(tmp_path, series="1.2.3")
    with pytest.raises(InputError, match="only one echo"):
        r2mri.load(tmp_path, series=pt["series_uids"][0])


def test_spin_echo_preferred_over_gradient_echo(tmp_path):
    _, se = fx.write_per_te_series(tmp_path / "se", echo_times_ms=(6, 9, 12))
    paths, gre = fx.write_multiecho_series(tmp_path / "gre", echo_times_ms=(1, 2, 3, 4, 5, 6))
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.ScanningSequence = "GR"
        ds.save_as(p)
    img = r2mri.load(tmp_path)
    assert img.metadata["series_instance_uids"] == se["series_uids"]
    img = r2mri.load(tmp_path / "gre")
    assert img.sequence == "GRE"
    assert "not-spin-echo" in {f.code for f in img.protocol_report()}


def test_duplicate_te_series_needs_explicit_choice(tmp_path):
    study, for_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    _, a = fx.write_per_te_series(tmp_path / "a", study_uid=study, for_uid=for_uid)
    _, b = fx.write_per_te_series(tmp_path / "b", echo_times_ms=(6,), study_uid=study, for_uid=for_uid,
                                  first_series_number=30)
    with pytest.raises(InputError, match="same echo time"):
        r2mri.load(tmp_path)
    img = r2mri.load(tmp_path, series=[b["series_uids"][0]] + a["series_uids"][1:])
    assert img.metadata["series_instance_uids"][0] == b["series_uids"][0]


def test_single_echo_only_is_refused(tmp_path):
    fx.write_per_te_series(tmp_path, echo_times_ms=(6,))
    with pytest.raises(InputError, match="no multi-echo dataset"):
        r2mri.load(tmp_path)


def test_no_dicom_found(tmp_path):
    (tmp_path / "VERSION").write_text("1")
    with pytest.raises(InputError, match="no DICOM image found"):
        r2mri.load(tmp_path)
    with pytest.raises(InputError, match="not a DICOM file"):
        r2mri.load(tmp_path / "VERSION")
    # in a list of files (a shell glob) non-DICOM files are skipped like in a folder
    paths, truth = fx.write_multiecho_series(tmp_path / "d")
    img = r2mri.load([tmp_path / "VERSION"] + paths)
    _assert_matches(img, truth)
    assert img.metadata["skipped_files"] == [str(tmp_path / "VERSION")]
    with pytest.raises(InputError, match="no such file"):
        r2mri.load(tmp_path / "absent")


def test_dicomdir_is_skipped(tmp_path):
    _, truth = fx.write_per_te_series(tmp_path / "d")
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.FileSetID = "X"
    ds.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)
    img = r2mri.load(tmp_path)
    _assert_matches(img, truth)
    assert str(tmp_path / "DICOMDIR") in img.metadata["skipped_files"]


# ---------------------------------------------------------------------- geometry errors
def _edit(path, **changes):
    ds = pydicom.dcmread(path)
    for k, v in changes.items():
        setattr(ds, k, v)
    ds.save_as(path)


def test_missing_slice_detected(tmp_path):
    paths, _ = fx.write_per_te_series(tmp_path, n_slices=4, shuffle=False)
    # drop the second slice of every echo: positions 0, 2, 3 -> a 15 mm gap
    for e in range(5):
        paths[e * 4 + 1].unlink()
    with pytest.raises(InputError, match="missing slice"):
        r2mri.load(tmp_path)


def test_missing_slice_in_one_echo_detected(tmp_path):
    paths, truth = fx.write_per_te_series(tmp_path, n_slices=3, shuffle=False)
    paths[2 * 3 + 2].unlink()  # last slice of echo 3 (TE 12)
    with pytest.raises(InputError, match="slice"):
        r2mri.load(tmp_path, series=truth["series_uids"])


def test_duplicated_slice_detected(tmp_path):
    paths, _ = fx.write_multiecho_series(tmp_path, n_slices=2)
    ds = pydicom.dcmread(paths[0])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "copy.dcm")
    with pytest.raises(InputError, match="duplicated slice"):
        r2mri.load(tmp_path)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"PixelSpacing": [1.6, 1.25]}, "pixel spacing"),
        ({"ImageOrientationPatient": [1, 0, 0, 0, 1, 0]}, "orientation"),
        ({"ImagePositionPatient": [-20.5, 13.25, 45.0]}, "slice positions"),
    ],
)
def test_series_with_different_geometry_refused(tmp_path, change, match):
    paths, truth = fx.write_per_te_series(tmp_path, n_slices=1)
    _edit(paths[3], **change)
    with pytest.raises(InputError, match=match):
        r2mri.load(tmp_path, series=truth["series_uids"])
    # without series=, the odd series falls out of the group and the rest loads
    img = r2mri.load(tmp_path)
    assert img.n_echoes == 4


def test_all_series_different_geometry_says_why(tmp_path):
    paths, truth = fx.write_per_te_series(tmp_path, echo_times_ms=(6, 9), n_slices=1)
    _edit(paths[1], PixelSpacing=[2.0, 2.0])
    with pytest.raises(InputError, match="different echo times but differ in pixel spacing"):
        r2mri.load(tmp_path)


def test_different_matrix_refused(tmp_path):
    paths, truth = fx.write_per_te_series(tmp_path, echo_times_ms=(6, 9), n_slices=1, rows=4, cols=4)
    ds = pydicom.dcmread(paths[1])
    ds.Rows, ds.Columns = 2, 8
    ds.save_as(paths[1])
    with pytest.raises(InputError, match="matrix 4x4 vs 2x8"):
        r2mri.load(tmp_path, series=truth["series_uids"])


def test_inconsistent_frame_of_reference_refused(tmp_path):
    paths, truth = fx.write_per_te_series(tmp_path, echo_times_ms=(6, 9, 12), n_slices=1)
    _edit(paths[2], FrameOfReferenceUID=pydicom.uid.generate_uid())
    with pytest.raises(InputError, match="frame of reference"):
        r2mri.load(tmp_path, series=truth["series_uids"])


def test_truncated_pixel_data_refused(tmp_path):
    paths, _ = fx.write_per_te_series(tmp_path, n_slices=1)
    ds = pydicom.dcmread(paths[2])
    ds.PixelData = ds.PixelData[:-10]
    ds.save_as(paths[2])
    with pytest.raises(InputError, match=str(paths[2]).replace("\\", "\\\\") + ".*pixel data"):
        r2mri.load(tmp_path)


def test_truncated_file_refused(tmp_path):
    paths, _ = fx.write_per_te_series(tmp_path, n_slices=1)
    raw = paths[1].read_bytes()
    paths[1].write_bytes(raw[: len(raw) // 3])
    with pytest.raises(InputError, match=paths[1].name):
        r2mri.load(tmp_path)


def test_phase_images_ignored(tmp_path):
    paths, truth = fx.write_multiecho_series(tmp_path / "m")
    ds = pydicom.dcmread(paths[0])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "P", "ND"]
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.PixelData = bytes(len(ds.PixelData))
    ds.save_as(tmp_path / "m" / "phase.dcm")
    img = r2mri.load(tmp_path)
    _assert_matches(img, truth)


@pytest.mark.parametrize("cut", [0, 1, 60, 128, 130, 132, 140])
def test_a_series_whose_only_file_is_cut_short_is_refused_not_skipped(tmp_path, cut):
    # one slice per TE series: skipping the cut file would load 4 echoes of 5 silently
    paths, _ = fx.write_per_te_series(tmp_path, n_slices=1)
    paths[3].write_bytes(paths[3].read_bytes()[:cut])
    with pytest.raises(InputError, match=str(paths[3].name) + ".*(damaged|truncated|unreadable)"):
        r2mri.load(tmp_path)


def test_non_dicom_files_beside_a_series_are_still_skipped(tmp_path):
    paths, truth = fx.write_per_te_series(tmp_path / "d", n_slices=1)
    extra = {"VERSION": b"1\n", "notes.dcm": b"not an image\n", ".gitkeep": b"",
             "thumb.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256))}
    for name, raw in extra.items():
        (tmp_path / "d" / name).write_bytes(raw)
    img = r2mri.load(tmp_path)
    np.testing.assert_array_equal(img.data, truth["data"].astype(np.float32))
    assert img.n_echoes == 5
    assert sorted(img.metadata["skipped_files"]) == sorted(str(tmp_path / "d" / n) for n in extra)


def test_pixel_data_longer_than_the_header_describes_is_refused(tmp_path):
    # Rows lowered by one: pydicom would drop the excess bytes and load a smaller image
    # in every file alike, so that no geometry check between files can see it
    paths, _ = fx.write_multiecho_series(tmp_path / "m")
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.Rows = ds.Rows - 1
        ds.save_as(p)
    with pytest.raises(InputError, match="pixel data holds .* bytes but"):
        r2mri.load(tmp_path)
