"""Vendor headers that contradict each other or the data (issue 12 item 4).

Small phantoms are written as DICOM (one series per TE, or one multi-echo series), their
headers edited with pydicom the way real scanners and PACS write them, and the loader's
classification, the protocol findings and ``r2mri.analyze``'s refusals are checked.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pydicom
import pytest

import r2mri
from r2mri.errors import CalibrationError, ProtocolError
from r2mri.io import _headers
from r2mri.io._headers import PROTON_GYROMAGNETIC_MHZ_PER_T as GAMMA
from r2mri.phantom import generate, write

REPO = Path(__file__).resolve().parents[1]
SMALL = {"matrix": (16, 12), "n_slices": 2}
LARMOR_1P5_MHZ = 1.5 * GAMMA  # what the phantom writes as ImagingFrequency at 1.5 T
SIEMENS_3T_MHZ = 123.225342  # ImagingFrequency of the MR-BIAS Siemens Skyra (MagneticFieldStrength 3)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """{(spec, format): dicom folder}, written once; tests edit copies."""
    root = tmp_path_factory.mktemp("vendor")
    out = {}
    for spec, fmt in [("cpmg-1.5t-lic3.2", "dicom-multiecho"), (None, "dicom-multiecho"), (None, "dicom"),
                      ("cpmg-1.5t-lic3.2", "dicom-enhanced")]:
        ph = generate(spec, seed=2, **SMALL)
        out[(spec, fmt)] = write(ph, root / f"{spec}-{fmt}", format=fmt) / "dicom"
    return out


def _copy(written, key, tmp_path) -> Path:
    dst = tmp_path / "dicom"
    shutil.copytree(written[key], dst)
    return dst


def _edit(folder: Path, *, only=None, private=(), **changes) -> None:
    """Set (or, with None, delete) attributes in every file (or those ``only`` selects)."""
    for f in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        if only is not None and not only(ds):
            continue
        for kw, v in changes.items():
            if v is None:
                if kw in ds:
                    delattr(ds, kw)
            else:
                setattr(ds, kw, v)
        for group, creator, element, vr, value in private:
            ds.private_block(group, creator, create=True).add_new(element, vr, value)
        ds.save_as(f)


def _findings(img) -> dict:
    return {f.code: f for f in img.protocol_report()}


def _one_line_refusal(exc_info, *needles) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


# ----------------------------------------------------------------------------- echo train
@pytest.mark.parametrize("spec, edit", [
    ("cpmg-1.5t-lic3.2", {"EchoTrainLength": 1}),  # a vendor writing 1 on a multi-echo train
    (None, {}),  # the phantom's own single-echo header (ETL 1, "se2d1") on five echoes in one series
])
def test_multiecho_series_with_echo_train_length_1_is_a_cpmg_train(written, tmp_path, spec, edit):
    folder = _copy(written, (spec, "dicom-multiecho"), tmp_path)
    _edit(folder, **edit)
    assert {int(pydicom.dcmread(f, stop_before_pixels=True).EchoTrainLength) for f in folder.glob("*.dcm")} == {1}
    img = r2mri.load(folder)
    n = img.n_echoes
    assert n in (5, 10)
    assert img.sequence == "SE-CPMG" and img.echo_train_length == n
    f = _findings(img)
    assert f["echo-train-length-contradicts"].severity == "warning"
    per = next(iter(f["echo-train-length-contradicts"].details["per_series"].values()))
    assert per == {"echo_train_length_header": 1, "echoes_per_slice_position": n}
    assert f["cpmg-echo-train"].severity == "warning"
    assert not [x for x in f.values() if x.severity == "error"]
    # the single-echo St Pierre curve is refused, explicitly named or by default
    for cal in ("st-pierre-2005", None):
        with pytest.raises(CalibrationError) as ei:
            r2mri.analyze(folder, calibration=cal)
        _one_line_refusal(ei, "st-pierre-2005", "CPMG", f"echo_train_length={n}")


def test_missing_echo_train_length_comes_from_the_data(written, tmp_path):
    folder = _copy(written, ("cpmg-1.5t-lic3.2", "dicom-multiecho"), tmp_path)
    _edit(folder, EchoTrainLength=None)
    img = r2mri.load(folder)
    assert img.sequence == "SE-CPMG" and img.echo_train_length == 10
    assert _findings(img)["echo-train-length-from-data"].severity == "info"


def test_enhanced_object_with_echo_train_length_1_is_a_cpmg_train(written, tmp_path):
    folder = _copy(written, ("cpmg-1.5t-lic3.2", "dicom-enhanced"), tmp_path)
    (f,) = folder.glob("*.dcm")
    ds = pydicom.dcmread(f)
    timing = ds.SharedFunctionalGroupsSequence[0].MRTimingAndRelatedParametersSequence[0]
    timing.EchoTrainLength = 1
    ds.save_as(f)
    img = r2mri.load(folder)
    assert img.sequence == "SE-CPMG" and img.echo_train_length == 10
    assert "echo-train-length-contradicts" in _findings(img)


def test_single_echo_series_per_te_stay_single_echo_spin_echo(written, tmp_path):
    """Control: FerriScan-style series (one TE each, ETL 1, consistent headers) raise nothing new."""
    img = r2mri.load(written[(None, "dicom")])
    assert img.sequence == "SE" and img.echo_train_length == 1 and img.field_strength_t == 1.5
    assert img.metadata["header_findings"] == []
    assert r2mri.calibration.check_applicability("st-pierre-2005", img) is not None  # no raise


# ----------------------------------------------------------------------------- field strength
@pytest.mark.parametrize("edit, field_t, code, severity", [
    ({"MagneticFieldStrength": None}, 1.5, "field-strength-from-frequency", "info"),
    ({"MagneticFieldStrength": "15000"}, 1.5, "field-strength-in-gauss", "warning"),
    ({"MagneticFieldStrength": "3"}, 1.5, "field-strength-contradicts", "error"),
    ({"MagneticFieldStrength": "15000", "ImagingFrequency": None}, None, "field-strength-implausible", "error"),
    ({"MagneticFieldStrength": "3", "ImagingFrequency": f"{SIEMENS_3T_MHZ}"}, 3.0, None, None),
    ({"MagneticFieldStrength": None, "ImagingFrequency": f"{SIEMENS_3T_MHZ}"}, 3.0,
     "field-strength-from-frequency", "info"),
])
def test_field_strength_against_imaging_frequency(written, tmp_path, edit, field_t, code, severity):
    folder = _copy(written, (None, "dicom"), tmp_path)  # five single-echo series at 1.5 T
    _edit(folder, **edit)
    img = r2mri.load(folder)
    assert img.field_strength_t == field_t
    hf = {h["code"]: h for h in img.metadata["header_findings"]}
    if code is None:
        assert hf == {}
        return
    assert set(hf) == {code}
    f = _findings(img)[code]
    assert f.severity == severity
    assert f.message.endswith("(and 4 more series)")  # one finding for the five series
    assert len(f.details["per_series"]) == 5
    if severity == "error":
        with pytest.raises(ProtocolError) as ei:
            r2mri.analyze(folder)
        _one_line_refusal(ei, code, "--force")


def test_field_from_frequency_per_series_keeps_series_comparable(written, tmp_path):
    """One series in gauss, the others in tesla: the same field, so no field-strength-differs."""
    folder = _copy(written, (None, "dicom"), tmp_path)
    _edit(folder, only=lambda ds: float(ds.EchoTime) == 9.0, MagneticFieldStrength="15000")
    img = r2mri.load(folder)
    f = _findings(img)
    assert img.field_strength_t == 1.5
    assert "field-strength-differs" not in f
    assert f["field-strength-in-gauss"].severity == "warning"
    assert len(f["field-strength-in-gauss"].details["per_series"]) == 1


@pytest.mark.parametrize("nominal_t", _headers.NOMINAL_FIELDS_T)
@pytest.mark.parametrize("offset", [-0.04, 0.0, 0.04])
def test_reconcile_field_tolerates_magnets_a_few_percent_off_their_class(nominal_t, offset):
    freq = nominal_t * (1 + offset) * GAMMA
    assert _headers.reconcile_field(nominal_t, freq) == (nominal_t, None)
    assert _headers.reconcile_field(None, freq)[0] == nominal_t
    t, f = _headers.reconcile_field(nominal_t * 1e4, freq)
    assert t == nominal_t and f["code"] == "field-strength-in-gauss"
    # another class's frequency is a contradiction, never silently accepted
    other = 3.0 if nominal_t != 3.0 else 1.5
    t, f = _headers.reconcile_field(nominal_t, other * GAMMA)
    assert t == other and f["code"] == "field-strength-contradicts" and f["severity"] == "error"
    # a non-proton imaging frequency says nothing about the proton field
    assert _headers.reconcile_field(nominal_t, 17.0, "23Na") == (nominal_t, None)


def test_gyromagnetic_ratio_is_codata_2018():
    # CODATA 2018 gamma_p / 2 pi = 42.577 478 518(18) MHz/T
    assert GAMMA == pytest.approx(42.577478518, abs=1e-9)
    assert LARMOR_1P5_MHZ == pytest.approx(63.866, abs=1e-3)


# ----------------------------------------------------------------------------- spin or gradient echo
GE = (0x0019, "GEMS_ACQU_01", 0x9C, "LO")
PHILIPS = (0x2001, "Philips Imaging DD 001", 0x20, "LO")


@pytest.mark.parametrize("edit, private, sources", [
    ({"ScanningSequence": "GR"}, (), {"ScanningSequence", "SequenceName"}),  # GR on a spin-echo train
    ({"SequenceName": "*fl2d10"}, (), {"ScanningSequence", "SequenceName"}),
    ({"SequenceName": "fgre"}, [(*GE, "fgre")], {"ScanningSequence", "GE (0019,xx9C)"}),
    ({"SequenceName": "T1FFE"}, [(*PHILIPS, "T1FFE")], {"ScanningSequence", "Philips (2001,xx20)"}),
    ({"ScanningSequence": ["SE", "GR"], "SequenceName": None}, (), {"ScanningSequence"}),  # hybrid
])
def test_spin_and_gradient_echo_both_named_is_an_error_not_a_guess(written, tmp_path, edit, private, sources):
    folder = _copy(written, ("cpmg-1.5t-lic3.2", "dicom-multiecho"), tmp_path)
    _edit(folder, private=[(g, c, e, vr, v) for g, c, e, vr, v in private], **edit)
    img = r2mri.load(folder)
    assert img.sequence is None
    f = _findings(img)["sequence-type-contradicts"]
    assert f.severity == "error"
    votes = next(iter(f.details["per_series"].values()))["votes"]
    assert set(votes) == sources
    assert "spin" in f.message and "gradient echo" in f.message
    with pytest.raises(ProtocolError) as ei:
        r2mri.analyze(folder)
    _one_line_refusal(ei, "sequence-type-contradicts")


@pytest.mark.parametrize("private, source", [((*GE, "fse-xl"), "GE (0019,xx9C)"),
                                              ((*PHILIPS, "TSE"), "Philips (2001,xx20)")])
def test_vendor_private_names_that_agree_are_recorded(written, tmp_path, private, source):
    folder = _copy(written, ("cpmg-1.5t-lic3.2", "dicom-multiecho"), tmp_path)
    _edit(folder, private=[private], SequenceName=None)
    img = r2mri.load(folder)
    assert img.sequence == "SE-CPMG"
    s = img.metadata["series"][0]
    assert s["sequence_votes"] == {"ScanningSequence": "SE", source: "SE"}
    assert s["sequence_names"][source] == private[-1]
    assert img.metadata["header_findings"] == []


def test_enhanced_echo_pulse_sequence_against_pulse_sequence_name(written, tmp_path):
    folder = _copy(written, ("cpmg-1.5t-lic3.2", "dicom-enhanced"), tmp_path)
    _edit(folder, EchoPulseSequence="GRADIENT")  # PulseSequenceName stays "MESE"
    img = r2mri.load(folder)
    assert img.sequence is None
    votes = next(iter(_findings(img)["sequence-type-contradicts"].details["per_series"].values()))["votes"]
    assert votes == {"EchoPulseSequence": "GRE", "PulseSequenceName": "SE"}


def test_one_gradient_echo_series_among_spin_echo_series(written, tmp_path):
    folder = _copy(written, (None, "dicom"), tmp_path)
    _edit(folder, only=lambda ds: float(ds.EchoTime) == 12.0, ScanningSequence="GR", SequenceName="*fl2d1")
    img = r2mri.load(folder)
    f = _findings(img)
    assert f["sequence-differs"].severity == "error"
    assert sorted(f["sequence-differs"].details["per_series"].values()) == ["GRE", "SE", "SE", "SE", "SE"]
    assert "sequence-type-contradicts" not in f  # that series' own header is consistent


@pytest.mark.parametrize("names, expected", [
    (["fse-xl", "fse", "FSE", "se", "SE", "TSE", "MESE", "CPMG", "%SiemensSeq%\\se_mc"], "SE"),
    (["fgre", "spgr", "efgre3d", "FFE", "T1FFE", "MEGRE", "FLASH", "fiesta"], "GRE"),
    (["GRASE"], "SE+GRE"),
    (["epi", "3-plane", "", "T2 map", "IR"], None),
])
def test_name_kind_table(names, expected):
    assert [_headers.name_kind(n) for n in names] == [expected] * len(names)


def test_siemens_sequence_names():
    assert _headers.siemens_name("*se2d32") == ("SE", "2D")  # the MR-BIAS se_mc series
    assert _headers.siemens_name("*tse2d1_16") == ("SE", "2D")
    assert _headers.siemens_name("*fl3d1r") == ("GRE", "3D")
    assert _headers.siemens_name("*epfid2d1_64") == ("GRE", "2D")
    assert _headers.siemens_name("*ep_b1000#1") == (None, None)
    assert _headers.siemens_name("MESE") == (None, None)  # not Siemens grammar: no guess


def _siemens_csa_series_header() -> bytes:
    """A real Siemens CSA Series Header Info (0029,1020) value: nibabel's DWI test file."""
    import gzip
    import io

    import nibabel

    p = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / "siemens_dwi_1000.dcm.gz"
    if not p.is_file():
        pytest.skip("nibabel's Siemens test data not installed")
    ds = pydicom.dcmread(io.BytesIO(gzip.open(p).read()), stop_before_pixels=True)
    assert _headers._siemens_sequence_file(ds) == "%SiemensSeq%\\ep2d_diff"
    return ds.private_block(0x0029, "SIEMENS CSA HEADER")[0x20].value


@pytest.mark.parametrize("file_name, contradicts", [(b"fl3d_vibe", True), (b"se_mc    ", False),
                                                    (b"ep2d_diff", False)])
def test_siemens_csa_sequence_file_name(written, tmp_path, file_name, contradicts):
    csa = _siemens_csa_series_header()
    # same length, so the CSA element lengths stay valid
    csa = re.sub(rb'(tSequenceFileName\s*=\s*""%SiemensSeq%\\)ep2d_diff', rb"\g<1>" + file_name, csa)
    folder = _copy(written, ("cpmg-1.5t-lic3.2", "dicom-multiecho"), tmp_path)
    _edit(folder, private=[(0x0029, "SIEMENS CSA HEADER", 0x20, "OB", csa)])
    img = r2mri.load(folder)
    votes = img.metadata["series"][0]["sequence_votes"]
    if file_name == b"ep2d_diff":  # EPI: names neither spin nor gradient echo
        assert votes == {"ScanningSequence": "SE", "SequenceName": "SE"}
    else:
        assert votes["Siemens tSequenceFileName"] == ("GRE" if contradicts else "SE")
    assert ("sequence-type-contradicts" in _findings(img)) is contradicts
    assert img.sequence == (None if contradicts else "SE-CPMG")


# ----------------------------------------------------------------------------- 2D / 3D
@pytest.mark.parametrize("edit, code", [
    ({"MRAcquisitionType": "3D"}, "acquisition-type-contradicts"),  # name stays "se2d10"
    ({"MRAcquisitionType": "3D", "SequenceName": "*se3d10"}, "acquisition-3d"),
])
def test_mr_acquisition_type(written, tmp_path, edit, code):
    folder = _copy(written, ("cpmg-1.5t-lic3.2", "dicom-multiecho"), tmp_path)
    _edit(folder, **edit)
    img = r2mri.load(folder)
    hf = {h["code"] for h in img.metadata["header_findings"]}
    assert hf == {code}
    assert _findings(img)[code].severity == "warning"


def test_acquisition_type_differs_between_series(written, tmp_path):
    folder = _copy(written, (None, "dicom"), tmp_path)
    _edit(folder, only=lambda ds: float(ds.EchoTime) == 6.0, MRAcquisitionType="3D", SequenceName="*se3d1")
    f = _findings(r2mri.load(folder))
    assert f["acquisition-type-differs"].severity == "warning"
    assert f["acquisition-3d"].severity == "warning"


# ----------------------------------------------------------------------------- real data, docs
@pytest.mark.shared
def test_real_siemens_series_is_a_cpmg_train_at_3t(siemens_dir):
    img = r2mri.load(siemens_dir / "dicom")
    assert img.sequence == "SE-CPMG" and img.echo_train_length == 32
    assert img.field_strength_t == 3.0  # MagneticFieldStrength 3, ImagingFrequency 2.89 T: same class
    s = img.metadata["series"][0]
    assert s["imaging_frequency_mhz"] == SIEMENS_3T_MHZ
    assert s["imaging_frequency_mhz"] / GAMMA == pytest.approx(2.894, abs=1e-3)
    assert s["sequence_votes"] == {"ScanningSequence": "SE", "SequenceName": "SE"}
    assert s["mr_acquisition_type"] == "2D" and s["sequence_name_dim"] == "2D"
    assert img.metadata["header_findings"] == []


def test_every_header_rule_is_documented():
    doc = (REPO / "docs" / "loading.md").read_text()
    for code in (*_headers.CODES, "sequence-differs", "acquisition-type-differs"):
        assert re.search(rf"`{re.escape(code)}`", doc), code


@pytest.mark.parametrize("edit, field_t, code", [
    ({"MagneticFieldStrength": 15000}, 1.5, "field-strength-in-gauss"),
    ({"MagneticFieldStrength": None}, 1.5, "field-strength-from-frequency"),
    ({"MagneticFieldStrength": 3.0}, 1.5, "field-strength-contradicts"),
])
def test_nifti_sidecar_field_strength_against_imaging_frequency(tmp_path, edit, field_t, code):
    """dcm2niix copies both fields into the BIDS sidecar: the same rule applies."""
    import json

    out = write(generate(seed=2, **SMALL), tmp_path / "n", format="nifti")
    sidecar = out / "phantom_MESE.json"
    meta = json.loads(sidecar.read_text())
    assert meta["ImagingFrequency"] == pytest.approx(LARMOR_1P5_MHZ, abs=1e-6)
    for k, v in edit.items():
        meta.pop(k) if v is None else meta.__setitem__(k, v)
    sidecar.write_text(json.dumps(meta))
    img = r2mri.load(out / "phantom_MESE.nii.gz")
    assert img.field_strength_t == field_t
    assert [h["code"] for h in img.metadata["header_findings"]] == [code]
    assert code in _findings(img)
