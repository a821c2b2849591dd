"""Dask executor: the same per-exam function, submitted as futures to a ``distributed.Client``.

- ``local_workers=N``: a ``LocalCluster`` of N worker processes, one task thread each,
  on 127.0.0.1, dashboard off; ``NUMBA_NUM_THREADS`` (cores // N) is put in the workers'
  environment by their nannies (``env=``), and the workers use this machine's numba
  cache (the one the local pool uses: warm after the first run).
- ``scheduler="tcp://host:port"``: an existing cluster (dask-jobqueue, dask-kubernetes,
  ``dask worker`` on nodes). A worker plugin sets ``NUMBA_NUM_THREADS`` (default 1: one
  worker process per core) and a node-local numba cache folder
  (``<tempdir>/r2mri-numba-<uid>``, unless the worker has ``NUMBA_CACHE_DIR``) before
  numba is imported there: numba's cache beside a shared, read-only install would be
  rebuilt by every node or not be writable at all. Inputs and ``OUT`` must be on a file
  system every worker sees under the same paths.

An exam whose worker is lost is run again elsewhere: the scheduler re-runs tasks of
lost workers (``distributed.scheduler.allowed-failures``, default 3) and each future
gets ``retries`` further attempts for an unexpected exception (bad exams never raise:
they return a failed row).
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable

__all__ = ["run_dask", "NumbaSetup"]

try:  # only the class needs distributed; the module imports without it
    from distributed.diagnostics.plugin import WorkerPlugin as _Plugin
except ImportError:  # pragma: no cover - r2mri[dask] not installed
    _Plugin = object


class NumbaSetup(_Plugin):
    """Worker plugin: numba threads and a node-local cache folder before numba is imported."""

    name = "r2mri-numba-setup"
    idempotent = True

    def __init__(self, numba_threads: int = 1, cache_dir: str | None = None) -> None:
        self.numba_threads = int(numba_threads)
        self.cache_dir = cache_dir

    def setup(self, worker) -> None:  # noqa: D401 - distributed's hook
        import sys

        if "numba" in sys.modules:
            return  # too late to change numba's thread pool or cache in this process
        os.environ["NUMBA_NUM_THREADS"] = str(self.numba_threads)
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        node_local = self.cache_dir or os.path.join(tempfile.gettempdir(), f"r2mri-numba-{uid}")
        os.environ.setdefault("NUMBA_CACHE_DIR", node_local)


def run_dask(tasks: list, on_result: Callable[[int, dict], None], *, local_workers: int | None = None,
             scheduler: str | None = None, numba_threads: int | None = None, retries: int = 2) -> None:
    """Run every task with :func:`r2mri.batch._exam.run_exam` on a Dask cluster.

    Parameters
    ----------
    tasks : list of ExamTask
    on_result : callable
        ``on_result(index, result)``, called in this process as each exam finishes.
    local_workers : int, optional
        Start a ``LocalCluster`` with this many worker processes (closed at the end).
    scheduler : str, optional
        Address of an existing scheduler (``tcp://host:8786``).
    numba_threads : int, optional
        Numba threads per worker (default: cores // workers locally, 1 on a cluster).
    retries : int
        Extra attempts per exam after an unexpected exception on a worker.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        from ..errors import InputError

        raise InputError("Dask is not installed: pip install 'r2mri[dask]'") from None
    from ._exam import run_exam
    from ._pool import threads_per_worker, warm_worker_quietly

    if (local_workers is None) == (scheduler is None):
        raise ValueError("run_dask: give exactly one of local_workers and scheduler")
    if not tasks:
        return
    cluster = None
    if local_workers is not None:
        threads = numba_threads or threads_per_worker(local_workers)
        cluster = LocalCluster(n_workers=int(local_workers), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None,
                               env={"NUMBA_NUM_THREADS": str(threads)})
        client = Client(cluster)
    else:
        threads = numba_threads or 1
        client = Client(scheduler)
    try:
        if cluster is None:  # local workers got their environment from their nannies
            client.register_plugin(NumbaSetup(threads))
        client.run(warm_worker_quietly, threads, None)
        futures = {client.submit(run_exam, task, pure=False, retries=retries, key=f"r2mri-exam-{i}-{os.getpid()}"): i
                   for i, task in enumerate(tasks)}
        for fut in as_completed(list(futures)):
            i = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the exam failed, the cohort goes on
                from ._pool import _lost

                result = _lost(tasks[i], f"Dask: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            on_result(i, result)
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
