"""Where the automatic ROI's left-out liver goes (issue 16, branch floorpiece).

``python -m benchmarks.floorpiece decompose --cells 8,9 --livers 8 --first-index 5000 --out F``

Each liver of ``benchmarks.autogrid`` (same phantoms, same seeds, same ``r2mri.analyze``) is
analysed with the ROI steps recorded (monkeypatched wrappers around the library's own
functions: nothing in the library changes). Every true-liver voxel (no vessels) that the
headline does not pool is put in the first class that explains it:

outside the final candidate
    ``dropped_below_floor``: in the candidate after the low-side intake, cut by
    ``drop_below_floor_pieces``; else, by the low-side intake's own pieces (its steps run again
    here on the extended candidate, recording each voxel's last verdict; ``*_not_run``: the
    low-side check did not warn, so the intake never ran): ``intake_trimmed`` (taken piece,
    3x3 median R2 below the floor), ``intake_floor`` (white-voxel median not above the floor by
    2 SE), ``intake_s0`` (``same_tissue`` refused: S0 level / spread, PDFF), ``intake_small``
    (< 10 white voxels), ``intake_above`` (median above the region's); outside every piece:
    ``not_tissue``, ``not_marked`` (window median below the floor), ``not_reached`` (marked but
    not reached by the extension step: S0 band, S0 edge, R2 band, or not connected).
inside the final candidate
    ``erosion_inner`` (rule 1 voxels that it would keep if the candidate held the whole true
    liver: erosion caused by the left-out liver), ``erosion_outline`` (the rest of rule 1: the
    liver outline's own erosion), ``fit_failed`` (rule 2, not
    pooled), ``fluid`` (rule 3 a3), ``s0_outlier`` (rule 3 b), ``r2_vessel`` (rule 3 a/a2),
    ``margin`` (rule 3's dilation), ``tile`` (in the ROI, in no tile of the headline).

Per class: voxels, mean true R2 and its exact additive share of the pooled sample's mean R2
error, ``n_c (R2_pool - R2_c) / (N_liver R2_liver)`` in % of R2 (``benchmarks.coarse30.left_out``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from scipy import ndimage

RESULTS = Path(__file__).resolve().parent / "results"

INTAKE_LABELS = {1: "intake_taken", 2: "intake_trimmed", 3: "intake_floor", 4: "intake_s0", 5: "intake_small",
                 6: "intake_above", 7: "not_tissue", 8: "not_marked", 9: "not_reached"}


#: :data:`INTAKE_LABELS` code of each verdict of the library's record (r2mri._roi_low_intake.VERDICTS)
VERDICT_CODES = {"taken": 2, "floor": 3, "s0": 4, "small": 5, "above": 6}


def intake_verdicts(cand, maps, r2, floor_r2, grow_k, pdff):
    """The low-side intake (``r2mri._roi_low_intake.low_side_pieces``, run again on ``cand``
    with its ``record``) as each voxel's last verdict (codes of :data:`INTAKE_LABELS`: a taken
    piece's voxels code 1, its voxels below the floor 2; a refused piece's voxels its verdict's
    code, those its second look takes 1) and the tested pieces of >= 50 voxels with their
    ``same_tissue`` measures and in-plane ring (against the candidate at the round's start)."""
    from r2mri._roi_low_intake import low_side_pieces, marked_not_below

    code = np.zeros(cand.shape, np.int8)
    marked, _ = marked_not_below(maps.tissue, r2, floor_r2)
    code[~cand & ~maps.tissue] = 7
    code[~cand & maps.tissue & ~marked] = 8
    code[~cand & marked] = 9
    record: list = []
    low_side_pieces(cand, maps, r2, floor_r2, grow_k, pdff, record=record)
    start = {0: cand.copy()}  # the candidate at each round's start: cand and the earlier rounds' takes
    for q in record:
        start.setdefault(q["round"] + 1, start[q["round"]].copy())
        start[q["round"] + 1] |= q["taken"]
    pieces_info = []
    for q in record:
        rnd, piece, verdict = q["round"], q["mask"], q["verdict"]
        region_out = start[rnd]
        code[piece] = VERDICT_CODES[verdict]
        code[q["taken"]] = 1
        if verdict in ("small", "above") or np.count_nonzero(piece) < 50:
            continue
        ring = ndimage.binary_dilation(piece, np.ones((3, 3, 1), bool)) & ~piece
        nr = max(int(np.count_nonzero(ring)), 1)
        tests = {**q["tests"], "enclosure": round(np.count_nonzero(ring & region_out) / nr, 3),
                 "ring_unmarked_tissue": round(np.count_nonzero(ring & ~region_out & maps.tissue & ~marked) / nr, 3),
                 "ring_not_tissue": round(np.count_nonzero(ring & ~region_out & ~maps.tissue) / nr, 3)}
        pieces_info.append({"round": rnd, "voxels": q["row"]["voxels"], "median_r2": q["row"]["median_r2_per_s"],
                            "se": q["row"]["se_per_s"], "above_floor": verdict != "floor",
                            "same": verdict == "taken", **tests, "_mask": piece})
    return code, pieces_info


class Recorder:
    """Wrappers around the ROI steps that keep their inputs and outputs (last call wins)."""

    def __init__(self):
        self.rec = {}

    @contextmanager
    def patched(self):
        import r2mri._gre as gre
        import r2mri._roi_extend as ext
        import r2mri._roi_proposal as prop
        import r2mri._roi_rules as rules
        import r2mri.roi as roi

        saved = []

        def wrap(mod, name, fn):
            orig = getattr(mod, name)
            saved.append((mod, name, orig))
            setattr(mod, name, fn(orig))

        rec = self.rec

        def w_extend_candidate(orig):
            def f(cand, maps, image, fit, r2, s0, status, **kw):
                rec["grown"] = cand.copy()
                rec["maps"], rec["r2"], rec["floor_ext"], rec["floor_r2"] = maps, r2, kw["floor_ext"], kw["floor_r2"]
                rec["grow_k"] = kw["grow_k"]
                out = orig(cand, maps, image, fit, r2, s0, status, **kw)
                rec["extended_final"] = out[0].copy()
                return out
            return f

        def w_extend_to_parenchyma(orig):
            def f(*a, **kw):
                out = orig(*a, **kw)
                rec["after_extension"] = out[0].copy()
                return out
            return f

        def w_take_low_side(orig):
            def f(cand, maps, r2, floor_r2, floor_ext, grow_k, pdff):
                out = orig(cand, maps, r2, floor_r2, floor_ext, grow_k, pdff)
                rec["before_intake"], rec["after_intake"] = cand.copy(), out[0].copy()
                rec["low_side_info"], rec["intake_info"], rec["low_warn"] = out[1], out[2], out[3]
                rec["pdff"] = pdff
                return out
            return f

        def w_drop(orig):
            def f(cand, *a, **kw):
                out = orig(cand, *a, **kw)
                rec["after_drop"] = out[0].copy()
                return out
            return f

        def w_apply_rules(orig):
            def f(cand, *a, **kw):
                rec["rules_cand"], rec["dark_edge"] = cand.copy(), kw.get("dark_edge")
                rec["erode_mm"] = kw["erode_mm"]
                return orig(cand, *a, **kw)
            return f

        def w_cbox(key, orig):
            def f(*a, **kw):
                out = orig(*a, **kw)
                rec.setdefault(key, []).append(np.asarray(out).copy())
                return out
            return f

        def w_pooled(orig):
            def f(fit, image, valid, *a, **kw):
                out = orig(fit, image, valid, *a, **kw)
                if "pool_valid" not in rec:
                    rec["pool_valid"] = valid.copy()
                    vi, vt = out.voxel_index, out.voxel_tile
                    rec["pool_used"] = None if vi is None else np.asarray(vi)[np.asarray(vt) >= 0]
                return out
            return f

        wrap(prop, "extend_candidate", w_extend_candidate)
        wrap(ext, "extend_to_parenchyma", w_extend_to_parenchyma)
        wrap(ext, "take_low_side", w_take_low_side)
        wrap(ext, "drop_below_floor_pieces", w_drop)
        wrap(roi, "apply_rules", w_apply_rules)
        for name in ("below_parenchyma", "fluid_regions", "s0_outliers"):
            wrap(rules, name, lambda o, name=name: w_cbox(name, o))
        wrap(gre, "pooled_headline", w_pooled)
        try:
            yield rec
        finally:
            for mod, name, orig in reversed(saved):
                setattr(mod, name, orig)


def LABELS():
    from r2mri import phantom

    return phantom.LABELS


def classify(rec, res, ph) -> tuple[dict, np.ndarray]:
    """Class masks of the left-out liver (module docstring) and the pooled liver."""
    from r2mri._roi_grow import _box
    from r2mri._roi_rules import FAILED_STATUSES, edge_erosion

    roi, fit = res.roi, res.fit
    liver = ph.truth.liver_mask
    nc = roi.not_converged if roi.not_converged is not None else np.zeros_like(roi.mask)
    pool = (roi.mask | nc)
    out = liver & ~pool
    cand = roi.candidate
    classes = {}
    # outside the candidate
    outside = out & ~cand
    dropped = outside & rec["after_intake"] & ~rec["after_drop"]
    classes["dropped_below_floor"] = dropped
    code, pieces = intake_verdicts(rec["before_intake"], rec["maps"], rec["r2"], rec["floor_r2"], rec["grow_k"],
                                   rec["pdff"])
    ran = rec.get("intake_info") is not None
    rest = outside & ~dropped
    for c, name in INTAKE_LABELS.items():
        if c <= 6 and not ran:
            name += "_not_run"
        classes[name] = rest & (code == c)
    classes["outside_other"] = rest & (code == 0)
    # inside the candidate
    inside = out & cand
    dx, dy, _ = res.image.voxel_size_mm
    eroded = edge_erosion(cand, dx, dy, rec["erode_mm"], rec["dark_edge"])
    er = inside & ~eroded
    # erosion that the left-out liver causes: voxels rule 1 would keep if the candidate held the
    # whole liver (its edge then the liver's outline); the rest is the outline's own erosion
    full = edge_erosion(cand | liver, dx, dy, rec["erode_mm"], rec["dark_edge"])
    classes["erosion_inner"] = er & full
    classes["erosion_outline"] = er & ~full
    r2, s0, status = (np.asarray(a) for a in (fit.r2_per_s, fit.s0, fit.status))
    good = np.isfinite(r2) & np.isfinite(s0) & (s0 > 0) & ~np.isin(status, FAILED_STATUSES)
    rest = inside & eroded
    classes["fit_failed"] = rest & ~good
    rest = rest & good
    cbox = _box(cand)

    def on_box(key):
        m = np.zeros(cand.shape, bool)
        for a in rec.get(key, [])[-1:]:
            m[cbox] = a.astype(bool)
        return m

    npar = roi.non_parenchyma if roi.non_parenchyma is not None else np.zeros_like(cand)
    fluid = npar & (on_box("below_parenchyma") | on_box("fluid_regions"))
    s0o = npar & on_box("s0_outliers") & ~fluid
    classes["fluid"] = rest & fluid
    classes["s0_outlier"] = rest & s0o
    classes["r2_vessel"] = rest & npar & ~fluid & ~s0o
    rest = rest & ~npar
    in_roi = rest & roi.mask
    classes["margin"] = rest & ~roi.mask
    used = np.zeros(cand.size, bool)
    if rec.get("pool_used") is not None:
        used[rec["pool_used"]] = True
    classes["tile"] = in_roi & ~used.reshape(cand.shape)
    classes["unexplained"] = in_roi & used.reshape(cand.shape)
    return classes, pieces, pool & liver


def shares(classes, pool_liver, liver, r2t) -> dict:
    n_liver = int(np.count_nonzero(liver))
    r_liver, r_pool = float(r2t[liver].mean()), float(r2t[pool_liver].mean())
    outd = {"pool_r2_error_pct": 100 * (r_pool / r_liver - 1), "liver_voxels": n_liver, "classes": {}}
    for k, m in classes.items():
        n = int(np.count_nonzero(m))
        if n:
            mr = float(r2t[m].mean())
            outd["classes"][k] = {"voxels": n, "mean_true_r2": round(mr, 3),
                                  "share_pct": round(100 * n / n_liver * (r_pool - mr) / r_liver, 4)}
    return outd


def decompose_one(cell, k: int, save: str | None = None) -> dict:
    from benchmarks.autogrid import _automatic, analyzed_liver, cell_name

    t0, c0 = time.time(), time.process_time()
    r = Recorder()
    with r.patched() as rec:
        ph, res = analyzed_liver(cell, k)
    liver, r2t = ph.truth.liver_mask, ph.truth.r2_per_s
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    if save:
        import pickle

        Path(save).mkdir(parents=True, exist_ok=True)
        with open(Path(save) / f"k{k}.pkl", "wb") as fh:
            pickle.dump({"image": res.image, "fit": res.fit, "calibration": res.calibration, "truth": truth,
                         "liver": liver, "r2_true": r2t, "labels": ph.truth.labels, "cell": cell, "k": k}, fh)
    auto = _automatic(res, liver, r2t, truth)
    classes, pieces, pool_liver = classify(rec, res, ph)
    sh = shares(classes, pool_liver, liver, r2t)
    big = []
    for p in pieces:
        m = p.pop("_mask")
        p["liver_fraction"] = round(float(np.count_nonzero(m & liver)) / np.count_nonzero(m), 3)
        lab = ph.truth.labels[m]
        p["labels"] = {n: round(float(np.mean(lab == v)), 3) for n, v in LABELS().items() if np.any(lab == v)}
        p["true_median_r2"] = round(float(np.median(r2t[m & liver])), 2) if (m & liver).any() else None
        big.append(p)
    return {"cell": cell_name(cell), "k": k, "coils": cell[4], "truth": truth,
            "headline_error_pct": auto["headline_error_pct"], "covers": auto["covers"],
            "ci95_pct": auto["ci95_pct"], "pool_truth_error_pct": auto["pool_truth_error_pct"],
            "red_warnings": auto["red_warnings"], "all_warnings": auto["all_warnings"],
            "low_side": {kk: v for kk, v in (rec.get("low_side_info") or {}).items() if kk != "pieces"},
            "low_side_pieces": (rec.get("low_side_info") or {}).get("pieces"),
            "intake_ran": rec.get("intake_info") is not None, "intake": rec.get("intake_info"),
            "decomposition": sh, "intake_pieces": big, "cpu_s": time.process_time() - c0,
            "wall_s": time.time() - t0}


def saved_roi(path):
    """``(saved dict, recorder dict, roi)``: the saved liver's ROI made again with the steps recorded."""
    import pickle

    from r2mri.roi import liver_roi

    with open(path, "rb") as fh:
        sv = pickle.load(fh)
    r = Recorder()
    with r.patched() as rec:
        roi = liver_roi(sv["image"], sv["fit"], calibration=sv["calibration"])
    return sv, rec, roi


def pieces_one(path) -> list[dict]:
    """The low-side intake's pieces (>= 50 voxels, last round each) of a saved liver, with truth."""
    sv, rec, _ = saved_roi(path)
    _, pieces = intake_verdicts(rec["before_intake"], rec["maps"], rec["r2"], rec["floor_r2"], rec["grow_k"],
                                rec["pdff"])
    rows = []
    for p in pieces:
        m = p.pop("_mask")
        lab = sv["labels"][m]
        rows.append({"k": sv["k"], "coils": sv["cell"][4], "intake_ran": rec.get("intake_info") is not None, **p,
                     "liver_fraction": round(float(np.mean(sv["liver"][m])), 3),
                     "true_mean_r2": round(float(sv["r2_true"][m].mean()), 2),
                     "labels": {n: round(float(np.mean(lab == v)), 3) for n, v in LABELS().items()
                                if np.any(lab == v)}})
    return rows


def designs_one(path, designs) -> list[dict]:
    """The ROI of a saved liver under each second-look design (r2mri._roi_floor_piece.DESIGN):
    the pooled sample's selection error and the voxels of other tissue the ROI holds."""
    import pickle

    import r2mri._roi_floor_piece as fp
    from r2mri.calibration import lic_from_r2
    from r2mri.roi import liver_roi

    with open(path, "rb") as fh:
        sv = pickle.load(fh)
    liver, r2t, labels = sv["liver"], sv["r2_true"], sv["labels"]
    rows, saved = [], fp.DESIGN
    try:
        for design in designs:
            fp.DESIGN = design
            roi = liver_roi(sv["image"], sv["fit"], calibration=sv["calibration"])
            nc = roi.not_converged if roi.not_converged is not None else np.zeros_like(roi.mask)
            pool = (roi.mask | nc) & liver
            other = roi.mask & ~liver & (labels != LABELS()["vessel"])
            rows.append({"k": sv["k"], "coils": sv["cell"][4], "design": design,
                         "pool_r2_error_pct": 100 * (float(r2t[pool].mean()) / float(r2t[liver].mean()) - 1),
                         "sel_lic_pct": 100 * (float(lic_from_r2(r2t[pool].mean(), sv["calibration"])) / sv["truth"] - 1),
                         "roi_voxels": int(roi.mask.sum()), "candidate_voxels": int(roi.candidate.sum()),
                         "other_tissue_in_roi": {n: int(np.count_nonzero(other & (labels == v)))
                                                 for n, v in LABELS().items() if np.any(other & (labels == v))},
                         "intake_added": (roi.options.get("low_side_intake") or {}).get("added"),
                         "low_side_fraction": (roi.options.get("low_side_left_out") or {}).get("fraction"),
                         "roi_warnings": [w for w in roi.warnings if "WARNING" in w]})
            print(rows[-1], flush=True)
    finally:
        fp.DESIGN = saved
    return rows


def class_table(rows: list[dict]) -> str:
    """Markdown: per class and channel count, livers with it, mean voxels and mean share per liver
    (livers without the class count 0); ``*_not_run`` merged into their class (counted apart)."""
    from benchmarks._common import md_table

    out = []
    for ch in sorted({r["coils"] for r in rows}):
        rs = [r for r in rows if r["coils"] == ch]
        n = len(rs)
        acc: dict[str, list] = {}
        for r in rs:
            for c, v in r["decomposition"]["classes"].items():
                acc.setdefault(c.replace("_not_run", ""), []).append((v["voxels"], v["share_pct"], c.endswith("_not_run")))
        for c, g in sorted(acc.items(), key=lambda kv: -sum(x[1] for x in kv[1])):
            out.append([f"{ch} ch", c, f"{len(g)}/{n}" + (f" ({sum(x[2] for x in g)} not run)" if any(x[2] for x in g)
                                                          else ""),
                        f"{sum(x[0] for x in g) / n:.0f}", f"{sum(x[1] for x in g) / n:+.3f}",
                        f"{max(x[1] for x in g):+.2f}"])
        out.append([f"{ch} ch", "**total (pooled R2 error)**", f"{n}", "",
                    f"{np.mean([r['decomposition']['pool_r2_error_pct'] for r in rs]):+.3f}",
                    f"{max(r['decomposition']['pool_r2_error_pct'] for r in rs):+.2f}"])
    return md_table(["cell", "class", "livers", "voxels / liver", "share of R2 % / liver", "max share"], out)


def _print(r):
    d = r["decomposition"]
    cl = sorted(d["classes"].items(), key=lambda kv: -abs(kv[1]["share_pct"]))
    print(f"{r['cell']} k {r['k']}: err {r['headline_error_pct']:+.2f} sel {r['pool_truth_error_pct']:+.2f} "
          f"poolR2 {d['pool_r2_error_pct']:+.2f} cover {r['covers']:d} red {len(r['red_warnings'])} "
          f"lowside {r['low_side'].get('fraction')} intake {r['intake_ran']:d} | "
          + " ".join(f"{k}:{v['voxels']}/{v['share_pct']:+.2f}" for k, v in cl[:9]), flush=True)


def main(argv=None) -> int:
    from benchmarks.autogrid import _select

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["decompose", "pieces", "designs", "table"])
    ap.add_argument("--designs", default="none,enclosed,s0_core,both")
    ap.add_argument("--cells", default="8,9")
    ap.add_argument("--livers", type=int, default=8)
    ap.add_argument("--first-index", type=int, default=5000)
    ap.add_argument("--only", default=None, help="comma-separated k to run (subset of the plan)")
    ap.add_argument("--out", default=str(RESULTS / "floorpiece-decompose.json"))
    ap.add_argument("--save", default=None, help="directory for each liver's image, fit and truth (pickle)")
    a = ap.parse_args(argv)
    if a.mode == "pieces":
        rows = [row for f in sorted(Path(a.save).glob("k*.pkl")) for row in pieces_one(f)]
        Path(a.out).write_text(json.dumps(rows, indent=1, default=str))
        for row in rows:
            print(row)
        return 0
    if a.mode == "table":
        print(class_table(json.loads(Path(a.out).read_text())["rows"]))
        return 0
    if a.mode == "designs":
        rows = []
        for f in sorted(Path(a.save).glob("k*.pkl")):
            rows += designs_one(f, a.designs.split(","))
            Path(a.out).write_text(json.dumps(rows, indent=1, default=str))
        return 0
    todo = _select(a.cells)
    plan = [(cell, a.first_index + j * len(todo) + i) for j in range(a.livers) for i, cell in enumerate(todo)]
    if a.only:
        keep = {int(x) for x in a.only.split(",")}
        plan = [(c, k) for c, k in plan if k in keep]
    out = Path(a.out)
    doc = {"argv": argv, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": []}
    for cell, k in plan:
        doc["rows"].append(decompose_one(cell, k, a.save))
        _print(doc["rows"][-1])
        out.write_text(json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    raise SystemExit(main())
