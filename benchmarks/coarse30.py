"""The coarse patchy liver at 30 mg/g: automatic ROI and true outline (issue 16).

Run: ``python -m benchmarks.coarse30 [--textures 1,..] [--conditions 50x1,20x1,50x8,20x8]
[--noise-seeds 0,1,..] [--save-fits DIR | --load-fits DIR [--selection-only]]`` or
``python -m benchmarks.coarse30 --summarize FILE[,FILE..]`` from the repository root
(``NUMBA_NUM_THREADS=1`` on a shared machine; ~25 s per phantom at full size). Writes
``benchmarks/results/coarse30.json`` (``--out``, rewritten after every phantom so a long
run keeps what it has) and prints one line per phantom. With several noise seeds the
loop runs seed by seed (all conditions and textures of seed 0 first), and the summary
per condition is the mean error +- its standard error over all livers (a bias estimate),
with per-texture means over the seeds.

``heterogeneous-coarse-1.5t`` (SD 0.4 in log LIC over 8 voxels) with ``lic_mg_per_g``
overridden to 30: voxel LIC up to ~100 mg/g, R2 up to ~395 s^-1 (the St Pierre curve's
maximum), whose signal is at the noise floor by the second or third echo. Each
condition ``SNRxCHANNELS`` and texture is fitted once as :func:`r2mri.analyze` does;
on that fit the automatic ROI and the true liver + vessel outline (as a user mask) go
through :func:`r2mri.stats.liver_statistics` and the ROI-sampling term, as in
``benchmarks/roi_patchy.py``. Truth = LIC of the mean true R2 over the whole liver
without vessels; ``roi_truth`` the same over the ROI's liver voxels.

Before/after on the same fits: ``--save-fits DIR`` stores each fit (pickle) in one
run; a second run with another tree first on ``PYTHONPATH`` and ``--load-fits DIR``
evaluates that tree's ROI and statistics on the same fits.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SPEC = "heterogeneous-coarse-1.5t"


def _fit(snr: float, coils: int, texture: int, noise_seed: int, fits: "Path | None", load: bool):
    from r2mri import phantom

    fn = None if fits is None else fits / f"coarse30_snr{snr:g}_c{coils}_t{texture}_n{noise_seed}.pkl"
    if load:
        with open(fn, "rb") as fh:
            return pickle.load(fh)
    import r2mri

    ph = phantom.generate(SPEC, seed=noise_seed, texture_seed=texture, lic_mg_per_g=30.0, snr=snr, coils=coils)
    res = r2mri.analyze(ph.image)
    vessel = ph.truth.labels == phantom.LABELS["vessel"]
    d = {"image": res.image, "fit": res.fit, "calibration": res.calibration, "liver": ph.truth.liver_mask,
         "vessel": vessel, "r2_true": ph.truth.r2_per_s, "truth": float(ph.summary["lic_of_mean_r2_mg_per_g"])}
    if fn is not None:
        fn.parent.mkdir(parents=True, exist_ok=True)
        with open(fn, "wb") as fh:
            pickle.dump(d, fh)
    return d


def _row(d: dict, mask) -> dict:
    import r2mri.roi as roi_mod
    from r2mri._roi_sampling import widen_for_roi_sampling
    from r2mri.calibration import lic_from_r2
    from r2mri.report._page_notes import warning_rank
    from r2mri.stats import liver_statistics

    img, fit, cal, liver, vessel, r2t, truth = (d[k] for k in ("image", "fit", "calibration", "liver", "vessel",
                                                               "r2_true", "truth"))
    t0 = time.process_time()
    roi = roi_mod.liver_roi(img, fit, mask=mask, calibration=cal)
    cpu = time.process_time() - t0
    st = liver_statistics(fit, roi, cal, image=img)
    widen_for_roi_sampling(st, roi, fit, cal)
    try:  # the tree under test may predate the dark-liver widening
        from r2mri._dark_liver import widen_for_dark_liver
    except ImportError:
        dark = None
    else:
        dark = widen_for_dark_liver(st, roi, fit, img, cal)
    m = roi.mask
    lo, hi = st.ci95_lic_mg_per_g
    lo_parts = left_out(roi, fit, liver, r2t)
    pool_truth = float(lic_from_r2(r2t[((roi.mask | roi.not_converged) if roi.not_converged is not None
                                        else roi.mask) & liver].mean(), cal))
    h = st.headline_lic_mg_per_g
    ext = roi.options.get("parenchyma_extension") or {}
    return {"headline_error_pct": 100 * (h / truth - 1),
            "roi_truth_error_pct": 100 * (float(lic_from_r2(r2t[m & liver].mean(), cal)) / truth - 1),
            "ci95_pct": [100 * (lo / truth - 1), 100 * (hi / truth - 1)], "covers": bool(lo <= truth <= hi),
            "liver_in_candidate": float(np.count_nonzero(roi.candidate & liver) / np.count_nonzero(liver)),
            "dice_roi_liver": 2 * float(np.count_nonzero(m & liver)) / (m.sum() + liver.sum()),
            "vessel_voxels_in_roi": int(np.count_nonzero(m & vessel)),
            "non_liver_voxels_in_roi": int(np.count_nonzero(m & ~liver)),
            "extension_largest_piece": ext.get("largest_piece_fraction"),
            "warnings": [w for w in list(roi.warnings) + list(st.warnings) if "WARNING" in w or "noise floor" in w],
            "red_warnings": [w for w in list(roi.warnings) + list(st.warnings) if warning_rank(w) == 0],
            "pool_truth_error_pct": 100 * (pool_truth / truth - 1), "pool_estimator_error_pct": 100 * (h / pool_truth - 1),
            "left_out": lo_parts,
            "roi_cpu_s": cpu, "estimator_error_pct": 100 * (h / float(lic_from_r2(r2t[m & liver].mean(), cal)) - 1),
            "dark_liver": None if dark is None else {k: dark[k] for k in ("fraction_of_liver", "voxels",
                                                                          "lower_r2_per_s", "upper_r2_per_s")},
            "dark_liver_true_r2_per_s": None if dark is None else _dark_truth(roi, fit, img, r2t, liver)}


def left_out(roi, fit, liver, r2t) -> dict:
    """Where the ROI's selection error comes from: the liver (no vessels) split into the
    voxels the headline pools (``roi.mask`` plus ``roi.not_converged``, whose magnitudes
    the tile headline also fits) and the ones left out, by the first rule that can
    explain it: not in the candidate; in it with a failed fit; in it with a good fit next
    to (1 voxel) a rule-3 non-parenchyma voxel (vessel rule and its margin); the rest
    (the edge erosion, mostly). Per part: voxels, mean true R2 and its exact share of the
    pooled sample's mean R2 error, ``f_part (R2_pool - R2_part) / R2_liver`` in % (the
    shares add up to ``pool_r2_error_pct``). ``pool_truth_error_pct`` is the LIC of the
    pooled liver voxels' mean true R2 against the truth: the selection error of the
    headline's sample (the rest of the headline error is the estimator's).
    """
    from scipy import ndimage

    from r2mri.roi import FAILED_STATUSES

    nc = roi.not_converged if roi.not_converged is not None else np.zeros_like(roi.mask)
    pool = (roi.mask | nc) & liver
    cand = roi.candidate if roi.candidate is not None else roi.mask
    r2, s0 = np.asarray(fit.r2_per_s, float), np.asarray(fit.s0, float)
    good = np.isfinite(r2) & np.isfinite(s0) & (s0 > 0) & ~np.isin(np.asarray(fit.status), FAILED_STATUSES)
    npar = roi.non_parenchyma if roi.non_parenchyma is not None else np.zeros_like(roi.mask)
    near_np = ndimage.binary_dilation(npar, structure=np.ones((3, 3, 1), bool))
    out = liver & ~pool
    parts = {"not_in_candidate": out & ~cand, "failed_fit": out & cand & ~good,
             "next_to_non_parenchyma": out & cand & good & near_np, "other_eroded": out & cand & good & ~near_np}
    r_liver, r_pool = float(r2t[liver].mean()), float(r2t[pool].mean())
    n_liver = int(np.count_nonzero(liver))
    res = {"pool_voxels": int(np.count_nonzero(pool)), "liver_voxels": n_liver,
           "pool_r2_error_pct": 100 * (r_pool / r_liver - 1), "parts": {}}
    for k, m in parts.items():
        n = int(np.count_nonzero(m))
        mr = float(r2t[m].mean()) if n else None
        res["parts"][k] = {"voxels": n, "mean_true_r2_per_s": mr,
                           "share_pct": 0.0 if not n else 100 * n / n_liver * (r_pool - mr) / r_liver}
    return res


def _selection_row(d: dict, mask) -> dict:
    """The ROI's selection only (``--selection-only``): :func:`left_out` and the truths,
    without the statistics (a third of :func:`_row`'s CPU)."""
    import r2mri.roi as roi_mod
    from r2mri.calibration import lic_from_r2

    fit, cal, liver, r2t, truth = (d[k] for k in ("fit", "calibration", "liver", "r2_true", "truth"))
    roi = roi_mod.liver_roi(d["image"], fit, mask=mask, calibration=cal)
    pool = ((roi.mask | roi.not_converged) if roi.not_converged is not None else roi.mask) & liver
    return {"roi_truth_error_pct": 100 * (float(lic_from_r2(r2t[roi.mask & liver].mean(), cal)) / truth - 1),
            "pool_truth_error_pct": 100 * (float(lic_from_r2(r2t[pool].mean(), cal)) / truth - 1),
            "left_out": left_out(roi, fit, liver, r2t), "options": {k: roi.options.get(k) for k in (
                "parenchyma_extension", "dark_rim", "dark_rim_joined", "dark_rim_holes_filled", "regions_grown", "high_iron_fallback")}}


def _dark_truth(roi, fit, img, r2t, liver):
    """Mean true R2 of the liver voxels the dark-liver widening counted (and how many)."""
    from r2mri._dark_liver import dark_liver_voxels

    dk = dark_liver_voxels(roi, fit, img)
    sel = dk & liver
    return [float(r2t[sel].mean()) if sel.any() else None, int(np.count_nonzero(sel)), int(np.count_nonzero(dk))]


def _print_row(r: dict) -> None:
    au, ou = r["automatic"], r["outline"]
    print(f"SNR {r['snr']:g} x{r['coils']} tex {r['texture_seed']} noise {r['noise_seed']}: automatic "
          f"{au['headline_error_pct']:+.2f} % [{au['ci95_pct'][0]:+.2f}, {au['ci95_pct'][1]:+.2f}] cover "
          f"{au['covers']:d} (ROI {au['roi_truth_error_pct']:+.2f}, liver in candidate {au['liver_in_candidate']:.3f}, "
          f"Dice {au['dice_roi_liver']:.3f}, vessels {au['vessel_voxels_in_roi']}, non-liver "
          f"{au['non_liver_voxels_in_roi']}, warnings {len(au['warnings'])}); outline "
          f"{ou['headline_error_pct']:+.2f} % [{ou['ci95_pct'][0]:+.2f}, {ou['ci95_pct'][1]:+.2f}] "
          f"cover {ou['covers']:d} (ROI {ou['roi_truth_error_pct']:+.2f}, vessels "
          f"{ou['vessel_voxels_in_roi']}) load {r['load_1min']:.1f}", flush=True)


def summarize(rows: list) -> list:
    """One line per ROI kind over ``rows`` (one condition): bias +- SE, per-texture means, coverage.

    Two standard errors of the mean error: over all livers (noise seeds x textures, as if
    independent) and over the texture means (each texture one liver anatomy; the honest
    one when a texture's error repeats over noise seeds, as the ROI's selection does).
    ``sel`` / ``est``: the mean of the selection error (truth over the liver voxels the
    headline pools vs the whole liver's, :func:`left_out`) and of the rest (estimator).
    A run "missed without warning" is one whose interval misses the truth and whose ROI
    and statistics carry no red warning (rank 0 on the report page: headline,
    heterogeneity, fit quality, ROI WARNING lines): the failure a user cannot see.
    """
    lines = []
    for k in ("automatic", "outline"):
        e = np.array([r[k]["headline_error_pct"] for r in rows])
        se = e.std(ddof=1) / np.sqrt(e.size) if e.size > 1 else float("nan")
        half = np.median([(r[k]["ci95_pct"][1] - r[k]["ci95_pct"][0]) / 2 for r in rows])
        tex = {}
        for r in rows:
            tex.setdefault(r["texture_seed"], []).append(r[k]["headline_error_pct"])
        tm = np.array([np.mean(v) for v in tex.values()])
        se_t = tm.std(ddof=1) / np.sqrt(tm.size) if tm.size > 1 else float("nan")
        silent = sum(1 for r in rows if not r[k]["covers"] and not r[k].get("red_warnings"))
        split = ""
        if all("pool_truth_error_pct" in r[k] for r in rows):
            sel = np.mean([r[k]["pool_truth_error_pct"] for r in rows])
            split = f", sel {sel:+.2f} est {np.mean([r[k]['pool_estimator_error_pct'] for r in rows]):+.2f}"
        lines.append(f"{k}: mean error {e.mean():+.2f} +- {se:.2f} % (livers, n={e.size}; +- {se_t:.2f} over "
                     f"{tm.size} textures), max |error| {np.abs(e).max():.2f} %, coverage "
                     f"{sum(r[k]['covers'] for r in rows)}/{len(rows)}, median half-width {half:.2f} %, missed "
                     f"without red warning {silent}{split}; per texture "
                     + " ".join(f"{t}:{np.mean(v):+.2f}" for t, v in sorted(tex.items())))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--textures", default="1,2,3,4,5,6")
    ap.add_argument("--conditions", default="50x1,20x1,50x8,20x8")
    ap.add_argument("--noise-seed", type=int, default=None, help="one noise seed (as --noise-seeds N)")
    ap.add_argument("--noise-seeds", default="0", help="comma-separated noise seeds, e.g. 0,1,2,3")
    ap.add_argument("--save-fits", default=None)
    ap.add_argument("--load-fits", default=None)
    ap.add_argument("--selection-only", action="store_true",
                    help="with --load-fits: the ROI's selection (left_out) only, no statistics")
    ap.add_argument("--out", default=str(RESULTS / "coarse30.json"))
    ap.add_argument("--summarize", default=None, metavar="JSON[,JSON..]",
                    help="print the summary of results files (rows pooled) and stop")
    a = ap.parse_args(argv)
    if a.summarize:
        rows = [r for f in a.summarize.split(",") for r in json.loads(Path(f).read_text())["rows"]]
        for key in sorted({(r["snr"], r["coils"]) for r in rows}):
            for line in summarize([r for r in rows if (r["snr"], r["coils"]) == key]):
                print(f"SNR {key[0]:g} x{key[1]} {line}")
        return 0
    fits = Path(a.load_fits or a.save_fits) if (a.load_fits or a.save_fits) else None
    seeds = [a.noise_seed] if a.noise_seed is not None else [int(v) for v in a.noise_seeds.split(",")]
    conds = [(float(c.split("x")[0]), int(c.split("x")[1])) for c in a.conditions.split(",")]
    textures = [int(v) for v in a.textures.split(",")]
    from benchmarks._common import machine_info

    meta = {"machine": machine_info(), "argv": list(argv) if argv is not None else None,
            "conditions": a.conditions, "textures": textures, "noise_seeds": seeds}
    rows = []
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for snr, coils in conds:
            for t in textures:
                d = _fit(snr, coils, t, seed, fits, bool(a.load_fits))
                if a.selection_only:
                    rows.append({"snr": snr, "coils": coils, "texture_seed": t, "noise_seed": seed,
                                 "truth": d["truth"], "automatic": _selection_row(d, None),
                                 "outline": _selection_row(d, d["liver"] | d["vessel"])})
                    au = rows[-1]["automatic"]
                    print(f"SNR {snr:g} x{coils} tex {t} noise {seed}: pooled-sample truth "
                          f"{au['pool_truth_error_pct']:+.2f} % " + " ".join(
                              f"{k} {v['voxels']} ({v['share_pct']:+.2f})" for k, v in au["left_out"]["parts"].items()),
                          flush=True)
                    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
                    continue
                r = {"snr": snr, "coils": coils, "texture_seed": t, "noise_seed": seed, "truth": d["truth"],
                     "automatic": _row(d, None), "outline": _row(d, d["liver"] | d["vessel"]),
                     "load_1min": os.getloadavg()[0]}
                rows.append(r)
                _print_row(r)
                out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    for snr, coils in conds if not a.selection_only else ():
        for line in summarize([r for r in rows if r["snr"] == snr and r["coils"] == coils]):
            print(f"SNR {snr:g} x{coils} {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
