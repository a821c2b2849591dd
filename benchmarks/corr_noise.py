"""Issue 16: spatially correlated noise (interpolated reconstructions) against the headline's 95 % interval.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.corr_noise [--seeds N] [--only CORR] [--table]``
(from the repository root). Every liver is appended to ``benchmarks/results/corr_noise.jsonl``
(a rerun skips the livers already there); ``--table`` prints the Markdown table of
benchmarks/README.md from it. ``--real`` measures the noise correlation of the real series
instead (:func:`real_series`). ``--gre LIC...`` / ``--real-gre``: the fat-water (GRE R2*) headline
before/after carrying the correlation (:func:`gre`, :func:`real_gre`; branch gcorr). The between-tile
bootstrap on correlated noise, with distinct seeds per cell: ``benchmarks/corr_boot.py`` (branch corrboot).

Why: the real 1.5 T liver (ISMRM 2012 case 12, benchmarks/real_liver.py) has noise correlated
between neighbouring voxels (air, real part: 0.79 / 0.43 / 0.17 at lags 1 / 2 / 3), and
r2mri's tile estimator (r2mri/_spread_estimate.py, _headline.py, _measurement_se.py)
assumes independent voxels.

Grid: small livers (``benchmarks.small20.GEOMETRY``: 64 x 64 x 3 voxels of 6 mm, ~1,700
liver voxels), uniform and SD 0.4 in log LIC over 4 voxels, LIC 7 and 30 mg/g, SNR 20 and
50, 1 and 8 channels, seeds 0..N-1 (texture seed = noise seed), true liver mask; each liver
with white noise (``white``) and with the same seed's noise Gaussian-smoothed in-plane
(``smooth1.03``: ``noise_smoothing_voxels = 1.03``, lag-1 / 2 / 3 correlation 0.79 / 0.39 /
0.12, the 1.5 T series; r2mri/phantom/_noise_shape.py), zero-filled by 2 (``zip2``:
0.66 / 0.03 / -0.22) or smoothed less (``smooth0.5``: 0.26 / 0.02 / 0, near the report's
warning threshold of 0.2). Headline and interval: ``benchmarks.hetero_full.one``
(``liver_statistics``, the default estimator; true R2 map as the voxel fit). Truth: LIC of
the mean liver R2.
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
OUT = RESULTS / "corr_noise.jsonl"
CORR = {"white": {}, "smooth1.03": {"noise_smoothing_voxels": 1.03}, "zip2": {"noise_interpolation": 2},
        "smooth0.5": {"noise_smoothing_voxels": 0.5}}
# "+fix": the same noise, with the correlation measured in the air given to liver_statistics
# (r2mri/_corr_tiles.py, branch corrfix)
CORR.update({f"{c}+fix": v for c, v in list(CORR.items())})
TEXTURES = [(0.0, 1.0), (0.4, 4.0)]


def grid() -> list[tuple]:
    return [(sd, w, lic, snr, coils) for sd, w in TEXTURES for lic in (7.0, 30.0) for snr in (20.0, 50.0)
            for coils in (1, 8)]


def _done() -> set:
    if not OUT.exists():
        return set()
    keys = set()
    for line in OUT.read_text().splitlines():
        r = json.loads(line)
        keys.add((r["corr"], r["sd"], r["width"], r["cell_lic"], r["snr"], r["coils"], r["seed"]))
    return keys


def run(seeds: int, corrs: list[str]) -> None:
    from .hetero_full import one
    from .small20 import GEOMETRY

    done = _done()
    RESULTS.mkdir(exist_ok=True)
    for sd, w, lic, snr, coils in grid():
        t0 = time.time()
        for corr in corrs:
            for seed in range(seeds):
                if (corr, sd, w, lic, snr, coils, seed) in done:
                    continue
                r = one(sd, w, lic, snr, coils, seed, dict(GEOMETRY, **CORR[corr]), measured_correlation=corr.endswith("+fix"))
                keep = {k: r[k] for k in ("sd", "width", "cell_lic", "snr", "coils", "seed", "truth_lic", "lic", "lo",
                                          "hi", "err_pct", "covered", "half_width_pct", "cpu_s", "warnings",
                                          "se_measurement_r2", "se_bootstrap_r2", "rho")}
                keep["corr"] = corr
                keep["load1"] = os.getloadavg()[0]
                with open(OUT, "a") as fh:
                    fh.write(json.dumps(keep) + "\n")
        print(f"cell SD {sd:g} w {w:g} LIC {lic:g} SNR {snr:g} {coils} ch: {time.time() - t0:.0f} s, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)


def table() -> str:
    rows = [json.loads(line) for line in OUT.read_text().splitlines()]
    corrs = [c for c in CORR if any(r["corr"] == c for r in rows)]
    head = "| texture | LIC | SNR | ch | " + " | ".join(f"{c}: bias +- SE %, covered, median half-width %" for c in corrs) + " |"
    out = [head, "|" + "---|" * (4 + len(corrs))]
    for sd, w, lic, snr, coils in grid():
        cells = []
        for c in corrs:
            sel = [r for r in rows if (r["corr"], r["sd"], r["width"], r["cell_lic"], r["snr"], r["coils"])
                   == (c, sd, w, lic, snr, coils)]
            if not sel:
                cells.append("-")
                continue
            e = np.array([r["err_pct"] for r in sel])
            se = e.std(ddof=1) / np.sqrt(e.size) if e.size > 1 else float("nan")
            cells.append(f"{e.mean():+.2f} +- {se:.2f}, {sum(r['covered'] for r in sel)}/{len(sel)}, "
                         f"{np.median([r['half_width_pct'] for r in sel]):.1f}")
        tex = "uniform" if sd == 0 else f"SD {sd:g} w {w:g}"
        out.append(f"| {tex} | {lic:g} | {snr:g} | {coils} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def mechanism() -> str:
    """Per cell and noise: SD of the headline error over seeds (%), median measurement and
    bootstrap SE of the headline R2 (s^-1), mean spread estimate rho over tile edges."""
    rows = [json.loads(line) for line in OUT.read_text().splitlines()]
    out = ["| texture | LIC | SNR | ch | noise | n | SD of error % | SE measurement / bootstrap, s^-1 | mean rho |",
           "|---|---|---|---|---|---|---|---|---|"]
    for sd, w, lic, snr, coils in grid():
        for c in CORR:
            sel = [r for r in rows if (r["corr"], r["sd"], r["width"], r["cell_lic"], r["snr"], r["coils"])
                   == (c, sd, w, lic, snr, coils)]
            if len(sel) < 2:
                continue
            rho = [np.mean([v for v in r["rho"].values() if v is not None]) for r in sel if r["rho"]]
            tex = "uniform" if sd == 0 else f"SD {sd:g} w {w:g}"
            out.append(f"| {tex} | {lic:g} | {snr:g} | {coils} | {c} | {len(sel)} | "
                       f"{np.std([r['err_pct'] for r in sel], ddof=1):.2f} | "
                       f"{np.median([r['se_measurement_r2'] for r in sel]):.2f} / "
                       f"{np.median([r['se_bootstrap_r2'] for r in sel]):.2f} | "
                       f"{np.mean(rho) if rho else float('nan'):+.4f} |")
    return "\n".join(out)


def decompose(seeds: int = 6, cell=(0.0, 1.0, 30.0, 20.0, 8)) -> str:
    """Where the correlated noise's bias enters (``benchmarks.hetero_scaling.one``, % of the used
    voxels' mean R2): raw tile fits (``ncchi``), the same tiles fitted to their expected
    magnitude (``expected``: no fit noise), after the fit-bias terms (``box_sim``), headline
    (``mixture``); fit bias left = box_sim - expected."""
    from .hetero_scaling import one
    from .small20 import GEOMETRY

    sd, w, lic, snr, coils = cell
    out = [f"cell SD {sd:g} w {w:g} LIC {lic:g} SNR {snr:g} {coils} ch, seeds 0-{seeds - 1}, load {os.getloadavg()[0]:.1f}"]
    for c in ("white", "smooth1.03"):
        rows = [one(dict(GEOMETRY, **CORR[c]), s, sd=sd, width=w, lic=lic, snr=snr, coils=coils) for s in range(seeds)]
        e = {k: np.array([r["r2_err_pct"][k] for r in rows]) for k in ("ncchi", "expected", "box_sim", "mixture")}
        e["fit_bias_left"] = e["box_sim"] - e["expected"]
        e["fit_bias_raw"] = e["ncchi"] - e["expected"]
        out.append(f"  {c}: " + ", ".join(f"{k} {v.mean():+.2f} +- {v.std(ddof=1) / np.sqrt(v.size):.2f}"
                                         for k, v in e.items()) + " (% of R2)")
    return "\n".join(out)


def widen(factors=(1.0, 1.5, 1.79, 2.0)) -> str:
    """Post hoc (not in r2mri): coverage if each stored interval were widened about its headline
    by a factor, per noise: the lowest cell coverage and the cells below 90 %."""
    rows = [json.loads(line) for line in OUT.read_text().splitlines()]
    out = []
    for corr in CORR:
        parts = []
        for f in factors:
            cov = []
            for cell in grid():
                sel = [r for r in rows if r["corr"] == corr and (r["sd"], r["width"], r["cell_lic"], r["snr"],
                                                                 r["coils"]) == cell]
                if sel:
                    cov.append(np.mean([r["lic"] - f * (r["lic"] - r["lo"]) <= r["truth_lic"]
                                        <= r["lic"] + f * (r["hi"] - r["lic"]) for r in sel]))
            if cov:
                parts.append(f"x{f:g}: lowest {min(cov):.2f}, {sum(c < 0.9 for c in cov)} cells < 0.9")
        if parts:
            out.append(f"{corr}: " + "; ".join(parts))
    return "\n".join(out)


def gre(seeds: int = 8, lics=(3.2,), corr: str = "smooth1.03", snr: float = 50.0, coils: int = 8,
        first: int = 1, sd: float = 0.0, width: float = 4.0) -> str:
    """The fat-water (GRE R2*) headline on correlated noise, before (main: independent voxels) and after
    (branch gcorr: the measured correlation carried into the fat-water tile SEs, r2mri/_gre.py): phantom
    ``gre-1.5t-fat15-lic3.2`` (PDFF 15 %, default SNR 50, 8 channels, uniform liver, no B0 field) at the small
    geometry, seeds first..first+N-1, the voxel fat-water fit, true liver mask, ``liver_statistics`` (default
    estimator ``tile-fw-mixture``) without and with ``noise_correlation`` (both on the same fit).
    Rows appended to ``results/corr_noise_gre.jsonl``; returns the Markdown summary."""
    import r2mri
    from r2mri import estimate_noise
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    from .small20 import GEOMETRY

    out = RESULTS / "corr_noise_gre.jsonl"
    rows = []
    for lic in lics:
        for seed in range(first, first + seeds):
            ph = generate("gre-1.5t-fat15-lic3.2", lic=lic, seed=seed, b0_peak_hz=0.0, snr=snr, coils=coils,
                          texture_seed=seed, lic_log_sd=sd, lic_correlation_voxels=width if sd > 0 else 0.0,
                          **dict(GEOMETRY, **CORR[corr]))
            mask = ph.truth.liver_mask
            sigma = float(ph.summary["noise_sigma"])
            truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
            fit = r2mri.fit(ph.image, model="fatwater", threads=1)
            rc = estimate_noise(ph.image).spatial_correlation
            r = {"corr": corr, "sd": sd, "width": width, "cell_lic": lic, "snr": snr, "coils": coils, "seed": seed,
                 "truth_lic": truth, "load_1min": os.getloadavg()[0], "rho_by_lag": rc["rho_by_lag"] if rc else None}
            for name, kw in (("before", {}), ("after", {"noise_correlation": rc})):
                t0 = time.process_time()
                st = liver_statistics(fit, mask, ph.spec.calibration_name, image=ph.image, noise_sigma=sigma,
                                      coils=coils, seed=seed, **kw)
                lo, hi = st.ci95_lic_mg_per_g
                r[name] = {"lic": st.headline_lic_mg_per_g, "lo": lo, "hi": hi,
                           "err_pct": 100 * (st.headline_lic_mg_per_g / truth - 1), "covered": bool(lo <= truth <= hi),
                           "half_width_pct": 100 * (hi - lo) / 2 / truth,
                           "se_meas_r2": st.blocks["r2_per_s"]["headline_se_measurement"],
                           "se_boot_r2": st.blocks["r2_per_s"]["headline_se_bootstrap"],
                           "cpu_s": time.process_time() - t0}
            rows.append(r)
            with out.open("a") as fh:
                fh.write(json.dumps(r, default=float) + "\n")
    lines = [f"SNR {snr:g}, {coils} channels, SD {sd:g} in log LIC over {width:g} voxels",
             "| LIC | noise | design | n | bias % (SE) | covered | median half-width % | median SE_meas R2 |",
             "|---|---|---|---|---|---|---|---|"]
    for lic in lics:
        cell = [r for r in rows if r["cell_lic"] == lic]
        for d in ("before", "after"):
            e = np.array([r[d]["err_pct"] for r in cell])
            se_bias = e.std(ddof=1) / np.sqrt(e.size)
            lines.append(f"| {lic:g} | {corr} | {d} | {e.size} | {e.mean():+.2f} ({se_bias:.2f}) "
                         f"| {sum(r[d]['covered'] for r in cell)}/{e.size} "
                         f"| {np.median([r[d]['half_width_pct'] for r in cell]):.2f} "
                         f"| {np.median([r[d]['se_meas_r2'] for r in cell]):.2f} |")
    return "\n".join(lines)


def real_gre(data_dir: str = "/work/realdata") -> str:
    """The real 1.5 T ISMRM 2012 case 12 liver (benchmarks/real_liver.py, default settings: noise from the
    air) through ``r2mri.analyze``: headline and 95 % interval before (main: the fat-water tile statistics
    assume independent voxels; here by handing the GRE headline no correlation) and after (branch gcorr)."""
    from unittest import mock

    import r2mri
    from r2mri import _gre

    from .real_liver import ISMRM12, image, load_ismrm

    data, te, b0 = load_ismrm(Path(data_dir) / ISMRM12)
    img = image(data, te, b0, 1.5)
    orig = _gre.pooled_headline
    lines = ["| design | LIC mg/g | 95 % interval | SE_meas R2* s^-1 | SE_boot R2* s^-1 | corr. warning |",
             "|---|---|---|---|---|---|"]
    for name in ("before", "after"):
        def ph(*a, **kw):
            if name == "before":
                kw["noise_rho"] = None
            return orig(*a, **kw)

        with mock.patch.object(_gre, "pooled_headline", ph):
            res = r2mri.analyze(img, threads=1)
        st = res.statistics
        lo, hi = st.ci95_lic_mg_per_g
        b = st.blocks["r2_per_s"]
        w = [x for x in res.warnings if "independent" in x or "correlat" in x]
        lines.append(f"| {name} | {st.headline_lic_mg_per_g:.3f} | {lo:.3f}-{hi:.3f} | "
                     f"{b['headline_se_measurement']:.3f} | {b['headline_se_bootstrap']:.3f} | "
                     f"{(w[0][:60] + '...') if w else '-'} |")
    return "\n".join(lines) + f"\n(load 1-min {os.getloadavg()[0]:.2f})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--only", nargs="*", default=["white", "smooth1.03"])
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--mechanism", action="store_true")
    ap.add_argument("--widen", action="store_true")
    ap.add_argument("--decompose", type=int, default=0, help="seeds of the decomposition (uniform 30 mg/g SNR 20 8 ch)")
    ap.add_argument("--gre", nargs="*", type=float, default=None,
                    help="the fat-water headline at these LICs (mg/g), before/after (--seeds seeds)")
    ap.add_argument("--gre-first-seed", type=int, default=1)
    ap.add_argument("--gre-texture", nargs=2, type=float, default=[0.0, 4.0], metavar=("SD", "WIDTH"))
    ap.add_argument("--gre-cell", nargs=3, default=["smooth1.03", "50", "8"], metavar=("CORR", "SNR", "COILS"))
    ap.add_argument("--real-gre", action="store_true", help="the real ISMRM liver's headline before/after (gcorr)")
    a = ap.parse_args(argv)
    if a.real_gre:
        print(real_gre())
        return 0
    if a.gre is not None:
        c, snr, coils = a.gre_cell
        print(gre(a.seeds, tuple(a.gre) or (3.2,), c, float(snr), int(coils), a.gre_first_seed, *a.gre_texture))
        return 0
    if a.real:
        res = real_series()
        from ._common import write_json

        write_json(RESULTS / "corr_noise_real.json", res)
        print(json.dumps(res, indent=1, default=str))
        return 0
    if a.decompose:
        print(decompose(a.decompose))
        return 0
    if a.widen:
        print(widen())
        return 0
    if a.mechanism:
        print(mechanism())
        return 0
    if a.table:
        print(table())
        return 0
    run(a.seeds, a.only)
    print(table())
    return 0


def _complex_lag_corr(data: np.ndarray, air: np.ndarray, lags=(1, 2, 3)) -> dict[str, Any]:
    """Direct correlation of the real and imaginary parts of complex noise over air pairs
    (the reference the magnitude-only estimator is checked against)."""
    from r2mri._noise_correlation import _lag_sums

    out: dict[str, Any] = {}
    for name, part in (("real", data.real), ("imag", data.imag)):
        num = {lag: 0.0 for lag in lags}
        cnt = {lag: 0 for lag in lags}
        tp, tpc, var, nv = 0.0, 0, 0.0, 0
        for e in range(data.shape[-1]):
            q = part[..., e].astype(np.float64)
            q = q - q[air].mean()
            var, nv = var + float(np.sum(q[air] ** 2)), nv + int(air.sum())
            for lag in lags:
                for ax in (0, 1):
                    a, c = _lag_sums(q, air, ax, lag)
                    num[lag], cnt[lag] = num[lag] + a, cnt[lag] + c
            if air.shape[2] > 1:
                a, c = _lag_sums(q, air, 2, 1)
                tp, tpc = tp + a, tpc + c
        v = var / nv
        out[name] = {"lag": {lag: round(num[lag] / cnt[lag] / v, 3) for lag in lags},
                     "through_plane": round(tp / tpc / v, 3) if tpc else None}
    return out


def real_series() -> dict[str, Any]:
    """Noise correlation of the real series: the magnitude-only estimator of r2mri
    (``estimate_noise(...).spatial_correlation``) on the air ``estimate_noise`` selects, and
    for the complex 1.5 T series the direct correlation of the real / imaginary parts on the
    same air. Missing data are skipped with one line."""
    import r2mri
    from r2mri._noise_correlation import noise_correlation
    from r2mri._noise_estimate import _background_estimate

    from ._common import SIEMENS_DIR
    from .real_liver import ISMRM12, load_ismrm

    out: dict[str, Any] = {"load1": os.getloadavg()[0]}
    root = Path(os.environ.get("R2MRI_REALDATA", "/work/realdata"))
    path = root / ISMRM12
    if path.exists():
        data, te, b0 = load_ismrm(path)
        mag = np.abs(data).astype(np.float32)
        est = r2mri.estimate_noise(r2mri.MultiEchoImage(mag, te, field_strength_t=b0))
        bg = _background_estimate(mag, 200)
        air = bg[-1].reshape(mag.shape[:-1])
        from scipy import ndimage as ndi

        st = np.zeros((3, 3, 3), bool)
        st[:, :, 1] = True
        air_e = ndi.binary_erosion(air, st, iterations=2)
        out["ismrm12_1.5T"] = {"shape": list(data.shape), "sigma": est.sigma, "coils": est.coils,
                               "method": est.method, "air_voxels": int(air.sum()), "air_eroded": int(air_e.sum()),
                               "magnitude_estimator": est.spatial_correlation,
                               "magnitude_estimator_no_erosion": noise_correlation(mag, air, erode=0),
                               "magnitude_estimator_all_echoes": noise_correlation(mag, air, max_echoes=None),
                               "complex_direct_eroded_air": _complex_lag_corr(data, air_e)}
    else:
        print(f"{path}: absent, 1.5 T series skipped")
    if (SIEMENS_DIR / "dicom").exists():
        img = r2mri.load(SIEMENS_DIR / "dicom")  # loads; analyze refuses it as a CPMG train, estimate_noise does not
        est = r2mri.estimate_noise(img)
        out["mrbias_siemens_3T"] = {"shape": list(img.data.shape), "sigma": est.sigma, "coils": est.coils,
                                    "method": est.method, "n_voxels": est.n_voxels,
                                    "magnitude_estimator": est.spatial_correlation,
                                    "all_32_echoes": noise_correlation(
                                        img.data, _background_estimate(img.data, 200)[-1].reshape(
                                            img.data.shape[:-1]), max_echoes=None)}
    else:
        print(f"{SIEMENS_DIR}: absent, 3 T series skipped")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
