"""The real Siemens Skyra 3 T multi-echo spin-echo series (MR-BIAS, ../shared)."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest

import r2mri

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def siemens(siemens_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the loader itself must not leak pydicom warnings
        return r2mri.load(siemens_dir / "dicom")


def _dcm(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def test_echo_times_and_shape(siemens):
    assert siemens.shape == (256, 256, 1)
    assert siemens.n_echoes == 32
    np.testing.assert_allclose(siemens.echo_times_ms, np.arange(10.0, 330.0, 10.0), atol=1e-9)
    assert siemens.field_strength_t == 3.0
    assert siemens.manufacturer == "SIEMENS"
    assert siemens.sequence == "SE-CPMG" and siemens.echo_train_length == 32
    m = siemens.metadata
    assert m["repetition_time_s"] == 5.0 and m["flip_angle_deg"] == 180.0
    assert m["series_instance_uids"][0] == "1.2.840.113704.7.32.05.2.19.46069.201909141551006158202343.0.0.0"
    assert m["patient_id"] == "H20QMDSYS" and m["study_date"] == "20190914"
    assert m["skipped_files"][0].endswith("VERSION")
    # one file per echo, in TE order: I1000000 is TE 10, I1000001 TE 100
    assert m["echo_files"][0][0].endswith("I1000000") and m["echo_files"][9][0].endswith("I1000001")


def test_geometry_matches_header(siemens, siemens_dir):
    ds = _dcm(siemens_dir / "dicom" / "I1000000")
    iop = np.asarray(ds.ImageOrientationPatient, float)
    ipp = np.asarray(ds.ImagePositionPatient, float)
    assert siemens.voxel_size_mm == pytest.approx((0.9765625, 0.9765625, 6.0))
    # voxel (i=col, j=row) centre in LPS = IPP + i*dc*F_row + j*dr*F_col; RAS flips x, y
    for i, j in [(0, 0), (255, 0), (0, 255), (100, 37)]:
        lps = ipp + i * 0.9765625 * iop[:3] + j * 0.9765625 * iop[3:]
        np.testing.assert_allclose((siemens.affine @ [i, j, 0, 1])[:3], lps * [-1, -1, 1], atol=1e-6)
    assert len(siemens.source_datasets) == 1
    assert siemens.source_datasets[0].SOPInstanceUID == ds.SOPInstanceUID


def test_voxels_equal_pydicom(siemens, siemens_dir):
    for name, echo in [("I1000000", 0), ("I5000000", 4), ("I3200000", 31)]:
        ds = _dcm(siemens_dir / "dicom" / name)
        assert float(ds.EchoTime) == siemens.echo_times_ms[echo]
        px = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(siemens.data[:, :, 0, echo], px.T)
        for row, col in [(128, 128), (75, 127), (10, 200)]:
            assert siemens.data[col, row, 0, echo] == px[row, col]


def test_protocol_findings(siemens):
    f = {x.code: x for x in siemens.protocol_report()}
    assert f["cpmg-echo-train"].severity == "warning"
    assert f["cpmg-echo-train"].details["echo_train_length"] == 32
    assert f["field-strength-3t"].severity == "warning"
    clip = f["clipped-voxels"]
    assert clip.severity == "warning"
    # counted independently: voxels at 4095 = 2**BitsStored - 1 in echo 1 (TE 10 ms)
    assert clip.details["clipped_voxels_per_echo"][0] == int(np.count_nonzero(siemens.data[..., 0] == 4095))
    assert clip.details["clipped_voxels_per_echo"][0] == 19559
    assert max(clip.details["clipped_voxels_per_echo"]) == 22992
    assert not any(x.severity == "error" for x in f.values())
    assert set(f) == {"cpmg-echo-train", "field-strength-3t", "clipped-voxels"}
