"""Fit speed of the kernel that ``_fit_voxel`` serves, for a before/after comparison.

    python -m benchmarks.split_speed LABEL OUT.jsonl

appends one JSON line: voxels per CPU second (``time.process_time``, one numba thread,
best of 3 after a warm-up call) per model on the FerriScan-size volume (256 x 256 x 11
voxels x 5 echoes, SNR 50; ``biexp`` on a quarter of it). CPU time rather than wall time
because the machine is shared: a process waiting for a core does not count. Run the
code before and after in alternating processes (``PYTHONPATH`` pointing at each tree)
and compare the medians over rounds.
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


def main(argv: list[str]) -> int:
    import r2mri

    label, out = argv[0], argv[1]
    rec = {"label": label, "r2mri": os.path.dirname(r2mri.__file__), "voxels_per_cpu_s": measure()}
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
