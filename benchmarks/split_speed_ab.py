"""In-process A/B of the non-ncchi fit kernel: an older tree against this one, alternated.

    cp -r OLD_TREE/r2mri DIR/r2mri_old          # the older package under another name
    NUMBA_NUM_THREADS=1 python -m benchmarks.split_speed_ab DIR [ROUNDS] [OUT.json]

Both packages are imported in one process (their numba caches are separate, keyed on their
files), and each model's fit of the FerriScan-size volume (256 x 256 x 11 x 5, SNR 50;
``biexp`` on a quarter) is timed in CPU seconds, one thread, before and after alternated
(the order swapped every round). Reported: best voxels per CPU second of each and the
median over rounds of the per-round ratio after / before (> 1: the newer tree is faster).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from ._common import FERRISCAN_SHAPE, FERRISCAN_TE_S, decay_volume

MODELS = ("monoexp", "truncated", "monoexp_offset", "loglinear", "biexp")


def _time_fit(pkg, vol, model: str, kw: dict) -> float:
    t0 = time.process_time()
    pkg.fit(vol, FERRISCAN_TE_S, model=model, threads=1, **kw)
    return time.process_time() - t0


def main(argv: list[str], models: tuple[str, ...] = MODELS) -> int:
    """Run the A/B over ``models``; with OUT.json, the results are written after each model."""
    sys.path.insert(0, argv[0])
    import r2mri
    import r2mri_old

    rounds = int(argv[1]) if len(argv) > 1 else 5
    data, _, sigma = decay_volume(FERRISCAN_SHAPE, FERRISCAN_TE_S, seed=1, snr=50.0)
    quarter = np.ascontiguousarray(data[:128, :128])
    res = {"old": r2mri_old.__file__, "new": r2mri.__file__, "rounds": rounds}
    for model in models:
        vol = quarter if model == "biexp" else data
        kw = {"noise_sigma": sigma, "coils": 1} if model in ("truncated", "ncchi") else {}
        for pkg in (r2mri_old, r2mri):  # warm-up: load or compile the kernel
            pkg.fit(vol[:8, :8], FERRISCAN_TE_S, model=model, threads=1, **kw)
        t: dict[str, list[float]] = {"before": [], "after": []}
        for r in range(rounds):
            order = (("before", r2mri_old), ("after", r2mri))
            for label, pkg in (order if r % 2 == 0 else order[::-1]):
                t[label].append(_time_fit(pkg, vol, model, kw))
        n = int(np.prod(vol.shape[:-1]))
        ratios = [b / a for b, a in zip(t["before"], t["after"])]
        res[model] = {"voxels": n, "before_best_M_per_cpu_s": n / min(t["before"]) / 1e6,
                      "after_best_M_per_cpu_s": n / min(t["after"]) / 1e6,
                      "ratio_median_after_over_before": float(np.median(ratios)), "ratios": ratios}
        print(model, json.dumps(res[model]), flush=True)
        if len(argv) > 2:  # partial results as they come
            with open(argv[2], "w", encoding="utf-8") as fh:
                json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
