"""Issue 16's grid corners on full-size bodies through ``r2mri.analyze`` (automatic ROI) and the true outline.

Run: ``NUMBA_NUM_THREADS=1 nice -n 5 python -m benchmarks.autogrid [--cells all|corners|sd0|mid|I,J,..|'sd,w,lic,snr,c;..']
[--livers N] [--first-index K] [--append]`` or ``python -m benchmarks.autogrid --summarize FILE[,FILE..]``
from the repository root (4-26 s CPU per liver; 6.5 s wall at load 2). Writes ``benchmarks/results/autogrid.json``
(``--out``; rewritten after every liver, so a long run keeps what it has) and prints one line per
liver, then one summary line per cell and ROI kind.

Phantoms as ``benchmarks/hetero_full.py`` builds them: ``r2mri.phantom.generate`` defaults (the
FerriScan 1.5 T body, 256 x 256 x 11 at 1.5 mm: liver with vessels, spleen, kidneys, fat, air,
coil shading as shipped) with ``lic``, ``snr``, ``coils``, ``lic_log_sd`` and
``lic_correlation_voxels`` overridden. Each liver has its own noise seed ``2000 + k`` and its own
texture seed ``3000 + k`` (k a running index over the whole run; ``--first-index`` for added
livers, and ``--append`` refuses an index already in the results file), so no noise seed repeats
within or across cells.

Cells (``CELLS``): the 16 corners at SD 0.4 in log LIC (texture scale 1 and 8 voxels x LIC 1 and
30 mg/g x SNR 20 and 100 x 1 and 8 channels), then 8 homogeneous cells (SD 0: LIC 1/30 x SNR
20/100 x 1/8 channels). ``MID_CELLS`` (``--cells mid``, branch midgrid): ten interior cells (texture
2-8 voxels, SD 0.2-0.4, 1-30 mg/g), the first the issue's own phantom; ``--cells`` also takes explicit
cells ``sd,w,lic,snr,c`` separated by ``;``.

Per liver, one fit: ``automatic`` is what ``r2mri.analyze(ph.image)`` returns (its ROI, headline,
95 % interval after the ROI-sampling and dark-liver widening, and all its warnings; ``red``:
rank 0 on the report page, :func:`r2mri.report._page_notes.warning_rank`); ``outline`` is the true
liver + vessel outline given as a user mask on the same fit, through ``benchmarks.coarse30._row``
(``liver_roi`` + ``liver_statistics`` + the same two widenings; the phantom's noise is white, so
analyze's measured noise correlation does not enter either). Truth = the phantom summary's
``lic_of_mean_r2_mg_per_g`` (LIC of the mean true R2 over the liver without vessels). The
selection / estimator split is coarse30's: ``sel`` = LIC of the mean true R2 over the liver voxels
the headline pools (``roi.mask | roi.not_converged``) against the truth; ``est`` = headline against
that pooled-sample truth.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
NOISE_SEED0, TEXTURE_SEED0 = 2000, 3000

#: (sd log LIC, texture scale voxels, LIC mg/g, SNR, channels); the first 16 are the SD 0.4 corners.
CELLS = ([(0.4, w, lic, snr, c) for w in (1.0, 8.0) for lic in (1.0, 30.0) for snr in (20.0, 100.0)
          for c in (1, 8)]
         + [(0.0, 0.0, lic, snr, c) for lic in (1.0, 30.0) for snr in (20.0, 100.0) for c in (1, 8)])

#: Interior cells of issue 16's grid (branch midgrid; ``--cells mid``): texture 2-8 voxels, SD 0.2-0.4,
#: LIC 1-30 mg/g. The first is the issue's own failing phantom (SD 0.3, ~4 voxels, 4.8 mg/g, SNR 50,
#: 1 channel). Separate from ``CELLS`` so that its indices stay as they were.
MID_CELLS = [(0.3, 4.0, 4.8, 50.0, 1), (0.4, 4.0, 1.0, 20.0, 1), (0.4, 4.0, 1.0, 20.0, 8),
             (0.4, 2.0, 3.0, 20.0, 1), (0.2, 4.0, 7.0, 50.0, 8), (0.4, 4.0, 10.0, 20.0, 8),
             (0.4, 4.0, 30.0, 20.0, 1), (0.2, 8.0, 1.0, 20.0, 1), (0.4, 8.0, 3.0, 50.0, 1),
             (0.4, 4.0, 15.0, 100.0, 8)]


def cell_name(cell) -> str:
    sd, w, lic, snr, c = cell
    return f"sd{sd:g}_w{w:g}_lic{lic:g}_snr{snr:g}_c{c}"


def _roi_sampling_row(res, r2t) -> dict:
    """The ROI-sampling widening's left-out difference (branch coarsecov) beside the true one.

    ``true_difference_r2_per_s``: mean true R2 over the widening's liver (candidate without
    non-parenchyma, plus the ROI) minus that over the ROI, the quantity the fitted
    ``left_out_difference_r2_per_s`` estimates (branch lowside2). Also the low-side check's
    left-out fraction after the intake.
    """
    roi = res.roi
    blk = dict(res.statistics.blocks.get("headline", {}).get("roi_sampling") or {})
    keep = ("se_r2_per_s", "left_out_difference_r2_per_s", "left_out_difference_noise_se_r2_per_s",
            "left_out_median_relative_se", "left_out_difference_used", "widened")
    out = {k: blk.get(k) for k in keep}
    if roi.candidate is not None:
        lv = roi.candidate & ~roi.non_parenchyma if roi.non_parenchyma is not None else roi.candidate.copy()
        lv = lv | roi.mask
        out["true_difference_r2_per_s"] = float(r2t[lv].mean() - r2t[roi.mask].mean())
    out["low_side_left_out"] = roi.options.get("low_side_left_out") if roi.options else None
    return out


def _automatic(res, liver, r2t, truth: float) -> dict:
    """``analyze``'s own ROI, headline, interval and warnings, with coarse30's selection split."""
    from benchmarks.coarse30 import left_out
    from r2mri.calibration import lic_from_r2
    from r2mri.report._page_notes import warning_rank

    roi, st, cal = res.roi, res.statistics, res.calibration
    m = roi.mask
    lo, hi = st.ci95_lic_mg_per_g
    h = st.headline_lic_mg_per_g
    nc = roi.not_converged if roi.not_converged is not None else np.zeros_like(m)
    pool_truth = float(lic_from_r2(r2t[(m | nc) & liver].mean(), cal))
    roi_truth = float(lic_from_r2(r2t[m & liver].mean(), cal))
    return {"headline_lic_mg_per_g": h, "headline_error_pct": 100 * (h / truth - 1),
            "roi_truth_error_pct": 100 * (roi_truth / truth - 1),
            "ci95_pct": [100 * (lo / truth - 1), 100 * (hi / truth - 1)], "covers": bool(lo <= truth <= hi),
            "liver_in_candidate": float(np.count_nonzero(roi.candidate & liver) / np.count_nonzero(liver))
            if roi.candidate is not None else None,
            "dice_roi_liver": 2 * float(np.count_nonzero(m & liver)) / (m.sum() + liver.sum()),
            "non_liver_voxels_in_roi": int(np.count_nonzero(m & ~liver)),
            "pool_truth_error_pct": 100 * (pool_truth / truth - 1),
            "pool_estimator_error_pct": 100 * (h / pool_truth - 1),
            "left_out": left_out(roi, res.fit, liver, r2t),
            "roi_sampling": _roi_sampling_row(res, r2t),
            "all_warnings": [str(w) for w in res.warnings],
            "red_warnings": [str(w) for w in res.warnings if warning_rank(str(w)) == 0]}


def analyzed_liver(cell, k: int):
    """The full-size liver of ``cell`` with running index ``k`` and ``r2mri.analyze``'s result on it."""
    import r2mri
    from r2mri import phantom

    sd, w, lic, snr, coils = cell
    ph = phantom.generate(lic=lic, snr=snr, coils=coils, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                          lic_log_sd=sd, lic_correlation_voxels=w if sd > 0 else 0.0)
    return ph, r2mri.analyze(ph.image)


def one(cell, k: int) -> dict:
    """One liver of ``cell`` with running index ``k``: automatic and outline rows on one fit."""
    from benchmarks.coarse30 import _row
    from r2mri import phantom

    sd, w, lic, snr, coils = cell
    t0, c0 = time.time(), time.process_time()
    ph, res = analyzed_liver(cell, k)
    liver, r2t = ph.truth.liver_mask, ph.truth.r2_per_s
    vessel = ph.truth.labels == phantom.LABELS["vessel"]
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    d = {"image": res.image, "fit": res.fit, "calibration": res.calibration, "liver": liver, "vessel": vessel,
         "r2_true": r2t, "truth": truth}
    auto = _automatic(res, liver, r2t, truth)
    outline = _row(d, liver | vessel)
    outline.pop("left_out", None)
    return {"cell": cell_name(cell), "sd": sd, "width": w, "lic": lic, "snr": snr, "coils": coils, "k": k,
            "noise_seed": NOISE_SEED0 + k, "texture_seed": TEXTURE_SEED0 + k, "truth": truth,
            "mean_voxel_lic_mg_per_g": ph.summary.get("mean_voxel_lic_mg_per_g"),
            "automatic": auto, "outline": outline, "wall_s": time.time() - t0,
            "cpu_s": time.process_time() - c0, "load_1min": os.getloadavg()[0]}


def _print_row(r: dict) -> None:
    a, o = r["automatic"], r["outline"]
    print(f"{r['cell']} k {r['k']}: auto {a['headline_error_pct']:+.2f} % [{a['ci95_pct'][0]:+.2f}, "
          f"{a['ci95_pct'][1]:+.2f}] cover {a['covers']:d} sel {a['pool_truth_error_pct']:+.2f} est "
          f"{a['pool_estimator_error_pct']:+.2f} Dice {a['dice_roi_liver']:.3f} red {len(a['red_warnings'])} "
          f"warn {len(a['all_warnings'])}; outline {o['headline_error_pct']:+.2f} % [{o['ci95_pct'][0]:+.2f}, "
          f"{o['ci95_pct'][1]:+.2f}] cover {o['covers']:d} red {len(o['red_warnings'])}; "
          f"{r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU, load {r['load_1min']:.1f}", flush=True)


def _not_het(warnings: list) -> list:
    return [w for w in warnings if not w.startswith("heterogeneity:")]


def summarize(rows: list) -> list[dict]:
    """Per cell and ROI kind: n, mean error +- SE, coverage, median half-width, sel/est, red warnings."""
    out = []
    for name in dict.fromkeys(r["cell"] for r in rows):
        rs = [r for r in rows if r["cell"] == name]
        s = {"cell": name, "n": len(rs)}
        for kind in ("automatic", "outline"):
            e = np.array([r[kind]["headline_error_pct"] for r in rs])
            s[kind] = {"mean_error_pct": float(e.mean()),
                       "se_pct": float(e.std(ddof=1) / np.sqrt(e.size)) if e.size > 1 else float("nan"),
                       "max_abs_error_pct": float(np.abs(e).max()),
                       "covered": int(sum(r[kind]["covers"] for r in rs)),
                       "half_width_pct": float(np.median([(r[kind]["ci95_pct"][1] - r[kind]["ci95_pct"][0]) / 2
                                                          for r in rs])),
                       "sel_pct": float(np.mean([r[kind]["pool_truth_error_pct"] for r in rs])),
                       "est_pct": float(np.mean([r[kind]["pool_estimator_error_pct"] for r in rs])),
                       "red": int(sum(bool(r[kind]["red_warnings"]) for r in rs)),
                       "missed_without_red": int(sum(not r[kind]["covers"] and not r[kind]["red_warnings"]
                                                     for r in rs)),
                       # the heterogeneity warning is red on every SD 0.4 liver (it says the liver is
                       # patchy, not that the reading is off): the misses with no other red warning
                       "red_not_heterogeneity": int(sum(bool(_not_het(r[kind]["red_warnings"])) for r in rs)),
                       "missed_without_other_red": int(sum(not r[kind]["covers"]
                                                           and not _not_het(r[kind]["red_warnings"]) for r in rs))}
        s["warnings_automatic"] = float(np.mean([len(r["automatic"]["all_warnings"]) for r in rs]))
        s["misses"] = any(abs(s[k]["mean_error_pct"]) > 2 or s[k]["covered"] < s["n"] for k in ("automatic",))
        out.append(s)
    return out


def _summary_line(s: dict) -> str:
    a, o = s["automatic"], s["outline"]
    return (f"{s['cell']} n={s['n']}: automatic {a['mean_error_pct']:+.2f} +- {a['se_pct']:.2f} % (max "
            f"{a['max_abs_error_pct']:.2f}) covered {a['covered']}/{s['n']} half {a['half_width_pct']:.2f} % sel "
            f"{a['sel_pct']:+.2f} est {a['est_pct']:+.2f} red {a['red']} (non-heterogeneity {a['red_not_heterogeneity']}) miss without red "
            f"{a['missed_without_red']} (without non-heterogeneity red {a['missed_without_other_red']}) "
            f"warnings {s['warnings_automatic']:.1f} | outline {o['mean_error_pct']:+.2f} +- {o['se_pct']:.2f} % "
            f"covered {o['covered']}/{s['n']} half {o['half_width_pct']:.2f} % est {o['est_pct']:+.2f} red {o['red']}")


def table(summary: list[dict]) -> str:
    """The README table: one row per cell (bold: mean error beyond 2 %, coverage below 90 %)."""
    from benchmarks._common import md_table

    rows = []
    for s in summary:
        sd, w, lic, snr, c = (s["cell"].split("_")[i].lstrip("sdwlicnr") for i in range(5))
        cells = [sd, w if float(sd) > 0 else "-", lic, snr, c, s["n"]]
        for kind in ("automatic", "outline"):
            k = s[kind]
            bad = abs(k["mean_error_pct"]) > 2
            err = f"{k['mean_error_pct']:+.2f} +- {k['se_pct']:.2f}"
            cov = f"{k['covered']}/{s['n']}"
            cells += [f"**{err}**" if bad else err, f"**{cov}**" if k["covered"] < 0.9 * s["n"] else cov,
                      f"{k['half_width_pct']:.2f}", f"{k['sel_pct']:+.2f} / {k['est_pct']:+.2f}"]
        a = s["automatic"]
        cells += [f"{a['red']}/{s['n']} ({a['red_not_heterogeneity']})", f"{s['warnings_automatic']:.1f}"]
        rows.append(cells)
    return md_table(["SD", "width vox", "LIC", "SNR", "ch", "n", "automatic error % +- SE", "covered",
                     "median half-width %", "sel / est %", "outline error % +- SE", "covered",
                     "median half-width %", "sel / est %", "red (not heterogeneity)", "warnings"], rows)


def _parse_cell(text: str) -> tuple:
    """``"sd,w,lic,snr,c"`` (e.g. ``"0.3,4,4.8,50,1"``) as a cell tuple."""
    sd, w, lic, snr, c = text.split(",")
    return (float(sd), float(w), float(lic), float(snr), int(c))


def _select(spec: str) -> list:
    if spec == "all":
        return list(CELLS)
    if spec == "corners":
        return CELLS[:16]
    if spec == "sd0":
        return CELLS[16:]
    if spec == "mid":
        return list(MID_CELLS)
    if spec.startswith("mid:"):
        return [MID_CELLS[int(i)] for i in spec[4:].split(",")]
    if ";" in spec:
        return [_parse_cell(c) for c in spec.split(";") if c.strip()]
    return [CELLS[int(i)] for i in spec.split(",")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="all",
                    help="all, corners, sd0, mid (MID_CELLS), mid:I,J,.. (indices into MID_CELLS), comma-separated "
                         "indices into CELLS, or explicit cells 'sd,w,lic,snr,c;sd,w,lic,snr,c' (one cell: end with ';')")
    ap.add_argument("--livers", type=int, default=2, help="livers per cell (default 2)")
    ap.add_argument("--first-index", type=int, default=0, help="first running index k (seeds 2000+k, 3000+k)")
    ap.add_argument("--append", action="store_true", help="add to the rows already in --out")
    ap.add_argument("--out", default=str(RESULTS / "autogrid.json"))
    ap.add_argument("--summarize", default=None, metavar="JSON[,JSON..]", help="summary of results files, then stop")
    ap.add_argument("--markdown", action="store_true", help="with --summarize: the README table")
    a = ap.parse_args(argv)
    if a.summarize:
        rows = [r for f in a.summarize.split(",") for r in json.loads(Path(f).read_text())["rows"]]
        summ = summarize(rows)
        if a.markdown:
            print(table(summ))
            return 0
        for s in summ:
            print(_summary_line(s))
        return 0
    from benchmarks._common import machine_info

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(out.read_text()) if a.append and out.exists() else {"runs": [], "rows": []}
    used = {r["k"] for r in doc["rows"]}
    todo = _select(a.cells)
    # liver by liver across the cells (every cell gets its first liver before any its second)
    plan = [(cell, a.first_index + j * len(todo) + i) for j in range(a.livers) for i, cell in enumerate(todo)]
    if clash := sorted(used & {k for _, k in plan}):
        raise SystemExit(f"{out}: running indices {clash[:5]} already used (noise seeds must not repeat); "
                         f"pass --first-index {max(used) + 1}")
    doc["runs"].append({"machine": machine_info(), "argv": list(argv) if argv is not None else None,
                        "cells": a.cells, "livers": a.livers, "first_index": a.first_index,
                        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    t_start = time.time()
    for cell, k in plan:
        doc["rows"].append(one(cell, k))
        _print_row(doc["rows"][-1])
        doc["runs"][-1]["wall_s"] = time.time() - t_start
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(out)
    for s in summarize(doc["rows"]):
        print(_summary_line(s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
