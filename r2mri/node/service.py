"""The node: storage SCP + durable queue + analysis workers + storage SCU.

One scheduler thread moves jobs along (:meth:`Node.tick`, every 0.2 s): stable
studies are queued, queued jobs go to idle workers, finished analyses become
``sending``, and due ``sending`` jobs go to a small thread pool that C-STOREs the
results to every destination. Every state is committed before its step starts.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time
from typing import Any

from .._version import __version__
from .config import NodeConfig
from .logs import log_event
from .spool import Spool

__all__ = ["Node", "MAX_ANALYSIS_ATTEMPTS"]

#: A study whose worker died this many times is failed (and its notice sent).
MAX_ANALYSIS_ATTEMPTS = 3


class Node:
    """A running ``r2mri serve`` (see docs/node.md).

    Parameters
    ----------
    cfg : NodeConfig
        Validated settings.
    """

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.spool = Spool(cfg.spool)
        self.queue = self.spool.queue
        self.server = None
        self.pool = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._senders = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="r2mri-send")
        self._sending: set[int] = set()
        self._started_at: dict[int, float] = {}
        self._ssl_client = None
        self._uids: dict[str, str] = {}

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> "Node":
        from .scp import make_ssl_context, start_scp
        from .worker import WorkerPool

        recovered = self.spool.recover()
        log_event("node_starting", aet=self.cfg.aet, host=self.cfg.host, port=self.cfg.port,
                  spool=str(self.cfg.spool), workers=self.cfg.workers, version=__version__,
                  destinations=[str(d) for d in self.cfg.destinations], recovered=recovered, tls=self.cfg.tls)
        if not self.cfg.destinations:
            log_event("no_destinations", logging.WARNING)
        self._ssl_client = make_ssl_context(self.cfg, server=False)
        self.pool = WorkerPool(self.cfg.workers)
        self.server = start_scp(self.cfg, self.spool)
        # a sender cut off by a crash retries once the node listens again: give it a
        # full stable window from now, or its partial study would be analysed at once
        self.queue.restart_stable_clocks()
        log_event("listening", port=self.server.server_address[1], worker_pids=self.pool.pids)
        self._thread = threading.Thread(target=self._loop, name="r2mri-scheduler", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server else self.cfg.port

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.shutdown()
        if self._thread is not None:
            self._thread.join(10)
        self._senders.shutdown(wait=True, cancel_futures=True)
        if self.pool is not None:
            self.pool.stop()
        log_event("node_stopped")
        self.queue.close()

    def wait(self) -> None:
        """Block until :meth:`stop` is called (from a signal handler or another thread)."""
        while not self._stop.wait(0.5):
            pass

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the scheduler must keep serving
                logging.getLogger("r2mri.node").exception("scheduler error", extra={"event": "scheduler_error"})
            self._stop.wait(0.2)

    def _sop_uid(self, path: str) -> str:
        """SOP Instance UID of a result file (read once, then remembered)."""
        if path not in self._uids:
            import pydicom

            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            self._uids[path] = str(ds.SOPInstanceUID)
        return self._uids[path]

    # -- one scheduling pass ------------------------------------------------------
    def tick(self) -> None:
        for job in self.queue.stable(self.cfg.stable_seconds):
            if self.spool.hand_to_job(job.id, self.cfg.stable_seconds):
                log_event("state", job=job.id, study_uid=job.study_uid, state="queued",
                          instances=job.n_instances, waited_s=round(time.time() - job.created, 3))
        for job_id, result in self.pool.poll():
            self._analysed(job_id, result)
        for job in self.queue.jobs(("queued",)):
            if not self.pool.idle:
                break
            self._analyse(job)
        for job in self.queue.due_for_sending():
            if job.id not in self._sending:
                self._sending.add(job.id)
                self._senders.submit(self._send_job, job.id)

    def uid_seed(self, study_uid: str) -> str:
        return f"{study_uid}|{__version__}|{self.cfg.options_fingerprint()}"

    def _analyse(self, job: Any) -> None:
        fail_reason = None
        if job.attempts >= MAX_ANALYSIS_ATTEMPTS:
            fail_reason = f"the analysis process died {job.attempts} times on this study"
        self.queue.set_state(job.id, "analysing", attempts=job.attempts + 1)
        d = self.spool.job_dir(job.id)
        task = dict(input_dir=str(d / "input"), out_dir=str(d / "out"), notice_dir=str(d / "notice"),
                    options=dict(self.cfg.analysis), uid_seed=self.uid_seed(job.study_uid), fail_reason=fail_reason)
        self.pool.submit(job.id, task)
        self._started_at[job.id] = time.monotonic()
        log_event("state", job=job.id, study_uid=job.study_uid, state="analysing", attempt=job.attempts + 1)

    def _analysed(self, job_id: int, result: dict | None) -> None:
        job = self.queue.get(job_id)
        seconds = round(time.monotonic() - self._started_at.pop(job_id, time.monotonic()), 3)
        if result is None:  # the worker died
            self.queue.set_state(job_id, "queued")
            log_event("worker_died", logging.ERROR, job=job_id, study_uid=job.study_uid, attempt=job.attempts)
            return
        files = json.dumps(result["files"])
        self.queue.set_state(job_id, "sending", outcome=result["outcome"], files=files, error=result["error"],
                             headline_lic=result["headline_lic_mg_per_g"], next_try=0)
        level = logging.WARNING if result["outcome"] == "failed" else logging.INFO
        log_event("state", level, job=job_id, study_uid=job.study_uid, state="sending", outcome=result["outcome"],
                  analysis_s=seconds, headline_lic_mg_per_g=result["headline_lic_mg_per_g"],
                  error=result["error"], files=len(result["files"]), notes=result["notes"][:5])

    def _send_job(self, job_id: int) -> None:
        from .scu import send_files

        try:
            job = self.queue.get(job_id)
            files = json.loads(job.files or "[]")
            t0 = time.monotonic()
            errors = []
            for dest in self.cfg.destinations:
                done = self.queue.sent(job_id)
                todo = [f for f in files if (str(dest), self._sop_uid(f)) not in done]
                if not todo:
                    continue

                def record(uid: str, status: str, dest=dest) -> None:
                    self.queue.record_sent(job_id, str(dest), uid, status)
                    if status != "stored":
                        log_event("refused", logging.WARNING, job=job_id, study_uid=job.study_uid,
                                  destination=str(dest), sop_instance_uid=uid, status=status)

                outcome = send_files(dest, todo, calling_aet=self.cfg.aet, timeout_s=self.cfg.network_timeout_s,
                                     ssl_context=self._ssl_client, on_result=record)
                if outcome.error:
                    errors.append(outcome.error)
            if errors:
                backoff = self.cfg.retry_backoff_s
                wait = backoff[min(job.retries, len(backoff) - 1)]
                self.queue.update(job_id, retries=job.retries + 1, next_try=time.time() + wait)
                log_event("send_retry", logging.WARNING, job=job_id, study_uid=job.study_uid,
                          retry_in_s=wait, retries=job.retries + 1, error="; ".join(errors))
                return
            final = "done" if job.outcome in ("ok", "ignored") else "failed"
            self.queue.set_state(job_id, final)
            refused = list(self.queue.refusals(job_id))
            log_event("state", job=job_id, study_uid=job.study_uid, state=final, sending_s=round(time.monotonic() - t0, 3),
                      sent=len(files) * len(self.cfg.destinations) - len(refused), refused=len(refused),
                      total_s=round(time.time() - job.created, 3), error=job.error)
        except Exception:  # noqa: BLE001
            logging.getLogger("r2mri.node").exception("send error", extra={"event": "send_error",
                                                                             "fields": {"job": job_id}})
            self.queue.update(job_id, next_try=time.time() + self.cfg.retry_backoff_s[-1])
        finally:
            self._sending.discard(job_id)
