"""Split the tile estimator's error into its two corrections, against the phantom's noise-free signal
(branch floor30). Per tile of the headline: ``ideal`` = the tile fit of the mean noise-free E[M] of
its voxels (ncchi_mean of the noise-free RSS amplitude), so ``ideal - truth`` is the true mixture
(+ floor non-linearity) bias and ``apparent - ideal`` the noise's fit bias. Compared with the
estimator's own: fit bias ``apparent - r2_app`` and mixture correction ``corrected - r2_app``.
Outline mask (true liver + vessels); FLOORPOOL=1: the floor fits' magnitudes pooled too."""
import os, pickle, sys
import numpy as np
import r2mri.roi as roi_mod
from r2mri import phantom
from r2mri.noise import ncchi_mean
from r2mri.stats import pooled_mean_r2, _tile_fit
from r2mri._headline import mixture_corrected_mean_r2
from r2mri._spread_estimate import _tile_set
from r2mri._roi_rules import edge_erosion

def run(fn, tex, auto=False):
    d = pickle.load(open(fn, "rb"))
    img, fit, cal, liver, vessel, r2t = (d[k] for k in ("image", "fit", "calibration", "liver", "vessel", "r2_true"))
    roi = roi_mod.liver_roi(img, fit, mask=None if auto else (liver | vessel), calibration=cal)
    s0 = np.asarray(fit.s0)
    pool = roi.mask | roi.not_converged
    if os.environ.get("FLOORPOOL"):
        cand = roi.candidate if roi.candidate is not None else roi.mask
        er = edge_erosion(cand, *img.voxel_size_mm[:2], 5.0)
        pool = pool | (er & (s0 <= 0) & (np.asarray(fit.status) == 3) & ~roi.non_parenchyma)
    sig, coils = fit.options.get("noise_sigma"), fit.options.get("coils")
    p = pooled_mean_r2(img, pool, noise_sigma=sig, coils=coils)
    t = _tile_set(img, p, sig, coils, 0)
    pc, corr = mixture_corrected_mean_r2(img, pool, noise_sigma=sig, coils=coils)
    ph = phantom.generate("heterogeneous-coarse-1.5t", seed=0, texture_seed=tex, lic_mg_per_g=30.0, snr=float("inf"),
                          coils=coils)
    assert np.allclose(ph.truth.r2_per_s, r2t, equal_nan=True)
    nf = np.asarray(ph.noise_free, np.float64).reshape(-1, img.echo_times_s.size)
    idx, vt, nt = p.voxel_index, p.voxel_tile, p.n_tiles
    idx, vt = idx[vt >= 0], vt[vt >= 0]
    k = np.bincount(vt, minlength=nt).astype(float)
    tt = np.bincount(vt, weights=r2t.ravel()[idx], minlength=nt) / k
    em = np.asarray(ncchi_mean(nf[idx], sig, coils))
    sums = np.zeros((nt, em.shape[1])); np.add.at(sums, vt, em)
    ideal = _tile_fit(sums / k[:, None], img.echo_times_s, k, sig, coils)[0]
    W = k.sum()
    c = lambda v: float(np.sum(k * v) / W)
    r = {"liver": fn.split("/")[-1], "truth_pool": c(tt), "err_corr": c(pc.tile_r2_per_s - tt),
         "true_fit_bias": c(p.tile_r2_per_s - ideal), "est_fit_bias": c(p.tile_r2_per_s - t.r2_app),
         "true_mix": c(tt - ideal), "est_mix": c(pc.tile_r2_per_s - t.r2_app),
         "rho": {int(a): float(b) for a, b in corr.rho.items()}}
    # by true R2 of the tile
    for lo, hi in [(0, 250), (250, 300), (300, 500)]:
        s = (tt >= lo) & (tt < hi)
        cs = lambda v: float(np.sum(k[s] * v[s]) / W)
        r[f"{lo}-{hi}"] = {"share": float(k[s].sum() / W), "err": cs(pc.tile_r2_per_s - tt),
                           "true_fb": cs(p.tile_r2_per_s - ideal), "est_fb": cs(p.tile_r2_per_s - t.r2_app),
                           "true_mix": cs(tt - ideal), "est_mix": cs(pc.tile_r2_per_s - t.r2_app)}
    print(r, flush=True)
    return r

if __name__ == "__main__":
    import r2mri._tile_bias_sim as tbs
    for kv in filter(None, os.environ.get("PATCH", "").split(";")):  # experiment switches: module:name=value
        mod, rest = kv.split(":"); name, val = rest.split("=")
        setattr(__import__(mod, fromlist=["x"]), name, eval(val))
    rows = [run(f"/work/fits/c30x8/coarse30_snr20_c8_t{i}_n{29+i}.pkl", i, bool(os.environ.get("AUTO"))) for i in map(int, sys.argv[1].split(","))]
    pickle.dump(rows, open(os.environ["OUT"], "wb"))
