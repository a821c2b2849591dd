"""Find the exams of a cohort: DICOM study trees, BIDS-like NIfTI trees, a manifest CSV.

One :class:`Exam` is one analysis (what one ``r2mri analyze`` run would get). What
was looked at and not used is returned as :class:`Skipped` with the reason, so
``r2mri batch --dry-run`` can say why a file did not become an exam.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import InputError

__all__ = ["Exam", "Skipped", "discover", "MANIFEST_OPTIONS"]

#: SOP classes of the images an exam is made of (MR Image, Enhanced MR Image, Legacy
#: Converted Enhanced MR Image; PS3.4 Annex B.5). Derived objects (r2mri's own
#: Parametric Maps, SEG, SR, Secondary Captures) are not inputs.
_MR_IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.4.1",
    "1.2.840.10008.5.1.4.1.1.4.4",
}
_DICOM_TAGS = ["SOPClassUID", "StudyInstanceUID", "PatientID", "StudyDate", "StudyTime", "Rows"]
_NIFTI = re.compile(r"\.nii(\.gz)?$", re.IGNORECASE)
#: ``sub-<label>[_ses-<label>]..._MESE.nii[.gz]`` with an optional ``_echo-<n>`` entity.
_BIDS_ECHO = re.compile(r"_echo-[0-9]+(?=_)")

#: Manifest columns beside path/subject/session/date/mask: per-row analyze options
#: (column -> converter). ``echo_times_ms`` is a list "6 9 12 15 18" (spaces or commas).
MANIFEST_OPTIONS = {
    "model": str,
    "calibration": str,
    "calibration_file": str,
    "field_strength_t": float,
    "echo_times_ms": lambda s: [float(v) for v in s.replace(",", " ").split()],
    "noise_sigma": float,
    "coils": int,
    "force": lambda s: s.strip().lower() in ("1", "true", "yes", "y"),
    "erode_mm": float,
}
_MANIFEST_COLUMNS = ("path", "subject", "session", "date", "mask")


@dataclass(frozen=True)
class Exam:
    """One exam of a cohort: the inputs of one analysis and where its outputs go.

    Attributes
    ----------
    subject : str
        Subject label (DICOM PatientID, BIDS ``sub-`` label, or the manifest's).
    session : str
        Session label (BIDS ``ses-`` label, the manifest's, else the study date).
    study_date : str or None
        ISO date ``YYYY-MM-DD`` when known.
    inputs : tuple of str
        Paths handed to :func:`r2mri.analyze`.
    kind : str
        ``"dicom"``, ``"nifti"`` or ``"manifest"`` (the loader decides then).
    mask : str or None
        Liver mask path (manifest only).
    options : dict
        Per-exam analyze options (manifest columns), on top of the run's.
    origin : str
        Where it was found (a folder, a NIfTI file, ``manifest.csv:row``).
    """

    subject: str
    session: str
    study_date: str | None
    inputs: tuple[str, ...]
    kind: str
    mask: str | None = None
    options: dict = field(default_factory=dict, hash=False, compare=False)
    origin: str = ""

    @property
    def exam_id(self) -> str:
        """``<subject>/<session>``: the output folder under ``OUT``."""
        return f"{self.subject}/{self.session}"


@dataclass(frozen=True)
class Skipped:
    """A path that did not become an exam, and why."""

    path: str
    reason: str


def _label(text: Any, fallback: str) -> str:
    """A folder-safe label (letters, digits, ``.``, ``_``, ``-``)."""
    value = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text or "").strip()).strip("._")
    return value or fallback


def _iso_date(text: Any) -> str | None:
    """``YYYYMMDD`` / ``YYYY-MM-DD`` / an ISO date-time -> ``YYYY-MM-DD`` (``None`` if not a date)."""
    if text is None:
        return None
    s = str(text).strip()
    m = re.match(r"^(\d{4})-?(\d{2})-?(\d{2})", s)
    if not m:
        return None
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}"


def discover(inputs: Sequence[str | os.PathLike], *, manifest: str | os.PathLike | None = None,
             exclude: Iterable[str | os.PathLike] = ()) -> tuple[list[Exam], list[Skipped]]:
    """Find the exams under ``inputs`` (folders, files) and in ``manifest``.

    Parameters
    ----------
    inputs : sequence of path
        Folders searched recursively (DICOM files of any name, grouped by
        StudyInstanceUID; BIDS-like ``sub-*/[ses-*/]anat/*_MESE.nii[.gz]`` files,
        4-D or one per echo with JSON sidecars); a ``.csv`` is read as a manifest.
    manifest : path or None
        Manifest CSV with a ``path`` column (relative paths are relative to the
        manifest's folder) and optional ``subject``, ``session``, ``date``, ``mask``
        and per-row analyze options (:data:`MANIFEST_OPTIONS`).
    exclude : iterable of path
        Folders not searched (the batch output folder).

    Returns
    -------
    exams : list of Exam
        In a stable order (subject, study date, session, inputs); two exams that
        would share an output folder get ``-2``, ``-3``... appended to the session.
    skipped : list of Skipped
        Paths looked at and not used, with the reason.

    Raises
    ------
    r2mri.InputError
        An input that does not exist, or an unreadable or malformed manifest.

    Examples
    --------
    >>> import tempfile
    >>> discover([tempfile.mkdtemp()])
    ([], [])
    """
    exams: list[Exam] = []
    skipped: list[Skipped] = []
    manifests = [Path(manifest)] if manifest is not None else []
    excluded = [Path(p).resolve() for p in exclude]
    folders: list[Path] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_file() and p.suffix.lower() == ".csv":
            manifests.append(p)
        elif p.is_file() and _NIFTI.search(p.name):
            exams.append(_nifti_exam(p, [p]))
        else:
            folders.append(p)
    for m in manifests:
        exams.extend(_read_manifest(m))
    dicom_files: list[Path] = []
    nifti_files: list[Path] = []
    seen_files: set[Path] = set()
    for folder in folders:
        for path in _walk(folder, excluded, seen_files, skipped):
            (nifti_files if _NIFTI.search(path.name) else dicom_files).append(path)
    exams.extend(_nifti_exams(nifti_files, skipped))
    exams.extend(_dicom_exams(dicom_files, skipped))
    return _unique(exams), skipped


def _walk(root: Path, excluded: list[Path], seen_files: set | None = None,
          skipped: list | None = None) -> list[Path]:
    """Files under ``root``, following symlinked folders and files (a cohort is often a folder
    of links to exams stored elsewhere); a folder reached twice (a link loop, two links to
    one exam) is walked once, a file reached twice is listed once, and a dangling link is
    added to ``skipped``."""
    seen_files = set() if seen_files is None else seen_files
    if root.is_file():
        real = root.resolve()
        if real in seen_files:
            return []
        seen_files.add(real)
        return [root]
    out = []
    visited: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real_here = here.resolve()
        if real_here in visited:  # reached again through a link: a loop or a second link
            dirnames[:] = []
            continue
        visited.add(real_here)
        keep = []
        for d in sorted(dirnames):
            real = (here / d).resolve()
            if d.startswith(".") or real in excluded or real in visited or real in real_here.parents:
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if f.startswith("."):
                continue
            real = (here / f).resolve()
            if not real.exists():
                if skipped is not None:
                    skipped.append(Skipped(str(here / f), "symbolic link to nothing"))
                continue
            if real in seen_files or not real.is_file():
                continue  # already listed through another link
            seen_files.add(real)
            out.append(here / f)
    return out


# ----------------------------------------------------------------------------- DICOM
def _dicom_exams(files: list[Path], skipped: list[Skipped]) -> list[Exam]:
    import pydicom

    studies: dict[str, dict] = {}
    for path in files:
        if path.suffix.lower() in (".json", ".tsv", ".txt", ".csv", ".md", ".toml", ".pdf", ".png"):
            continue  # sidecars, tables and reports: not DICOM by name, not worth a line each
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_DICOM_TAGS)
        except Exception:  # noqa: BLE001 - pydicom raises many types on non-DICOM files
            skipped.append(Skipped(str(path), "not a DICOM file"))
            continue
        sop = str(ds.get("SOPClassUID", ""))
        uid = str(ds.get("StudyInstanceUID", "") or "")
        if sop not in _MR_IMAGE_SOP_CLASSES:
            skipped.append(Skipped(str(path), f"DICOM but not an MR image (SOP class {sop or 'missing'})"))
            continue
        if not uid:
            skipped.append(Skipped(str(path), "MR image without StudyInstanceUID"))
            continue
        study = studies.setdefault(uid, {"files": [], "ds": ds})
        study["files"].append(str(path))
    exams = []
    for uid, study in studies.items():
        ds = study["ds"]
        date = _iso_date(ds.get("StudyDate"))
        folder = os.path.commonpath(study["files"]) if len(study["files"]) > 1 else str(Path(study["files"][0]).parent)
        exams.append(Exam(
            subject=_label(ds.get("PatientID"), "unknown"),
            session=date or _label(uid[-12:], "study"),
            study_date=date,
            inputs=tuple(sorted(study["files"])),
            kind="dicom",
            origin=f"{folder} (StudyInstanceUID {uid}, {len(study['files'])} files)",
        ))
    return exams


# ----------------------------------------------------------------------------- NIfTI
def _bids_parts(path: Path) -> tuple[str, str | None] | None:
    """``(subject, session)`` when ``path`` sits in ``sub-*/[ses-*/]anat/``, else ``None``."""
    parts = path.parts
    if len(parts) < 3 or parts[-2] != "anat":
        return None
    ses = None
    k = len(parts) - 3
    if parts[k].startswith("ses-"):
        ses = parts[k][4:]
        k -= 1
    if k < 0 or not parts[k].startswith("sub-"):
        return None
    return parts[k][4:], ses


def _nifti_exams(files: list[Path], skipped: list[Skipped]) -> list[Exam]:
    groups: dict[tuple[Path, str], list[Path]] = {}
    for path in files:
        bids = _bids_parts(path)
        stem = _NIFTI.sub("", path.name)
        if bids is None:
            skipped.append(Skipped(str(path), "NIfTI outside a sub-*/[ses-*/]anat/ folder"))
            continue
        if not stem.endswith("_MESE"):
            skipped.append(Skipped(str(path), "NIfTI without the _MESE suffix (not a multi-echo spin-echo image)"))
            continue
        groups.setdefault((path.parent, _BIDS_ECHO.sub("", stem)), []).append(path)
    return [_nifti_exam(paths[0], sorted(paths, key=_echo_number)) for paths in groups.values()]


def _echo_number(path: Path) -> int:
    m = re.search(r"_echo-([0-9]+)", path.name)
    return int(m.group(1)) if m else 0


def _nifti_exam(first: Path, paths: list[Path]) -> Exam:
    import json

    from ..io._nifti import sidecar_path

    bids = _bids_parts(first) or (_label(first.parent.name, "unknown"), None)
    date = None
    sidecar = sidecar_path(first)
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            meta = {}  # the loader reports it, as the exam's failure
        if isinstance(meta, dict):
            date = _iso_date(meta.get("AcquisitionDateTime") or meta.get("StudyDate") or meta.get("AcquisitionDate"))
    session = bids[1] or date or "nosession"
    return Exam(
        subject=_label(bids[0], "unknown"),
        session=_label(session, "nosession"),
        study_date=date,
        inputs=tuple(str(p) for p in paths),
        kind="nifti",
        origin=str(first.parent),
    )


# ----------------------------------------------------------------------------- manifest
def _read_manifest(path: Path) -> list[Exam]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = list(rows[0].keys()) if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: unreadable manifest ({exc})") from None
    if rows and "path" not in header:
        raise InputError(f"{path}: manifest has no 'path' column (columns: {', '.join(header)})")
    unknown = [c for c in header if c not in _MANIFEST_COLUMNS and c not in MANIFEST_OPTIONS]
    if unknown:
        known = ", ".join(list(_MANIFEST_COLUMNS) + list(MANIFEST_OPTIONS))
        raise InputError(f"{path}: unknown manifest column(s) {', '.join(unknown)}; known: {known}")
    base = path.parent
    exams = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{path}:{i}"
        row = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not row.get("path"):
            raise InputError(f"{where}: empty 'path'")
        inputs = tuple(str(_resolve(base, p)) for p in row["path"].split(";") if p.strip())
        options = {}
        for key, conv in MANIFEST_OPTIONS.items():
            if row.get(key):
                try:
                    options[key] = conv(row[key])
                except ValueError:
                    raise InputError(f"{where}: column {key!r}: bad value {row[key]!r}") from None
        date = _iso_date(row.get("date")) if row.get("date") else None
        if row.get("date") and date is None:
            raise InputError(f"{where}: date {row['date']!r} is not YYYY-MM-DD")
        subject = _label(row.get("subject"), _label(Path(inputs[0]).name, "unknown"))
        exams.append(Exam(
            subject=subject,
            session=_label(row.get("session") or date or f"row{i}", f"row{i}"),
            study_date=date,
            inputs=inputs,
            kind="manifest",
            mask=str(_resolve(base, row["mask"])) if row.get("mask") else None,
            options=options,
            origin=where,
        ))
    return exams


def _resolve(base: Path, text: str) -> Path:
    p = Path(text.strip()).expanduser()
    return p if p.is_absolute() else base / p


def _unique(exams: list[Exam]) -> list[Exam]:
    """Stable order; two exams with the same output folder get a ``-2``, ``-3``... session suffix."""
    exams = sorted(exams, key=lambda e: (e.subject, e.study_date or "", e.session, e.inputs))
    seen: dict[str, int] = {}
    out = []
    from dataclasses import replace

    for exam in exams:
        n = seen.get(exam.exam_id, 0) + 1
        seen[exam.exam_id] = n
        out.append(exam if n == 1 else replace(exam, session=f"{exam.session}-{n}"))
    return out
