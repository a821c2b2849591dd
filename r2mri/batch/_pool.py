"""Local executor: a pool of warm worker processes started with ``spawn``.

``spawn`` works the same on Linux, macOS and Windows and never forks a process that
may hold threads (numba's, a caller's). Each worker sets ``NUMBA_NUM_THREADS`` before
numba is imported (numba sizes its thread pool once, at import), then imports r2mri and
runs one tiny analysis so that the kernels are loaded from numba's cache and the
report writers are imported before the first real exam arrives.
"""

from __future__ import annotations

import os
from typing import Callable

__all__ = ["threads_per_worker", "warm_worker", "run_local"]


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Numba threads per worker so that ``workers x threads <= cores`` (at least 1).

    Examples
    --------
    >>> threads_per_worker(2, cores=2), threads_per_worker(3, cores=8), threads_per_worker(4, cores=2)
    (1, 2, 1)
    """
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def warm_worker(numba_threads: int | None = None, numba_cache_dir: str | None = None) -> None:
    """Prepare this process for exams: numba thread count, cache folder, imports, kernels.

    The environment variables are only set when numba is not imported yet (numba
    reads them at import); an explicit ``NUMBA_CACHE_DIR`` of the user is kept.
    """
    import sys

    if "numba" not in sys.modules:
        if numba_threads:
            os.environ["NUMBA_NUM_THREADS"] = str(int(numba_threads))
        if numba_cache_dir and not os.environ.get("NUMBA_CACHE_DIR"):
            os.environ["NUMBA_CACHE_DIR"] = str(numba_cache_dir)
    elif numba_threads:  # numba came first (imported by the main module): use fewer of its threads
        import numba

        numba.set_num_threads(min(int(numba_threads), numba.config.NUMBA_NUM_THREADS))
    import numpy as np

    from ..analysis import analyze
    from ..phantom import generate
    from ..report import _page  # noqa: F401  - matplotlib and the page layout
    from ..report import _write  # noqa: F401

    # big enough for air around the body: the noise is estimated from it, as in an exam
    ph = generate(lic=5.0, matrix=(48, 48), pixel_mm=8.0, n_slices=1, seed=0)
    analyze(ph.image, mask=np.asarray(ph.truth.liver_mask))


def _init(numba_threads: int, numba_cache_dir: str | None) -> None:
    warm_worker_quietly(numba_threads, numba_cache_dir)


def warm_worker_quietly(numba_threads: int, numba_cache_dir: str | None) -> None:
    """:func:`warm_worker`, whose failure only costs time: the exams report real errors."""
    try:
        warm_worker(numba_threads, numba_cache_dir)
    except Exception:  # noqa: BLE001
        pass


def run_local(tasks: list, jobs: int, on_result: Callable[[int, dict], None], *,
              numba_threads: int | None = None) -> None:
    """Run :func:`r2mri.batch._exam.run_exam` on every task, ``jobs`` processes at a time.

    ``on_result(index, result)`` is called in this process as each exam finishes. With
    ``jobs == 1`` the exams run here, one after the other (no extra process).
    """
    from ._exam import run_exam

    if not tasks:
        return
    if jobs <= 1:
        for i, task in enumerate(tasks):
            on_result(i, run_exam(task))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    threads = numba_threads or threads_per_worker(jobs)
    ctx = multiprocessing.get_context("spawn")
    pending = dict(enumerate(tasks))
    for _attempt in range(2):  # a worker that dies breaks the pool: one fresh pool for the rest
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=ctx,
                                 initializer=_init, initargs=(threads, None)) as pool:
            futures = {pool.submit(run_exam, task): i for i, task in pending.items()}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    on_result(i, fut.result())
                    pending.pop(i)
            except BrokenProcessPool:
                continue
        break
    for i, task in sorted(pending.items()):
        on_result(i, _lost(task, "a worker process died while analysing it (out of memory?)"))


def _lost(task, reason: str) -> dict:
    from ._exam import _input_label
    from ._cohort import failed_row

    return {"row": failed_row(task.public, input_label=_input_label(task), error=reason, seconds=None), "ran": True}
