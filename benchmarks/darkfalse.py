"""False dark-liver warnings on uniform livers, before and after the decay test (issue 16,
branch darkfalse).

Run: ``NUMBA_NUM_THREADS=1 nice -n 5 python -m benchmarks.darkfalse --cells 16,17 --livers N
--first-index K [--extra 7135] [--out FILE]`` from the repository root. ``--cells`` index
``benchmarks.autogrid.CELLS`` (16: SD 0, 1 mg/g, SNR 20, 1 channel; 17: the same at 8),
seeds as autogrid's (noise ``2000 + k``, texture ``3000 + k``). Each liver goes through
:func:`r2mri.analyze` once; at its dark-liver step the widening runs twice on the same
fit, ROI and statistics: "before" (a copy, without the set's own-decay test: main at
98a40fa) and "after" (this tree, the result analyze returns).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from .autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0, cell_name

RESULTS = Path(__file__).resolve().parent / "results"


def _block(blk, warnings, dark, liver, r2t):
    red = [w for w in warnings if "too dark to fit" in w]
    out = {"widened": blk is not None, "warned": bool(red), "voxels": int(np.count_nonzero(dark)),
           "voxels_in_liver": int(np.count_nonzero(dark & liver)),
           "true_r2_per_s": float(r2t[dark].mean()) if dark.any() else None}
    if blk is not None:
        out.update({k: blk.get(k) for k in ("fraction_of_liver", "lower_r2_per_s", "upper_r2_per_s",
                                             "widening_fraction", "own_decay_r2_per_s")})
    return out


def one(cell, k: int) -> dict:
    """One liver: analyze with the dark-liver step run before/after on the same inputs."""
    import r2mri
    import r2mri._dark_liver as dl
    import r2mri.analysis as an
    from r2mri import phantom

    sd, w, lic, snr, coils = cell
    ph = phantom.generate(lic=lic, snr=snr, coils=coils, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                          lic_log_sd=sd, lic_correlation_voxels=w if sd > 0 else 0.0)
    liver, r2t = ph.truth.liver_mask, ph.truth.r2_per_s
    seen = {}
    new_widen, new_own = dl.widen_for_dark_liver, dl.own_decay_r2

    def both(stats, roi, fit, img, cal):
        st = copy.deepcopy(stats)
        dl.own_decay_r2 = lambda d, i, f: (np.inf, np.inf, np.inf)  # main: no set test
        try:
            blk = new_widen(st, roi, fit, img, cal)
            seen["before"] = _block(blk, st.warnings, dl.dark_liver_voxels(roi, fit, img), liver, r2t)
        finally:
            dl.own_decay_r2 = new_own
        blk = new_widen(stats, roi, fit, img, cal)
        seen["after"] = _block(blk, stats.warnings, dl.dark_liver_voxels(roi, fit, img), liver, r2t)
        own = dl.own_decay_r2(dl.dark_liver_voxels(roi, fit, img), img, fit)
        seen["after"]["own_decay_r2_per_s"] = own
        seen["headline_r2_per_s"] = stats.blocks["r2_per_s"]["headline_mean"]
        return blk

    t0 = time.time()
    an.widen_for_dark_liver = both
    try:
        r2mri.analyze(ph.image)
    finally:
        an.widen_for_dark_liver = new_widen
    return {"cell": cell_name(cell), "k": k, "coils": coils, **seen, "wall_s": time.time() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="16,17")
    ap.add_argument("--livers", type=int, default=10)
    ap.add_argument("--first-index", type=int, default=7600)
    ap.add_argument("--extra", default="", help="extra running indices for the first cell, e.g. 7135")
    ap.add_argument("--out", default=str(RESULTS / "darkfalse-uniform.json"))
    a = ap.parse_args(argv)
    todo = [CELLS[int(i)] for i in a.cells.split(",")]
    plan = [(todo[0], int(k)) for k in a.extra.split(",") if k]
    plan += [(cell, a.first_index + j * len(todo) + i) for j in range(a.livers) for i, cell in enumerate(todo)]
    doc = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": []}
    out = Path(a.out)
    for cell, k in plan:
        r = one(cell, k)
        doc["rows"].append(r)
        b, f = r["before"], r["after"]
        print(f"{r['cell']} k {k}: before {b['voxels']} vox (liver {b['voxels_in_liver']}) widened {b['widened']:d} "
              f"warned {b['warned']:d}; after {f['voxels']} vox widened {f['widened']:d} warned {f['warned']:d} "
              f"own {f['own_decay_r2_per_s']} h {r['headline_r2_per_s']:.2f}; {r['wall_s']:.0f} s", flush=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=float))
        tmp.replace(out)
    for name in dict.fromkeys(r["cell"] for r in doc["rows"]):
        rs = [r for r in doc["rows"] if r["cell"] == name]
        print(f"{name} n={len(rs)}: " + "; ".join(
            f"{s} block {sum(r[s]['widened'] for r in rs)}/{len(rs)} warned {sum(r[s]['warned'] for r in rs)}/{len(rs)}"
            for s in ("before", "after")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
