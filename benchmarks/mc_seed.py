"""Monte-Carlo error of the liver statistics over their own seed (issue 16).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.mc_seed [--livers cell:6,focal,...] [--seeds 10]
[--terms all,bootstrap,fitbias,spread,mse] [--out FILE]`` from the repository root.

The liver and its noise are fixed (generated once); only the seed of the statistics'
simulations changes. ``liver_statistics(seed=s)`` seeds the bootstrap over tiles, the
simulated tile-fit bias (:mod:`r2mri._tile_bias_sim`), the spread statistic's simulator
and the spread map's probe (:mod:`r2mri._spread_estimate`, :mod:`r2mri._spread_map`); the
measurement SE's simulated tiles (:mod:`r2mri._measurement_se`) use their own seed. With
``--terms X`` only term X gets seed s and every other term keeps seed 0 (the terms are
reached by wrapping their functions here, not by changing the library), so the Monte-Carlo
SD of the headline and of the interval's half-width is split by term; ``all`` moves them
together. Accuracy, not speed; not part of ``python -m benchmarks``.

Livers: ``cell:N`` (the seed_coupling cell: SD 0.4 in log LIC, width 4 voxels, 30 mg/g,
SNR 20, 8 channels, full size, true liver mask, texture = noise seed N), ``focal``
(``heterogeneous-focal-1.5t`` as shipped: 7 mg/g, SNR 50, 1 channel, noise seed 0),
``focal30`` (the same at 30 mg/g, SNR 20, 8 channels), ``uniform50`` (``ferriscan-1.5t-lic7``,
uniform 7 mg/g, SNR 50, 4 channels, noise seed 0), ``small:LIC:SNR:COILS:SEED`` (64 x 64 x 3 voxels
of 6 mm, the cell's texture).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TERMS = ("all", "bootstrap", "fitbias", "spread", "mse")


def make_liver(name: str):
    """``(image, mask, fit, truth_lic, coils)`` of a named liver (module docstring)."""
    from r2mri.phantom import generate

    if name.startswith("cell:"):
        s = int(name.split(":")[1])
        ph = generate(lic=30.0, snr=20.0, coils=8, seed=s, texture_seed=s, lic_log_sd=0.4, lic_correlation_voxels=4.0)
    elif name.startswith("small:"):  # small:LIC:SNR:COILS:SEED, 64 x 64 x 3 of 6 mm, SD 0.4 over 4 voxels
        lic, snr, coils, s = (float(v) for v in name.split(":")[1:])
        ph = generate(matrix=(64, 64), pixel_mm=6.0, n_slices=3, lic=lic, snr=snr, coils=int(coils), seed=int(s),
                      texture_seed=int(s), lic_log_sd=0.4, lic_correlation_voxels=4.0)
    elif name == "focal":
        ph = generate("heterogeneous-focal-1.5t", seed=0)
    elif name == "focal30":
        ph = generate("heterogeneous-focal-1.5t", seed=0, lic=30.0, snr=20.0, coils=8)
    elif name == "uniform50":
        ph = generate("ferriscan-1.5t-lic7", seed=0)
    else:
        raise SystemExit(f"unknown liver {name!r}")
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    coils = int(ph.summary.get("coils", ph.spec.coils if hasattr(ph, "spec") else 1))
    fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": sigma, "coils": coils})
    return ph.image, mask, fit, float(ph.summary["lic_of_mean_r2_mg_per_g"]), coils


@contextlib.contextmanager
def term_seeds(term: str, seed: int):
    """Within the block, ``liver_statistics(seed=seed)`` moves only ``term``'s seed (others 0)."""
    import r2mri._headline as hl
    import r2mri._spread_estimate as se
    import r2mri.stats as st

    saved = {(se, "simulated_fit_bias"): se.simulated_fit_bias, (hl, "_simulator"): hl._simulator,
             (se, "_simulator"): se._simulator, (st, "pooled_measurement_se"): st.pooled_measurement_se}
    stats_seed = seed if term in ("all", "bootstrap") else 0  # what liver_statistics is called with (one())

    def pick(name):
        return seed if term in ("all", name) else 0

    orig_fb, orig_sim, orig_mse = se.simulated_fit_bias, se._simulator, st.pooled_measurement_se

    def fb(*a, **k):
        a = list(a)
        if len(a) > 9:  # simulated_fit_bias(r2, s0, se_rel, k, groups, skipped, te, sigma, coils, seed, ...)
            a[9] = pick("fitbias")
        else:
            k["seed"] = pick("fitbias")
        return orig_fb(*a, **k)

    def sim(t, s, *a, **k):  # the spread statistic's simulator (seed) and the spread map's probe (seed + 1)
        return orig_sim(t, pick("spread") + (s - stats_seed), *a, **k)

    def mse(*a, **k):
        k["seed"] = pick("mse")
        return orig_mse(*a, **k)

    se.simulated_fit_bias, hl._simulator, se._simulator, st.pooled_measurement_se = fb, sim, sim, mse
    try:
        yield
    finally:
        for (mod, attr), v in saved.items():
            setattr(mod, attr, v)


def one(image, mask, fit, truth, seed: int, term: str) -> dict:
    from r2mri.stats import liver_statistics

    cpu = time.process_time()
    with term_seeds(term, seed):
        # the bootstrap takes liver_statistics' own seed
        st = liver_statistics(fit, mask, image=image, seed=seed if term in ("all", "bootstrap") else 0)
    cpu = time.process_time() - cpu
    lo, hi = st.ci95_lic_mg_per_g
    mx = st.blocks["headline"]["mixture"] or {}
    r2b = st.blocks["r2_per_s"]
    sm = mx.get("spread_map") or {}
    return {"seed": seed, "term": term, "cpu_s": cpu, "lic": st.headline_lic_mg_per_g, "lo": lo, "hi": hi,
            "err_pct": 100 * (st.headline_lic_mg_per_g / truth - 1), "half_width_pct": 50 * (hi - lo) / st.headline_lic_mg_per_g,
            "covered": bool(lo <= truth <= hi), "mean_r2": st.headline_r2_per_s, "ci95_r2": r2b["headline_ci95"],
            "se_measurement": r2b["headline_se_measurement"], "se_bootstrap": r2b["headline_se_bootstrap"],
            **{k: v for k, v in mx.items() if k != "spread_map"},
            "spread_map_outliers": sm.get("outlier_tiles"), "spread_map": bool(sm), "spread_map_detail": sm or None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--livers", default="cell:6,cell:2,focal,uniform50")
    ap.add_argument("--seeds", type=int, default=10, help="statistics seeds 1..N (0 is the fixed seed)")
    ap.add_argument("--terms", default="all")
    ap.add_argument("--out", default=str(RESULTS / "mc_seed.json"))
    a = ap.parse_args(argv)
    load = list(os.getloadavg())
    print(f"load average at start {load}", flush=True)
    rows = []
    for name in a.livers.split(","):
        image, mask, fit, truth, _coils = make_liver(name)
        for term in a.terms.split(","):
            if term not in TERMS:
                raise SystemExit(f"unknown term {term!r}; one of {TERMS}")
            res = []
            for s in range(1, a.seeds + 1):
                r = one(image, mask, fit, truth, s, term)
                r.update(liver=name, truth_lic=truth)
                res.append(r)
                rows.append(r)
                Path(a.out).write_text(json.dumps({"load_avg_start": load, "rows": rows}, indent=1))
            e = np.array([r["err_pct"] for r in res])
            h = np.array([r["half_width_pct"] for r in res])
            print(f"{name} {term}: headline error {e.mean():+.3f} %, MC SD {e.std(ddof=1):.3f} %; half-width "
                  f"{np.median(h):.2f} % (min {h.min():.2f}, max {h.max():.2f}, MC SD {h.std(ddof=1):.3f}); covered "
                  f"{sum(r['covered'] for r in res)}/{len(res)}; CPU {np.mean([r['cpu_s'] for r in res]):.1f} s/run; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"load average at end {list(os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
