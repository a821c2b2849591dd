"""Cohort throughput: ``r2mri batch --jobs 2``, a Dask LocalCluster, and a shell loop of ``r2mri analyze``.

Run: ``python -m benchmarks.batch_cohort [--exams 20] [--out DIR]``. It writes N phantom
exams (FerriScan 1.5 T protocol, five single-echo DICOM series each, LIC 2..20 mg/g,
one study per exam) and times, one after the other in this one run:

- ``shell_loop``: ``for d in exams/*; do r2mri analyze $d -o out/$d; done`` (one process
  per exam, as a user scripts it today);
- ``batch_jobs2``: ``r2mri batch exams -o out --jobs 2``;
- ``dask_local2``: ``r2mri batch exams -o out --dask-local 2``.

Each is a fresh command; wall time covers the whole command (process start, imports,
workers, every output). Memory: the command's process tree is sampled every 0.2 s
(psutil) and each process's peak resident set is kept; "per worker" is the median over
the worker processes (pool workers, Dask workers) and the largest process is given too.
The machine's load average (``os.getloadavg``) is recorded before and after: this is a
shared 2-core VM, so the ratios measured in one run are the figures to quote.
Results: ``benchmarks/results/batch.json`` (or ``--out``/batch.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _r2mri() -> list[str]:
    exe = shutil.which("r2mri", path=os.path.dirname(sys.executable)) or shutil.which("r2mri")
    return [exe] if exe else [sys.executable, "-m", "r2mri"]


def write_exams(root: Path, n: int, matrix: int, slices: int) -> list[Path]:
    """N DICOM exams of distinct studies (patient and study UIDs differ per exam)."""
    import pydicom
    from pydicom.uid import generate_uid

    from r2mri import phantom

    paths = []
    for i in range(n):
        lic = 2.0 + 18.0 * i / max(1, n - 1)
        ph = phantom.generate(lic=lic, seed=i, matrix=(matrix, matrix), pixel_mm=384.0 / matrix, n_slices=slices)
        tmp = root / f"_tmp{i}"
        phantom.write(ph, tmp, format="dicom")
        dest = root / "exams" / f"exam{i:02d}"
        study = generate_uid(entropy_srcs=["bench", str(i)])
        for f in sorted((tmp / "dicom").rglob("*.dcm")):
            ds = pydicom.dcmread(f)
            ds.PatientID = f"BENCH{i:02d}"
            ds.StudyInstanceUID = study
            ds.SeriesInstanceUID = generate_uid(entropy_srcs=["bench", str(i), str(ds.SeriesNumber)])
            ds.SOPInstanceUID = generate_uid(
                entropy_srcs=["bench", str(i), str(ds.SeriesNumber), str(ds.InstanceNumber)])
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out = dest / f.relative_to(tmp / "dicom")
            out.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(out)
        shutil.rmtree(tmp)
        paths.append(dest)
    return paths


class _TreeSampler:
    """Peak RSS of every process in a command's tree, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak: dict[int, dict] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    cmd = " ".join(p.cmdline())[:200]
                except psutil.Error:
                    continue
                cur = self.peak.setdefault(p.pid, {"rss": 0, "cmd": cmd})
                cur["rss"] = max(cur["rss"], rss)
                cur["cmd"] = cmd or cur["cmd"]
            self.stop.wait(0.2)

    def finish(self) -> list[dict]:
        self.stop.set()
        self.thread.join()
        return list(self.peak.values())


def _timed(cmd: list[str] | str, shell: bool = False) -> tuple[float, list[dict], int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, shell=shell, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = _TreeSampler(proc.pid)
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    procs = sampler.finish()
    if proc.returncode != 0:
        print(err.decode(errors="replace")[-2000:], file=sys.stderr)
    return wall, procs, proc.returncode


def _workers(procs: list[dict], marker: str) -> list[int]:
    return [p["rss"] for p in procs if marker in p["cmd"]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exams", type=int, default=20)
    ap.add_argument("--matrix", type=int, default=128, help="in-plane matrix (default 128)")
    ap.add_argument("--slices", type=int, default=6)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="r2mri-bench-batch-"))
    try:
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        exams = write_exams(work, args.exams, args.matrix, args.slices)
        t_write = time.perf_counter() - t0
        r2 = _r2mri()
        # bytecode as `pip install` leaves it (a sandbox with PYTHONDONTWRITEBYTECODE=1 would
        # otherwise compile r2mri from source in every process; see the end-to-end notes)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "r2mri")], check=False)
        # warm numba's cache once (the first run after an install compiles: not measured here)
        subprocess.run(r2 + ["analyze", str(exams[0]), "-o", str(work / "warm")], check=True,
                       stdout=subprocess.DEVNULL)
        results = {}
        loop = " ; ".join(f"{' '.join(r2)} analyze {e} -o {work / 'loop' / e.name}" for e in exams)
        wall, procs, code = _timed(loop, shell=True)
        results["shell_loop"] = {"seconds": wall, "exit": code,
                                 "peak_rss_largest_mb": max(p["rss"] for p in procs) / 2**20}
        wall, procs, code = _timed(r2 + ["batch", str(work / "exams"), "-o", str(work / "pool"), "--jobs", "2"])
        w = _workers(procs, "spawn_main")
        results["batch_jobs2"] = {"seconds": wall, "exit": code, "n_workers": len(w),
                                  "peak_rss_per_worker_mb": statistics.median(w) / 2**20 if w else None,
                                  "peak_rss_largest_mb": max(p["rss"] for p in procs) / 2**20}
        wall, procs, code = _timed(r2 + ["batch", str(work / "exams"), "-o", str(work / "dask"), "--dask-local", "2"])
        w = _workers(procs, "spawn_main")  # dask's nannies start their workers with spawn
        results["dask_local2"] = {"seconds": wall, "exit": code, "n_worker_like_processes": len(w),
                                  "peak_rss_per_worker_mb": statistics.median(w) / 2**20 if w else None,
                                  "peak_rss_largest_mb": max(p["rss"] for p in procs) / 2**20}
        for r in results.values():
            r["exams_per_minute"] = args.exams / r["seconds"] * 60.0
        base = results["shell_loop"]["exams_per_minute"]
        for r in results.values():
            r["ratio_to_shell_loop"] = r["exams_per_minute"] / base
        doc = {
            "what": "exams per minute, 20 phantom DICOM exams, one run of each executor (see the module docstring)",
            "exams": args.exams, "matrix": [args.matrix, args.matrix], "slices": args.slices, "echoes": 5,
            "nproc": os.cpu_count(), "python": platform.python_version(),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "phantom_write_seconds": t_write,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip(),
            "results": results,
        }
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "batch.json").write_text(json.dumps(doc, indent=2) + "\n")
        for name, r in results.items():
            print(f"{name:12s} {r['seconds']:7.1f} s  {r['exams_per_minute']:6.1f} exams/min  "
                  f"x{r['ratio_to_shell_loop']:.2f}  exit {r['exit']}  "
                  f"worker RSS {r.get('peak_rss_per_worker_mb') or float('nan'):.0f} MB")
        print(f"load average before {load_before}, after {doc['loadavg_after']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
