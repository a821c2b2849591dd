"""The node's spool folder: received instances, job folders and the queue database.

Layout (all on one file system, so every move is an atomic rename)::

    SPOOL/queue.sqlite              job states (r2mri.node.queue)
    SPOOL/tmp/                      instances being written
    SPOOL/incoming/<study>/<sop>.dcm  instances of studies still arriving
    SPOOL/jobs/<id>/input/          the instances of job <id> (moved from incoming/)
    SPOOL/jobs/<id>/out/            r2mri outputs (report, maps, out/dicom/*.dcm)
    SPOOL/jobs/<id>/notice/         the failure notice of a failed job

An instance is visible in ``incoming/`` only once complete (written to ``tmp/``,
flushed, renamed). Instances arriving after their study was handed to a job start a
new job for the same study.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from .queue import JobQueue

__all__ = ["Spool", "safe_name"]

_UID = re.compile(r"^[0-9][0-9.]{0,63}$")


def safe_name(uid: str) -> str:
    """A file name for a UID: the UID itself when it is a plain UID, else its hash.

    Examples
    --------
    >>> safe_name("1.2.840.1"), safe_name("../etc")[:8]
    ('1.2.840.1', 'h-f7f912')
    """
    uid = str(uid).strip().rstrip("\x00")
    if _UID.match(uid) and ".." not in uid:
        return uid
    return "h-" + hashlib.sha256(uid.encode()).hexdigest()[:40]


class Spool:
    """One spool folder and its queue.

    Parameters
    ----------
    root : path
        Created if absent.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for sub in ("tmp", "incoming", "jobs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.queue = JobQueue(self.root / "queue.sqlite")
        # taken by the network threads (instance in, study grouping) and the scheduler
        # (study handed to a job), so an instance never lands in a folder being moved
        self.lock = threading.Lock()

    def study_dir(self, study_uid: str) -> Path:
        return self.root / "incoming" / safe_name(study_uid)

    def job_dir(self, job_id: int) -> Path:
        return self.root / "jobs" / str(int(job_id))

    def free_mb(self) -> float:
        return shutil.disk_usage(self.root).free / 1e6

    def store_instance(self, study_uid: str, sop_instance_uid: str, data: bytes) -> int:
        """Write one received instance (Part 10 bytes) atomically; return its job id."""
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", suffix=".dcm")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            with self.lock:
                folder = self.study_dir(study_uid)
                folder.mkdir(exist_ok=True)
                os.replace(tmp, folder / f"{safe_name(sop_instance_uid)}.dcm")
                return self.queue.instance_received(study_uid)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def hand_to_job(self, job_id: int, stable_seconds: float) -> bool:
        """Move a stable study's instances to its job folder and queue the job.

        False (nothing done) when an instance arrived meanwhile.
        """
        with self.lock:
            job = self.queue.get(job_id)
            if job.state != "received" or job.id not in {j.id for j in self.queue.stable(stable_seconds)}:
                return False
            folder = self.study_dir(job.study_uid)
            target = self.job_dir(job_id) / "input"
            target.parent.mkdir(parents=True, exist_ok=True)
            if folder.exists() and not target.exists():
                os.replace(folder, target)
            target.mkdir(exist_ok=True)
            self.queue.set_state(job_id, "queued")
            return True

    def recover(self) -> dict[str, list[int]]:
        """Make the folders and the queue agree after a crash; return what was done."""
        done: dict[str, list[int]] = {"queued": [], "requeued": [], "new": []}
        with self.lock:
            for tmp in (self.root / "tmp").iterdir():  # never renamed: never answered
                tmp.unlink(missing_ok=True)
            for job in self.queue.jobs(("received",)):
                if (self.job_dir(job.id) / "input").exists():  # moved; the commit was lost
                    self.queue.set_state(job.id, "queued")
                    done["queued"].append(job.id)
            done["requeued"] = [j.id for j in self.queue.recover()]
            receiving = {j.study_uid for j in self.queue.jobs(("received",))}
            for folder in sorted((self.root / "incoming").iterdir()):
                files = list(folder.glob("*.dcm"))
                if not files:
                    continue
                study_uid = _study_uid_of(files[0])
                if study_uid is None or study_uid in receiving:
                    continue
                # stored, but the job row was never committed
                for _ in files:
                    job_id = self.queue.instance_received(study_uid)
                done["new"].append(job_id)
        return done


def _study_uid_of(path: Path) -> str | None:
    import pydicom

    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"]).StudyInstanceUID)
    except Exception:  # noqa: BLE001 - an unreadable leftover is skipped, not fatal
        return None
