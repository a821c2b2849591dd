"""Durable job queue of the node: one SQLite table in the spool.

A job is one study received by the node. Its state is written (and committed) before
the step it names starts, so a node killed at any moment finds, on restart, each job
in the state of the step it was in::

    received --(stable_seconds without new instance)--> queued --> analysing --> sending --> done
                                                                             \\-> sending --> failed
                                                                                (failure notice)

``failed`` jobs still pass through ``sending``: the destinations receive a notice
saying why no LIC was produced. Which result instances each destination has acknowledged
(or refused) is in the ``sent`` table, so a restart never sends one twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = ["STATES", "Job", "JobQueue"]

#: Job states, in order.
STATES = ("received", "queued", "analysing", "sending", "done", "failed")

#: Allowed transitions (state -> next states).
TRANSITIONS = {
    "received": {"queued"},
    "queued": {"analysing"},
    "analysing": {"sending", "queued"},  # queued again: the worker died
    "sending": {"done", "failed"},
    "done": set(),
    "failed": set(),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_uid TEXT NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT,                -- 'ok' or 'failed' once analysed
    created REAL NOT NULL,
    updated REAL NOT NULL,
    last_instance REAL NOT NULL, -- time of the last instance received
    n_instances INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,  -- analyses started
    retries INTEGER NOT NULL DEFAULT 0,   -- sending attempts that failed
    next_try REAL NOT NULL DEFAULT 0,     -- sending: not before this time
    error TEXT,
    files TEXT,                  -- JSON list of the DICOM files to send
    headline_lic REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS sent (
    job_id INTEGER NOT NULL,
    destination TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    status TEXT NOT NULL,        -- 'stored' or 'refused: <why>'
    at REAL NOT NULL,
    PRIMARY KEY (job_id, destination, sop_instance_uid)
);
"""


class Job(dict):
    """One row of ``jobs`` (a dict with attribute access)."""

    __getattr__ = dict.__getitem__


class JobQueue:
    """The jobs of one spool, shared by the network threads and the scheduler.

    Parameters
    ----------
    path : path
        SQLite file (created with its tables when absent).
    readonly : bool
        Open for ``r2mri queue`` (never writes, never creates).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> q = JobQueue(pathlib.Path(tempfile.mkdtemp()) / "queue.sqlite")
    >>> job = q.instance_received("1.2.3", now=10.0)
    >>> q.instance_received("1.2.3", now=12.0) == job
    True
    >>> [j.id for j in q.stable(stable_seconds=5, now=16.0)], [j.id for j in q.stable(5, now=17.0)]
    ([], [1])
    >>> q.set_state(job, "queued"); q.get(job).state
    'queued'
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        if readonly:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, args: tuple = ()) -> list[Job]:
        with self._lock:
            return [Job(dict(r)) for r in self._db.execute(sql, args).fetchall()]

    def _write(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            cur = self._db.execute(sql, args)
            return cur.lastrowid

    def get(self, job_id: int) -> Job:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (int(job_id),))
        if not rows:
            raise KeyError(job_id)
        return rows[0]

    def jobs(self, states: tuple[str, ...] = STATES) -> list[Job]:
        marks = ",".join("?" * len(states))
        return self._rows(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", tuple(states))

    def receiving_job(self, study_uid: str) -> int | None:
        """The job in ``received`` for ``study_uid``, if any."""
        rows = self._rows("SELECT id FROM jobs WHERE study_uid = ? AND state = 'received' ORDER BY id DESC LIMIT 1",
                          (study_uid,))
        return rows[0].id if rows else None

    def instance_received(self, study_uid: str, *, now: float | None = None) -> int:
        """Count one instance of ``study_uid``; return its ``received`` job (new if needed)."""
        now = time.time() if now is None else now
        with self._lock:
            job_id = self.receiving_job(study_uid)
            if job_id is None:
                return self._write(
                    "INSERT INTO jobs (study_uid, state, created, updated, last_instance, n_instances) "
                    "VALUES (?, 'received', ?, ?, ?, 1)", (study_uid, now, now, now))
            self._write("UPDATE jobs SET last_instance = ?, n_instances = n_instances + 1 WHERE id = ?",
                        (now, job_id))
            return job_id

    def stable(self, stable_seconds: float, now: float | None = None) -> list[Job]:
        """``received`` jobs whose last instance is at least ``stable_seconds`` old."""
        now = time.time() if now is None else now
        return self._rows("SELECT * FROM jobs WHERE state = 'received' AND last_instance <= ? ORDER BY id",
                          (now - stable_seconds,))

    def set_state(self, job_id: int, state: str, **fields: Any) -> None:
        """Move a job to ``state`` (a legal transition) and set ``fields`` in the same commit."""
        if state not in STATES:
            raise ValueError(f"state: unknown {state!r}")
        with self._lock:
            current = self.get(job_id).state
            if state not in TRANSITIONS[current]:
                raise ValueError(f"job {job_id}: {current} -> {state} is not a legal transition")
            sets = ", ".join(f"{k} = ?" for k in ("state", "updated", *fields))
            self._write(f"UPDATE jobs SET {sets} WHERE id = ?", (state, time.time(), *fields.values(), int(job_id)))

    def update(self, job_id: int, **fields: Any) -> None:
        """Set ``fields`` without changing the state."""
        sets = ", ".join(f"{k} = ?" for k in ("updated", *fields))
        self._write(f"UPDATE jobs SET {sets} WHERE id = ?", (time.time(), *fields.values(), int(job_id)))

    def due_for_sending(self, now: float | None = None) -> list[Job]:
        now = time.time() if now is None else now
        return self._rows("SELECT * FROM jobs WHERE state = 'sending' AND next_try <= ? ORDER BY id", (now,))

    def recover(self) -> list[Job]:
        """After a restart: jobs left ``analysing`` go back to ``queued`` (returned)."""
        with self._lock:
            back = self.jobs(("analysing",))
            for job in back:
                self._write("UPDATE jobs SET state = 'queued', updated = ? WHERE id = ?", (time.time(), job.id))
        return back

    def restart_stable_clocks(self, now: float | None = None) -> None:
        """Count the stable wait of every ``received`` job from ``now``."""
        now = time.time() if now is None else now
        self._write("UPDATE jobs SET last_instance = ? WHERE state = 'received'", (now,))

    # -- what each destination got -------------------------------------------------
    def record_sent(self, job_id: int, destination: str, sop_instance_uid: str, status: str) -> None:
        self._write("INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?, ?)",
                    (int(job_id), destination, sop_instance_uid, status, time.time()))

    def sent(self, job_id: int) -> dict[tuple[str, str], str]:
        """``(destination, sop_instance_uid) -> status`` of one job."""
        rows = self._rows("SELECT destination, sop_instance_uid, status FROM sent WHERE job_id = ?", (int(job_id),))
        return {(r["destination"], r["sop_instance_uid"]): r["status"] for r in rows}

    def refusals(self, job_id: int) -> Iterator[tuple[str, str, str]]:
        for (dest, uid), status in sorted(self.sent(job_id).items()):
            if status != "stored":
                yield dest, uid, status
