"""Property tests: any orientation, spacing, slice order and stack shear -> each voxel where DICOM says."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.uid import generate_uid

import r2mri

import dicom_fixtures as fx


def _rotation(q):
    q = np.asarray(q, float)
    q = q / np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    q=st.tuples(*[st.floats(-1, 1) for _ in range(4)]).filter(lambda q: np.linalg.norm(q) > 0.2),
    dr=st.floats(0.3, 4.0), dc=st.floats(0.3, 4.0), step=st.floats(0.5, 10.0),
    n_slices=st.integers(1, 4), rows=st.integers(1, 5), cols=st.integers(1, 5),
    shear=st.floats(-0.5, 0.5), origin=st.tuples(*[st.floats(-300, 300) for _ in range(3)]),
    seed=st.integers(0, 1000),
)
def test_voxel_world_positions(q, dr, dc, step, n_slices, rows, cols, shear, origin, seed):
    R = _rotation(q)
    row_cos, col_cos = R[:, 0], R[:, 1]
    normal = np.cross(row_cos, col_cos)
    rng = np.random.default_rng(seed)
    tes = (5.0, 10.0)
    raw = rng.integers(0, 4095, size=(n_slices, len(tes), rows, cols)).astype(np.uint16)
    positions = [np.asarray(origin) + k * step * normal + k * shear * row_cos for k in range(n_slices)]
    study, series, for_uid = generate_uid(), generate_uid(), generate_uid()
    with tempfile.TemporaryDirectory() as tmp:
        order = rng.permutation(n_slices * len(tes))
        for n, idx in enumerate(order):
            k, e = divmod(int(idx), len(tes))
            ds = fx.base_dataset(rows=rows, cols=cols, study_uid=study, series_uid=series, for_uid=for_uid,
                                 series_number=1, description="p", te_ms=tes[e])
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = n + 1
            ds.ImagePositionPatient = [float(v) for v in positions[k]]
            ds.ImageOrientationPatient = [float(v) for v in np.r_[row_cos, col_cos]]
            ds.PixelSpacing = [dr, dc]
            ds.SliceThickness = step
            ds.PixelData = raw[k, e].tobytes()
            ds.save_as(Path(tmp) / f"f{n}.dcm", enforce_file_format=True)
        img = r2mri.load(tmp)
    # DS values are written with limited precision: compare world positions within 1e-3 mm
    for k in range(n_slices):
        for i, j in [(0, 0), (cols - 1, 0), (0, rows - 1), (cols - 1, rows - 1)]:
            lps = positions[k] + i * dc * row_cos + j * dr * col_cos
            np.testing.assert_allclose((img.affine @ [i, j, k, 1])[:3], lps * [-1, -1, 1], atol=2e-3)
        np.testing.assert_array_equal(img.data[:, :, k, :], np.transpose(raw[k], (2, 1, 0)))
