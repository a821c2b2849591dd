"""Issue 16, branch s0warn: the per-exam fine S0 texture check (r2mri/_s0_texture.py) on phantoms.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.s0_warn measure [--lic 7,30] [--coils 1,8]`` and
``python -m benchmarks.s0_warn paired CELLS`` (from the repository root). Appends every
liver to ``benchmarks/results/s0_warn.jsonl``; ``python -m benchmarks.s0_warn table`` prints
the tables of docs/statistics.md ("*The per-exam check*").

1. ``measure``: the measurement alone (:func:`r2mri._s0_texture.exam_texture` in the tiles of
   ``pooled_mean_r2``, true liver mask) against the truth: the phantom's log S0
   (``truth.s0``, same per-slice quadratic surface removed) pooled within the same tiles.
   Medium livers (128 x 128 x 6 of 3 mm, ~13,000 voxels), SNR 20, seed 500+; S0 texture
   log-SD 0 / 0.02 / 0.05 / 0.1 over 1 and 4 voxels; LIC uniform or SD 0.4 over 1 / 4 / 8
   voxels; 1 / 7 / 30 mg/g; 1 / 8 channels.
2. ``paired``: ``liver_statistics`` (benchmarks/hetero_full.one) on the same livers with and
   without S0 texture: the headline's paired shift, the check's expected shift
   (``headline.mixture.s0_texture.shift_lic_percent``) and its warning.

Tags in the jsonl follow the design as it changed on branch s0warn: ``measure`` (all echoes above
the floor, before the three-echo limit), ``full1`` (all echoes, correction at > 2 SE), ``full3``
(three echoes, > 3 SE; the LIC-textured rows there predate the R2 t limit), ``full4`` (R2 t
variance <= 0.02), ``full5`` / ``full6`` (<= 0.04 and the step's model error: the shipped design).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
MEDIUM = dict(matrix=(128, 128), pixel_mm=3.0, n_slices=6)
S0 = [(0.0, 1.0), (0.02, 1.0), (0.05, 1.0), (0.1, 1.0), (0.02, 4.0), (0.05, 4.0), (0.1, 4.0)]
LIC_TEXTURE = [(0.0, 0.0), (0.4, 1.0), (0.4, 4.0), (0.4, 8.0)]


def _truth_within(ph, pooled, xyz, keep) -> dict:
    """Within-tile variance of the phantom's log S0 (surface removed per slice), per tile edge."""
    from r2mri._s0_texture import _SURFACE_DEGREE, _surface_points, _tile_products

    ls = np.log(np.asarray(ph.truth.s0, np.float64)[tuple(xyz.T)])
    r = _surface_points(ls, xyz[:, :2], xyz[:, 2], _SURFACE_DEGREE)
    tid = pooled.voxel_tile[keep]
    out = {}
    for s in np.unique(pooled.tile_size):
        v = np.isin(tid, np.flatnonzero(pooled.tile_size == s))
        if v.sum() >= 4:
            ss, dof = _tile_products(r[v, None], tid[v], 2)
            out[str(int(s))] = float(ss[:, 0, 0].sum() / dof.sum()) if dof.size else float("nan")
    return out


def measure_one(lic, snr, coils, seed, s0, lic_tex, geometry) -> dict:
    from r2mri._s0_texture import exam_texture
    from r2mri.phantom import generate
    from r2mri.stats import pooled_mean_r2

    g = dict(geometry)
    if s0[0] > 0:
        g.update(s0_log_sd=s0[0], s0_correlation_voxels=s0[1])
    ph = generate(lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=seed, lic_log_sd=lic_tex[0],
                  lic_correlation_voxels=lic_tex[1], **g)
    sigma = float(ph.summary["noise_sigma"])
    pooled = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=sigma, coils=coils)
    keep = pooled.voxel_tile >= 0
    shape = np.asarray(ph.image.data).shape
    xyz = np.stack(np.unravel_index(pooled.voxel_index[keep], shape[:3]), axis=1)
    y = np.asarray(ph.image.data).reshape(-1, shape[3])[pooled.voxel_index[keep]].astype(np.float64)
    sel_of = {int(s): pooled.tile_size == s for s in np.unique(pooled.tile_size)}
    t0 = time.process_time()
    e = exam_texture(y, xyz, pooled.voxel_tile[keep], sel_of, ph.image.echo_times_s, sigma, coils, seed=seed)
    return {"lic": lic, "snr": snr, "coils": coils, "seed": seed, "s0": list(s0), "lic_texture": list(lic_tex),
            "voxels": int(keep.sum()), "texture": e, "truth": _truth_within(ph, pooled, xyz, keep),
            "cpu_s": time.process_time() - t0}


def measure(seeds, lics=(1.0, 7.0, 30.0), coils_list=(1, 8), geometry=MEDIUM, tag="measure") -> None:
    with open(RESULTS / "s0_warn.jsonl", "a") as fh:
        for lic in lics:
            for coils in coils_list:
                for lt in LIC_TEXTURE:
                    for s0 in S0:
                        for seed in range(500, 500 + seeds):
                            r = measure_one(lic, 20.0, coils, seed, s0, lt, geometry)
                            r.update(kind="measure", tag=tag, load=os.getloadavg()[0])
                            fh.write(json.dumps(r) + "\n")
                            fh.flush()
                            tx = r["texture"]
                            print(f"LIC {lic:g} {coils} ch, LIC tex {lt}, S0 {s0}, seed {seed}: echoes "
                                  f"{tx['echoes_above_floor']}, " + "; ".join(
                                      f"T{k} {v['s0_var']:+.5f} +- {v['s0_var_se']:.5f} (truth {r['truth'].get(k, np.nan):.5f})"
                                      for k, v in tx["by_tile_size"].items()), flush=True)


def paired(cells, seeds, offset, s0_list, geometry, tag) -> None:
    from .hetero_full import one

    with open(RESULTS / "s0_warn.jsonl", "a") as fh:
        for lic, snr, coils, sd, width in cells:
            for seed in range(offset, offset + seeds):
                base = None
                for s0 in [(0.0, 1.0)] + list(s0_list):
                    g = dict(geometry)
                    if s0[0] > 0:
                        g.update(s0_log_sd=s0[0], s0_correlation_voxels=s0[1])
                    r = one(sd, width, lic, snr, coils, seed, g)
                    b = r["mixture"].get("s0_texture") or {}
                    base = r["err_pct"] if base is None else base
                    row = {"kind": "paired", "tag": tag, "lic": lic, "snr": snr, "coils": coils, "lic_texture": [sd, width],
                           "seed": seed, "s0": list(s0), "err_pct": r["err_pct"], "paired_pct": r["err_pct"] - base,
                           "covered": r["covered"], "half_width_pct": r["half_width_pct"], "s0_texture": b,
                           "warned": any("more textured at fine scale" in w for w in r["warnings"]),
                           "cpu_s": r["cpu_s"], "load": os.getloadavg()[0], "geometry": g}
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    print(f"LIC {lic:g} SNR {snr:g} {coils} ch LIC tex {sd:g}/{width:g} seed {seed} S0 {s0}: err "
                          f"{r['err_pct']:+.2f} paired {row['paired_pct']:+.2f} covered {r['covered']}; echoes "
                          f"{b.get('echoes_above_floor')}, expected {b.get('shift_lic_percent', float('nan')):+.2f} %, "
                          f"warned {row['warned']}, cpu {r['cpu_s']:.1f} s", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["measure", "paired", "table"])
    ap.add_argument("cells", nargs="?", default="", help="paired: LIC:SNR:COILS:SD:WIDTH,...")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--offset", type=int, default=500)
    ap.add_argument("--s0", default="0.05:1,0.1:1", metavar="LOGSD:CORR,...")
    ap.add_argument("--size", choices=["small", "medium", "full"], default="full")
    ap.add_argument("--lic", default="1,7,30", help="measure: mg/g")
    ap.add_argument("--coils", default="1,8", help="measure: channels")
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    from .small20 import GEOMETRY

    geometry = {"small": GEOMETRY, "medium": MEDIUM, "full": {}}[a.size]
    if a.what == "measure":
        measure(a.seeds, tuple(float(x) for x in a.lic.split(",")), tuple(int(x) for x in a.coils.split(",")),
                geometry if a.size != "full" else MEDIUM, a.tag or "measure")
    elif a.what == "paired":
        cells = [tuple(float(x) for x in c.split(":")) for c in a.cells.split(",") if c]
        cells = [(c[0], c[1], int(c[2]), c[3], c[4]) for c in cells]
        s0 = [tuple(float(x) for x in c.split(":")) for c in a.s0.split(",") if c]
        paired(cells, a.seeds, a.offset, s0, geometry, a.tag or f"paired-{a.size}")
    else:
        print(table())
    return 0


def table(tag_measure: str = "measure", tag_paired: tuple = ("full4", "full5", "full6")) -> str:
    """The two tables of docs/statistics.md ("*The per-exam check*") from ``results/s0_warn.jsonl``."""
    rows = [json.loads(line) for line in open(RESULTS / "s0_warn.jsonl")]
    out = ["Measurement (8 x 8 tiles, else the largest edge): estimate - truth in SE, per liver; echoes used", ""]
    out += ["| LIC, ch | LIC texture | " + " | ".join(f"S0 {a:g}/{c:g}" for a, c in S0) + " |",
            "|---|---|" + "---|" * len(S0)]
    meas = [r for r in rows if r["kind"] == "measure" and r["tag"] == tag_measure]
    for lic in sorted({r["lic"] for r in meas}):
        for coils in sorted({r["coils"] for r in meas}):
            for lt in LIC_TEXTURE:
                cells = []
                for s0 in S0:
                    rr = [r for r in meas if r["lic"] == lic and r["coils"] == coils and r["lic_texture"] == list(lt)
                          and r["s0"] == list(s0)]
                    txt = []
                    for r in rr:
                        by = r["texture"]["by_tile_size"]
                        if not by:
                            txt.append(f"n/m ({r['texture']['echoes_above_floor']} e)")
                            continue
                        k = "8" if "8" in by else max(by, key=int)
                        v = by[k]
                        txt.append(f"{v['s0_var'] * 1e3:+.1f}+-{v['s0_var_se'] * 1e3:.1f} (t {r['truth'][k] * 1e3:.1f})")
                    cells.append("; ".join(txt) or "-")
                if any(c != "-" for c in cells):
                    out.append(f"| {lic:g}, {coils} | {lt[0]:g}/{lt[1]:g} | " + " | ".join(cells) + " |")
    out += ["", "Paired (full size): headline change against the same liver without S0 texture, check's expected "
            "shift, corrected?", ""]
    pr = [r for r in rows if r["kind"] == "paired" and r["tag"] in tag_paired]
    for r in pr:
        b = r["s0_texture"] or {}
        out.append(f"LIC {r['lic']:g} SNR {r['snr']:g} {r['coils']} ch tex {r['lic_texture']} seed {r['seed']} S0 "
                   f"{r['s0']}: err {r['err_pct']:+.2f} paired {r['paired_pct']:+.2f} cov {r['covered']} "
                   f"echoes {b.get('echoes_above_floor')} expected {b.get('shift_lic_percent', float('nan')):+.2f} "
                   f"applied {bool(b.get('applied'))}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
