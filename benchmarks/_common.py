"""Shared helpers: machine description, timing, synthetic decay data, JSON output.

The synthetic data here is deliberately independent of ``r2mri.phantom``: the
benchmarks check the package against physics written out a second time, in plain
numpy, so a shared bug cannot cancel out.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("R2MRI_SHARED", REPO.parent / "shared"))
SIEMENS_DIR = SHARED / "testdata" / "mrbias-mse-siemens-3t"

#: FerriScan single-spin-echo protocol echo times (domain.md section 2), seconds.
FERRISCAN_TE_S = np.array([0.006, 0.009, 0.012, 0.015, 0.018])
#: FerriScan volume: 256 x 256 in-plane, 11 slices.
FERRISCAN_SHAPE = (256, 256, 11)


def machine_info() -> dict[str, Any]:
    """CPU, core count, memory, versions and date, stored with every result file."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "numba", "lmfit", "qmrpy", "nibabel", "pydicom", "r2mri"):
        try:
            mod = __import__(name)
            versions[name] = getattr(mod, "__version__", "?")
        except Exception:  # noqa: BLE001 - a missing optional package is just recorded
            versions[name] = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip() or None
    except Exception:  # noqa: BLE001
        commit = None
    try:
        loadavg = os.getloadavg()
    except OSError:
        loadavg = None
    return {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu,
        "mem_total_gb": mem_gb,
        "platform": platform.platform(),
        "loadavg_at_start": loadavg,
        "git_commit": commit,
        "versions": versions,
    }


def best_time(func: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Run ``func`` ``repeats`` times; return (best wall time, all times) in seconds.

    The best of several runs is the least disturbed by other processes on a shared
    machine; all runs are stored so the spread can be judged.
    """
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times), times


def ncchi_magnitude(amplitude: np.ndarray, sigma: float, coils: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Root-sum-of-squares magnitude of ``coils`` channels with complex Gaussian noise.

    The whole amplitude is put on one channel: the RSS magnitude distribution
    (non-central chi with 2*coils degrees of freedom) depends only on the total
    amplitude, so this is exact and cheaper than spreading it over coil maps.
    """
    a = np.asarray(amplitude, dtype=np.float64)
    re = a + sigma * rng.standard_normal(a.shape)
    power = re * re + (sigma * rng.standard_normal(a.shape)) ** 2
    for _ in range(coils - 1):
        power += (sigma * rng.standard_normal(a.shape)) ** 2
        power += (sigma * rng.standard_normal(a.shape)) ** 2
    return np.sqrt(power)


def decay_volume(shape: tuple[int, ...], echo_times_s: np.ndarray, *, seed: int = 0,
                 r2_range: tuple[float, float] = (20.0, 300.0), s0: float = 1000.0,
                 snr: float = 50.0, coils: int = 1) -> tuple[np.ndarray, np.ndarray, float]:
    """Mono-exponential decay with Rician / non-central-chi noise, float32 (x..., echo).

    R2 uniform in ``r2_range`` (s^-1), S0 fixed, sigma = S0 / snr. Returns
    (data, r2_truth, sigma).
    """
    rng = np.random.default_rng(seed)
    r2 = rng.uniform(r2_range[0], r2_range[1], size=shape)
    sigma = s0 / snr
    te = np.asarray(echo_times_s, dtype=np.float64)
    out = np.empty(shape + (te.size,), dtype=np.float32)
    # echo by echo keeps the float64 temporaries at one echo's size (1e7 voxels)
    for k, t in enumerate(te):
        out[..., k] = ncchi_magnitude(s0 * np.exp(-r2 * t), sigma, coils, rng)
    return out, r2.astype(np.float32), sigma


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON (NaN stored as null) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if not math.isfinite(f) else f
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number for a Markdown table (``-`` for missing)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    v = float(value)
    if not math.isfinite(v):
        return "-"
    if v != 0 and (abs(v) >= 10 ** 6 or abs(v) < 10 ** -3):
        return f"{v:.{digits - 1}e}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(c) for c in row) + " |")
    return "\n".join(lines)


def r2mri_available(*names: str) -> tuple[bool, str]:
    """Whether the named public r2mri attributes import (modules land in parallel)."""
    try:
        import r2mri
        for name in names:
            getattr(r2mri, name)
        return True, ""
    except Exception as exc:  # noqa: BLE001 - reported in the results, never hidden
        return False, f"{type(exc).__name__}: {exc}"


def python_env() -> dict[str, str]:
    """Environment for child processes: the repository on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


PY = sys.executable
