"""The spread map's keep-or-drop switches against their ramps, in one process (issue 16, branch mapsmooth).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.map_smooth [--livers cell:7,...] [--seeds 10] [--out FILE]``
from the repository root.

``hard``: the spread map as before branch mapsmooth, rebuilt by wrapping: an edge's map kept
in full when its median reliability is at least 0.5 and dropped below, and a map without
outlier tiles kept only when it moves the mean corrected rate by more than ``_MAP_MATERIAL``
(beside outlier tiles always in full). ``ramp``: the library as it is
(:func:`r2mri._spread_map.map_weight`, :func:`r2mri._spread_map.material_weight`, the
latter with or without outlier tiles). Each liver is read with statistics seeds 1..N
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


def _tile_spread_map_before(t, simulated, state, replicates: int, seed: int):
    """``r2mri._spread_map.tile_spread_map`` as it was before branch mapsmooth (git e8a71af)."""
    import r2mri._spread_map as sm
    from r2mri._mixture import _SHAPE, _correct_many
    from r2mri._spread_estimate import _DRHO, _MUT_MAX, _RHO_MAX, _echo_dispersion, _simulator

    rho, kappa, mu, s0 = state
    ra = np.maximum(t.rho_tiles({s: max(rho[s], 0.0) for s in t.sizes}), 0.0)
    ka = np.zeros(t.nt)
    for s in t.sizes:
        ka[t.sel_of[s]] = max(kappa[s], 0.0)
    obs, dof = _echo_dispersion(t.y, t.tile_of, t.nt)
    sim_a, sim_r = simulated(mu, s0, ra, ka), simulated(mu, s0, ra + _DRHO, ka)
    rhat, se = sm.tile_spreads(obs, sim_a, sim_r, _DRHO, dof, mu, t.te, ra, replicates, _MUT_MAX)
    probe = _simulator(t, seed + 1, 1, _SHAPE)(mu, s0, ra, ka)
    rhat_p, se_p = sm.tile_spreads(probe, sim_a, sim_r, _DRHO, dof, mu, t.te, ra, replicates, _MUT_MAX)
    se = sm.calibrate_se(se, rhat_p - ra, se_p, t.k, t.sel_of)
    m = sm.spread_map(rhat, se, t.k, t.sel_of, _RHO_MAX)
    if m is None or m.outlier.any():
        return m
    r_ref, s_ref = t.ref_state()
    jobs = [(r_ref[t.sel_of[s]], s_ref[t.sel_of[s]], t.k[t.sel_of[s]], r) for s in t.sizes
            for r in (rho[s], np.clip(rho[s] + m.offset[t.sel_of[s]], -_RHO_MAX, _RHO_MAX))]
    done = _correct_many(jobs, t.te, t.sigma, t.coils, _SHAPE)
    shift = sum(float(np.sum(t.k[t.sel_of[s]] * (done[2 * i + 1][0] - done[2 * i][0]))) for i, s in enumerate(t.sizes))
    return m if abs(shift) > sm._MAP_MATERIAL * float(np.sum(t.k * mu)) else None


@contextlib.contextmanager
def hard():
    """Within the block, the spread map as before branch mapsmooth: the reliability switch at
    ``_LAMBDA_MIN`` and the materiality switch, the latter only without outlier tiles."""
    import r2mri._headline as hl
    import r2mri._spread_map as sm

    orig_w, orig_t = sm.map_weight, hl.tile_spread_map
    sm.map_weight = lambda m: 1.0 if m >= sm._LAMBDA_MIN else 0.0
    hl.tile_spread_map = _tile_spread_map_before
    try:
        yield
    finally:
        sm.map_weight, hl.tile_spread_map = orig_w, orig_t


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
                  f"map kept {sum(r['spread_map'] for r in rr)}/{len(rr)}; CPU {cpu[v] / len(rr):.2f} s/run",
                  flush=True)
        d = np.array([r["lic"] for r in res["ramp"]]) / np.array([r["lic"] for r in res["hard"]]) - 1
        print(f"{name}: ramp / hard headline {100 * d.mean():+.4f} % (max |.| {100 * np.abs(d).max():.4f} %); "
              f"CPU ratio {cpu['ramp'] / cpu['hard']:.3f}; load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"load average at end {list(os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
