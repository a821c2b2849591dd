"""First run after an install: cold (empty numba cache) and warm `r2mri demo` / `analyze`.

Compares installed r2mri versions, e.g. before and after a change, each in its own
virtual environment (``python -m venv --system-site-packages V && V/bin/pip install
--no-deps SRC``: a non-editable install, as users get). Runs alternate between the
environments (the order flips every round) so that a changing machine load falls on
both; each run records wall time, CPU time (user + sys of the child, less sensitive to
load than wall time) and the 1-minute load average before and after.

Cold = ``NUMBA_CACHE_DIR`` pointed at an empty folder (the state of a fresh container or
cluster node); warm = the same folder again after the cold run.

    python -m benchmarks.first_run --venv before=/tmp/vb --venv after=/tmp/va \\
        --dicom PH/dicom --rounds 2 --out first_run.jsonl

``PH`` from ``r2mri phantom ferriscan-1.5t-lic7 -o PH --format dicom``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def _one(venv: str, cmd: str, dicom: str, cache: Path, work: Path) -> dict:
    argv = [str(Path(venv) / "bin" / "r2mri"), cmd]
    if cmd == "analyze":
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        argv += [dicom, "-o", str(out)]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    load0 = os.getloadavg()[0]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rec = {"wall_s": round(wall, 2),
           "cpu_s": round(ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime, 2),
           "load1_start": round(load0, 2), "load1_end": round(os.getloadavg()[0], 2),
           "rc": proc.returncode}
    if proc.returncode:
        rec["stderr"] = proc.stderr[-500:]
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--dicom", required=True, help="DICOM folder for `r2mri analyze`")
    ap.add_argument("--commands", default="demo,analyze")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="first_run.jsonl", help="one JSON line per run (appended)")
    args = ap.parse_args(argv)
    venvs = dict(v.split("=", 1) for v in args.venv)
    labels = list(venvs)
    with open(args.out, "a") as log:
        for rnd in range(args.rounds):
            for cmd in args.commands.split(","):
                for label in labels if rnd % 2 == 0 else labels[::-1]:
                    work = Path(tempfile.mkdtemp(prefix="r2mri-first-run-"))
                    try:
                        for state in ("cold", "warm"):
                            rec = {"label": label, "command": cmd, "cache": state, "round": rnd,
                                   "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   **_one(venvs[label], cmd, args.dicom, work / "numba-cache", work)}
                            print(json.dumps(rec), file=log, flush=True)
                            print(json.dumps(rec), flush=True)
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
