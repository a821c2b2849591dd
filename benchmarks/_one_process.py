"""``r2mri analyze`` in one process against the helper-process design, alternated.

``python -m benchmarks._one_process [--reps N] [--ref REV]``

Until issue 12 item 5, ``r2mri analyze`` forked a loader and a writer process (and the
writer forked once more) to put the imports on the second core. The issue keeps them
only if they save at least 1 s on the median of 7 runs. This script measures that on the
FerriScan DICOM phantom (``r2mri.phantom.generate()``: 256 x 256 x 11, five single-echo
series), warm numba cache and compiled bytecode, each run a fresh process:

- ``helpers``: the tree at ``--ref`` (default 443c2bb, the last commit with the helpers),
  extracted with ``git archive`` into a temporary folder;
- ``one process``: this tree (``analyze`` then ``write_outputs`` in the process);
- ``one process, no gc.freeze``: this tree with the command's ``gc.freeze()`` left out;
- ``one process, no os._exit``: this tree ending through the interpreter's normal exit.

The variants run in rotating order within each round, so that every variant sees the
same minutes of this shared machine; the load average is printed per round. The
result is printed as JSON (medians, best, every wall time and the CPU time of each
run's whole process tree, loads). POSIX only (``resource``).
"""

from __future__ import annotations

import argparse
import compileall
import io
import json
import os
import shutil
import statistics
import subprocess
import resource
import tarfile
import tempfile
import time
from pathlib import Path

from ._common import PY, REPO

_DRIVER = r"""
import sys
variant, dicom, out = sys.argv[1:4]
sys.argv = ["r2mri", "analyze", dicom, "-o", out]
if variant == "one process, no gc.freeze":
    from r2mri.commands import analyze
    analyze._keep_collector_off_old_objects = lambda: None
if variant == "one process, no os._exit":
    from r2mri.cli import main
    sys.exit(main())
from r2mri.cli import entry_point
entry_point()
"""

VARIANTS = ("helpers", "one process", "one process, no gc.freeze", "one process, no os._exit")


def _extract(rev: str, dest: Path) -> Path:
    """The package, calibrations and phantom specs of ``rev``, as files under ``dest``."""
    blob = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "r2mri",
                           "calibration", "phantoms"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest)
    return dest


def _run(tree: Path, variant: str, dicom: Path, out: Path) -> tuple[float, float] | None:
    """(wall s, CPU s of the whole process tree: user + system of the reaped children)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([PY, "-c", _DRIVER, variant, str(dicom), str(out)], cwd=str(tree), env=env,
                       capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(out, ignore_errors=True)
    if p.returncode != 0:
        print(f"{variant}: exit {p.returncode}: {p.stderr.strip()[-500:]}", flush=True)
        return None
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--ref", default="443c2bb")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args(argv)
    import r2mri.phantom as ph

    work = Path(tempfile.mkdtemp(prefix="r2mri-one-process-"))
    try:
        trees = {"helpers": _extract(args.ref, work / "ref")}
        dicom = work / "dicom"
        ph.write(ph.generate(seed=0), dicom, format="dicom")
        for tree in {trees.get(v, REPO) for v in args.variants}:
            compileall.compile_dir(str(tree / "r2mri"), quiet=1)
        for v in args.variants:  # fills each tree's numba cache and the page cache
            _run(trees.get(v, REPO), v, dicom, work / "warm")
        walls: dict[str, list[float]] = {v: [] for v in args.variants}
        cpus: dict[str, list[float]] = {v: [] for v in args.variants}
        loads = []
        start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        for i in range(args.reps):
            k = i % len(args.variants)
            for v in args.variants[k:] + args.variants[:k]:
                got = _run(trees.get(v, REPO), v, dicom, work / "out")
                if got is not None:
                    walls[v].append(got[0])
                    cpus[v].append(got[1])
            loads.append(os.getloadavg())
            print(i, {v: round(ws[-1], 2) for v, ws in walls.items() if ws},
                  "load %.2f %.2f %.2f" % loads[-1], flush=True)
        res = {"start": start, "end": time.strftime("%H:%M UTC", time.gmtime()), "ref": args.ref,
               "summary": {v: {"median_s": statistics.median(ws), "best_s": min(ws), "n": len(ws),
                               "median_cpu_s": statistics.median(cpus[v])}
                           for v, ws in walls.items() if ws},
               "walls_s": walls, "cpu_s": cpus, "loadavg_per_round": loads}
        print(json.dumps(res, indent=1))
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
