"""Masks: NIfTI on the image grid (also flipped/permuted), DICOM SEG, mismatches refused."""

from __future__ import annotations

import warnings

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

import r2mri
from r2mri import InputError

import dicom_fixtures as fx


@pytest.fixture()
def image(tmp_path):
    fx.write_per_te_series(tmp_path / "dicom", rows=6, cols=5, n_slices=3)
    return r2mri.load(tmp_path / "dicom")


def _mask(shape, seed=0):
    return np.random.default_rng(seed).random(shape) > 0.5


def test_nifti_same_grid(tmp_path, image):
    m = _mask(image.shape)
    nib.save(nib.Nifti1Image(m.astype(np.uint8), image.affine), tmp_path / "m.nii.gz")
    out = r2mri.load_mask(tmp_path / "m.nii.gz", image)
    assert out.dtype == bool and out.shape == image.shape
    np.testing.assert_array_equal(out, m)


def test_nifti_flipped_and_permuted_grid(tmp_path, image):
    m = _mask(image.shape, 1)
    # store with axes (z, x, y) and x reversed: new voxel (k, i', j) = old (n_x-1-i', j, k)
    nx = image.shape[0]
    arr = np.transpose(m[::-1], (2, 0, 1))
    flip = np.eye(4)
    flip[0, 0] = -1
    flip[0, 3] = nx - 1
    perm = np.zeros((4, 4))
    perm[2, 0] = perm[0, 1] = perm[1, 2] = perm[3, 3] = 1  # new index (k, i, j) -> old (i, j, k)
    aff = image.affine @ flip @ perm
    nib.save(nib.Nifti1Image(arr.astype(np.int16), aff), tmp_path / "p.nii")
    # sanity: same world position for one voxel
    np.testing.assert_allclose(aff @ [2, 1, 3, 1], image.affine @ [nx - 2, 3, 2, 1])
    np.testing.assert_array_equal(r2mri.load_mask(tmp_path / "p.nii", image), m)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a: a @ np.diag([2.0, 1, 1, 1]), "voxel size"),
        (lambda a: a @ np.array([[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "between image voxels"),
        (lambda a: a @ np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "does not cover"),
        (lambda a: np.array([[np.cos(0.3), -np.sin(0.3), 0, 0], [np.sin(0.3), np.cos(0.3), 0, 0],
                             [0, 0, 1, 0], [0, 0, 0, 1]]) @ a, "rotated"),
    ],
)
def test_nifti_other_grid_refused(tmp_path, image, change, match):
    nib.save(nib.Nifti1Image(_mask(image.shape).astype(np.uint8), change(image.affine)), tmp_path / "m.nii.gz")
    with pytest.raises(InputError, match=match):
        r2mri.load_mask(tmp_path / "m.nii.gz", image)


def test_nifti_wrong_shape_refused(tmp_path, image):
    nib.save(nib.Nifti1Image(np.ones((5, 6, 2), np.uint8), image.affine), tmp_path / "m.nii.gz")
    with pytest.raises(InputError, match="does not cover"):
        r2mri.load_mask(tmp_path / "m.nii.gz", image)


def _write_seg(image, mask_xyz, path, *, omit_empty=True):
    files = [f for f in image.metadata["echo_files"][0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sources = [pydicom.dcmread(f) for f in files]
        desc = hd.seg.SegmentDescription(
            segment_number=1,
            segment_label="liver",
            segmented_property_category=codes.SCT.Organ,
            segmented_property_type=codes.SCT.Liver,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=np.transpose(mask_xyz, (2, 1, 0)).astype(np.uint8),  # (slice, row, col)
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[desc],
            series_instance_uid=hd.UID(),
            series_number=99,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="r2mri-tests",
            manufacturer_model_name="test",
            software_versions="0",
            device_serial_number="0",
            omit_empty_frames=omit_empty,
        )
        seg.save_as(path)


def test_dicom_seg_all_frames(tmp_path, image):
    m = np.zeros(image.shape, bool)
    m[1:4, 2:5, 1] = True
    m[0, 0, 2] = True
    _write_seg(image, m, tmp_path / "seg.dcm", omit_empty=False)
    np.testing.assert_array_equal(r2mri.load_mask(tmp_path / "seg.dcm", image), m)


def test_dicom_seg_middle_slice_only(tmp_path, image):
    m = np.zeros(image.shape, bool)
    m[1:4, 2:5, 1] = True  # the SEG holds one frame; the loader pads the other slices
    _write_seg(image, m, tmp_path / "seg.dcm")
    np.testing.assert_array_equal(r2mri.load_mask(tmp_path / "seg.dcm", image), m)


def test_dicom_seg_other_image_refused(tmp_path, image):
    m = np.zeros(image.shape, bool)
    m[1, 1, 0] = True
    _write_seg(image, m, tmp_path / "seg.dcm")
    other = r2mri.MultiEchoImage(image.data, image.echo_times_s, affine=image.affine @ np.diag([2.0, 1, 1, 1]))
    with pytest.raises(InputError, match="voxel size"):
        r2mri.load_mask(tmp_path / "seg.dcm", other)


def test_bad_mask_files(tmp_path, image):
    with pytest.raises(InputError, match="no such mask file"):
        r2mri.load_mask(tmp_path / "absent.nii.gz", image)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="neither NIfTI"):
        r2mri.load_mask(tmp_path / "x.txt", image)
    with pytest.raises(InputError, match="Segmentation"):
        r2mri.load_mask(image.metadata["echo_files"][0][0], image)
