"""Enhanced MR frames at several echo times: separate single-echo acquisitions or a CPMG train.

The rule (r2mri/io/_enhanced_train.py, DICOM PS3.3 C.8.13.5.2): Echo Train Length
(0018,0091) counts k-space lines per excitation whatever the number of frames, so 1 on
every frame makes the echoes single-echo acquisitions; RF Echo Train Length (per frame)
and Multiple Spin Echo NO alone do not, and contradicting values keep the CPMG reading.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import r2mri
from r2mri.calibration import check_applicability
from r2mri.errors import CalibrationError
from r2mri.phantom import generate, write

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """The FerriScan phantom written as one Enhanced MR object and as one series per TE."""
    root = tmp_path_factory.mktemp("enh")
    ph = generate("ferriscan-1.5t-lic3.2", matrix=(12, 10), pixel_mm=24.0, n_slices=2)
    return {"enhanced": write(ph, root / "enh", format="dicom-enhanced") / "dicom",
            "per_te": write(ph, root / "pte", format="dicom") / "dicom"}


def _edit(src, dst, **values):
    ds = pydicom.dcmread(src / "IM0001.dcm")
    for item in ds.SharedFunctionalGroupsSequence[0].MRTimingAndRelatedParametersSequence:
        for k in ("EchoTrainLength", "RFEchoTrainLength"):
            if k in values:
                if values[k] is None:
                    del item[k]
                else:
                    setattr(item, k, values[k])
    if "MultipleSpinEcho" in values:
        ds.MultipleSpinEcho = values["MultipleSpinEcho"]
    dst.mkdir()
    ds.save_as(dst / "IM0001.dcm")
    return dst


def test_ferriscan_enhanced_loads_as_single_echo_like_per_te_series(exports):
    enh = r2mri.load(exports["enhanced"])
    pte = r2mri.load(exports["per_te"])
    assert (enh.sequence, enh.echo_train_length) == ("SE", 1) == (pte.sequence, pte.echo_train_length)
    np.testing.assert_array_equal(enh.echo_times_ms, pte.echo_times_ms)
    # same stored values and slope: the same image, to float32 rounding
    np.testing.assert_allclose(enh.data, pte.data, rtol=1e-6, atol=0)
    codes = {f.code: f for f in enh.protocol_report()}
    assert "enhanced-single-echo-frames" in codes and codes["enhanced-single-echo-frames"].severity == "warning"
    assert "5 echo times" in codes["enhanced-single-echo-frames"].message
    assert not {"cpmg-echo-train", "echo-train-length-contradicts"} & set(codes)
    # St Pierre (single-echo spin echo, 1.5 T) applies as it does to the per-TE export
    check_applicability("st-pierre-2005", enh)


@pytest.mark.parametrize("values, why", [
    (dict(EchoTrainLength=5, RFEchoTrainLength=5), "a 5-echo train"),
    (dict(EchoTrainLength=None), "Echo Train Length not recorded"),
    (dict(RFEchoTrainLength=2), "RF echoes per frame contradict one line per excitation"),
    (dict(MultipleSpinEcho="YES"), "turbo spin echo contradicts one line per excitation"),
])
def test_train_kept_when_echo_train_length_does_not_say_one(exports, tmp_path, values, why):
    img = r2mri.load(_edit(exports["enhanced"], tmp_path / "e", **values))
    assert img.sequence == "SE-CPMG", why
    assert img.echo_train_length == 5
    assert "enhanced-single-echo-frames" not in {f.code for f in img.protocol_report()}
    with pytest.raises(CalibrationError, match="CPMG"):
        check_applicability("st-pierre-2005", img)


def test_cpmg_phantom_stays_a_train(tmp_path):
    ph = generate("cpmg-1.5t-lic3.2", matrix=(8, 8), pixel_mm=36.0, n_slices=1)
    img = r2mri.load(write(ph, tmp_path / "c", format="dicom-enhanced") / "dicom")
    assert (img.sequence, img.echo_train_length) == ("SE-CPMG", ph.image.echo_train_length)
