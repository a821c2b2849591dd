"""Every row of the table in docs/errors.md, run as written: exit 2, that one line on stderr,
no output folder, nothing partial beside it.

The table is the source of truth: its ``command`` column is the argument list (after
``r2mri``) and its ``error`` column the exact stderr line, with ``{data}`` standing for
the shared valid inputs built below, ``{tmp}`` for the row's own folder and ``{series}``
for the multi-echo DICOM series' UID. Each row id
has a builder here that makes the bad input in ``{tmp}``; a row without a builder, or a
builder without a row, fails the test, so the document cannot drift from the code.

Rows run in this process through :func:`r2mri.cli.main`, except the two that need the
operating system's help: disk full (a child process with ``RLIMIT_FSIZE``, ``SIGXFSZ``
ignored, so writing fails with EFBIG) and permission denied (a child process without
the capabilities that let root ignore file permissions, or a plain chmod when the tests
do not run as root).
"""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import re
import resource
import shlex
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from r2mri import phantom as P
from r2mri.cli import main

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "errors.md"


def read_table() -> list[dict]:
    """Rows ``| id | area | bad input | command | error |`` of docs/errors.md."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not re.fullmatch(r"E\d\d", cells[0]):
            continue
        rows.append({"id": cells[0], "area": cells[1], "input": cells[2],
                     "command": cells[3].strip("`"), "error": cells[4].strip("`")})
    return rows


# --------------------------------------------------------------------- shared valid inputs
@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("errors-data")
    ph = P.generate(lic=7.0, seed=3, matrix=(48, 48), pixel_mm=8.0, n_slices=2)
    P.write(ph, base / "nifti", format="nifti")
    P.write(ph, base / "echoes", format="nifti-per-echo")
    P.write(ph, base / "dicom", format="dicom")
    P.write(ph, base / "dicom-me", format="dicom-multiecho")
    P.write(P.generate("cpmg-1.5t-lic3.2", matrix=(48, 48), pixel_mm=8.0, n_slices=2), base / "cpmg", format="nifti")
    outline = np.isin(ph.truth.labels, [P.LABELS["liver"], P.LABELS["vessel"]]).astype(np.uint8)
    nib.save(nib.Nifti1Image(outline, ph.image.affine), base / "mask.nii.gz")
    return base


def _nii(data: Path) -> Path:
    return data / "nifti" / "phantom_MESE.nii.gz"


def _copy_nifti(data: Path, tmp: Path, name: str = "me") -> Path:
    dst = tmp / f"{name}.nii.gz"
    shutil.copy(_nii(data), dst)
    shutil.copy(data / "nifti" / "phantom_MESE.json", tmp / f"{name}.json")
    return dst


def _copy_dicom(data: Path, tmp: Path, form: str = "dicom") -> Path:
    """The per-TE series (``dicom``) or the one multi-echo series (``dicom-me``) into {tmp}/dicom."""
    dst = tmp / "dicom"
    shutil.copytree(data / form / "dicom", dst)
    return dst


def _edit_dicom(path: Path, **values) -> None:
    ds = pydicom.dcmread(path)
    for k, v in values.items():
        if v is None:
            delattr(ds, k)
        else:
            setattr(ds, k, v)
    ds.save_as(path)


def _sidecar(tmp: Path, **values) -> None:
    meta = json.loads((tmp / "me.json").read_text())
    meta.update(values)
    (tmp / "me.json").write_text(json.dumps(meta))


def _nifti_image(tmp: Path, arr: np.ndarray, affine=None, name="img.nii.gz") -> Path:
    p = tmp / name
    nib.save(nib.Nifti1Image(arr, np.eye(4) if affine is None else affine), p)
    return p


# --------------------------------------------------------------------- one builder per row
def b_missing_input(data, tmp):
    pass


def b_empty_folder(data, tmp):
    (tmp / "empty").mkdir()


def b_text_file(data, tmp):
    (tmp / "notes.dcm").write_text("not an image\n")


def b_truncated_dicom_header(data, tmp):
    d = _copy_dicom(data, tmp)
    f = d / "S02_TE9" / "IM0001.dcm"
    f.write_bytes(f.read_bytes()[:400])


def b_truncated_pixels(data, tmp):
    d = _copy_dicom(data, tmp)
    f = d / "S02_TE9" / "IM0001.dcm"
    f.write_bytes(f.read_bytes()[:-1000])


def b_truncated_nifti(data, tmp):
    p = _copy_nifti(data, tmp)
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[: len(raw) // 2], mtime=0))


def b_not_gzip(data, tmp):
    p = _copy_nifti(data, tmp)
    p.write_bytes(b"plain text, not gzip\n")


def b_nifti_folder(data, tmp):
    (tmp / "niftis").mkdir()
    _copy_nifti(data, tmp / "niftis")


def b_bad_sidecar(data, tmp):
    _copy_nifti(data, tmp)
    (tmp / "me.json").write_text('{"EchoTime": [0.006, 0.009,')


def b_no_echo_times(data, tmp):
    _copy_nifti(data, tmp)
    (tmp / "me.json").unlink()


def b_te_count(data, tmp):
    _copy_nifti(data, tmp)
    _sidecar(tmp, EchoTime=[0.006, 0.009, 0.012])


def b_te_duplicate(data, tmp):
    _copy_nifti(data, tmp)
    _sidecar(tmp, EchoTime=[0.006, 0.009, 0.009, 0.015, 0.018])


def b_te_not_numeric(data, tmp):
    _copy_nifti(data, tmp)
    _sidecar(tmp, EchoTime="six")


def b_nan_voxels(data, tmp):
    img = nib.load(_nii(data))
    arr = np.asarray(img.dataobj, np.float32).copy()
    arr[3, 4, 0, 2] = np.nan
    nib.save(nib.Nifti1Image(arr, img.affine), tmp / "me.nii.gz")
    shutil.copy(data / "nifti" / "phantom_MESE.json", tmp / "me.json")


def b_one_echo(data, tmp):
    img = nib.load(_nii(data))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., :1], img.affine), tmp / "me.nii.gz")
    (tmp / "me.json").write_text(json.dumps({"EchoTime": [0.006]}))


def b_cli_te_count(data, tmp):
    _copy_nifti(data, tmp)
    (tmp / "me.json").unlink()


def b_dicom_no_echotime(data, tmp):
    d = _copy_dicom(data, tmp, "dicom-me")
    for f in sorted(d.rglob("*.dcm")):
        _edit_dicom(f, EchoTime=None)


def b_rescale_zero(data, tmp):
    d = _copy_dicom(data, tmp)
    _edit_dicom(sorted(d.rglob("*.dcm"))[3], RescaleSlope="0")


def b_bits_allocated(data, tmp):
    d = _copy_dicom(data, tmp)
    _edit_dicom(sorted(d.rglob("*.dcm"))[0], BitsAllocated=12)


def b_rgb(data, tmp):
    d = _copy_dicom(data, tmp)
    _edit_dicom(sorted(d.rglob("*.dcm"))[0], PhotometricInterpretation="RGB")


def b_missing_slice(data, tmp):
    d = _copy_dicom(data, tmp, "dicom-me")
    sorted(d.rglob("*.dcm"))[-1].unlink()


def b_duplicated_slice(data, tmp):
    d = _copy_dicom(data, tmp, "dicom-me")
    f = sorted(d.rglob("*.dcm"))[-1]
    shutil.copy(f, f.with_name("IM0099.dcm"))


def b_matrix_differs(data, tmp):
    d = _copy_dicom(data, tmp, "dicom-me")
    files = sorted(d.rglob("*.dcm"))
    for f in files[-2:]:  # the last series (echo) on a 24 x 24 matrix
        ds = pydicom.dcmread(f)
        ds.PixelData = ds.pixel_array[:24, :24].copy().tobytes()
        ds.Rows = ds.Columns = 24
        ds.save_as(f)


def b_orientation(data, tmp):
    d = _copy_dicom(data, tmp)
    _edit_dicom(sorted(d.rglob("*.dcm"))[0], ImageOrientationPatient=[1, 0, 0, 0.5, 0.5, 0])


def b_spacing(data, tmp):
    d = _copy_dicom(data, tmp)
    _edit_dicom(sorted(d.rglob("*.dcm"))[0], PixelSpacing=[0, 8])


def b_per_echo_shape(data, tmp):
    echoes = sorted((data / "echoes").glob("*_echo-*_MESE.nii.gz"))
    for k, p in enumerate(echoes):
        shutil.copy(p, tmp / p.name)
        shutil.copy(p.with_name(p.name[:-7] + ".json"), tmp / (p.name[:-7] + ".json"))
    last = tmp / echoes[-1].name
    img = nib.load(last)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:40], img.affine), last)


def b_per_echo_affine(data, tmp):
    echoes = sorted((data / "echoes").glob("*_echo-*_MESE.nii.gz"))
    for p in echoes:
        shutil.copy(p, tmp / p.name)
        shutil.copy(p.with_name(p.name[:-7] + ".json"), tmp / (p.name[:-7] + ".json"))
    last = tmp / echoes[-1].name
    img = nib.load(last)
    aff = img.affine.copy()
    aff[0, 3] += 20.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), last)


def b_mask_missing(data, tmp):
    pass


def b_mask_shape(data, tmp):
    _nifti_image(tmp, np.ones((10, 10, 2), np.uint8), name="mask.nii.gz")


def b_mask_unreadable(data, tmp):
    (tmp / "mask.nii.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")


def b_mask_empty(data, tmp):
    _nifti_image(tmp, np.zeros((48, 48, 2), np.uint8), nib.load(_nii(data)).affine, name="mask.nii.gz")


def b_calibration_3t(data, tmp):
    pass


def b_calibration_cpmg(data, tmp):
    pass


def b_calibration_unknown(data, tmp):
    pass


def b_calibration_file_missing(data, tmp):
    pass


def b_calibration_file_bad(data, tmp):
    (tmp / "cal.toml").write_text('name = "site"\nslope = [1, 2\n')


def b_gre_no_field(data, tmp):
    _copy_nifti(data, tmp)
    meta = json.loads((tmp / "me.json").read_text())
    meta["ScanningSequence"] = "GR"
    meta.pop("MagneticFieldStrength", None)
    meta.pop("ImagingFrequency", None)
    (tmp / "me.json").write_text(json.dumps(meta))


def b_gre_3t_no_curve(data, tmp):
    b_gre_no_field(data, tmp)


def b_fatwater_on_se(data, tmp):
    pass


def b_too_few_echoes(data, tmp):
    echoes = sorted((data / "echoes").glob("*_echo-*_MESE.nii.gz"))[:2]
    for p in echoes:
        shutil.copy(p, tmp / p.name)
        shutil.copy(p.with_name(p.name[:-7] + ".json"), tmp / (p.name[:-7] + ".json"))


def b_out_exists(data, tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "keep.txt").write_text("earlier results\n")


def b_out_is_file(data, tmp):
    (tmp / "out").write_text("a file\n")


def b_out_under_file(data, tmp):
    (tmp / "afile").write_text("a file\n")


def b_dicom_from_nifti(data, tmp):
    pass


def b_disk_full(data, tmp):
    pass


def b_cut_to_preamble(data, tmp):
    d = _copy_dicom(data, tmp)
    f = d / "S02_TE9" / "IM0001.dcm"
    f.write_bytes(bytes(60))  # a transfer cut inside the preamble: was skipped as "not DICOM"


def _bids_pair(data, tmp, phase: np.ndarray | None) -> None:
    """{tmp}/sub-01_part-mag_MESE.nii.gz (the valid input) and, given, a part-phase beside it."""
    _copy_nifti(data, tmp, "sub-01_part-mag_MESE")
    if phase is not None:
        img = nib.load(_nii(data))
        nib.save(nib.Nifti1Image(phase, img.affine), tmp / "sub-01_part-phase_MESE.nii.gz")
        shutil.copy(data / "nifti" / "phantom_MESE.json", tmp / "sub-01_part-phase_MESE.json")


def b_phase_alone(data, tmp):
    _bids_pair(data, tmp, np.zeros((48, 48, 2, 5), np.float32))


def b_phase_shape(data, tmp):
    _bids_pair(data, tmp, np.zeros((47, 48, 2, 5), np.float32))


def b_phase_units(data, tmp):
    _bids_pair(data, tmp, np.linspace(-500, 500, 48 * 48 * 2 * 5).reshape(48, 48, 2, 5).round().astype(np.int16))


def b_permission_output(data, tmp):
    (tmp / "readonly").mkdir()
    os.chmod(tmp / "readonly", 0o555)


def b_permission_input(data, tmp):
    p = _copy_nifti(data, tmp)
    os.chmod(p, 0o000)


BUILDERS = {
    "E01": b_missing_input, "E02": b_empty_folder, "E03": b_text_file, "E04": b_truncated_dicom_header,
    "E05": b_truncated_pixels, "E06": b_truncated_nifti, "E07": b_not_gzip, "E08": b_nifti_folder,
    "E09": b_bad_sidecar, "E10": b_no_echo_times, "E11": b_te_count, "E12": b_te_duplicate,
    "E13": b_te_not_numeric, "E14": b_nan_voxels, "E15": b_one_echo, "E16": b_cli_te_count,
    "E17": b_dicom_no_echotime, "E18": b_rescale_zero, "E19": b_bits_allocated, "E20": b_rgb,
    "E21": b_missing_slice, "E22": b_duplicated_slice, "E23": b_matrix_differs, "E24": b_orientation,
    "E25": b_spacing, "E26": b_per_echo_shape, "E27": b_per_echo_affine, "E28": b_mask_missing,
    "E29": b_mask_shape, "E30": b_mask_unreadable, "E31": b_mask_empty, "E32": b_calibration_3t,
    "E33": b_calibration_cpmg, "E34": b_calibration_unknown, "E35": b_calibration_file_missing,
    "E36": b_calibration_file_bad, "E37": b_too_few_echoes, "E38": b_out_exists, "E39": b_out_is_file,
    "E46": b_gre_no_field, "E47": b_gre_3t_no_curve, "E48": b_fatwater_on_se,  # R2* path (issue 15)
    "E40": b_out_under_file, "E41": b_dicom_from_nifti, "E42": b_disk_full, "E43": b_permission_output,
    "E44": b_permission_input, "E45": b_cut_to_preamble,
    "E60": b_phase_alone, "E61": b_phase_shape, "E62": b_phase_units,  # NIfTI phase (issue 15)
}
#: Rows run in a child process, and how the child is limited.
DISK_FULL = {"E42"}
NO_PERMISSION = {"E43", "E44"}


# --------------------------------------------------------------------- running a row
def _drop_file_capabilities() -> None:
    """In the child before exec: take CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH out of the
    bounding set, so the program (root or not) gets file permissions checked."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def _run_child(argv: list[str], preexec) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "r2mri", *argv], capture_output=True, text=True, timeout=300,
                          preexec_fn=preexec, env=env, cwd=REPO)
    return proc.returncode, proc.stderr


def _can_drop_capabilities() -> bool:
    try:
        out = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_drop_file_capabilities, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0


def run_row(row: dict, data: Path, tmp: Path, capsys) -> tuple[int, str, str]:
    """Build the row's input, run its command; return (exit status, stderr, expected line)."""
    BUILDERS[row["id"]](data, tmp)
    series = pydicom.dcmread(data / "dicom-me" / "dicom" / "IM0001.dcm").SeriesInstanceUID
    sub = {"{data}": str(data), "{tmp}": str(tmp), "{series}": str(series)}

    def fill(text: str) -> str:
        for k, v in sub.items():
            text = text.replace(k, v)
        return text

    argv = [fill(a) for a in shlex.split(row["command"])]
    assert argv[0] == "r2mri", row["command"]
    argv = argv[1:]
    if row["id"] in DISK_FULL:
        code, err = _run_child(argv, _limit_file_size)
    elif row["id"] in NO_PERMISSION:
        if os.geteuid() == 0:
            if not _can_drop_capabilities():
                pytest.skip("running as root without CAP_SETPCAP: cannot make file permissions apply")
            code, err = _run_child(argv, _drop_file_capabilities)
        else:
            code, err = _run_child(argv, None)
    else:
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
    return code, err, fill(row["error"])


ROWS = read_table()


def test_table_and_builders_match():
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids)) and len(ids) >= 25
    assert set(ids) == set(BUILDERS), set(ids) ^ set(BUILDERS)
    areas = {r["area"] for r in ROWS}
    assert {"file", "header", "geometry", "mask", "calibration", "output folder", "disk full",
            "permission denied"} <= areas, areas


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_error_row(row, data, tmp_path, capsys):
    tmp = tmp_path / "case"
    tmp.mkdir()
    code, err, expected = run_row(row, data, tmp, capsys)
    lines = err.strip("\n").split("\n")
    assert code == 2, err
    assert lines == [expected], f"\nexpected: {expected}\n     got: {err}"
    out = tmp / "out"
    if row["id"] == "E38":  # existing folder: left exactly as it was
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    elif row["id"] == "E39":
        assert out.read_text() == "a file\n"
    else:
        assert not out.exists()
    for folder in (tmp, tmp / "readonly", tmp / "afile"):
        if folder.is_dir():
            partial = [p.name for p in folder.iterdir() if p.name.startswith(".")]
            assert not partial, f"partial output left in {folder}: {partial}"
