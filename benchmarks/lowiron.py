"""The R2 route's low-side left-out check (``r2mri._roi_low_side``, issue 16) on ``benchmarks.autogrid`` livers.

Run from the repository root: ``NUMBA_NUM_THREADS=1 python -m benchmarks.lowiron CELL:K [CELL:K ...]``
(CELL an index into ``benchmarks.autogrid.CELLS``, K the running liver index: noise seed 2000 + K, texture
seed 3000 + K, as autogrid builds them). One line per liver: headline error against the truth, the 95 %
interval's cover, the low-side fraction (``roi.options["low_side_left_out"]["fraction"]``), whether the
low-side warning was given and whether it is red on the report page; then the load average.
"""
from __future__ import annotations

import os
import sys
import time


def run(ci: int, k: int) -> dict:
    import r2mri
    from benchmarks.autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0, cell_name
    from r2mri import phantom
    from r2mri.report._page_notes import warning_rank

    sd, w, lic, snr, c = CELLS[ci]
    c0 = time.process_time()
    ph = phantom.generate(lic=lic, snr=snr, coils=c, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                          lic_log_sd=sd, lic_correlation_voxels=w if sd > 0 else 0.0)
    res = r2mri.analyze(ph.image)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    lo, hi = res.statistics.ci95_lic_mg_per_g
    low = [x for x in res.warnings if "at or below the low end of its range" in x]
    return {"cell": cell_name(CELLS[ci]), "k": k,
            "error_pct": 100 * (res.statistics.headline_lic_mg_per_g / truth - 1), "covers": bool(lo <= truth <= hi),
            "low_side_fraction": res.roi.options.get("low_side_left_out", {}).get("fraction"),
            "warned": bool(low), "red": bool(low) and warning_rank(low[0]) == 0,
            "intake_added": res.roi.options.get("low_side_intake", {}).get("added"),
            "cpu_s": time.process_time() - c0}


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        ci, k = (int(v) for v in arg.split(":"))
        r = run(ci, k)
        print(f"{r['cell']} k {r['k']}: error {r['error_pct']:+.2f} % cover {r['covers']:d} low-side "
              f"{r['low_side_fraction']} warned {r['warned']:d} red {r['red']:d} intake {r['intake_added']} "
              f"cpu {r['cpu_s']:.0f} s "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
