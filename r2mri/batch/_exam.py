"""Run one exam of a cohort: skip it when up to date, else analyse and write its folder.

:func:`run_exam` is the one function every executor runs (in this process, in a pool
worker, on a Dask worker). It never raises for a bad exam: the exam becomes a row with
status ``failed`` and a one-line reason, and the other exams go on.

The output folder ``OUT/<subject>/<session>/`` holds what ``r2mri analyze`` writes plus
``batch.json`` (input fingerprint, settings, r2mri version, seconds). The folder,
``batch.json`` included, is built in a temporary sibling and renamed into place, so it
is either complete or absent (or the previous complete one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ._cohort import failed_row, row_from_report

__all__ = ["ExamTask", "run_exam", "reused", "fingerprint", "BATCH_JSON"]

BATCH_JSON = "batch.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExamTask:
    """Everything a worker needs for one exam (picklable).

    ``exam`` is the exam as found; ``public`` the one named in outputs and tables (the
    de-identified one with ``deid``). ``options`` are :func:`r2mri.analyze` keywords.
    """

    exam: Any
    public: Any
    out_root: str
    options: dict
    dicom: bool | None = None
    force_rerun: bool = False
    deid: Any = None


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def fingerprint(paths: list[str], mask: str | None = None) -> str:
    """SHA-256 over the input files' names (relative to their folder) and bytes.

    Moving or copying a cohort keeps the fingerprint; changing a byte changes it.
    A missing input gives a fingerprint that never matches a finished exam.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.dcm").write_bytes(b"x")
    >>> fingerprint([str(d)]) == fingerprint([str(d)]), len(fingerprint([str(d)]))
    (True, 64)
    """
    h = hashlib.sha256()
    for group, items in (("input", paths), ("mask", [mask] if mask else [])):
        for item in items:
            root = Path(item)
            h.update(f"{group}\x00".encode())
            if not root.exists():
                h.update(b"missing\x00" + str(root).encode("utf-8", "surrogateescape"))
                continue
            base = root if root.is_dir() else root.parent
            for f in _files(root):
                h.update(f.relative_to(base).as_posix().encode("utf-8", "surrogateescape") + b"\x00")
                with open(f, "rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        h.update(chunk)
                h.update(b"\x00")
    return h.hexdigest()


def _record(task: ExamTask) -> dict:
    """What must match for an existing folder to be reused (batch.json minus ``seconds``)."""
    exam = task.exam
    record = {
        "input_fingerprint": fingerprint(list(exam.inputs), exam.mask),
        "settings": {
            "options": task.options,
            "dicom": task.dicom,
            "deidentify": None if task.deid is None else task.deid.describe(),
        },
        "r2mri_version": __version__,
    }
    return json.loads(json.dumps(record))  # as batch.json stores it (tuples become lists)


def _input_label(task: ExamTask) -> str:
    if task.deid is not None:
        return f"deidentified:{task.public.exam_id}"
    inputs = task.exam.inputs
    if task.exam.kind == "dicom" and len(inputs) > 1:
        return os.path.commonpath(inputs)
    return ";".join(inputs)


def reused(task: ExamTask) -> dict | None:
    """The exam's result when its folder is up to date (and not ``force_rerun``), else ``None``."""
    if task.force_rerun:
        return None
    try:
        found = _reuse(Path(task.out_root) / task.public.subject / task.public.session, _record(task))
    except OSError:
        return None
    if found is None:
        return None
    rep, seconds = found
    return {"row": row_from_report(task.public, rep, input_label=_input_label(task), seconds=seconds), "ran": False}


def run_exam(task: ExamTask) -> dict:
    """Bring one exam's output folder up to date; return its cohort row.

    Returns
    -------
    dict
        ``{"row": cohort row, "ran": True when analysed now (False: reused)}``.
    """
    t0 = time.perf_counter()
    out = Path(task.out_root) / task.public.subject / task.public.session
    label = _input_label(task)
    try:
        record = _record(task)
        if not task.force_rerun:
            reused = _reuse(out, record)
            if reused is not None:
                rep, seconds = reused
                return {"row": row_from_report(task.public, rep, input_label=label, seconds=seconds), "ran": False}
        rep = _analyse_and_write(task, out, record, t0)
    except Exception as exc:  # noqa: BLE001 - isolation: one bad exam must not stop the cohort
        text = str(exc) if getattr(exc, "args", None) else type(exc).__name__
        from ..errors import InputError

        if not isinstance(exc, InputError):
            text = f"{type(exc).__name__}: {text}"
        if task.deid is not None:
            text = task.deid.scrub_text(text, task.exam)
        return {"row": failed_row(task.public, input_label=label, error=text,
                                  seconds=time.perf_counter() - t0), "ran": True}
    return {"row": row_from_report(task.public, rep, input_label=label, seconds=rep["_seconds"]), "ran": True}


def _reuse(out: Path, record: dict) -> tuple[dict, float | None] | None:
    try:
        stored = json.loads((out / BATCH_JSON).read_text(encoding="utf-8"))
        rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if any(stored.get(k) != v for k, v in record.items()):
        return None
    return rep, stored.get("seconds")


def _analyse_and_write(task: ExamTask, out: Path, record: dict, t0: float) -> dict:
    from .._atomic import atomic_directory, atomic_write_text
    from ..analysis import analyze, load_input
    from ..report import write_outputs

    exam = task.exam
    options = dict(task.options)
    inputs = list(exam.inputs)
    if task.deid is None:
        result = analyze(inputs if len(inputs) > 1 else inputs[0], mask=exam.mask, **options)
    else:
        img = load_input(inputs, options.pop("echo_times_ms", None))
        fmt = "dicom" if img.source_datasets else "nifti"
        result = analyze(task.deid.image(img, exam.subject), mask=exam.mask, **options)
        result.inputs = []
        result.input_format = fmt
        result.settings["inputs"] = []
        if exam.mask is not None:
            result.settings["options"]["mask"] = "<mask>"
    with atomic_directory(out, overwrite=True) as tmp:
        staged = tmp / "outputs"
        write_outputs(result, staged, dicom=task.dicom)
        for item in staged.iterdir():
            os.replace(item, tmp / item.name)
        staged.rmdir()
        if task.deid is not None:
            _mark_dicom(tmp, task.deid)
        rep = json.loads((tmp / "report.json").read_text(encoding="utf-8"))
        seconds = round(time.perf_counter() - t0, 3)
        atomic_write_text(tmp / BATCH_JSON, json.dumps({**record, "seconds": seconds}, indent=2) + "\n")
    rep["_seconds"] = seconds
    return rep


def _mark_dicom(folder: Path, deid: Any) -> None:
    """Say in every DICOM output that the patient's identity was removed (PS3.3 C.7.1.1)."""
    import pydicom

    for path in sorted((folder / "dicom").glob("*.dcm")) if (folder / "dicom").is_dir() else []:
        ds = pydicom.dcmread(path)
        deid.mark(ds)
        tmp = path.with_suffix(".dcm.tmp")
        ds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)


def clear_partial(out_root: str | os.PathLike) -> None:
    """Remove temporary ``.*.partial`` folders a killed run left under ``out_root``."""
    for p in Path(out_root).glob("*/.*.partial"):
        shutil.rmtree(p, ignore_errors=True)
