"""In-process A/B of the fit kernels, ``ncchi`` included (branch kernsplit).

    cp -r OLD_TREE/r2mri DIR/r2mri_old          # the older package under another name
    NUMBA_NUM_THREADS=1 python -m benchmarks.kernsplit_speed_ab DIR [ROUNDS] [OUT.json]

:mod:`benchmarks.split_speed_ab` (same method: both packages in one process, each model's
fit of the FerriScan-size volume 256 x 256 x 11 x 5 at SNR 50 timed in CPU seconds, one
thread, before and after alternated, order swapped every round) with the ``ncchi`` lane
solver added (sigma given, 1 channel, as for ``truncated``). Reported per model: best
voxels per CPU second of each and the median over rounds of the per-round ratio
after / before (> 1: the newer tree is faster).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from ._common import FERRISCAN_SHAPE, FERRISCAN_TE_S, decay_volume
from .split_speed_ab import _time_fit

MODELS = ("ncchi", "monoexp", "truncated", "monoexp_offset", "loglinear", "biexp")


def main(argv: list[str]) -> int:
    sys.path.insert(0, argv[0])
    import r2mri
    import r2mri_old

    rounds = int(argv[1]) if len(argv) > 1 else 5
    data, _, sigma = decay_volume(FERRISCAN_SHAPE, FERRISCAN_TE_S, seed=1, snr=50.0)
    quarter = np.ascontiguousarray(data[:128, :128])
    res = {"old": r2mri_old.__file__, "new": r2mri.__file__, "rounds": rounds}
    for model in MODELS:
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
