"""Issue 16: the spread estimate's bias on small livers at 30 mg/g, SNR 20 (branch rhobias).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.rhobias --seeds N [--offset O] [--variants a,b]``
(from the repository root; printed, and appended to ``benchmarks/results/rhobias-rhobias.jsonl``;
the runs of docs/statistics.md "The spread estimate's bias at rho = 0" are stored there, per
liver the fields below; the runs of variants since removed from the code are kept as tagged:
``mirror*`` (odd extension below 0) in run3, ``nofeedback`` in run4).

Livers as ``benchmarks.small20`` (64 x 64 x 3 at 6 mm, 30 mg/g, SNR 20, texture seed = noise
seed = simulator seed, true liver mask). For each liver and each *variant* of the spread
estimate (module constants patched for the call, restored after), the headline's rho per
tile edge against the phantom's true within-tile spread (``benchmarks/_oracle.py``), the
first Gauss-Newton step from rho = 0 (the linearised estimate, no iteration, no clamp), and
the LIC error. Variants are paired (same livers, same simulator seed): ``base`` (the default),
``joint`` (kappa fitted with rho, the default before branch kappa), ``prior`` (with the S0
field's prior on kappa, the default since); the runs of ``twostage`` / ``two2`` (the two-stage option, one /
two joint steps, removed on branch kappa) are in the jsonl; ``nokappa``
(kappa held at 0), ``reps8`` (8 simulator replicates), ``mut3`` (``_MUT_MAX`` 3.0),
``drho005`` / ``drho05`` (forward difference 0.005 / 0.05).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
GEOMETRY = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)


@contextmanager
def _patched(mod, **kw):
    old = {k: getattr(mod, k) for k in kw}
    try:
        for k, v in kw.items():
            setattr(mod, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(mod, k, v)


def _variant(name):
    """Context manager of a named variant (module constants of r2mri._spread_estimate)."""
    import r2mri._spread_estimate as E

    table = {
        "base": {},
        "drho005": dict(_DRHO=0.005),
        "drho05": dict(_DRHO=0.05),
        "tol05": dict(_STEP_TOL=0.05),  # Gauss-Newton run closer to its root (n_steps 6 still caps it)
        "joint": dict(_KAPPA_FROM="joint"),  # before branch kappa: joint (rho, kappa) steps to the root
        "prior": dict(_KAPPA_FROM="prior"),  # kappa's prior from the S0 field (r2mri/_s0_shading.py)
        "mut3": dict(_MUT_MAX=3.0),
    }
    if name in table:
        return _patched(E, **table[name])
    if name == "nokappa":  # rho alone (kappa held at 0): one column of the Jacobian
        gn = E._gauss_newton  # the step in rho alone (``jk=None``)
        return _patched(E, _gauss_newton=lambda v_obs, se_obs, va, se_a, jr, jk, mu_t, te, prior=None: gn(
            v_obs, se_obs, va, se_a, jr, None, mu_t, te))
    if name.startswith("reps"):  # more simulator replicates
        return _reps(int(name[4:]))
    raise KeyError(name)


@contextmanager
def _reps(n):
    yield {"replicates": n}


def one(sd, width, coils, seed, variants, lic=30.0, snr=20.0):
    import r2mri._headline as H
    import r2mri._spread_estimate as E
    from r2mri.calibration import lic_from_r2
    from r2mri.phantom import generate
    from r2mri.stats import pooled_mean_r2

    from ._oracle import true_spread_oracle

    ph = generate(lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=seed, lic_log_sd=sd,
                  lic_correlation_voxels=width, **GEOMETRY)
    sigma, mask = float(ph.summary["noise_sigma"]), ph.truth.liver_mask
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    pooled = pooled_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils)
    rho_true = true_spread_oracle(ph, pooled, sigma, coils, seed).rho_true
    out = {"seed": seed, "rho_true": {str(k): v for k, v in rho_true.items()}}
    est = E._estimate_spread
    for v in variants:
        trace = {"gn": [], "est": []}
        with _variant(v) as kw:
            gn = E._gauss_newton

            def gn_rec(*a, **k):
                r = gn(*a, **k)
                trace["gn"].append((float(r[0][0]), float(r[0][1]), r[1]))
                return r

            def est_rec(*a, **k):
                r = est(*a, **k)
                trace["est"].append({str(s): float(x) for s, x in r[0].items()})
                return r

            E._gauss_newton, H._estimate_spread = gn_rec, est_rec
            try:
                p, c = H.mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils, seed=seed,
                                                   **(kw or {}))
            finally:
                E._gauss_newton, H._estimate_spread = gn, est
        out[v] = {"rho": {str(k): x for k, x in c.rho.items()}, "rho_se": {str(k): x for k, x in c.rho_se.items()},
                  "first_step": trace["gn"][0][0] if trace["gn"] else None, "first_kappa": trace["gn"][0][1] if trace["gn"] else None,
                  "kappa": [g[1] for g in trace["gn"]], "steps": [g[0] for g in trace["gn"]],
                  "est": trace["est"], "unidentified": c.unidentified, "se_corr": c.se_r2_per_s,
                  "lic_err_pct": 100 * (float(lic_from_r2(p.mean_r2_per_s)) / truth - 1)}
    return out


def summary(rows, variants):
    def ms(x):
        x = np.asarray(x, float)
        return f"{x.mean():+.4f} +- {x.std(ddof=1) / np.sqrt(x.size):.4f}"

    lines = []
    for v in variants:
        d = [r[v]["rho"][s] - r["rho_true"][s] for r in rows for s in r[v]["rho"] if int(s) not in r[v]["unidentified"]]
        f = [r[v]["first_step"] - r["rho_true"][min(r["rho_true"], key=lambda s: -int(s))] for r in rows]
        e = [r[v]["lic_err_pct"] for r in rows]
        frac0 = np.mean([all(x < 0 for x in r[v]["rho"].values()) for r in rows])
        lines.append(f"  {v:10s} rho-true {ms(d)}  first step-true(largest edge) {ms(f)}  LIC err % {ms(e)}  "
                     f"share rho<0 {frac0:.2f}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--offset", type=int, default=500)
    ap.add_argument("--cells", default="0:1:8,0:1:1,0.4:4:1,0.4:4:8")
    ap.add_argument("--variants", default="base")
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    variants = a.variants.split(",")
    RESULTS.mkdir(exist_ok=True)
    for cell in a.cells.split(","):
        sd, width, coils = (float(x) for x in cell.split(":"))
        t0 = time.time()
        rows = [one(sd, width, int(coils), s, variants) for s in range(a.offset, a.offset + a.seeds)]
        head = (f"SD {sd:g} width {width:g} coils {int(coils)}, seeds {a.offset}-{a.offset + a.seeds - 1}, "
                f"wall {time.time() - t0:.0f} s, load {os.getloadavg()[0]:.1f} {a.tag}")
        print(head + "\n" + summary(rows, variants), flush=True)
        keep = ("rho", "rho_true", "rho_se", "lic_err_pct", "first_step", "first_kappa")
        rows = [{"seed": r["seed"], "rho_true": r["rho_true"],
                 **{v: {k: x for k, x in r[v].items() if k in keep} for v in variants}} for r in rows]
        with open(RESULTS / "rhobias-rhobias.jsonl", "a") as fh:
            fh.write(json.dumps({"cell": [sd, width, int(coils)], "tag": a.tag, "variants": variants,
                                 "rows": rows}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
