"""Why the left-out warning is silent on some livers that read > 2 % high (issue 16, branch leftwarn).

Run: ``NUMBA_NUM_THREADS=1 nice -n 5 python -m benchmarks.leftwarn capture CELL:K[,CELL:K..] [--dir D]``
(autogrid's liver ``k`` of ``CELL`` -- an index into ``benchmarks.autogrid.CELLS``, ``mN`` into
``MID_CELLS``, ``sd/w/lic/snr/c`` an explicit cell -- through ``r2mri.analyze``; saves the voxel
fit, the true R2, the ROI's masks and the headline to ``D/CELL_K.npz``, 10-35 s per liver), then
``python -m benchmarks.leftwarn table [--dir D] [--out NAME]`` (offline, seconds: the library's
left-out difference ``d`` and LIC shift on the saved fits, ``d`` from the true R2 over the same
masks, where the headline's R2 error comes from, and how many livers warn at the old and new
limits; ``benchmarks/_leftwarn_table.py``, rows to ``results/NAME.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DIR = Path("/tmp/leftwarn-fits")


def _cell(spec: str):
    from benchmarks.autogrid import CELLS, MID_CELLS
    if "/" in spec:  # an explicit cell sd/w/lic/snr/c
        sd, w, lic, snr, c = spec.split("/")
        return float(sd), float(w), float(lic), float(snr), int(c)
    return MID_CELLS[int(spec[1:])] if spec.startswith("m") else CELLS[int(spec)]


def capture(spec: str, k: int, out_dir: Path) -> Path:
    """Run autogrid's liver ``(cell, k)`` through ``analyze`` and save what the offline table needs."""
    from benchmarks.autogrid import analyzed_liver, cell_name
    from r2mri import phantom

    cell = _cell(spec)
    t0 = time.time()
    ph, res = analyzed_liver(cell, k)
    roi, fit, st = res.roi, res.fit, res.statistics
    rs = st.blocks.get("headline", {}).get("roi_sampling") or {}
    meta = {"cell": cell_name(cell), "spec": spec, "k": k, "truth": float(ph.summary["lic_of_mean_r2_mg_per_g"]),
            "headline_lic_mg_per_g": float(st.headline_lic_mg_per_g),
            "headline_r2_per_s": st.blocks.get("r2_per_s", {}).get("headline_mean"),
            "ci95_lic_mg_per_g": list(st.ci95_lic_mg_per_g), "roi_sampling": {k2: v for k2, v in rs.items()
                                                                            if not isinstance(v, (dict, list))},
            "warnings": [str(w) for w in res.warnings], "wall_s": time.time() - t0}
    vessel = ph.truth.labels == phantom.LABELS["vessel"]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{spec.replace('/', '-')}_{k}.npz"
    np.savez_compressed(path, r2=fit.r2_per_s.astype(np.float32), se=fit.r2_std_per_s.astype(np.float32),
                        s0=fit.s0.astype(np.float32), status=fit.status, r2_true=ph.truth.r2_per_s.astype(np.float32),
                        liver=ph.truth.liver_mask, vessel=vessel, labels=ph.truth.labels, roi=roi.mask,
                        candidate=roi.candidate, non_parenchyma=roi.non_parenchyma,
                        not_converged=roi.not_converged if roi.not_converged is not None else np.zeros_like(roi.mask),
                        meta=json.dumps(meta))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["capture", "table"])
    p.add_argument("livers", nargs="?", default="")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--out", default="leftwarn-table", help="results/OUT.json of ``table``")
    a = p.parse_args(argv)
    if a.what == "capture":
        for item in a.livers.split(","):
            spec, k = item.split(":")
            path = capture(spec, int(k), a.dir)
            print(path, json.loads(str(np.load(path)["meta"]))["wall_s"], flush=True)
        return 0
    from benchmarks._leftwarn_table import table
    return table(a.dir, a.out)


if __name__ == "__main__":
    sys.exit(main())
