"""Accuracy against known truth: R2 bias/precision per model, and the headline LIC.

Part 1 - R2 per model. Mono-exponential decays at the FerriScan echo times,
R2 in 20..400 s^-1, SNR (S0 / sigma, per channel) 10..200, magnitude of 1 channel
(Rician) or of 8 channels combined by root-sum-of-squares (non-central chi). sigma
is fixed at 1 and S0 = SNR, so one fit call covers the whole grid with the true
``noise_sigma`` and ``coils`` passed to the models that use them. Reported per cell:
median and mean relative bias, SD of the estimates, the Cramer-Rao bound (CRB) of
R2 for the 2-parameter model with Gaussian noise of SD sigma (the high-SNR limit of
the magnitude noise; below SNR ~ 3 at the last echo it is only indicative), and the
ratio of the mean reported ``r2_std_per_s`` to the empirical SD.

Part 2 - the headline LIC. A liver ROI of ``n_voxels`` voxels with a log-normal
voxel LIC (10 % CV) about a nominal LIC in 0.5..40 mg/g, mapped to R2 with the
St Pierre forward curve (``r2mri.r2_from_lic``), synthesised at the FerriScan TEs
with Rician noise at SNR 20/50/100, fitted with ``model="auto"`` (true sigma passed),
converted with ``r2mri.lic_from_r2``. Truth: LIC of the mean true R2 (FerriScan's
headline), mean and median of the true voxel LIC. Coverage: the fraction of seeds
whose reported 95 % interval for LIC(mean R2) contains the truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._common import FERRISCAN_TE_S, md_table, ncchi_magnitude, r2mri_available

MODELS = ["loglinear", "monoexp", "monoexp_offset", "ncchi", "truncated", "auto", "biexp"]
R2_GRID = [20.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0]
SNR_GRID = [10.0, 20.0, 50.0, 100.0, 200.0]
COILS = [1, 8]
LIC_GRID = [0.5, 1.0, 2.0, 3.2, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 40.0]
LIC_SNRS = [20.0, 50.0, 100.0]


def crb_r2(r2: float, s0: float, sigma: float, te: np.ndarray) -> float:
    """Cramer-Rao bound on the SD of R2 for S0 exp(-R2 t) with Gaussian noise sigma."""
    e = np.exp(-r2 * te)
    jac = np.stack([e, -s0 * te * e], axis=1)
    fisher = jac.T @ jac / sigma**2
    return float(np.sqrt(np.linalg.inv(fisher)[1, 1]))


def _kw(model: str, sigma: float, coils: int) -> dict[str, Any]:
    kw: dict[str, Any] = {"model": model}
    if model in ("ncchi", "truncated", "auto"):
        kw.update(noise_sigma=sigma, coils=coils)
    return kw


def run_r2(quick: bool) -> dict[str, Any]:
    import r2mri

    te = FERRISCAN_TE_S
    n = 200 if quick else 2000
    r2_grid = R2_GRID[::2] if quick else R2_GRID
    snr_grid = [20.0, 50.0] if quick else SNR_GRID
    models = ["monoexp", "ncchi", "auto"] if quick else MODELS
    out: dict[str, Any] = {"n_per_cell": n, "r2_grid": r2_grid, "snr_grid": snr_grid,
                           "coils": COILS, "echo_times_s": te, "sigma": 1.0, "cells": []}
    r2_true = np.repeat(np.array([[r, s] for r in r2_grid for s in snr_grid]), n, axis=0)
    cell_r2, cell_snr = r2_true[:, 0], r2_true[:, 1]
    crb = {(r, s): crb_r2(r, s, 1.0, te) for r in r2_grid for s in snr_grid}
    for coils in COILS:
        rng = np.random.default_rng(100 + coils)
        amp = cell_snr[:, None] * np.exp(-cell_r2[:, None] * te[None, :])
        data = ncchi_magnitude(amp, 1.0, coils, rng).astype(np.float32)
        data = data.reshape(-1, 1, 1, te.size)
        for model in models:
            try:
                fit = r2mri.fit(data, echo_times_s=te, **_kw(model, 1.0, coils))
            except Exception as exc:  # noqa: BLE001
                out["cells"].append({"model": model, "coils": coils,
                                     "error": f"{type(exc).__name__}: {exc}"})
                continue
            est = np.asarray(fit.r2_per_s, dtype=np.float64).reshape(-1)
            std = np.asarray(fit.r2_std_per_s, dtype=np.float64).reshape(-1)
            status = np.asarray(fit.status).reshape(-1)
            for r in r2_grid:
                for s in snr_grid:
                    sel = (cell_r2 == r) & (cell_snr == s)
                    e = est[sel]
                    fin = np.isfinite(e)
                    ef = e[fin]
                    sd = float(np.std(ef)) if ef.size > 1 else None
                    out["cells"].append({
                        "model": model, "model_used": getattr(fit, "model", model),
                        "coils": coils, "r2": r, "snr": s,
                        "median_bias_pct": 100 * (float(np.median(ef)) / r - 1) if ef.size else None,
                        "mean_bias_pct": 100 * (float(np.mean(ef)) / r - 1) if ef.size else None,
                        "sd_pct": 100 * sd / r if sd is not None else None,
                        "robust_sd_pct": 100 * float(np.subtract(*np.percentile(ef, [75, 25])))
                        / 1.349 / r if ef.size else None,
                        "crb_pct": 100 * crb[(r, s)] / r,
                        "finite_fraction": float(np.mean(fin)),
                        "ok_fraction": float(np.mean(status[sel] == 0)),
                        "reported_sd_over_empirical": float(np.nanmean(std[sel])) / sd
                        if sd else None,
                    })
    return out


def _interval_from_stats(stats: Any) -> tuple[float, float] | None:
    """Find the 95 % interval of the headline LIC in r2mri's statistics, if it has one."""
    d = stats.to_dict() if hasattr(stats, "to_dict") else stats
    found: list[tuple[str, Any]] = []

    def walk(obj, path=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{path}.{k}")
        elif isinstance(obj, (list, tuple)) and len(obj) == 2 and \
                all(isinstance(x, (int, float)) for x in obj):
            found.append((path, obj))

    walk(d)
    for path, val in found:
        p = path.lower()
        if "lic" in p and ("ci95" in p or "95" in p or "interval" in p) and "r2" not in p.split(".")[-1]:
            return float(val[0]), float(val[1])
    return None


def run_lic(quick: bool) -> dict[str, Any]:
    import r2mri

    te = FERRISCAN_TE_S
    n_vox = 2000 if quick else 10000
    seeds = range(3) if quick else range(20)
    lic_grid = [1.0, 7.0, 30.0] if quick else LIC_GRID
    sigma = 1.0
    have_stats = False
    try:
        from r2mri import stats as _stats  # noqa: F401
        have_stats = hasattr(_stats, "liver_statistics")
    except Exception:  # noqa: BLE001
        have_stats = False
    out: dict[str, Any] = {"n_voxels": n_vox, "n_seeds": len(list(seeds)), "lic_cv": 0.10,
                           "model": "auto", "calibration": "st-pierre-2005", "rows": [],
                           "interval_source": None}
    for snr in LIC_SNRS:
        for lic in lic_grid:
            rec = {"snr": snr, "lic": lic, "err_lic_of_mean_r2": [], "err_mean_voxel_lic": [],
                   "err_median_voxel_lic": [], "covered": []}
            for seed in seeds:
                rng = np.random.default_rng(seed * 1000 + int(lic * 10) + int(snr))
                lic_vox = lic * np.exp(0.10 * rng.standard_normal(n_vox) - 0.005)
                lic_vox = np.clip(lic_vox, 0.31, 42.6)
                r2_vox = np.asarray(r2mri.r2_from_lic(lic_vox), dtype=np.float64)
                truth_head = float(r2mri.lic_from_r2(np.mean(r2_vox)))
                amp = snr * sigma * np.exp(-r2_vox[:, None] * te[None, :])
                data = ncchi_magnitude(amp, sigma, 1, rng).astype(np.float32)
                fit = r2mri.fit(data.reshape(-1, 1, 1, te.size), echo_times_s=te, model="auto",
                                noise_sigma=sigma, coils=1)
                r2 = np.asarray(fit.r2_per_s, dtype=np.float64).reshape(-1)
                ok = np.isfinite(r2)
                lic_hat = np.asarray(r2mri.lic_from_r2(r2[ok]), dtype=np.float64)
                head = float(r2mri.lic_from_r2(np.mean(r2[ok])))
                rec["err_lic_of_mean_r2"].append(head - truth_head)
                rec["err_mean_voxel_lic"].append(float(np.nanmean(lic_hat) - np.mean(lic_vox)))
                rec["err_median_voxel_lic"].append(float(np.nanmedian(lic_hat) -
                                                         np.median(lic_vox)))
                interval = None
                if have_stats:
                    interval = _stats_interval(r2mri, fit, n_vox)
                    if interval is not None:
                        out["interval_source"] = "r2mri.stats.liver_statistics"
                if interval is None:
                    # fallback: the standard error of the mean R2 from the voxel spread
                    se = float(np.std(r2[ok], ddof=1) / np.sqrt(ok.sum()))
                    m = float(np.mean(r2[ok]))
                    interval = (float(r2mri.lic_from_r2(m - 1.96 * se)),
                                float(r2mri.lic_from_r2(m + 1.96 * se)))
                    out["interval_source"] = out["interval_source"] or \
                        "benchmark fallback: mean R2 +/- 1.96 SE (voxel spread), mapped to LIC"
                rec["covered"].append(interval[0] <= truth_head <= interval[1])
            row = {"snr": snr, "lic": lic}
            for k in ("err_lic_of_mean_r2", "err_mean_voxel_lic", "err_median_voxel_lic"):
                a = np.asarray(rec[k])
                row[k] = {"mean": float(np.mean(a)), "sd": float(np.std(a)),
                          "rel_mean_pct": 100 * float(np.mean(a)) / lic}
            row["coverage_95"] = float(np.mean(rec["covered"]))
            out["rows"].append(row)
    return out


def _stats_interval(r2mri, fit, n_vox):
    """Ask r2mri.stats for the headline interval; None when its API does not fit."""
    try:
        from r2mri import stats as st
        lic_map = r2mri.lic_from_r2(fit.r2_per_s)
        mask = np.ones(np.shape(fit.r2_per_s), dtype=bool)
        s = st.liver_statistics(fit=fit, lic_mg_per_g=lic_map, mask=mask)
        return _interval_from_stats(s)
    except Exception:  # noqa: BLE001 - the fallback interval is used and labelled
        return None


def run_lic_pipeline(quick: bool) -> dict[str, Any]:
    """Headline LIC through the whole chain: phantom -> r2mri.analyze -> report values.

    ``r2mri.phantom.generate`` (FerriScan 1.5 T spec, 64 x 64 x 3 slices of 1.5 mm
    pixels, 4-coil RSS noise, 10 % LIC texture) at each nominal LIC, SNR and seed;
    ``r2mri.analyze(image, mask=truth liver mask)`` with sigma estimated by r2mri,
    as a user would run it; the headline, mean and median LIC and the 95 % interval
    are read from the report dictionary.
    """
    import r2mri
    import r2mri.phantom as ph
    from r2mri.report._json import report_dict

    seeds = range(2) if quick else range(8)
    lic_grid = [1.0, 7.0, 30.0] if quick else [0.5, 1.0, 3.2, 7.0, 15.0, 25.0, 40.0]
    geom = {"matrix": (64, 64), "pixel_mm": 6.0, "n_slices": 3, "lic_cv": 0.10}
    out: dict[str, Any] = {"phantom": dict(geom, spec="ferriscan-1.5t default"),
                           "n_seeds": len(list(seeds)), "model": "auto (sigma estimated)",
                           "rows": [], "failures": []}
    for snr in LIC_SNRS:
        for lic in lic_grid:
            errs: dict[str, list] = {"of_mean_r2": [], "mean": [], "median": []}
            covered, widths = [], []
            for seed in seeds:
                try:
                    p = ph.generate(seed=seed, lic=lic, snr=snr, **geom)
                    res = r2mri.analyze(p.image, mask=p.truth.liver_mask)
                    rep = report_dict(res)["lic_mg_per_g"]
                except Exception as exc:  # noqa: BLE001
                    out["failures"].append({"snr": snr, "lic": lic, "seed": seed,
                                            "error": f"{type(exc).__name__}: {exc}"})
                    continue
                t = p.summary
                truth = {"of_mean_r2": t["lic_of_mean_r2_mg_per_g"],
                         "mean": t["mean_voxel_lic_mg_per_g"],
                         "median": t["median_voxel_lic_mg_per_g"]}
                for k in errs:
                    if rep.get(k) is not None:
                        errs[k].append(float(rep[k]) - truth[k])
                ci = rep.get("ci95")
                if ci and ci[0] is not None and ci[1] is not None:
                    covered.append(ci[0] <= truth["of_mean_r2"] <= ci[1])
                    widths.append(ci[1] - ci[0])
            row: dict[str, Any] = {"snr": snr, "lic": lic}
            for k, a in errs.items():
                a = np.asarray(a)
                row[f"err_{k}"] = {"mean": float(np.mean(a)) if a.size else None,
                                   "sd": float(np.std(a)) if a.size else None,
                                   "rel_mean_pct": 100 * float(np.mean(a)) / lic if a.size
                                   else None, "n": int(a.size)}
            row["coverage_95"] = float(np.mean(covered)) if covered else None
            row["n_intervals"] = len(covered)
            row["mean_ci_width"] = float(np.mean(widths)) if widths else None
            out["rows"].append(row)
    return out


def run(quick: bool) -> dict[str, Any]:
    ok, why = r2mri_available("fit")
    if not ok:
        return {"error": f"r2mri.fit not importable: {why}"}
    import time

    t0 = time.perf_counter()
    res: dict[str, Any] = {"r2": run_r2(quick)}
    res["r2"]["time_s"] = time.perf_counter() - t0
    ok, why = r2mri_available("lic_from_r2", "r2_from_lic")
    t0 = time.perf_counter()
    res["lic"] = run_lic(quick) if ok else {"error": f"calibration not importable: {why}"}
    res["lic"]["time_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ok, why = r2mri_available("analyze", "phantom")
    if ok:
        try:
            import r2mri.stats  # noqa: F401
            import r2mri.roi  # noqa: F401
        except Exception as exc:  # noqa: BLE001
            ok, why = False, f"{type(exc).__name__}: {exc}"
    res["lic_pipeline"] = run_lic_pipeline(quick) if ok else \
        {"error": f"analyze/phantom/stats not importable: {why}"}
    res["lic_pipeline"]["time_s"] = time.perf_counter() - t0
    return res


def plots(res: dict[str, Any], out: Path) -> list[str]:
    if "error" in res:
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r2 = res["r2"]
    cells = [c for c in r2["cells"] if "error" not in c]
    models = list(dict.fromkeys(c["model"] for c in cells))
    snr_ref = 50.0 if 50.0 in r2["snr_grid"] else r2["snr_grid"][-1]
    r2_ref = 100.0 if 100.0 in r2["r2_grid"] else r2["r2_grid"][0]
    fig, axes = plt.subplots(2, 4, figsize=(20, 8))
    for row, coils in enumerate(r2["coils"]):
        for m in models:
            sel = sorted([c for c in cells if c["model"] == m and c["coils"] == coils
                          and c["snr"] == snr_ref], key=lambda c: c["r2"])
            axes[row, 0].plot([c["r2"] for c in sel], [c["median_bias_pct"] for c in sel], "o-",
                              label=m)
            axes[row, 1].plot([c["r2"] for c in sel], [c["sd_pct"] for c in sel], "o-", label=m)
            sel = sorted([c for c in cells if c["model"] == m and c["coils"] == coils
                          and c["r2"] == r2_ref], key=lambda c: c["snr"])
            axes[row, 2].plot([c["snr"] for c in sel], [c["median_bias_pct"] for c in sel], "o-",
                              label=m)
            axes[row, 3].plot([c["snr"] for c in sel], [c["sd_pct"] for c in sel], "o-", label=m)
        ref = sorted([c for c in cells if c["model"] == models[0] and c["coils"] == coils
                      and c["snr"] == snr_ref], key=lambda c: c["r2"])
        axes[row, 1].plot([c["r2"] for c in ref], [c["crb_pct"] for c in ref], "k--", lw=2,
                          label="CRB")
        ref = sorted([c for c in cells if c["model"] == models[0] and c["coils"] == coils
                      and c["r2"] == r2_ref], key=lambda c: c["snr"])
        axes[row, 3].plot([c["snr"] for c in ref], [c["crb_pct"] for c in ref], "k--", lw=2,
                          label="CRB")
        axes[row, 0].set(xlabel="true R2 (1/s)", ylabel="median bias %",
                         title=f"{coils} ch, SNR {snr_ref:g}: bias")
        axes[row, 1].set(xlabel="true R2 (1/s)", ylabel="SD %", yscale="log",
                         title=f"{coils} ch, SNR {snr_ref:g}: precision")
        axes[row, 2].set(xlabel="SNR", ylabel="median bias %", xscale="log",
                         title=f"{coils} ch, R2 {r2_ref:g}/s: bias")
        axes[row, 3].set(xlabel="SNR", ylabel="SD %", xscale="log", yscale="log",
                         title=f"{coils} ch, R2 {r2_ref:g}/s: precision")
        for ax in axes[row]:
            ax.axhline(0, color="grey", lw=0.5)
    axes[0, 1].legend(fontsize=8)
    fig.tight_layout()
    names = []
    p = out / "accuracy_r2.png"
    fig.savefig(p, dpi=80)
    plt.close(fig)
    names.append(p.name)

    sets = [(res.get("lic", {}), "engine", "o-", "err_lic_of_mean_r2"),
            (res.get("lic_pipeline", {}), "chain", "s--", "err_of_mean_r2")]
    sets = [x for x in sets if "rows" in x[0]]
    if sets:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        for data, tag, style, key in sets:
            for snr in sorted({r["snr"] for r in data["rows"]}):
                rows = sorted([r for r in data["rows"] if r["snr"] == snr and
                               r[key]["mean"] is not None], key=lambda r: r["lic"])
                x = [r["lic"] for r in rows]
                axes[0].errorbar(x, [r[key]["rel_mean_pct"] for r in rows],
                                 yerr=[100 * r[key]["sd"] / r["lic"] for r in rows],
                                 fmt=style, capsize=3, label=f"{tag}, SNR {snr:g}")
                cov = [(r["lic"], r["coverage_95"]) for r in rows if r["coverage_95"] is not None]
                if cov:
                    axes[1].plot(*zip(*cov), style, label=f"{tag}, SNR {snr:g}")
        axes[0].set(xscale="log", xlabel="true LIC (mg/g)", yscale="symlog",
                    ylabel="error of LIC(mean R2), % (mean +/- SD over seeds)")
        axes[0].axhline(0, color="grey", lw=0.5)
        axes[1].axhline(0.95, color="k", ls="--")
        axes[1].set(xscale="log", xlabel="true LIC (mg/g)", ylabel="95 % interval coverage",
                    ylim=(0, 1.05))
        for ax in axes:
            ax.legend(fontsize=7)
        fig.tight_layout()
        p = out / "accuracy_lic.png"
        fig.savefig(p, dpi=80)
        plt.close(fig)
        names.append(p.name)
    return names


def tables(res: dict[str, Any]) -> str:
    if "error" in res:
        return f"not measured: {res['error']}"
    r2 = res["r2"]
    cells = [c for c in r2["cells"] if "error" not in c]
    errs = [c for c in r2["cells"] if "error" in c]
    out = [f"R2 accuracy: {r2['n_per_cell']} curves per cell, FerriScan TEs, sigma = 1, "
           "S0 = SNR. Median bias % / SD % (CRB %) at SNR 50 (or the nearest measured):"]
    snr_ref = 50.0 if 50.0 in r2["snr_grid"] else r2["snr_grid"][-1]
    models = list(dict.fromkeys(c["model"] for c in cells))
    for coils in r2["coils"]:
        rows = []
        for r in r2["r2_grid"]:
            row: list[Any] = [r]
            crb = None
            for m in models:
                hit = [c for c in cells if c["model"] == m and c["coils"] == coils and
                       c["r2"] == r and c["snr"] == snr_ref]
                if hit:
                    c = hit[0]
                    crb = c["crb_pct"]
                    row.append(f"{c['median_bias_pct']:+.1f} / {c['sd_pct']:.1f}"
                               if c["median_bias_pct"] is not None else "-")
                else:
                    row.append("-")
            row.append(crb)
            rows.append(row)
        out.append(f"\n{coils} channel(s), SNR {snr_ref:g}:\n\n" +
                   md_table(["R2 (1/s)"] + models + ["CRB SD %"], rows))
    # worst |median bias| over R2 20..300 at SNR >= 20 per model (issue 2's criterion is SNR 50)
    rows = []
    for m in models:
        row = [m]
        for coils in r2["coils"]:
            sel = [c for c in cells if c["model"] == m and c["coils"] == coils and
                   c["r2"] <= 300 and c["snr"] == snr_ref and c["median_bias_pct"] is not None]
            row.append(max(abs(c["median_bias_pct"]) for c in sel) if sel else None)
            sel = [c for c in cells if c["model"] == m and c["coils"] == coils and
                   c["snr"] == snr_ref and c["reported_sd_over_empirical"] is not None and
                   c["r2"] <= 300]
            row.append(float(np.median([c["reported_sd_over_empirical"] for c in sel]))
                       if sel else None)
        rows.append(row)
    out.append(f"\nWorst |median bias| % over R2 20..300 at SNR {snr_ref:g}, and the median ratio "
               "reported r2_std / empirical SD:\n\n" +
               md_table(["model", "1 ch worst bias %", "1 ch std ratio",
                         "8 ch worst bias %", "8 ch std ratio"], rows))
    if errs:
        out.append("\nModels that failed: " + "; ".join(f"{c['model']} ({c['coils']} ch): "
                                                       f"{c['error']}" for c in errs))
    lic = res.get("lic", {})
    if "rows" in lic:
        rows = [[r["snr"], r["lic"],
                 f"{r['err_lic_of_mean_r2']['rel_mean_pct']:+.2f} ± "
                 f"{100 * r['err_lic_of_mean_r2']['sd'] / r['lic']:.2f}",
                 f"{r['err_mean_voxel_lic']['rel_mean_pct']:+.2f}",
                 f"{r['err_median_voxel_lic']['rel_mean_pct']:+.2f}", r["coverage_95"]]
                for r in lic["rows"]]
        out.append(f"\nHeadline LIC ({lic['n_voxels']:,} ROI voxels, {lic['n_seeds']} seeds, "
                   f"model {lic['model']}, {lic['calibration']}); error % of truth (mean ± SD "
                   f"over seeds); interval: {lic['interval_source']}:\n\n" +
                   md_table(["SNR", "LIC mg/g", "LIC(mean R2) err %", "mean voxel LIC err %",
                             "median voxel LIC err %", "95% coverage"], rows))
    elif "error" in lic:
        out.append(f"\nHeadline LIC not measured: {lic['error']}")
    pl = res.get("lic_pipeline", {})
    if "rows" in pl:
        def _e(r, k):
            e = r[f"err_{k}"]
            return "-" if e["mean"] is None else \
                f"{e['rel_mean_pct']:+.2f} ± {100 * e['sd'] / r['lic']:.2f}"
        rows = [[r["snr"], r["lic"], _e(r, "of_mean_r2"), _e(r, "mean"), _e(r, "median"),
                 r["coverage_95"], r["mean_ci_width"]] for r in pl["rows"]]
        out.append(f"\nHeadline LIC through the whole chain (`r2mri.phantom.generate` "
                   f"{pl['phantom']}, `r2mri.analyze` with the true liver mask, "
                   f"{pl['n_seeds']} seeds, {pl['model']}); error % of the phantom truth, "
                   "mean ± SD over seeds; coverage of the report's `ci95`:\n\n" +
                   md_table(["SNR", "LIC mg/g", "LIC(mean R2) err %", "mean voxel LIC err %",
                             "median voxel LIC err %", "95% coverage", "mean CI width mg/g"],
                            rows))
        if pl["failures"]:
            out.append(f"\n{len(pl['failures'])} pipeline runs failed; first: "
                       f"{pl['failures'][0]}")
    elif "error" in pl:
        out.append(f"\nWhole-chain headline LIC not measured: {pl['error']}")
    return "\n".join(out)
