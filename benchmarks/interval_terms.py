"""Why textured livers' 95 % intervals are wider than their error (issue 16, branch widetex).

Run: ``python -m benchmarks.interval_terms [--seeds N] [--first R] [--fixed-texture R]
[--only SD:WIDTH:LIC:SNR:COILS,...] [--name NAME]`` (from the repository root;
``NUMBA_NUM_THREADS=1``). Writes ``benchmarks/results/NAME.json`` (every liver's terms) and prints
the table quoted in benchmarks/README.md. ``--fixed-texture R``: every liver of a cell on
replicate R's texture (the noise-only SD). ``python -m benchmarks.interval_terms --full [--cell
SD:WIDTH:LIC:SNR:COILS] [--first R] [--seeds N] [--name NAME]``: full-size livers of
benchmarks/hetero_full.py, default against ``interval="texture-free"``, with the terms.
Each liver also runs ``liver_statistics(..., interval="texture-free")`` (r2mri/_texture_free_ci.py).

The livers are benchmarks/hetero.py's (same phantom, geometry, true liver mask, seeds from
benchmarks/_seeds.py with the ``hetero`` tag, so replicate r of a cell is the same liver as in
the grid); the headline is ``liver_statistics`` default (``tile-mixture``, 500 bootstrap
resamples). For each liver the interval is taken apart into its terms, each as an SE of the
mean R2 relative to the true mean liver R2 (percent):

- ``boot``: the between-tile bootstrap SE (``headline_se_bootstrap``);
- ``meas``: the measurement SE from the tile fits' covariances (``headline_se_measurement``);
- ``corr``: the mixture correction's own SE (spread, shape, split terms in quadrature,
  r2mri/_headline.py ``MixtureCorrection.se_r2_per_s``); ``shape_d`` the log-normal shape
  difference the interval must reach; ``upper`` the unidentified-tile upper extension;
- ``sigma``: the noise sigma's SE term (r2mri/_sigma_check.py, ``SigmaCheck.apply``);
- ``half``: the final half-width / 1.96 (what the interval claims as SE).

and per cell the seed-to-seed SD of the headline error (``sd_err``), so ``half / sd_err`` is
how much wider the interval is than the error. The interval is also re-assembled with the
bootstrap left out (``nb``: measurement SE, then the same widening terms) by capturing the
inputs of ``widen_interval`` and ``SigmaCheck.apply`` (the library is not changed): its
coverage says whether the bootstrap carries any error the other terms miss.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .hetero import GEOMETRY, _voxel_fit

RESULTS = Path(__file__).resolve().parent / "results"
_Z95 = 1.959963984540054
CELLS = [  # (sd, width, lic, snr, coils): textured cells across the grid, then two uniform ones
    (0.2, 4.0, 7.0, 50.0, 1), (0.4, 1.0, 7.0, 50.0, 1), (0.4, 4.0, 7.0, 50.0, 1), (0.4, 8.0, 7.0, 20.0, 8),
    (0.4, 4.0, 1.0, 50.0, 1), (0.2, 8.0, 30.0, 50.0, 1), (0.4, 1.0, 30.0, 20.0, 1), (0.4, 4.0, 30.0, 20.0, 8),
    (0.0, 1.0, 7.0, 50.0, 1), (0.0, 1.0, 30.0, 20.0, 8),
]


class _Capture:
    """Records the inputs and outputs of the two widening steps during one liver_statistics call."""

    def __enter__(self):
        from r2mri import _headline, _sigma_check, _texture_free_ci

        self.rec: dict[str, Any] = {}
        self._w, self._a, self._t = _headline.widen_interval, _sigma_check.SigmaCheck.apply, _texture_free_ci.apply
        rec, w0, a0, t0 = self.rec, self._w, self._a, self._t

        def basis(mode, lo, hi, mean, se, pooled, *rest):
            rec.update(pooled=pooled)
            return t0(mode, lo, hi, mean, se, pooled, *rest)

        def widen(lo, hi, mean, corr):
            rec.update(pre=(lo, hi, mean), corr=corr)
            return w0(lo, hi, mean, corr)

        def apply(chk, mean, lo, hi):
            rec.update(sig=chk, sig_in=(mean, lo, hi))
            return a0(chk, mean, lo, hi)

        _headline.widen_interval, _sigma_check.SigmaCheck.apply = widen, apply
        _texture_free_ci.apply = basis
        return self

    def __exit__(self, *exc):
        from r2mri import _headline, _sigma_check, _texture_free_ci

        _headline.widen_interval, _sigma_check.SigmaCheck.apply = self._w, self._a
        _texture_free_ci.apply = self._t
        return False


def one_liver(sd, width, lic, snr, coils, seeds) -> dict[str, Any]:
    from types import SimpleNamespace

    from r2mri import _headline, _sigma_check
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    ph = generate(lic=lic, snr=snr, coils=coils, seed=seeds.noise, texture_seed=seeds.texture, lic_log_sd=sd,
                  lic_correlation_voxels=width, **GEOMETRY)
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    te = np.asarray(ph.image.echo_times_s, float)
    r2v, _, _ = _voxel_fit(np.asarray(ph.image.data)[mask].astype(np.float64), te, sigma, coils)
    r2map = np.full(mask.shape, np.nan)
    r2map[mask] = r2v
    fit = SimpleNamespace(r2_per_s=r2map, status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": sigma, "coils": coils})
    t0 = time.process_time()
    with _Capture() as cap:
        st = liver_statistics(fit, mask, image=ph.image, n_bootstrap=500, seed=seeds.stats)
    cpu = time.process_time() - t0
    st_tf = liver_statistics(fit, mask, image=ph.image, n_bootstrap=500, seed=seeds.stats, interval="texture-free")
    tf_lo, tf_hi = st_tf.blocks["r2_per_s"]["headline_ci95"]
    tf_block = st_tf.blocks["headline"]["interval_basis"] or {}
    truth = float(ph.summary["mean_liver_r2_per_s"])
    rb, hb = st.blocks["r2_per_s"], st.blocks["headline"]
    mean = float(st.headline_r2_per_s)
    lo, hi = rb["headline_ci95"]
    rec = cap.rec
    corr = rec.get("corr")
    pre_lo, pre_hi, m0 = rec["pre"]
    se_meas = float(rb["headline_se_measurement"] or 0.0)
    # the interval without the bootstrap: measurement SE, then the same widening steps
    nlo, nhi = _headline.widen_interval(m0 - _Z95 * se_meas, m0 + _Z95 * se_meas, m0, corr)
    sig = rec.get("sig")
    sig_se = 0.0
    if sig is not None:
        nm, nlo, nhi = _sigma_check.SigmaCheck.apply(sig, rec["sig_in"][0], nlo, nhi)
        s_in = rec["sig_in"]  # the sigma step's own width: its extra in quadrature (a share of the mean)
        f = 1.0 + (sig.r2_shift_relative or 0.0) if sig.corrected else 1.0
        se_rel = (sig.sensitivity * (sig.sigma_liver_se or 0.0) / sig.sigma_liver if sig.corrected else
                  (sig.sensitivity * sig.sigma_air_se / sig.sigma_air if sig.sigma_air_se is not None else 0.0))
        sig_se = abs(se_rel) * s_in[0] * f
    rel = 100.0 / truth
    # the true mean R2 over the voxels the tiles used, against the liver's: the left-out voxels' exact share
    pooled = rec.get("pooled")
    used = (np.asarray(pooled.voxel_index)[np.asarray(pooled.voxel_tile) >= 0] if pooled is not None
            else np.zeros(0, int))
    left_true = (100 * (float(np.mean(np.asarray(ph.truth.r2_per_s).reshape(-1)[used])) / truth - 1)
                 if used.size else float("nan"))
    return {
        "seeds": list(seeds), "truth_r2": truth, "mean_r2": mean, "err_pct": 100 * (mean / truth - 1),
        "covered": bool(lo <= truth <= hi), "covered_nb": bool(nlo <= truth <= nhi),
        "half_pct": rel * (hi - lo) / 2 / _Z95, "half_nb_pct": rel * (nhi - nlo) / 2 / _Z95,
        "boot_pct": rel * float(rb["headline_se_bootstrap"] or 0.0), "meas_pct": rel * se_meas,
        "pre_half_pct": rel * (pre_hi - pre_lo) / 2 / _Z95,
        "corr_pct": rel * (corr.se_r2_per_s if corr is not None else 0.0),
        "spread_pct": rel * (corr.se_spread_r2_per_s if corr is not None else 0.0),
        "shape_pct": rel * (corr.se_shape_r2_per_s if corr is not None else 0.0),
        "split_pct": rel * (corr.se_split_r2_per_s if corr is not None else 0.0),
        "shape_d_pct": rel * (corr.shape_difference_r2_per_s if corr is not None else 0.0),
        "upper_pct": rel * (corr.upper_r2_per_s if corr is not None else 0.0),
        "sigma_pct": rel * sig_se,
        "correction_pct": rel * (corr.correction_r2_per_s if corr is not None else 0.0),
        "tile_fit_bias_pct": rel * (corr.extra.get("tile_fit_bias_r2_per_s", 0.0) if corr is not None else 0.0),
        "sigma_shift_pct": 100 * ((sig.r2_shift_relative or 0.0) if sig is not None and sig.corrected else 0.0),
        "covered_tf": bool(tf_lo <= truth <= tf_hi), "half_tf_pct": rel * (tf_hi - tf_lo) / 2 / _Z95,
        "left_out_pct": rel * float(tf_block.get("se_left_out_voxels_r2_per_s", 0.0)),
        "tf_same_mean": bool(abs(st_tf.headline_r2_per_s - mean) <= 1e-9 * mean),
        "left_out_true_pct": left_true,
        "rho": ({str(k): v for k, v in corr.rho.items()} if corr is not None else None), "n_tiles": hb["n_tiles"], "cpu_s": cpu,
    }


def run(cells, seeds: int, fixed_texture: "int | None" = None, first: int = 0) -> dict[str, Any]:
    """``fixed_texture=r``: every liver of a cell has replicate r's texture (noise and statistics
    seeds still per replicate), so the seed-to-seed SD is that of the noise alone on one texture."""
    from ._common import machine_info
    from ._seeds import Seeds, cell_seeds, scheme

    out: dict[str, Any] = {"machine": machine_info(), "seeding": scheme(False), "seeds": seeds,
                           "fixed_texture_replicate": fixed_texture, "first_replicate": first, "cells": []}
    for cell in cells:
        seed_list = [cell_seeds("hetero", cell, r) for r in range(first, first + seeds)]
        if fixed_texture is not None:
            tex = cell_seeds("hetero", cell, fixed_texture).texture
            seed_list = [Seeds(s.noise, tex, s.stats) for s in seed_list]
        livers = [one_liver(*cell, s) for s in seed_list]
        out["cells"].append({"cell": list(cell), "fixed_texture_replicate": fixed_texture, "livers": livers})
        print(row(out["cells"][-1]), flush=True)
    return out


HEAD = ("| SD | width | LIC | SNR | ch | n | bias % | sd_err % | boot | meas | corr (spread/shape/split) | shape_d | "
        "upper | sigma | half | half/sd_err | cover | half nb | nb/sd_err | cover nb | left-out | half tf | tf/sd_err | "
        "cover tf |\n|" + "---|" * 24)


def row(c: dict[str, Any]) -> str:
    L = c["livers"]

    def m(k):
        return float(np.mean([x[k] for x in L]))

    e = np.array([x["err_pct"] for x in L])
    sd = float(np.std(e, ddof=1))
    sd0, w, lic, snr, ch = c["cell"]
    return (f"| {sd0:g} | {w:g} | {lic:g} | {snr:g} | {ch} | {len(L)} | {e.mean():+.2f} | {sd:.2f} | {m('boot_pct'):.2f} | "
            f"{m('meas_pct'):.2f} | {m('corr_pct'):.2f} ({m('spread_pct'):.2f}/{m('shape_pct'):.2f}/{m('split_pct'):.2f}) | "
            f"{m('shape_d_pct'):+.2f} | {m('upper_pct'):.2f} | {m('sigma_pct'):.2f} | {m('half_pct'):.2f} | "
            f"{m('half_pct') / sd:.2f} | {sum(x['covered'] for x in L)}/{len(L)} | {m('half_nb_pct'):.2f} | "
            f"{m('half_nb_pct') / sd:.2f} | {sum(x['covered_nb'] for x in L)}/{len(L)} | {m('left_out_pct'):.2f} | "
            f"{m('half_tf_pct'):.2f} | {m('half_tf_pct') / sd:.2f} | {sum(x['covered_tf'] for x in L)}/{len(L)} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--only", default="", metavar="SD:WIDTH:LIC:SNR:COILS,...")
    ap.add_argument("--name", default="interval_terms")
    ap.add_argument("--first", type=int, default=0, help="first replicate number (default 0)")
    ap.add_argument("--fixed-texture", type=int, default=None, metavar="R",
                    help="one texture per cell (replicate R's), noise seeds per replicate")
    a = ap.parse_args(argv)
    cells = CELLS
    if a.only:
        cells = [tuple(float(v) for v in s.split(":")[:4]) + (int(s.split(":")[4]),) for s in a.only.split(",")]
    print(HEAD)
    res = run(cells, a.seeds, a.fixed_texture, a.first)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{a.name}.json").write_text(json.dumps(res, indent=1))
    return 0




def full_liver(cell, replicate: int) -> dict[str, Any]:
    """A full-size liver of benchmarks/hetero_full.py (its seeds and geometry, the true R2 map as the
    voxel map): the default interval and the texture-free one (``--full``)."""
    from types import SimpleNamespace

    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    from ._seeds import cell_seeds

    sd, width, lic, snr, coils = cell
    s = cell_seeds("hetero_full", cell, replicate)
    ph = generate(lic=lic, snr=snr, coils=coils, seed=s.noise, texture_seed=s.texture, lic_log_sd=sd,
                  lic_correlation_voxels=width if sd > 0 else 0.0)
    mask = ph.truth.liver_mask
    fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                          options={"noise_sigma": float(ph.summary["noise_sigma"]), "coils": coils})
    truth = float(ph.summary["mean_liver_r2_per_s"])
    out: dict[str, Any] = {"seeds": list(s), "truth_r2": truth}
    for mode in ("bootstrap", "texture-free"):
        t0 = time.process_time()
        with _Capture() as cap:
            st = liver_statistics(fit, mask, image=ph.image, seed=s.stats, interval=mode)
        lo, hi = st.blocks["r2_per_s"]["headline_ci95"]
        rb, corr, sig = st.blocks["r2_per_s"], cap.rec.get("corr"), cap.rec.get("sig")
        terms = {"boot_pct": 100 * float(rb["headline_se_bootstrap"] or 0.0) / truth,
                 "meas_pct": 100 * float(rb["headline_se_measurement"] or 0.0) / truth,
                 "corr_pct": 100 * (corr.se_r2_per_s if corr is not None else 0.0) / truth,
                 "shape_d_pct": 100 * (corr.shape_difference_r2_per_s if corr is not None else 0.0) / truth,
                 "upper_pct": 100 * (corr.upper_r2_per_s if corr is not None else 0.0) / truth,
                 "sigma_rel_se_pct": (100 * sig.sensitivity * (sig.sigma_liver_se or 0.0) / sig.sigma_liver
                                      if sig is not None and sig.corrected else 0.0),
                 "pre_sigma_half_pct": 100 * (cap.rec["sig_in"][2] - cap.rec["sig_in"][1]) / 2 / _Z95 / truth
                 if "sig_in" in cap.rec else None}
        out[mode] = {"err_pct": 100 * (st.headline_r2_per_s / truth - 1), "covered": bool(lo <= truth <= hi),
                     "half_pct": 100 * (hi - lo) / 2 / _Z95 / truth, "cpu_s": time.process_time() - t0,
                     "basis": st.blocks["headline"]["interval_basis"], "terms": terms}
        print(replicate, mode, {k: v for k, v in out[mode].items() if k != "basis"}, flush=True)
    return out


def main_full(argv=None) -> int:
    ap = argparse.ArgumentParser(description="full-size livers, default vs texture-free interval")
    ap.add_argument("--cell", default="0.4:4:30:20:8")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--name", default="interval_terms-full")
    a = ap.parse_args(argv)
    v = a.cell.split(":")
    cell = (float(v[0]), float(v[1]), float(v[2]), float(v[3]), int(v[4]))
    res = {"cell": list(cell), "first_replicate": a.first,
           "livers": [full_liver(cell, r) for r in range(a.first, a.first + a.seeds)]}
    (RESULTS / f"{a.name}.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main_full(sys.argv[2:]) if sys.argv[1:2] == ["--full"] else main())
