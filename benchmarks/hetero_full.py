"""Issue 16 on full-size livers: the 30 mg/g cells of the hetero grid (bias and 95 % coverage).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.hetero_full [--quick] [--seeds N N] [--snrs 20,50]
[--first R] [--legacy-seeds] [--name NAME]``
(from the repository root). Writes ``benchmarks/results/NAME.json`` (every liver) and
``benchmarks/results/NAME.md`` (every cell; NAME defaults to ``hetero_full``), after each
cell, and prints one line per cell.

Why: ``benchmarks/hetero.py`` runs the grid on small livers (64 x 64 x 3 voxels of 6 mm,
~1,700 liver voxels), where 30 mg/g at SNR 20 is beyond what the data support (Cramer-Rao
bound of the mean R2 7.2 % of LIC with 8 channels). Here the hard part of the grid, LIC 30
x SNR 20 and 50 x 1 and 8 channels x textures (SD 0; SD 0.2 and 0.4 in log LIC at widths
1, 4, 8 voxels) is run on full-size livers: ``r2mri.phantom.generate`` defaults
(256 x 256 x 11 at 1.5 mm, ~95,000 liver voxels, FerriScan 1.5 T TEs 6-18 ms, coil shading
as shipped), true liver mask (vessels excluded). Seeds (benchmarks/_seeds.py): every
(cell, replicate) has its own noise, texture and estimator seed (``numpy.random.SeedSequence``
over the cell's parameters and the replicate); ``--legacy-seeds`` gives the scheme before
branch seedmix (noise = texture = estimator seed = replicate number in every cell, so the
cells shared their noise draws and textures), to re-make stored runs. Each liver records
``seed`` (the replicate), ``noise_seed``, ``texture_seed`` and ``stats_seed``.
Truth = ``truth.json["lic_of_mean_r2_mg_per_g"]``.

Headline and interval: ``liver_statistics`` (default estimator ``tile-mixture``, 2000
bootstrap resamples as ``r2mri analyze``). The voxel-wise fit does not enter the headline
(tiles are fitted from the magnitude images) and costs ~9 s per full-size liver, so it is
not run: the ``fit`` handed to ``liver_statistics`` carries the phantom's true R2 map,
which only feeds the voxel distributions (not reported here). Recorded per liver: the
headline and its interval in LIC, the uncorrected tiles (``mixture.extra``), the spread
estimate per tile edge, the headline warnings, CPU of ``liver_statistics``. Keys per
liver: ``lic`` is the headline LIC (mg/g) and ``cell_lic`` the cell's nominal LIC (the
cell record's ``lic``); results written before 2026-12-03 lack ``cell_lic``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TEXTURES = [(0.0, 1.0), (0.2, 1.0), (0.2, 4.0), (0.2, 8.0), (0.4, 1.0), (0.4, 4.0), (0.4, 8.0)]


def cells(quick: bool, snrs=(20.0, 50.0)) -> list[tuple]:
    """(sd, width, lic, snr, coils) of the run."""
    if quick:
        return [(0.4, 4.0, 30.0, 20.0, 8)]
    return [(sd, w, 30.0, snr, coils) for snr in snrs for coils in (1, 8) for sd, w in TEXTURES]


def one(sd: float, width: float, lic: float, snr: float, coils: int, seed: int, geometry=None,
        measured_correlation: bool = False, legacy: bool = True, seeds=None) -> dict[str, Any]:
    """One liver: headline, interval, spread estimate and warnings of ``liver_statistics``.
    ``seed`` is the replicate number; its noise, texture and estimator seeds come from
    ``benchmarks._seeds.cell_seeds`` (``legacy``: all three = ``seed``, the old scheme), or are
    ``seeds`` (a ``benchmarks._seeds.Seeds``) when given.
    ``measured_correlation``: the noise correlation measured in the air (``estimate_noise``) is given to it."""
    from types import SimpleNamespace

    from r2mri.calibration import lic_from_r2
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    from ._seeds import cell_seeds

    sds = seeds if seeds is not None else cell_seeds("hetero_full", (sd, width, lic, snr, coils), seed, legacy)
    ph = generate(lic=lic, snr=snr, coils=coils, seed=sds.noise, texture_seed=sds.texture, lic_log_sd=sd,
                  lic_correlation_voxels=width if sd > 0 else 0.0, **(geometry or {}))
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    r2map = np.where(mask, ph.truth.r2_per_s, np.nan)  # only the voxel distributions see it
    fit = SimpleNamespace(r2_per_s=r2map, status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": sigma, "coils": coils})
    t0 = time.process_time()
    kw = {}
    if measured_correlation:
        from r2mri import estimate_noise

        kw["noise_correlation"] = estimate_noise(ph.image).spatial_correlation
    st = liver_statistics(fit, mask, image=ph.image, seed=sds.stats, **kw)
    cpu = time.process_time() - t0
    h = st.blocks["headline"]
    mx = h["mixture"] or {}
    lo, hi = st.ci95_lic_mg_per_g
    unc = float(lic_from_r2(st.headline_r2_per_s - mx.get("correction_r2_per_s", 0.0)))
    # "lic" is the headline (as in every stored hetero_full*.json, where the cell's LIC
    # written first under the same key was overwritten); the cell's LIC is "cell_lic".
    return {"sd": sd, "width": width, "cell_lic": lic, "snr": snr, "coils": coils, "seed": seed,
            "noise_seed": sds.noise, "texture_seed": sds.texture, "stats_seed": sds.stats,
            "truth_lic": truth, "truth_r2": float(ph.summary["mean_liver_r2_per_s"]),
            "n_voxels": int(mask.sum()), "n_voxels_used": int(h["n_voxels_used"]),
            "lic": st.headline_lic_mg_per_g, "r2": st.headline_r2_per_s, "lo": lo, "hi": hi,
            "err_pct": 100 * (st.headline_lic_mg_per_g / truth - 1),
            "uncorrected_err_pct": 100 * (unc / truth - 1),
            "covered": bool(lo <= truth <= hi), "half_width_pct": 100 * (hi - lo) / 2 / truth,
            "rho": mx.get("rho_by_tile_size"), "rho_se": mx.get("rho_se_by_tile_size"),
            "unidentified": mx.get("unidentified_tile_sizes"), "mixture": mx,
            "warnings": [w for w in st.warnings if w.startswith("headline")], "cpu_s": cpu,
            "se_measurement_r2": st.blocks["r2_per_s"]["headline_se_measurement"],
            "se_bootstrap_r2": st.blocks["r2_per_s"]["headline_se_bootstrap"]}


def cell_summary(rows: list[dict]) -> dict[str, Any]:
    e = np.array([r["err_pct"] for r in rows])
    u = np.array([r["uncorrected_err_pct"] for r in rows])
    n = e.size
    return {"n": n, "bias_pct": float(e.mean()), "sd_pct": float(e.std(ddof=1)) if n > 1 else 0.0,
            "se_bias_pct": float(e.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "uncorrected_bias_pct": float(u.mean()),
            "hits": int(sum(r["covered"] for r in rows)),
            "half_width_pct": float(np.median([r["half_width_pct"] for r in rows])),
            "warned": int(sum(bool(r["warnings"]) for r in rows)),
            "cpu_s": float(np.mean([r["cpu_s"] for r in rows]))}


def table(res: dict[str, Any]) -> str:
    from ._common import md_table

    rows = []
    for c in res["cells"]:
        s = c["summary"]
        rows.append([c["sd"], c["width"], c["snr"], c["coils"], f"{s['uncorrected_bias_pct']:+.2f}",
                     f"{s['bias_pct']:+.2f} +- {s['se_bias_pct']:.2f}", f"{s['sd_pct']:.2f}",
                     f"{s['hits']}/{s['n']}", f"{s['half_width_pct']:.1f}", f"{s['warned']}/{s['n']}",
                     f"{s['cpu_s']:.2f}"])
    return md_table(["SD log LIC", "width vox", "SNR", "coils", "tile-ncchi bias %", "tile-mixture bias % +- SE",
                     "seed SD %", "covered", "median CI half-width %", "warned", "CPU s"], rows)


def main(argv=None) -> int:
    from ._common import machine_info, write_json
    from ._seeds import scheme

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one cell (SD 0.4, width 4, SNR 20, 8 channels), 2 seeds")
    ap.add_argument("--seeds", type=int, nargs=2, default=None, metavar=("SNR20", "SNR50"),
                    help="seeds per cell at SNR 20 and at SNR 50 (default 8 4; quick 2 2)")
    ap.add_argument("--first", type=int, default=0, help="first replicate number (default 0)")
    ap.add_argument("--snrs", default="20,50", help="SNRs to run, comma-separated (default 20,50)")
    ap.add_argument("--legacy-seeds", action="store_true",
                    help="noise = texture = estimator seed = replicate number in every cell (runs before "
                         "branch seedmix; the cells share their noise and texture)")
    ap.add_argument("--name", default=None, help="results file stem (default hetero_full, quick hetero_full-quick)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    n20, n50 = a.seeds or ((2, 2) if a.quick else (8, 4))
    name = a.name or ("hetero_full-quick" if a.quick else "hetero_full")
    res: dict[str, Any] = {"machine": machine_info(), "geometry": "generate() default, 256 x 256 x 11 at 1.5 mm",
                           "seeds": {"20": n20, "50": n50}, "seeding": scheme(a.legacy_seeds),
                           "legacy_seeds": a.legacy_seeds, "cells": []}
    t_start = time.time()
    todo = cells(a.quick, tuple(float(x) for x in a.snrs.split(",") if x.strip()))
    for i, (sd, w, lic, snr, coils) in enumerate(todo):
        rows = [one(sd, w, lic, snr, coils, s, legacy=a.legacy_seeds)
                for s in range(a.first, a.first + (n20 if snr == 20 else n50))]
        s = cell_summary(rows)
        res["cells"].append({"sd": sd, "width": w, "lic": lic, "snr": snr, "coils": coils, "summary": s,
                             "livers": rows})
        res["wall_s"] = time.time() - t_start
        write_json(a.out / f"{name}.json", res)
        (a.out / f"{name}.md").write_text(f"# {__doc__.splitlines()[0]}\n\nseeding: {res['seeding']}\n\n"
                                          f"{table(res)}\n")
        print(f"[{i + 1}/{len(todo)} {time.time() - t_start:.0f}s] sd {sd} w {w:g} snr {snr:g} coils {coils}: "
              f"ncchi {s['uncorrected_bias_pct']:+.2f} mixture {s['bias_pct']:+.2f} +- {s['se_bias_pct']:.2f} "
              f"(SD {s['sd_pct']:.2f}) covered {s['hits']}/{s['n']} half {s['half_width_pct']:.1f} % "
              f"warned {s['warned']}", flush=True)
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
