"""The two helper processes of ``r2mri analyze``: one loads the input, one writes the outputs.

Most of the analysis runs on one core, and much of a short run is imports (numba,
scipy.ndimage, pydicom, matplotlib, highdicom: about 1.5 s of CPU together). Two
forked helpers put that work on the second core:

====================================  ============================================
this process                          helpers
====================================  ============================================
imports numba, scipy.ndimage and the  :class:`Loader` (forked first, while this
analysis modules                      process is small and has no threads):
                                      imports pydicom, loads the input
                                      (r2mri.load), sends the image, exits
sets numba up (:func:`warm_numba`),   :class:`Writer` (inherits the imports, numba
receives the image, forks the         and the input's DICOM headers): imports and
:class:`Writer`                       warms the output stage
                                      (``report._write._prepare_output_stage``)
analysis (noise, fit, ROI, stats),
sends the result, waits               writes the outputs (``write_outputs``, which
                                      forks once more for the NIfTI/DICOM files)
====================================  ============================================

The image reaches this process without its DICOM headers (``source_datasets``):
they come as pickled bytes, which the writer unpickles and puts back on the result
before writing, so this process never imports pydicom. The results are those of
:func:`r2mri.analyze` and :func:`r2mri.report.write_outputs` called in one process
(tested).

:func:`analyze_and_write` is the whole sequence, as the command runs it. Where
``fork`` is missing or fails, ``start`` returns ``None`` and the command does that part
itself; a helper that dies without an answer (killed) also leaves the work
to this process.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .._fork import fork_with_pipes
from ..errors import InputError

__all__ = ["analyze_and_write", "Loader", "Writer"]

#: Use the helpers at all (tests switch them off to compare).
ENABLED = True


def analyze_and_write(inputs: Sequence[str], out: str | os.PathLike, *, overwrite: bool = False,
                      dicom: bool | None = None, echo_times_ms: Sequence[float] | None = None,
                      series: Any = None, **analyze_options: Any) -> dict[str, Path]:
    """:func:`r2mri.analyze` of ``inputs`` and :func:`r2mri.report.write_outputs` into
    ``out``, as ``r2mri analyze`` runs them: with the loader and writer processes (in
    this process where they cannot be forked), and the collector kept off long-lived
    objects (:func:`gc.freeze`: a one-shot program's choice; the Python API leaves the
    caller's collector alone). Returns what :func:`write_outputs` returns."""
    from ..analysis import LoadedElsewhere, analyze
    from ..report import write_outputs

    paths_in = [os.fspath(p) for p in inputs]
    loader = Loader.start(paths_in, echo_times_ms, series)
    writer = None

    def receive():  # called by analyze once it has imported its modules
        nonlocal writer
        warm_numba()
        # the modules just imported are long-lived: every full collection would walk
        # their objects (0.03-0.1 s of gen-2 collections per run, measured)
        gc.freeze()
        got = loader.receive()
        writer = Writer.start(loader.datasets_pickle, shared=got[0].data)
        return got

    try:
        if loader is not None:
            source: Any = LoadedElsewhere(tuple(paths_in), receive)
        else:
            source = paths_in if len(paths_in) > 1 else paths_in[0]
        gc.freeze()
        result = analyze(source, echo_times_ms=echo_times_ms, series=series, **analyze_options)
        gc.freeze()  # the analysis's objects too, before the output stage allocates
        if writer is not None:
            return writer.write(result, out, overwrite=overwrite, dicom=dicom,
                                datasets_pickle=loader.datasets_pickle)
        if loader is not None:
            return write_here(result, out, overwrite=overwrite, dicom=dicom,
                              datasets_pickle=loader.datasets_pickle)
        return write_outputs(result, out, overwrite=overwrite, dicom=dicom, parallel=True)
    finally:
        for helper in (loader, writer):
            if helper is not None:
                helper.close()


def _error_message(exc: BaseException) -> tuple:
    if isinstance(exc, InputError):
        return ("InputError", str(exc))
    return ("error", f"{type(exc).__name__}: {exc}")


def _raise(kind: str, value: Any, what: str) -> None:
    if kind == "InputError":
        raise InputError(value)
    raise RuntimeError(f"{what} failed in a helper process: {value}")


class _Forked:
    """A forked child running ``body(requests, replies)`` over two pipes (binary files)."""

    def __init__(self, pid: int, to_child, from_child) -> None:
        self.pid: int | None = pid
        self._to = to_child
        self._from = from_child
        self._busy = False  # the child is writing files: wait for it, never kill it

    @classmethod
    def _fork(cls, body: Callable[[Any, Any], None], *args: Any):
        if not (ENABLED and hasattr(os, "fork")):
            return None
        forked = fork_with_pipes()
        if forked is None:
            return None
        pid, r_fd, w_fd = forked
        if pid == 0:  # the helper: never returns
            try:
                with os.fdopen(r_fd, "rb") as requests, os.fdopen(w_fd, "wb") as replies:
                    body(requests, replies)
            except BaseException:  # noqa: BLE001 - the parent sees the pipe close
                pass
            finally:
                os._exit(0)
        return cls(pid, os.fdopen(w_fd, "wb"), os.fdopen(r_fd, "rb"), *args)

    def _reply(self) -> tuple:
        try:
            return pickle.load(self._from)
        except EOFError:  # the helper died (killed): the caller does the work itself
            return ("gone", None)

    def close(self) -> None:
        """End the helper and wait for it: at once if it is not writing files (it has
        written nothing then), else once it has finished (its outputs complete or removed)."""
        if self.pid is not None and not self._busy:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        for f in (self._to, self._from):
            with contextlib.suppress(OSError):
                f.close()
        if self.pid is not None:
            pid, self.pid = self.pid, None
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _send(replies, msg: tuple) -> None:
    pickle.dump(msg, replies, protocol=pickle.HIGHEST_PROTOCOL)
    replies.flush()


class Loader(_Forked):
    """Loads the input in a helper forked before the analysis imports anything."""

    def __init__(self, pid: int, to_child, from_child, paths: list[str], echo_times_ms, series=None) -> None:
        super().__init__(pid, to_child, from_child)
        self._paths, self._echo_times_ms, self._series = paths, echo_times_ms, series
        #: the input's DICOM headers, pickled (None for NIfTI): for the :class:`Writer`
        self.datasets_pickle: bytes | None = None

    @classmethod
    def start(cls, paths: Sequence[str], echo_times_ms: Sequence[float] | None,
              series: Any = None) -> "Loader | None":
        """Fork the loader, which starts loading ``paths`` at once; ``None`` if no fork."""
        paths = [os.fspath(p) for p in paths]
        return cls._fork(lambda _req, rep: _load(paths, echo_times_ms, series, rep), paths, echo_times_ms, series)

    def receive(self):
        """``(image, input_format, load seconds)`` (see
        :class:`r2mri.analysis.LoadedElsewhere`); raises the load's InputError."""
        msg = self._reply()
        self.close()
        if msg[0] == "gone":
            from ..analysis import load_input

            t0 = time.perf_counter()
            img = load_input(self._paths, self._echo_times_ms, self._series)
            datasets = img.source_datasets
            if datasets:
                self.datasets_pickle = pickle.dumps(datasets, protocol=pickle.HIGHEST_PROTOCOL)
            return replace(img, source_datasets=None), ("dicom" if datasets else "nifti"), time.perf_counter() - t0
        if msg[0] != "ok":
            _raise(msg[0], msg[1], "loading the input")
        _, img, input_format, seconds, self.datasets_pickle = msg
        return img, input_format, seconds


def _load(paths: list[str], echo_times_ms, series, replies) -> None:
    from ..analysis import load_input

    t0 = time.perf_counter()
    try:
        img = load_input(paths, echo_times_ms, series)
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        _send(replies, _error_message(exc))
        return
    datasets = img.source_datasets
    blob = pickle.dumps(datasets, protocol=pickle.HIGHEST_PROTOCOL) if datasets else None
    _send(replies, ("ok", replace(img, source_datasets=None), "dicom" if datasets else "nifti",
                    time.perf_counter() - t0, blob))


class _SharedPickler(pickle.Pickler):
    """Pickles ``shared`` (an array the writer inherited at its fork) as a reference."""

    def __init__(self, file, shared: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared = shared

    def persistent_id(self, obj: Any):
        return "shared" if obj is self._shared else None


class _SharedUnpickler(pickle.Unpickler):
    def __init__(self, file, shared: Any) -> None:
        super().__init__(file)
        self._shared = shared

    def persistent_load(self, pid: Any):
        if pid != "shared":
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")
        return self._shared


class Writer(_Forked):
    """Writes the outputs in a helper that prepares the output stage during the analysis."""

    def __init__(self, pid: int, to_child, from_child, shared: Any) -> None:
        super().__init__(pid, to_child, from_child)
        self._shared = shared

    @classmethod
    def start(cls, datasets_pickle: bytes | None, shared: Any = None) -> "Writer | None":
        """Fork the writer (after the analysis modules are imported: it inherits them);
        ``datasets_pickle``: the input's DICOM headers from :class:`Loader`; ``shared``:
        an object of the result that the writer then has already (the image data, 15 MB
        for a FerriScan study), which is not sent again."""
        return cls._fork(lambda req, rep: _write(datasets_pickle, shared, req, rep), shared)

    def write(self, result: Any, out: str | os.PathLike, *, overwrite: bool, dicom: bool | None,
              datasets_pickle: bytes | None) -> dict[str, Path]:
        """:func:`r2mri.report.write_outputs` of ``result``, run by the writer."""
        job = {"result": result, "out": os.fspath(out), "overwrite": overwrite, "dicom": dicom}
        self._busy = True
        try:
            _SharedPickler(self._to, self._shared).dump(job)
            self._to.close()
        except BrokenPipeError:
            pass
        msg = self._reply()
        self.close()
        if msg[0] == "gone":
            return write_here(result, out, overwrite=overwrite, dicom=dicom, datasets_pickle=datasets_pickle)
        if msg[0] != "ok":
            _raise(msg[0], msg[1], "writing the outputs")
        return {k: Path(v) for k, v in msg[1].items()}


def write_here(result: Any, out: str | os.PathLike, *, overwrite: bool, dicom: bool | None,
               datasets_pickle: bytes | None) -> dict[str, Path]:
    """:func:`r2mri.report.write_outputs` in this process, the DICOM headers put back."""
    from ..report import write_outputs

    if datasets_pickle is not None:
        result.image = replace(result.image, source_datasets=pickle.loads(datasets_pickle))
    return write_outputs(result, out, overwrite=overwrite, dicom=dicom, parallel=True)


def warm_numba() -> None:
    """Set numba up in this process (LLVM, 0.2-0.3 s once per process) by loading the
    kernel of :func:`r2mri.noise.ncchi_mean`, before the :class:`Writer` is forked.

    The analysis needs the set-up anyway (its first kernel call would do it), and the
    writer, which calls ``ncchi_mean`` for the page's decay plot, inherits it instead of
    doing it again on the second core while the analysis uses both."""
    import numpy as np

    from ..noise import ncchi_mean

    ncchi_mean(np.zeros(1), 1.0, 1)


def _write(datasets_pickle: bytes | None, shared: Any, requests, replies) -> None:
    """The writer's life: prepare (until the result arrives), write, report."""

    def job_waiting() -> bool:  # the result (or the end of the pipe) is there
        return bool(select.select([requests], [], [], 0)[0])

    try:
        from ..report._write import _prepare_output_stage

        _prepare_output_stage(stop=job_waiting)
    except Exception:  # noqa: BLE001 - writing reports a real import problem
        pass
    gc.freeze()  # what was just imported is long-lived: keep the collector off it
    try:
        job = _SharedUnpickler(requests, shared).load()
    except EOFError:  # the analysis ended without a result (its error is reported there)
        return
    try:
        paths = write_here(job["result"], job["out"], overwrite=job["overwrite"], dicom=job["dicom"],
                           datasets_pickle=datasets_pickle)
        msg: tuple = ("ok", {k: os.fspath(v) for k, v in paths.items()})
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        msg = _error_message(exc)
    _send(replies, msg)
