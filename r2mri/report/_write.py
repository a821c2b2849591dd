"""write_outputs: every output file of an analysis, into one folder, atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._atomic import atomic_directory, atomic_write_text, current_umask
from ..errors import InputError
from ._json import dumps, report_dict

__all__ = ["write_outputs"]


def write_outputs(result: Any, out: str | os.PathLike, *, overwrite: bool = False,
                  dicom: bool | None = None, uid_seed: str | None = None) -> dict[str, Path]:
    """Write report.json, report.pdf/png, NIfTI maps, settings.json (and DICOM) to ``out``.

    Parameters
    ----------
    result : r2mri.analysis.AnalysisResult
        Output of :func:`r2mri.analyze`.
    out : path
        Output folder; built in a temporary sibling and renamed into place, so on
        any error it is not created (or an existing one is left as it was).
    overwrite : bool
        Replace an existing ``out``; without it an existing ``out`` raises
        :class:`r2mri.InputError` before anything is written.
    dicom : bool or None
        Also write DICOM objects (Parametric Maps of R2 -- or R2* and PDFF for
        gradient-echo results -- and LIC, SEG of the ROI, TID 1500 SR, Secondary
        Capture of the report page) into ``out/dicom``.
        ``None``: only when the input was DICOM. ``True`` with non-DICOM input
        raises :class:`r2mri.InputError` (there is no source study to reference).
    uid_seed : str or None
        With DICOM outputs: derive every UID r2mri generates (the series and SOP
        instance UIDs of each object, and the SR's observer and tracking UIDs) from
        this string, ``pydicom.uid.generate_uid(entropy_srcs=[uid_seed, role])``, so
        writing the same result again with the same seed gives the same UIDs: a
        re-send after a crash replaces the objects in a PACS instead of duplicating
        them. Pick a seed unique to the analysis (for example the source series UID
        with the r2mri version and the analysis options). ``None`` (default): new
        random UIDs on every call.

    Returns
    -------
    dict
        Output kind -> final path (``"report_json"``, ``"report_pdf"``, ...).

    Notes
    -----
    Everything runs in the caller's process and thread: no process is started, no
    thread outlives the call, and no process-wide setting (garbage collector,
    matplotlib backend or rcParams, umask, warning filters) is changed, so a
    multi-threaded host (a DICOM node, a Dask worker, a web service, a notebook) can
    call it. Drawing the page allocates enough for a few full collections, which walk
    every object of the process (0.28 s in a process that has run :func:`r2mri.analyze`,
    measured); a program that owns its process can call :func:`gc.freeze` beforehand,
    as the ``r2mri`` command does.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, r2mri
    >>> from r2mri import phantom
    >>> from r2mri.report import write_outputs
    >>> ph = phantom.generate(lic=7.0, matrix=(48, 48), pixel_mm=8.0, n_slices=2, seed=0)
    >>> outline = np.isin(ph.truth.labels, [phantom.LABELS["liver"], phantom.LABELS["vessel"]])
    >>> res = r2mri.analyze(ph.image, mask=outline)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report"
    >>> paths = write_outputs(res, out)
    >>> sorted(p.name for p in out.iterdir() if p.suffix != ".json")[:4]
    ['R2map.nii.gz', 'S0map.nii.gz', 'T2map.nii.gz', 'desc-LIC_map.nii.gz']
    """
    has_dicom = bool(getattr(result.image, "source_datasets", None))
    if dicom is None:
        dicom = has_dicom
    if dicom and not has_dicom:
        raise InputError(
            "--dicom: the input was not DICOM, so there is no source study to reference (use --no-dicom)"
        )
    rep = report_dict(result)
    out = Path(out)
    rel: dict[str, Path] = {}
    with atomic_directory(out, overwrite=overwrite) as tmp:
        from ._page import write_page

        atomic_write_text(tmp / "report.json", dumps(rep))
        rel["report_json"] = Path("report.json")
        rgb = write_page(result, rep, tmp / "report.pdf", tmp / "report.png")
        rel["report_pdf"] = Path("report.pdf")
        rel["report_png"] = Path("report.png")
        written = _write_maps_and_dicom(result, rep, tmp, bool(dicom), uid_seed)
        if dicom:
            from ._dicom import write_dicom_page

            written.update(_dicom_errors(write_dicom_page, result, rep, tmp / "dicom", rgb, uid_seed=uid_seed))
        for key, p in written.items():
            rel[key] = p.relative_to(tmp)
        _apply_umask(tmp)
    return {k: out / v for k, v in rel.items()}


def _apply_umask(folder: Path) -> None:
    """Give the folder the permissions a plain ``mkdir``/``open`` would have.

    The atomic helpers create private temporaries (``mkdtemp``/``mkstemp``: 0700/0600);
    a report folder should be readable like any other output.
    """
    umask = current_umask()
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def _dicom_errors(func, *args, uid_seed=None):
    """Call a DICOM writer; header problems become one-line :class:`InputError`."""
    try:
        return func(*args, uid_seed=uid_seed)
    except InputError:
        raise
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        # highdicom refuses headers it cannot derive from (odd geometry, missing
        # modules...): say so in one line; the other outputs need --no-dicom.
        raise InputError(
            f"--dicom: cannot derive DICOM objects from the source headers "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); use --no-dicom"
        ) from exc


def _write_maps_and_dicom(result: Any, rep: dict, tmp: Path, dicom: bool,
                          uid_seed: str | None = None) -> dict[str, Path]:
    """NIfTI maps, settings.json and (all but the page's Secondary Capture) the DICOM objects."""
    from ._nifti import write_nifti_maps, write_settings

    written: dict[str, Path] = {}
    for p in write_nifti_maps(result, tmp, rep):
        written[p.name[: -len(".nii.gz")]] = p
    written["settings"] = write_settings(result, tmp, rep)
    if dicom:
        from ._dicom import write_dicom

        written.update(_dicom_errors(write_dicom, result, rep, tmp / "dicom", uid_seed=uid_seed))
    return written
