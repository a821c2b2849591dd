"""Issue 16: small livers at 30 mg/g, SNR 20 — where the headline's error comes from.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.small20 [--seeds N] [--mc-livers N]``
(from the repository root). Writes ``benchmarks/results/small20.json`` and ``small20.md``.

Livers: ``benchmarks.hetero``'s 64 x 64 x 3 at 6 mm (~1,700 voxels), 30 mg/g, SNR 20,
true liver mask. Seeds (benchmarks/_seeds.py): every (cell, replicate) has its own noise,
texture and estimator seed (``numpy.random.SeedSequence`` over SD, width, LIC, SNR, channels
and the replicate; the simulators' own draws are sub-streams of the estimator seed);
``--legacy-seeds`` gives the scheme before branch seedmix (texture seed = noise seed =
simulator seed = replicate number in every cell, and ``1000 + r`` / ``2000 + r`` /
``1000 r + j`` for the oracles and simulators) to re-make stored results. Replicate numbers
are what ``--seeds``, ``--offset`` and ``--fresh`` count; paired designs (kappa variants,
S0 textures) share a replicate's seeds.

1. *Decomposition* (``hetero_scaling.one``), in % of the true mean R2 of the voxels used:
   ``A`` = the tile fits' own noise bias left after the Box and simulated terms (the tiles
   as corrected minus the same tiles fitted to their expected magnitude), ``B`` = the
   mixture inversion with the phantom's true spread against that expected fit, ``C`` = the
   spread estimate (headline minus the true-spread oracle); the headline is A + B + C.
2. *The fit bias by class of tiles* (:func:`fit_bias_classes`): tiles whose own relative
   SE of R2 is <= 15 % and above (the classes the code used before branch small20; it now
   chooses by the SE at the tiles' shrunk states), each class's raw bias (tile fit minus
   expected-magnitude fit), what was taken off, what is left, and the bias simulated at
   each tile's true (expected-fit) state as an oracle. These classes are selected by the
   tiles' own noise (a tile reading low has a smaller SE), so each class carries a
   selection bias of its own; their sum, A, is what the headline sees.
3. *The simulator's Monte Carlo error* (:func:`draw_sensitivity`): the same livers with
   other simulator seeds (independent per liver) and with the extra channels drawn as
   normals (before) or as one chi-square (now): per-liver SD over simulator seeds, and
   the paired mean difference of the two draws.
4. ``--fresh OFFSET``: the decomposition on other livers (replicates OFFSET.. instead of
   0..N-1; with ``--legacy-seeds`` the cells share those seeds), and for the uniform one-channel cell :func:`voxel_oracle` (the tile fits'
   realised noise bias against its expectation from the same voxels with fresh noise).
6. ``--kappa CELLS``: :func:`kappa_designs`, the designs of the spread estimate's kappa (branch
   kappa): ``joint`` (rho and kappa fitted together), ``prior`` (the same with a normal prior
   on kappa from the S0 field, r2mri/_s0_shading.py; the default), paired on the same livers (replicates ``--offset``..), headline and 95 %
   interval of ``liver_statistics`` (true mask), rho against the phantom's true spread; every
   liver appended to ``results/small20-kappa.jsonl`` (runs ``run1``, ``run2``, ``full20``, ``full50``
   also hold ``shading``, kappa held at the field's value, and ``run1`` ``boot8``, an 8-replicate
   parametric-bootstrap bias correction of rho: both measured, then removed from the code).
   ``--full`` runs them on full-size livers.
   ``--s0 LOGSD:CORR,...`` adds the phantom's fine S0 texture (r2mri/phantom/_s0_texture.py), each in
   turn; ``--s0-table TAG`` prints the designs paired against no S0 texture (:func:`s0_table`);
   ``--s0-resid`` whether the tiles' S0 about the prior's plane sees it (:func:`s0_residual`).
   Designs of the guard on the prior (branch s0guard, r2mri/_kappa_guard.py; :func:`_kappa_variant`):
   ``fbZ``, ``widZ``, ``fb3c`` (tags ``s0guard``, ``s0guard-spot``, ``s0guard-fb3``, ``s0guard-medium``,
   ``s0guard-full2``); the guard is off by default (measured, not shipped).
5. ``--cpu``: :func:`cpu_full_size`, the estimator's CPU on full-size livers with the
   normals / chi-square draw and the noisy tiles at their shrunk / matched states, in one
   process (printed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
GEOMETRY = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
CELLS = [(0.4, 4.0, 1), (0.4, 4.0, 8), (0.4, 8.0, 1), (0.4, 8.0, 8), (0.4, 1.0, 8), (0.0, 1.0, 1), (0.0, 1.0, 8)]


def _liver(sd, width, coils, rep, legacy, lic=30.0, snr=20.0, geometry=None, **extra):
    """Phantom of replicate ``rep`` of a cell and its seeds (module docstring)."""
    from r2mri.phantom import generate

    from ._seeds import cell_seeds

    s = cell_seeds("small20", (sd, width, lic, snr, coils), rep, legacy)
    ph = generate(lic=lic, snr=snr, coils=coils, seed=s.noise, texture_seed=s.texture, lic_log_sd=sd,
                  lic_correlation_voxels=width if sd > 0 else 0.0, **(GEOMETRY if geometry is None else geometry),
                  **extra)
    return ph, s


def _sub(s, k: int, legacy_value: int, legacy: bool) -> int:
    """Seed ``k`` of a simulator of the liver with seeds ``s`` (``legacy_value`` in the old scheme)."""
    from ._seeds import substream

    return legacy_value if legacy else substream(s.stats, k)


def _ms(x) -> tuple[float, float]:
    x = np.asarray(x, float)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")


def decompose(sd, width, coils, seeds, offset=0, legacy=False) -> dict[str, Any]:
    """Headline LIC error and its parts A, B, C (module docstring) over ``seeds`` livers
    (seeds ``offset`` to ``offset + seeds - 1``)."""
    from ._seeds import cell_seeds
    from .hetero_scaling import one

    ss = [cell_seeds("small20", (sd, width, 30.0, 20.0, coils), r, legacy) for r in range(offset, offset + seeds)]
    rows = [one(GEOMETRY, s.noise, sd=sd, width=width, lic=30.0, snr=20.0, coils=coils, texture_seed=s.texture,
                stats_seed=s.stats) for s in ss]
    e = {k: np.array([r["r2_err_pct"][k] for r in rows]) for k in rows[0]["r2_err_pct"]}
    a = e["box_sim"] - e["expected"]
    return {"lic_err_pct": _ms([r["lic_err_pct"] for r in rows]),
            "oracle_lic_err_pct": _ms([r["oracle_lic_err_pct"] for r in rows]),
            "A_fit_bias": _ms(a), "B_inversion": _ms(e["oracle"] - a), "C_spread": _ms(e["mixture"] - e["oracle"]),
            "r2_mixture": _ms(e["mixture"]),
            "rho_err": _ms([r["rho"][s] - r["rho_true"][s] for r in rows for s in r["rho"] if s not in r["unidentified"]]),
            "skipped_share": float(np.mean([r["skipped_voxel_share"] for r in rows])),
            "warned": int(sum(bool(r["warnings"]) for r in rows)), "n": len(rows),
            "lic_err_each": [r["lic_err_pct"] for r in rows]}


def fit_bias_classes(sd, width, coils, seeds, legacy=False) -> dict[str, Any]:
    """Per class of tiles (Box / simulated): raw fit bias, taken off, left, true-state oracle (% of R2)."""
    import r2mri._spread_estimate as E
    from r2mri._tile_bias_sim import simulated_tile_bias
    from r2mri.noise import ncchi_mean_interpolated
    from r2mri.stats import _tile_fit, pooled_mean_r2

    acc: dict[str, list] = {}
    for rep in range(seeds):
        ph, ss = _liver(sd, width, coils, rep, legacy)
        sigma, mask = float(ph.summary["noise_sigma"]), ph.truth.liver_mask
        te = np.asarray(ph.image.echo_times_s, float)
        pooled = pooled_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils)
        t = E._tile_set(ph.image, pooled, sigma, coils, ss.stats)
        used = pooled.voxel_tile >= 0
        w = t.k / t.k.sum()
        r_true = ph.truth.r2_per_s.reshape(-1)[pooled.voxel_index].astype(float)[used]
        f = 100 * t.k.sum() / r_true.sum()
        amp = ph.noise_free.reshape(-1, te.size)[pooled.voxel_index][used].astype(np.float64)
        sums = np.zeros((t.nt, te.size))
        np.add.at(sums, t.tile_of, ncchi_mean_interpolated(amp, sigma, coils)[0])
        r2_exp, s0_exp, _se, _ok = _tile_fit(sums / t.k[:, None], te, t.k, sigma, coils)
        b_true = simulated_tile_bias(r2_exp, s0_exp, te, t.k, sigma, coils, seed=_sub(ss, 1, 1000 + rep, legacy),
                                     reps=64)[0]
        raw = pooled.tile_r2_per_s
        for name, sel in (("box", t.se_rel <= 0.15), ("sim", t.se_rel > 0.15)):
            for key, v in (("share", w * 100 / f), ("raw", w * (raw - r2_exp)), ("taken_off", w * (raw - t.r2_app)),
                           ("left", w * (t.r2_app - r2_exp)), ("oracle_bias", w * b_true)):
                acc.setdefault(f"{name}_{key}", []).append(f * float(np.sum(v[sel])))
    return {k: _ms(v) for k, v in acc.items()}


def voxel_oracle(sd, width, coils, seeds, offset=0, reps=64, legacy=False) -> dict[str, Any]:
    """The tile fits' realised noise bias (fit minus expected-magnitude fit, % of R2) against
    its expectation: the same voxels' noise-free amplitudes with ``reps`` fresh noise draws,
    fitted with the same tiles (the bias the corrections should take off)."""
    import r2mri._spread_estimate as E
    from r2mri.noise import ncchi_mean_interpolated
    from r2mri.stats import _tile_fit, pooled_mean_r2

    real, expected = [], []
    for rep in range(offset, offset + seeds):
        ph, ss = _liver(sd, width, coils, rep, legacy)
        sigma, mask = float(ph.summary["noise_sigma"]), ph.truth.liver_mask
        te = np.asarray(ph.image.echo_times_s, float)
        pooled = pooled_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils)
        t = E._tile_set(ph.image, pooled, sigma, coils, ss.stats)
        used = pooled.voxel_tile >= 0
        w = t.k / t.k.sum()
        f = 100 * t.k.sum() / ph.truth.r2_per_s.reshape(-1)[pooled.voxel_index].astype(float)[used].sum()
        amp = ph.noise_free.reshape(-1, te.size)[pooled.voxel_index][used].astype(np.float64)
        sums = np.zeros((t.nt, te.size))
        np.add.at(sums, t.tile_of, ncchi_mean_interpolated(amp, sigma, coils)[0])
        r2_exp = _tile_fit(sums / t.k[:, None], te, t.k, sigma, coils)[0]
        rng = np.random.default_rng(_sub(ss, 2, 2000 + rep, legacy))
        tot, cnt = np.zeros(t.nt), np.zeros(t.nt)
        for _ in range(reps):
            m = E._ncchi_draw(amp, sigma, coils, rng)
            ss = np.zeros((t.nt, te.size))
            np.add.at(ss, t.tile_of, m)
            rf, _s, _se, ok = _tile_fit(ss / t.k[:, None], te, t.k, sigma, coils)
            ok &= np.isfinite(rf)
            tot += np.where(ok, rf, 0.0)
            cnt += ok
        real.append(f * float(np.sum(w * (pooled.tile_r2_per_s - r2_exp))))
        expected.append(f * float(np.sum(w * (tot / np.maximum(cnt, 1) - r2_exp))))
    return {"realised": _ms(real), "expected": _ms(expected), "seeds": [offset, offset + seeds]}


def draw_sensitivity(sd, width, coils, livers, sims, legacy=False) -> dict[str, Any]:
    """Headline LIC error over simulator seeds (legacy ``1000 liver + j``) with both noise draws."""
    import r2mri._headline as H
    import r2mri._spread_estimate as E
    from r2mri.calibration import lic_from_r2

    draws = {"chi-square": E._ncchi_draw, "normals": E._ncchi_draw_normals}
    err = {d: np.zeros((livers, sims)) for d in draws}
    cpu = {d: 0.0 for d in draws}
    try:
        for i in range(livers):
            ph, ss = _liver(sd, width, coils, i, legacy)
            sigma, mask, tr = float(ph.summary["noise_sigma"]), ph.truth.liver_mask, ph.summary["lic_of_mean_r2_mg_per_g"]
            for j in range(sims):
                for d, fn in draws.items():
                    E._ncchi_draw = fn
                    t0 = time.process_time()
                    p, _c = H.mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils,
                                                            seed=_sub(ss, 10 + j, 1000 * i + j, legacy))
                    cpu[d] += time.process_time() - t0
                    err[d][i, j] = 100 * (float(lic_from_r2(p.mean_r2_per_s)) / tr - 1)
    finally:
        E._ncchi_draw = draws["chi-square"]
    out: dict[str, Any] = {"livers": livers, "sims": sims}
    for d in draws:
        out[d] = {"mean": _ms(err[d].mean(1)), "sd_between_livers": float(err[d][:, 0].std(ddof=1)),
                  "sd_over_sim_seeds": float(np.sqrt(np.mean(err[d].var(1, ddof=1)))), "cpu_s": cpu[d] / (livers * sims)}
    out["paired_chi_minus_normals"] = _ms((err["chi-square"] - err["normals"]).mean(1))
    return out


def cpu_full_size() -> None:
    """Process time of ``mixture_corrected_mean_r2`` on full-size livers (SD 0.4 width 4,
    30 mg/g, seed 1), best of 2, before / chi-square draw only / indirect inference only /
    after, in one process (printed with the load average)."""
    import os

    import r2mri._headline as H
    import r2mri._spread_estimate as E
    import r2mri._tile_bias_sim as TB
    from r2mri.calibration import lic_from_r2
    from r2mri.phantom import generate

    chi, normals, evals, by_shrunk = E._ncchi_draw, E._ncchi_draw_normals, TB._II_EVALS, E._CLASS_AT_SHRUNK
    try:
        for snr, coils in ((20.0, 8), (50.0, 8), (20.0, 1)):
            ph = generate(lic=30.0, snr=snr, coils=coils, seed=1, texture_seed=1, lic_log_sd=0.4,
                          lic_correlation_voxels=4.0)
            sigma, mask, tr = float(ph.summary["noise_sigma"]), ph.truth.liver_mask, ph.summary["lic_of_mean_r2_mg_per_g"]
            H.mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils, seed=1)  # warm
            res = {}
            for name, draw, new_states in (("before", normals, False), ("chi draw", chi, False),
                                           ("II only", normals, True), ("after", chi, True)):
                E._ncchi_draw, TB._II_EVALS, E._CLASS_AT_SHRUNK = draw, (evals if new_states else 1), new_states
                ts = []
                for _ in range(2):
                    t0 = time.process_time()
                    p, _c = H.mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils, seed=1)
                    ts.append(time.process_time() - t0)
                res[name] = (min(ts), 100 * (float(lic_from_r2(p.mean_r2_per_s)) / tr - 1))
            print(f"SNR {snr:g}, {coils} channels, load {os.getloadavg()[0]:.1f}: " + "; ".join(
                f"{k} {v[0]:.2f} s (x{v[0] / res['before'][0]:.2f}, LIC {v[1]:+.2f} %)" for k, v in res.items()), flush=True)
    finally:
        E._ncchi_draw, TB._II_EVALS, E._CLASS_AT_SHRUNK = chi, evals, by_shrunk


def _kappa_variant(name: str) -> dict:
    """Module settings of a design: ``joint``, ``prior`` (the default: no guard), and the guards on the prior (r2mri/_kappa_guard.py): ``fbZ`` (fall back to the joint fit
    above Z combined SEs, at any SE of the data's kappa), ``widZ`` (widen), ``fb3c`` = ``shipped`` (``fb3``
    where the data's kappa has an SE <= 0.005: the candidate, measured and not shipped)."""
    if name in ("fb3c", "shipped"):  # the candidate: fallback at 3 SE where the data's kappa SE <= 0.005 (called
        # "shipped" in the runs tagged s0guard-medium / s0guard-full2; measured, not shipped: _GUARD is "none")
        return dict(_KAPPA_FROM="prior", G_GUARD="fallback", G_GUARD_Z=3.0, G_SE_MAX=0.005)
    if name.startswith(("fb", "wid")):
        mode = "fallback" if name.startswith("fb") else "widen"
        return dict(_KAPPA_FROM="prior", G_GUARD=mode, G_GUARD_Z=float(name.lstrip("fbwid")), G_SE_MAX=np.inf)
    return {"joint": dict(_KAPPA_FROM="joint"), "prior": dict(_KAPPA_FROM="prior", G_GUARD="none")}[name]


def _set_variant(E, G, settings: dict) -> None:
    for k, x in settings.items():
        setattr(G, k[1:], x) if k.startswith("G_") else setattr(E, k, x)


def kappa_designs(cells, seeds, offset, variants, lic=30.0, snr=20.0, geometry=None, tag="", s0=(0.0, 1.0),
                  legacy=False) -> None:
    """The kappa designs (module docstring, item 6), paired per liver; printed and appended to
    ``results/small20-kappa.jsonl``. ``s0 = (log-SD, correlation voxels)``: the phantom's fine
    S0 texture (r2mri/phantom/_s0_texture.py; log-SD 0: none)."""
    import json
    import os

    import r2mri._kappa_guard as G
    import r2mri._spread_estimate as E
    from r2mri.stats import pooled_mean_r2

    from ._oracle import true_spread_oracle
    from .hetero_full import one as full_one

    size = "full" if geometry is not None and geometry != GEOMETRY else "small"
    geometry = dict(GEOMETRY if geometry is None else geometry)
    if s0[0] > 0:  # the same replicate's seeds as without S0 texture: paired
        geometry.update(s0_log_sd=float(s0[0]), s0_correlation_voxels=float(s0[1]))
    old = {"_KAPPA_FROM": E._KAPPA_FROM, "G_GUARD": G._GUARD, "G_GUARD_Z": G._GUARD_Z, "G_SE_MAX": G._SE_MAX}
    for sd, width, coils in cells:
        t0 = time.time()
        rows = []
        for seed in range(offset, offset + seeds):
            ph, ss = _liver(sd, width, coils, seed, legacy, lic, snr, geometry)
            sigma = float(ph.summary["noise_sigma"])
            pooled = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=sigma, coils=coils)
            rho_true = true_spread_oracle(ph, pooled, sigma, coils, ss.stats).rho_true
            row = {"seed": seed, "seeds_noise_texture_stats": list(ss),
                   "rho_true": {str(k): float(v) for k, v in rho_true.items()}}
            for v in variants:
                try:
                    _set_variant(E, G, _kappa_variant(v))
                    r = full_one(sd, width, lic, snr, coils, seed, geometry, seeds=ss)
                finally:
                    _set_variant(E, G, old)
                row[v] = {k: r[k] for k in ("err_pct", "covered", "half_width_pct", "rho", "rho_se", "unidentified",
                                            "cpu_s")}
            rows.append(row)
        print(f"SD {sd:g} width {width:g} coils {coils} LIC {lic:g} SNR {snr:g} S0 log-SD {s0[0]:g} corr {s0[1]:g}, "
              f"seeds {offset}-{offset + seeds - 1}, "
              f"wall {time.time() - t0:.0f} s, load {os.getloadavg()[0]:.1f} {tag}", flush=True)
        for v in variants:
            e = np.array([r[v]["err_pct"] for r in rows])
            d = [r[v]["rho"][s] - r["rho_true"][s] for r in rows for s in (r[v]["rho"] or {}) if s in r["rho_true"]]
            pair = e - np.array([r[variants[0]]["err_pct"] for r in rows])
            print(f"  {v:9s} LIC err {_ms(e)[0]:+.2f} +- {_ms(e)[1]:.2f} % (SD {e.std(ddof=1):.2f}), paired vs "
                  f"{variants[0]} {_ms(pair)[0]:+.2f} +- {_ms(pair)[1]:.2f}, covered "
                  f"{sum(r[v]['covered'] for r in rows)}/{len(rows)}, half-width "
                  f"{np.median([r[v]['half_width_pct'] for r in rows]):.1f} %, rho-true {_ms(d)[0]:+.4f} +- "
                  f"{_ms(d)[1]:.4f} (SD {np.std(d, ddof=1):.4f}), CPU {np.mean([r[v]['cpu_s'] for r in rows]):.2f} s",
                  flush=True)
        with open(RESULTS / "small20-kappa.jsonl", "a") as fh:
            fh.write(json.dumps({"cell": [sd, width, coils], "lic": lic, "snr": snr, "tag": tag, "s0": list(s0),
                                 "legacy_seeds": legacy,
                                 "geometry": size, "variants": variants,
                                 "rows": rows}) + "\n")


def s0_table(tag: str = "s0tex", size: str = "small") -> str:
    """The kappa designs against the phantom's fine S0 texture (``--s0``): per cell and S0 texture,
    each design's headline LIC error, its change paired on the same livers against no S0 texture
    (same seeds, same LIC texture and noise), 95 % coverage and rho - true, from ``results/small20-kappa.jsonl``."""
    import json

    from ._common import md_table

    runs = [json.loads(x) for x in (RESULTS / "small20-kappa.jsonl").read_text().splitlines() if x.strip()]
    runs = [r for r in runs if r.get("tag") == tag and r["geometry"] == size and "s0" in r]
    base = {(tuple(r["cell"]), r["rows"][0]["seed"]): r for r in runs if r["s0"][0] == 0}
    out = []
    for r in sorted(runs, key=lambda r: (r["cell"][0], r["cell"][2], r["s0"][1], r["s0"][0])):
        b = base.get((tuple(r["cell"]), r["rows"][0]["seed"]))
        for v in r["variants"]:
            e = np.array([x[v]["err_pct"] for x in r["rows"]])
            cells = [f"{r['cell'][0]:g} / {r['cell'][1]:g}", r["cell"][2], f"{r['s0'][0]:g}", f"{r['s0'][1]:g}", v,
                     len(e), "{:+.2f} +- {:.2f}".format(*_ms(e))]
            if b is not None and len(b["rows"]) == len(e) and v in b["variants"]:
                cells.append("{:+.2f} +- {:.2f}".format(*_ms(e - np.array([x[v]["err_pct"] for x in b["rows"]]))))
            else:
                cells.append("")
            d = [x[v]["rho"][k] - x["rho_true"][k] for x in r["rows"] for k in (x[v]["rho"] or {}) if k in x["rho_true"]]
            cells += [f"{sum(x[v]['covered'] for x in r['rows'])}/{len(e)}",
                      f"{np.median([x[v]['half_width_pct'] for x in r['rows']]):.1f}", "{:+.4f} +- {:.4f}".format(*_ms(d))]
            out.append(cells)
    return md_table(["LIC SD / width", "coils", "S0 log-SD", "S0 corr vox", "design", "livers", "LIC err %",
                     "paired vs no S0 texture %", "covered", "half-width %", "rho - true"], out)


def s0_residual(settings, cells, seeds, offset=500, legacy=False) -> None:
    """Can the tiles see the fine S0 texture? Per liver, the voxel-weighted RMS of the tiles' log S0
    (bias-corrected intercepts) around the plane the prior's surface fits, the prior's kappa and SE
    (r2mri/_s0_shading.py), and the true within-tile relative variance of S0 (from the phantom's
    S0 truth, pooled over the tiles as the prior pools it); printed, paired on the same livers."""
    import os

    import r2mri._spread_estimate as E
    from r2mri._s0_shading import _design, field_kappa
    from r2mri.stats import pooled_mean_r2

    for sd, width, coils in cells:
        for s0 in settings:
            rms, kap, kse, ktrue = [], [], [], []
            for seed in range(offset, offset + seeds):
                extra = dict(s0_log_sd=s0[0], s0_correlation_voxels=s0[1]) if s0[0] > 0 else {}
                ph, ss = _liver(sd, width, coils, seed, legacy, **extra)
                sigma = float(ph.summary["noise_sigma"])
                pooled = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=sigma, coils=coils)
                t = E._tile_set(ph.image, pooled, sigma, coils, ss.stats)
                keep = pooled.voxel_tile >= 0
                xyz = np.stack(np.unravel_index(pooled.voxel_index[keep], ph.image.data.shape[:3]), 1).astype(float)
                u = xyz[:, np.ptp(xyz, 0) > 0]
                u = (u - u.mean(0)) / (np.ptp(u, 0) / 2)
                cen = np.stack([np.bincount(t.tile_of, weights=u[:, j], minlength=t.nt) for j in range(u.shape[1])], 1)
                cen /= t.k[:, None]
                a, w = _design(cen, 1), np.sqrt(t.k)
                ls = np.log(t.s0_app)
                coef = np.linalg.lstsq(a * w[:, None], ls * w, rcond=None)[0]
                rms.append(float(np.sqrt(np.sum(t.k * (ls - a @ coef) ** 2) / (t.k.sum() * (1 - a.shape[1] / t.nt)))))
                kp, se = field_kappa(xyz, t.tile_of, t.k, t.s0_app, t.sel_of)
                edge = max(t.sizes, key=lambda e: t.k[t.sel_of[e]].sum())
                kap.append(kp[edge])
                kse.append(se[edge])
                s0v = ph.truth.s0.reshape(-1)[pooled.voxel_index[keep]]
                m = np.bincount(t.tile_of, weights=s0v, minlength=t.nt) / t.k
                sel = t.sel_of[edge][t.tile_of]
                ktrue.append(float(np.sum((s0v[sel] / m[t.tile_of][sel] - 1) ** 2) / np.sum(t.k[t.sel_of[edge]] - 1)))
            print(f"SD {sd:g} width {width:g} coils {coils} S0 {s0[0]:g}:{s0[1]:g}: tile log S0 RMS about the plane "
                  f"{np.mean(rms):.4f} (SD {np.std(rms, ddof=1):.4f}); kappa prior {np.mean(kap):.5f} +- SE "
                  f"{np.mean(kse):.5f}; true within-tile kappa {np.mean(ktrue):.5f} (load {os.getloadavg()[0]:.1f})",
                  flush=True)


def table(res: dict[str, Any]) -> str:
    from ._common import md_table

    def f(v):
        return f"{v[0]:+.2f} +- {v[1]:.2f}"

    rows = [[c["sd"], c["width"], c["coils"], c["d"]["n"], f(c["d"]["lic_err_pct"]), f(c["d"]["oracle_lic_err_pct"]),
             f(c["d"]["A_fit_bias"]), f(c["d"]["B_inversion"]), f(c["d"]["C_spread"]),
             f"{c['d']['rho_err'][0]:+.4f} +- {c['d']['rho_err'][1]:.4f}", f"{100 * c['d']['skipped_share']:.0f} %",
             f(c["cls"]["box_left"]), f(c["cls"]["sim_raw"]), f(c["cls"]["sim_taken_off"]), f(c["cls"]["sim_oracle_bias"]),
             f(c["cls"]["sim_left"])] for c in res["cells"]]
    text = md_table(["SD", "width", "coils", "livers", "LIC err %", "true-spread oracle LIC %", "A fit bias % R2",
                     "B inversion % R2", "C spread % R2", "rho est - true", "own SE > 15 %: voxels", "own SE <= 15 %: left % R2",
                     "own SE > 15 %: raw % R2", "taken off", "true-state oracle", "left"], rows)
    m = res.get("mc")
    if m:
        text += "\n\n" + md_table(["draw", "mean LIC err %", "SD between livers %", "SD over simulator seeds %",
                                   "CPU s per call"],
                                  [[d, f(m[d]["mean"]), f"{m[d]['sd_between_livers']:.2f}",
                                    f"{m[d]['sd_over_sim_seeds']:.2f}", f"{m[d]['cpu_s']:.3f}"]
                                   for d in ("normals", "chi-square")])
        text += f"\n\npaired chi-square - normals: {f(m['paired_chi_minus_normals'])} % ({m['livers']} livers x {m['sims']} simulator seeds)"
    return text


def main(argv=None) -> int:
    from ._common import machine_info, write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=96)
    ap.add_argument("--mc-livers", type=int, default=24)
    ap.add_argument("--cells", type=int, default=len(CELLS), help="the first N cells only")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--table-only", action="store_true", help="rewrite small20.md from small20.json")
    ap.add_argument("--cpu", action="store_true", help="only the full-size CPU comparison (printed)")
    ap.add_argument("--fresh", type=int, default=0, metavar="OFFSET",
                    help="only the decomposition and the voxel oracle on seeds OFFSET.. (printed, not stored)")
    ap.add_argument("--kappa", default="", metavar="SD:WIDTH:COILS,...", help="only the kappa designs (item 6)")
    ap.add_argument("--variants", default="joint,prior")
    ap.add_argument("--offset", type=int, default=500)
    ap.add_argument("--lic", type=float, default=30.0)
    ap.add_argument("--snr", type=float, default=20.0)
    ap.add_argument("--full", action="store_true", help="--kappa on full-size livers (generate() defaults)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--legacy-seeds", action="store_true",
                    help="texture seed = noise seed = simulator seed = replicate number in every cell (runs "
                         "before branch seedmix, whose cells shared their noise and texture)")
    ap.add_argument("--s0", default="0:1", metavar="LOGSD:CORR,...",
                    help="--kappa with the phantom's fine S0 texture (log-SD : correlation voxels), each in turn")
    ap.add_argument("--s0-table", default="", metavar="TAG", help="print the S0-texture table of runs tagged TAG")
    ap.add_argument("--s0-resid", action="store_true", help="with --kappa CELLS and --s0: s0_residual (printed)")
    a = ap.parse_args(argv)
    if a.s0_resid:
        s0s = [tuple(float(x) for x in c.split(":")) for c in a.s0.split(",")]
        cells = [(float(c.split(":")[0]), float(c.split(":")[1]), int(c.split(":")[2])) for c in a.kappa.split(",")]
        s0_residual(s0s, cells, a.seeds, a.offset, a.legacy_seeds)
        return 0
    if a.s0_table:
        print(s0_table(a.s0_table, "full" if a.full else "small"))
        return 0
    if a.kappa:
        cells = [(float(c.split(":")[0]), float(c.split(":")[1]), int(c.split(":")[2])) for c in a.kappa.split(",")]
        for s0 in [tuple(float(x) for x in c.split(":")) for c in a.s0.split(",")]:
            kappa_designs(cells, a.seeds, a.offset, a.variants.split(","), a.lic, a.snr, {} if a.full else None, a.tag,
                          s0, a.legacy_seeds)
        return 0
    if a.table_only:
        import json

        res = json.loads((a.out / "small20.json").read_text())
        (a.out / "small20.md").write_text(f"# {__doc__.splitlines()[0]}\n\n{table(res)}\n")
        return 0
    if a.cpu:
        cpu_full_size()
        return 0
    if a.fresh:
        for sd, width, coils in CELLS[:a.cells]:
            d = decompose(sd, width, coils, a.seeds, a.fresh, a.legacy_seeds)
            print(sd, width, coils, {k: v for k, v in d.items() if k != "lic_err_each"}, flush=True)
            if sd == 0 and coils == 1:
                print("  voxel oracle", voxel_oracle(sd, width, coils, a.seeds, a.fresh, legacy=a.legacy_seeds),
                      flush=True)
        return 0
    from ._seeds import scheme

    res: dict[str, Any] = {"machine": machine_info(), "seeds": a.seeds, "seeding": scheme(a.legacy_seeds),
                           "legacy_seeds": a.legacy_seeds, "cells": []}
    t0 = time.time()
    for sd, width, coils in CELLS[:a.cells]:
        res["cells"].append({"sd": sd, "width": width, "coils": coils,
                             "d": decompose(sd, width, coils, a.seeds, legacy=a.legacy_seeds),
                             "cls": fit_bias_classes(sd, width, coils, a.seeds, a.legacy_seeds)})
        print(f"[{time.time() - t0:.0f}s] sd {sd} width {width:g} coils {coils}: "
              f"{res['cells'][-1]['d']['lic_err_pct']}", flush=True)
    if a.mc_livers:
        res["mc"] = draw_sensitivity(0.4, 4.0, 8, a.mc_livers, 3, a.legacy_seeds)
    write_json(a.out / "small20.json", res)
    text = table(res)
    (a.out / "small20.md").write_text(f"# {__doc__.splitlines()[0]}\n\n{text}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
