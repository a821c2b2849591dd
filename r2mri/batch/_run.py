"""``r2mri.batch.run``: discover a cohort, run its exams on an executor, write the table."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError

__all__ = ["run", "CohortResult", "ANALYZE_OPTIONS"]

#: :func:`r2mri.analyze` keywords a cohort run (and a manifest row) may set.
ANALYZE_OPTIONS = ("model", "calibration", "calibration_file", "field_strength_t", "echo_times_ms",
                   "noise_sigma", "coils", "force", "roi_options", "threads")


@dataclass
class CohortResult:
    """What :func:`run` did.

    Attributes
    ----------
    rows : list of dict
        The cohort table (``OUT/cohort.csv``), in its stable order.
    exams : list of Exam
        The exams found (de-identified labels with ``deidentify``).
    skipped : list of Skipped
        Paths not used, with the reason.
    n_ran, n_reused, n_failed : int
        Exams analysed now, reused (up to date), failed.
    """

    rows: list = field(default_factory=list)
    exams: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    n_ran: int = 0
    n_reused: int = 0
    n_failed: int = 0

    @property
    def exit_code(self) -> int:
        """0 when every exam succeeded, 1 when some failed (the command's exit status)."""
        return 1 if self.n_failed else 0


class _Progress:
    """A tqdm bar over exams on a terminal; one line per finished exam otherwise."""

    def __init__(self, total: int, stream=None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total = total
        self.done = 0
        self.bar = None
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        if enabled and tty and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="exam", desc="r2mri batch", file=self.stream)

    def __call__(self, row: dict, ran: bool) -> None:
        self.done += 1
        if not self.enabled:
            return
        what = "failed: " + str(row["error"]) if row["status"] == "failed" else (
            f"LIC {row['lic_mg_per_g']:.2f} mg/g" if row.get("lic_mg_per_g") is not None else "ok")
        red = row.get("n_red_warnings") or 0
        if red:
            what += f", {red} red warning(s) that change the reading: see its report"
        if not ran:
            what += " (up to date, reused)"
        if self.bar is not None:
            self.bar.set_postfix_str(row["exam_id"], refresh=False)
            self.bar.update(1)
            if row["status"] == "failed" or red:
                self.bar.write(f"{row['exam_id']}: {what}", file=self.stream)
        else:
            print(f"[{self.done}/{self.total}] {row['exam_id']}: {what}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
        jobs: int | None = None, dask_local: int | None = None, dask_scheduler: str | None = None,
        force_rerun: bool = False, deidentify: str | os.PathLike | None = None, shift_dates: bool = False,
        dicom: bool | None = None, dry_run: bool = False, progress: bool = True,
        **analyze_options: Any) -> CohortResult:
    """Analyse a cohort: one output folder per exam and ``OUT/cohort.csv`` / ``cohort.json``.

    Parameters
    ----------
    inputs : sequence of path
        Folders (DICOM studies at any depth, BIDS-like NIfTI trees), NIfTI files or
        manifest CSVs (see :func:`r2mri.batch.discover`).
    out : path
        Output folder: ``OUT/<subject>/<session or study date>/`` per exam (what
        ``r2mri analyze`` writes, plus ``batch.json``), ``OUT/cohort.csv`` and
        ``OUT/cohort.json``.
    manifest : path, optional
        Manifest CSV (``path``, ``subject``, ``session``, ``date``, ``mask`` and
        per-row analyze options).
    jobs : int, optional
        Worker processes of the local pool (default: one per core, at most one per
        exam). Numba threads per worker: cores // jobs.
    dask_local : int, optional
        Run on a Dask ``LocalCluster`` with this many worker processes instead.
    dask_scheduler : str, optional
        Run on an existing Dask cluster (``tcp://host:8786``) instead.
    force_rerun : bool
        Analyse every exam again, even when its folder is up to date (same input
        fingerprint, settings and r2mri version).
    deidentify : path, optional
        Key file: outputs and tables without patient name, ID, birth date or
        accession number, subjects as keyed pseudonyms (see :mod:`r2mri.batch._deid`).
    shift_dates : bool
        With ``deidentify``: move each subject's dates back by a keyed 1-365 days.
    dicom : bool or None
        Write DICOM outputs (default: for DICOM inputs).
    dry_run : bool
        Only discover: return the exams and skipped paths, run nothing, write nothing.
    progress : bool
        Report progress on stderr (tqdm bar on a terminal, else a line per exam).
    **analyze_options
        :func:`r2mri.analyze` keywords for every exam (:data:`ANALYZE_OPTIONS`); a
        manifest row's options override them for that exam.

    Returns
    -------
    CohortResult

    Raises
    ------
    r2mri.InputError
        Bad invocation: missing inputs, malformed manifest, unknown option, bad key
        file, no exam found.

    Examples
    --------
    >>> import tempfile, r2mri.batch
    >>> r2mri.batch.run([tempfile.mkdtemp()], tempfile.mkdtemp(), dry_run=True).exams
    []
    """
    from ._discover import discover
    from ._exam import ExamTask, clear_partial

    deid = _check_invocation(analyze_options, jobs=jobs, dask_local=dask_local, dask_scheduler=dask_scheduler,
                             deidentify=deidentify, shift_dates=shift_dates)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    exams, skipped = discover(list(inputs), manifest=manifest, exclude=[out])
    public = [deid.exam(e) if deid is not None else e for e in exams]
    result = CohortResult(exams=public, skipped=skipped)
    if dry_run:
        return result
    if not exams:
        raise InputError(f"no exam found in {', '.join(map(str, inputs)) or manifest}"
                         + (f" ({len(skipped)} file(s) skipped; see --dry-run)" if skipped else ""))
    tasks = [ExamTask(exam=exam, public=pub, out_root=str(out), options=_exam_options(exam, analyze_options),
                      dicom=dicom, force_rerun=force_rerun, deid=deid)
             for exam, pub in zip(exams, public)]
    out.mkdir(parents=True, exist_ok=True)
    clear_partial(out)
    rows = _run_tasks(tasks, result, progress=progress, jobs=jobs, dask_local=dask_local,
                      dask_scheduler=dask_scheduler)
    from ._cohort import _sort_key, write_cohort

    result.rows = sorted((r for r in rows if r is not None), key=_sort_key)
    write_cohort(out, result.rows)
    return result


def _run_tasks(tasks: list, result: CohortResult, *, progress: bool, jobs, dask_local, dask_scheduler) -> list:
    """Run the exam tasks (local pool or Dask), counting failed, ran and reused exams in
    ``result`` and reporting progress; returns each task's cohort row (None if none came)."""
    rows: list[dict | None] = [None] * len(tasks)
    bar = _Progress(len(tasks), enabled=progress)

    def on_result(i: int, res: dict) -> None:
        rows[i] = res["row"]
        if res["row"]["status"] == "failed":
            result.n_failed += 1
        elif res["ran"]:
            result.n_ran += 1
        else:
            result.n_reused += 1
        bar(res["row"], res["ran"])

    try:
        _execute(tasks, on_result, jobs=jobs, dask_local=dask_local, dask_scheduler=dask_scheduler)
    finally:
        bar.close()
    return rows


def _check_invocation(analyze_options: dict, *, jobs, dask_local, dask_scheduler, deidentify, shift_dates):
    """Refuse a bad invocation of :func:`run` (unknown option, two executors, bad counts,
    ``shift_dates`` without a key file); return the de-identifier of ``deidentify`` (or ``None``)."""
    unknown = sorted(set(analyze_options) - set(ANALYZE_OPTIONS))
    if unknown:
        raise InputError(f"unknown analyze option(s) {', '.join(unknown)}; known: {', '.join(ANALYZE_OPTIONS)}")
    if dask_local is not None and dask_scheduler is not None:
        raise InputError("--dask-local and --dask-scheduler: give one of them")
    for name, value in (("jobs", jobs), ("dask_local", dask_local)):
        if value is not None and int(value) < 1:
            raise InputError(f"{name}: must be at least 1, got {value}")
    if shift_dates and deidentify is None:
        raise InputError("--shift-dates needs --deidentify KEYFILE")
    deid = None
    if deidentify is not None:
        from ._deid import Deidentifier

        deid = Deidentifier.from_keyfile(deidentify, shift_dates=shift_dates)
    return deid


def _exam_options(exam, analyze_options: dict) -> dict:
    """The :func:`r2mri.analyze` options of one exam: the cohort's, overridden by its manifest row."""
    options = {k: v for k, v in analyze_options.items() if v is not None}
    row_opts = dict(exam.options)
    if "erode_mm" in row_opts:
        options["roi_options"] = {**options.get("roi_options", {}), "erode_mm": row_opts.pop("erode_mm")}
    options.update(row_opts)
    return options


def _execute(tasks: list, on_result, *, jobs: int | None, dask_local: int | None, dask_scheduler: str | None) -> None:
    """Reuse the up-to-date exams here; run the others on the chosen executor."""
    from ._exam import reused

    todo = []
    for i, task in enumerate(tasks):  # up-to-date exams need no worker at all
        found = reused(task)
        if found is None:
            todo.append(i)
        else:
            on_result(i, found)
    if not todo:
        return
    todo_tasks = [tasks[i] for i in todo]

    def on_todo(k: int, res: dict) -> None:
        on_result(todo[k], res)

    if dask_local is not None or dask_scheduler is not None:
        from ._dask import run_dask

        run_dask(todo_tasks, on_todo, local_workers=dask_local, scheduler=dask_scheduler)
    else:
        from ._pool import run_local

        run_local(todo_tasks, min(int(jobs or os.cpu_count() or 1), len(todo_tasks)), on_todo)
