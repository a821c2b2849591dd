"""Branch lowside: design comparison at the candidate level (what the extension hook returns), on autogrid livers.
Run from the repository root: PYTHONPATH=. NUMBA_NUM_THREADS=1 python benchmarks/results/lowside_proto.py CELL:K ...
One analyze per liver (the shipped ROI, design 'base'); the inputs of r2mri._roi_extend.extend_candidate are captured
and the hook is re-run for design A (pieces, pooled white-voxel test: r2mri._roi_low_intake, as shipped on the branch) and design B (per-voxel
above_floor on a 9x9 window). Per design: liver voxels in the candidate (fraction), non-liver voxels by organ, and the
candidate's selection error (LIC of the mean true R2 over candidate & liver against the truth)."""
import sys, numpy as np, r2mri
import r2mri._roi_extend as RE, r2mri._roi_proposal as RP, r2mri._roi_low_intake as LI
from benchmarks.autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0, cell_name
from r2mri import phantom
from r2mri.phantom import LABELS
from r2mri.calibration import lic_from_r2
from scipy import ndimage

cap = {}
orig = RE.extend_candidate
def wrap(cand, maps, image, fit, r2, s0, status, **kw):
    cap.update(args=(cand.copy(), maps, image, fit, r2, s0, status), kw=kw)
    return orig(cand, maps, image, fit, r2, s0, status, **kw)
RP.extend_candidate = wrap

def window_above_floor(tissue, r2, se, floor, k=2.0, half=4):
    valid = tissue & np.isfinite(r2) & np.isfinite(se)
    size = (2 * half + 1, 2 * half + 1, 1)
    med = ndimage.median_filter(np.where(valid, r2, floor), size=size, mode="nearest")
    sem = ndimage.median_filter(np.where(valid, se, 1e6), size=size, mode="nearest")
    n = (2 * half + 1) ** 2
    return med - floor >= k * 1.2533 * sem / np.sqrt(n)

def run_design(design):
    cand, maps, image, fit, r2, s0, status = cap["args"]
    kw = dict(cap["kw"]); kw["options"] = {}; kw["warnings"] = []
    saved, saved_lp = RE.above_floor, LI.low_side_pieces
    if design != "A":
        LI.low_side_pieces = lambda c, *a, **k2: (c, {"added": 0, "pieces": [], "refused": []})
    if design == "B":
        se = np.abs(np.asarray(fit.r2_std_per_s, float))
        RE.above_floor = lambda logr, sem3, floor, k=2.0: window_above_floor(maps.tissue, r2, se, floor)
    try:
        out, _ = orig(cand.copy(), maps, image, fit, r2, s0, status, **kw)
    finally:
        RE.above_floor, LI.low_side_pieces = saved, saved_lp
    return out, kw

DESIGNS = ("base", "A", "B")
args = sys.argv[1:]
if args and args[0].startswith("--designs="):
    DESIGNS = tuple(args.pop(0).split("=")[1].split(","))
for arg in args:
    ci, k = map(int, arg.split(":"))
    sd, w, lic, snr, c = CELLS[ci]
    ph = phantom.generate(lic=lic, snr=snr, coils=c, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                          lic_log_sd=sd, lic_correlation_voxels=w if sd > 0 else 0.0)
    res = r2mri.analyze(ph.image)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"]); liver = ph.truth.liver_mask; r2t = ph.truth.r2_per_s
    lab = ph.truth.labels; cal = res.calibration
    h = res.statistics.headline_lic_mg_per_g; lo, hi = res.statistics.ci95_lic_mg_per_g
    roi_org = {n: int(np.count_nonzero(res.roi.mask & (lab == v))) for n, v in LABELS.items() if n not in ("liver", "air", "vessel")}
    print(f"{cell_name(CELLS[ci])} k {k}: headline with design A {100*(h/truth-1):+.2f} % cover {int(lo<=truth<=hi)} "
          f"ROI non-liver {roi_org} warnings {[w[:60] for w in res.warnings if 'WARNING' in w]}", flush=True)
    for d in DESIGNS:
        out, kw = run_design(d)
        organs = {n: int(np.count_nonzero(out & (lab == v))) for n, v in LABELS.items() if n not in ("liver", "air")}
        organs = {n: v for n, v in organs.items() if v}
        sel = 100 * (float(lic_from_r2(r2t[out & liver].mean(), cal)) / truth - 1)
        ls = kw["options"].get("low_side_left_out", {}).get("fraction")
        extra = kw["options"].get("low_side_intake", {})
        print(f"  {d}: liver {np.count_nonzero(out & liver) / liver.sum():.3f} sel {sel:+.2f} % other {organs} "
              f"lowside {ls} intake {extra.get('added')} {extra.get('pieces', [])[:3]} refused {extra.get('refused', [])[:3]}", flush=True)
