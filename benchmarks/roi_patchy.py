"""The automatic liver ROI on patchy livers (issue 16): headline vs truth, coverage, Dice.

Run: ``python -m benchmarks.roi_patchy [--textures 1,2,...] [--specs a,b] [--noise-seed N]``
from the repository root (``NUMBA_NUM_THREADS=1`` on a shared machine; ~15 s per
phantom at full size). Writes ``benchmarks/results/roi_patchy.json`` and prints one
line per phantom.

Each phantom (shipped spec, full size 256 x 256 x 11, ``texture_seed`` overridden so
each texture is a new liver) is fitted once as ``r2mri.analyze`` does; on that fit:

- ``before``: the ROI without the issue-16 rules (no parenchyma floor: no spared
  parenchyma test, no fluid test against the floor, no extension of the candidate) and
  the headline interval without the ROI sampling term, i.e. the behaviour of r2mri
  before this change;
- ``after``: ``r2mri.analyze``'s ROI and interval (rules 3a3/3c, the parenchyma
  extension, ``r2mri._roi_sampling``);
- ``outline``: the true liver + vessel outline as a user mask, after.

Truth = ``truth.json["lic_of_mean_r2_mg_per_g"]`` (LIC of the mean R2 over the whole
liver without vessels); ``roi_truth`` = the same over the ROI's liver voxels, so
``headline - roi_truth`` is the estimator's error and ``roi_truth - truth`` the ROI's.
CPU seconds of ``liver_roi`` (process time) before and after, in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SPECS = ["heterogeneous-focal-1.5t", "heterogeneous-coarse-1.5t", "heterogeneous-fine-1.5t"]


def _one(spec: str, texture_seed: int, noise_seed: int) -> dict:
    import r2mri
    import r2mri.roi as roi_mod
    from r2mri import phantom
    from r2mri._roi_sampling import widen_for_roi_sampling
    from r2mri.calibration import lic_from_r2
    from r2mri.stats import liver_statistics

    ph = phantom.generate(spec, seed=noise_seed, texture_seed=texture_seed)
    res = r2mri.analyze(ph.image)
    img, fit, cal = res.image, res.fit, res.calibration
    liver, lab, r2t = ph.truth.liver_mask, ph.truth.labels, ph.truth.r2_per_s
    vessel = lab == phantom.LABELS["vessel"]
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])

    def row(roi, stats):
        m = roi.mask
        lo, hi = stats.ci95_lic_mg_per_g
        h = stats.headline_lic_mg_per_g
        return {"headline_error_pct": 100 * (h / truth - 1),
                "roi_truth_error_pct": 100 * (float(lic_from_r2(r2t[m & liver].mean(), cal)) / truth - 1),
                "ci95_half_width_pct": 50 * (hi - lo) / h, "covers": bool(lo <= truth <= hi),
                "dice_roi_liver": 2 * float(np.count_nonzero(m & liver)) / (m.sum() + liver.sum()),
                "dice_candidate_outline": 2 * float(np.count_nonzero(roi.candidate & (liver | vessel)))
                / (roi.candidate.sum() + (liver | vessel).sum()),
                "vessel_voxels_in_roi": int(np.count_nonzero(m & vessel)),
                "non_liver_voxels_in_roi": int(np.count_nonzero(m & ~liver))}

    out = {"spec": spec, "texture_seed": texture_seed, "noise_seed": noise_seed, "truth": truth}
    # before: no floor (the code path of r2mri before issue 16), no sampling term
    real = roi_mod.parenchyma_r2_floor_per_s
    roi_mod.parenchyma_r2_floor_per_s = lambda calibration, image: (None, "benchmark: off")
    try:
        t0 = time.process_time()
        roi_b = roi_mod.liver_roi(img, fit, calibration=cal)
        cpu_before = time.process_time() - t0
    finally:
        roi_mod.parenchyma_r2_floor_per_s = real
    out["before"] = row(roi_b, liver_statistics(fit, roi_b, cal, image=img))
    t0 = time.process_time()
    roi_a = roi_mod.liver_roi(img, fit, calibration=cal)
    cpu_after = time.process_time() - t0
    out["after"] = row(res.roi, res.statistics)
    assert np.array_equal(roi_a.mask, res.roi.mask)
    roi_o = roi_mod.liver_roi(img, fit, mask=liver | vessel, calibration=cal)
    st_o = liver_statistics(fit, roi_o, cal, image=img)
    widen_for_roi_sampling(st_o, roi_o, fit, cal)
    out["outline"] = row(roi_o, st_o)
    out["roi_cpu_s"] = {"before": cpu_before, "after": cpu_after}
    out["roi_sampling"] = res.statistics.blocks["headline"].get("roi_sampling")
    out["parenchyma_extension"] = res.roi.options.get("parenchyma_extension")
    out["load_1min"] = os.getloadavg()[0]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default=",".join(SPECS))
    ap.add_argument("--textures", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--noise-seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "roi_patchy.json"))
    a = ap.parse_args(argv)
    rows = []
    for spec in a.specs.split(","):
        for t in (int(v) for v in a.textures.split(",")):
            r = _one(spec, t, a.noise_seed)
            rows.append(r)
            b, f, o = r["before"], r["after"], r["outline"]
            print(f"{spec:28s} tex {t}: before {b['headline_error_pct']:+.2f} % (ROI {b['roi_truth_error_pct']:+.2f}, "
                  f"+-{b['ci95_half_width_pct']:.2f}, cover {b['covers']:d}) -> after {f['headline_error_pct']:+.2f} % "
                  f"(ROI {f['roi_truth_error_pct']:+.2f}, +-{f['ci95_half_width_pct']:.2f}, cover {f['covers']:d}); "
                  f"outline {o['headline_error_pct']:+.2f} % cover {o['covers']:d}; Dice {b['dice_roi_liver']:.3f}->"
                  f"{f['dice_roi_liver']:.3f}; vessels {b['vessel_voxels_in_roi']}->{f['vessel_voxels_in_roi']}; "
                  f"ROI cpu {r['roi_cpu_s']['before']:.2f}->{r['roi_cpu_s']['after']:.2f} s (load {r['load_1min']:.1f})",
                  flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"rows": rows}, indent=1))
    for spec in a.specs.split(","):
        sel = [r for r in rows if r["spec"] == spec]
        for k in ("before", "after"):
            e = np.array([r[k]["headline_error_pct"] for r in sel])
            print(f"{spec} {k}: mean error {e.mean():+.2f} %, max |error| {np.abs(e).max():.2f} %, "
                  f"coverage {sum(r[k]['covers'] for r in sel)}/{len(sel)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
