"""The numba kernels of a first ``r2mri analyze`` / ``r2mri demo``, by explicit signature.

A first run after an install compiles its kernels one after the other (issue 14). The
``r2mri analyze`` and ``r2mri demo`` commands (programs, not the library) compile them
in two processes at once when the cache is cold (r2mri/commands/_cold_start.py): the
fit kernel in the command's process, its start step and the other kernels in a child
(``python -m r2mri._first_run GROUP...``); each writes numba's cache, and the analysis
then loads every kernel from it. This module only compiles: it never starts a process.

The signatures are those of an ``ncchi`` analysis of float32 data (DICOM, NIfTI and
the phantoms load as float32). A run whose signatures differ (another model, float64
arrays) compiles what it lacks itself, as without this module: only time is at stake,
never a number. tests/test_first_run.py checks that a phantom analysis after
:func:`compile_groups` compiles nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["GROUPS", "signatures", "compile_groups", "cache_is_cold"]

#: Kernel groups: ``fit`` (the ``ncchi`` lane solver and its helpers, ~60 % of a first
#: run's compile time, in the order the command compiles them), ``fit_starts`` (the
#: solver's start step, ~2 s of those: a child that compiles it first has it in the
#: cache before the solver itself is compiled, after its other helpers), ``noise``
#: (background noise estimate, E[M] tables), ``smooth`` (the ROI's median filter),
#: ``grow`` (region growing of the automatic liver ROI), ``stats`` (bootstrap of the
#: headline).
GROUPS = ("fit", "fit_starts", "noise", "smooth", "grow", "stats")


def signatures(group: str) -> list[tuple[object, tuple]]:
    """``(dispatcher, signature)`` pairs of ``group`` (one of :data:`GROUPS`)."""
    from numba import types as T

    def arr(dtype, ndim, readonly=False):
        return T.Array(dtype, ndim, "C", readonly=readonly)

    f64, i64 = T.float64, T.int64
    v64 = arr(f64, 1)
    if group in ("fit", "fit_starts"):
        from .fitting import _kernels as K

        f2, tab, b1, i1 = arr(f64, 2), arr(f64, 2, True), arr(T.boolean, 1), arr(i64, 1)
        if group == "fit_starts":
            return [(K._ncchi_starts, (f2, v64, i64, i64) + (f64,) * 5 + (i1, b1, f2) + (v64,) * 8)]
        b = T.boolean
        return [(K._ncchi_pass, (f2, v64, b, v64, f64, i64, f64, tab, f64)),
                (K._ncchi_propose, (f64,) * 8 + (b, b) + (f64,) * 3),
                (K._ncchi_finish, (f2, i64, f64, f64, f64, b, b, f64, i64, f64, f64, v64, v64)),
                (K._ncchi_control, (v64, i64, f64, f64, f64, f64)),
                (K._ncchi_block, (f2, v64, v64, tab, i64, i64, i1, i64, arr(T.float32, 2),
                                  arr(T.uint8, 1)))]
    if group == "noise":
        from . import _noise_estimate, noise

        return [(_noise_estimate._voxel_sums, (arr(T.float32, 2),)),
                (noise._ncchi_mean_array, (v64, f64, i64, v64)),
                (noise._ncchi_deriv_array, (v64, f64, i64, v64)),
                (noise._ncchi_eval_array, (v64, f64, i64, f64, arr(f64, 2, True), v64, v64))]
    if group == "smooth":
        from . import _roi_grow

        return [(_roi_grow._median3x3_inplane, (arr(f64, 3),))]
    if group == "grow":
        from . import _roi_grow

        b3, f3 = arr(T.boolean, 3), arr(f64, 3)
        return [(_roi_grow._grow_kernel, (b3, b3, f3, f3, f3) + (f64,) * 7 + (i64,))]
    if group == "stats":
        from . import stats

        return [(stats._resampled_ratios, (arr(i64, 2), v64, v64, v64))]
    raise ValueError(f"unknown kernel group {group!r}; expected one of {GROUPS}")


def compile_groups(groups, done=None) -> int:
    """Compile (or load from the cache) every signature of ``groups``, in order, calling
    ``done(group)`` after each group; returns how many signatures."""
    n = 0
    for group in groups:
        for dispatcher, sig in signatures(group):
            dispatcher.compile(sig)
            n += 1
        if done is not None:
            done(group)
    return n


def cache_is_cold() -> bool:
    """True when numba caches r2mri's kernels and the ``ncchi`` solver has no cache entry
    yet (a fresh install, container or node). False when it has one, or when caching is
    off (a child could not hand its kernels over)."""
    from . import _numba_setup
    from .fitting import _kernels as K

    if not _numba_setup.CACHE_ENABLED:
        return False
    try:
        index = Path(K._ncchi_block._cache._cache_file._index_path)  # numba 0.5x-0.6x
    except AttributeError:  # another numba: no guess, the run compiles as it goes
        return False
    return not index.exists()


def _report(group: str) -> None:
    print(group, flush=True)  # the command waits for some groups before it goes on


if __name__ == "__main__":  # pragma: no cover - run by r2mri/commands/_cold_start.py
    compile_groups(sys.argv[1:], done=_report)
