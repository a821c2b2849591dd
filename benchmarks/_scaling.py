"""Scaling: voxels/s against volume size, echo count and threads; peak memory vs size.

Peak memory is the growth of the resident set during the fit: the kernel's peak
counter (VmHWM) is reset through ``/proc/self/clear_refs`` just before the call and
read after it, minus the resident set before the call (input already in memory).
Where ``clear_refs`` is not writable the numpy-side peak from :mod:`tracemalloc`
is reported instead (it misses allocations made inside numba kernels; said so).
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from ._common import FERRISCAN_SHAPE, FERRISCAN_TE_S, decay_volume, md_table, r2mri_available


def _kw(model: str, sigma: float) -> dict[str, Any]:
    kw: dict[str, Any] = {"model": model}
    if model in ("ncchi", "truncated", "auto"):
        kw.update(noise_sigma=sigma, coils=1)
    return kw


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _measure_memory(call) -> dict[str, Any]:
    gc.collect()
    if _reset_peak() and _status_kb("VmRSS") is not None:
        rss0 = _status_kb("VmRSS")
        call()
        hwm = _status_kb("VmHWM")
        return {"method": "VmHWM after clear_refs minus VmRSS before",
                "peak_extra_mb": (hwm - rss0) / 1024.0, "rss_before_mb": rss0 / 1024.0}
    tracemalloc.start()
    call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"method": "tracemalloc peak (numpy allocations only)", "peak_extra_mb": peak / 2**20}


_MEM_CHILD = r"""
import json, sys
import numpy as np
import r2mri
from benchmarks._common import FERRISCAN_TE_S, decay_volume
from benchmarks._scaling import _measure_memory
n = int(sys.argv[1])
data, _, sigma = decay_volume((n,), FERRISCAN_TE_S, seed=2)
data = data.reshape(n, 1, 1, FERRISCAN_TE_S.size)
r2mri.fit(data[:8], echo_times_s=FERRISCAN_TE_S, model="monoexp")
mem = _measure_memory(lambda: r2mri.fit(data, echo_times_s=FERRISCAN_TE_S, model="monoexp"))
mem.update({"n_voxels": n, "input_mb": data.nbytes / 2**20, "model": "monoexp",
            "process": "fresh"})
print("MEM " + json.dumps(mem))
"""


def _memory_child(n: int) -> dict[str, Any]:
    import json
    import subprocess

    from ._common import PY, REPO, python_env

    proc = subprocess.run([PY, "-c", _MEM_CHILD, str(n)], capture_output=True, text=True,
                          cwd=REPO, env=python_env(), timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith("MEM "):
            return json.loads(line[4:])
    return {"n_voxels": n, "error": proc.stderr.strip()[-300:], "peak_extra_mb": float("nan"),
            "input_mb": n * 5 * 4 / 2**20}


#: issue 2's memory case: 512 x 512 x 40 voxels x 32 echoes of float32 (1.34 GB input)
_LARGE_CHILD = r"""
import json, sys, time
import numpy as np
import r2mri
from benchmarks._scaling import _measure_memory
model = sys.argv[1]
shape, te = (512, 512, 40), np.arange(1, 33) * 0.010  # MR-BIAS-like 32 echoes, 10 ms apart
rng = np.random.default_rng(5)
r2 = rng.uniform(10.0, 100.0, shape).astype(np.float32)
sigma = 5.0
data = np.empty(shape + (te.size,), np.float32)
for k, t in enumerate(te):  # Rician, built echo by echo to keep temporaries small
    re = 1000.0 * np.exp(-r2 * np.float32(t)) + sigma * rng.standard_normal(shape, np.float32)
    im = sigma * rng.standard_normal(shape, np.float32)
    data[..., k] = np.hypot(re, im)
del r2, re, im
kw = {"model": model}
if model == "ncchi":
    kw.update(noise_sigma=sigma, coils=1)
r2mri.fit(data[:4, :4, :1], echo_times_s=te, **kw)  # kernels loaded before the reset
t0 = time.perf_counter()
mem = _measure_memory(lambda: r2mri.fit(data, echo_times_s=te, **kw))
mem.update({"time_s": time.perf_counter() - t0, "shape": list(shape), "n_echoes": te.size,
            "n_voxels": int(np.prod(shape)), "input_mb": data.nbytes / 2**20, "model": model})
mem["voxels_per_s"] = mem["n_voxels"] / mem["time_s"]
print("MEM " + json.dumps(mem))
"""


def _large_child(model: str) -> dict[str, Any]:
    import json
    import subprocess

    from ._common import PY, REPO, python_env

    proc = subprocess.run([PY, "-c", _LARGE_CHILD, model], capture_output=True, text=True,
                          cwd=REPO, env=python_env(), timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith("MEM "):
            return json.loads(line[4:])
    return {"model": model, "error": proc.stderr.strip()[-300:]}


def run(quick: bool) -> dict[str, Any]:
    ok, why = r2mri_available("fit")
    if not ok:
        return {"error": f"r2mri.fit not importable: {why}"}
    import r2mri

    te5 = FERRISCAN_TE_S
    res: dict[str, Any] = {"size": {}, "echoes": {}, "threads": {}, "memory": {}}

    # --- volume size -----------------------------------------------------------
    sizes = [10**3, 10**4, 10**5] if quick else [10**3, 10**4, 10**5, 10**6, 10**7]
    size_models = ["monoexp", "ncchi"] if quick else ["loglinear", "monoexp", "ncchi"]
    res["size_models"] = size_models
    for n in sizes:
        data, _, sigma = decay_volume((n,), te5, seed=2)
        data = data.reshape(n, 1, 1, te5.size)
        for m in size_models:
            kw = _kw(m, sigma)
            r2mri.fit(data[:8], echo_times_s=te5, **kw)  # warm
            reps = 3 if n <= 10**5 else 1
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                r2mri.fit(data, echo_times_s=te5, **kw)
                times.append(time.perf_counter() - t0)
            res["size"].setdefault(m, []).append(
                {"n_voxels": n, "time_s": min(times), "voxels_per_s": n / min(times)})
        del data
        gc.collect()
        # peak memory in a fresh process: in this one, freed buffers are reused and hide it
        res["memory"][str(n)] = _memory_child(n)

    # --- issue 2's large volume: 512 x 512 x 40 x 32 float32 (full mode only) ----------
    if not quick:
        res["large"] = {m: _large_child(m) for m in ("monoexp", "ncchi")}

    # --- echo count ----------------------------------------------------------------
    n_echo_vox = 20_000 if quick else 100_000
    counts = [3, 5, 8, 16, 32] if quick else [3, 4, 5, 8, 12, 16, 24, 32]
    echo_models = ["monoexp", "ncchi"] if quick else \
        ["loglinear", "monoexp", "monoexp_offset", "ncchi", "biexp"]
    res["echo_setup"] = {"n_voxels": n_echo_vox, "te_first_s": 0.006, "te_spacing_s": 0.003,
                         "models": echo_models}
    for k in counts:
        te = 0.006 + 0.003 * np.arange(k)
        data, _, sigma = decay_volume((n_echo_vox,), te, seed=3)
        data = data.reshape(n_echo_vox, 1, 1, k)
        for m in echo_models:
            if m == "biexp" and k < 5:
                continue  # four parameters need at least five echoes
            kw = _kw(m, sigma)
            try:
                # the slow bi-exponential runs on a fifth of the voxels (rate per voxel)
                sub = data[: n_echo_vox // 5] if m == "biexp" else data
                r2mri.fit(data[:8], echo_times_s=te, **kw)
                t0 = time.perf_counter()
                r2mri.fit(sub, echo_times_s=te, **kw)
                dt = time.perf_counter() - t0
                res["echoes"].setdefault(m, []).append(
                    {"n_echoes": k, "n_voxels": sub.shape[0], "time_s": dt,
                     "voxels_per_s": sub.shape[0] / dt})
            except Exception as exc:  # noqa: BLE001
                res["echoes"].setdefault(m, []).append(
                    {"n_echoes": k, "error": f"{type(exc).__name__}: {exc}"})

    # --- threads ---------------------------------------------------------------------
    shape = (64, 64, 11) if quick else (256, 256, 2)
    data, _, sigma = decay_volume(shape, te5, seed=4)
    nvox = int(np.prod(shape))
    thread_models = ["monoexp", "ncchi"] if quick else \
        ["loglinear", "monoexp", "monoexp_offset", "ncchi", "biexp"]
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    res["thread_setup"] = {"shape": list(shape), "cores_available": ncpu}
    for m in thread_models:
        kw = _kw(m, sigma)
        # the slow bi-exponential runs on a quarter of the volume (rate per voxel)
        sub = data[:, : max(1, shape[1] // 4)] if m == "biexp" else data
        nsub = int(np.prod(sub.shape[:3]))
        for th in range(1, max(1, ncpu) + 1):
            try:
                r2mri.fit(data[:4, :4, :1], echo_times_s=te5, threads=th, **kw)
                times = []
                for _ in range(1 if quick else 2):
                    t0 = time.perf_counter()
                    r2mri.fit(sub, echo_times_s=te5, threads=th, **kw)
                    times.append(time.perf_counter() - t0)
                    if times[-1] > 5.0:
                        break
                res["threads"].setdefault(m, []).append(
                    {"threads": th, "n_voxels": nsub, "time_s": min(times),
                     "voxels_per_s": nsub / min(times)})
            except Exception as exc:  # noqa: BLE001
                res["threads"].setdefault(m, []).append(
                    {"threads": th, "error": f"{type(exc).__name__}: {exc}"})
    return res


def plots(res: dict[str, Any], out: Path) -> list[str]:
    if "error" in res:
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    ax = axes[0]
    for m, rows in res["size"].items():
        ax.loglog([r["n_voxels"] for r in rows], [r["voxels_per_s"] for r in rows], "o-", label=m)
    ax.set(xlabel="voxels (5 echoes)", ylabel="voxels/s", title="volume size")
    ax.legend()
    ax = axes[1]
    for m, rows in res["echoes"].items():
        rows = [r for r in rows if "voxels_per_s" in r]
        ax.semilogy([r["n_echoes"] for r in rows], [r["voxels_per_s"] for r in rows], "o-", label=m)
    ax.set(xlabel="echoes", ylabel="voxels/s",
           title=f"echo count ({res['echo_setup']['n_voxels']:,} voxels)")
    ax.legend()
    ax = axes[2]
    for m, rows in res["threads"].items():
        rows = [r for r in rows if "voxels_per_s" in r]
        ax.plot([r["threads"] for r in rows], [r["voxels_per_s"] for r in rows], "o-", label=m)
    ax.set(xlabel="threads", ylabel="voxels/s", yscale="log",
           title=f"threads ({np.prod(res['thread_setup']['shape']):,} voxels)")
    ax.set_xticks(sorted({r["threads"] for rows in res["threads"].values() for r in rows}))
    ax.legend()
    ax = axes[3]
    mem = sorted([r for r in res["memory"].values() if r.get("peak_extra_mb") is not None
                  and np.isfinite(r["peak_extra_mb"])], key=lambda r: r["n_voxels"])
    ax.loglog([r["n_voxels"] for r in mem], [max(r["peak_extra_mb"], 1e-2) for r in mem],
              "o-", label="peak extra during fit")
    ax.loglog([r["n_voxels"] for r in mem], [r["input_mb"] for r in mem], "s--", label="input")
    ax.set(xlabel="voxels (5 echoes)", ylabel="MB", title="memory (monoexp)")
    ax.legend()
    fig.tight_layout()
    path = out / "scaling.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path.name]


def tables(res: dict[str, Any]) -> str:
    if "error" in res:
        return f"not measured: {res['error']}"
    out = []
    sizes = sorted({r["n_voxels"] for rows in res["size"].values() for r in rows})
    rows = []
    for n in sizes:
        row: list[Any] = [f"{n:,}"]
        for m in res["size_models"]:
            hit = [r for r in res["size"].get(m, []) if r["n_voxels"] == n]
            row.append(hit[0]["voxels_per_s"] if hit else None)
        mem = res["memory"].get(str(n), {})
        row += [mem.get("input_mb"), mem.get("peak_extra_mb")]
        rows.append(row)
    out.append(md_table(["voxels"] + [f"{m} voxels/s" for m in res["size_models"]] +
                        ["input MB", "peak extra MB (monoexp)"], rows))
    meth = next(iter(res["memory"].values()), {}).get("method", "")
    out.append(f"\nMemory method: {meth}, in a fresh process per size (monoexp; the "
               "input is generated before the reset).")
    large = res.get("large")
    if large:
        rows = [[m, r.get("time_s"), r.get("voxels_per_s"), r.get("input_mb"),
                 r.get("peak_extra_mb"), r.get("error", "")] for m, r in large.items()]
        out.append("\nIssue 2's large volume, 512 x 512 x 40 voxels x 32 echoes float32 (TE 10..320 "
                   "ms, Rician SNR 200), one fresh process per model, whole volume in one call:\n\n"
                   + md_table(["model", "time s", "voxels/s", "input MB", "peak extra MB", "error"],
                              rows))
    models = list(res["echoes"])
    counts = sorted({r["n_echoes"] for rows in res["echoes"].values() for r in rows})
    rows = []
    for k in counts:
        row = [k]
        for m in models:
            hit = [r for r in res["echoes"][m] if r["n_echoes"] == k and "voxels_per_s" in r]
            row.append(hit[0]["voxels_per_s"] if hit else None)
        rows.append(row)
    out.append(f"\nEcho count ({res['echo_setup']['n_voxels']:,} voxels; biexp on a fifth of "
               "them), TE = 6 ms + 3 ms k, voxels/s:\n\n" + md_table(["echoes"] + models, rows))
    rows = []
    for m, rs in res["threads"].items():
        d = {r["threads"]: r.get("voxels_per_s") for r in rs}
        speedup = (d.get(2) / d[1]) if d.get(2) and d.get(1) else None
        rows.append([m, d.get(1), d.get(2), speedup])
    out.append(f"\nThreads ({res['thread_setup']['shape']} voxels; biexp on a quarter), "
               f"voxels/s, "
               f"{res['thread_setup']['cores_available']} cores available:\n\n" +
               md_table(["model", "1 thread", "2 threads", "speed-up"], rows))
    return "\n".join(out)
