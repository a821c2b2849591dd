"""The loader on many mutated DICOM and NIfTI inputs: it loads or raises InputError, nothing else.

Usage (from the repository root)::

    python -m benchmarks.fuzz --n 1000                       # measure the rate
    nohup python -m benchmarks.fuzz --n 100000 --log /tmp/fuzz.log &   # the full run
    python -m benchmarks.fuzz --case 4711 --keep /tmp/case   # replay one case in this process
    python -m benchmarks.fuzz --recheck                      # replay the recorded failures after fixes

Each case (see :mod:`benchmarks._fuzz_cases`) is written into a scratch folder and
passed to :func:`r2mri.load` in one of ``--workers`` worker processes. A worker
limits its address space with ``RLIMIT_AS`` (``--mem-mb``) and each load with a
wall-clock timer (``--timeout-s``, raised as a ``BaseException`` so no ``except
Exception`` in the loader can swallow it); the parent kills a worker that does not
answer within the timeout plus a grace period (a hang in C code) and starts a new one.
Outcomes: ``loaded`` (finite data, >= 2 echoes), ``input_error`` (one-line message),
``bad_load`` (loaded but non-finite or < 2 echoes), ``subset`` (loaded with fewer
echoes or slices than the valid input and no error finding: a silent subset), ``multiline`` (an InputError of
several lines), ``phi_leak`` (an InputError quoting the seeds' patient name, ID or birth
date, :data:`benchmarks._fuzz_cases.PATIENT`), ``other`` (any other exception), ``timeout``, ``killed`` (no answer
in time) and ``crash`` (the worker died). The counts, the InputError message classes
(paths, numbers and quoted values blanked), the slowest cases and the peak resident
memory go to ``results/fuzz.json`` (rewritten every 30 s, ``complete`` false until
the end) and, for the default output, to the fuzz section of ``README.md``.
"""

from __future__ import annotations

import argparse
import collections
import logging
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from . import _fuzz_cases as fc
from ._common import machine_info, write_json

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"
#: A worker that has not answered this long after its timer should have fired is hung in C code.
KILL_GRACE_S = 20.0


class _Timeout(BaseException):
    """Raised by the per-case timer; a BaseException so the loader's handlers let it through."""


def _alarm(signum, frame):
    raise _Timeout()


def message_class(message: str, folder: str = "") -> str:
    """The message with the case folder, paths, quoted values, numbers and UIDs blanked."""
    s = message.replace(folder, "") if folder else message
    s = re.sub(r"(?:/[\w.\-]+)+", "<path>", s)
    s = re.sub(r"'[^']*'|\"[^\"]*\"", "<v>", s)
    s = re.sub(r"\(frame \d+\)", "(frame <n>)", s)
    s = re.sub(r"\d+(?:\.\d+){2,}", "<uid>", s)
    s = re.sub(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", "<n>", s)
    s = re.sub(r"\[[^\]]*\]", "[..]", s)
    s = re.sub(r"\((?:[^()]|\([^()]*\))*\)", "(..)", s)  # parenthesised details (exception text)
    return re.sub(r"\s+", " ", s).strip()[:160]


def _silent_subset(img) -> bool:
    """Fewer echoes or slices than the valid input, and no error finding says so."""
    import numpy as np

    from r2mri.io.protocol import check_protocol

    if img.n_echoes >= fc.VALID_SHAPE[3] and img.data[..., 0].size >= np.prod(fc.VALID_SHAPE[:3]):
        return False
    return not any(f.severity == "error" for f in check_protocol(img))


def run_case(seeds, seed: int, index: int, folder: Path, timeout_s: float | None) -> dict[str, Any]:
    """Write case ``index`` into ``folder``, load it, classify the outcome."""
    import numpy as np

    import r2mri

    fc.clear(folder)
    try:
        paths, desc = fc.write_case(seeds, seed, index, folder)
    except Exception as exc:  # noqa: BLE001 - a bug of the case generator, not of the loader
        kind, ops, _ = fc.case_plan(seed, index)
        return {"index": index, "kind": kind, "ops": ops, "outcome": "harness_error",
                "message": f"{type(exc).__name__}: {exc}"[:300], "where": traceback.format_exc(limit=-3)}
    arg = paths[0] if len(paths) == 1 else paths
    res: dict[str, Any] = dict(desc)
    t0 = time.perf_counter()
    c0 = time.process_time()
    if timeout_s:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        img = r2mri.load(arg)
        ok = img.data.ndim == 4 and img.n_echoes >= 2 and bool(np.all(np.isfinite(img.data)))
        res["outcome"] = "loaded" if ok else "bad_load"
        if not ok:
            res["message"] = f"shape {img.data.shape}, finite {bool(np.all(np.isfinite(img.data)))}"
        elif _silent_subset(img):
            res["outcome"] = "subset"
            res["message"] = f"shape {img.data.shape} of {fc.VALID_SHAPE} with no error finding"
    except r2mri.InputError as exc:
        msg = str(exc)
        res["outcome"] = "input_error" if msg and "\n" not in msg else "multiline"
        res["message"] = msg.replace(str(folder), "<case>")
        res["class"] = message_class(msg, str(folder))
        if any(v.lower() in msg.lower() for v in fc.PHI_STRINGS):
            res["outcome"] = "phi_leak"
    except _Timeout:
        res["outcome"] = "timeout"
        res["where"] = traceback.format_exc(limit=-4)
    except Exception as exc:  # noqa: BLE001 - the point of the fuzz run is to catch these
        res["outcome"] = "other"
        res["message"] = f"{type(exc).__name__}: {exc}".replace(str(folder), "<case>")[:500]
        res["where"] = traceback.format_exc(limit=-4)
    finally:
        if timeout_s:
            signal.setitimer(signal.ITIMER_REAL, 0)
    res["wall_s"] = time.perf_counter() - t0
    res["cpu_s"] = time.process_time() - c0
    res["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return res


def _worker(conn, seed: int, mem_mb: int, timeout_s: float, workdir: str) -> None:
    limit = mem_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")  # pydicom's value warnings on mutated headers would flood the log
    logging.getLogger("nibabel").setLevel(logging.CRITICAL)  # "sizeof_hdr should be 348" and the like
    seeds = fc.make_seeds()
    folder = Path(tempfile.mkdtemp(prefix="case-", dir=workdir))
    conn.send({"ready": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    while True:
        index = conn.recv()
        if index is None:
            break
        conn.send(run_case(seeds, seed, index, folder, timeout_s))
    shutil.rmtree(folder, ignore_errors=True)


class _Tally:
    """Counts and examples of every outcome."""

    def __init__(self, args, n_cases: int):
        self.args = args
        self.n_cases = n_cases
        self.outcomes: collections.Counter = collections.Counter()
        self.by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.classes: collections.Counter = collections.Counter()
        self.class_example: dict[str, dict] = {}
        self.failures: list[dict] = []
        self.walls: list[float] = []
        self.slowest: list[dict] = []
        self.peak_rss_mb = 0.0
        self.peak_case = None
        self.baseline_rss_mb = 0.0
        self.t0 = time.time()
        self.done = 0

    def add(self, res: dict) -> None:
        self.done += 1
        out = res["outcome"]
        self.outcomes[out] += 1
        self.by_kind[res.get("kind", "?")][out] += 1
        if out == "input_error":
            c = res["class"]
            self.classes[c] += 1
            self.class_example.setdefault(c, {"index": res["index"], "message": res["message"]})
        elif out != "loaded":
            if len(self.failures) < 200:
                self.failures.append({k: res.get(k) for k in ("index", "kind", "ops", "outcome", "message", "where",
                                                                "wall_s")})
        if "wall_s" in res:
            self.walls.append(res["wall_s"])
            self.slowest.append({"index": res["index"], "kind": res["kind"], "ops": res["ops"],
                                 "wall_s": res["wall_s"], "cpu_s": res.get("cpu_s")})
            self.slowest = sorted(self.slowest, key=lambda r: -r["wall_s"])[:10]
        rss = res.get("maxrss_mb") or 0.0
        if rss > self.peak_rss_mb:
            self.peak_rss_mb, self.peak_case = rss, res["index"]

    def summary(self, complete: bool) -> dict:
        import numpy as np

        elapsed = time.time() - self.t0
        w = np.array(self.walls) if self.walls else np.zeros(1)
        return {
            "complete": complete,
            "cases_requested": self.n_cases,
            "cases_run": self.done,
            "first_case": self.args.start,
            "seed": self.args.seed,
            "workers": self.args.workers,
            "timeout_s": self.args.timeout_s,
            "rlimit_as_mb": self.args.mem_mb,
            "elapsed_s": elapsed,
            "cases_per_s": self.done / elapsed if elapsed > 0 else None,
            "outcomes": dict(self.outcomes),
            "outcomes_by_kind": {k: dict(v) for k, v in sorted(self.by_kind.items())},
            "input_error_classes": [{"class": c, "count": n, "example": self.class_example[c]}
                                    for c, n in self.classes.most_common()],
            "failures": self.failures,
            "load_wall_s": {"median": float(np.median(w)), "p99": float(np.percentile(w, 99)),
                            "max": float(w.max())},
            "slowest": self.slowest,
            "peak_rss_mb": self.peak_rss_mb,
            "peak_rss_case": self.peak_case,
            "worker_rss_after_start_mb": self.baseline_rss_mb,
        }

    def line(self) -> str:
        el = time.time() - self.t0
        rate = self.done / el if el > 0 else 0.0
        eta = (self.n_cases - self.done) / rate / 60 if rate > 0 else float("nan")
        o = self.outcomes
        return (f"[fuzz] {self.done:,}/{self.n_cases:,} cases in {el / 60:.1f} min, {rate:.1f}/s, ETA {eta:.0f} min; "
                f"loaded {o['loaded']:,}, InputError {o['input_error']:,}, other {o['other']}, "
                f"bad_load {o['bad_load']}, multiline {o['multiline']}, phi_leak {o['phi_leak']}, timeout {o['timeout']}, killed {o['killed']}, "
                f"crash {o['crash']}, harness_error {o['harness_error']}; peak RSS {self.peak_rss_mb:.0f} MB")


def _start_worker(ctx, args, workdir: str):
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_worker, args=(child, args.seed, args.mem_mb, args.timeout_s, workdir), daemon=True)
    proc.start()
    child.close()
    hello = parent.recv()
    return {"proc": proc, "conn": parent, "case": None, "sent": 0.0, "rss": hello["ready"]}


def run(args, log) -> dict:
    """Run cases ``start .. start + n`` on ``args.workers`` processes; return the summary."""
    ctx = mp.get_context("spawn")
    tally = _Tally(args, args.n)
    end = args.start + args.n
    next_index = args.start
    deadline = args.deadline_epoch
    workdir = tempfile.mkdtemp(prefix="r2mri-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    workers = [_start_worker(ctx, args, workdir) for _ in range(args.workers)]
    tally.baseline_rss_mb = max(w["rss"] for w in workers)
    last_report = time.time()
    try:
        while True:
            for w in workers:
                if w["case"] is None and next_index < end and (deadline is None or time.time() < deadline):
                    w["conn"].send(next_index)
                    w["case"], w["sent"] = next_index, time.time()
                    next_index += 1
            busy = [w for w in workers if w["case"] is not None]
            if not busy:
                break
            ready = wait([w["conn"] for w in busy], timeout=1.0)
            now = time.time()
            for w in busy:
                dead = None
                if w["conn"] in ready:
                    try:
                        tally.add(w["conn"].recv())
                        w["case"] = None
                        continue
                    except (EOFError, OSError):
                        w["proc"].join(5)
                        dead = {"outcome": "crash", "message": f"worker exit code {w['proc'].exitcode}"}
                elif now - w["sent"] > args.timeout_s + KILL_GRACE_S:
                    dead = {"outcome": "killed", "message": f"no answer after {now - w['sent']:.0f} s"}
                if dead:
                    kind, ops, _ = fc.case_plan(args.seed, w["case"])
                    tally.add({"index": w["case"], "kind": kind, "ops": ops, **dead})
                    log(f"[fuzz] case {w['case']}: {dead['outcome']} ({dead['message']})")
                    w["proc"].kill()
                    w["proc"].join()
                    w.update(_start_worker(ctx, args, workdir))
            if now - last_report > args.report_every_s:
                last_report = now
                log(tally.line())
                if args.out:
                    _save(args, tally.summary(complete=False))
    finally:
        for w in workers:
            try:
                w["conn"].send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in workers:
            w["proc"].join(10)
            if w["proc"].is_alive():
                w["proc"].kill()
                w["proc"].join()
        shutil.rmtree(workdir, ignore_errors=True)
    log(tally.line())
    summary = tally.summary(complete=tally.done == args.n)
    if tally.done < args.n:
        summary["stopped_by_deadline"] = True
    return summary


def _save(args, summary: dict) -> None:
    write_json(args.out, {"section": "fuzz", "machine": args.machine, "result": summary})


def tables(res: dict) -> str:
    """Markdown of one fuzz result (the README section)."""
    o = res["outcomes"]
    total = res["cases_run"]
    rows = ["| outcome | cases | share |", "|---|---|---|"]
    for key in ("loaded", "input_error", "other", "bad_load", "multiline", "phi_leak", "timeout", "killed",
                "crash", "harness_error"):
        n = o.get(key, 0)
        rows.append(f"| {key} | {n:,} | {100 * n / total if total else 0:.2f} % |")
    kinds = ["| input | cases | loaded | InputError | other |", "|---|---|---|---|---|"]
    for k, v in res["outcomes_by_kind"].items():
        n = sum(v.values())
        bad = n - v.get("loaded", 0) - v.get("input_error", 0)
        kinds.append(f"| {k} | {n:,} | {v.get('loaded', 0):,} | {v.get('input_error', 0):,} | {bad} |")
    classes = ["| InputError message class (paths, numbers, values blanked) | cases |", "|---|---|"]
    for c in res["input_error_classes"][:25]:
        classes.append(f"| `{c['class'].replace('|', '/')}` | {c['count']:,} |")
    more = len(res["input_error_classes"]) - 25
    status = ("all requested cases ran" if res["complete"] else
              f"**stopped early: {res['cases_run']:,} of {res['cases_requested']:,} cases ran**")
    lw = res["load_wall_s"]
    return "\n".join([
        f"{res['cases_run']:,} cases (seed {res['seed']}, cases {res['first_case']:,}.."
        f"{res['first_case'] + res['cases_run'] - 1:,}; {status}) on {res['workers']} worker processes in "
        f"{res['elapsed_s'] / 60:.1f} min ({res['cases_per_s']:.1f} cases/s); per-case timeout "
        f"{res['timeout_s']:g} s, address-space limit {res['rlimit_as_mb']:,} MB per worker.",
        "", *rows, "",
        f"Load time per case: median {lw['median'] * 1e3:.1f} ms, 99th percentile {lw['p99'] * 1e3:.0f} ms, "
        f"max {lw['max']:.2f} s. Peak resident memory of a worker: {res['peak_rss_mb']:.0f} MB "
        f"({res['worker_rss_after_start_mb']:.0f} MB after start-up).",
        "", *kinds, "", *classes,
        *([f"", f"... and {more} rarer classes (all in `results/fuzz.json`)."] if more > 0 else []),
        *_failure_table(res),
    ])


def _failure_table(res: dict) -> list[str]:
    fails = res.get("failures") or []
    if not fails:
        return []
    recheck = {r["index"]: r for r in (res.get("recheck") or {}).get("cases", [])}
    head = "now (replayed on git " + res["recheck"]["git_commit"] + ")" if recheck else "now"
    lines = ["", f"Cases that did not load or raise a clean InputError ({len(fails)}), and what they give "
                 "after the loader fixes:", "", f"| case | input | mutations | outcome | message | {head} |",
             "|---|---|---|---|---|---|"]
    for f in fails:
        msg = (f.get("message") or "").replace("|", "/")[:110]
        now = recheck.get(f["index"], {}).get("now", "not replayed")
        lines.append(f"| {f['index']} | {f['kind']} | {', '.join(f['ops'])} | {f['outcome']} | {msg} | {now} |")
    return lines


def _update_readme(res: dict, machine: dict) -> None:
    if not README.exists():
        return
    text = README.read_text()
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    when = (f"Measured {machine.get('date_utc')} on git {machine.get('git_commit')}, load average "
            f"{(machine.get('loadavg_at_start') or [float('nan')])[0]:.2f} at the start, {machine.get('cpu_model')}, "
            f"nproc {machine.get('nproc')}.")
    README.write_text(head + BEGIN + "\n<!-- written by `python -m benchmarks.fuzz`; do not edit -->\n" + when
                      + "\n\n" + tables(res) + "\n" + END + tail)


def _recheck(args) -> int:
    """Replay the failures recorded in ``args.out`` on the current code; record what they give now."""
    import datetime as dt
    import json

    payload = json.loads(args.out.read_text())
    res = payload["result"]
    signal.signal(signal.SIGALRM, _alarm)
    warnings.simplefilter("ignore")
    seeds = fc.make_seeds()
    rows = []
    with tempfile.TemporaryDirectory(prefix="r2mri-recheck-") as tmp:
        for f in res["failures"]:
            folder = Path(tmp) / str(f["index"])
            folder.mkdir()
            now = run_case(seeds, res["seed"], f["index"], folder, args.timeout_s)
            rows.append({"index": f["index"], "kind": f["kind"], "ops": f["ops"], "before": f["outcome"],
                         "before_message": f.get("message"), "now": now["outcome"], "now_message": now.get("message")})
    res["recheck"] = {"git_commit": machine_info()["git_commit"],
                      "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "cases": rows}
    write_json(args.out, payload)
    if args.out.resolve() == (RESULTS / "fuzz.json").resolve():
        _update_readme(res, payload["machine"])
    for r in rows:
        print(f"case {r['index']}: {r['before']} -> {r['now']}")
    return 1 if any(r["now"] not in ("loaded", "input_error") for r in rows) else 0


def _replay(args) -> int:
    seeds = fc.make_seeds()
    for index in args.case:
        folder = Path(args.keep or tempfile.mkdtemp(prefix="r2mri-case-")) / str(index)
        folder.mkdir(parents=True, exist_ok=True)
        res = run_case(seeds, args.seed, index, folder, None)
        print(f"case {index}: {res['kind']} {res['ops']} -> {res['outcome']}: {res.get('message', '')}")
        if res.get("where"):
            print(res["where"])
        if not args.keep:
            shutil.rmtree(folder.parent, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="number of cases (default 100,000)")
    ap.add_argument("--start", type=int, default=0, help="first case index")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout-s", type=float, default=10.0, help="wall-clock limit of one load")
    ap.add_argument("--mem-mb", type=int, default=2048, help="RLIMIT_AS of a worker process")
    ap.add_argument("--out", type=Path, default=RESULTS / "fuzz.json",
                    help="result JSON (the README section is rewritten only for the default)")
    ap.add_argument("--log", type=Path, default=None, help="progress log (default: stdout)")
    ap.add_argument("--report-every-s", type=float, default=30.0)
    ap.add_argument("--deadline", default=None,
                    help="UTC time HH:MM after which no new case starts (the result says how many ran)")
    ap.add_argument("--case", type=int, nargs="+", default=None, help="replay these cases in this process")
    ap.add_argument("--keep", type=Path, default=None, help="with --case: write the case files here")
    ap.add_argument("--recheck", action="store_true",
                    help="replay the failures recorded in --out on the current code and record the outcome")
    args = ap.parse_args(argv)
    if args.recheck:
        return _recheck(args)
    if args.case:
        return _replay(args)
    args.deadline_epoch = None
    if args.deadline:
        import datetime as dt

        hh, mm = (int(v) for v in args.deadline.split(":"))
        now = dt.datetime.now(dt.timezone.utc)
        target = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        if target <= now:
            target += dt.timedelta(days=1)
        args.deadline_epoch = target.timestamp()
    logf = open(args.log, "a", buffering=1) if args.log else sys.stdout  # noqa: SIM115

    def log(msg: str) -> None:
        print(msg, file=logf, flush=True)

    args.machine = machine_info()
    log(f"[fuzz] {args.n:,} cases from {args.start} (seed {args.seed}) on {args.workers} workers, "
        f"git {args.machine['git_commit']}")
    summary = run(args, log)
    _save(args, summary)
    if args.out.resolve() == (RESULTS / "fuzz.json").resolve():
        _update_readme(summary, args.machine)
    log(f"[fuzz] wrote {args.out}")
    bad = sum(summary["outcomes"].get(k, 0) for k in ("other", "bad_load", "multiline", "phi_leak", "timeout", "killed",
                                                      "crash"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
