"""Analysis of one study, run in a worker process of the node.

The node starts its workers with the ``spawn`` start method (never ``fork``: the node
is multi-threaded, and a forked copy of a thread holding a lock deadlocks); each
worker imports r2mri, highdicom and matplotlib and loads the fit kernels once
(:func:`warm`), then analyses one study at a time (:func:`analyse_study`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["warm", "analyse_study", "select_instances", "WorkerPool", "IMAGE_SOP_CLASSES"]

#: SOP classes the analysis reads (MR Image Storage, Enhanced MR Image Storage);
#: anything else in a study is stored and ignored.
IMAGE_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1"}


def warm() -> int:
    """Import the analysis stack and compile/load the fit kernels once; return the pid."""
    import numpy as np

    import highdicom  # noqa: F401
    import matplotlib

    matplotlib.use("Agg")
    import r2mri
    import r2mri.report  # noqa: F401

    te = np.array([6.0, 9.0, 12.0, 15.0, 18.0]) * 1e-3
    data = (1000 * np.exp(-te * 40.0) + 5).astype(np.float32) * np.ones((2, 2, 1, 1), np.float32)
    r2mri.fit(data, echo_times_s=te, noise_sigma=5.0, threads=1)
    return os.getpid()


def select_instances(folder: Path) -> tuple[list[Path], list[str], Any]:
    """Image instances of ``folder`` worth analysing, notes on the others, and one
    readable dataset of the study (for a failure notice; ``None`` if none).

    Skipped (noted): unreadable files, other SOP classes, truncated pixel data, and
    r2mri's own outputs sent back to the node.
    """
    import pydicom

    images, notes, first, first_image, ours = [], [], None, None, 0
    for path in sorted(folder.glob("*.dcm")):
        try:
            ds = pydicom.dcmread(path)
        except Exception as exc:  # noqa: BLE001 - a bad file is skipped, not fatal
            notes.append(f"{path.name}: unreadable ({type(exc).__name__})")
            continue
        first = first if first is not None else ds
        if first_image is None and str(getattr(ds, "SOPClassUID", "")) in IMAGE_SOP_CLASSES:
            first_image = ds
        if str(getattr(ds, "Manufacturer", "")) == "r2mri":
            ours += 1
            continue
        if str(getattr(ds, "SOPClassUID", "")) not in IMAGE_SOP_CLASSES:
            notes.append(f"{path.name}: SOP class {getattr(ds, 'SOPClassUID', '?')} ignored")
            continue
        if not _pixels_complete(ds):
            notes.append(f"{path.name}: truncated pixel data")
            continue
        images.append(path)
    if ours and not images and len(notes) == sum("ignored" in n for n in notes):
        notes.append("only r2mri outputs")
    return images, notes, first_image if first_image is not None else first


def _pixels_complete(ds: Any) -> bool:
    try:
        need = int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8 * int(getattr(ds, "NumberOfFrames", 1) or 1)
        need *= int(getattr(ds, "SamplesPerPixel", 1) or 1)
        return len(ds.PixelData) >= need
    except (AttributeError, ValueError, TypeError):
        return False


# what the node sends, in this order. GRE results have pm_r2star (and pm_pdff, pm_water,
# pm_fat, pm_fieldmap where the fat-water fit made them) instead of pm_r2 (docs/report.md)
SENT_OUTPUTS = ("pm_r2", "pm_r2star", "pm_pdff", "pm_water", "pm_fat", "pm_fieldmap", "pm_lic", "seg_liver_roi",
                "sr_report", "sc_report")


def result_files(paths: dict) -> list[str]:
    """The files of ``write_outputs``'s ``paths`` that the node sends (:data:`SENT_OUTPUTS`)."""
    return [str(paths[k]) for k in SENT_OUTPUTS if k in paths]


def analyse_study(input_dir: str, out_dir: str, notice_dir: str, options: dict, uid_seed: str,
                  fail_reason: str | None = None) -> dict:
    """Analyse the study in ``input_dir``; write the outputs (or a failure notice).

    Returns a JSON-able dict: ``outcome`` (``"ok"``, ``"failed"`` or ``"ignored"``),
    ``files`` (DICOM files to send), ``error`` (one line, when failed),
    ``headline_lic_mg_per_g``, ``seconds``, ``notes``. With ``fail_reason`` the study
    is not analysed: only its failure notice is written (a study that killed its workers).
    """
    import r2mri
    from r2mri.report import report_dict, write_outputs

    t0 = time.monotonic()
    images, notes, any_ds = select_instances(Path(input_dir))
    if not images and "only r2mri outputs" in notes:
        return {"outcome": "ignored", "files": [], "error": None, "notes": notes[-1:],
                "seconds": time.monotonic() - t0, "headline_lic_mg_per_g": None}
    try:
        if fail_reason:
            raise RuntimeError(fail_reason)
        if not images:
            raise r2mri.InputError("no usable MR image instance in the study (" + "; ".join(notes[:3]) + ")")
        result = r2mri.analyze([str(p) for p in images], **options)
        # every generated UID derives from the seed (study UID, r2mri version, options):
        # a study analysed again after a crash gets the same result UIDs, so a
        # destination that already has some of them replaces rather than duplicates
        paths = write_outputs(result, out_dir, dicom=True, overwrite=True, uid_seed=uid_seed)
        files = result_files(paths)
        head = report_dict(result)["lic_mg_per_g"]["of_mean_r2"]
        return {"outcome": "ok", "files": files, "error": None, "notes": notes[:20],
                "seconds": time.monotonic() - t0, "headline_lic_mg_per_g": head}
    except Exception as exc:  # noqa: BLE001 - every failure becomes a notice
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        files = []
        if any_ds is not None:
            from .notice import write_failure_notice

            try:
                files = [str(write_failure_notice(any_ds, reason, Path(notice_dir), uid_seed))]
            except Exception as notice_exc:  # noqa: BLE001
                notes.append(f"notice not written ({type(notice_exc).__name__})")
        return {"outcome": "failed", "files": files, "error": reason, "notes": notes[:20],
                "seconds": time.monotonic() - t0, "headline_lic_mg_per_g": None}


def _worker_main(conn) -> None:
    """Body of a worker process: warm up, then analyse one study per message."""
    try:
        conn.send(("ready", warm()))
        while True:
            try:
                task = conn.recv()
            except EOFError:  # the node is gone
                return
            if task is None:
                return
            conn.send(("done", analyse_study(**task)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return


class WorkerPool:
    """``n`` warm analysis processes, one study at a time each.

    :meth:`submit` gives a task to an idle worker; :meth:`poll` returns the finished
    ``(job_id, result)`` pairs, and ``(job_id, None)`` for a job whose worker died
    (the worker is replaced). :meth:`stop` ends them all.
    """

    def __init__(self, n: int, start_method: str = "spawn") -> None:
        import multiprocessing

        if start_method == "fork":
            raise ValueError("start_method: 'fork' is unsafe in the multi-threaded node")
        self._ctx = multiprocessing.get_context(start_method)
        self._slots = [self._start() for _ in range(n)]

    def _start(self) -> dict:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child,), name="r2mri-worker", daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "job": None, "pid": None, "started": time.monotonic()}

    @property
    def idle(self) -> int:
        return sum(s["job"] is None for s in self._slots)

    @property
    def pids(self) -> list[int]:
        return [s["proc"].pid for s in self._slots]

    def submit(self, job_id: int, task: dict) -> bool:
        for slot in self._slots:
            if slot["job"] is None:
                slot["job"] = job_id
                try:
                    slot["conn"].send(task)
                except (OSError, ValueError):  # the worker is gone: poll() reports the job
                    pass
                return True
        return False

    def poll(self) -> list[tuple[int, dict | None]]:
        out: list[tuple[int, dict | None]] = []
        for i, slot in enumerate(self._slots):
            try:
                while slot["conn"].poll():
                    kind, value = slot["conn"].recv()
                    if kind == "ready":
                        slot["pid"] = value
                    elif kind == "done":
                        out.append((slot["job"], value))
                        slot["job"] = None
            except (EOFError, OSError):
                pass
            if not slot["proc"].is_alive():
                if slot["job"] is not None:
                    out.append((slot["job"], None))
                slot["conn"].close()
                self._slots[i] = self._start()
        return out

    def stop(self, timeout_s: float = 2.0) -> None:
        for slot in self._slots:
            try:
                slot["conn"].send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + timeout_s
        for slot in self._slots:
            slot["proc"].join(max(0.0, deadline - time.monotonic()))
            if slot["proc"].is_alive():
                slot["proc"].terminate()
                slot["proc"].join(1.0)
            if slot["proc"].is_alive():
                slot["proc"].kill()
                slot["proc"].join()
            slot["conn"].close()
