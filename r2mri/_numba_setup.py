"""Decide, once at import time, where (and whether) numba caches compiled kernels.

numba's default cache sits in ``__pycache__`` beside the source, falling back to a
user cache directory. If neither is writable (read-only site-packages *and* an
unwritable HOME, as in hardened containers), ``@njit(cache=True)`` raises at
decoration time and the package would fail to import. This module picks a
writable location before any kernel is compiled:

1. ``NUMBA_CACHE_DIR`` from the environment, if set (the user's choice wins);
2. the package's own ``__pycache__`` (numba's default) if writable;
3. ``$XDG_CACHE_HOME/r2mri/numba`` or ``~/.cache/r2mri/numba`` if writable;
4. ``<tempdir>/r2mri-numba-<uid>`` if writable;
5. otherwise caching is disabled (kernels compile on every process start).

Kernels must be declared with :func:`njit` from this module, which also lists them
(:func:`kernels`) so that ``r2mri warmup`` can report what it compiled.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numba

__all__ = ["njit", "kernels", "CACHE_ENABLED", "CACHE_DIR"]


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=".r2mri-probe-", delete=True)
        probe.close()
        return True
    except OSError:
        return False


def _choose_cache_dir() -> tuple[bool, str | None]:
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return (_writable(Path(env)), env)
    package_cache = Path(__file__).resolve().parent / "__pycache__"
    if _writable(package_cache):
        return (True, None)  # numba's default locator works
    candidates = []
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        candidates.append(Path(xdg) / "r2mri" / "numba")
    try:
        candidates.append(Path.home() / ".cache" / "r2mri" / "numba")
    except RuntimeError:  # no home directory at all
        pass
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    candidates.append(Path(tempfile.gettempdir()) / f"r2mri-numba-{uid}")
    for cand in candidates:
        if _writable(cand):
            return (True, str(cand))
    return (False, None)


CACHE_ENABLED, CACHE_DIR = _choose_cache_dir()
if CACHE_ENABLED and CACHE_DIR is not None:
    # numba reads NUMBA_CACHE_DIR into its config at import; set both so the
    # choice holds whether or not numba was imported before r2mri.
    numba.config.CACHE_DIR = CACHE_DIR


_KERNELS: list = []  # every dispatcher made by njit below, in definition order


def njit(*args, **kwargs):
    """``numba.njit`` with the cache setting decided above (``cache=`` is forced); the
    dispatcher is recorded for :func:`kernels`."""
    kwargs["cache"] = CACHE_ENABLED
    kwargs.setdefault("nogil", True)
    if args and callable(args[0]):  # bare @njit
        dispatcher = numba.njit(**kwargs)(args[0])
        _KERNELS.append(dispatcher)
        return dispatcher

    def decorate(func):
        dispatcher = numba.njit(*args, **kwargs)(func)
        _KERNELS.append(dispatcher)
        return dispatcher

    return decorate


def kernels() -> list:
    """The numba dispatchers of every r2mri module imported so far (definition order).

    Each has ``signatures`` (compiled or loaded in this process) and ``stats``
    (``cache_hits`` / ``cache_misses`` per signature, ``cache_path``).
    """
    return list(_KERNELS)
