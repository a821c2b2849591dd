"""Everything r2mri.phantom.write produces must load back onto the phantom's own grid."""

from __future__ import annotations

import numpy as np
import pytest

import r2mri

phantom = pytest.importorskip("r2mri.phantom")

FORMATS = ["nifti", "nifti-per-echo", "dicom", "dicom-multiecho", "dicom-enhanced"]


@pytest.fixture(scope="module")
def small():
    return phantom.generate(seed=1, matrix=(16, 12), n_slices=3)


def _inputs(out, fmt):
    if fmt == "nifti":
        return sorted(p for p in out.glob("*.nii*"))
    if fmt == "nifti-per-echo":
        return sorted(out.glob("*_echo-*.nii*"))
    return [out / "dicom"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_phantom_round_trip(tmp_path, small, fmt):
    out = phantom.write(small, tmp_path / "o", format=fmt)
    paths = _inputs(out, fmt)
    img = r2mri.load(paths[0] if fmt == "nifti" else paths)
    ref = small.image
    assert img.shape == ref.shape
    np.testing.assert_allclose(img.echo_times_s, ref.echo_times_s, rtol=0, atol=1e-9)
    np.testing.assert_allclose(img.affine, ref.affine, atol=1e-4)
    # DICOM stores integers with a rescale slope: compare within one quantisation step
    tol = 0 if fmt.startswith("nifti") else 2e-5 * float(ref.data.max())
    np.testing.assert_allclose(img.data, ref.data, rtol=0, atol=tol)
    assert img.field_strength_t == ref.field_strength_t
    assert not [f for f in img.protocol_report() if f.severity == "error"]


def test_phantom_per_series_rescale_and_shuffled_names(tmp_path, small):
    out = phantom.write(small, tmp_path / "o", format="dicom", per_series_rescale=True, shuffle_files=True)
    img = r2mri.load(out)
    np.testing.assert_allclose(img.data, small.image.data, rtol=0, atol=2e-5 * float(small.image.data.max()))
    assert "rescale-differs" in {f.code for f in img.protocol_report()}
