"""An upgrade over an old numba cache: the split kernels never load the old file's entries.

    python -m benchmarks.kernsplit_upgrade OLD_TREE NEW_TREE [OUT.json]

A user's machine after ``pip install -U``: one folder ``WORK/site`` holds the package
and one ``NUMBA_CACHE_DIR`` is kept. (1) ``OLD_TREE``'s ``r2mri`` is put there and an
``ncchi`` and a ``monoexp`` fit fill the cache; (2) the package is replaced by
``NEW_TREE``'s (the old cache files stay) and the same fits run again; (3) a third run
on the now warm cache. Each run reports, per kernel, the file that defines it and the
signatures compiled (cache misses) and loaded (cache hits), and the hash of the maps.
Expected (branch kernsplit): run 2 compiles every kernel of the split files and loads
none, with maps identical to run 1; run 3 loads everything and compiles nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import hashlib, json
import numpy as np
import r2mri
from r2mri import _numba_setup
te = np.array([0.006, 0.009, 0.012, 0.015, 0.018])
rng = np.random.default_rng(5)
r2 = rng.uniform(20.0, 300.0, (6, 6, 1))
y = 1000.0 * np.exp(-r2[..., None] * te) + rng.normal(0.0, 10.0, (6, 6, 1, 5))
y = np.abs(y).astype(np.float32)
h = hashlib.sha256()
for model in ("ncchi", "monoexp"):
    res = r2mri.fit(y, te, model=model, noise_sigma=10.0, coils=1, threads=1)
    h.update(np.ascontiguousarray(res.r2_per_s).tobytes())
    h.update(np.ascontiguousarray(res.status).tobytes())
kern = {}
for d in _numba_setup.kernels():
    if d.signatures:
        f = d.py_func.__code__.co_filename.split("r2mri/")[-1]
        kern[f + ":" + d.py_func.__name__] = [sum(d.stats.cache_misses.values()),
                                              sum(d.stats.cache_hits.values())]
print(json.dumps({"maps_sha256": h.hexdigest(), "kernels": kern}))
"""


def _run(site: Path, cache: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _CHILD], cwd=site, env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(rec: dict, files: tuple[str, ...]) -> dict:
    sel = {k: v for k, v in rec["kernels"].items() if k.startswith(files)}
    return {"kernels": len(sel), "compiled": sum(v[0] for v in sel.values()),
            "loaded": sum(v[1] for v in sel.values())}


def main(argv: list[str]) -> int:
    old, new = Path(argv[0]), Path(argv[1])
    work = Path(tempfile.mkdtemp(prefix="r2mri-kernsplit-upgrade-"))
    site, cache = work / "site", work / "numba-cache"
    site.mkdir()
    fit_files = ("fitting/", "noise.py")
    try:
        shutil.copytree(old / "r2mri", site / "r2mri", ignore=shutil.ignore_patterns("__pycache__"))
        first = _run(site, cache)
        shutil.rmtree(site / "r2mri")  # the upgrade: package replaced, cache folder kept
        shutil.copytree(new / "r2mri", site / "r2mri", ignore=shutil.ignore_patterns("__pycache__"))
        second = _run(site, cache)
        third = _run(site, cache)
        res: dict = {"runs": []}
        for label, rec in (("old tree, empty cache", first), ("new tree, old cache", second),
                           ("new tree, warm cache", third)):
            row = {"run": label, "maps_sha256": rec["maps_sha256"],
                   "fit_kernels": _summary(rec, fit_files), "per_kernel": rec["kernels"]}
            res["runs"].append(row)
            print(label, row["maps_sha256"][:16], json.dumps(row["fit_kernels"]), flush=True)
        res["old_kernels_py_index_files_left"] = sorted(
            p.name for p in cache.rglob("_kernels.*.nbi"))
        res["maps_identical"] = first["maps_sha256"] == second["maps_sha256"] == third["maps_sha256"]
        print("maps identical across the upgrade:", res["maps_identical"])
        if len(argv) > 2:
            Path(argv[2]).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
