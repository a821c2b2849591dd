"""Branch erosion: the automatic ROI's headline when the image carries in-plane partial volume.

The phantom has none (tissue is assigned at voxel centres). Here every echo's magnitude is blurred in-plane
with the separable kernel [1/4, 1/2, 1/4] (each voxel mixes 1/2 of itself with its neighbours: an edge
voxel holds ~1/4-1/2 of the tissue across the edge), the same image for both arms, so the paired difference
is what the ROI's edge rule does with partial volume at the liver's edges. Truth: the unblurred phantom's
LIC of the mean liver R2.

``python benchmarks/results/erosion_pv.py OUT.json [LICS] [SEEDS]`` (roi_organs' phantom, SNR 20, 1 channel).
Main's rule: run it with commit 5c3089f's library and ``EROSION_DESIGN=full`` (benchmarks/results/erosion_with_design.py).
"""
import json
import os
import sys

import numpy as np
from scipy import ndimage

import r2mri
from r2mri.phantom import LABELS, generate


def main():
    out = sys.argv[1]
    lics = [float(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "0.5,1").split(",")]
    seeds = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "1,2").split(",")]
    import r2mri._roi_edge_grade as grade
    rows = []
    k = np.array([0.25, 0.5, 0.25])
    for lic in lics:
        for seed in seeds:
            ph = generate("ferriscan-1.5t-lic7", seed=seed, snr=20, coils=1, lic_mg_per_g=lic)
            img = ph.image
            img.data = ndimage.convolve1d(ndimage.convolve1d(img.data, k, axis=0, mode="nearest"), k, axis=1,
                                          mode="nearest").astype(img.data.dtype)
            res = r2mri.analyze(img, threads=1)
            truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
            lab, m = ph.truth.labels, res.roi.mask
            lo, hi = res.statistics.ci95_lic_mg_per_g
            h = res.statistics.headline_lic_mg_per_g
            row = {"lic": lic, "seed": seed, "design": getattr(grade, "DESIGN", "shipped"), "truth": truth,
                   "headline": h, "error_pct": 100 * (h / truth - 1), "ci95": [lo, hi], "covers": bool(lo <= truth <= hi),
                   "roi_voxels": int(m.sum()),
                   "roi_labels": {n: int(np.count_nonzero(m & (lab == v))) for n, v in LABELS.items()
                                  if np.count_nonzero(m & (lab == v))},
                   "edge_ring": res.roi.options.get("edge_ring")}
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(out, "w") as f:
                json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
