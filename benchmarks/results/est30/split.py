import pickle, numpy as np, sys, os
import r2mri._tile_bias_sim as tbs
tbs._VB_MAX_REL_SE = float(os.environ["VB"]) if os.environ.get("VB") else None
tbs._STATES = os.environ.get("STATES", "shrunk")
import r2mri.roi as roi_mod
from r2mri.stats import pooled_mean_r2
from r2mri._spread_estimate import _tile_set
from r2mri import phantom
from r2mri.noise import ncchi_mean
from r2mri.stats import _tile_fit
d = pickle.load(open(sys.argv[1], "rb"))
img, fit, cal, liver, vessel, r2t = (d[k] for k in ("image", "fit", "calibration", "liver", "vessel", "r2_true"))
roi = roi_mod.liver_roi(img, fit, mask=liver | vessel, calibration=cal)
pool = roi.mask | roi.not_converged
sig, coils = fit.options.get("noise_sigma"), fit.options.get("coils")
p = pooled_mean_r2(img, pool, noise_sigma=sig, coils=coils)
cap = {}
orig = tbs.simulated_tile_bias
def wrap(r2, s0, te, k, *a, **kw):
    out = orig(r2, s0, te, k, *a, **kw)
    cap["last"] = (r2.copy(), out[0].copy(), kw.get("fits"))
    return out
tbs.simulated_tile_bias = wrap
import r2mri._spread_estimate as sem
o2 = sem.simulated_fit_bias
def wrap2(r2, s0, se_rel, k, groups, skipped, *a, **kw):
    cap["skipped"] = np.asarray(skipped, bool).copy()
    return o2(r2, s0, se_rel, k, groups, skipped, *a, **kw)
sem.simulated_fit_bias = wrap2
t = _tile_set(img, p, sig, coils, 0)
rr, br, fits = cap["last"]
vt = p.voxel_tile; idx = p.voxel_index
kk = np.bincount(vt[vt >= 0], minlength=p.n_tiles).astype(float)
tt = np.bincount(vt[vt >= 0], weights=r2t.ravel()[idx[vt >= 0]], minlength=p.n_tiles) / np.maximum(kk, 1)
# ideal: tile fit of the mean noise-free E[M]
cell = d["cell"]
ph = phantom.generate(lic=cell[2], snr=float("inf"), coils=cell[4], seed=0, texture_seed=3000 + d["k"],
                      lic_log_sd=cell[0], lic_correlation_voxels=cell[1] if cell[0] > 0 else 0.0)
nf = np.asarray(ph.noise_free, np.float64).reshape(-1, img.echo_times_s.size)
em = np.asarray(ncchi_mean(nf[idx[vt >= 0]], sig, coils))
sums = np.zeros((p.n_tiles, em.shape[1])); np.add.at(sums, vt[vt >= 0], em)
ideal = _tile_fit(sums / kk[:, None], img.echo_times_s, kk, sig, coils)[0]
se_rel = p.tile_se_r2_per_s / np.maximum(p.tile_r2_per_s, 1e-3)
# skipped tiles: where the simulated bias non-zero or state
b_tot = p.tile_r2_per_s - t.r2_app
W = kk.sum()
print("n tiles", p.n_tiles, "sim tiles", rr.size)
for lo, hi in [(0, 250), (250, 300), (300, 400), (400, 2000)]:
    s = (tt >= lo) & (tt < hi)
    cs = lambda v: float(np.sum(kk[s] * v[s]) / W)
    print(f"{lo}-{hi}: share {kk[s].sum()/W:.3f} true_fb {cs(p.tile_r2_per_s - ideal):+.2f} est_fb {cs(b_tot):+.2f} left {cs(p.tile_r2_per_s - ideal - b_tot):+.2f}  ideal-true {cs(ideal - tt):+.2f}")
print("sim tiles with zero bias (not enough fits):", int(np.sum(br == 0)), "of", br.size)
# bias vs state
for lo, hi in [(0, 200), (200, 250), (250, 300), (300, 400), (400, 600), (600, 5000)]:
    s = (rr >= lo) & (rr < hi)
    if s.any(): print(f"state {lo}-{hi}: n {s.sum()} mean bias {br[s].mean():+.1f} zero {np.sum(br[s]==0)}")

sk = cap["skipped"]
for name, s in [("box", ~sk), ("sim", sk), ("sim full", sk & (kk >= 64)), ("sim partial", sk & (kk < 64)), ("box partial", ~sk & (kk < 64))]:
    cs = lambda v: float(np.sum(kk[s] * v[s]) / W)
    print(f"{name}: n {s.sum()} share {kk[s].sum()/W:.3f} true R2 {np.average(tt[s], weights=kk[s]):.0f} true_fb {cs(p.tile_r2_per_s - ideal):+.2f} est_fb {cs(b_tot):+.2f} left {cs(p.tile_r2_per_s - ideal - b_tot):+.2f}")
ideal_r2, ideal_s0 = _tile_fit(sums / kk[:, None], img.echo_times_s, kk, sig, coils)[:2]
s = sk & np.isfinite(ideal_r2) & (ideal_r2 > 0)
kn = kk
b_ideal, _ = orig(ideal_r2[s], ideal_s0[s], img.echo_times_s, kk[s], sig, coils, seed=1)
print("sim at ideal states: contribution", float(np.sum(kk[s] * b_ideal) / W), "true_fb", float(np.sum(kk[s] * (p.tile_r2_per_s - ideal)[s]) / W))
vox = idx[vt >= 0]; own = vt[vt >= 0]
A = nf[vox]
rng = np.random.default_rng(7)
acc = []
for r in range(6):
    re = A + sig * rng.standard_normal(A.shape)
    M = np.sqrt(re**2 + sig**2 * rng.chisquare(2 * coils - 1, A.shape))
    ms = np.zeros((p.n_tiles, A.shape[1])); np.add.at(ms, own, M)
    f = _tile_fit(ms / kk[:, None], img.echo_times_s, kk, sig, coils)
    okr = f[3] & s
    acc.append(float(np.sum((kk * (f[0] - ideal_r2))[okr]) / W * s.sum() / max(okr.sum(), 1)))
print("realistic replicate fit bias of sim tiles (contribution):", np.round(acc, 2), "mean", np.mean(acc), "+-", np.std(acc) / np.sqrt(len(acc)))
print("true sigma vs fit sigma:", d.get("true_sigma"), sig)
