"""The spread map's keep-or-drop switches against their ramps, in one process (issue 16, branch mapsmooth).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.map_smooth [--livers cell:7,...] [--seeds 10] [--out FILE]``
from the repository root.

``hard``: the spread map as before branch mapsmooth, rebuilt by wrapping: an edge's map kept
in full when its median reliability is at least 0.5 and dropped below, and a map without
outlier tiles kept only when it moves the mean corrected rate by more than ``_MAP_MATERIAL``.
``ramp``: the library as it is (:func:`r2mri._spread_map.map_weight`,
:func:`r2mri._spread_map.material_weight`). Each liver is read with statistics seeds 1..N
by both variants, interleaved (``benchmarks.mc_seed.one``): the headline's Monte-Carlo SD
over the seed against the interval's SE (half-width / 1.96), and the CPU time of
``liver_statistics`` per call, with the load average. Livers as in :mod:`benchmarks.mc_seed`.
Accuracy and speed; not part of ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

import numpy as np

from .mc_seed import RESULTS, make_liver, one

_Z95 = 1.959963984540054


@contextlib.contextmanager
def hard():
    """Within the block, the two weights are the switches they replaced."""
    import r2mri._spread_map as sm

    orig_w, orig_m = sm.map_weight, sm.material_weight
    sm.map_weight = lambda m: 1.0 if m >= sm._LAMBDA_MIN else 0.0
    sm.material_weight = lambda r: 1.0 if abs(r) > sm._MAP_MATERIAL else 0.0
    try:
        yield
    finally:
        sm.map_weight, sm.material_weight = orig_w, orig_m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--livers", default="cell:7,cell:2,cell:6,small:30:20:8:1,focal,uniform50")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", default=str(RESULTS / "map_smooth.json"))
    a = ap.parse_args(argv)
    load = list(os.getloadavg())
    print(f"load average at start {load}", flush=True)
    rows = []
    for name in a.livers.split(","):
        image, mask, fit, truth, _coils = make_liver(name)
        one(image, mask, fit, truth, 0, "all")  # warm-up (imports, numba caches)
        res = {"hard": [], "ramp": []}
        for s in range(1, a.seeds + 1):
            for variant in ("hard", "ramp") if s % 2 else ("ramp", "hard"):
                with hard() if variant == "hard" else contextlib.nullcontext():
                    r = one(image, mask, fit, truth, s, "all")
                r.update(liver=name, truth_lic=truth, variant=variant, load1=os.getloadavg()[0])
                res[variant].append(r)
                rows.append(r)
            Path(a.out).write_text(json.dumps({"load_avg_start": load, "rows": rows}, indent=1))
        cpu = {v: float(np.sum([r["cpu_s"] for r in res[v]])) for v in res}
        for v, rr in res.items():
            e = np.array([r["err_pct"] for r in rr])
            h = np.array([r["half_width_pct"] for r in rr])
            ratio = e.std(ddof=1) / (np.median(h) / _Z95)
            print(f"{name} {v}: headline error {e.mean():+.3f} %, MC SD {e.std(ddof=1):.3f} %, half-width "
                  f"{np.median(h):.2f} %, MC SD / SE {ratio:.3f}; covered {sum(r['covered'] for r in rr)}/{len(rr)}; "
                  f"map kept {sum(r['spread_map'] for r in rr)}/{len(rr)}; CPU {cpu[v] / len(rr):.2f} s/run", flush=True)
        d = np.array([r["lic"] for r in res["ramp"]]) / np.array([r["lic"] for r in res["hard"]]) - 1
        print(f"{name}: ramp / hard headline {100 * d.mean():+.4f} % (max |.| {100 * np.abs(d).max():.4f} %); CPU ratio "
              f"{cpu['ramp'] / cpu['hard']:.3f}; load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"load average at end {list(os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
