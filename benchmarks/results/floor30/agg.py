"""Aggregate diag2.py pickles: per floor-share bin and per true-R2 bin, the mean over livers of each
bin's contribution (voxel-weighted error / all voxels, s^-1) of apparent, -bias and corrected, +- SE."""
import pickle, sys
import numpy as np
out = {}
for f in sys.argv[1:]:
    out.update(pickle.load(open(f, "rb")))
for o in (True, False):
    keys = [k for k in out if k[1] == o]
    print("outline" if o else "automatic", len(keys), "livers")
    def show(name, binfun, bins):
        for lo, hi in bins:
            c = {q: [] for q in ("app", "r2app", "corr")}
            nv = []
            for kk in keys:
                r = out[kk]; s = binfun(r, lo, hi); W = r["k"].sum()
                nv.append(r["k"][s].sum() / W)
                for q in c:
                    c[q].append(np.sum(r["k"][s] * (r[q][s] - r["tt"][s])) / W)
            msg = " ".join(f"{q} {np.mean(v):+.3f}+-{np.std(v, ddof=1)/np.sqrt(len(v)):.3f}" for q, v in c.items())
            print(f"  {name} {lo}-{hi}: share of pool {np.mean(nv):.3f}; contrib (s^-1) {msg}")
    show("floor share", lambda r, lo, hi: (r["ffrac"] == 0) if hi == 0 else (r["ffrac"] > lo) & (r["ffrac"] <= hi),
         [(0, 0), (0, 0.1), (0.1, 0.3), (0.3, 1)])
    show("true R2", lambda r, lo, hi: (r["tt"] >= lo) & (r["tt"] < hi), [(0, 200), (200, 250), (250, 300), (300, 350), (350, 500)])
    show("rel SE", lambda r, lo, hi: (r["se"] / r["app"] >= lo) & (r["se"] / r["app"] < hi), [(0, 0.1), (0.1, 0.15), (0.15, 0.25), (0.25, 1e9)])
    tot = [np.sum(out[kk]["k"] * (out[kk]["corr"] - out[kk]["tt"])) / out[kk]["k"].sum() / np.sum(out[kk]["k"] * out[kk]["tt"]) * out[kk]["k"].sum() * 100 for kk in keys]
    print(f"  total corrected error in R2 {np.mean(tot):+.2f} +- {np.std(tot, ddof=1)/np.sqrt(len(tot)):.2f} %")
