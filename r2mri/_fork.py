"""A forked child process with a pipe each way to its parent (POSIX)."""

from __future__ import annotations

import os

__all__ = ["fork_with_pipes"]


def fork_with_pipes() -> tuple[int, int, int] | None:
    """Fork; return ``(pid, read_fd, write_fd)``, or ``None`` when fork fails.

    In the child ``pid`` is 0, ``read_fd`` reads what the parent writes and ``write_fd``
    writes to the parent; in the parent it is the other way round. The ends a side does
    not use are closed on that side (so a reader sees the end of the pipe when the
    other side closes or exits), and nothing is left open when fork fails.
    """
    r_down, w_down = os.pipe()  # parent -> child
    r_up, w_up = os.pipe()  # child -> parent
    try:
        pid = os.fork()
    except OSError:
        for fd in (r_down, w_down, r_up, w_up):
            os.close(fd)
        return None
    if pid == 0:
        os.close(w_down)
        os.close(r_up)
        return 0, r_down, w_up
    os.close(r_down)
    os.close(w_up)
    return pid, r_up, w_down
