"""Fat-water magnitude kernel A/B: this tree's kernel against a git revision's, one process.

Run: ``python -m benchmarks.fatwater_ab [--ref main] [--slices 32] [--threads 2]
[--rounds 3]``. The kernel file ``r2mri/fatwater/_kernels.py`` of ``--ref`` is taken
from git (``git show``) into a temporary module beside the current one (its relative
imports made absolute: it uses this tree's ``r2mri.noise`` and numba setup), and both
fit the benchmark volume of :mod:`benchmarks.fatwater` (256 x 256 x slices x 12 echoes,
1.5 T, R2* 30-800 s^-1, PDFF 0-45 %, SNR 50) the way the driver calls them (65,536-voxel
float64 chunks), Gaussian and noise-corrected (sigma given), alternating the order each
round. Measured: process CPU time per voxel (best of the rounds; on a shared machine
CPU time moves less than wall time), the 1-minute load average, and the map
differences per voxel (R2* relative, PDFF points, status). Writes
``results/fatwater_ab.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._common import REPO
from .fatwater import SIGMA, TE12, _volume

KERNEL_PATH = "r2mri/fatwater/_kernels.py"
#: Limits of a speed change (issue 15 speed work): per voxel, R2* relative and PDFF points.
LIMIT_R2_REL = 1e-3
LIMIT_PDFF_POINTS = 0.05


def _ref_kernel(ref: str, tmp: Path):
    """Import the kernel module of git revision ``ref`` from ``tmp`` (absolute imports)."""
    src = subprocess.run(["git", "show", f"{ref}:{KERNEL_PATH}"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    src = src.replace("from .._numba_setup import", "from r2mri._numba_setup import")
    src = src.replace("from ..noise import", "from r2mri.noise import")
    (tmp / "_fatwater_kernels_ref.py").write_text(src)
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module("_fatwater_kernels_ref")
    finally:
        sys.path.remove(str(tmp))


def _r2_bounds() -> tuple[float, float]:
    """The driver's default R2* range for the benchmark train (r2mri.fatwater.fit), or
    (0, 1000) s^-1 in trees from before the field-dependent default."""
    try:
        from r2mri.fatwater.fit import default_r2star_bounds
    except ImportError:
        return 0.0, 1000.0
    return tuple(float(v) for v in default_r2star_bounds(TE12, 1.5))


def _fit(K, flat, noise_sigma: float):
    """Fit every voxel of ``flat`` (voxel, echo) with kernel module ``K``, as
    :func:`r2mri.fatwater.fit._fit_magnitude` does (liver swap rule, default options)."""
    from r2mri.fatwater import load_fat_spectrum
    from r2mri.fatwater.fit import _NO_TABLE, FAT_FLOOR_FRACTION
    from r2mri.noise import ncchi_table

    basis = load_fat_spectrum().basis(TE12, 1.5)
    te = np.ascontiguousarray(TE12, dtype=np.float64)
    cr, ci = np.ascontiguousarray(basis.real), np.ascontiguousarray(basis.imag)
    nz = (noise_sigma, np.int64(1), math.lgamma(1.5) - math.lgamma(1.0),
          ncchi_table(1) if noise_sigma > 0 else _NO_TABLE)
    n = flat.shape[0]
    out = np.empty((K.NOUT, n), dtype=np.float32)
    status = np.empty(n, dtype=np.uint8)
    no_index = np.empty(0, dtype=np.int64)
    # kernels from before the signed fat bound (docs/fatwater.md "Fat bound and PDFF rule")
    # have no fat_floor argument
    floor = (FAT_FLOOR_FRACTION,) if "fat_floor" in inspect.signature(K.fit_chunk.py_func).parameters else ()
    lo, hi = _r2_bounds()
    for start in range(0, n, 65536):
        y = np.ascontiguousarray(flat[start:start + 65536], dtype=np.float64)
        K.fit_chunk(y, te, cr, ci, True, nz, 2.0, lo, hi, *floor, np.int64(100), 1e-6, 1e-10,
                    np.int64(K.RULE_LIVER), no_index, np.int64(start), out, status)
    return out, status


def _compare(ref, new, K) -> dict:
    (o0, s0), (o1, s1) = ref, new
    r0, r1 = o0[K.O_R2].astype(np.float64), o1[K.O_R2].astype(np.float64)
    ok = np.isfinite(r0) & np.isfinite(r1) & (r0 > 0)
    dr = np.abs(r1[ok] - r0[ok]) / r0[ok]
    p0, p1 = o0[K.O_PDFF].astype(np.float64), o1[K.O_PDFF].astype(np.float64)
    okp = np.isfinite(p0) & np.isfinite(p1)
    dp = np.abs(p1[okp] - p0[okp])
    return {"max_r2_rel": float(dr.max(initial=0.0)), "n_r2_beyond": int(np.sum(dr > LIMIT_R2_REL)),
            "max_pdff_points": float(dp.max(initial=0.0)),
            "n_pdff_beyond": int(np.sum(dp > LIMIT_PDFF_POINTS)),
            "n_status_differ": int(np.sum(s0 != s1)),
            "r2_bit_identical_fraction": float(np.mean(o0[K.O_R2] == o1[K.O_R2])),
            "mean_iterations": [float(np.nanmean(o0[K.O_NITER])), float(np.nanmean(o1[K.O_NITER]))]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main", help="git revision of the reference kernel")
    ap.add_argument("--slices", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)
    import numba

    from r2mri.fatwater import _kernels as new_kernel

    y, _, _ = _volume((256, 256, args.slices), TE12, 1.5, seed=1)
    flat = y.reshape(-1, 12)
    n = flat.shape[0]
    prev = numba.get_num_threads()
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    with tempfile.TemporaryDirectory(prefix="r2mri-ab-") as tmp:
        kernels = {"ref": _ref_kernel(args.ref, Path(tmp)), "new": new_kernel}
        modes = {"gaussian": 0.0, "noise_corrected": SIGMA}
        for K in kernels.values():  # compile / load both before timing
            for sigma in modes.values():
                _fit(K, flat[:64], sigma)
        cpu = {(k, m): [] for k in kernels for m in modes}
        loads, maps = [], {}
        try:
            for r in range(args.rounds):
                order = list(kernels) if r % 2 == 0 else list(kernels)[::-1]
                for name in order:
                    for mode, sigma in modes.items():
                        loads.append(os.getloadavg()[0])
                        c0 = time.process_time()
                        maps[(name, mode)] = _fit(kernels[name], flat, sigma)
                        cpu[(name, mode)].append(time.process_time() - c0)
        finally:
            numba.set_num_threads(prev)
    res = {"ref": args.ref, "n_voxels": n, "threads": args.threads, "rounds": args.rounds,
           "r2_bounds_per_s": list(_r2_bounds()),
           "load_1min": [min(loads), max(loads)], "modes": {}}
    for mode in modes:
        best = {k: min(cpu[(k, mode)]) for k in kernels}
        res["modes"][mode] = {
            "cpu_s": {k: cpu[(k, mode)] for k in kernels},
            "us_cpu_per_voxel": {k: 1e6 * best[k] / n for k in kernels},
            "speedup_cpu": best["ref"] / best["new"],
            **_compare(maps[("ref", mode)], maps[("new", mode)], new_kernel)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fatwater_ab.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"{n} voxels, {args.threads} threads, best of {args.rounds}, R2* range {res['r2_bounds_per_s']} s^-1, "
          f"load {min(loads):.1f}-{max(loads):.1f}\n")
    print(f"| fit | CPU us/voxel {args.ref} | this tree | speed-up | max dR2*/R2* | max dPDFF points "
          "| beyond limits (R2*, PDFF) | status differ |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, v in res["modes"].items():
        u = v["us_cpu_per_voxel"]
        print(f"| {mode} | {u['ref']:.3f} | {u['new']:.3f} | {v['speedup_cpu']:.2f} | {v['max_r2_rel']:.1e} | "
              f"{v['max_pdff_points']:.1e} | {v['n_r2_beyond']}, {v['n_pdff_beyond']} | {v['n_status_differ']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
