"""Loading multi-echo MRI (DICOM, Enhanced MR, NIfTI + BIDS sidecars) and masks.

Public API: :func:`load`, :func:`load_mask`, :class:`Finding`, :func:`check_protocol`.
See ``docs/loading.md`` for what loads, the series-selection rule and the findings.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..image import MultiEchoImage
from ._mask import load_mask
from .protocol import Finding, check_protocol

__all__ = ["load", "load_mask", "Finding", "check_protocol", "list_datasets"]

PathLike = str | os.PathLike


def _as_paths(path_or_paths) -> list[Path]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        items = [path_or_paths]
    else:
        try:
            items = list(path_or_paths)
        except TypeError:
            raise InputError(f"path_or_paths: expected a path or a list of paths, got {path_or_paths!r}") from None
    if not items:
        raise InputError("path_or_paths: no path given")
    out = []
    for p in items:
        if not isinstance(p, (str, os.PathLike)):
            raise InputError(f"path_or_paths: not a path: {p!r}")
        out.append(Path(p))
    return out


def _series_list(series) -> list[str] | None:
    if series is None:
        return None
    if isinstance(series, (str, int)) and not isinstance(series, bool):
        return [str(series)]
    try:
        out = [str(s) for s in series]
    except TypeError:
        raise InputError(f"series: expected SeriesInstanceUIDs or series numbers, got {series!r}") from None
    if not out:
        raise InputError("series: empty list")
    return out


def list_datasets(path_or_paths) -> dict:
    """Describe every DICOM series and candidate multi-echo dataset under the paths.

    Parameters
    ----------
    path_or_paths : path or list of paths
        DICOM files and/or folders (searched recursively).

    Returns
    -------
    dict
        ``series``: one dict per series (uid, number, description, echo times,
        frames, matrix, PatientID, StudyInstanceUID); ``candidates``: candidate
        datasets, best first (the one :func:`load` picks without ``series=``), each
        with the series of its acquisition it leaves out (``series_left_out``);
        ``skipped_files``: non-image files ignored;
        ``complex_series``: phase / real / imaginary series (``complex_component`` P, R
        or I), never candidates themselves; :func:`load` pairs them with the magnitude.

    Examples
    --------
    >>> import tempfile
    >>> list_datasets(tempfile.mkdtemp())  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    r2mri.errors.InputError: no DICOM image found in ...
    """
    from . import _dicom, _grouping

    paths = _as_paths(path_or_paths)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")
        cplx: list = []
        frames, skipped = _dicom.discover(paths, complex_out=cplx)
    if not frames:
        raise InputError(f"no DICOM image found in {', '.join(map(str, paths))}")
    cands, _ = _grouping.candidates(frames)
    phase = _series_found(cplx)
    for s, fs in zip(phase, [_grouping.by_series(cplx)[s["series_instance_uid"]] for s in phase]):
        s["complex_component"] = fs[0].params["complex_component"]
    return {"series": _series_found(frames), "candidates": [c.summary() for c in cands], "skipped_files": skipped,
            "complex_series": phase}


def _series_found(frames) -> list[dict]:
    from ._grouping import by_series
    from ._other_study import patient_id, patient_label

    series, pids = [], {}
    for uid, fs in by_series(frames).items():
        pid = patient_id(fs[0])
        series.append({
            "series_instance_uid": uid,
            "series_number": fs[0].series_number,
            "series_description": fs[0].series_description,
            "echo_times_ms": sorted({f.te_ms for f in fs if f.te_ms is not None}),
            "n_frames": len(fs),
            "matrix": [fs[0].rows, fs[0].cols],
            "patient": None if pid is None else patient_label(pids.setdefault(pid, len(pids))),
            "study_instance_uid": fs[0].study_uid,
        })
    series.sort(key=lambda s: (s["series_number"] if s["series_number"] is not None else -1, s["series_instance_uid"]))
    return series


def load(path_or_paths, echo_times_ms: Sequence[float] | None = None, series=None, phase=None) -> MultiEchoImage:
    """Load a multi-echo magnitude dataset from DICOM or NIfTI.

    Parameters
    ----------
    path_or_paths : path or list of paths
        A folder (searched recursively for DICOM; non-DICOM files are skipped), DICOM
        files, one 4-D NIfTI, or one 3-D NIfTI per echo (BIDS JSON sidecars beside
        them give ``EchoTime`` in seconds).
    echo_times_ms : sequence of float, optional
        Echo times in **milliseconds**, one per echo. Required for NIfTI without
        sidecars; for DICOM it replaces the header echo times (echoes ordered by
        header EchoTime, or EchoNumbers when EchoTime is absent).
    series : str, int or list of them, optional
        The series forming the dataset, as SeriesInstanceUIDs or series numbers: one
        multi-echo series, or the single-echo series of a per-TE protocol (FerriScan).
        Default: the best candidate by the rule in ``docs/loading.md`` (spin echo
        first, then most echoes, most slices, highest series number); series of its
        acquisition that it leaves out are listed in ``metadata["series_left_out"]``
        and make the error finding ``series-left-out``.
    phase : path, list of paths or False, optional
        NIfTI only: the phase image(s) of the magnitude (radians, or the Siemens
        integer range; rules in ``docs/loading.md``, "Phase from NIfTI"). Default: the
        BIDS ``part-phase`` (else ``part-real`` + ``part-imag``) files beside the
        magnitude with the same entities; ``False`` loads the magnitude alone. Shape,
        affine and echo times must match the magnitude. DICOM phase series pair by
        themselves (``docs/loading.md``, "Phase").

    Returns
    -------
    MultiEchoImage
        ``data`` (x = column, y = row, z = slice along the normal, echo) float32
        real-world values; ``echo_times_s`` ascending; RAS+ ``affine``.

    Raises
    ------
    InputError
        Nothing loadable, unreadable/corrupt files, geometry or frame of reference
        differing between echoes, missing or duplicated slices, echo count mismatch.

    Examples
    --------
    >>> import json, tempfile, pathlib, numpy as np, nibabel as nib
    >>> import r2mri
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> nib.save(nib.Nifti1Image(np.ones((4, 4, 2, 3), np.float32), np.eye(4)), d / "me.nii.gz")
    >>> _ = (d / "me.json").write_text(json.dumps({"EchoTime": [0.006, 0.009, 0.012]}))
    >>> img = r2mri.load(d / "me.nii.gz")
    >>> img.shape, img.echo_times_ms.round(3).tolist()
    ((4, 4, 2), [6.0, 9.0, 12.0])
    """
    with warnings.catch_warnings():
        # pydicom warns on values outside the standard (e.g. UIDs with a leading-zero
        # component, as in real Siemens data); they are not errors for us.
        warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")
        return _load(path_or_paths, echo_times_ms, series, phase)


def _load(path_or_paths, echo_times_ms, series, phase=None) -> MultiEchoImage:
    from . import _dicom, _grouping, _other_study, _phase
    from ._nifti import is_nifti
    from ._nifti_phase import load_nifti_complex

    paths = _as_paths(path_or_paths)
    wanted = _series_list(series)
    nifti = [is_nifti(p) for p in paths]
    if any(nifti):
        # a glob like sub-01_* also lists the JSON sidecars: they are read beside each NIfTI
        paths = [p for p in paths if is_nifti(p) or p.suffix.lower() != ".json"]
        nifti = [is_nifti(p) for p in paths]
        if not all(nifti):
            raise InputError("path_or_paths: mix of NIfTI and other paths; pass one kind")
        if wanted is not None:
            raise InputError("series: only applies to DICOM input")
        return load_nifti_complex(paths, echo_times_ms, phase)

    source = ", ".join(str(p) for p in paths)
    if phase is not None and phase is not False:
        raise InputError(f"phase: only applies to NIfTI input; DICOM phase series in {source} pair by themselves")
    cplx: list = []
    frames, skipped = _dicom.discover(paths, complex_out=cplx)
    if not frames and cplx and wanted is None:
        img = _phase.load_real_imaginary(cplx, echo_times_ms, source)
        if img is not None:
            img.metadata["candidates"] = []
            img.metadata["series_found"] = _series_found(cplx)
            img.metadata["skipped_files"] = skipped
            img.metadata["series_left_out"] = []
            return img
    if not frames and cplx:
        raise InputError(f"no magnitude image in {source}: only phase/real/imaginary images "
                         f"({len(_grouping.by_series(cplx))} series), which are never analysed as magnitude")
    if not frames:
        hint = ""
        if any(is_nifti(Path(f)) for f in skipped):
            hint = "; NIfTI files are there: pass them as paths (with their JSON sidecars beside them)"
        raise InputError(f"no DICOM image found in {source} ({len(skipped)} non-image files skipped){hint}")
    by_series = _grouping.by_series(frames)
    cands, why = _grouping.candidates(frames)
    left_out: list[dict] = []
    if wanted is not None:
        img, chosen = _load_chosen_series(wanted, by_series, cplx, echo_times_ms, source)
    else:
        img, chosen, left_out, complete = _load_best_candidate(cands, why, by_series, frames, skipped, cplx,
                                                               echo_times_ms, source)
        if complete:
            return img
    img.metadata["candidates"] = [c.summary() for c in cands]
    img.metadata["series_found"] = _series_found(frames)
    img.metadata["skipped_files"] = skipped
    # series of the chosen acquisition not in the dataset: an error finding (protocol.py)
    img.metadata["series_left_out"] = [dict(s) for s in left_out]
    # series of another patient or study: a warning naming them (r2mri.io._other_study)
    img.metadata["series_other_study"] = _other_study.other_series(chosen, frames, cplx)
    return img


def _load_chosen_series(wanted, by_series: dict, cplx: list, echo_times_ms, source: str):
    """The image of the series the user chose (``series=``): ``(img, frames)``."""
    from . import _dicom, _grouping, _other_study, _phase

    wanted = _grouping.resolve_series(wanted, by_series, source)
    _other_study.check_chosen(wanted, by_series, source)  # one patient, one study
    chosen = [f for u in wanted for f in by_series[u]]
    if len(wanted) == 1:
        kind = "enhanced" if chosen[0].frame_index is not None else "multi-echo"
    else:
        kind = "per-te-series"
        first = by_series[wanted[0]]
        for u in wanted[1:]:
            # the user's choice: only what prevents one voxel grid refuses it (TR, flip
            # angle and field differences become protocol findings)
            d = _grouping.series_difference(first, by_series[u], contrast=False)
            if d:
                raise InputError(f"series {u} does not match series {wanted[0]}: {d}")
    img = _dicom.assemble(chosen, echo_times_ms=echo_times_ms, source=source, kind=kind)
    _phase.attach_phase(img, chosen, cplx, echo_times_ms)
    return img, chosen


def _load_best_candidate(cands: list, why, by_series: dict, frames: list, skipped: list, cplx: list,
                         echo_times_ms, source: str):
    """The image of the loader's best candidate dataset: ``(img, frames, series_left_out, complete)``.

    ``complete``: one series whose echoes lack EchoTime, named by ``echo_times_ms``, whose
    image already has its metadata. No candidate otherwise raises, naming why.
    """
    from . import _dicom, _grouping, _other_study, _phase

    if not cands:
        if echo_times_ms is not None and len(by_series) == 1:
            # one series whose echoes lack EchoTime: echo_times_ms names them
            uid = next(iter(by_series))
            img = _dicom.assemble(by_series[uid], echo_times_ms=echo_times_ms, source=source, kind="multi-echo")
            _phase.attach_phase(img, by_series[uid], cplx, echo_times_ms)
            cands_summary: list = []
            img.metadata["candidates"] = cands_summary
            img.metadata["series_found"] = _series_found(frames)
            img.metadata["skipped_files"] = skipped
            img.metadata["series_left_out"] = []
            return img, by_series[uid], [], True
        if why:
            raise InputError(f"no multi-echo dataset in {source}: {why}")
        raise InputError(
            f"no multi-echo dataset in {source}: {len(by_series)} series, each with a single "
            f"echo time and no per-TE series sharing one geometry"
        )
    _other_study.check_candidates(cands, frames, source)  # two patients: never a silent pick
    best = cands[0]
    chosen = best.frames
    dup = _grouping.duplicate_te_series(best)
    if dup:
        raise InputError(
            f"{source}: series {dup[0]} and {dup[1]} have the same echo time and geometry; "
            f"choose the series with series=[...]"
        )
    img = _dicom.assemble(best.frames, echo_times_ms=echo_times_ms, source=source, kind=best.kind)
    _phase.attach_phase(img, best.frames, cplx, echo_times_ms)
    left_out = best.left_out
    return img, chosen, left_out, False
