"""A first run's kernels compiled in two processes at once (``r2mri analyze`` / ``demo``).

[D] On a cold numba cache (a fresh install, container or cluster node) the command
starts one child, ``python -m r2mri._first_run GROUP...``, that compiles the fit
kernel's start step, then the noise, ROI and statistics kernels into the cache (in
that order, reporting each group on its stdout) while this process compiles the rest
of the fit kernel (:mod:`r2mri._first_run`). This
process goes on once the child has reported the groups the analysis needs before the
fit (the noise estimate); the later ones are in the cache by the time the analysis
reaches them (else it compiles them itself: time, never a number). The child is
waited for when the command's work ends. The compilations overlap on a machine with
two or more cores (benchmarks/README.md, "First run after an install"). A program's
choice, as the command owns its process; the library never starts a process. On a
warm cache, with caching off or on one core, nothing happens.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

__all__ = ["first_run_kernels"]

#: The longest the command waits for the child, in seconds (~8 s on an idle core; a
#: much slower machine would rather compile what is left in-process).
_CHILD_TIMEOUT_S = 120.0


def _start_child(groups: tuple[str, ...]) -> subprocess.Popen | None:
    from .. import _numba_setup

    env = dict(os.environ)
    if _numba_setup.CACHE_DIR is not None:  # the child must write where this process reads
        env["NUMBA_CACHE_DIR"] = _numba_setup.CACHE_DIR
    try:
        return subprocess.Popen([sys.executable, "-m", "r2mri._first_run", *groups], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None


def _wait_for(child: subprocess.Popen, groups: tuple[str, ...]) -> None:
    """Until the child has reported every group of ``groups`` (or ended)."""
    pending = set(groups)
    while pending:
        line = child.stdout.readline()
        if not line:  # the child ended (or failed): the analysis compiles what it lacks
            return
        pending.discard(line.strip())


@contextlib.contextmanager
def first_run_kernels(child_groups: tuple[str, ...], before: tuple[str, ...]):
    """On a cold cache: compile ``child_groups`` (of :data:`r2mri._first_run.GROUPS`) in a
    child and the fit kernel here, wait for the child's ``before`` groups, run the
    ``with`` body, then wait for the child (killed if the body raised). Yields whether
    the cache was cold."""
    from .. import _first_run

    child = None
    # a frozen application's executable is not a Python interpreter: no child there
    if (os.cpu_count() or 1) >= 2 and not getattr(sys, "frozen", False) and _first_run.cache_is_cold():
        child = _start_child(child_groups)
    finished = False
    try:
        if child is not None:
            _first_run.compile_groups(("fit",))
            _wait_for(child, before)
        yield child is not None
        finished = True
    finally:
        if child is not None:
            if not finished:  # interrupted or failed: the child's work is not wanted now
                child.kill()
            try:
                child.wait(timeout=_CHILD_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            child.stdout.close()
