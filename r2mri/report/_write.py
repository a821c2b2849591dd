"""write_outputs: every output file of an analysis, into one folder, atomically."""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import threading
from pathlib import Path
from typing import Any, Callable

from .._atomic import atomic_directory, atomic_write_text
from .._fork import fork_with_pipes
from ..errors import InputError
from ._json import dumps, report_dict

__all__ = ["write_outputs"]

def write_outputs(result: Any, out: str | os.PathLike, *, overwrite: bool = False,
                  dicom: bool | None = None, parallel: bool = False) -> dict[str, Path]:
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
        Also write DICOM objects (Parametric Maps of R2 and LIC, SEG of the ROI,
        TID 1500 SR, Secondary Capture of the report page) into ``out/dicom``.
        ``None``: only when the input was DICOM. ``True`` with non-DICOM input
        raises :class:`r2mri.InputError` (there is no source study to reference).
    parallel : bool
        Opt-in (POSIX only): write the NIfTI maps and DICOM objects in a forked child
        process while this one draws the report page. Off by default: the library runs
        in the caller's process, because forking a multi-threaded host (a DICOM node, a
        Dask worker, a web service, a notebook) can deadlock the child. Only a
        single-threaded caller that owns its process (the ``r2mri`` command) should
        ask for it. The outputs are the same either way.

    Returns
    -------
    dict
        Output kind -> final path (``"report_json"``, ``"report_pdf"``, ...).

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
    with _collector_paused_on_old_objects(), atomic_directory(out, overwrite=overwrite) as tmp:
        from ._page import write_page

        atomic_write_text(tmp / "report.json", dumps(rep))
        rel["report_json"] = Path("report.json")
        job = _ChildWriter.start(result, rep, tmp, bool(dicom)) if parallel and hasattr(os, "fork") else None
        if job is None:
            written = {}
            rgb = write_page(result, rep, tmp / "report.pdf", tmp / "report.png")
            written.update(_write_maps_and_dicom(result, rep, tmp, bool(dicom)))
            if dicom:
                from ._dicom import write_dicom_page

                written.update(_dicom_errors(write_dicom_page, result, rep, tmp / "dicom", rgb))
        else:
            try:
                # the raster is drawn first and sent to the child, which encodes
                # report.png and the DICOM capture from it while this process draws the PDF
                write_page(result, rep, tmp / "report.pdf", None, on_pixels=job.send)
            except BaseException:
                job.abort()
                raise
            written = job.finish()
        rel["report_pdf"] = Path("report.pdf")
        rel["report_png"] = Path("report.png")
        for key, p in written.items():
            rel[key] = p.relative_to(tmp)
        _apply_umask(tmp)
    return {k: out / v for k, v in rel.items()}


@contextlib.contextmanager
def _collector_paused_on_old_objects():
    """While the outputs are written, keep the garbage collector off the objects that
    existed before (the caller's, numba's, scipy's: millions in a typical process), and
    put them back afterwards.

    [D] Drawing the page allocates enough for two full collections, each walking every
    object of the process: 0.28 s of a 1.6 s ``write_outputs`` (measured with
    ``gc.callbacks`` after :func:`r2mri.analyze`). ``gc.freeze()`` moves the existing
    objects out of the collector's generations and ``gc.unfreeze()`` moves them back;
    new objects are collected as usual. A caller that froze objects itself keeps its
    own arrangement (nothing is done then).
    """
    if gc.get_freeze_count() > 0:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _apply_umask(folder: Path) -> None:
    """Give the folder the permissions a plain ``mkdir``/``open`` would have.

    The atomic helpers create private temporaries (``mkdtemp``/``mkstemp``: 0700/0600);
    a report folder should be readable like any other output.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def _dicom_errors(func, *args):
    """Call a DICOM writer; header problems become one-line :class:`InputError`."""
    try:
        return func(*args)
    except InputError:
        raise
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        # highdicom refuses headers it cannot derive from (odd geometry, missing
        # modules...): say so in one line; the other outputs need --no-dicom.
        raise InputError(
            f"--dicom: cannot derive DICOM objects from the source headers "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); use --no-dicom"
        ) from exc


def _write_maps_and_dicom(result: Any, rep: dict, tmp: Path, dicom: bool) -> dict[str, Path]:
    """NIfTI maps, settings.json and (all but the page's Secondary Capture) the DICOM objects."""
    from ._nifti import write_nifti_maps, write_settings

    written: dict[str, Path] = {}
    for p in write_nifti_maps(result, tmp, rep):
        written[p.name[: -len(".nii.gz")]] = p
    written["settings"] = write_settings(result, tmp, rep)
    if dicom:
        from ._dicom import write_dicom

        written.update(_dicom_errors(write_dicom, result, rep, tmp / "dicom"))
    return written


def _receive(fd: int, into: list) -> None:
    """Unpickle one object from pipe ``fd`` into ``into`` (empty on a closed pipe)."""
    try:
        with os.fdopen(fd, "rb") as f:
            into.append(pickle.load(f))
    except (EOFError, OSError, pickle.UnpicklingError):
        pass


class _ChildWriter:
    """A forked child writing :func:`_write_maps_and_dicom` (then report.png and the page's
    DICOM capture from the pixels the parent sends) into the same temporary folder."""

    def __init__(self, pid: int, to_child: int, from_child: int, tmp: Path) -> None:
        self.pid, self.to_child, self.from_child, self.tmp = pid, to_child, from_child, tmp

    @classmethod
    def start(cls, result: Any, rep: dict, tmp: Path, dicom: bool) -> "_ChildWriter | None":
        forked = fork_with_pipes()
        if forked is None:
            return None
        pid, r_fd, w_fd = forked
        if pid == 0:  # child: never returns; reads the pixels from r_fd, answers on w_fd
            try:
                # the pixels are read by a thread while the maps are written: the pipe
                # holds 64 kB, so a parent sending 6.5 MB would otherwise wait for the
                # maps to finish before it could go on to the PDF (seen: the PDF 0.3 s late)
                received: list = []
                reader = threading.Thread(target=_receive, args=(r_fd, received), daemon=True)
                reader.start()
                try:
                    written = _write_maps_and_dicom(result, rep, tmp, dicom)
                    reader.join()
                    rgb = received[0] if received else None
                    if rgb is None:
                        raise RuntimeError("no page pixels from the parent process")
                    from ._page import write_png

                    write_png(rgb, tmp / "report.png")
                    if dicom:
                        from ._dicom import write_dicom_page

                        written.update(_dicom_errors(write_dicom_page, result, rep, tmp / "dicom", rgb))
                    msg: tuple = ("ok", {k: os.fspath(v) for k, v in written.items()})
                except InputError as exc:
                    msg = ("InputError", str(exc))
                except OSError as exc:  # disk full...: the parent's atomic_directory words it
                    msg = ("OSError", (exc.errno, exc.strerror, exc.filename))
                except BaseException as exc:  # noqa: BLE001 - reported by the parent
                    msg = ("error", f"{type(exc).__name__}: {exc}")
                with os.fdopen(w_fd, "wb") as f:
                    pickle.dump(msg, f)
            finally:
                os._exit(0)
        return cls(pid, w_fd, r_fd, tmp)

    def _collect(self) -> tuple:
        with os.fdopen(self.from_child, "rb") as f:
            try:
                msg = pickle.load(f)
            except EOFError:
                msg = ("error", "the report writer process ended without a result")
        os.waitpid(self.pid, 0)
        return msg

    def send(self, rgb) -> None:
        """Send the page pixels (for report.png and the DICOM capture) to the child."""
        if self.to_child is None:
            return
        try:
            with os.fdopen(self.to_child, "wb") as f:
                pickle.dump(rgb, f, protocol=pickle.HIGHEST_PROTOCOL)
        except BrokenPipeError:  # the child stopped early: its message says why
            pass
        self.to_child = None

    def finish(self) -> dict[str, Path]:
        """Wait for the child (the pixels sent); return kind -> path."""
        if self.to_child is not None:
            self.send(None)  # never sent: the child reports that it had no pixels
        kind, value = self._collect()
        if kind == "InputError":
            raise InputError(value)
        if kind == "OSError":
            raise OSError(*value)
        if kind != "ok":
            raise RuntimeError(f"writing the NIfTI/DICOM outputs failed: {value}")
        return {k: Path(v) for k, v in value.items()}

    def abort(self) -> None:
        """The page failed: let the child finish (it must not outlive the folder), drop its result."""
        if self.to_child is not None:
            try:
                os.close(self.to_child)
            except OSError:
                pass
            self.to_child = None
        try:
            self._collect()
        except Exception:  # noqa: BLE001 - the page's error is the one to report
            pass


def _prepare_output_stage(stop: Callable[[], bool] | None = None) -> None:
    """Import what writing the outputs of an analysis needs, most urgent first.

    ``r2mri analyze`` runs it in its writer process while the analysis runs (see
    ``r2mri/commands/_helper.py``); ``stop()`` is asked before each step, and once it
    says true the rest is left to be imported where it is needed. The order follows the
    critical path of :func:`write_outputs`: the page (matplotlib with its Agg and PDF
    backends, the page's fonts, fontTools for the PDF's font subsets) is drawn by this
    process while a forked child writes the NIfTI maps and the DICOM objects (nibabel,
    PIL, pydicom, highdicom). highdicom's tables of the DICOM standard (22 MB of JSON,
    0.17-0.39 s, read at their first use) are left to that child: it has time to spare
    while the page is drawn, and reading them here delayed the page when the analysis
    ended first (measured: up to 0.37 s).
    """

    def page():
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.figure  # noqa: F401
        import matplotlib.gridspec  # noqa: F401
        import matplotlib.patches  # noqa: F401
        from matplotlib.backends import backend_agg  # noqa: F401

        from . import _page  # noqa: F401

    def fonts():
        from matplotlib import font_manager

        for weight, style in (("normal", "normal"), ("bold", "normal"), ("normal", "italic")):
            font_manager.get_font(font_manager.findfont(font_manager.FontProperties(weight=weight, style=style)))

    def pdf():
        import fontTools.subset  # noqa: F401
        from matplotlib.backends import backend_pdf  # noqa: F401

    def files():
        import nibabel  # noqa: F401
        import PIL.Image  # noqa: F401
        import PIL.PngImagePlugin  # noqa: F401
        import pydicom  # noqa: F401

        from . import _nifti  # noqa: F401

    def dicom():
        import highdicom  # noqa: F401

        from . import _dicom  # noqa: F401

    for step in (page, fonts, pdf, files, dicom):
        if stop is not None and stop():
            return
        step()
