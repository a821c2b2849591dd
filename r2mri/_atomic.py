"""Atomic writing: never leave a half-written file or output folder behind.

I/O helpers only; no physics here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from .errors import InputError

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_path", "atomic_directory", "current_umask"]


def current_umask() -> int:
    """The process's file mode creation mask, read without changing it.

    ``os.umask`` can only be read by setting it (``os.umask(0)`` then back), and in
    between a file created by another thread of the process would get mode 0666: a
    library must not do that in a multi-threaded host. Linux reports the mask in
    ``/proc/self/status``; elsewhere a probe folder created with mode 0777 shows it.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    probe = Path(tempfile.gettempdir()) / f".r2mri-umask-{os.getpid()}-{threading.get_ident()}"
    os.mkdir(probe, 0o777)
    try:
        return 0o777 & ~os.stat(probe).st_mode
    finally:
        os.rmdir(probe)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Use for writers that need a file name (nibabel, pydicom, matplotlib). On any
    exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp creates 0600
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(out: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Build an output folder in a temporary sibling and rename it into place.

    Parameters
    ----------
    out : path
        Final folder. If it exists and ``overwrite`` is false, :class:`InputError`
        is raised before anything is written.
    overwrite : bool
        Replace an existing ``out`` (the old folder is removed only after the new
        one is complete).

    Yields
    ------
    pathlib.Path
        The temporary folder to write into. On any exception it is removed and
        ``out`` is left as it was (absent, or the previous contents).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.exists() and not overwrite:
        raise InputError(f"{out}: output folder exists (use --overwrite to replace it)")
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        bad = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), None)
        why = f"{bad} is a file, not a folder" if bad is not None else exc.strerror or str(exc)
        raise InputError(f"{out}: cannot create the output folder: {why}") from None
    try:
        # mkdtemp creates 0700; give the finished folder the mode a plain mkdir would.
        os.chmod(tmp, 0o777 & ~current_umask())
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=parent))
            os.rmdir(old)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as exc:  # disk full, file too large, permission denied...: one line, no folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(out, tmp, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_error(out: Path, tmp: Path, exc: OSError) -> InputError:
    """``OUT: cannot write NAME: <reason> (no output written)``, NAME relative to the folder."""
    name = exc.filename
    if name:
        try:
            name = os.fspath(Path(name).relative_to(tmp))
        except ValueError:
            name = os.fspath(name)
    what = f"cannot write {name}" if name else "cannot write the outputs"
    return InputError(f"{out}: {what}: {exc.strerror or exc} (no output written)")
