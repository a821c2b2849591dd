"""Trace of the low-iron patches the automatic ROI leaves out at 1 mg/g, SNR 20 (issue 16, branch lowiron): which
voxel tests of the loose extension the left-out liver passes, the pieces the loose extension makes, and the S0-core /
depth variants of r2mri/_roi_low_side.py. Run from the repository root:
PYTHONPATH=. NUMBA_NUM_THREADS=1 python benchmarks/results/lowiron_trace.py 8:600 16:602  (CELL:K of benchmarks.autogrid).
"""
import sys, numpy as np, r2mri
import r2mri._roi_extend as RE, r2mri._roi_low_side as LS
from benchmarks.autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0
from r2mri import phantom
cap = {}
orig = LS.check_low_side
def wrap(cand, maps, floor_ext, grow_k, pdff):
    cap.update(cand=cand.copy(), maps=maps, floor=floor_ext); return orig(cand, maps, floor_ext, grow_k, pdff)
RE.check_low_side = wrap
for arg in sys.argv[1:]:
    ci, k = map(int, arg.split(":"))
    sd, w, lic, snr, c = CELLS[ci]
    ph = phantom.generate(lic=lic, snr=snr, coils=c, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                          lic_log_sd=sd, lic_correlation_voxels=w if sd > 0 else 0.0)
    res = r2mri.analyze(ph.image)
    liver = ph.truth.liver_mask; m = cap["maps"]; cand = cap["cand"]
    out = liver & ~cand; n = out.sum()
    reg = cand & m.tissue
    from r2mri._roi_grow import _BAND_CAP_S0, _BAND_FLOOR_S0, _EDGE_FLOOR, _MAD_TO_SD
    vs = m.logs[reg]; med_s = np.median(vs); sd_s = _MAD_TO_SD*np.median(abs(vs-med_s)); lim_s = min(max(3*sd_s,_BAND_FLOOR_S0),_BAND_CAP_S0)
    vst = m.steps[reg]; lim_st = max(_EDGE_FLOOR, np.median(vst)+6*_MAD_TO_SD*np.median(abs(vst-np.median(vst))))
    f = lambda x: round(100*np.count_nonzero(out & x)/n,1)
    print(arg, "out", n, "tissue", f(m.tissue), "floor", f(m.logr>=np.log(cap["floor"])), "s0band", f(abs(m.logs-med_s)<=lim_s), "step", f(m.steps<=lim_st),
          "all", f(m.tissue & (m.logr>=np.log(cap["floor"])) & (abs(m.logs-med_s)<=lim_s) & (m.steps<=lim_st)), "lim_s", round(lim_s,3), "lim_st", round(lim_st,3))
    ls = res.roi.options["low_side_left_out"]; print("  low side", ls["fraction"], len(ls["pieces"]))
    from scipy import ndimage
    from r2mri._roi_parenchyma import _extend_once
    from r2mri._roi_patches import same_tissue
    loose = _extend_once(cand, m.tissue, m.logr, m.logs, m.steps, cap["floor"], 3.0, (_BAND_FLOOR_S0, _BAND_CAP_S0), np.inf, _EDGE_FLOOR, _MAD_TO_SD, None, np.zeros(cand.shape, bool))[0]
    print("  out in loose %", f(loose), " loose-outside", np.count_nonzero(loose & ~reg), "of which liver", np.count_nonzero(loose & ~reg & liver))
    pcs, npc = ndimage.label(loose & ~reg, structure=ndimage.generate_binary_structure(3, 1))
    sizes = np.bincount(pcs.ravel())
    low = np.quantile(m.logr[reg], 0.1)
    for p in np.argsort(sizes[1:])[::-1][:8] + 1:
        pc = pcs == p
        print("   piece", sizes[p], "liver %", round(100*np.count_nonzero(pc & liver)/sizes[p]), "medR2", round(float(np.exp(np.median(m.logr[pc]))),1), "low", round(float(np.exp(low)),1), same_tissue(pc, reg, m.logs, m.logr, None))
    face = ndimage.generate_binary_structure(3, 1)
    for c in (1.0, 1.5):
      for D in (4, 100):
        sel = loose & (np.abs(m.logs - med_s) <= c * sd_s)
        band = ndimage.binary_dilation(reg, face, iterations=D, mask=sel | reg)
        pcs, npc = ndimage.label(band & ~reg, structure=face); sizes = np.bincount(pcs.ravel())
        tot = 0; totliv = 0; big = []
        for p in np.flatnonzero(sizes[1:] >= 10) + 1:
            pc = pcs == p
            if np.median(m.logr[pc]) > low: continue
            s, mm = same_tissue(pc, reg, m.logs, m.logr, None)
            if s: tot += sizes[p]; totliv += np.count_nonzero(pc & liver)
            if sizes[p] > 300: big.append((sizes[p], round(100*np.count_nonzero(pc & liver)/sizes[p]), s, mm['s0_spread_ratio'], mm['s0_level']))
        print("  c", c, "D", D, "sd_s", round(sd_s,3), "low-side frac", round(tot/reg.sum(),4), "liver share", round(totliv/max(tot,1),2), "band-out", np.count_nonzero(band & ~reg), "big", big[:5])
