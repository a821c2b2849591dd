"""The noise sigma's own error in the headline (issue 16; r2mri/_sigma_check.py).

Run: ``python -m benchmarks.sigma_check [--part sens|halfwidth|mismatch|alarms|all] [--seeds N]``
(from the repository root; ``NUMBA_NUM_THREADS=1``). Writes ``benchmarks/results/sigma_check-PART.json``
and prints one line per case. Not part of ``python -m benchmarks``.

Small livers (64 x 64 x 3 voxels of 6 mm, ~1,700 liver voxels), FerriScan TEs, the true
liver mask, ``sigma`` and ``coils`` as a real run has them: sigma from
:func:`r2mri.estimate_noise` on the image (its ``sigma_se`` goes into ``fit.options``
exactly as ``r2mri.analyze`` puts it there), voxel fits on the liver only, then
:func:`r2mri.stats.liver_statistics`. Each liver has its own noise and texture seed.

Parts:

- ``sens``: the module's cheap sensitivity (tiles refitted at sigma x 0.99 / 1.01) against
  the full headline (tile-mixture, voxel fits and all) re-run at sigma x 0.99 / 1.01.
- ``halfwidth``: 95 % half-width of the headline LIC with ``sigma_check="off"`` and
  ``"correct"``: uniform livers 0.5-40 mg/g at SNR 50 (1 and 8 channels) and 30 mg/g SNR 20 8 ch.
- ``mismatch``: 30 mg/g SNR 20 8 ch (uniform, and texture SD 0.4 width 4) with the phantom's
  ``body_noise_ratio`` 1, 1.01, 1.03, 0.97: headline error and coverage with ``"off"``,
  ``"widen"``, ``"liver"`` and ``"correct"``, and how often the check fires.
- ``alarms``: matched noise over a grid (LIC 1/7/30, SNR 20/50/100, 1/8 channels, texture
  SD 0 / 0.2 width 4 / 0.4 widths 1, 4, 8): how often the check fires (false alarms).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
GEOM = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)


def _liver(lic, snr, coils, seed, sd=0.0, width=1.0, ratio=1.0):
    from r2mri.phantom import generate

    return generate(lic=float(lic), snr=float(snr), coils=int(coils), seed=seed, texture_seed=seed, lic_log_sd=sd,
                    lic_correlation_voxels=float(width), body_noise_ratio=ratio, **GEOM)


def _fit(ph, sigma, coils, noise=None):
    import r2mri

    mask = ph.truth.liver_mask
    te = np.asarray(ph.image.echo_times_s, float)
    y = np.asarray(ph.image.data)[mask].astype(float)
    f = r2mri.fit(y.reshape(-1, 1, 1, te.size), echo_times_s=te, model="ncchi", noise_sigma=sigma, coils=coils,
                  threads=1)
    m = np.full(mask.shape, np.nan)
    m[mask] = np.asarray(f.r2_per_s, float).reshape(-1)
    opts = {"noise_sigma": sigma, "coils": coils}
    if noise is not None:
        opts["noise_estimate"] = noise.to_dict()
    return SimpleNamespace(r2_per_s=m, status=np.zeros(mask.shape, np.uint8), options=opts)


def _stats(ph, fit, mode, n_boot=500):
    from r2mri.stats import liver_statistics

    return liver_statistics(fit, ph.truth.liver_mask, image=ph.image, n_bootstrap=n_boot, seed=0, sigma_check=mode)


def _truth(ph):
    return float(ph.summary["lic_of_mean_r2_mg_per_g"]), float(ph.summary["mean_liver_r2_per_s"])


def part_sens(seeds):
    from r2mri.stats import pooled_mean_r2
    from r2mri._sigma_check import sigma_check

    out = []
    for lic, snr, coils, sd, w in ((30, 20, 8, 0, 1), (30, 50, 8, 0, 1), (30, 50, 1, 0, 1), (7, 50, 8, 0, 1),
                                   (1, 50, 8, 0, 1), (30, 20, 8, 0.4, 4), (30, 50, 8, 0.4, 4)):
        for seed in range(seeds):
            ph = _liver(lic, snr, coils, 300 + seed, sd, w)
            s = float(ph.summary["noise_sigma"])
            pooled = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=s, coils=coils)
            t0 = time.process_time()
            c = sigma_check(ph.image, pooled, s, coils, None)
            cpu_chk = time.process_time() - t0
            t0 = time.process_time()
            full = [_stats(ph, _fit(ph, s * q, coils), "off", 200).headline_r2_per_s for q in (0.99, 1.01)]
            cpu_full = time.process_time() - t0
            t0 = time.process_time()
            _stats(ph, _fit(ph, s, coils), "off", 2000)
            cpu_stats = time.process_time() - t0
            row = dict(lic=lic, snr=snr, coils=coils, sd=sd, width=w, seed=300 + seed, sens_cheap=c.sensitivity,
                       sens_full=(full[1] - full[0]) / (0.02 * np.mean(full)), cpu_check_s=cpu_chk,
                       cpu_full_rerun_s=cpu_full, cpu_liver_statistics_s=cpu_stats)
            print(json.dumps(row), flush=True)
            out.append(row)
    return out


def part_halfwidth(seeds):
    import r2mri

    out = []
    cells = [(lic, 50, ch) for ch in (1, 8) for lic in (0.5, 1, 2, 4, 7, 15, 30, 40)] + [(30, 20, 8)]
    for lic, snr, coils in cells:
        for seed in range(seeds):
            ph = _liver(lic, snr, coils, 400 + seed)
            ne = r2mri.estimate_noise(ph.image)
            fit = _fit(ph, ne.sigma, ne.coils, ne)
            truth, _ = _truth(ph)
            row = dict(lic=lic, snr=snr, coils=coils, seed=400 + seed, sigma_rel_se=ne.sigma_se / ne.sigma)
            res, chk = _three_modes(ph, fit, ne)
            for mode in ("off", "liver", "correct"):
                lic_, (lo, hi) = res[mode]
                row[mode] = dict(lic=lic_, half_width_pct=50 * (hi - lo) / lic_, covered=bool(lo <= truth <= hi),
                                 err_pct=100 * (lic_ / truth - 1))
            row["check"] = chk.to_dict()
            print(json.dumps(row), flush=True)
            out.append(row)
    return out


def _three_modes(ph, fit, noise):
    """Headline LIC and interval for sigma_check "off", "widen", "liver" and "correct" from one
    ``liver_statistics`` run ("off"), the check on the same tiles and, on a mismatch, the
    headline recomputed with the liver's sigma: what ``liver_statistics`` does in each mode."""
    from r2mri import _headline, calibration as cal
    from r2mri.stats import pooled_mean_r2
    from r2mri._sigma_check import air_sigma_se, sigma_check

    st = _stats(ph, fit, "off")
    r2 = st.blocks["r2_per_s"]
    mean, (lo, hi) = r2["headline_mean"], r2["headline_ci95"]
    pooled = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=noise.sigma, coils=noise.coils)
    out = {"off": (st.headline_lic_mg_per_g, st.ci95_lic_mg_per_g)}
    chk, again = None, None
    for mode in ("widen", "correct", "liver"):  # "liver" (the default) last: its check is returned
        chk = sigma_check(ph.image, pooled, noise.sigma, noise.coils, air_sigma_se(fit, noise.sigma), mode=mode)
        if chk.needs_rerun(mean, lo, hi):
            if again is None:
                again = _headline.headline_pooled(ph.image, ph.truth.liver_mask, noise_sigma=chk.sigma_liver,
                                                  coils=noise.coils, tile="adaptive", seed=0,
                                                  estimator="tile-mixture")[0].mean_r2_per_s
            chk.r2_shift_relative = again / mean - 1.0
        v = cal.lic_from_r2(np.array(chk.apply(mean, lo, hi)), cal.DEFAULT_CALIBRATION)
        out[mode] = (float(v[0]), (float(v[1]), float(v[2])))
    return out, chk


def part_mismatch(seeds):
    import r2mri

    out = []
    for sd, w in ((0.0, 1), (0.4, 4)):
        for ratio in (1.0, 1.01, 1.03, 0.97):
            for seed in range(seeds):
                ph = _liver(30, 20, 8, 500 + seed, sd, w, ratio)
                ne = r2mri.estimate_noise(ph.image)
                fit = _fit(ph, ne.sigma, ne.coils, ne)
                truth, _ = _truth(ph)
                row = dict(sd=sd, width=w, ratio=ratio, seed=500 + seed, sigma_air=ne.sigma,
                           sigma_liver_true=ph.summary.get("noise_sigma_liver_mean", ph.summary["noise_sigma"]))
                res, chk = _three_modes(ph, fit, ne)
                for mode, (lic, (lo, hi)) in res.items():
                    row[mode] = dict(err_pct=100 * (lic / truth - 1), covered=bool(lo <= truth <= hi),
                                     half_width_pct=50 * (hi - lo) / lic)
                row["check"] = chk.to_dict()
                row["warned"] = bool(chk.warnings)
                print(json.dumps(row), flush=True)
                out.append(row)
    return out


def part_alarms(seeds):
    import r2mri
    from r2mri.stats import pooled_mean_r2
    from r2mri._sigma_check import air_sigma_se, sigma_check

    out = []
    textures = ((0.0, 1), (0.2, 4), (0.4, 1), (0.4, 4), (0.4, 8))
    for lic in (1, 7, 30):
        for snr in (20, 50, 100):
            for coils in (1, 8):
                for sd, w in textures:
                    for seed in range(seeds):
                        ph = _liver(lic, snr, coils, 600 + seed, sd, w)
                        ne = r2mri.estimate_noise(ph.image)
                        pooled = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=ne.sigma, coils=ne.coils)
                        c = sigma_check(ph.image, pooled, ne.sigma, ne.coils, ne.sigma_se)
                        row = dict(lic=lic, snr=snr, channels=coils, sd=sd, width=w, seed=600 + seed,
                                   **c.to_dict())  # its "coils": the estimate's
                        print(json.dumps(row), flush=True)
                        out.append(row)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=["sens", "halfwidth", "mismatch", "alarms", "all"])
    ap.add_argument("--seeds", type=int, default=None, help="seeds per cell (defaults: sens 1, halfwidth 4, "
                    "mismatch 8, alarms 2)")
    a = ap.parse_args(argv)
    parts = ["sens", "halfwidth", "mismatch", "alarms"] if a.part == "all" else [a.part]
    default = dict(sens=1, halfwidth=4, mismatch=8, alarms=2)
    RESULTS.mkdir(exist_ok=True)
    for p in parts:
        t0 = time.time()
        load = os.getloadavg()[0]
        rows = globals()[f"part_{p}"](a.seeds or default[p])
        meta = dict(part=p, load_1min_start=load, load_1min_end=os.getloadavg()[0], wall_s=time.time() - t0,
                    utc=time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()))
        (RESULTS / f"sigma_check-{p}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
        print(json.dumps(meta), flush=True)


if __name__ == "__main__":
    main()
