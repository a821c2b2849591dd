"""Where the tile estimator's error on the kept sample comes from (branch floor30): per tile, the
corrected rate against the true mean R2 of its voxels, binned by true R2 and by the tile's share of
floor voxels (S0 = 0 fits, dropped by rule 2)."""
import pickle, sys
import numpy as np
import r2mri.roi as roi_mod
from r2mri.stats import liver_statistics, pooled_mean_r2
from r2mri.status import FitStatus

def run(fn, outline):
    d = pickle.load(open(fn, "rb"))
    img, fit, cal, liver, vessel, r2t = (d[k] for k in ("image", "fit", "calibration", "liver", "vessel", "r2_true"))
    roi = roi_mod.liver_roi(img, fit, mask=(liver | vessel) if outline else None, calibration=cal)
    st = liver_statistics(fit, roi, cal, image=img)
    s0 = np.asarray(fit.s0); r2 = np.asarray(fit.r2_per_s); stt = np.asarray(fit.status)
    floor = (s0 <= 0) & liver
    print(fn.split('/')[-1], "outline" if outline else "auto", "floor liver voxels", floor.sum(),
          "status", np.unique(stt[floor], return_counts=True), "r2 fit of floor", np.nanpercentile(r2[floor], [5, 50, 95]) if floor.any() else None,
          "true r2 floor", r2t[floor].mean() if floor.any() else None, "liver mean", r2t[liver].mean())
    pool = roi.mask | roi.not_converged
    sig = fit.options.get("noise_sigma"); coils = fit.options.get("coils")
    p = pooled_mean_r2(img, pool, noise_sigma=sig, coils=coils)
    return d, roi, st, p, floor

if __name__ == "__main__":
    for fn in sys.argv[1:]:
        d, roi, st, p, floor = run(fn, True)
        r2t = d["r2_true"].ravel()
        idx, vt = p.voxel_index, p.voxel_tile
        nt = p.n_tiles
        k = np.bincount(vt, minlength=nt)
        tt = np.bincount(vt, weights=r2t[idx], minlength=nt) / k
        print(" headline r2", st.r2["headline_mean"] if hasattr(st, "r2") else None)
        err = p.tile_r2_per_s - tt
        print(" apparent mean err (s^-1)", np.sum(k * err) / k.sum(), "mean true", np.sum(k*tt)/k.sum())
        for lo, hi in [(0, 200), (200, 250), (250, 300), (300, 350), (350, 450)]:
            s = (tt >= lo) & (tt < hi)
            print(f"  true {lo}-{hi}: tiles {s.sum()} vox {k[s].sum()} mean err {np.sum(k[s]*err[s])/max(k[s].sum(),1):+.2f} contrib {np.sum(k[s]*err[s])/k.sum():+.3f} sizes", np.unique(p.tile_size[s], return_counts=True))
