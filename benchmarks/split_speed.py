"""Fit speed of the kernel that ``_fit_voxel`` serves, for a before/after comparison.

    python -m benchmarks.split_speed LABEL OUT.jsonl [--compile]

appends one JSON line: voxels per CPU second (``time.process_time``, one numba thread,
best of 3 after a warm-up call) per model on the FerriScan-size volume (256 x 256 x 11
voxels x 5 echoes, SNR 50; ``biexp`` on a quarter of it). CPU time rather than wall time
because the machine is shared: a process waiting for a core does not count. Run the
code before and after in alternating processes (``PYTHONPATH`` pointing at each tree)
and compare the medians over rounds. ``--compile`` instead measures the CPU seconds of the
first ``monoexp`` fit in a process with an empty numba cache (a fresh ``NUMBA_CACHE_DIR``):
the compile time of the parallel kernel that inlines ``_fit_voxel``.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from ._common import FERRISCAN_SHAPE, FERRISCAN_TE_S, decay_volume

MODELS = ("monoexp", "truncated", "monoexp_offset", "loglinear", "biexp")


def measure() -> dict:
    import r2mri

    data, _, sigma = decay_volume(FERRISCAN_SHAPE, FERRISCAN_TE_S, seed=1, snr=50.0)
    quarter = np.ascontiguousarray(data[:128, :128])
    rates = {}
    for model in MODELS:
        vol = quarter if model == "biexp" else data
        kw = {"noise_sigma": sigma, "coils": 1} if model == "truncated" else {}
        r2mri.fit(vol[:8, :8], FERRISCAN_TE_S, model=model, threads=1, **kw)  # warm-up: load the kernel
        best = np.inf
        for _ in range(3):
            t0 = time.process_time()
            r2mri.fit(vol, FERRISCAN_TE_S, model=model, threads=1, **kw)
            best = min(best, time.process_time() - t0)
        rates[model] = int(np.prod(vol.shape[:-1])) / best
    return rates


def compile_cpu_s() -> float:
    """CPU seconds of the first monoexp fit of a tiny volume (cache empty: compiles)."""
    import r2mri

    data, _, _ = decay_volume((4, 4, 1), FERRISCAN_TE_S, seed=1, snr=50.0)
    t0 = time.process_time()
    r2mri.fit(data, FERRISCAN_TE_S, model="monoexp", threads=1)
    return time.process_time() - t0


def main(argv: list[str]) -> int:
    label, out = argv[0], argv[1]
    if "--compile" in argv:
        import tempfile
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="r2mri-split-speed-")  # before numba loads
        import r2mri
        rec = {"label": label, "r2mri": os.path.dirname(r2mri.__file__), "compile_cpu_s": compile_cpu_s()}
    else:
        import r2mri
        rec = {"label": label, "r2mri": os.path.dirname(r2mri.__file__), "voxels_per_cpu_s": measure()}
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
