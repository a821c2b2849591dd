"""End to end: ``r2mri analyze`` on a FerriScan-protocol DICOM phantom.

The phantom (``r2mri.phantom.generate()``, the FerriScan 1.5 T default: 256 x 256
x 11, five single-echo spin-echo series TE 6..18 ms) is written as DICOM once. Then
each measurement is a fresh Python process:

- ``cli``: ``python -m r2mri analyze <dicom> --out <dir>``, wall time of the whole
  process (one process since issue 12 item 5; it used to load the input and write the
  outputs in helper processes, see docs/architecture.md), the peak resident memory of its largest process
  (``ru_maxrss`` of the reaped children) and the peak proportional set size of its
  whole process tree (``/proc/<pid>/smaps_rollup``, sampled every 20 ms, Linux);
- ``stages``: a driver that imports r2mri, calls :func:`r2mri.analyze` (its own
  ``timings_s`` give load / noise / fit / statistics) and
  :func:`r2mri.report.write_outputs` (timed as outputs).

Both run with the warm numba cache (the package's normal cache, warmed by a first
run) and with a cold cache (``NUMBA_CACHE_DIR`` pointed at an empty folder, so
every kernel compiles in that process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import PY, REPO, md_table, python_env, r2mri_available

_STAGES = r"""
import json, sys, time
t0 = time.perf_counter()
import r2mri
from r2mri.report import write_outputs
t_import = time.perf_counter() - t0
res = r2mri.analyze(sys.argv[1])
t1 = time.perf_counter()
write_outputs(res, sys.argv[2], overwrite=True)
t_out = time.perf_counter() - t1
out = {"import": t_import, **{k: float(v) for k, v in res.timings_s.items()},
       "outputs": t_out, "process_total": time.perf_counter() - t0}
try:
    out["headline_lic"] = res.headline_lic_mg_per_g
except Exception as exc:
    out["headline_lic_error"] = repr(exc)
print("STAGES " + json.dumps(out))
"""


#: A fixed single-threaded workload (Python loop, numpy sort, json) timed in a fresh
#: process before and after the runs: this shared VM's speed drifts by tens of percent
#: over an hour, and the probe lets runs of different times be compared.
_PROBE = r"""
import json, time
import numpy as np
t = time.perf_counter()
s = 0
for i in range(3_000_000):
    s += i * i
a = np.random.default_rng(0).random(2_000_000)
for _ in range(20):
    a.sort()
    a = a[::-1].copy()
json.loads(json.dumps({str(i): [i] * 5 for i in range(200_000)}))
print(time.perf_counter() - t)
"""


def _cpu_probe(env: dict[str, str]) -> float | None:
    """Seconds for :data:`_PROBE` in a fresh process (None if it failed)."""
    p = subprocess.run([PY, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=300)
    try:
        return float(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _run_child(cmd: list[str], env: dict[str, str], timeout: float = 600) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    # communicate() reaped the child; RUSAGE_CHILDREN maxrss is the max over children,
    # so each measurement is taken in its own helper process (see _measure).
    # the whole stdout: it is the wrapper's one JSON line (which bounds what it quotes)
    return {"returncode": proc.returncode, "wall_s": wall, "stdout": stdout,
            "stderr": stderr[-2000:]}


_WRAP = r"""
import json, os, subprocess, sys, threading, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
peak = [None]

def tree(pid):
    out = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for c in f.read().split():
                out += tree(int(c))
    except OSError:
        pass
    return out

def sample():  # Linux: the process tree's proportional set size, every 20 ms
    while p.poll() is None:
        total = 0
        for pid in tree(p.pid):
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    total += sum(int(l.split()[1]) for l in f if l.startswith("Pss:"))
            except (OSError, ValueError):
                pass
        if total:
            peak[0] = max(peak[0] or 0, total)
        time.sleep(0.02)

if os.path.exists(f"/proc/{p.pid}/smaps_rollup"):
    threading.Thread(target=sample, daemon=True).start()
out, err = p.communicate()
wall = time.perf_counter() - t0
import resource
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": p.returncode, "wall_s": wall, "peak_rss_mb": ru.ru_maxrss / 1024,
                  "peak_tree_pss_mb": None if peak[0] is None else peak[0] / 1024,
                  "stdout": out[-3000:], "stderr": err[-3000:]}))
"""


def _measure(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd`` under a tiny wrapper process, so ru_maxrss is that command's alone."""
    r = _run_child([PY, "-c", _WRAP] + cmd, env)
    try:
        return json.loads(r["stdout"].strip().splitlines()[-1])
    except Exception:  # noqa: BLE001
        return {"returncode": r["returncode"], "error": r["stderr"][-500:]}


def run(quick: bool) -> dict[str, Any]:
    ok, why = r2mri_available("analyze", "phantom", "load")
    if not ok:
        return {"skipped": f"r2mri.analyze / phantom / load not importable: {why}"}
    import r2mri
    import r2mri.phantom as ph

    work = Path(tempfile.mkdtemp(prefix="r2mri-bench-e2e-"))
    res: dict[str, Any] = {}
    try:
        overrides = {"matrix": (64, 64), "pixel_mm": 6.0, "n_slices": 3} if quick else {}
        t0 = time.perf_counter()
        try:
            phantom = ph.generate(seed=0, **overrides)
            ph.write(phantom, work / "dicom", format="dicom")
        except Exception as exc:  # noqa: BLE001 - the DICOM writer lands in parallel
            return {"skipped": f"phantom DICOM writer not usable: {type(exc).__name__}: {exc}"}
        res["phantom"] = {"spec": "default (FerriScan 1.5 T)", "overrides": overrides,
                          "shape": list(phantom.image.shape),
                          "echo_times_s": list(map(float, phantom.image.echo_times_s)),
                          "truth_lic_of_mean_r2": phantom.summary.get("lic_of_mean_r2_mg_per_g"),
                          "write_s": time.perf_counter() - t0,
                          "n_files": sum(1 for _ in (work / "dicom").rglob("*") if _.is_file())}
        env_warm = python_env()
        cold_dir = work / "numba-cold"
        # [D] seven warm runs of the command (the target) and five of the stage split,
        # reported as best (the usual estimate of a program's own cost on a machine with
        # other load, as timeit does) and median; the target is judged on the median
        reps = 1 if quick else 7
        dicom = str(work / "dicom")
        cli = [PY, "-m", "r2mri", "analyze", dicom, "--out"]
        stages = [PY, "-c", _STAGES, dicom]
        # a warm start also has the package's bytecode, as `pip install` leaves it: a
        # checkout run with PYTHONDONTWRITEBYTECODE=1 (as on the benchmark machine)
        # would compile all 49 modules from source in every process (0.08 s of CPU)
        if not quick:
            import compileall

            compileall.compile_dir(str(REPO / "r2mri"), quiet=1)
        # warm the normal cache once (compiles anything not cached yet)
        if not quick:  # the quick smoke run publishes nothing, so it skips the warm-up
            _measure(stages + [str(work / "out-warmup")], env_warm)
        runs: dict[str, list] = {"cli_warm": [], "stages_warm": [], "stages_cold": []}
        probe = [_cpu_probe(env_warm)]
        for i in range(reps):
            if not quick:  # the quick smoke run exercises the API path only
                runs["cli_warm"].append(_measure(cli + [str(work / f"cli-w{i}")], env_warm))
            if i < 5:
                runs["stages_warm"].append(_measure(stages + [str(work / f"st-w{i}")], env_warm))
        n_cold = 0 if quick else 1  # a cold cache compiles every kernel: full mode only
        for i in range(n_cold):
            for kind, cmd in (("stages_cold", stages),):  # cold: the split shows the compile
                shutil.rmtree(cold_dir, ignore_errors=True)
                cold_dir.mkdir()
                env_cold = dict(env_warm, NUMBA_CACHE_DIR=str(cold_dir))
                runs[kind].append(_measure(cmd + [str(work / f"{kind}{i}")], env_cold))
        for kind, rs in runs.items():
            for r in rs:
                for line in r.get("stdout", "").splitlines():
                    if line.startswith("STAGES "):
                        r["stages"] = json.loads(line[7:])
                r.pop("stdout", None)
                if r.get("returncode") == 0:
                    r.pop("stderr", None)
        probe.append(_cpu_probe(env_warm))
        res["cpu_probe_s"] = probe
        res["runs"] = runs
        summ = {}
        for kind, rs in runs.items():
            good = [r for r in rs if r.get("returncode") == 0 and "wall_s" in r]
            if not rs:
                continue
            if not good:
                summ[kind] = {"error": (rs[0].get("stderr") or rs[0].get("error") or "")[-400:]
                              if rs else "not run"}
                continue
            best = min(good, key=lambda r: r["wall_s"])
            walls = sorted(r["wall_s"] for r in good)
            pss = [r["peak_tree_pss_mb"] for r in good if r.get("peak_tree_pss_mb")]
            summ[kind] = {"wall_s": best["wall_s"], "median_wall_s": walls[len(walls) // 2],
                          "peak_rss_mb": best["peak_rss_mb"], "n_runs": len(good),
                          "peak_tree_pss_mb": max(pss) if pss else None,
                          "stages": best.get("stages")}
        res["summary"] = summ
        res["target_s"] = 3.0
        w = summ.get("cli_warm", {})
        if "wall_s" in w:
            res["target_met_cli_warm"] = w["median_wall_s"] < 3.0
            res["target_judged_on"] = "median"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def tables(res: dict[str, Any]) -> str:
    if "skipped" in res or "error" in res:
        return "not measured: " + str(res.get("skipped") or res.get("error"))
    p = res["phantom"]
    out = [f"Phantom: {p['spec']} {p['overrides'] or ''}, shape {p['shape']}, "
           f"{len(p['echo_times_s'])} echoes, {p['n_files']} DICOM files; truth LIC(mean R2) "
           f"{p['truth_lic_of_mean_r2']}."]
    rows = []
    keys = ["import", "load", "noise", "fit", "statistics", "analyze_other", "outputs",
            "process_total"]
    for kind, s in res["summary"].items():
        if "error" in s:
            rows.append([kind, "failed: " + s["error"].strip().splitlines()[-1][:120]] +
                        ["-"] * (len(keys) + 3))
            continue
        st = dict(s.get("stages") or {})
        if "total" in st:
            st["analyze_other"] = st["total"] - sum(st.get(k, 0.0) for k in
                                                    ("load", "noise", "fit", "statistics"))
        rows.append([kind, s["wall_s"], s.get("median_wall_s"), s.get("n_runs")]
                    + [st.get(k) for k in keys] + [s["peak_rss_mb"], s.get("peak_tree_pss_mb")])
    out.append("\n" + md_table(["run", "process wall s (best)", "median s", "runs"]
                               + [f"{k} s" for k in keys] + ["peak RSS MB", "peak tree PSS MB"], rows))
    out.append("\n`cli_*`: the whole `python -m r2mri analyze` process; `stages_*`: the same "
               "through the Python API, split by stage (`analyze().timings_s` plus "
               "`write_outputs`); analyze_other = `timings_s['total']` minus its named stages "
               "(protocol checks, ROI, calibration...); process_total = import to end of outputs, inside the process (the rest of the wall time is interpreter start-up and exit); the stage split is that of the best run. Warm: numba cache already filled and the package's bytecode compiled (as after `pip install`); cold: empty "
               f"`NUMBA_CACHE_DIR`. Peak RSS: the largest single process; peak tree PSS: "
               "the memory of the command's whole process tree (one process since issue 12 item 5; "
               "before, the CLI loaded the input and wrote the outputs in helper processes), sampled "
               f"every 20 ms. Target: under {res['target_s']:g} s with a warm cache"
               + (f", judged on the {res.get('target_judged_on', 'best')} of the `cli_warm` runs"
                  f" - {'met' if res['target_met_cli_warm'] else 'MISSED'}."
                  if "target_met_cli_warm" in res else "."))
    probe = [p for p in res.get("cpu_probe_s") or [] if p is not None]
    if probe:
        out.append("\nMachine speed at the time (a fixed single-threaded workload in a fresh "
                   "process, before and after the runs; lower is faster; on 2026-11-22 this VM took "
                   f"1.02 to 1.94 s at different hours): {' / '.join(f'{p:.2f}' for p in probe)} s.")
    return "\n".join(out)
