"""Issue 16: how the headline's bias at 30 mg/g, SNR 20 scales with the liver's voxel count.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.hetero_scaling [--quick] [--seeds-scale F]``
(from the repository root). Writes ``benchmarks/results/hetero_scaling.json`` (every liver)
and ``benchmarks/results/hetero_scaling.md``.

One hard cell of ``benchmarks/hetero.py`` (SD 0.4 in log LIC, width 4 voxels, 30 mg/g,
SNR 20, 8 channels unless ``--coils``) on livers of ~1,700 to ~95,000 voxels: the same
anatomy (mm) sampled at 6, 3 or 1.5 mm in-plane and 3 or 11 slices, so the voxel count
grows either by more slices (the same tiles per slice) or by a finer grid (fewer of the
voxels in partial tiles at the liver's edge). Texture seed = noise seed, true liver mask.

Each liver's headline error (LIC of the mean liver R2, %) is split into its parts, in R2
(% of the true mean R2 of the voxels the headline uses) unless said:

- ``ncchi``: the tiles as fitted (``pooled_mean_r2``);
- ``expected``: the same tiles fitted to their *expected* pooled magnitude (each voxel's
  non-central chi mean at its noise-free amplitude, averaged): the mixture bias alone,
  without the fit's noise (``ncchi - expected`` is the tile fits' own noise bias);
- ``box``: the tiles with their Box (1971) term taken off (r2mri/_tile_bias.py);
- ``box_sim``: and the simulated bias of the tiles too noisy for it (r2mri/_tile_bias_sim.py);
- ``oracle``: ``box_sim`` corrected with the phantom's true within-tile spread, one per
  tile edge (benchmarks/_oracle.py, shared with snr20.py and spreadmap.py); ``oracle_tile``: each tile with its
  own true spread (the one-spread-per-edge assumption);
- ``mixture``: the headline (``mixture_corrected_mean_r2``), with the spread estimate;
- ``skipped``: the part of ``box``'s error carried by tiles too noisy for the Box term
  (relative SE > 15 %), in % of the mean R2; ``skipped_after``: the same after their
  simulated bias is taken off;
- ``used``: the true mean R2 of the voxels the headline uses against the whole liver's;
- ``lic_convexity``: mean over seeds of LIC(headline) minus LIC(mean of the headline R2),
  in % of truth (the calibration curve is convex; a noisy R2 reads high in LIC).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
# (name, generate() overrides, seeds): the voxel count grows by slices and by in-plane sampling
GEOMETRIES = [
    ("64x64x3 @6mm", dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3), 96),
    ("64x64x11 @6mm", dict(matrix=(64, 64), pixel_mm=6.0, n_slices=11), 48),
    ("128x128x3 @3mm", dict(matrix=(128, 128), pixel_mm=3.0, n_slices=3), 48),
    ("128x128x11 @3mm", dict(matrix=(128, 128), pixel_mm=3.0, n_slices=11), 24),
    ("256x256x3 @1.5mm", dict(matrix=(256, 256), pixel_mm=1.5, n_slices=3), 24),
    ("256x256x11 @1.5mm", dict(), 12),
]


def one(geometry: dict, seed: int, *, sd=0.4, width=4.0, lic=30.0, snr=20.0, coils=8, texture_seed=None,
        stats_seed=None) -> dict[str, Any]:
    """The headline of one liver and the parts of its error (module docstring). ``seed`` is the
    noise seed; ``texture_seed`` and ``stats_seed`` (estimator and oracle) default to it."""
    import r2mri._headline as H
    from r2mri.calibration import lic_from_r2
    from r2mri.noise import ncchi_mean_interpolated
    from r2mri.phantom import generate
    from r2mri.stats import _tile_fit, pooled_mean_r2

    from ._oracle import true_spread_oracle

    texture_seed = seed if texture_seed is None else texture_seed
    stats_seed = seed if stats_seed is None else stats_seed
    ph = generate(lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=texture_seed, lic_log_sd=sd,
                  lic_correlation_voxels=width, **geometry)
    sigma, mask = float(ph.summary["noise_sigma"]), ph.truth.liver_mask
    te = np.asarray(ph.image.echo_times_s, float)
    truth_lic, truth_r2 = float(ph.summary["lic_of_mean_r2_mg_per_g"]), float(np.mean(ph.truth.r2_per_s[mask]))
    t0 = time.process_time()
    pm, corr = H.mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils, seed=stats_seed)
    cpu = time.process_time() - t0
    pooled = pooled_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils)
    o = true_spread_oracle(ph, pooled, sigma, coils, stats_seed)  # the true-spread oracles (benchmarks/_oracle.py)
    t, tile_true, rho_true, mu_or, mu_ot = o.t, o.tile_true, o.rho_true, o.mu_edge, o.mu_tile
    used = pooled.voxel_tile >= 0
    k = t.k
    wsum = k.sum()
    used_r2 = float(np.sum(k * tile_true) / wsum)

    def mean_of(v):
        return float(np.sum(k * v) / wsum)

    # expected pooled magnitude of each tile (no fit noise): the mixture bias alone
    amp = ph.noise_free.reshape(-1, te.size)[pooled.voxel_index][used].astype(np.float64)
    em, _ = ncchi_mean_interpolated(amp, sigma, coils)
    sums = np.zeros((t.nt, te.size))
    np.add.at(sums, t.tile_of, em)
    r2_exp, _s0, _se, ok_exp = _tile_fit(sums / k[:, None], te, k, sigma, coils)
    r2_exp = np.where(ok_exp, r2_exp, tile_true)
    skipped = t.se_rel > 0.15
    sim = getattr(t, "fit_bias_sim_r2", 0.0)  # the simulated bias of the skipped tiles (mean, s^-1)
    rel = {name: 100 * (v / used_r2 - 1) for name, v in (
        ("ncchi", pooled.mean_r2_per_s), ("expected", mean_of(r2_exp)), ("box", mean_of(t.r2_app) + sim),
        ("box_sim", mean_of(t.r2_app)), ("oracle", mean_of(mu_or)), ("oracle_tile", mean_of(mu_ot)),
        ("mixture", pm.mean_r2_per_s))}
    rel["skipped_after"] = 100 * float(np.sum((k * (t.r2_app - tile_true))[skipped]) / wsum) / used_r2
    rel["skipped"] = rel["skipped_after"] + 100 * sim / used_r2
    rel["used"] = 100 * (used_r2 / truth_r2 - 1)
    return {"seed": seed, "n_voxels": int(mask.sum()), "n_used": int(wsum), "n_tiles": int(t.nt),
            "tile_sizes": {str(s): int(t.sel_of[s].sum()) for s in t.sizes},
            "skipped_voxel_share": float(k[skipped].sum() / wsum),
            "edge_voxel_share": float(k[k < 0.75 * np.max(k)].sum() / wsum),
            "truth_lic": truth_lic, "truth_r2": truth_r2, "used_r2": used_r2,
            "mixture_r2": pm.mean_r2_per_s, "mixture_lic": float(lic_from_r2(pm.mean_r2_per_s)),
            "lic_err_pct": 100 * (float(lic_from_r2(pm.mean_r2_per_s)) / truth_lic - 1),
            "oracle_lic_err_pct": 100 * (float(lic_from_r2(mean_of(mu_or) * truth_r2 / used_r2)) / truth_lic - 1),
            "r2_err_pct": rel, "rho": corr.rho, "rho_se": corr.rho_se, "rho_true": rho_true,
            "unidentified": corr.unidentified, "warnings": corr.warnings, "se_r2_correction": corr.se_r2_per_s,
            "se_r2_measurement": pm.se_r2_per_s, "cpu_s": cpu}


def summarize(rows: list[dict]) -> dict[str, Any]:
    from r2mri.calibration import lic_from_r2

    def ms(x):
        x = np.asarray(x, float)
        return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")

    out: dict[str, Any] = {"n": len(rows), "n_voxels": float(np.mean([r["n_voxels"] for r in rows])),
                           "lic_err_pct": ms([r["lic_err_pct"] for r in rows]),
                           "oracle_lic_err_pct": ms([r["oracle_lic_err_pct"] for r in rows]),
                           "lic_sd_pct": float(np.std([r["lic_err_pct"] for r in rows], ddof=1))}
    for key in rows[0]["r2_err_pct"]:
        out[f"r2_{key}"] = ms([r["r2_err_pct"][key] for r in rows])
    sizes = sorted({s for r in rows for s in r["rho"]})
    for s in sizes:
        d = [r["rho"][s] - r["rho_true"][s] for r in rows if s in r["rho"] and s not in r["unidentified"]]
        if d:
            out[f"rho_err_{s}"] = ms(d)
            out[f"rho_true_{s}"] = float(np.mean([r["rho_true"][s] for r in rows if s in r["rho_true"]]))
    # calibration convexity: mean LIC of the headline vs LIC of its mean R2 (relative to truth)
    rel_r2 = np.array([r["mixture_r2"] / r["truth_r2"] for r in rows])
    lic_t = np.mean([r["truth_lic"] for r in rows])
    r2_t = np.mean([r["truth_r2"] for r in rows])
    out["lic_convexity_pct"] = float(100 * (np.mean([float(lic_from_r2(v * r2_t)) for v in rel_r2])
                                            - float(lic_from_r2(rel_r2.mean() * r2_t))) / lic_t)
    out["skipped_voxel_share"] = float(np.mean([r["skipped_voxel_share"] for r in rows]))
    out["edge_voxel_share"] = float(np.mean([r["edge_voxel_share"] for r in rows]))
    out["warned"] = int(sum(bool(r["warnings"]) for r in rows))
    out["cpu_s"] = float(np.mean([r["cpu_s"] for r in rows]))
    return out


def table(res: dict[str, Any]) -> str:
    from ._common import md_table

    def f(v):
        return f"{v[0]:+.2f} +- {v[1]:.2f}"

    rows = []
    for g in res["geometries"]:
        s = g["summary"]
        rows.append([g["name"], f"{s['n_voxels']:.0f}", s["n"], f(s["lic_err_pct"]), f"{s['lic_sd_pct']:.1f}",
                     f(s["r2_ncchi"]), f(s["r2_expected"]), f(s["r2_box"]), f(s["r2_skipped"]),
                     f(s.get("r2_box_sim", (np.nan, np.nan))), f(s.get("r2_skipped_after", (np.nan, np.nan))),
                     f(s["r2_oracle"]), f(s.get("r2_oracle_tile", (np.nan, np.nan))), f(s["r2_mixture"]), f(s["r2_used"]),
                     " ".join(f"{k[8:]}:{s[k][0]:+.4f}+-{s[k][1]:.4f}" for k in s if k.startswith("rho_err_")),
                     f"{s['lic_convexity_pct']:+.2f}", f"{100 * s['skipped_voxel_share']:.0f} %",
                     f"{100 * s['edge_voxel_share']:.0f} %", f"{s['warned']}/{s['n']}"])
    return md_table(["liver", "voxels", "seeds", "headline LIC err %", "seed SD %", "R2: ncchi %", "expected %",
                     "box %", "skipped tiles %", "box+sim %", "skipped after %", "oracle %", "oracle per tile %", "mixture %", "used voxels %", "rho est - true",
                     "LIC convexity %", "Box-skipped voxels", "edge voxels", "warned"], rows)


def main(argv=None) -> int:
    from ._common import machine_info, write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the two smallest livers, 4 seeds")
    ap.add_argument("--seeds-scale", type=float, default=1.0, help="multiply every geometry's seed count")
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--snr", type=float, default=20.0)
    ap.add_argument("--only", nargs="*", default=None, help="geometry names to run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    geos = GEOMETRIES[:2] if a.quick else GEOMETRIES
    if a.only:
        geos = [g for g in geos if g[0] in a.only]
    name = "hetero_scaling-quick" if a.quick else f"hetero_scaling{'' if a.coils == 8 and a.snr == 20 else f'-c{a.coils}-snr{a.snr:g}'}"
    res: dict[str, Any] = {"machine": machine_info(), "cell": dict(sd=0.4, width=4.0, lic=30.0, snr=a.snr, coils=a.coils),
                           "geometries": []}
    t_start = time.time()
    for gname, geo, n in geos:
        n = 4 if a.quick else max(2, int(round(n * a.seeds_scale)))
        rows = [one(geo, s, snr=a.snr, coils=a.coils) for s in range(n)]
        res["geometries"].append({"name": gname, "geometry": {k: list(v) if isinstance(v, tuple) else v
                                                               for k, v in geo.items()},
                                  "summary": summarize(rows), "livers": rows})
        res["wall_s"] = time.time() - t_start
        write_json(a.out / f"{name}.json", res)
        (a.out / f"{name}.md").write_text(f"# {__doc__.splitlines()[0]}\n\n{table(res)}\n")
        print(f"[{time.time() - t_start:.0f}s] {gname}: " + table({"geometries": [res['geometries'][-1]]})
              .splitlines()[-1], flush=True)
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
