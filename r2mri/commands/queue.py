"""``r2mri queue``: list the node's jobs (no patient identity)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "queue",
        help="list the jobs of an r2mri serve spool",
        description="Jobs of the node: id, state, study UID, times, retries, last error (no patient identity).",
    )
    p.add_argument("--spool", default="r2mri-spool", metavar="DIR", help="spool folder (default r2mri-spool)")
    p.add_argument("--config", metavar="TOML", help="take the spool from this node configuration")
    p.add_argument("--json", action="store_true", help="one JSON object per job")
    p.set_defaults(func=run)
    return p


def _time(t: float | None) -> str:
    if not t:
        return "-"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..node.queue import JobQueue

    spool = Path(args.spool)
    if args.config:
        from ..node.config import load_config

        spool = load_config(args.config).spool
    db = spool / "queue.sqlite"
    if not db.is_file():
        raise InputError(f"{spool}: no queue.sqlite (not an r2mri serve spool)")
    q = JobQueue(db, readonly=True)
    try:
        rows = q.jobs()
        for job in rows:
            refused = len(list(q.refusals(job.id)))
            item = {"job": job.id, "state": job.state, "study_uid": job.study_uid, "instances": job.n_instances,
                    "received": _time(job.created), "updated": _time(job.updated), "attempts": job.attempts,
                    "retries": job.retries, "refused": refused, "headline_lic_mg_per_g": job.headline_lic,
                    "error": job.error}
            if args.json:
                print(json.dumps(item))
            else:
                lic = "-" if job.headline_lic is None else f"{job.headline_lic:.2f}"
                print(f"{job.id:>5}  {job.state:<9}  {_time(job.updated)}  lic={lic:<6}  retries={job.retries}  "
                      f"refused={refused}  {job.study_uid}" + (f"  error: {job.error}" if job.error else ""))
    finally:
        q.close()
    return 0
