"""Branch erosion: every below-floor liver-like bay of the cached livers of ``benchmarks.erosion --cache DIR``,
with its truth and the contrast that ``r2mri._roi_edge_grade``'s ``"contrast"`` design gates on.

Needs the library of commit 5c3089f (``bay_pieces``, ``_inside_median``).
``python -m benchmarks.results.erosion_bays DIR [GLOB]`` prints one line per bay (>= BAY_MIN_VOXELS finite R2,
median below the floor): voxels, median R2, the candidate's median R2 within the erosion width of it, the
relative contrast, the bay's fraction of liver, its majority label and the bay's mean true R2; then the
contrast quantiles of liver and other bays.
"""
import pickle
import sys
from pathlib import Path

import numpy as np

import r2mri._roi_edge_bays as eb
import r2mri._roi_edge_grade as grade
from r2mri.phantom import LABELS
import __main__
from benchmarks import erosion as _erosion

for _name in ("_Ph", "_Res", "_St"):  # the cache pickles name them in __main__ (benchmarks.erosion run with -m)
    setattr(__main__, _name, getattr(_erosion, _name))

NAMES = {v: k for k, v in LABELS.items()}


def bays_of(path):
    ph, res, cap = pickle.loads(Path(path).read_bytes())
    ba, bkw = cap["bays"]
    cand, maps, dark, erode_mm, vox, _opts, r2, floor = ba
    vox = (float(vox[0]), float(vox[1]))
    allb = eb.liver_like_bays(cand, maps.logs, maps.tissue, erode_mm, vox)
    radius = int(np.ceil(erode_mm / min(vox) - 1e-9))
    labels, liver, r2t = ph.truth.labels, ph.truth.liver_mask, ph.truth.r2_per_s
    rows = []
    r2 = np.asarray(r2, float)
    for piece, n, med in eb.bay_pieces(allb, r2):
        if n < eb.BAY_MIN_VOXELS or med >= floor:
            continue
        inside = grade._inside_median(piece, cand, r2, radius)
        lab, cnt = np.unique(labels[piece], return_counts=True)
        rows.append({"file": Path(path).stem, "n": n, "median": med, "inside": inside,
                     "contrast": (inside - med) / inside, "f_liver": float(liver[piece].mean()),
                     "label": NAMES.get(int(lab[cnt.argmax()]), "?"), "true_r2": float(r2t[piece].mean()),
                     "floor": floor})
    return rows


def main():
    d = Path(sys.argv[1])
    rows = [r for f in sorted(d.glob(sys.argv[2] if len(sys.argv) > 2 else "*.pkl")) for r in bays_of(f)]
    for r in rows:
        print(f"{r['file']:40s} n {r['n']:4d} med {r['median']:5.1f} in {r['inside']:5.1f} c {r['contrast']:+.2f} "
              f"liver {r['f_liver']:.2f} {r['label']:12s} true {r['true_r2']:5.1f} floor {r['floor']:.1f}")
    for name, sel in (("liver", lambda r: r["f_liver"] >= 0.5), ("other", lambda r: r["f_liver"] < 0.5)):
        c = np.array([r["contrast"] for r in rows if sel(r)])
        n = np.array([r["n"] for r in rows if sel(r)])
        if c.size:
            print(f"{name}: {c.size} bays, {n.sum()} voxels, contrast 10/50/90 % {np.percentile(c, [10, 50, 90]).round(2)}"
                  f" min {c.min():.2f} max {c.max():.2f}")


if __name__ == "__main__":
    main()
