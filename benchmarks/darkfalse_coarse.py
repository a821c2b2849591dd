"""Dark-liver widening before/after the own-decay test on saved coarse 30 mg/g fits (branch darkfalse).

Run: ``python -m benchmarks.coarse30 --textures 1,2,3 --conditions 20x1,20x8 --save-fits DIR`` then
``NUMBA_NUM_THREADS=1 python -m benchmarks.darkfalse_coarse DIR/*.pkl`` from the repository root.
Per fit: the automatic ROI, ``liver_statistics`` and the ROI-sampling term, then the dark-liver
widening without the set test ("old", main 98a40fa) and with it ("new"); one line each.
"""

import copy
import pickle
import sys

import numpy as np


def main(paths) -> int:
    import r2mri._dark_liver as DL
    import r2mri.roi as roi_mod
    from r2mri._roi_sampling import widen_for_roi_sampling
    from r2mri.stats import liver_statistics

    new_own = DL.own_decay_r2
    for f in paths:
        d = pickle.load(open(f, "rb"))
        img, fit, cal, liver, r2t = (d[k] for k in ("image", "fit", "calibration", "liver", "r2_true"))
        roi = roi_mod.liver_roi(img, fit, mask=None, calibration=cal)
        st0 = liver_statistics(fit, roi, cal, image=img); widen_for_roi_sampling(st0, roi, fit, cal)
        h = st0.blocks["r2_per_s"]["headline_mean"]
        out = [f.split("/")[-1], f"h {h:.1f}"]
        for name in ("old", "new"):
            if name == "old": DL.own_decay_r2 = (lambda a, b, c: (np.inf,) * 3)
            st = copy.deepcopy(st0)
            dk = DL.dark_liver_voxels(roi, fit, img)
            blk = DL.widen_for_dark_liver(st, roi, fit, img, cal)
            DL.own_decay_r2 = new_own
            od = DL.own_decay_r2(dk, img, fit)
            b = DL.dark_liver_bounds(dk, roi.mask, fit, img, cal)
            tr = r2t[dk & liver].mean() if (dk & liver).any() else float("nan")
            out.append(f"{name}: n {dk.sum()} in liver {(dk&liver).sum()} trueR2 {tr:.0f} f {blk and blk['fraction_of_liver']} "
                       f"bounds {b and round(b['lower_r2_per_s'])}-{b and round(b['upper_r2_per_s'])} widen {blk and blk['widening_fraction']} "
                       f"warn {len([w for w in st.warnings if 'too dark' in w])} LIC ci {np.round(st.ci95_lic_mg_per_g, 2)} own {od and np.round(od, 0)}")
        print(" | ".join(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
