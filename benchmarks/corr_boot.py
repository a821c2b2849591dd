"""Issue 16: the between-tile bootstrap of the headline on spatially correlated noise (branch corrboot).

Run (from the repository root, ``NUMBA_NUM_THREADS=1``):
``python -m benchmarks.corr_boot --seeds 32 --only NOISE... --design before|after --cells uniform8|textured8``
(rows appended to ``benchmarks/results/corr_noise_boot.jsonl``; livers already there are skipped),
``--table`` (the Markdown table of benchmarks/README.md), ``--real`` (the real ISMRM 2012 case 12 liver),
``--gre LIC CORR SNR COILS SD WIDTH FIRST`` (the fat-water headline; rows in
``results/corr_noise_gre_boot.jsonl``).

Why: ``liver_statistics`` resamples the tiles independently; on correlated noise neighbouring tiles' means
are correlated, and r2mri/_corr_bootstrap.py stretches the bootstrap's noise share by ``F``. *before*: that
hook patched out (= the tree before it); *after*: the tree. Livers as :mod:`benchmarks.corr_noise` (small
livers, true mask, true R2 map as the voxel fit, noises :data:`benchmarks.corr_noise.CORR`), but each cell
with its own seeds (:func:`cell_seed`): ``corr_noise.run`` reuses seeds 0..N-1 in every cell, so its cells
share their noise draws and one bad draw misses in every cell at once.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .corr_noise import CORR, RESULTS, grid

UNIFORM8 = [(0.0, 1.0, lic, snr, 8) for lic in (7.0, 30.0) for snr in (20.0, 50.0)]
TEXTURED8 = [(0.4, 4.0, lic, snr, 8) for lic in (7.0, 30.0) for snr in (20.0, 50.0)]
BOOT_CELLS = {"uniform8": UNIFORM8, "textured8": TEXTURED8, "all8": UNIFORM8 + TEXTURED8}
OUT_BOOT = RESULTS / "corr_noise_boot.jsonl"


def cell_seed(cell: tuple, s: int) -> int:
    """Seed ``s`` of a cell, distinct between cells (``run`` above reuses seeds 0..N-1 in every cell, so
    its cells share their noise draws): ``10000 + 1000 x`` the cell's index in :func:`grid` ``+ s``."""
    return 10000 + 1000 * grid().index(tuple(cell)) + int(s)


def one_liver(cell: tuple, seed: int, corr: str, design: str = "after") -> dict[str, Any]:
    """One small liver (:data:`CORR` noise ``corr``), ``liver_statistics`` as ``benchmarks.hetero_full.one``
    (true mask, true R2 map as the voxel fit; with ``+fix`` the correlation measured in the air). ``design``
    ``after``: this tree; ``before``: the between-tile bootstrap as if the noise were white (the hook of
    r2mri/_corr_bootstrap.py patched out, when it exists; on a tree without it, the tree as is). Records the
    headline, its interval and the interval's parts (s^-1)."""
    import contextlib
    import importlib.util
    from types import SimpleNamespace
    from unittest import mock

    from r2mri import estimate_noise
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    from .small20 import GEOMETRY

    sd, w, lic, snr, coils = cell
    ph = generate(lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=seed, lic_log_sd=sd,
                  lic_correlation_voxels=w if sd > 0 else 0.0, **dict(GEOMETRY, **CORR[corr]))
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    truth, truth_r2 = float(ph.summary["lic_of_mean_r2_mg_per_g"]), float(ph.summary["mean_liver_r2_per_s"])
    fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": sigma, "coils": coils})
    rc = estimate_noise(ph.image).spatial_correlation if corr.endswith("+fix") else None
    ctx = contextlib.nullcontext()
    if design == "before" and importlib.util.find_spec("r2mri._corr_bootstrap") is not None:
        ctx = mock.patch("r2mri._corr_bootstrap.correlated_bootstrap", lambda boot, *a, **k: (boot, None))
    with ctx:
        t0 = time.process_time()
        st = liver_statistics(fit, mask, image=ph.image, seed=seed, noise_correlation=rc)
        cpu = time.process_time() - t0
    b, h = st.blocks["r2_per_s"], st.blocks["headline"]
    mx = h["mixture"] or {}
    lo, hi = st.ci95_lic_mg_per_g
    return {"corr": corr, "design": design, "sd": sd, "width": w, "cell_lic": lic, "snr": snr, "coils": coils,
            "seed": seed, "truth_lic": truth, "truth_r2": truth_r2,
            "rho_lag1": None if rc is None else rc["rho_by_lag"].get(1), "load1": os.getloadavg()[0],
            "lic": st.headline_lic_mg_per_g, "r2": st.headline_r2_per_s, "lo": lo, "hi": hi,
            "err_pct": 100 * (st.headline_lic_mg_per_g / truth - 1), "r2_err": st.headline_r2_per_s - truth_r2,
            "covered": bool(lo <= truth <= hi), "half_width_pct": 100 * (hi - lo) / 2 / truth,
            "ci95_r2": b["headline_ci95"], "se_meas_r2": b["headline_se_measurement"],
            "se_boot_r2": b["headline_se_bootstrap"],
            "se_mixture_r2": float(np.sqrt(sum((mx.get(f"se_{t}_r2_per_s") or 0.0) ** 2
                                               for t in ("spread", "shape", "split")))) if mx else None,
            "upper_r2": mx.get("upper_extension_r2_per_s"), "correction_r2": mx.get("correction_r2_per_s"),
            "tile_fit_bias_r2": mx.get("tile_fit_bias_r2_per_s"), "rho_spread": mx.get("rho_by_tile_size"),
            "boot_stretch": h.get("bootstrap_noise_stretch"),
            "cpu_s": cpu}


def boot_run(seeds: int, corrs: list[str], cells=UNIFORM8, design: str = "after", out_path: Path = OUT_BOOT,
             first: int = 0) -> None:
    """Seeds ``first..first+seeds-1`` per cell and noise, distinct between cells (:func:`cell_seed`), appended
    to ``out_path`` (livers already there for this design are skipped)."""
    done = set()
    if out_path.exists():
        for line in out_path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["corr"], r["design"], r["seed"]))
    for cell in cells:
        t0 = time.time()
        for corr in corrs:
            for s in range(first, first + seeds):
                seed = cell_seed(cell, s)
                if (corr, design, seed) in done:
                    continue
                r = one_liver(cell, seed, corr, design)
                with out_path.open("a") as fh:
                    fh.write(json.dumps(r, default=float) + "\n")
        print(f"cell {cell}: {time.time() - t0:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)


def boot_table(out_path: Path = OUT_BOOT) -> str:
    """Per cell, noise and design: bias +- SE, SD of the error over seeds, the interval's SE (median half-width
    / 1.96), coverage, median SE parts (measurement / bootstrap / spread correction, % of R2), CPU."""
    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    out = ["| cell (SD, LIC, SNR, ch) | noise | design | n | bias % +- SE | SD of error % | half-width / 1.96 % "
           "| covered | SD of R2 error, % of R2 | SE meas / boot / spread, % of R2 | CPU s |", "|" + "---|" * 11]
    keys = sorted({(r["sd"], r["cell_lic"], r["snr"], r["coils"]) for r in rows})
    for key in keys:
        for c in CORR:
            for d in ("before", "after"):
                s = [r for r in rows if r["corr"] == c and r["design"] == d
                     and (r["sd"], r["cell_lic"], r["snr"], r["coils"]) == key]
                if len(s) < 2:
                    continue
                e = np.array([r["err_pct"] for r in s])
                parts = [np.median([(r[k] or 0.0) * 100 / r["truth_r2"] for r in s])
                         for k in ("se_meas_r2", "se_boot_r2", "se_mixture_r2")]
                if not any(r.get("se_mixture_r2") for r in s):  # rows written before 12:50 UTC did not record it
                    parts[2] = float("nan")
                out.append(f"| {key[0]:g}, {key[1]:g}, {key[2]:g}, {key[3]} | {c} | {d} | {e.size} | "
                           f"{e.mean():+.2f} +- {e.std(ddof=1) / np.sqrt(e.size):.2f} | {e.std(ddof=1):.2f} | "
                           f"{np.median([r['half_width_pct'] for r in s]) / 1.96:.2f} | "
                           f"{sum(r['covered'] for r in s)}/{e.size} | "
                           f"{np.std([100 * r['r2_err'] / r['truth_r2'] for r in s], ddof=1):.2f} | "
                           + " / ".join("-" if np.isnan(v) else f"{v:.2f}" for v in parts)
                           + f" | {np.median([r['cpu_s'] for r in s]):.2f} |")
    return "\n".join(out)


def gre_boot(seeds: int = 8, lic: float = 7.0, corr: str = "smooth1.03", snr: float = 20.0, coils: int = 8,
             sd: float = 0.4, width: float = 4.0, first: int = 1) -> str:
    """The fat-water headline (as :func:`gre`) with the measured correlation given, the between-tile bootstrap
    before (r2mri/_corr_bootstrap.py patched out, = branch gcorr) and after (branch corrboot), on the same fit.
    Rows appended to ``results/corr_noise_gre_boot.jsonl``; returns the Markdown summary."""
    import contextlib
    from unittest import mock

    import r2mri
    from r2mri import estimate_noise
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    from .small20 import GEOMETRY

    out = RESULTS / "corr_noise_gre_boot.jsonl"
    rows = []
    for seed in range(first, first + seeds):
        ph = generate("gre-1.5t-fat15-lic3.2", lic=lic, seed=seed, b0_peak_hz=0.0, snr=snr, coils=coils,
                      texture_seed=seed, lic_log_sd=sd, lic_correlation_voxels=width if sd > 0 else 0.0,
                      **dict(GEOMETRY, **CORR[corr]))
        mask, sigma = ph.truth.liver_mask, float(ph.summary["noise_sigma"])
        truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
        fit = r2mri.fit(ph.image, model="fatwater", threads=1)
        rc = estimate_noise(ph.image).spatial_correlation
        r = {"corr": corr, "sd": sd, "width": width, "cell_lic": lic, "snr": snr, "coils": coils, "seed": seed,
             "truth_lic": truth, "load_1min": os.getloadavg()[0]}
        for name in ("before", "after"):
            patch = mock.patch("r2mri._corr_bootstrap.correlated_bootstrap", lambda boot, *a, **k: (boot, None))
            with patch if name == "before" else contextlib.nullcontext():
                st = liver_statistics(fit, mask, ph.spec.calibration_name, image=ph.image, noise_sigma=sigma,
                                      coils=coils, seed=seed, noise_correlation=rc)
            lo, hi = st.ci95_lic_mg_per_g
            r[name] = {"lic": st.headline_lic_mg_per_g, "lo": lo, "hi": hi, "covered": bool(lo <= truth <= hi),
                       "err_pct": 100 * (st.headline_lic_mg_per_g / truth - 1),
                       "half_width_pct": 100 * (hi - lo) / 2 / truth,
                       "se_meas_r2": st.blocks["r2_per_s"]["headline_se_measurement"],
                       "se_boot_r2": st.blocks["r2_per_s"]["headline_se_bootstrap"],
                       "stretch": st.blocks["headline"]["bootstrap_noise_stretch"]}
        rows.append(r)
        with out.open("a") as fh:
            fh.write(json.dumps(r, default=float) + "\n")
    lines = [f"GRE {lic:g} mg/g SNR {snr:g} {coils} ch, {corr}, SD {sd:g} over {width:g} voxels, seeds {first}-"
             f"{first + seeds - 1}", "| design | bias % (SE) | seed SD % | covered | median half-width % "
             "| median SE_meas / SE_boot R2* | median stretch |", "|---|---|---|---|---|---|---|"]
    for d in ("before", "after"):
        e = np.array([r[d]["err_pct"] for r in rows])
        st_ = [r[d]["stretch"] for r in rows if r[d]["stretch"]]
        lines.append(f"| {d} | {e.mean():+.2f} ({e.std(ddof=1) / np.sqrt(e.size):.2f}) | {e.std(ddof=1):.2f} | "
                     f"{sum(r[d]['covered'] for r in rows)}/{e.size} | "
                     f"{np.median([r[d]['half_width_pct'] for r in rows]):.2f} | "
                     f"{np.median([r[d]['se_meas_r2'] for r in rows]):.3f} / "
                     f"{np.median([r[d]['se_boot_r2'] for r in rows]):.3f} | "
                     f"{np.median(st_) if st_ else float('nan'):.3f} |")
    return "\n".join(lines) + f"\n(load 1-min {os.getloadavg()[0]:.2f})"


def real_boot(data_dir: str = "/work/realdata") -> str:
    """The real 1.5 T ISMRM 2012 case 12 liver (fat-water route, ``r2mri.analyze`` defaults) with the
    between-tile bootstrap as if the noise were white (``before``: r2mri/_corr_bootstrap.py patched out) and
    stretched for the measured correlation (``after``, branch corrboot)."""
    import contextlib
    from unittest import mock

    import r2mri

    from .real_liver import ISMRM12, image, load_ismrm

    data, te, b0 = load_ismrm(Path(data_dir) / ISMRM12)
    img = image(data, te, b0, 1.5)
    lines = ["| design | LIC mg/g | 95 % interval | SE_meas R2* s^-1 | SE_boot R2* s^-1 | stretch | CPU s |",
             "|---|---|---|---|---|---|---|"]
    for name in ("before", "after"):
        ctx = mock.patch("r2mri._corr_bootstrap.correlated_bootstrap", lambda boot, *a, **k: (boot, None)) \
            if name == "before" else contextlib.nullcontext()
        with ctx:
            t0 = time.process_time()
            res = r2mri.analyze(img, threads=1)
            cpu = time.process_time() - t0
        st = res.statistics
        lo, hi = st.ci95_lic_mg_per_g
        b = st.blocks["r2_per_s"]
        s = st.blocks["headline"]["bootstrap_noise_stretch"]
        lines.append(f"| {name} | {st.headline_lic_mg_per_g:.3f} | {lo:.3f}-{hi:.3f} | "
                     f"{b['headline_se_measurement']:.3f} | {b['headline_se_bootstrap']:.3f} | "
                     f"{'-' if s is None else f'{s:.3f}'} | {cpu:.1f} |")
    return "\n".join(lines) + f"\n(load 1-min {os.getloadavg()[0]:.2f})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--first", type=int, default=0, help="first seed index per cell (--gre: first seed)")
    ap.add_argument("--only", nargs="*", default=["smooth1.03+fix"])
    ap.add_argument("--design", default="after", choices=["before", "after"])
    ap.add_argument("--cells", default="uniform8", choices=sorted(BOOT_CELLS))
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--real", action="store_true", help="the real ISMRM liver, before and after")
    ap.add_argument("--gre", nargs=6, default=None, metavar=("LIC", "CORR", "SNR", "COILS", "SD", "WIDTH"),
                    help="the fat-water headline, before and after (--seeds seeds from --first)")
    a = ap.parse_args(argv)
    if a.table:
        print(boot_table())
    elif a.real:
        print(real_boot())
    elif a.gre:
        lic, corr, snr, coils, sd, width = a.gre
        print(gre_boot(a.seeds, float(lic), corr, float(snr), int(coils), float(sd), float(width), max(a.first, 1)))
    else:
        boot_run(a.seeds, a.only, cells=BOOT_CELLS[a.cells], design=a.design, first=a.first)
        print(boot_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
