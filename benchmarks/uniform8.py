"""Uniform livers at low iron, many channels: is the 95 % interval short? (issue 16, branch uniform8).

Run: ``NUMBA_NUM_THREADS=1 nice -n 5 python -m benchmarks.uniform8 --cells I[,J..] --livers N
--first-index K [--out FILE]`` from the repository root, or ``python -m benchmarks.uniform8
--summarize FILE[,FILE..]``. ``--cells`` are indices into ``benchmarks.autogrid.CELLS`` (16: SD 0,
1 mg/g, SNR 20, 1 ch; 17: the same at 8 ch; 19: 1 mg/g SNR 100 8 ch). Seeds as autogrid's
(noise ``2000 + k``, texture ``3000 + k``, ``k`` a running index; fresh ones from 7000).

Each liver is autogrid's full-size FerriScan body through ``r2mri.analyze`` (automatic ROI),
scored as autogrid scores it (``benchmarks.autogrid._automatic``), plus the interval's terms as
relative SEs of the mean R2 (percent of the true mean liver R2):

- ``meas``: the tile fits' measurement SE (``headline_se_measurement``);
- ``boot``: the between-tile bootstrap SE (``headline_se_bootstrap``);
- ``sigma``: the noise sigma's SE times dR2/dsigma (``sigma_check.se_r2_from_sigma_per_s``);
- ``roi``: the ROI-sampling SE (``headline.roi_sampling.se_r2_per_s``);
- ``half``: the final R2 half-width / 1.96 (what the interval claims as SE);

and two re-runs of ``liver_statistics`` on the same fit and ROI (``sigma_check="off"``): at the
air's estimated sigma (``est_sigma``) and at the phantom's true sigma (``true_sigma``), which
split the headline's error into the part the noise sigma's error causes and the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from .autogrid import CELLS, _automatic, analyzed_liver, cell_name

RESULTS = Path(__file__).resolve().parent / "results"
_Z95 = 1.959963984540054


def _terms(res, r2_true: float) -> dict:
    """The interval's terms as % of the true mean R2 (module docstring)."""
    b = res.statistics.blocks
    r2b, head = b["r2_per_s"], b["headline"]
    sc = b.get("sigma_check") or {}
    rs = head.get("roi_sampling") or {}
    lo, hi = r2b["headline_ci95"]
    pct = lambda v: None if v is None else 100.0 * float(v) / r2_true  # noqa: E731
    return {"r2_headline": r2b["headline_mean"], "r2_error_pct": 100 * (r2b["headline_mean"] / r2_true - 1),
            "meas": pct(r2b.get("headline_se_measurement")), "boot": pct(r2b.get("headline_se_bootstrap")),
            "sigma": pct(sc.get("se_r2_from_sigma_per_s")), "roi": pct(rs.get("se_r2_per_s")),
            "mix": pct((head.get("mixture") or {}).get("se_r2_per_s")),
            "half": pct((hi - lo) / 2 / _Z95), "r2_ci95_pct": [100 * (lo / r2_true - 1), 100 * (hi / r2_true - 1)],
            "sigma_check": {k: sc.get(k) for k in ("status", "corrected", "z", "sensitivity", "sigma_air",
                                                   "sigma_air_se", "sigma_liver", "r2_shift_relative")},
            "dark_liver": bool(head.get("dark_liver")), "n_tiles": head.get("n_tiles"),
            "bootstrap_noise_stretch": head.get("bootstrap_noise_stretch")}


def _rerun(res, sigma: float, r2_true: float) -> dict:
    """``liver_statistics`` on analyze's fit and ROI at ``sigma`` with the sigma check off."""
    from r2mri import stats as _stats

    noise = res.noise
    st = _stats.liver_statistics(res.fit, res.roi, res.calibration, image=res.image, noise_sigma=sigma,
                                 coils=res.fit.options.get("coils"), sigma_check="off",
                                 noise_correlation=noise.spatial_correlation if noise is not None else None)
    r2b = st.blocks["r2_per_s"]
    return {"sigma": sigma, "r2_error_pct": 100 * (r2b["headline_mean"] / r2_true - 1),
            "meas": 100 * r2b["headline_se_measurement"] / r2_true,
            "boot": 100 * (r2b["headline_se_bootstrap"] or float("nan")) / r2_true}


def one(cell, k: int) -> dict:
    """One liver of ``cell`` (running index ``k``): analyze, autogrid's scoring, the terms, two re-runs."""
    sd, w, lic, snr, coils = cell
    t0, c0 = time.time(), time.process_time()
    ph, res = analyzed_liver(cell, k)
    liver, r2t = ph.truth.liver_mask, ph.truth.r2_per_s
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    r2_true = float(r2t[liver].mean())
    noise = res.noise
    row = {"cell": cell_name(cell), "lic": lic, "snr": snr, "coils": coils, "k": k, "truth": truth,
           "r2_true": r2_true, "sigma_true": float(ph.summary["noise_sigma"]),
           "sigma_est": float(noise.sigma) if noise is not None else None,
           "sigma_est_se": float(noise.sigma_se) if noise is not None and noise.sigma_se is not None else None,
           "automatic": _automatic(res, liver, r2t, truth), "terms": _terms(res, r2_true)}
    row["est_sigma"] = _rerun(res, row["sigma_est"], r2_true)
    row["true_sigma"] = _rerun(res, row["sigma_true"], r2_true)
    row.update(wall_s=time.time() - t0, cpu_s=time.process_time() - c0, load_1min=os.getloadavg()[0])
    return row


def _print_row(r: dict) -> None:
    a, t = r["automatic"], r["terms"]
    f = lambda v: "nan" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{r['cell']} k {r['k']}: LIC {a['headline_error_pct']:+.3f} % [{a['ci95_pct'][0]:+.3f}, "
          f"{a['ci95_pct'][1]:+.3f}] cover {a['covers']:d}; R2 {t['r2_error_pct']:+.3f} % half/1.96 {f(t['half'])} "
          f"meas {f(t['meas'])} boot {f(t['boot'])} sigma {f(t['sigma'])} roi {f(t['roi'])} mix {f(t['mix'])}; "
          f"sigma est/true {r['sigma_est'] / r['sigma_true'] - 1:+.4%}; R2 at est sigma "
          f"{r['est_sigma']['r2_error_pct']:+.3f} true sigma {r['true_sigma']['r2_error_pct']:+.3f}; "
          f"red {len(a['red_warnings'])}; {r['wall_s']:.0f} s wall {r['cpu_s']:.0f} s CPU load {r['load_1min']:.1f}",
          flush=True)


def _binom_le(k: int, n: int, p: float = 0.95) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    from math import comb

    return float(sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)))


def summarize(rows: list) -> list[dict]:
    """Per cell: n, coverage and its binomial P, error mean +- SE, SD of error / median claimed SE."""
    out = []
    for name in dict.fromkeys(r["cell"] for r in rows):
        rs = [r for r in rows if r["cell"] == name]
        n = len(rs)
        e = np.array([r["automatic"]["headline_error_pct"] for r in rs])
        er2 = np.array([r["terms"]["r2_error_pct"] for r in rs])
        cov = int(sum(r["automatic"]["covers"] for r in rs))
        med = {key: float(np.nanmedian([np.nan if r["terms"][key] is None else r["terms"][key] for r in rs]))
               for key in ("half", "meas", "boot", "sigma", "roi", "mix")}
        ets = np.array([r["true_sigma"]["r2_error_pct"] for r in rs])
        ees = np.array([r["est_sigma"]["r2_error_pct"] for r in rs])
        ds = np.array([r["sigma_est"] / r["sigma_true"] - 1 for r in rs]) * 100
        z = er2 / np.array([r["terms"]["half"] for r in rs])
        out.append({"cell": name, "n": n, "covered": cov, "p_le_at_95": _binom_le(cov, n),
                    "lic_error_mean_pct": float(e.mean()), "lic_error_se_pct": float(e.std(ddof=1) / np.sqrt(n)),
                    "r2_error_mean_pct": float(er2.mean()), "r2_error_sd_pct": float(er2.std(ddof=1)),
                    "median_terms_pct": med, "sd_over_half": float(er2.std(ddof=1) / med["half"]),
                    "rms_z": float(np.sqrt(np.mean(z**2))),
                    "true_sigma_r2_error_mean_pct": float(ets.mean()), "true_sigma_r2_error_sd_pct": float(ets.std(ddof=1)),
                    "est_sigma_r2_error_sd_pct": float(ees.std(ddof=1)),
                    "sigma_error_mean_pct": float(ds.mean()), "sigma_error_sd_pct": float(ds.std(ddof=1)),
                    "corr_r2_error_sigma_error": float(np.corrcoef(er2, ds)[0, 1]) if n > 2 else float("nan")})
    return out


def _summary_line(s: dict) -> str:
    m = s["median_terms_pct"]
    return (f"{s['cell']} n={s['n']}: covered {s['covered']}/{s['n']} (P(<=k | 95 %) {s['p_le_at_95']:.3f}); LIC "
            f"{s['lic_error_mean_pct']:+.3f} +- {s['lic_error_se_pct']:.3f} %; R2 error mean {s['r2_error_mean_pct']:+.3f} "
            f"SD {s['r2_error_sd_pct']:.3f} % vs median claimed SE {m['half']:.3f} (ratio {s['sd_over_half']:.2f}, "
            f"rms z {s['rms_z']:.2f}); terms meas {m['meas']:.3f} boot {m['boot']:.3f} sigma {m['sigma']:.3f} roi "
            f"{m['roi']:.3f} mix {m['mix']:.3f}; at true sigma mean {s['true_sigma_r2_error_mean_pct']:+.3f} SD "
            f"{s['true_sigma_r2_error_sd_pct']:.3f}, at est sigma SD {s['est_sigma_r2_error_sd_pct']:.3f}; sigma error "
            f"{s['sigma_error_mean_pct']:+.3f} SD {s['sigma_error_sd_pct']:.3f} %, corr(R2 err, sigma err) "
            f"{s['corr_r2_error_sigma_error']:+.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="17", help="comma-separated indices into benchmarks.autogrid.CELLS")
    ap.add_argument("--livers", type=int, default=2)
    ap.add_argument("--first-index", type=int, default=7000)
    ap.add_argument("--out", default=str(RESULTS / "uniform8.json"))
    ap.add_argument("--summarize", default=None, metavar="JSON[,JSON..]")
    a = ap.parse_args(argv)
    if a.summarize:
        rows = [r for f in a.summarize.split(",") for r in json.loads(Path(f).read_text())["rows"]]
        for s in summarize(rows):
            print(_summary_line(s))
        return 0
    from benchmarks._common import machine_info

    out = Path(a.out)
    doc = {"runs": [{"machine": machine_info(), "cells": a.cells, "livers": a.livers, "first_index": a.first_index,
                     "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}], "rows": []}
    todo = [CELLS[int(i)] for i in a.cells.split(",")]
    plan = [(cell, a.first_index + j * len(todo) + i) for j in range(a.livers) for i, cell in enumerate(todo)]
    for cell, k in plan:
        doc["rows"].append(one(cell, k))
        _print_row(doc["rows"][-1])
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=float))
        tmp.replace(out)
    for s in summarize(doc["rows"]):
        print(_summary_line(s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
