"""Issue 16, reporting: the report's heterogeneity block end to end against phantom truth.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.hetero_report [--seeds 1 2 3] [--snr 20]
[--coils 8] [--cases focal coarse ...]`` (from the repository root). Writes
``benchmarks/results/hetero_report.json`` and prints one line per run and a summary per
case (CV bias +- SE of the seed mean, interval coverage, largest category error,
warning count).

Phantoms: the shipped full-size specs (256 x 256 x 11, 1.5 mm) through
:func:`r2mri.analyze` with the automatic ROI, exactly what ``r2mri analyze`` does (no
outputs written). Truth over the ROI the report used (``result.roi.mask`` and the
phantom's liver mask without vessels): the population CV of the true voxel R2 and the
category fractions of the true voxel LIC (``r2mri._heterogeneity.category_fractions``);
``truth.json`` gives the same over the whole liver (``cv_liver_r2``,
``liver_category_fractions``), printed beside it. Accuracy, not speed; not part of
``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

#: case name -> (spec, overrides)
CASES = {
    "uniform-1": ("ferriscan-1.5t-lic7", {"lic_mg_per_g": 1.0}),
    "uniform-3.2": ("ferriscan-1.5t-lic3.2", {}),
    "uniform-5": ("ferriscan-1.5t-lic7", {"lic_mg_per_g": 5.0}),
    "uniform-7": ("ferriscan-1.5t-lic7", {}),
    "uniform-10": ("ferriscan-1.5t-lic7", {"lic_mg_per_g": 10.0}),
    "uniform-15": ("ferriscan-1.5t-lic15", {}),
    "uniform-20": ("ferriscan-1.5t-lic15", {"lic_mg_per_g": 20.0}),
    "uniform-30": ("ferriscan-1.5t-lic15", {"lic_mg_per_g": 30.0}),
    "focal": ("heterogeneous-focal-1.5t", {}),
    "focal-3": ("heterogeneous-focal-1.5t", {"lic_mg_per_g": 3.0}),
    "coarse": ("heterogeneous-coarse-1.5t", {}),
    "coarse-3": ("heterogeneous-coarse-1.5t", {"lic_mg_per_g": 3.0}),
    "fine": ("heterogeneous-fine-1.5t", {}),
    "fine-3": ("heterogeneous-fine-1.5t", {"lic_mg_per_g": 3.0}),
    "hetero": ("heterogeneous-1.5t", {}),
    "fine-15": ("heterogeneous-fine-1.5t", {"lic_mg_per_g": 15.0}),
    "coarse-15": ("heterogeneous-coarse-1.5t", {"lic_mg_per_g": 15.0}),
    "focal-15": ("heterogeneous-focal-1.5t", {"lic_mg_per_g": 15.0}),
}


def one(case: str, seed: int, snr: float, coils: int) -> dict:
    import r2mri
    from r2mri._heterogeneity import category_fractions
    from r2mri.phantom import generate

    spec, kw = CASES[case]
    ph = generate(spec, seed=seed, snr=snr, coils=coils, **kw)
    t0 = time.process_time()
    res = r2mri.analyze(ph.image, threads=1)
    cpu = time.process_time() - t0
    roi = np.asarray(res.roi.mask, dtype=bool)
    liver = np.asarray(ph.truth.liver_mask, dtype=bool)
    m = roi & liver
    t = ph.truth.r2_per_s[m].astype(np.float64)
    h = res.statistics.to_dict()["heterogeneity"]
    truth_fr = category_fractions(ph.truth.lic_mg_per_g[m])
    est_fr = h.get("category_fractions")
    out = {
        "case": case, "spec": spec, "overrides": kw, "seed": seed, "snr": snr, "coils": coils,
        "roi_voxels": int(roi.sum()), "roi_outside_liver_fraction": float(1 - m.sum() / max(roi.sum(), 1)),
        "truth_cv_roi": float(t.std() / t.mean()), "truth_cv_liver": ph.summary["cv_liver_r2"],
        "truth_fractions_roi": truth_fr, "truth_fractions_liver": ph.summary["liver_category_fractions"],
        "truth_headline": ph.summary["lic_of_mean_r2_mg_per_g"],
        "headline": res.statistics.headline_lic_mg_per_g,
        "headline_ci95": list(res.statistics.ci95_lic_mg_per_g),
        "measurable": h.get("measurable"), "cv": h.get("r2_cv_noise_corrected"), "cv_ci95": h.get("r2_cv_ci95"),
        "cv_lower_bound_tiles": h.get("r2_cv_lower_bound_tiles"),
        "cv_lower_bound_tiles_ci95": h.get("r2_cv_lower_bound_tiles_ci95"),
        "fractions": est_fr, "different_fraction": h.get("different_category_fraction"),
        "warns": h.get("warning") is not None, "warning": h.get("warning"), "cpu_s": cpu,
    }
    if est_fr:
        out["fraction_max_error"] = max(abs(est_fr[k] - truth_fr[k]) for k in truth_fr)
    return out


def _headline_cell(rr: list[dict]) -> str:
    """Mean headline bias against truth.json's LIC of the mean liver R2, and how many
    intervals held it (runs without ``headline_ci95``: bias only)."""
    bias = np.mean([100 * (r["headline"] / r["truth_headline"] - 1) for r in rr])
    ci = [r for r in rr if r.get("headline_ci95")]
    held = sum(r["headline_ci95"][0] <= r["truth_headline"] <= r["headline_ci95"][1] for r in ci)
    return f"{bias:+.1f}" + (f" ({held}/{len(ci)})" if ci else "")


def summarise(rows: list[dict]) -> list[str]:
    lines = ["| case | SNR | coils | runs | truth CV (ROI) | CV bias +- SE (x1000) | SD of CV (x1000) | "
             "truth in 95 % CI | max fraction error (points) | warns | headline bias % (truth in its CI) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["case"], r["snr"], r["coils"]) for r in rows}, key=lambda k: (k[1], k[2], list(CASES).index(k[0])))
    for case, snr, coils in keys:
        rr = [r for r in rows if (r["case"], r["snr"], r["coils"]) == (case, snr, coils)]
        meas = [r for r in rr if r["measurable"]]
        tcv = np.mean([r["truth_cv_roi"] for r in rr])
        if meas:
            d = np.array([r["cv"] - r["truth_cv_roi"] for r in meas])
            sd = d.std(ddof=1) if d.size > 1 else float("nan")
            se = sd / np.sqrt(d.size) if d.size > 1 else float("nan")
            cov = sum(r["cv_ci95"][0] <= r["truth_cv_roi"] <= r["cv_ci95"][1] for r in meas)
            ferr = max(r["fraction_max_error"] for r in meas)
            cvtxt = f"{1000 * d.mean():+.1f} +- {1000 * se:.1f}"
            sdtxt = f"{1000 * sd:.1f}"
            covtxt = f"{cov}/{len(meas)}"
            ftxt = f"{100 * ferr:.1f}"
        else:
            lb = [r["cv_lower_bound_tiles"] for r in rr if r["cv_lower_bound_tiles"] is not None]
            cvtxt = "not measurable" + (f" (tile bound {min(lb):.3f}-{max(lb):.3f})" if lb else "")
            sdtxt = covtxt = ftxt = "-"
        nm = len(rr) - len(meas)
        lines.append(f"| {case} | {snr:g} | {coils} | {len(rr)}{f' ({nm} not measurable)' if nm and meas else ''} | "
                     f"{tcv:.4f} | {cvtxt} | {sdtxt} | {covtxt} | {ftxt} | {sum(r['warns'] for r in rr)}/{len(rr)} | "
                     + _headline_cell(rr) + " |")
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--snr", type=float, nargs="+", default=[20.0])
    ap.add_argument("--coils", type=int, nargs="+", default=[8])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--out", default=str(RESULTS / "hetero_report.json"))
    a = ap.parse_args(argv)
    rows = []
    for snr in a.snr:
        for coils in a.coils:
            for case in a.cases:
                for seed in a.seeds:
                    r = one(case, seed, snr, coils)
                    rows.append(r)
                    cv = "n/m" if r["cv"] is None else f"{r['cv']:.4f} [{r['cv_ci95'][0]:.4f}-{r['cv_ci95'][1]:.4f}]"
                    print(f"{case} SNR {snr:g} {coils} ch seed {seed}: truth CV {r['truth_cv_roi']:.4f} est {cv} "
                          f"warns {r['warns']} frac err {100 * r.get('fraction_max_error', float('nan')):.1f} "
                          f"headline {r['headline']:.3f} vs {r['truth_headline']:.3f} cpu {r['cpu_s']:.1f} s", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"load_avg_start": list(__import__("os").getloadavg()), "rows": rows}, indent=1))
    print("\n".join(summarise(rows)))


if __name__ == "__main__":
    main()
