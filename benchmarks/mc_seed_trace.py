"""What the spread map decided at each statistics seed (issue 16, branch mcout).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.mc_seed_trace [--livers cell:2] [--seeds 10] [--out FILE]``
from the repository root.

For one liver (:func:`benchmarks.mc_seed.make_liver`) and statistics seeds 1..N, prints per
pass of the spread estimate (first pass, and the second with more copies of the ROI if
:func:`r2mri._headline._replicates_needed` asked for one): the copies, the tiles nearest to
the outlier test (their SE distance ``z = (rho_t - _OUTLIER_RHO) / se_t - _OUTLIER_SE``, 0 at
the old threshold, and their outlier weight), the edge's median reliability and map weight,
the map's shift of the mean rate and its material weight; then the headline error. The
library is only wrapped, not changed. Accuracy, not speed; not part of ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path

import numpy as np

from .mc_seed import RESULTS, make_liver


@contextlib.contextmanager
def traced(log: list):
    """Record the spread map's inputs and decisions into ``log`` (one dict per pass)."""
    import r2mri._headline as hl
    import r2mri._spread_map as sm

    orig = {"spread_map": sm.spread_map, "material_weight": sm.material_weight, "map_weight": sm.map_weight,
            "_spread_pass": hl._spread_pass}

    def spread_pass(t, seed, replicates, n_steps):
        log.append({"replicates": int(replicates)})
        res = orig["_spread_pass"](t, seed, replicates, n_steps)
        log[-1]["rho"] = {str(k): float(v) for k, v in res[0].items()}
        log[-1]["rho_se"] = {str(k): float(v) for k, v in res[1].items()}
        log[-1]["mean_corrected"] = float(np.sum(t.k * res[4]) / t.k.sum())
        log[-1]["se_spread"] = float(res[5])
        return res

    def spread_map(rhat, se, k, sel_by_edge, bound):
        ok = np.isfinite(se) & (se > 0) & (k - 1 >= sm._MIN_DOF)
        z = np.where(ok, (rhat - sm._OUTLIER_RHO) / np.where(ok, se, 1.0) - sm._OUTLIER_SE, -np.inf)
        top = np.argsort(z)[::-1][:4]
        w = getattr(sm, "outlier_weight", None)
        log[-1]["near_outlier"] = [{"tile": int(i), "z": float(z[i]), "rho_t": float(rhat[i]), "se_t": float(se[i]),
                                    "k": float(k[i]), "w": (float(w(z[i] + sm._OUTLIER_SE)) if w else None)}
                                   for i in top]
        out = orig["spread_map"](rhat, se, k, sel_by_edge, bound)
        log[-1]["map"] = out.to_dict() if out is not None else None
        return out

    def map_weight(lam):
        log[-1]["median_reliability"] = float(lam)
        return orig["map_weight"](lam)

    def material_weight(shift):
        log[-1]["shift_rel"] = float(shift)
        return orig["material_weight"](shift)

    sm.spread_map, sm.material_weight, sm.map_weight, hl._spread_pass = spread_map, material_weight, map_weight, \
        spread_pass
    try:
        yield
    finally:
        sm.spread_map, sm.material_weight, sm.map_weight, hl._spread_pass = (orig[n] for n in (
            "spread_map", "material_weight", "map_weight", "_spread_pass"))


def main(argv=None) -> int:
    from r2mri.stats import liver_statistics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--livers", default="cell:2")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", default=str(RESULTS / "mc_seed_trace.json"))
    a = ap.parse_args(argv)
    print(f"load average at start {list(os.getloadavg())}", flush=True)
    rows = []
    for name in a.livers.split(","):
        image, mask, fit, truth, _c = make_liver(name)
        for s in range(1, a.seeds + 1):
            log: list = []
            with traced(log):
                st = liver_statistics(fit, mask, image=image, seed=s)
            err = 100 * (st.headline_lic_mg_per_g / truth - 1)
            rows.append({"liver": name, "seed": s, "err_pct": err, "passes": log})
            Path(a.out).write_text(json.dumps(rows, indent=1))
            for p in log:
                near = " ".join(f"{n['tile']}:{n['z']:+.2f}" + (f"/w{n['w']:.2f}" if n["w"] is not None else "")
                                for n in p.get("near_outlier", [])[:3])
                mp = p.get("map") or {}
                print(f"{name} seed {s} R={p['replicates']} rho={list(p['rho'].values())} "
                      f"lam={p.get('median_reliability', float('nan')):.3f} shift={p.get('shift_rel', float('nan')):.5f} "
                      f"map={mp.get('weight_by_tile_size')} mat={mp.get('material_weight')} "
                      f"out={mp.get('outlier_tiles')} near[{near}] mean={p['mean_corrected']:.3f}", flush=True)
            print(f"{name} seed {s}: headline error {err:+.3f} %", flush=True)
    print(f"load average at end {list(os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
