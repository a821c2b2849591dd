"""No patient name, ID or birth date on stderr, stdout, in logs, warnings or exception messages.

A DICOM phantom carries distinctive values; the CLI's commands (load, analyze, fit) run
on it and on damaged copies, with stdout/stderr captured at the file-descriptor level
(so forked helper processes are included), every logger at DEBUG and every warning
recorded; the Python API's exceptions are collected too. None may contain the values.
The written outputs (report.json, the PDF, the DICOM objects) do carry them: they are
the clinical report and are not checked here.
"""

from __future__ import annotations

import logging
import shutil
import warnings

import pydicom
import pytest

import r2mri
from r2mri import InputError
from r2mri import phantom as P
from r2mri.cli import main

PATIENT = {"PatientName": "Qxvendorf^Zelphine", "PatientID": "PID-55831-ZZ", "PatientBirthDate": "19230417"}
#: Every form in which the values could show up.
NEEDLES = ("Qxvendorf", "Zelphine", "PID-55831-ZZ", "55831", "19230417", "1923-04-17", "17.04.1923")


def _with_patient(folder):
    for f in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        for k, v in PATIENT.items():
            setattr(ds, k, v)
        ds.save_as(f)


@pytest.fixture(scope="module")
def dicom(tmp_path_factory):
    base = tmp_path_factory.mktemp("phi")
    ph = P.generate(lic=7.0, seed=4, matrix=(48, 48), pixel_mm=8.0, n_slices=2)
    per_te = P.write(ph, base / "per-te", format="dicom") / "dicom"
    multi = P.write(ph, base / "multi", format="dicom-multiecho") / "dicom"
    _with_patient(per_te)
    _with_patient(multi)
    return {"per_te": per_te, "multi": multi}


def _element_span(path, keyword):
    """(start, end) byte offsets of one element in the file (tag to end of value)."""
    raw = path.read_bytes()
    value = str(PATIENT[keyword]).encode()
    end = raw.index(value) + len(value)
    return end - len(value) - 8, end + 1


def _bad_inputs(dicom, tmp):
    """{name: folder} of damaged copies of the multi-echo series."""
    out = {}

    def copy(name):
        d = tmp / name
        shutil.copytree(dicom["multi"], d)
        return d, sorted(d.glob("*.dcm"))

    d, files = copy("missing-slice")
    files[-1].unlink()
    out["missing-slice"] = d
    d, files = copy("rescale-zero")
    ds = pydicom.dcmread(files[0])
    ds.RescaleSlope = "0"
    ds.save_as(files[0])
    out["rescale-zero"] = d
    d, files = copy("no-pixels")
    files[0].write_bytes(files[0].read_bytes()[:-500])
    out["no-pixels"] = d
    # cut, or garble, inside each identifying element: pydicom's own errors must not quote it
    for keyword in PATIENT:
        start, end = _element_span(files[0], keyword)
        for k, cut in enumerate(range(start, end, 6)):
            d, fs = copy(f"cut-{keyword}-{k}")
            fs[0].write_bytes(fs[0].read_bytes()[:cut])
            out[d.name] = d
        for k, pos in enumerate((start + 4, start + 5, start + 6)):  # the VR / length bytes
            d, fs = copy(f"vr-{keyword}-{k}")
            raw = bytearray(fs[0].read_bytes())
            raw[pos] = 0xCE
            fs[0].write_bytes(bytes(raw))
            out[d.name] = d
    d, files = copy("name-in-wrong-vr")
    ds = pydicom.dcmread(files[0])
    ds["PatientName"] = pydicom.DataElement(0x00100010, "OB", PATIENT["PatientName"].encode() + b"\x00")
    ds.save_as(files[0])
    out["name-in-wrong-vr"] = d
    return out


def _assert_clean(text, what):
    low = text.lower()
    leaked = [n for n in NEEDLES if n.lower() in low]
    assert not leaked, f"{what} contains {leaked}: {text[:2000]}"


@pytest.fixture
def everything(caplog, capfd):
    """Run a callable with every log record at DEBUG and every warning captured; check them."""
    caplog.set_level(logging.DEBUG)

    def run(func, *args):
        with warnings.catch_warnings(record=True) as wlist:
            warnings.simplefilter("always")
            result = func(*args)
        out, err = capfd.readouterr()
        _assert_clean(out, "stdout")
        _assert_clean(err, "stderr")
        _assert_clean("\n".join(r.getMessage() for r in caplog.records), "log")
        _assert_clean("\n".join(str(w.message) for w in wlist), "warnings")
        caplog.clear()
        return result, out, err

    return run


def test_cli_on_good_input(dicom, tmp_path, everything):
    _, out, _ = everything(main, ["load", str(dicom["per_te"])])
    assert "echo times (ms): 6, 9, 12, 15, 18" in out
    everything(main, ["load", "--json", str(dicom["multi"])])
    code, out, _ = everything(main, ["analyze", str(dicom["per_te"]), "-o", str(tmp_path / "a")])
    assert code == 0 and "LIC" in out
    # the report itself carries the patient (it is the clinical document)
    assert PATIENT["PatientID"] in (tmp_path / "a" / "report.json").read_text()
    code, _, _ = everything(main, ["fit", str(dicom["multi"]), "-o", str(tmp_path / "f"), "--quiet"])
    assert code == 0


def test_cli_and_api_on_bad_input(dicom, tmp_path, everything):
    bad = _bad_inputs(dicom, tmp_path)
    assert len(bad) > 12
    n_errors = 0
    for name, folder in bad.items():
        commands = [["load", str(folder)], ["analyze", str(folder), "-o", str(tmp_path / f"o-{name}")]]
        if not name.startswith(("cut-", "vr-")):
            commands.append(["fit", str(folder), "-o", str(tmp_path / f"f-{name}"), "--quiet"])
        for argv in commands:
            code, _, err = everything(main, argv)
            n_errors += code == 2
        try:
            r2mri.load(folder)
        except InputError as exc:
            _assert_clean(str(exc), f"InputError of {name}")
            _assert_clean(repr(exc.__cause__) + repr(exc.__context__), f"chained exception of {name}")
        except Exception as exc:  # noqa: BLE001 - any other exception is also a message someone reads
            _assert_clean(f"{type(exc).__name__}: {exc}", f"exception of {name}")
            raise
    assert n_errors >= 3 * 3  # at least the three plainly broken inputs fail in every command
