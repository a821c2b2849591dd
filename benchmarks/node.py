"""``r2mri serve`` on this machine: latency, sustained throughput, memory per worker.

    python -m benchmarks.node                      # 10 studies, 2 workers -> results/node.json
    python -m benchmarks.node --matrix 256 --slices 11   # FerriScan-size studies
    python -m benchmarks.node --out /tmp/node.json --studies 4

A node (``python -m r2mri serve``, its own process group, ``--stable-seconds 1``) sends
its results to a storage SCP in this process (pynetdicom, 127.0.0.1) that records when
each result arrives. Phantom studies (FerriScan protocol, 10 DICOM files each) are sent
with pynetdicom:

* **latency**: one study at a time; from the C-STORE answer of its last instance to the
  arrival of its last result, minus the stable wait (``--stable-seconds``); median and
  worst over the studies;
* **throughput**: all studies at once over 4 associations; studies per minute from the
  first instance sent to the last result stored (the stable wait is included once);
* **memory**: peak resident set (VmHWM, /proc) of each worker process and of the node
  after the runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from ._common import REPO, machine_info, write_json

sys.path.insert(0, str(REPO / "tests"))
from _node_helpers import NodeProcess, free_port, send_files, wait_for  # noqa: E402

STABLE_S = 1.0


class _Destination:
    """Storage SCP recording the arrival time of each result per study."""

    def __init__(self) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        self.arrivals: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        ae = AE("BENCH")
        for c in AllStoragePresentationContexts:
            ae.add_supported_context(c.abstract_syntax, c.transfer_syntax)
        self.port = free_port()
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self._store)])

    def _store(self, event) -> int:
        study = str(event.dataset.StudyInstanceUID)
        with self.lock:
            self.arrivals.setdefault(study, []).append(time.monotonic())
        return 0

    def complete(self, study: str, n: int) -> float | None:
        with self.lock:
            times = self.arrivals.get(study, [])
            return max(times) if len(times) >= n else None


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(out: Path, n_studies: int = 10, workers: int = 2, matrix: int = 48, slices: int = 2) -> dict:
    import r2mri.phantom as P  # noqa: F401 - imported before timing

    machine = machine_info()  # load average before the runs
    base = Path(tempfile.mkdtemp(prefix="r2mri-node-bench-"))
    studies = _studies(base, 2 * n_studies + 1, matrix, slices)
    n_results = 5  # PM R2, PM LIC, SEG, SR, SC
    dest = _Destination()
    node = NodeProcess(base / "spool", free_port(), [f"BENCH@127.0.0.1:{dest.port}"], workers=workers,
                       stable_s=STABLE_S)
    try:
        node.start()
        # warm-up: the workers import and load kernels once; not timed
        wait_for(lambda: node.lines_count("listening"), 60, "node")
        files, uid = studies[0]
        send_files(node.port, files)
        wait_for(lambda: dest.complete(uid, n_results), 300, "warm-up study")
        latencies = []
        for files, uid in studies[1:n_studies + 1]:
            send_files(node.port, files)
            t_last = time.monotonic()
            t_done = wait_for(lambda: dest.complete(uid, n_results), 300, "results", interval_s=0.02)
            latencies.append(t_done - t_last - STABLE_S)
        burst = studies[n_studies + 1:]
        t0 = time.monotonic()
        threads = [threading.Thread(target=lambda g: [send_files(node.port, f) for f, _ in g],
                                    args=(burst[k::4],)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_end = max(wait_for(lambda: dest.complete(uid, n_results), 600, "burst results", interval_s=0.05)
                    for _, uid in burst)
        elapsed = t_end - t0
        pids = [int(p) for r in node.records() if r.get("event") == "listening" for p in r.get("worker_pids", [])]
        memory = {"worker_peak_rss_mb": [_vm_hwm_mb(p) for p in pids], "node_peak_rss_mb": _vm_hwm_mb(node.proc.pid)}
    finally:
        node.stop()
        dest.server.shutdown()
    result = {
        "machine": machine,
        "settings": {"studies": n_studies, "workers": workers, "stable_seconds": STABLE_S,
                     "matrix": matrix, "slices": slices, "echoes": 5, "results_per_study": n_results},
        "latency_s": {"median": statistics.median(latencies), "worst": max(latencies), "all": latencies},
        "throughput": {"studies": len(burst), "elapsed_s": elapsed,
                       "studies_per_minute": len(burst) / elapsed * 60.0},
        "memory": memory,
    }
    write_json(out, result)
    return result


def _studies(base: Path, n: int, matrix: int, slices: int) -> list:
    """``n`` FerriScan phantom studies (LIC 7 mg/g, 384 mm field of view) as DICOM."""
    import pydicom

    from r2mri import phantom as P

    out = []
    for i in range(n):
        ph = P.generate(lic=7.0, seed=1000 + i, matrix=(matrix, matrix), pixel_mm=384.0 / matrix, n_slices=slices)
        files = sorted(P.write(ph, base / f"s{i}", format="dicom").rglob("*.dcm"))
        out.append((files, str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.node", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "node.json")
    p.add_argument("--studies", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--matrix", type=int, default=48)
    p.add_argument("--slices", type=int, default=2)
    args = p.parse_args(argv)
    res = run(args.out, args.studies, args.workers, args.matrix, args.slices)
    lat, thr, mem = res["latency_s"], res["throughput"], res["memory"]
    print(f"latency (last instance -> last result, minus {STABLE_S} s stable wait): "
          f"median {lat['median']:.2f} s, worst {lat['worst']:.2f} s over {len(lat['all'])} studies")
    print(f"throughput: {thr['studies_per_minute']:.1f} studies/min ({thr['studies']} studies in {thr['elapsed_s']:.1f} s, "
          f"{res['settings']['workers']} workers)")
    print(f"memory: workers peak RSS {mem['worker_peak_rss_mb']} MB, node {mem['node_peak_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
