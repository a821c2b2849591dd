"""Branch edgelow: what the 5 mm edge erosion (ROI rule 1) removes on the coarse 1 mg/g SNR 20
livers of benchmarks.autogrid, and variants of its "inside" (module r2mri._roi_edge_inside).

Run from the repository root:
    NUMBA_NUM_THREADS=1 nice -n 5 .venv/bin/python -m benchmarks.results.edgelow_variants --ks 5000-5015
Per liver: one ``r2mri.analyze`` (autogrid's analyzed_liver, cell from k's parity as autogrid
--cells 8,9 assigns it, or --cell), its candidate and dark edge captured, then rules 1-3 re-run with each
variant's extra inside voxels. ``sel``: LIC of the mean true R2 over the pooled liver voxels
((kept | not_converged) & liver) against the truth, %. Eroded voxels are classified by the
label of the nearest voxel outside the candidate (in-plane): left-out liver, vessel, other
organ; ``hole``: that outside voxel is enclosed by the candidate (slice fill).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np
from scipy import ndimage

OUT = Path(__file__).resolve().parent


def _ks(spec: str) -> list[int]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def _classify(cand, kept, labels, liver):
    from r2mri import phantom

    L = phantom.LABELS
    eroded = cand & ~kept
    res = {"liver": 0, "vessel": 0, "other": 0, "hole": 0, "eroded_liver": 0}
    for k in range(cand.shape[2]):
        c = cand[:, :, k]
        if not c.any():
            continue
        e = eroded[:, :, k] & liver[:, :, k]
        if not e.any():
            continue
        _, (ii, jj) = ndimage.distance_transform_edt(c, return_indices=True)
        holes = ndimage.binary_fill_holes(c) & ~c
        ni, nj = ii[e], jj[e]
        lab = labels[ni, nj, k]
        res["liver"] += int(np.count_nonzero(lab == L["liver"]))
        res["vessel"] += int(np.count_nonzero(lab == L["vessel"]))
        res["other"] += int(np.count_nonzero((lab != L["liver"]) & (lab != L["vessel"])))
        res["hole"] += int(np.count_nonzero(holes[ni, nj]))
        res["eroded_liver"] += int(np.count_nonzero(e))
    return res


def _pv_risk(kept, cand, liver, vox, erode_mm):
    n = 0
    for k in range(kept.shape[2]):
        other = ~cand[:, :, k] & ~liver[:, :, k]
        if not kept[:, :, k].any() or not other.any():
            continue
        d = ndimage.distance_transform_edt(~other, sampling=vox[:2]) - 0.5 * min(vox[:2])
        n += int(np.count_nonzero(kept[:, :, k] & (d < erode_mm)))
    return n


def run_one(k: int, cell_index: int | None, variants: dict) -> dict:
    import r2mri.roi as roi_mod
    import r2mri._roi_proposal as prop
    from benchmarks.autogrid import CELLS, analyzed_liver, cell_name
    from r2mri.calibration import lic_from_r2

    cell = CELLS[cell_index if cell_index is not None else (8 if k % 2 == 0 else 9)]
    cap: dict = {}
    real_rules, real_ext = roi_mod.apply_rules, prop.extend_candidate

    def rules(*a, **kw):
        cap["rules"] = (a, dict(kw))
        return real_rules(*a, **kw)

    def ext(cand, maps, *a, **kw):
        out = real_ext(cand, maps, *a, **kw)
        cap["maps"], cap["ext_kw"] = maps, kw
        return out

    with mock.patch.object(roi_mod, "apply_rules", rules), mock.patch.object(prop, "extend_candidate", ext):
        ph, res = analyzed_liver(cell, k)
    liver, r2t, labels = ph.truth.liver_mask, ph.truth.r2_per_s, ph.truth.labels
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    cal = res.calibration
    a, kw = cap["rules"]
    cand = a[0]
    row = {"k": k, "cell": cell_name(cell), "truth": truth,
           "headline_error_pct": 100 * (res.statistics.headline_lic_mg_per_g / truth - 1),
           "n_liver": int(liver.sum()), "n_cand": int(cand.sum()),
           "liver_in_cand": float((cand & liver).sum() / liver.sum())}
    ctx = {"maps": cap.get("maps"), "ext_kw": cap.get("ext_kw", {}), "image": a[1], "fit": a[2], "cand": cand,
           "labels": labels, "liver": liver}
    for name, fn in variants.items():
        extra = fn(ctx) if fn is not None else None
        rim = None
        if isinstance(extra, tuple):  # (extra inside, rim_mm): the edge voxels within rim_mm of any outside voxel go
            extra, rim = extra
        kw2 = dict(kw, options={}, warnings=[])
        if name == "no_erosion":
            kw2["erode_mm"] = 0.0
        elif extra is not None:
            de = kw["dark_edge"]
            kw2["dark_edge"] = extra if de is None else (de | extra)
        kept, removed, npar, nc = real_rules(*a, **kw2)
        if rim is not None:
            from r2mri._roi_rules import edge_erosion
            keep_rim = edge_erosion(cand, a[1].voxel_size_mm[0], a[1].voxel_size_mm[1], rim, kw["dark_edge"])
            kept, nc = kept & keep_rim, nc & keep_rim
        pool = (kept | nc) & liver
        sel = 100 * (float(lic_from_r2(r2t[pool].mean(), cal)) / truth - 1)
        # kept liver within erode_mm (in-plane) of a non-liver voxel outside the candidate: where a partial-volume
        # edge against other tissue would stay in the ROI (the phantom has none, so this counts the risk)
        v = {"pv_risk": _pv_risk(kept, cand, liver, a[1].voxel_size_mm, kw["erode_mm"]), "sel_pct": sel, "n_pool": int(pool.sum()), "non_liver_kept": int((kept & ~liver).sum()),
             "removed": removed}
        if extra is not None:
            ex = extra & ~cand
            v["extra_inside"] = {"n": int(ex.sum()), "liver": int((ex & liver).sum()),
                                 "by_label": {str(int(l)): int(c) for l, c in zip(*np.unique(labels[ex], return_counts=True))}}
        if name == "main":
            from r2mri._roi_rules import edge_erosion
            dx, dy, _ = a[1].voxel_size_mm
            v["eroded_next_to"] = _classify(cand, edge_erosion(cand, dx, dy, kw["erode_mm"], kw["dark_edge"]),
                                            labels, liver)
            er = cand & ~kept & liver
            v["eroded_liver_mean_r2"] = float(r2t[er].mean()) if er.any() else None
            v["liver_mean_r2"] = float(r2t[liver].mean())
        row[name] = v
        print(f"k {k} {name}: sel {sel:+.2f} %  pv_risk {v['pv_risk']} pool {v['n_pool']}  non-liver {v['non_liver_kept']}"
              + (f"  extra {v['extra_inside']}" if "extra_inside" in v else ""), flush=True)
    if "main" in row:
        print(f"k {k} eroded next to: {row['main']['eroded_next_to']}", flush=True)
    return row


def main(argv=None) -> int:
    from benchmarks.results import edgelow_variant_defs as ei

    ap = argparse.ArgumentParser()
    ap.add_argument("--ks", default="5000-5015")
    ap.add_argument("--cell", type=int, default=None)
    ap.add_argument("--out", default=str(OUT / "edgelow-variants.json"))
    a = ap.parse_args(argv)
    variants = {"main": None, "no_erosion": None, **ei.VARIANTS}
    out = Path(a.out)
    doc = {"argv": sys.argv[1:], "rows": []}
    for k in _ks(a.ks):
        doc["rows"].append(run_one(k, a.cell, variants))
        out.write_text(json.dumps(doc, indent=1))
    names = [n for n in doc["rows"][0] if isinstance(doc["rows"][0][n], dict) and "sel_pct" in doc["rows"][0][n]]
    for cell in sorted({r["cell"] for r in doc["rows"]}):
        rr = [r for r in doc["rows"] if r["cell"] == cell]
        for n in names:
            s = np.array([r[n]["sel_pct"] for r in rr])
            se = s.std(ddof=1) / np.sqrt(len(s)) if len(s) > 1 else float("nan")
            print(f"{cell} n {len(s)} {n}: sel {s.mean():+.2f} +- {se:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
