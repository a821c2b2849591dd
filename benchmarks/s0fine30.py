"""Issue 16, branch s0fine30: fine S0 texture where the per-exam check cannot see it (30 mg/g, SNR 20),
and how often the check corrects livers without S0 texture (8 channels).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.s0fine30 CELLS [--seeds N] [--first R] [--tag TAG] [--mode M]``
(from the repository root), CELLS = ``LIC:COILS:SD:WIDTH:S0SD,...`` (SNR 20 unless ``--snr``); the livers of
benchmarks/s0_combo.py (hetero_full's seeds, full size, true mask; replicates 0-1 are s0combo's). One
``liver_statistics`` per liver with r2mri/_s0_unseen.py in ``--mode`` (default ``record``: the unseen-texture
block is computed and the interval left as before, so each design's lower end is derived from the same run:
``lo' = mean - hypot(mean - lo, extension)`` in R2, as r2mri/_headline.py ``widen_interval`` adds it).
Appends to ``benchmarks/results/s0fine30.jsonl``; ``--table`` prints the cells.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "s0fine30.jsonl"


def one(lic, snr, coils, sd, width, s0sd, replicate, mode, leak_error=None) -> dict:
    from r2mri import _s0_leak, _s0_unseen
    from r2mri.calibration import lic_from_r2, r2_from_lic
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    from ._seeds import cell_seeds

    sds = cell_seeds("hetero_full", (sd, width, lic, snr, coils), replicate)
    g = dict(s0_log_sd=s0sd, s0_correlation_voxels=1.0) if s0sd > 0 else {}
    ph = generate(lic=lic, snr=snr, coils=coils, seed=sds.noise, texture_seed=sds.texture, lic_log_sd=sd,
                  lic_correlation_voxels=width if sd > 0 else 0.0, **g)
    mask = ph.truth.liver_mask
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": float(ph.summary["noise_sigma"]), "coils": coils})
    old, old_le = _s0_unseen._MODE, _s0_leak._MODEL_ERROR
    _s0_unseen._MODE = mode
    _s0_leak._MODEL_ERROR = old_le if leak_error is None else leak_error
    try:
        t0 = time.process_time()
        st = liver_statistics(fit, mask, image=ph.image, seed=sds.stats)
        cpu = time.process_time() - t0
    finally:
        _s0_unseen._MODE, _s0_leak._MODEL_ERROR = old, old_le
    mx = st.blocks["headline"]["mixture"] or {}
    tex = mx.get("s0_texture") or {}
    lo, hi = st.ci95_lic_mg_per_g
    head = st.headline_lic_mg_per_g
    row = {"lic": lic, "snr": snr, "coils": coils, "sd": sd, "width": width, "s0_log_sd": s0sd, "replicate": replicate,
           "mode": mode, "leak_model_error": _s0_leak._MODEL_ERROR if leak_error is None else leak_error, "truth_lic": truth, "err_pct": 100 * (head / truth - 1), "lo_pct": 100 * (lo / truth - 1),
           "hi_pct": 100 * (hi / truth - 1), "covered": bool(lo <= truth <= hi), "rho": mx.get("rho_by_tile_size"),
           "s0_applied": bool(tex.get("applied")), "echoes_above_floor": tex.get("echoes_above_floor"),
           "measurable": tex.get("measurable"), "s0_by_tile_size": tex.get("by_tile_size"),
           "shift_lic_percent": tex.get("shift_lic_percent"), "unseen": tex.get("unseen"),
           "warnings": [w for w in st.warnings if w.startswith("headline")], "cpu_s": cpu}
    # each design's lower end from this run's interval (R2 level, in quadrature)
    m_r2, lo_r2 = (float(r2_from_lic(v)) for v in (head, lo))
    for d, ext in ((tex.get("unseen") or {}).get("extension_r2_per_s") or {}).items() if mode == "record" else ():
        lo_d = float(lic_from_r2(m_r2 - float(np.hypot(m_r2 - lo_r2, ext))))
        row[f"lo_pct_{d}"] = 100 * (lo_d / truth - 1)
        row[f"covered_{d}"] = bool(lo_d <= truth <= hi)
    return row


def run(cells, seeds, first, snr, tag, mode, leak_error=None) -> None:
    with open(OUT, "a") as fh:
        for lic, coils, sd, width, s0sd in cells:
            for r in range(first, first + seeds):
                row = one(lic, snr, int(coils), sd, width, s0sd, r, mode, leak_error)
                row.update(tag=tag, load=os.getloadavg()[0])
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                un = row["unseen"] or {}
                z = {k: round(v["z"], 1) for k, v in (un.get("by_tile_size") or {}).items()}
                print(f"LIC {lic:g} {int(coils)} ch tex {sd:g}/{width:g} S0 {s0sd:g} r{r}: {row['err_pct']:+.2f} "
                      f"[{row['lo_pct']:+.2f}, {row['hi_pct']:+.2f}] covered {row['covered']} applied "
                      f"{row['s0_applied']} echoes {row['echoes_above_floor']} z {z} lo conflict "
                      f"{row.get('lo_pct_conflict', float('nan')):+.2f} reach {row.get('lo_pct_reach', float('nan')):+.2f}"
                      f" cpu {row['cpu_s']:.0f}", flush=True)


def table(tag=None) -> str:
    rows = [json.loads(x) for x in open(OUT)]
    rows = [r for r in rows if tag is None or r["tag"] == tag]
    def key(r):  # rows before the leak model error existed ran without it (0)
        return r["lic"], r["snr"], r["coils"], r["sd"], r["width"], r["s0_log_sd"], r["mode"], r.get("leak_model_error", 0.0)

    keys = sorted({key(r) for r in rows})
    out = ["| LIC | SNR | ch | LIC SD/w | S0 SD | mode, leak model error | n | error % +- SE | covered | conflict | reach | S0 check fired |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in keys:
        rr = [r for r in rows if key(r) == k]
        e = np.array([r["err_pct"] for r in rr])
        se = e.std(ddof=1) / np.sqrt(len(e)) if len(e) > 1 else float("nan")
        cov = {d: sum(r.get(f"covered_{d}", r["covered"]) if r["mode"] == "record" else r["covered"] for r in rr)
               for d in ("conflict", "reach")}  # a run in a design's own mode: its interval as run
        out.append(f"| {k[0]:g} | {k[1]:g} | {k[2]} | {k[3]:g}/{k[4]:g} | {k[5]:g} | {k[6]}, {k[7]:g} | {len(rr)} | "
                   f"{e.mean():+.2f} +- {se:.2f} | {sum(r['covered'] for r in rr)}/{len(rr)} | {cov['conflict']}/{len(rr)}"
                   f" | {cov['reach']}/{len(rr)} | {sum(r['s0_applied'] for r in rr)}/{len(rr)} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cells", nargs="?", default="", help="LIC:COILS:SD:WIDTH:S0SD,...")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--snr", type=float, default=20.0)
    ap.add_argument("--tag", default="run")
    ap.add_argument("--mode", default="record", help="r2mri/_s0_unseen.py _MODE: off, record, conflict, reach")
    ap.add_argument("--leak-model-error", type=float, default=None, help="r2mri/_s0_leak.py _MODEL_ERROR (0: before)")
    ap.add_argument("--table", action="store_true")
    a = ap.parse_args(argv)
    if a.table:
        print(table())
        return 0
    cells = [tuple(float(x) for x in c.split(":")) for c in a.cells.split(",") if c]
    run(cells, a.seeds, a.first, a.snr, a.tag, a.mode, a.leak_model_error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
