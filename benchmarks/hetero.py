"""Heterogeneous livers (issue 16): bias and 95 % coverage of the headline, four designs.

Run: ``python -m benchmarks.hetero [--quick] [--seeds N] [--first R] [--legacy-seeds] [--designs tile-mixture]
[--name NAME]``
(from the repository root; ``NUMBA_NUM_THREADS=1`` recommended on a shared machine). Writes
``benchmarks/results/NAME.json`` and ``benchmarks/results/NAME.md`` (every cell; NAME
defaults to ``hetero``) and prints the summary quoted in benchmarks/README.md and
docs/statistics.md. ``--designs`` runs a subset (comma-separated); ``tile-mixture`` is the
shipped design and ``tile-ncchi`` the original one (both cheap; ``voxel-bc`` refits every voxel).

Phantoms: ``r2mri.phantom.generate`` (FerriScan 1.5 T protocol, TE 6-18 ms) at
64 x 64 x 3 voxels of 6 mm (about 1,700 liver voxels), texture ``lic_log_sd`` (SD in
log LIC) x ``lic_correlation_voxels`` (Gaussian smoothing width in voxels). Seeds
(benchmarks/_seeds.py): every (cell, replicate) has its own noise, texture and estimator
seed from ``numpy.random.SeedSequence`` over the cell's parameters and the replicate, so
the cells are independent experiments; ``--legacy-seeds`` gives the scheme of runs before
branch seedmix (noise = texture = estimator seed = replicate number, the same numbers in
every cell) to re-make stored results. The seeds of every liver are in the JSON. ROI =
the true liver mask (vessels excluded). Truth = ``truth.json["lic_of_mean_r2_mg_per_g"]``
(LIC of the mean liver R2).
At SD 0 the texture width is moot and only width 1 is run.

Designs (the mean liver R2, then the St Pierre curve):

- ``tile-ncchi`` (before): tiles of the adaptive quadtree, pooled signal fitted with
  the non-central chi model (``liver_statistics(estimator="tile-ncchi")``).
- ``tile-fine``: tiles sized by what the noise allows, down to single voxels
  (quadtree 1-2-4-8, a tile is kept when its relative SE of R2 is <= 10 %): less spread
  inside the tiles; interval mean +- 1.96 x max(measurement SE, between-tile SE).
- ``voxel-bc``: mean of the voxel-wise ``ncchi`` fits with a parametric-bootstrap bias
  correction (each voxel re-simulated at its own fitted S0, R2 with the known noise,
  refitted; the mean shift is subtracted); interval mean +- 1.96 x the voxel spread SE.
- ``tile-mixture`` (after): ``liver_statistics`` default, the tiles corrected for the
  spread of R2 within them (r2mri/_headline.py), interval widened by the correction's SE.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SDS = [0.0, 0.2, 0.4]
SCALES = [1.0, 4.0, 8.0]
LICS = [1.0, 7.0, 30.0]
SNRS = [20.0, 50.0, 100.0]
COILS = [1, 8]
DESIGNS = ["tile-ncchi", "tile-fine", "voxel-bc", "tile-mixture"]
GEOMETRY = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
_Z95 = 1.959963984540054


def _cells(quick: bool):
    if quick:
        return [(0.0, 1.0, 7.0, 50.0, 1), (0.4, 1.0, 7.0, 50.0, 1), (0.3, 4.0, 7.0, 50.0, 1),
                (0.4, 1.0, 30.0, 50.0, 1)]
    out = []
    for sd in SDS:
        for scale in (SCALES if sd > 0 else [1.0]):
            for lic in LICS:
                for snr in SNRS:
                    for coils in COILS:
                        out.append((sd, scale, lic, snr, coils))
    return out


def _ratio_se(values, weights):
    """Linearised (bootstrap-equivalent) SE of a weighted mean over independent units."""
    w = np.asarray(weights, float)
    v = np.asarray(values, float)
    m = np.sum(w * v) / w.sum()
    return float(np.sqrt(np.sum((w * (v - m)) ** 2)) / w.sum())


def _voxel_fit(data, te, sigma, coils):
    import r2mri

    f = r2mri.fit(data.reshape(-1, 1, 1, te.size), echo_times_s=te, model="ncchi", noise_sigma=sigma,
                  coils=coils, threads=1)
    return (np.asarray(f.r2_per_s, float).reshape(-1), np.asarray(f.s0, float).reshape(-1),
            np.asarray(f.r2_std_per_s, float).reshape(-1))


def one_run(sd, scale, lic, snr, coils, seed, designs=tuple(DESIGNS), texture_seed=None, stats_seed=None,
            legacy: bool = True) -> dict[str, Any]:
    """All designs on one phantom; returns {design: (mean R2, lo, hi, cpu s)} and the truth.
    ``seed`` is the noise seed; ``texture_seed`` and ``stats_seed`` default to it (legacy)."""
    from types import SimpleNamespace

    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    texture_seed = seed if texture_seed is None else texture_seed
    stats_seed = seed if stats_seed is None else stats_seed
    ph = generate(lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=texture_seed, lic_log_sd=sd,
                  lic_correlation_voxels=scale, **GEOMETRY)
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    te = np.asarray(ph.image.echo_times_s, float)
    y = np.asarray(ph.image.data)[mask].astype(np.float64)
    out: dict[str, Any] = {"truth_lic": ph.summary["lic_of_mean_r2_mg_per_g"],
                           "truth_mean_voxel_lic": ph.summary["mean_voxel_lic_mg_per_g"],
                           "truth_r2": ph.summary["mean_liver_r2_per_s"], "n_voxels": int(mask.sum())}
    t0 = time.process_time()
    r2v, s0v, sev = _voxel_fit(y, te, sigma, coils)
    t_fit = time.process_time() - t0
    r2map = np.full(mask.shape, np.nan)
    r2map[mask] = r2v
    fit = SimpleNamespace(r2_per_s=r2map, status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": sigma, "coils": coils})
    for name in ("tile-ncchi", "tile-mixture"):
        if name not in designs:
            continue
        t0 = time.process_time()
        st = liver_statistics(fit, mask, image=ph.image, estimator=name, n_bootstrap=500,
                             seed=stats_seed)
        lo, hi = st.blocks["r2_per_s"]["headline_ci95"]
        out[name] = (st.headline_r2_per_s, lo, hi, time.process_time() - t0)
    if "tile-fine" in designs:
        out["tile-fine"] = _tile_fine(ph.image, mask, sigma, coils)
    if "voxel-bc" in designs:
        bc_seed = 10_000 + stats_seed if legacy else [stats_seed, 1]
        out["voxel-bc"] = _voxel_bc(r2v, s0v, te, sigma, coils, bc_seed, t_fit)
    return out


def _tile_fine(image, mask, sigma, coils):
    from r2mri.stats import pooled_mean_r2

    t0 = time.process_time()
    p = pooled_mean_r2(image, mask, noise_sigma=sigma, coils=coils, levels=(1, 2, 4, 8), target_rel_se=0.10)
    se = max(p.se_r2_per_s, _ratio_se(p.tile_r2_per_s, p.tile_voxels))
    return (p.mean_r2_per_s, p.mean_r2_per_s - _Z95 * se, p.mean_r2_per_s + _Z95 * se,
            time.process_time() - t0)


def _voxel_bc(r2v, s0v, te, sigma, coils, seed, t_fit):
    from r2mri._spread_estimate import _ncchi_draw

    t0 = time.process_time()
    ok = np.isfinite(r2v) & np.isfinite(s0v)
    rng = np.random.default_rng(seed)
    amp = s0v[ok, None] * np.exp(-r2v[ok, None] * te[None, :])
    r2s, _, _ = _voxel_fit(_ncchi_draw(amp, sigma, coils, rng), te, sigma, coils)
    fin = np.isfinite(r2s)
    bias = float(np.mean(r2s[fin]) - np.mean(r2v[ok][fin]))
    m = float(np.mean(r2v[ok])) - bias
    se = float(np.std(r2v[ok], ddof=1) / np.sqrt(ok.sum()))
    return (m, m - _Z95 * se, m + _Z95 * se, time.process_time() - t0 + t_fit)


def run(quick: bool, seeds: int, designs=tuple(DESIGNS), legacy: bool = False, first: int = 0,
        on_cell=None, only=None) -> dict[str, Any]:
    """The grid (``only``: a list of (sd, width, lic, snr, coils) cells of it); ``on_cell(res)`` is
    called after each cell (checkpoint)."""
    from r2mri._version import __version__
    from r2mri.calibration import lic_from_r2

    from ._common import machine_info
    from ._seeds import cell_seeds, scheme

    cells = _cells(quick)
    if only:
        cells = [c for c in cells if c in only]
    res: dict[str, Any] = {"machine": machine_info(), "version": __version__, "geometry": GEOMETRY,
                           "seeds": seeds, "first_replicate": first, "seeding": scheme(legacy),
                           "legacy_seeds": legacy, "designs": list(designs), "cells": []}
    t_start = time.time()
    for i, (sd, scale, lic, snr, coils) in enumerate(cells):
        rows = {d: {"err_pct": [], "covered": [], "half_pct": [], "cpu_s": []} for d in designs}
        truths, used = [], []
        for rep in range(first, first + seeds):
            sds = cell_seeds("hetero", (sd, scale, lic, snr, coils), rep, legacy)
            used.append(list(sds))
            r = one_run(sd, scale, lic, snr, coils, sds.noise, designs, sds.texture, sds.stats, legacy)
            tr = r["truth_lic"]
            truths.append((tr, r["truth_mean_voxel_lic"], r["n_voxels"]))
            for d in designs:
                m, lo, hi, cpu = r[d]
                lm, llo, lhi = (float(v) for v in lic_from_r2(np.array([m, max(lo, 1e-6), hi])))
                rows[d]["err_pct"].append(100 * (lm / tr - 1))
                rows[d]["covered"].append(bool(llo <= tr <= lhi))
                rows[d]["half_pct"].append(100 * (lhi - llo) / 2 / tr)
                rows[d]["cpu_s"].append(cpu)
        cell = {"sd_log_lic": sd, "scale_voxels": scale, "lic": lic, "snr": snr, "coils": coils,
                "truth_lic_mean": float(np.mean([t[0] for t in truths])),
                "truth_mean_voxel_lic_mean": float(np.mean([t[1] for t in truths])),
                "n_voxels_mean": float(np.mean([t[2] for t in truths])),
                "seeds_noise_texture_stats": used, "designs": {}}
        for d in designs:
            e = np.asarray(rows[d]["err_pct"])
            cell["designs"][d] = {
                "bias_pct": float(np.mean(e)), "sd_pct": float(np.std(e, ddof=1)) if e.size > 1 else 0.0,
                "se_bias_pct": float(np.std(e, ddof=1) / np.sqrt(e.size)) if e.size > 1 else 0.0,
                "coverage": float(np.mean(rows[d]["covered"])), "hits": int(np.sum(rows[d]["covered"])),
                "half_width_pct": float(np.median(rows[d]["half_pct"])), "cpu_s": float(np.mean(rows[d]["cpu_s"])),
                "err_pct": [float(v) for v in e]}
        res["cells"].append(cell)
        res["wall_s"] = time.time() - t_start
        if on_cell is not None:
            on_cell(res)
        b = " ".join(f"{d} {cell['designs'][d]['bias_pct']:+.2f}/{cell['designs'][d]['hits']}" for d in designs)
        print(f"[{i + 1}/{len(cells)} {time.time() - t_start:.0f}s] sd {sd} scale {scale:g} lic {lic:g} "
              f"snr {snr:g} coils {coils}: {b}", flush=True)
    res["wall_s"] = time.time() - t_start
    return res


def summary(res: dict[str, Any]) -> str:
    """Markdown: per design, over the grid and its parts."""
    from ._common import md_table

    cells = res["cells"]
    lines = []

    def agg(sel, d):
        cs = [c for c in cells if sel(c)]
        if not cs:
            return None
        b = [c["designs"][d]["bias_pct"] for c in cs]
        hits = sum(c["designs"][d]["hits"] for c in cs)
        n = sum(len(c["designs"][d]["err_pct"]) for c in cs)
        within = sum(abs(x) <= 2.0 for x in b)
        # outside 2 % by more than 2 SE of the cell's mean (8 seeds cannot show a 2 % bias
        # in a cell whose seed SD is 8 %)
        clear = sum(abs(c["designs"][d]["bias_pct"]) - 2.0 > 2.0 * c["designs"][d].get("se_bias_pct", 0.0)
                    for c in cs)
        return (f"{max(b, key=abs):+.1f}", f"{within}/{len(cs)}", f"{clear}", f"{100 * hits / n:.0f} %",
                f"{np.median([c['designs'][d]['half_width_pct'] for c in cs]):.1f}",
                f"{np.mean([c['designs'][d]['cpu_s'] for c in cs]):.3f}")

    groups = [("all cells", lambda c: True),
              ("SD 0 (homogeneous)", lambda c: c["sd_log_lic"] == 0),
              ("SD 0.2", lambda c: c["sd_log_lic"] == 0.2),
              ("SD 0.4", lambda c: c["sd_log_lic"] == 0.4),
              ("SNR >= 50", lambda c: c["snr"] >= 50),
              ("SNR 20", lambda c: c["snr"] == 20),
              ("LIC <= 7, SNR >= 50", lambda c: c["lic"] <= 7 and c["snr"] >= 50),
              ("LIC 30, SNR >= 50", lambda c: c["lic"] == 30 and c["snr"] >= 50),
              ("LIC 30, SNR 20", lambda c: c["lic"] == 30 and c["snr"] == 20)]
    rows = []
    for gname, sel in groups:
        for d in res["designs"]:
            a = agg(sel, d)
            if a:
                rows.append([gname, d, *a])
    lines.append(md_table(["cells", "design", "worst mean bias %", "cells with |bias| <= 2 %",
                           "cells > 2 % by > 2 SE", "95 % coverage (all seeds)", "median CI half-width %",
                           "CPU s per run"], rows))
    return "\n".join(lines)


def cell_table(res: dict[str, Any]) -> str:
    from ._common import md_table

    rows = []
    for c in res["cells"]:
        r = [c["sd_log_lic"], c["scale_voxels"], c["lic"], c["snr"], c["coils"], f"{c['truth_lic_mean']:.2f}"]
        for d in res["designs"]:
            x = c["designs"][d]
            r.append(f"{x['bias_pct']:+.1f} +- {x.get('se_bias_pct', 0.0):.1f} ({x['sd_pct']:.1f}) "
                     f"{x['hits']}/{len(x['err_pct'])}")
        rows.append(r)
    return md_table(["SD log LIC", "scale vox", "LIC", "SNR", "coils", "truth LIC"] +
                    [f"{d}: bias % +- SE (SD) covered" for d in res["designs"]], rows)


def main(argv=None) -> int:
    from ._common import write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 cells, 2 seeds (smoke run)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 8; quick 2)")
    ap.add_argument("--designs", default=",".join(DESIGNS),
                    help=f"comma-separated subset of {','.join(DESIGNS)} (default all)")
    ap.add_argument("--legacy-seeds", action="store_true",
                    help="noise = texture = estimator seed = replicate number in every cell (runs before "
                         "branch seedmix; the cells share their noise and texture)")
    ap.add_argument("--first", type=int, default=0, help="first replicate number (default 0)")
    ap.add_argument("--only", default="", metavar="SD:WIDTH:LIC:SNR:COILS,...",
                    help="only these cells of the grid (e.g. 0:1:30:100:8)")
    ap.add_argument("--name", default=None, help="results file stem (default hetero, quick hetero-quick)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    designs = tuple(d.strip() for d in a.designs.split(",") if d.strip())
    bad = [d for d in designs if d not in DESIGNS]
    if bad or not designs:
        ap.error(f"unknown design(s) {bad}; choose from {','.join(DESIGNS)}")
    seeds = a.seeds or (2 if a.quick else 8)
    name = a.name or ("hetero-quick" if a.quick else "hetero")
    only = [tuple(float(x) for x in c.split(":")[:4]) + (int(c.split(":")[4]),) for c in a.only.split(",") if c]
    res = run(a.quick, seeds, designs, a.legacy_seeds, a.first, lambda r: write_json(a.out / f"{name}.json", r), only)
    write_json(a.out / f"{name}.json", res)
    text = summary(res)
    (a.out / f"{name}.md").write_text(f"# {__doc__.splitlines()[0]}\n\nseeding: {res['seeding']}, "
                                      f"replicates {a.first}-{a.first + seeds - 1}\n\n{text}\n\n## Every cell\n\n"
                                      f"bias: mean over seeds of the LIC error, % of truth (SD over seeds); "
                                      f"covered: seeds whose 95 % interval holds the truth\n\n{cell_table(res)}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
