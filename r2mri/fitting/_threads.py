"""Threads of the voxel-wise fit (private): numba's for the per-voxel models, Python
threads for the ``ncchi`` lane solver.

The ``ncchi`` solver :func:`r2mri.fitting._kernels._ncchi_block` is a serial numba
kernel that releases the GIL. A numba ``parallel=True`` wrapper around it cost ~3.5 s
of the ~13 s a first run spends compiling it (parfor lowering and a second LLVM
optimisation of the whole solver; issue 14, benchmarks/README.md "First run after an
install") and gained nothing: each piece is thousands of voxels, so a
:class:`~concurrent.futures.ThreadPoolExecutor` (its threads end with the call: the
library leaves no thread behind) spreads the pieces as well. Voxels are independent,
so the maps do not depend on the pieces or the threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import numpy as np

from . import _kernels as K

#: Voxels per piece of a chunk handed to one thread, at least. [D] The lane solver's
#: lanes run empty at the end of a piece: 1024 instead of 128 voxels saved 8 % of its
#: time on the benchmark volume; a 65536-voxel chunk on 2 threads splits into 8 pieces.
_MIN_PIECE = 1024
#: Pieces per thread and chunk: a few, so that a thread that finishes early takes another.
_PIECES_PER_THREAD = 4


def _pieces(n: int, threads: int) -> list[tuple[int, int]]:
    count = max(1, min(threads * _PIECES_PER_THREAD, n // _MIN_PIECE))
    bounds = np.linspace(0, n, count + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def run_chunks(chunks: Iterable[tuple[int, np.ndarray, np.ndarray]], te64: np.ndarray,
               cfg: np.ndarray, tab: np.ndarray, out: np.ndarray, status: np.ndarray,
               threads: int, progress: Callable[[int, int], Any] | None, total: int) -> None:
    """Fit every ``(start, idx, y)`` of ``chunks`` (:func:`r2mri.fitting._fit.voxel_chunks`)
    into ``out`` / ``status`` on ``threads`` threads, calling ``progress(done, total)``
    after each chunk. numba's thread count is set for the call and restored."""
    import numba

    ncchi = int(cfg[0]) == K.NCCHI
    done = 0
    prev = numba.get_num_threads()
    pool = ThreadPoolExecutor(max_workers=threads) if ncchi and threads > 1 else None
    try:
        if not ncchi:
            numba.set_num_threads(threads)
        for start, idx, y in chunks:
            if pool is None:
                K.fit_chunk(y, te64, cfg, tab, idx, np.int64(start), out, status)
            else:
                offset = np.int64(start)
                jobs = [pool.submit(K._ncchi_block, y, te64, cfg, tab, a, b, idx, offset, out, status)
                        for a, b in _pieces(y.shape[0], threads)]
                for job in jobs:
                    job.result()
            done += y.shape[0]
            if progress is not None:
                progress(done, total)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        numba.set_num_threads(prev)
