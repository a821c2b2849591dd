"""Rule 1's erosion next to below-floor liver-like bays: the designs of r2mri/_roi_edge_grade.py compared on
the same fits (issue 16, branch erosion).

The designs' switch (``r2mri._roi_edge_grade.DESIGN``: full, inside, rim1, rim2, rim1_lo, contrast,
contrast_rim1, ring20-ring50) is in the library of commit 5c3089f of branch erosion; the shipped library
keeps only the ring at 30 % (``--designs shipped``). Run from the repository root
(``NUMBA_NUM_THREADS=1 nice -n 5``):
    python -m benchmarks.erosion autogrid 5000-5015 [--cell I | --mid I] [--out FILE]
    python -m benchmarks.erosion organs 0.5,1 1,2 [--snr 20 --coils 1]
Per liver one ``r2mri.analyze`` (autogrid's ``analyzed_liver``: cell 8 for even k and 9 for odd k as
``autogrid --cells 8,9`` interleaves them, or ``--cell`` / ``--mid``; or ``roi_organs``' uniform phantom),
with the arguments of :func:`r2mri._roi_edge_bays.with_liver_like_bays` and of rules 1-3 captured; then for
each design the bays and rules 1-3 are re-run on that candidate (the statistics are not: ``sel`` is the
selection part of the headline, not the headline). Per design:
``sel_pct``: LIC of the mean true R2 over the pooled liver voxels (``(kept | not_converged) & liver``)
against the truth (autogrid's ``pool_truth_error_pct``); ``sel_all_pct``: the same over every pooled voxel
with its own true R2 (other organs in the ROI included: what they do to the mean on this phantom, which
has no partial volume); ``non_liver``: kept voxels by phantom label; ``pv_risk``: kept liver voxels within
5 mm of a non-liver voxel outside the candidate (the edge a real image's partial volume would leave in);
``pv50_pct``: ``sel_all`` when every pooled voxel next to (in-plane 8-neighbour) a voxel outside the candidate
holds 50 % of its outside neighbours' tissue (apparent R2 = S0-weighted mean; the phantom has no partial
volume, so this models the harm an edge kept against other tissue would do, in proportion to the contrast).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np
from scipy import ndimage

OUT = Path(__file__).resolve().parent / "results"


def _ks(spec: str) -> list[int]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def _pv_risk(kept, cand, liver, vox, erode_mm):
    n = 0
    for k in range(kept.shape[2]):
        other = ~cand[:, :, k] & ~liver[:, :, k]
        if not kept[:, :, k].any() or not other.any():
            continue
        d = ndimage.distance_transform_edt(~other, sampling=vox[:2]) - 0.5 * min(vox[:2])
        n += int(np.count_nonzero(kept[:, :, k] & (d < erode_mm)))
    return n


def _pv50(pool, cand, r2t, s0t):
    """Mean true R2 over ``pool`` when each pooled voxel in-plane 8-adjacent to a voxel outside ``cand`` holds
    50 % of its outside neighbours' tissue (signal-weighted: apparent R2 = S0-weighted mean R2; air adds none)."""
    r2 = np.where(np.isfinite(r2t), r2t, 0.0)
    s0 = np.where(np.isfinite(s0t) & np.isfinite(r2t), s0t, 0.0)
    out = ~cand
    size = (3, 3, 1)
    n_o = ndimage.uniform_filter(out.astype(float), size, mode="nearest") * 9
    s_o = ndimage.uniform_filter(s0 * out, size, mode="nearest") * 9
    sr_o = ndimage.uniform_filter(s0 * r2 * out, size, mode="nearest") * 9
    mixed = r2.copy()
    rim = pool & (n_o > 0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        num = 0.5 * s0 * r2 + 0.5 * sr_o / n_o
        den = 0.5 * s0 + 0.5 * s_o / n_o
        mixed[rim] = (num / den)[rim]
    return float(mixed[pool].mean()), int(rim.sum())


def _captured(run):
    """``run()`` -> (phantom, result); returns it with the captured bay and rule arguments."""
    import r2mri._roi_proposal as prop
    import r2mri.roi as roi_mod

    cap: dict = {}
    real_rules, real_bays = roi_mod.apply_rules, prop.with_liver_like_bays

    def rules(*a, **kw):
        cap["rules"] = (a, dict(kw))
        return real_rules(*a, **kw)

    def bays(*a, **kw):
        cap["bays"] = (a, dict(kw))
        return real_bays(*a, **kw)

    with mock.patch.object(roi_mod, "apply_rules", rules), mock.patch.object(prop, "with_liver_like_bays", bays):
        ph, res = run()
    return ph, res, cap, real_rules, real_bays


class _Ph:
    def __init__(self, ph):
        self.truth, self.summary = ph.truth, ph.summary


class _Res:
    def __init__(self, res):
        self.calibration, self.statistics = res.calibration, _St(res.statistics.headline_lic_mg_per_g)


class _St:
    def __init__(self, h):
        self.headline_lic_mg_per_g = h


def _cached(cache, name, run):
    """``_captured(run)``, kept as a pickle in ``cache`` (a directory) when given."""
    import pickle

    if cache is None:
        return _captured(run)
    f = Path(cache) / f"{name}.pkl"
    if not f.exists():
        ph, res, cap, _, _ = _captured(run)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(pickle.dumps((_Ph(ph), _Res(res), cap)))
    ph, res, cap = pickle.loads(f.read_bytes())
    import r2mri._roi_edge_bays as eb
    import r2mri._roi_rules as rr
    return ph, res, cap, rr.apply_rules, eb.with_liver_like_bays


def evaluate(ph, res, cap, real_rules, real_bays, designs) -> dict:
    import r2mri._roi_edge_grade as grade
    from r2mri.calibration import lic_from_r2
    from r2mri.phantom import LABELS

    names = {v: k for k, v in LABELS.items()}
    liver, r2t, labels = ph.truth.liver_mask, ph.truth.r2_per_s, ph.truth.labels
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    cal = res.calibration
    a, kw = cap["rules"]
    cand = a[0]
    row = {"truth": truth, "headline_error_pct": 100 * (res.statistics.headline_lic_mg_per_g / truth - 1),
           "n_liver": int(liver.sum()), "n_cand": int(cand.sum())}
    ba, bkw = cap.get("bays", (None, None))
    for design in designs:
        kw2 = dict(kw, options={}, warnings=[])
        opts: dict = {}
        if ba is not None and np.array_equal(ba[0], cand):
            # the designs' switch is in commit 5c3089f's library; the shipped one has only "shipped"
            with mock.patch.object(grade, "DESIGN", design, create=True):
                kw2["dark_edge"] = real_bays(ba[0], ba[1], ba[2], ba[3], ba[4], opts, *ba[6:], **bkw)
        kept, removed, npar, nc = real_rules(*a, **kw2)
        pool = kept | nc
        sel = 100 * (float(lic_from_r2(r2t[pool & liver].mean(), cal)) / truth - 1)
        sel_all = 100 * (float(lic_from_r2(r2t[pool].mean(), cal)) / truth - 1)
        nl = labels[kept & ~liver]
        pv_r2, pv_rim = _pv50(pool, cand, r2t, ph.truth.s0)
        row[design] = {"sel_pct": sel, "sel_all_pct": sel_all,
                       "pv50_pct": 100 * (float(lic_from_r2(pv_r2, cal)) / truth - 1), "pv50_rim": pv_rim, "n_pool": int(pool.sum()),
                       "non_liver": {names.get(int(lb), str(lb)): int(c) for lb, c in zip(*np.unique(nl, return_counts=True))},
                       "pv_risk": _pv_risk(kept, cand, liver, a[1].voxel_size_mm, kw["erode_mm"]),
                       "edge_erosion": removed["edge_erosion"],
                       "graded": int(np.count_nonzero(kw2["dark_edge"] >= 2)) if kw2["dark_edge"] is not None
                       and kw2["dark_edge"].dtype == np.uint8 else 0,
                       "below_floor_inside": opts.get("edge_bays_below_floor", 0) if ba is not None else 0,
                       "ring_inside": opts.get("edge_ring", 0) if ba is not None else 0}
    return row


def _print(row, designs):
    base = row[designs[0]]
    for d in designs:
        v = row[d]
        print(f"  {row['id']} {d:14s} sel {v['sel_pct']:+.2f} (d {v['sel_pct'] - base['sel_pct']:+.2f}) sel_all "
              f"{v['sel_all_pct']:+.2f} pv50 {v['pv50_pct']:+.2f} (d {v['pv50_pct'] - base['pv50_pct']:+.2f}) non-liver {sum(v['non_liver'].values())} {v['non_liver']} pv {v['pv_risk']} "
              f"graded {v['graded']} below-floor inside {v['below_floor_inside']} ring {v['ring_inside']}", flush=True)


def summary(rows, designs):
    for grp in sorted({r["group"] for r in rows}):
        rr = [r for r in rows if r["group"] == grp]
        for d in designs:
            s = np.array([r[d]["sel_pct"] for r in rr])
            dd = s - np.array([r[designs[0]]["sel_pct"] for r in rr])
            sa = np.array([r[d]["sel_all_pct"] for r in rr])
            nl = sum(sum(r[d]["non_liver"].values()) for r in rr)
            pv = np.array([r[d]["pv50_pct"] - r[designs[0]]["pv50_pct"] for r in rr])
            se = (lambda x: x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan"))
            print(f"{grp} n {len(rr)} {d:14s} sel {s.mean():+.2f} +- {se(s):.2f}  paired {dd.mean():+.2f} +- "
                  f"{se(dd):.2f}  sel_all {sa.mean():+.2f} +- {se(sa):.2f}  pv50 paired {pv.mean():+.2f} +- {se(pv):.2f}  "
                  f"non-liver {nl}", flush=True)


def main(argv=None) -> int:
    import r2mri._roi_edge_grade as grade

    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=("autogrid", "organs"))
    ap.add_argument("a")
    ap.add_argument("b", nargs="?", default="1,2")
    ap.add_argument("--cell", type=int, default=None)
    ap.add_argument("--mid", type=int, default=None)
    ap.add_argument("--snr", type=float, default=20.0)
    ap.add_argument("--coils", type=int, default=1)
    ap.add_argument("--designs", default=",".join(getattr(grade, "DESIGNS", ("shipped",))))
    ap.add_argument("--out", default=str(OUT / "erosion-designs.json"))
    ap.add_argument("--cache", default=None, help="directory: keep each liver's captured fit there and reuse it")
    a = ap.parse_args(argv)
    designs = a.designs.split(",")
    out = Path(a.out)
    doc = {"argv": sys.argv[1:], "designs": designs, "rows": []}
    jobs = []
    if a.kind == "autogrid":
        from benchmarks.autogrid import CELLS, MID_CELLS, analyzed_liver, cell_name

        for k in _ks(a.a):
            cell = (MID_CELLS[a.mid] if a.mid is not None else CELLS[a.cell] if a.cell is not None
                    else CELLS[8 if k % 2 == 0 else 9])
            jobs.append((cell_name(cell), f"k{k}", (lambda c=cell, k=k: analyzed_liver(c, k))))
    else:
        import r2mri
        from r2mri.phantom import generate

        def org(lic, seed):
            ph = generate("ferriscan-1.5t-lic7", seed=seed, snr=a.snr, coils=a.coils, lic_mg_per_g=lic)
            return ph, r2mri.analyze(ph.image, threads=1)

        for lic in (float(x) for x in a.a.split(",")):
            for seed in (int(x) for x in a.b.split(",")):
                jobs.append((f"organs_lic{lic:g}_snr{a.snr:g}_c{a.coils}", f"lic{lic:g}s{seed}",
                             (lambda lic=lic, seed=seed: org(lic, seed))))
    for group, ident, run in jobs:
        row = {"group": group, "id": ident, **evaluate(*_cached(a.cache, f"{group}-{ident}", run), designs)}
        doc["rows"].append(row)
        print(f"{group} {ident}: headline {row['headline_error_pct']:+.2f} %", flush=True)
        _print(row, designs)
        out.write_text(json.dumps(doc, indent=1))
    summary(doc["rows"], designs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
