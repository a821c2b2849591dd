"""Phase from NIfTI: BIDS part-mag/part-phase (and part-real/part-imag) pairs, phase= files,
the units rule and the checks against the magnitude (r2mri/io/_nifti_phase.py).

Tolerances: float32 radians read back exactly; the Siemens integer ranges (2 pi / 4096 per
step) within half a step, pi / 4096 rad (+ float32 rounding of the radians). Every mismatch
is one InputError line naming the file, never a silent pairing.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import struct

import nibabel as nib
import numpy as np
import pytest

import r2mri
from r2mri import InputError
from r2mri.cli import main
from r2mri.phantom import generate, write

SMALL = dict(matrix=(24, 20), pixel_mm=15.0, n_slices=2)
HALF_STEP = math.pi / 4096
MAG, PHASE = "phantom_MEGRE", "phantom_part-phase_MEGRE"


@pytest.fixture(scope="module")
def ph():
    return generate("gre-1.5t-fat15-lic3.2", **SMALL, seed=4)


@pytest.fixture(scope="module")
def nii(ph, tmp_path_factory):
    return write(ph, tmp_path_factory.mktemp("niiphase") / "nii", format="nifti", phase=True)


def _wrapped(a, b) -> np.ndarray:
    return np.abs(np.angle(np.exp(1j * (np.asarray(a, np.float64) - np.asarray(b, np.float64)))))


def _copy(nii, tmp_path, names: dict) -> dict:
    """Copy the phantom's files under new stems: {old stem: new stem}; returns new NIfTI paths."""
    out = {}
    for old, new in names.items():
        shutil.copy(nii / f"{old}.nii.gz", tmp_path / f"{new}.nii.gz")
        shutil.copy(nii / f"{old}.json", tmp_path / f"{new}.json")
        out[new] = tmp_path / f"{new}.nii.gz"
    return out


def _save(data, affine, path, side: dict | None, slope=None, inter=None):
    nib.save(nib.Nifti1Image(data, affine), str(path))
    if slope is not None:  # nibabel's writer sets scl_* itself: patch them in as dcm2niix writes them
        raw = bytearray(gzip.decompress(path.read_bytes()))
        raw[112:120] = struct.pack("<ff", slope, inter)  # NIfTI-1 header: scl_slope, scl_inter
        path.write_bytes(gzip.compress(bytes(raw)))
    if side is not None:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(side))
    return path


def _codes(img) -> dict:
    return {f.code: f for f in img.protocol_report()}


def test_part_phase_pairs_with_the_magnitude(ph, nii):
    img = r2mri.load(nii / f"{MAG}.nii.gz")
    np.testing.assert_array_equal(img.phase_rad, ph.image.phase_rad)  # float32 radians: exact
    np.testing.assert_array_equal(img.data, ph.image.data)
    assert img.metadata["phase"]["available"] and "part-phase" in img.metadata["phase"]["source"]
    codes = _codes(img)
    assert codes["gre-phase"].details == {"phase": True} and PHASE in codes["phase-paired"].message
    assert r2mri.load(nii / f"{MAG}.nii.gz", phase=False).phase_rad is None


def test_part_mag_and_glob_of_both_files(ph, nii, tmp_path):
    new = _copy(nii, tmp_path, {MAG: "sub-01_part-mag_MEGRE", PHASE: "sub-01_part-phase_MEGRE"})
    a = r2mri.load(new["sub-01_part-mag_MEGRE"])
    b = r2mri.load(sorted(tmp_path.iterdir()))  # a shell glob sub-01_*: both NIfTI and both sidecars
    for img in (a, b):
        np.testing.assert_array_equal(img.phase_rad, ph.image.phase_rad)
        np.testing.assert_array_equal(img.data, ph.image.data)


def test_explicit_phase_file_without_sidecar(ph, nii, tmp_path):
    p = _save(ph.image.phase_rad, ph.image.affine, tmp_path / "any_name.nii.gz", None)
    img = r2mri.load(nii / f"{MAG}.nii.gz", phase=p)  # echo times: the magnitude's
    np.testing.assert_array_equal(img.phase_rad, ph.image.phase_rad)
    assert "given by the user" in img.metadata["phase"]["source"]
    q = _save(ph.image.phase_rad[..., :-1], ph.image.affine, tmp_path / "five_echoes.nii.gz", None)
    with pytest.raises(InputError, match="five_echoes.nii.gz holds 5 echoes .* no sidecar EchoTime"):
        r2mri.load(nii / f"{MAG}.nii.gz", phase=q)


def test_per_echo_bids_files(ph, nii, tmp_path):
    img0 = ph.image
    for k in range(img0.n_echoes):
        side = {"EchoTime": float(img0.echo_times_s[k]), "MagneticFieldStrength": 1.5}
        _save(img0.data[..., k], img0.affine, tmp_path / f"sub-01_echo-{k + 1}_part-mag_MEGRE.nii.gz", side)
        _save(img0.phase_rad[..., k], img0.affine, tmp_path / f"sub-01_echo-{k + 1}_part-phase_MEGRE.nii.gz",
              dict(side, Units="rad"))
    mags = sorted(tmp_path.glob("*part-mag*.nii.gz"))[::-1]  # any order: echoes sort by EchoTime
    img = r2mri.load(mags)
    np.testing.assert_array_equal(img.phase_rad, img0.phase_rad)
    np.testing.assert_array_equal(img.data, img0.data)


@pytest.mark.parametrize("form", ["dcm2niix-siemens", "rescaled-int16"])
def test_siemens_integer_phase(ph, nii, tmp_path, form):
    stored = np.mod(np.rint(ph.image.phase_rad.astype(np.float64) * 2048 / np.pi) + 2048, 4096)
    side = {"EchoTime": list(map(float, ph.image.echo_times_s)), "Units": "arbitrary"}
    if form == "dcm2niix-siemens":  # stored 0..4095 with the DICOM rescale kept as scl_slope/scl_inter
        _save(stored.astype(np.int16), ph.image.affine, tmp_path / f"{PHASE}.nii.gz", side, 2.0, -4096.0)
    else:  # already rescaled, -4096..4094
        _save((2 * stored - 4096).astype(np.int16), ph.image.affine, tmp_path / f"{PHASE}.nii.gz", side)
    _copy(nii, tmp_path, {MAG: MAG})
    img = r2mri.load(tmp_path / f"{MAG}.nii.gz")
    assert _wrapped(img.phase_rad, ph.image.phase_rad).max() <= HALF_STEP * (1 + 1e-5) + 1e-6
    rule = "Siemens 0..4095 stored, scl_slope 2" if form == "dcm2niix-siemens" else "Siemens rescaled range"
    assert rule in img.metadata["phase"]["source"]


@pytest.mark.parametrize("case, match", [
    ("unscaled-0-4095", "phase units cannot be known .* 0 may be -pi"),
    ("rad-but-integers", "Units rad but values"),
    ("philips-500", "phase units cannot be known"),
    ("degrees", "Units 'deg' not recognised"),
    ("siemens-stored-too-high", "not integers within 0..4095"),
])
def test_units_that_cannot_be_read_are_refused(ph, nii, tmp_path, case, match):
    rad = ph.image.phase_rad.astype(np.float64)
    side = {"EchoTime": list(map(float, ph.image.echo_times_s))}
    slope = inter = None
    if case == "unscaled-0-4095":
        data = (np.mod(np.rint(rad * 2048 / np.pi) + 2048, 4096)).astype(np.int16)
    elif case == "rad-but-integers":
        data, side["Units"] = np.rint(rad * 4096 / np.pi).astype(np.int16), "rad"
    elif case == "philips-500":
        data = np.rint(rad * 500 / np.pi).astype(np.int16)
    elif case == "degrees":
        data, side["Units"] = np.degrees(rad).astype(np.float32), "deg"
    else:
        data, slope, inter = np.full(rad.shape, 5000, np.int16), 2.0, -4096.0
    _save(data, ph.image.affine, tmp_path / f"{PHASE}.nii.gz", side, slope, inter)
    _copy(nii, tmp_path, {MAG: MAG})
    with pytest.raises(InputError, match=match) as exc:
        r2mri.load(tmp_path / f"{MAG}.nii.gz")
    assert PHASE in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("change, match", [
    ("shape", "shape"), ("affine", "affine differs"), ("echo-times", "echo times"),
])
def test_phase_of_another_grid_or_echo_train_is_refused(ph, nii, tmp_path, change, match):
    data, aff = ph.image.phase_rad, ph.image.affine.copy()
    side = {"EchoTime": list(map(float, ph.image.echo_times_s)), "Units": "rad"}
    if change == "shape":
        data = data[:-1]
    elif change == "affine":
        aff[0, 3] += 5.0
    else:
        side["EchoTime"] = [t + 1e-4 for t in side["EchoTime"]]
    _save(data, aff, tmp_path / f"{PHASE}.nii.gz", side)
    _copy(nii, tmp_path, {MAG: MAG})
    with pytest.raises(InputError, match=match) as exc:
        r2mri.load(tmp_path / f"{MAG}.nii.gz")
    assert PHASE in str(exc.value) and "\n" not in str(exc.value)
    assert r2mri.load(tmp_path / f"{MAG}.nii.gz", phase=False).phase_rad is None  # the way out


def test_phase_alone_is_never_magnitude(nii, tmp_path):
    with pytest.raises(InputError, match="never analysed as magnitude"):
        r2mri.load(nii / f"{PHASE}.nii.gz")
    # a dcm2niix phase file without the part entity: its sidecar ImageType says P
    new = _copy(nii, tmp_path, {PHASE: "gre_ph"})
    side = json.loads((tmp_path / "gre_ph.json").read_text())
    (tmp_path / "gre_ph.json").write_text(json.dumps(dict(side, ImageType=["ORIGINAL", "PRIMARY", "P", "ND"])))
    with pytest.raises(InputError, match="only phase images .* never analysed as magnitude"):
        r2mri.load(new["gre_ph"])
    # the component dcm2niix appends when value 3 is a vendor term
    (tmp_path / "gre_ph.json").write_text(json.dumps(dict(side, ImageType=["ORIGINAL", "PRIMARY", "OTHER", "PHASE"])))
    with pytest.raises(InputError, match="only phase images"):
        r2mri.load(new["gre_ph"])
    (tmp_path / "gre_ph.json").write_text(json.dumps(dict(side, ImageType=["ORIGINAL", "PRIMARY", "P", "ND"])))
    # a part-mag file whose sidecar says phase: contradictory, refused
    shutil.copy(tmp_path / "gre_ph.json", tmp_path / "sub-01_part-mag_MEGRE.json")
    shutil.copy(new["gre_ph"], tmp_path / "sub-01_part-mag_MEGRE.nii.gz")
    with pytest.raises(InputError, match="part-mag, but its sidecar ImageType says phase"):
        r2mri.load(tmp_path / "sub-01_part-mag_MEGRE.nii.gz")
    assert main(["load", str(nii / f"{PHASE}.nii.gz")]) == 2


@pytest.mark.parametrize("with_magnitude", [True, False])
def test_real_and_imaginary_files(ph, nii, tmp_path, with_magnitude):
    img0 = ph.image
    z = img0.data.astype(np.float64) * np.exp(1j * img0.phase_rad.astype(np.float64))
    side = {"EchoTime": list(map(float, img0.echo_times_s)), "MagneticFieldStrength": 1.5}
    _save(z.real.astype(np.float32), img0.affine, tmp_path / "sub-01_part-real_MEGRE.nii.gz", side)
    _save(z.imag.astype(np.float32), img0.affine, tmp_path / "sub-01_part-imag_MEGRE.nii.gz", side)
    if with_magnitude:
        img = r2mri.load(_save(img0.data, img0.affine, tmp_path / "sub-01_part-mag_MEGRE.nii.gz", side))
        np.testing.assert_array_equal(img.data, img0.data)
    else:
        img = r2mri.load(sorted(tmp_path.glob("*.nii.gz")))
        np.testing.assert_allclose(img.data, img0.data, rtol=1e-6, atol=1e-3)  # hypot of float32 parts
        assert "magnitude-from-real-imaginary" in _codes(img)
    bright = img0.data > 0.05 * img0.data.max()  # atan2 of float32 parts: ~1e-7 / relative amplitude
    assert _wrapped(img.phase_rad, img0.phase_rad)[bright].max() < 1e-5
    assert "part-real and part-imag" in img.metadata["phase"]["source"]


def test_phase_option_refused_for_dicom_and_twice(nii, tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="phase: only applies to NIfTI input"):
        r2mri.load(tmp_path / "d", phase=nii / f"{PHASE}.nii.gz")
    with pytest.raises(InputError, match="pass it once"):
        r2mri.load([nii / f"{MAG}.nii.gz", nii / f"{PHASE}.nii.gz"], phase=nii / f"{PHASE}.nii.gz")


def test_cli_load_phase_options(nii, tmp_path, capsys):
    assert main(["load", str(nii / f"{MAG}.nii.gz")]) == 0
    assert "phase: yes (BIDS part-phase" in capsys.readouterr().out
    assert main(["load", str(nii / f"{MAG}.nii.gz"), "--no-phase"]) == 0
    assert "phase: no" in capsys.readouterr().out
    p = shutil.copy(nii / f"{PHASE}.nii.gz", tmp_path / "ph.nii.gz")
    assert main(["load", str(nii / f"{MAG}.nii.gz"), "--phase", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["phase"] is True


def test_analyze_passes_phase_to_the_loader(ph, nii, tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert main(["analyze", str(tmp_path / "d"), "-o", str(tmp_path / "out"), "--phase",
                 str(nii / f"{PHASE}.nii.gz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "phase: only applies to NIfTI input" in err[0]
    with pytest.raises(InputError, match="phase: applies to NIfTI paths, not to an image in memory"):
        r2mri.analyze(ph.image, phase=nii / f"{PHASE}.nii.gz")


def test_dcm2niix_folder_glob_pairs_by_image_type(ph, tmp_path):
    """dcm2niix layout (checked with dcm2niix v1.0.20260724 on the phantom's DICOM): one file
    per echo, phase files ``_e<n>_ph`` stored 0..4095 as int16 with scl_slope 2 / scl_inter
    -4096 and sidecar ImageType [..., "P", ..., "PHASE"], a series number in the names."""
    img0 = ph.image
    stored = np.mod(np.rint(img0.phase_rad.astype(np.float64) * 2048 / np.pi) + 2048, 4096).astype(np.int16)
    for k in range(img0.n_echoes):
        side = {"EchoTime": float(img0.echo_times_s[k]), "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND", "MAGNITUDE"]}
        _save(img0.data[..., k], img0.affine, tmp_path / f"1_gre_e{k + 1}.nii.gz", side)
        side["ImageType"] = ["ORIGINAL", "PRIMARY", "P", "ND", "PHASE"]
        _save(stored[..., k], img0.affine, tmp_path / f"2_gre_e{k + 1}_ph.nii.gz", side, 2.0, -4096.0)
    img = r2mri.load(sorted(tmp_path.glob("*.nii.gz")))
    np.testing.assert_array_equal(img.data, img0.data)
    assert _wrapped(img.phase_rad, img0.phase_rad).max() <= HALF_STEP * (1 + 1e-5) + 1e-6
    assert "phase files among the inputs" in img.metadata["phase"]["source"]
    with pytest.raises(InputError, match="only phase images"):
        r2mri.load(sorted(tmp_path.glob("2_*.nii.gz")))
