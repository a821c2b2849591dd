"""Per-bay geometry of rule 1's liver-like bays (branch baygeom).

Wraps :func:`r2mri._roi_edge_bays.liver_like_bays`: every S0-like bay (face-connected piece, before
the floor test) of the final automatic candidate is logged with its voxels, median R2, whether it is
below the floor, its truth (fraction liver) and geometric measures of its 1-voxel in-plane rim:
``f_cand`` (rim in the candidate), ``f_bay`` (rim in the candidate or another S0-like bay voxel),
``f_unlike`` (rim in tissue outside the candidate whose S0 is not liver-like), ``f_bg`` (rim not tissue),
``f_out`` (rim outside the closing, i.e. the bay's mouth) and ``f_cand2`` (2-voxel in-plane ring in the candidate).

The stored JSONs (baygeom-cell8.json, baygeom-organs.json) were trimmed afterwards to bays with >= 10 finite R2.
``f_bay`` equals ``f_cand`` by construction (a face-connected piece has no in-plane neighbour in another bay).

``python benchmarks/results/baygeom_log.py autogrid 5000-5015`` (cell 8, even k as autogrid --cells 8,9 interleaves) or
``python benchmarks/results/baygeom_log.py organs 0.5,1 1,2``."""
import json
import sys

import numpy as np
from scipy import ndimage

import r2mri
import r2mri._roi_edge_bays as eb

_orig = eb.liver_like_bays
CALLS = []


def _wrapped(cand, logs, tissue, erode_mm, voxel_mm, s0_sd=eb.BAY_S0_SD, r2_per_s=None, floor_r2_per_s=None):
    out = _orig(cand, logs, tissue, erode_mm, voxel_mm, s0_sd, r2_per_s, floor_r2_per_s)
    allb = _orig(cand, logs, tissue, erode_mm, voxel_mm, s0_sd, None, None)
    from r2mri._roi_grow import _MAD_TO_SD
    region = cand & tissue
    vs = logs[region]
    med = float(np.median(vs))
    sd = _MAD_TO_SD * float(np.median(np.abs(vs - med)))
    with np.errstate(invalid="ignore"):
        like = tissue & (np.abs(logs - med) <= s0_sd * sd)
    CALLS.append(dict(cand=cand.copy(), allb=allb, out=out.copy(), like=like, tissue=tissue.copy(),
                      voxel_mm=voxel_mm, r2=None if r2_per_s is None else np.asarray(r2_per_s, float), floor=floor_r2_per_s))
    return out


eb.liver_like_bays = _wrapped
CROSS2 = np.zeros((3, 3, 3), bool)
CROSS2[:, 1, 1] = CROSS2[1, :, 1] = True  # in-plane 4-neighbourhood


def bays_of(call, labels, liver_label):
    cand, allb, like, tissue, r2, floor = (call[k] for k in ("cand", "allb", "like", "tissue", "r2", "floor"))
    r = int(np.ceil(5.0 / min(call["voxel_mm"]) - 1e-9))
    closed = cand | allb | ndimage.binary_closing(np.pad(cand, ((r + 1,) * 2, (r + 1,) * 2, (0, 0))),
                                                  structure=eb._disk(r))[r + 1:-(r + 1), r + 1:-(r + 1)]
    pieces, n = ndimage.label(allb, structure=ndimage.generate_binary_structure(3, 1))
    rows = []
    for p in range(1, n + 1):
        piece = pieces == p
        rim = ndimage.binary_dilation(piece, structure=CROSS2) & ~piece
        nr = max(int(rim.sum()), 1)
        ring = ndimage.binary_dilation(piece, structure=CROSS2, iterations=2) & ~piece
        nring = max(int(ring.sum()), 1)
        vals = r2[piece & np.isfinite(r2)]
        med = float(np.median(vals)) if vals.size else float("nan")
        lab = labels[piece]
        rows.append({"n": int(piece.sum()), "n_r2": int(vals.size), "median_r2": med,
                     "below_floor": bool(vals.size < eb.BAY_MIN_VOXELS or med < floor), "floor": floor,
                     "kept_main": bool(call["out"][piece].any()),
                     "liver_frac": float(np.mean(lab == liver_label)),
                     "labels": {int(v): int(c) for v, c in zip(*np.unique(lab, return_counts=True))},
                     "f_cand": float((rim & cand).sum() / nr), "f_bay": float((rim & (cand | allb)).sum() / nr),
                     "f_unlike": float((rim & ~cand & tissue & ~like).sum() / nr),
                     "f_bg": float((rim & ~tissue).sum() / nr),
                     "f_out": float((rim & ~closed).sum() / nr), "f_cand2": float((ring & cand).sum() / nring), "rim": nr})
    return rows


def main():
    from r2mri.phantom import LABELS, generate
    out = []
    if sys.argv[1] == "autogrid":
        from benchmarks.autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0
        a, b = (int(x) for x in sys.argv[2].split("-"))
        sd, w, lic, snr, coils = CELLS[8]
        runs = [(f"cell8 k {k}", dict(lic=lic, snr=snr, coils=coils, seed=NOISE_SEED0 + k,
                                      texture_seed=TEXTURE_SEED0 + k, lic_log_sd=sd, lic_correlation_voxels=w))
                for k in range(a, b + 1, 2)]
    else:
        runs = [(f"organs {lic} seed {s}", dict(preset="ferriscan-1.5t-lic7", seed=s, snr=20, coils=1, lic_mg_per_g=lic))
                for lic in (float(x) for x in sys.argv[2].split(",")) for s in (int(x) for x in sys.argv[3].split(","))]
    for name, kw in runs:
        preset = kw.pop("preset", None)
        ph = generate(preset, **kw) if preset else generate(**kw)
        CALLS.clear()
        r2mri.analyze(ph.image, threads=1)
        call = CALLS[-1]
        for row in bays_of(call, ph.truth.labels, LABELS["liver"]):
            row["run"] = name
            out.append(row)
            if row["below_floor"] and row["n_r2"] >= eb.BAY_MIN_VOXELS:
                print(f"{name}: n {row['n']:4d} med {row['median_r2']:5.1f} liver {row['liver_frac']:.2f} "
                      f"f_cand {row['f_cand']:.2f} f_bay {row['f_bay']:.2f} f_unlike {row['f_unlike']:.2f} "
                      f"f_bg {row['f_bg']:.2f} f_out {row['f_out']:.2f} f_cand2 {row['f_cand2']:.2f} labels {row['labels']}", flush=True)
        json.dump(out, open(sys.argv[-1] if sys.argv[-1].endswith(".json") else "/dev/null", "w"))


if __name__ == "__main__":
    sys.path.insert(0, ".")
    main()
