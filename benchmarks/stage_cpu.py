"""CPU (process time) of each stage of a warm ``r2mri.analyze`` + ``write_outputs`` on full-size phantoms.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.stage_cpu [--specs a,b] [--repeats N]``
from the repository root. Writes ``benchmarks/results/stage_cpu.json`` and prints one
table per phantom.

Each stage's function is wrapped (its module attribute replaced, at run time only) by a
timer of ``time.process_time`` (the CPU of all the process's threads; on a shared
machine it moves less with the load than wall time); times are inclusive (a stage holds
the stages it calls) and summed over calls within one run. The first run in the process
(numba caches, imports, matplotlib's first figure) is not counted; the table gives the
median and range over ``--repeats`` warm runs and the 1-minute load average. No
profiler: cProfile's per-call overhead doubles matplotlib's share.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SPECS = ["heterogeneous-fine-1.5t", "heterogeneous-focal-1.5t", "ferriscan-1.5t-lic7"]

# (module, attribute, label): module attributes looked up at call time by their callers
STAGES = [
    ("r2mri.analysis", "analyze", "analyze (total)"),
    ("r2mri.noise", "estimate_noise", "  noise estimate"),
    ("r2mri.fitting", "fit", "  voxel fit"),
    ("r2mri.roi", "liver_roi", "  liver ROI"),
    ("r2mri.stats", "liver_statistics", "  liver_statistics"),
    ("r2mri._headline", "headline_pooled", "    headline (tile-mixture)"),
    ("r2mri.stats", "pooled_mean_r2", "      pooled tile fit"),
    ("r2mri._headline", "_estimate_spread", "      spread estimate (simulated moments)"),
    ("r2mri._headline", "_correct_many", "        mixture inversions"),
    ("r2mri._headline", "_ncchi_draw", "        noise draws"),
    ("r2mri._headline", "_correction_and_errors", "      correction + its SE"),
    ("r2mri.stats", "_heterogeneity", "    heterogeneity block"),
    ("r2mri.analysis", "widen_for_roi_sampling", "  ROI sampling term"),
    ("r2mri.report._write", "write_outputs", "write_outputs (total)"),
    ("r2mri.report._write", "report_dict", "  report dict"),
    ("r2mri.report._page", "render_page", "  page: figure"),
    ("r2mri.report._page", "write_page", "  page: figure + raster + PNG + PDF"),
    ("r2mri.report._nifti", "write_nifti_maps", "  NIfTI maps"),
]


def _instrument() -> dict:
    import importlib

    acc: dict[str, float] = {}
    for mod_name, attr, label in STAGES:
        mod = importlib.import_module(mod_name)
        fn = getattr(mod, attr)

        def timed(*a, _fn=fn, _label=label, **k):
            t = time.process_time()
            try:
                return _fn(*a, **k)
            finally:
                acc[_label] = acc.get(_label, 0.0) + time.process_time() - t

        setattr(mod, attr, timed)
    # names imported into other modules' namespaces at load time
    import r2mri
    import r2mri.report as rep

    r2mri.analyze = importlib.import_module("r2mri.analysis").analyze
    rep.write_outputs = importlib.import_module("r2mri.report._write").write_outputs
    return acc


def run(spec: str, repeats: int, acc: dict) -> dict:
    import r2mri
    from r2mri import phantom
    from r2mri.report import write_outputs

    ph = phantom.generate(spec, seed=1)
    runs = []
    with tempfile.TemporaryDirectory() as d:
        for i in range(repeats + 1):
            acc.clear()
            res = r2mri.analyze(ph.image)
            write_outputs(res, os.path.join(d, f"out{i}"))
            if i:
                runs.append(dict(acc))
    rows = {}
    for _m, _a, label in STAGES:
        v = [r.get(label, 0.0) for r in runs]
        rows[label.strip()] = {"median_s": float(np.median(v)), "min_s": float(min(v)), "max_s": float(max(v))}
        print(f"{label:48s} {np.median(v):6.2f} s  ({min(v):.2f}-{max(v):.2f})")
    return {"spec": spec, "headline_lic_mg_per_g": res.headline_lic_mg_per_g, "stages": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default=",".join(SPECS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "stage_cpu.json"))
    a = ap.parse_args()
    acc = _instrument()
    out = {"load_1min_start": os.getloadavg()[0], "nproc": os.cpu_count(),
           "numba_threads": os.environ.get("NUMBA_NUM_THREADS"), "rows": []}
    for spec in a.specs.split(","):
        print(f"== {spec} (load {os.getloadavg()[0]:.1f})")
        out["rows"].append(run(spec, a.repeats, acc))
    out["load_1min_end"] = os.getloadavg()[0]
    Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
