"""A first run's kernels compiled in two processes at once (``r2mri analyze`` / ``demo``).

[D] On a cold numba cache (a fresh install, container or cluster node) the command
starts one child, ``python -m r2mri._first_run GROUP...``, that compiles the noise,
ROI and statistics kernels into the cache while this process compiles the fit kernel
(:mod:`r2mri._first_run`); this process then waits for the child, and the analysis
loads every kernel from the cache. The two compilations overlap on a machine with two
or more cores (benchmarks/README.md, "First run after an install"). A program's
choice, as the command owns its process; the library never starts a process. On a
warm cache, with caching off or on one core, nothing happens. A child that fails or
cannot start costs nothing but time: the analysis compiles what it lacks.
"""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["compile_first_run_kernels"]

#: The longest the command waits for the child, in seconds (it compiles in ~5 s on an
#: idle core; a much slower machine would rather compile the rest in-process).
_CHILD_TIMEOUT_S = 120.0


def compile_first_run_kernels(child_groups: tuple[str, ...]) -> bool:
    """On a cold cache, compile ``child_groups`` (of :data:`r2mri._first_run.GROUPS`) in
    a child and the fit kernel here; returns whether it did. Prints nothing (stderr
    stays one line on errors)."""
    from .. import _first_run, _numba_setup

    if (os.cpu_count() or 1) < 2 or not _first_run.cache_is_cold():
        return False
    env = dict(os.environ)
    if _numba_setup.CACHE_DIR is not None:  # the child must write where this process reads
        env["NUMBA_CACHE_DIR"] = _numba_setup.CACHE_DIR
    try:
        child = subprocess.Popen([sys.executable, "-m", "r2mri._first_run", *child_groups],
                                 env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    except OSError:
        child = None
    finished = False
    try:
        _first_run.compile_groups(("fit",))
        finished = True
    finally:
        if child is not None:
            if not finished:  # interrupted: the child's work is not wanted now
                child.kill()
            try:
                child.wait(timeout=_CHILD_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return True
