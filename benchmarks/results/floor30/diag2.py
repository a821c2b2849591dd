"""Per-tile error of the headline's tiles on the kept sample (branch floor30): apparent (as fitted),
less the tile-fit bias (r2_app), and corrected (tile-mixture), each against the true mean R2 of the
tile's kept voxels; binned by the share of the tile's 8x8 block whose fit hit the floor (S0 = 0)."""
import pickle, sys
import numpy as np
import r2mri.roi as roi_mod
from r2mri.stats import pooled_mean_r2, _tile_ids
from r2mri._headline import mixture_corrected_mean_r2
from r2mri._spread_estimate import _tile_set

def run(fn, outline):
    d = pickle.load(open(fn, "rb"))
    img, fit, cal, liver, vessel, r2t = (d[k] for k in ("image", "fit", "calibration", "liver", "vessel", "r2_true"))
    roi = roi_mod.liver_roi(img, fit, mask=(liver | vessel) if outline else None, calibration=cal)
    s0 = np.asarray(fit.s0)
    floor = (s0 <= 0) & liver
    pool = roi.mask | roi.not_converged
    if __import__("os").environ.get("FLOORPOOL"):  # the what-if: the floor fits' magnitudes pooled too
        cand = roi.candidate if roi.candidate is not None else roi.mask
        from r2mri._roi_rules import edge_erosion
        er = edge_erosion(cand, *img.voxel_size_mm[:2], 5.0)
        pool = pool | (er & (s0 <= 0) & (np.asarray(fit.status) == 3) & ~roi.non_parenchyma)
    sig = fit.options.get("noise_sigma"); coils = fit.options.get("coils")
    p = pooled_mean_r2(img, pool, noise_sigma=sig, coils=coils)
    t = _tile_set(img, p, sig, coils, 0)
    pc, corr = mixture_corrected_mean_r2(img, pool, noise_sigma=sig, coils=coils)
    idx, vt, nt = p.voxel_index, p.voxel_tile, p.n_tiles
    idx, vt = idx[vt >= 0], vt[vt >= 0]
    k = np.bincount(vt, minlength=nt).astype(float)
    tt = np.bincount(vt, weights=r2t.ravel()[idx], minlength=nt) / k
    # floor voxels per 8x8 block, mapped onto the tiles (all 8x8 here)
    ii, jj, kk = np.unravel_index(idx, liver.shape)
    tid8, _ = _tile_ids(ii, jj, kk, liver.shape, 8)
    tile_block = np.zeros(nt, np.int64); tile_block[vt] = tid8
    fi, fj, fk = np.nonzero(floor)
    fb, _ = _tile_ids(fi, fj, fk, liver.shape, 8)
    fcount = np.bincount(fb, minlength=tile_block.max() + 1)
    nf = fcount[tile_block] if fcount.size > tile_block.max() else np.zeros(nt)
    ffrac = nf / (nf + k)
    W = k.sum()
    print(f"{fn.split('/')[-1]} {'outline' if outline else 'auto'}: floor voxels {floor.sum()} (in pool {np.count_nonzero(floor & pool)}), "
          f"pool truth {np.sum(k*tt)/W:.2f}; mean err apparent {np.sum(k*(p.tile_r2_per_s-tt))/W:+.2f}, "
          f"-bias {np.sum(k*(t.r2_app-tt))/W:+.2f}, corrected {np.sum(k*(pc.tile_r2_per_s-tt))/W:+.2f} s^-1 "
          f"(fit bias mean {t.fit_bias_r2:+.2f}, sim {t.fit_bias_sim_r2:+.2f}, skipped {t.fit_bias_skipped:.3f})")
    rows = []
    for lo, hi in [(0, 1e-9), (1e-9, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.01)]:
        s = (ffrac >= lo) & (ffrac < hi) if hi > 1e-9 else ffrac == 0
        if not s.any():
            continue
        print(f"  floor share {lo:.1f}-{hi:.1f}: tiles {s.sum()} vox {int(k[s].sum())} true {np.sum(k[s]*tt[s])/k[s].sum():.0f}"
              f" err app {np.sum(k[s]*(p.tile_r2_per_s[s]-tt[s]))/k[s].sum():+.1f} -bias {np.sum(k[s]*(t.r2_app[s]-tt[s]))/k[s].sum():+.1f}"
              f" corr {np.sum(k[s]*(pc.tile_r2_per_s[s]-tt[s]))/k[s].sum():+.1f}; contrib corr {np.sum(k[s]*(pc.tile_r2_per_s[s]-tt[s]))/W:+.3f}"
              f"; floor vox true {'' if not nf[s].sum() else ''}")
    return dict(k=k, tt=tt, app=p.tile_r2_per_s, r2app=t.r2_app, corr=pc.tile_r2_per_s, ffrac=ffrac, nf=nf, se=p.tile_se_r2_per_s)

if __name__ == "__main__":
    out = {}
    for fn in sys.argv[1:]:
        for o in (True, False):
            out[(fn, o)] = run(fn, o)
    pickle.dump(out, open(__import__("os").environ.get("OUT", "/tmp/floor30_diag2.pkl"), "wb"))
