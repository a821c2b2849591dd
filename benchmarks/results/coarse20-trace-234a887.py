"""coarse20: where the automatic candidate leaves liver out, on one saved fit (texture 3, noise seed 0, SNR 20, 8 ch
in the README). Part 1 wraps r2mri.roi's extension / piece-drop / rim-join steps (this process only) and
prints the liver missed after each; part 2 describes the voxels missed by the final candidate.
Run: NUMBA_NUM_THREADS=1 python <this> /tmp/coarse20fits/coarse30_snr20_c8_t3_n0.pkl (fits from
python -m benchmarks.coarse30 --save-fits /tmp/coarse20fits)."""
import pickle, sys, numpy as np
import r2mri.roi as R
fn = sys.argv[1]
d = pickle.load(open(fn, 'rb'))
img, fit, cal, liver, vessel, r2t = (d[k] for k in ("image", "fit", "calibration", "liver", "vessel", "r2_true"))
def rep(tag, c):
    m = liver & ~c
    print(f"{tag}: candidate {c.sum()}, liver missed {m.sum()} (true R2 {r2t[m].mean():.0f}), non-liver in {(c & ~liver & ~vessel).sum()}, vessel in {(c&vessel).sum()}")
orig = {}
for name in ("extend_to_parenchyma", "drop_below_floor_pieces", "join_decayed_rim"):
    f = getattr(R, name); orig[name] = f
    def wrap(*a, _f=f, _n=name, **k):
        rep(f"before {_n}", a[0])
        out = _f(*a, **k)
        rep(f"after  {_n}", out[0])
        return out
    setattr(R, name, wrap)
roi = R.liver_roi(img, fit, calibration=cal)
rep("final candidate", roi.candidate)
print(roi.options.get("below_floor_pieces"))

# part 2
from scipy import ndimage
from r2mri._dark_liver import dark_liver_voxels
from r2mri._roi_iron import decayed_to_floor, floor_at_last_echo
from r2mri.roi import FitStatus
roi = R.liver_roi(img, fit, calibration=cal)
cand = roi.candidate
miss = liver & ~cand
print("liver", liver.sum(), "missed", miss.sum(), "mean true R2 missed", r2t[miss].mean(), "liver", r2t[liver].mean())
st = np.asarray(fit.status)
for s in np.unique(st[miss]):
    m = miss & (st == s)
    print(" status", FitStatus(s).name if s in [x.value for x in FitStatus] else s, m.sum(), "true R2", r2t[m].mean(), "fit R2 med", np.nanmedian(np.asarray(fit.r2_per_s)[m]))
dk = dark_liver_voxels(roi, fit, img)
print("dark_liver_voxels (counted by widening) & missed", (dk & miss).sum(), "dark total", dk.sum(), "dark&liver", (dk&liver).sum())
dec = decayed_to_floor(img, fit, (slice(None),)*3, roi.options.get("grow_k", 3.0))
if dec is not None: print("decayed_to_floor & missed", (dec & miss).sum())
fl = floor_at_last_echo(img, fit, roi.options.get("grow_k", 3.0))
if fl is not None: print("floor_at_last_echo & missed", (fl & miss).sum())
# distance of missed voxels from candidate (in-plane voxels)
dist = np.stack([ndimage.distance_transform_edt(~cand[:, :, k]) for k in range(cand.shape[2])], -1)
print("distance to candidate (vox) percentiles of missed", np.percentile(dist[miss], [10, 50, 90, 99]))
# distance to liver outline edge
dl = np.stack([ndimage.distance_transform_edt(liver[:, :, k]) for k in range(cand.shape[2])], -1)
print("depth inside liver of missed", np.percentile(dl[miss], [10, 50, 90, 99]))
# first echo signal relative to floor
sig = float(fit.options["noise_sigma"]); n = int(fit.options["coils"])
m1 = img.data[..., 0]; mL = img.data[..., -1]
print("first echo / sigma of missed, pcts", np.percentile(m1[miss] / sig, [10, 50, 90]), "of ROI", np.percentile(m1[roi.mask] / sig, [10, 50, 90]))
print("last echo / sigma of missed", np.percentile(mL[miss] / sig, [10, 50, 90]))
lab, nl = ndimage.label(miss)
sizes = ndimage.sum(miss, lab, range(1, nl + 1))
print("missed pieces", nl, "largest", np.sort(sizes)[-5:])
ext = roi.options.get("parenchyma_extension") or {}
print({k: v for k, v in ext.items() if not isinstance(v, (list, dict))})
print("dark_rim", roi.options.get("dark_rim"), "joined", roi.options.get("dark_rim_joined"))
print("true R2 pcts missed", np.percentile(r2t[miss], [10, 50, 90]), "liver", np.percentile(r2t[liver], [10, 50, 90]))
filled = np.stack([ndimage.binary_fill_holes(cand[:, :, k]) for k in range(cand.shape[2])], -1)
h = filled & ~cand
print("in-plane holes of the final candidate", h.sum(), "of them liver", (h & liver).sum(), "vessel", (h & vessel).sum(), "other", (h & ~liver & ~vessel).sum(), "true R2 of liver holes", r2t[h & liver].mean() if (h&liver).any() else None)
fl3 = ndimage.binary_closing(cand, structure=np.ones((3,3,1),bool), iterations=2)
print("closing(2) adds liver", (fl3 & ~cand & liver).sum(), "non-liver", (fl3 & ~cand & ~liver & ~vessel).sum())
