"""Heterogeneous livers on the GRE (R2*) route (issue 16): bias and 95 % coverage of the headline.

Run: ``python -m benchmarks.gre_hetero [--quick] [--seeds N] [--coils 1,8] [--snr 20,50]``
(``NUMBA_NUM_THREADS=1`` on a shared machine). Writes ``benchmarks/results/gre_hetero.json``
and ``.md`` and prints the summary quoted in benchmarks/README.md and docs/fatwater.md.

Phantoms: ``r2mri.phantom.generate("gre-1.5t-fat15-lic3.2")`` (1.5 T, 6 echoes TE 1.2 + 1.0 k
ms, PDFF 15 %, R2* through Hernando 2022, no B0 field) at 64 x 64 x 3 voxels of 6 mm,
texture ``lic_log_sd`` x ``lic_correlation_voxels`` (texture seed = noise seed). ROI = the
true liver mask. Truth = ``truth.json["lic_of_mean_r2_mg_per_g"]`` (LIC of the mean liver
R2*). Each run: the voxel-wise fat-water fit, then ``liver_statistics`` with

- ``tile-fw-ncchi`` (before): the 4 x 4 fat-water tiles as fitted (``estimator="tile-ncchi"``);
- ``tile-fw-mixture`` (after, the default): the tiles corrected for the spread of R2*
  inside them (r2mri/_gre_mixture.py), the interval widened by the correction's error;
- ``oracle``: the same tiles corrected with each tile's *true* spread (from the phantom's
  R2* map, same inversion): what the correction gives when the spread is known
  (its interval is the uncorrected one shifted, for reference only).

Also the heterogeneity warning (fraction of runs with a ``heterogeneity:`` warning).

``--roi``: the *automatic* ROI on the coarse texture instead (``r2mri.analyze``, no mask;
SD 0.4 in log LIC over 8 voxels, 128 x 128 x 5 voxels of 3 mm as ``r2mri demo``, textures
1-8 = noise seeds, LIC 1 and 5 mg/g, SNR 20/50, 1/8 channels): ``before`` = no parenchyma
floor for R2* curves (the code of main a408d82: no extension, no R2* fluid/spared rules),
``after`` = this code (r2mri/_r2star_floor.py, r2mri/_roi_patches.py). Per run: the
fraction of the liver in the ROI, the headline error, whether the 95 % interval holds the
truth, non-liver voxels in the ROI by phantom label, and the reading-changing ROI warnings.
Writes ``results/gre_hetero_roi.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SPEC = "gre-1.5t-fat15-lic3.2"
GEOMETRY = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
TEXTURES = [(0.0, 1.0), (0.2, 1.0), (0.2, 4.0), (0.2, 8.0), (0.4, 1.0), (0.4, 4.0), (0.4, 8.0)]
LICS = [1.0, 7.0, 30.0]
DESIGNS = ["tile-fw-ncchi", "tile-fw-mixture", "oracle"]


def _oracle(ph, image, pooled, sigma, coils):
    from r2mri._gre_mixture import invert_fw_mixture

    t = pooled.fw_tiles
    ii, jj, kk = t["voxels"]
    rt = ph.truth.r2_per_s[ii, jj, kk]
    inv = t["tile_of"]
    nt = int(inv.max()) + 1
    n = np.bincount(inv, minlength=nt)
    m1 = np.bincount(inv, rt, nt) / n
    rho_own = (np.bincount(inv, rt * rt, nt) / n - m1**2) / m1**2
    k = t["k"]
    pc = invert_fw_mixture(t["params"], k, rho_own[t["kept"]], t["te"], t["cr"], t["ci"], sigma, coils, "gamma",
                           t["fat_floor"], t["r2_max"])
    return float(np.sum(k * pc[:, 2]) / k.sum())


def one_run(sd, scale, lic, snr, coils, seed) -> dict[str, Any]:
    import r2mri
    from r2mri import _gre
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    ph = generate(SPEC, lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=seed, lic_log_sd=sd,
                  lic_correlation_voxels=scale, b0_peak_hz=0.0, **GEOMETRY)
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    fit = r2mri.fit(ph.image, model="fatwater", threads=1)
    valid = mask & np.isfinite(fit.r2_per_s)
    out: dict[str, Any] = {"truth_lic": ph.summary["lic_of_mean_r2_mg_per_g"],
                           "truth_r2": ph.summary["mean_liver_r2_per_s"], "n_voxels": int(mask.sum())}
    for name, est in (("tile-fw-ncchi", "tile-ncchi"), ("tile-fw-mixture", "auto")):
        t0 = time.process_time()
        st = liver_statistics(fit, mask, ph.spec.calibration_name, image=ph.image, noise_sigma=sigma, coils=coils,
                              estimator=est, n_bootstrap=500, seed=seed)
        lo, hi = st.blocks["r2_per_s"]["headline_ci95"]
        warns = [w for w in st.warnings if w.startswith("heterogeneity:")]
        mix = st.blocks["headline"].get("mixture") or {}
        out[name] = (st.headline_r2_per_s, lo, hi, time.process_time() - t0, bool(warns),
                     any(w.startswith("headline: the spread") for w in st.warnings),
                     (mix.get("rho_by_tile_size") or {}).get("4"),
                     any(("beyond the R2* range" in w or "could not be fitted" in w or "noise floor from the second echo" in w)
                         for w in st.warnings))
    p = _gre.pooled_mean_r2star(ph.image, fit, valid, noise_sigma=sigma, coils=coils)
    lo, hi = out["tile-fw-ncchi"][1:3]
    m = _oracle(ph, ph.image, p, sigma, coils)
    out["oracle"] = (m, lo + m - p.mean_r2_per_s, hi + m - p.mean_r2_per_s, 0.0, False, False, None, False)
    return out


def run(quick: bool, seeds: int, snrs, coils_list) -> dict[str, Any]:
    from r2mri.calibration import lic_from_r2

    from ._common import machine_info

    cells = [(sd, w, lic, snr, c) for sd, w in TEXTURES for lic in LICS for snr in snrs for c in coils_list]
    if quick:
        cells = [(0.0, 1.0, 7.0, 50.0, 1), (0.4, 1.0, 7.0, 50.0, 1), (0.4, 4.0, 7.0, 50.0, 1)]
    res: dict[str, Any] = {"machine": machine_info(), "geometry": GEOMETRY, "spec": SPEC, "seeds": seeds,
                           "cells": [], "load_1min_start": os.getloadavg()[0]}
    t_start = time.time()
    cal = "hernando-2022-r2star-1.5t"
    for i, (sd, w, lic, snr, coils) in enumerate(cells):
        rows = {d: {"err_pct": [], "covered": [], "half_pct": [], "cpu_s": [], "warned": [], "unmeasured": [],
                    "rho": [], "range_warned": []} for d in DESIGNS}
        for seed in range(1, seeds + 1):
            r = one_run(sd, w, lic, snr, coils, seed)
            tr = r["truth_lic"]
            for d in DESIGNS:
                m, lo, hi, cpu, warned, unm, rho, rng_w = r[d]
                lm, llo, lhi = (float(v) for v in lic_from_r2(np.array([m, max(lo, 1e-6), hi]), calibration=cal))
                rows[d]["err_pct"].append(100 * (lm / tr - 1))
                rows[d]["covered"].append(bool(llo <= tr <= lhi))
                rows[d]["half_pct"].append(100 * (lhi - llo) / 2 / tr)
                rows[d]["cpu_s"].append(cpu)
                rows[d]["warned"].append(warned)
                rows[d]["unmeasured"].append(unm)
                rows[d]["rho"].append(rho)
                rows[d]["range_warned"].append(rng_w)
        cell = {"sd_log_lic": sd, "scale_voxels": w, "lic": lic, "snr": snr, "coils": coils, "designs": {}}
        for d in DESIGNS:
            e = np.asarray(rows[d]["err_pct"])
            cell["designs"][d] = {"bias_pct": float(np.mean(e)),
                                  "se_bias_pct": float(np.std(e, ddof=1) / np.sqrt(e.size)) if e.size > 1 else 0.0,
                                  "hits": int(np.sum(rows[d]["covered"])), "n": int(e.size),
                                  "half_width_pct": float(np.median(rows[d]["half_pct"])),
                                  "cpu_s": float(np.mean(rows[d]["cpu_s"])),
                                  "warned": int(np.sum(rows[d]["warned"])),
                                  "unmeasured": int(np.sum(rows[d]["unmeasured"])),
                                  "range_warned": int(np.sum(rows[d]["range_warned"])),
                                  "err_pct": [float(v) for v in e], "rho": rows[d]["rho"]}
        res["cells"].append(cell)
        b = " ".join(f"{d} {cell['designs'][d]['bias_pct']:+.2f}/{cell['designs'][d]['hits']}" for d in DESIGNS)
        print(f"[{i + 1}/{len(cells)} {time.time() - t_start:.0f}s] sd {sd} w {w:g} lic {lic:g} snr {snr:g} "
              f"coils {coils}: {b} warn {cell['designs']['tile-fw-mixture']['warned']}", flush=True)
    res["wall_s"] = time.time() - t_start
    res["load_1min_end"] = os.getloadavg()[0]
    return res


def summary(res: dict[str, Any]) -> str:
    cells = res["cells"]
    groups = [("all cells", lambda c: True), ("1-7 mg/g", lambda c: c["lic"] <= 7),
              ("30 mg/g", lambda c: c["lic"] == 30), ("SD 0 (uniform)", lambda c: c["sd_log_lic"] == 0),
              ("SD 0.2, 1-7 mg/g", lambda c: c["sd_log_lic"] == 0.2 and c["lic"] <= 7),
              ("SD 0.4, 1-7 mg/g", lambda c: c["sd_log_lic"] == 0.4 and c["lic"] <= 7)]
    lines = ["| cells | design | worst bias % | cells within 2 % | coverage | median CI half-width % | "
             "heterogeneity warned (runs) |", "|---|---|---|---|---|---|---|"]
    for gname, sel in groups:
        cs = [c for c in cells if sel(c)]
        if not cs:
            continue
        for d in DESIGNS:
            b = [c["designs"][d]["bias_pct"] for c in cs]
            hits = sum(c["designs"][d]["hits"] for c in cs)
            n = sum(c["designs"][d]["n"] for c in cs)
            warned = sum(c["designs"][d]["warned"] for c in cs) if d == "tile-fw-mixture" else "-"
            lines.append(f"| {gname} ({len(cs)}) | {d} | {max(b, key=abs):+.1f} | {sum(abs(x) <= 2 for x in b)}/"
                         f"{len(cs)} | {100 * hits / n:.0f} % | "
                         f"{np.median([c['designs'][d]['half_width_pct'] for c in cs]):.1f} | {warned} |")
    lines += ["", "| SD | width | LIC | SNR | coils | before % | after % (hits) | oracle % | rho | heterogeneity warned | "
              "spread not measured / R2* range warned |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        d0, d1, d2 = (c["designs"][d] for d in DESIGNS)
        rho = [r for r in d1["rho"] if r is not None]
        lines.append(f"| {c['sd_log_lic']} | {c['scale_voxels']:g} | {c['lic']:g} | {c['snr']:g} | {c['coils']} | "
                     f"{d0['bias_pct']:+.2f} | {d1['bias_pct']:+.2f} ({d1['hits']}/{d1['n']}) | {d2['bias_pct']:+.2f} | "
                     f"{np.mean(rho) if rho else float('nan'):.3f} | {d1['warned']}/{d1['n']} | "
                     f"{d1['unmeasured']} / {d1['range_warned']} |")
    return "\n".join(lines)


ROI_GEOMETRY = dict(matrix=(128, 128), pixel_mm=3.0, n_slices=5)


def one_roi_run(lic, snr, coils, texture, floor: bool, lic_log_sd: float = 0.4) -> dict[str, Any]:
    """The automatic ROI of ``r2mri.analyze`` on the coarse GRE texture; ``floor=False``: as main a408d82.
    ``lic_log_sd=0``: a uniform liver (``texture`` is then the noise seed). The low-iron check
    gets its evidence through the emulated hook (benchmarks/_low_iron_hook.py)."""
    import r2mri
    import r2mri.roi as roi_mod
    from r2mri.phantom import LABELS, generate

    from ._low_iron_hook import emulated_hook

    tex = dict(texture_seed=texture, lic_log_sd=lic_log_sd, lic_correlation_voxels=8.0) if lic_log_sd > 0 else {}
    ph = generate(SPEC, lic=lic, snr=snr, coils=coils, seed=texture, **tex, **ROI_GEOMETRY)
    real = roi_mod.parenchyma_r2_floor_per_s
    if not floor:
        roi_mod.parenchyma_r2_floor_per_s = lambda calibration, image: (None, "benchmark: off")
    try:
        t0 = time.process_time()
        with emulated_hook():
            res = r2mri.analyze(ph.image)
        cpu = time.process_time() - t0
    finally:
        roi_mod.parenchyma_r2_floor_per_s = real
    liver, lab, m = ph.truth.liver_mask, ph.truth.labels, res.roi.mask
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    lo, hi = res.statistics.ci95_lic_mg_per_g
    head = res.statistics.headline_lic_mg_per_g
    return {"roi_liver_fraction": float(np.count_nonzero(m & liver) / liver.sum()),
            "err_pct": 100 * (head / truth - 1), "covered": bool(lo <= truth <= hi),
            "non_liver": {k: int(np.count_nonzero(m & (lab == v))) for k, v in LABELS.items()
                          if v not in (LABELS["liver"], LABELS["vessel"]) and np.count_nonzero(m & (lab == v))},
            "red_roi_warnings": [w for w in res.roi.warnings if w.startswith("liver ROI: WARNING")],
            "low_iron": res.roi.options.get("low_iron"),
            "low_iron_note": any(w.startswith("liver ROI: automatic proposal at the normal-liver level")
                                 for w in res.roi.warnings), "cpu_s": cpu}


def run_roi(lics, snrs, coils_list, textures, before: bool = True, lic_log_sd: float = 0.4) -> dict[str, Any]:
    from ._common import machine_info

    res: dict[str, Any] = {"machine": machine_info(), "geometry": ROI_GEOMETRY, "spec": SPEC, "rows": [],
                           "lic_log_sd": lic_log_sd, "load_1min_start": os.getloadavg()[0]}
    t_start = time.time()
    for lic in lics:
        for snr in snrs:
            for coils in coils_list:
                for t in textures:
                    after = one_roi_run(lic, snr, coils, t, True, lic_log_sd)
                    row = {"lic": lic, "snr": snr, "coils": coils, "texture": t,
                           "before": one_roi_run(lic, snr, coils, t, False, lic_log_sd) if before else after,
                           "after": after}
                    res["rows"].append(row)
                    b, a = row["before"], row["after"]
                    print(f"[{time.time() - t_start:.0f}s] lic {lic:g} snr {snr:g} coils {coils} tex {t}: ROI "
                          f"{b['roi_liver_fraction']:.2f} -> {a['roi_liver_fraction']:.2f} of the liver, error "
                          f"{b['err_pct']:+.1f} -> {a['err_pct']:+.1f} %, covered {b['covered']:d} -> {a['covered']:d}, "
                          f"non-liver {sum(b['non_liver'].values())} -> {sum(a['non_liver'].values())}, red ROI "
                          f"warnings {len(b['red_roi_warnings'])} -> {len(a['red_roi_warnings'])}"
                          f"{' (low-iron note)' if a.get('low_iron_note') else ''}", flush=True)
    res["wall_s"] = time.time() - t_start
    res["load_1min_end"] = os.getloadavg()[0]
    return res


def summary_roi(res: dict[str, Any]) -> str:
    """Per (LIC, SNR, channels): textures whose error is within 5 % / covered / warned, before -> after."""
    lines = ["| LIC | SNR | coils | ROI % of liver (median) | median abs. error % | within 5 % | covered | "
             "off > 5 % and no red ROI warning | runs with non-liver voxels (max) | low-iron check: red / note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["lic"], r["snr"], r["coils"]) for r in res["rows"]})
    for key in keys:
        rows = [r for r in res["rows"] if (r["lic"], r["snr"], r["coils"]) == key]
        cells = []
        for f in (lambda d: f"{100 * np.median([r[d]['roi_liver_fraction'] for r in rows]):.0f}",
                  lambda d: f"{np.median([abs(r[d]['err_pct']) for r in rows]):.1f}",
                  lambda d: f"{sum(abs(r[d]['err_pct']) <= 5 for r in rows)}/{len(rows)}",
                  lambda d: f"{sum(r[d]['covered'] for r in rows)}/{len(rows)}",
                  lambda d: f"{sum(abs(r[d]['err_pct']) > 5 and not r[d]['red_roi_warnings'] for r in rows)}",
                  lambda d: (f"{sum(bool(r[d]['non_liver']) for r in rows)} "
                             f"({max(sum(r[d]['non_liver'].values()) for r in rows)})")):
            cells.append(f"{f('before')} -> {f('after')}")
        red = sum(bool((r["after"].get("low_iron") or {}).get("red")) for r in rows)
        note = sum(bool(r["after"].get("low_iron_note")) for r in rows)
        lines.append(f"| {key[0]:g} | {key[1]:g} | {key[2]} | " + " | ".join(cells) + f" | {red} / {note} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--snr", default="20,50")
    ap.add_argument("--coils", default="1,8")
    ap.add_argument("--roi", action="store_true", help="the automatic ROI on the coarse texture (module docstring)")
    ap.add_argument("--lic", default="1,5", help="with --roi: mean LICs (mg/g)")
    ap.add_argument("--textures", default="1,2,3,4,5,6,7,8", help="with --roi: texture (= noise) seeds")
    ap.add_argument("--no-before", action="store_true", help="with --roi: this code only (before = a stored run)")
    ap.add_argument("--uniform", action="store_true", help="with --roi: uniform livers (no texture)")
    ap.add_argument("--tag", default="", help="with --roi: results/gre_hetero_roi{TAG}.json/.md (keep an earlier run)")
    a = ap.parse_args(argv)
    if a.roi:
        res = run_roi([float(v) for v in a.lic.split(",")], [float(v) for v in a.snr.split(",")],
                      [int(v) for v in a.coils.split(",")], [int(v) for v in a.textures.split(",")],
                      before=not a.no_before, lic_log_sd=0.0 if a.uniform else 0.4)
        md = summary_roi(res)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"gre_hetero_roi{a.tag}.json").write_text(json.dumps(res, indent=1))
        (RESULTS / f"gre_hetero_roi{a.tag}.md").write_text(md + "\n")
        print(f"load average {res['load_1min_start']:.2f} -> {res['load_1min_end']:.2f} (1 min); wall {res['wall_s']:.0f} s")
        print(md)
        return
    res = run(a.quick, a.seeds, [float(v) for v in a.snr.split(",")], [int(v) for v in a.coils.split(",")])
    md = summary(res)
    if not a.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "gre_hetero.json").write_text(json.dumps(res, indent=1))
        (RESULTS / "gre_hetero.md").write_text(md + "\n")
    print(f"load average {res['load_1min_start']:.2f} -> {res['load_1min_end']:.2f} (1 min); wall {res['wall_s']:.0f} s")
    print(md)


if __name__ == "__main__":
    main()
