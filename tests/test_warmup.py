"""`r2mri warmup` fills a given numba cache, and a run compiles only the kernels it uses.

Each scenario runs in fresh subprocesses sharing one empty ``NUMBA_CACHE_DIR``. The
cache test runs at numba's default optimisation level: at ``NUMBA_OPT=0`` numba
refuses to cache the parallel kernels ("uses dynamic globals"), so a lower level
would not test the real cache. The per-model test caches nothing it checks and
uses level 0 (faster compiles).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Fits with the given model on a tiny volume and reports, per r2mri kernel, the
# specialisations compiled (cache misses) and loaded (cache hits) in this process.
_FIT_AND_REPORT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import r2mri
    from r2mri import _numba_setup
    te = np.array([6.0, 9.0, 12.0, 15.0, 18.0]) * 1e-3
    y = 1000.0 * np.exp(-np.outer([40.0, 200.0], te)) + 3.0
    res = r2mri.fit(y, te, model=sys.argv[1], noise_sigma=3.0, coils=1)
    out = {"r2": res.r2_per_s.tolist(), "kernels": {}}
    for d in _numba_setup.kernels():
        if d.signatures:
            out["kernels"][d.py_func.__name__] = {
                "compiled": sum(d.stats.cache_misses.values()),
                "loaded": sum(d.stats.cache_hits.values())}
    print(json.dumps(out))
    """
)


def _env(cache: Path, opt0: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(REPO))
    if opt0:
        env["NUMBA_OPT"] = "0"
    return env


def _fit_report(cache: Path, model: str, opt0: bool = False) -> dict:
    proc = subprocess.run([sys.executable, "-c", _FIT_AND_REPORT, model], env=_env(cache, opt0),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_monoexp_run_compiles_only_the_per_voxel_solver(tmp_path):
    # A monoexp fit in an empty cache compiles the per-voxel solver's kernels, and not
    # the ncchi lane solver (nor its helpers); the rates are exact on these
    # noise-free curves with a known offset floor well below the k_sigma threshold.
    out = _fit_report(tmp_path / "cache", "monoexp", opt0=True)
    kernels = out["kernels"]
    assert kernels["_fit_chunk_voxel"]["compiled"] == 1
    assert "_ncchi_block" not in kernels and "_ncchi_pass" not in kernels, kernels
    assert all(k["loaded"] == 0 for k in kernels.values()), kernels


def test_warmup_fills_the_cache_and_later_runs_compile_nothing(tmp_path):
    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-m", "r2mri", "warmup"], env=_env(cache),
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert "0 already cached" in summary and f"cache: {cache}" in summary, proc.stdout
    lines = {ln.split(":")[0].strip().rsplit(".", 1)[-1]: ln for ln in proc.stdout.splitlines()}
    for name in ("_ncchi_block", "_fit_chunk_voxel", "_voxel_sums", "_grow_kernel",
                 "_resampled_ratios", "_median3x3_inplane"):
        assert "compiled)" in lines.get(name, ""), (name, proc.stdout)
    written = sorted(p.name for p in cache.rglob("*.nbi"))
    assert written, "warmup wrote no cache index"
    # a second process finds every kernel it needs in the cache: no compilation, and no
    # cache file added or rewritten
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    for model in ("ncchi", "monoexp", "biexp"):
        out = _fit_report(cache, model)
        assert out["kernels"], out
        assert all(k["compiled"] == 0 for k in out["kernels"].values()), (model, out)
        assert any(k["loaded"] > 0 for k in out["kernels"].values()), (model, out)
    after = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert after == before
    # and the warm-up itself, repeated, compiles nothing
    again = subprocess.run([sys.executable, "-m", "r2mri", "warmup", "-q"], env=_env(cache),
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.startswith("r2mri warmup: 0 kernel signature(s) compiled"), again.stdout
