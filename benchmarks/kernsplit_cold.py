"""Cold compile of the fit kernels, two source trees alternated (branch kernsplit).

    python -m benchmarks.kernsplit_cold --tree before=/tmp/main --tree after=/tmp/split \\
        --rounds 3 --out results/kernsplit-cold.jsonl

Each run is a fresh process (``cwd`` = the tree, which holds ``r2mri/``, so that tree is
imported) with ``NUMBA_CACHE_DIR`` pointed at an empty folder, the state of a fresh
install: it compiles the ``ncchi`` solver (``r2mri._first_run`` groups ``fit_starts`` and
``fit``, what ``r2mri analyze`` compiles first) and then the kernel of the other models
(a ``monoexp`` fit of 4 x 4 voxels compiles ``_fit_chunk_voxel``), and reports the CPU
seconds of each step (``time.process_time``: user + sys of the process, less sensitive
to the load of a shared machine than wall time). A second process on the same cache
folder then reports the warm load times. The trees alternate, order flipped each round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import json, time
t0 = time.process_time()
import numpy as np
import r2mri
from r2mri import _first_run
t1 = time.process_time()
_first_run.compile_groups(("fit_starts", "fit"))
t2 = time.process_time()
te = np.array([0.006, 0.009, 0.012, 0.015, 0.018])
y = (1000.0 * np.exp(-100.0 * te) * np.ones((4, 4, 1, 5))).astype(np.float32)
r2mri.fit(y, te, model="monoexp", threads=1)
t3 = time.process_time()
print(json.dumps({"file": r2mri.__file__, "import_cpu_s": round(t1 - t0, 3),
                  "ncchi_cpu_s": round(t2 - t1, 3), "lm_cpu_s": round(t3 - t2, 3)}))
"""


def _one(tree: str, cache: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_NUM_THREADS="1")
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=tree, capture_output=True,
                          text=True, check=True)
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rec["file"].startswith(str(Path(tree).resolve())), rec["file"]
    rec.update(wall_s=round(time.perf_counter() - t0, 2), load1_start=round(load0, 2),
               load1_end=round(os.getloadavg()[0], 2))
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", required=True, help="one JSON line per run (appended)")
    args = ap.parse_args(argv)
    trees = dict(t.split("=", 1) for t in args.tree)
    labels = list(trees)
    with open(args.out, "a", encoding="utf-8") as log:
        for rnd in range(args.rounds):
            for label in labels if rnd % 2 == 0 else labels[::-1]:
                cache = Path(tempfile.mkdtemp(prefix="r2mri-kernsplit-cold-"))
                try:
                    for state in ("cold", "warm"):
                        rec = {"label": label, "round": rnd, "cache": state,
                               "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               **_one(trees[label], cache)}
                        print(json.dumps(rec), file=log, flush=True)
                        print(json.dumps(rec), flush=True)
                finally:
                    shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
