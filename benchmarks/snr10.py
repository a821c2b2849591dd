"""Issue 16, the shipped `low-snr-1.5t-lic7` (SNR 10, 8 channels, uniform 7 mg/g): where the
headline's bias comes from.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.snr10 [--seeds 0 1 ... ] [--no-analyze] [--out F]``
(from the repository root). Writes ``benchmarks/results/snr10.json`` (or ``--out``) and
prints one line per seed and a summary (mean +- SE of the seed mean, SD over seeds).

Per noise seed: ``r2mri.analyze`` (automatic ROI, estimated noise; "after"), the same fit and
ROI through ``liver_statistics`` with the ROI's mask alone, i.e. without the voxels whose own
fit did not converge (``LiverROI.not_converged``; "before", main a408d82's headline, with the
same ROI-sampling widening), and ``liver_statistics`` on the same fit with the true liver
mask (phantom labels, vessels out), which takes the ROI out. With the true mask the headline is decomposed: the plain tile fits
(:func:`r2mri.stats.pooled_mean_r2`), after the tile fits' own bias correction (Box term and
simulated term, :mod:`r2mri._tile_bias`, :mod:`r2mri._tile_bias_sim`), after the
within-tile spread correction (the headline; ``rho`` per tile edge), and the interval's
half-width against the SD of the headline over seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SPEC = "low-snr-1.5t-lic7"


def one(seed: int, spec: str = SPEC, analyze: bool = True, **overrides) -> dict:
    import r2mri
    from r2mri.calibration import lic_from_r2
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics, pooled_mean_r2

    ph = generate(spec, seed=seed, **overrides)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    r2_true = float(ph.summary["mean_liver_r2_per_s"])
    sigma_true = float(ph.summary["noise_sigma"])
    coils_true = int(ph.summary["coils"])
    mask = ph.truth.liver_mask
    row: dict = dict(spec=spec, seed=seed, overrides=overrides, truth_lic=truth, truth_r2=r2_true,
                     sigma_true=sigma_true)
    t0 = time.process_time()
    if analyze:
        res = r2mri.analyze(ph.image)
        st = res.statistics
        fit = res.fit
        # main before branch snr10: the headline on the ROI's mask alone, without the voxels whose own fit
        # did not converge (LiverROI.not_converged); the same fit, ROI and ROI-sampling widening
        from r2mri._roi_sampling import widen_for_roi_sampling

        sb = liver_statistics(fit, res.roi.mask, image=ph.image)
        widen_for_roi_sampling(sb, res.roi, fit, sb_cal(fit))
        nc = getattr(res.roi, "not_converged", None)
        row.update(auto_before_lic=sb.headline_lic_mg_per_g, auto_before_ci=list(sb.ci95_lic_mg_per_g),
                   not_converged_pooled=int(np.count_nonzero(nc)) if nc is not None else 0)
        row.update(auto_lic=st.headline_lic_mg_per_g, auto_ci=list(st.ci95_lic_mg_per_g),
                   auto_r2=st.headline_r2_per_s, sigma_est=float(res.noise.sigma), coils_est=int(res.noise.coils),
                   roi_voxels=int(np.count_nonzero(res.roi.mask)),
                   roi_nonliver=int(np.count_nonzero(res.roi.mask & ~mask)))
        sigma, coils = float(res.noise.sigma), int(res.noise.coils)
    else:
        fit = r2mri.fit(ph.image, noise_sigma=sigma_true, coils=coils_true)
        sigma, coils = sigma_true, coils_true
    row["cpu_analyze_s"] = time.process_time() - t0
    st = liver_statistics(fit, mask, image=ph.image, noise_sigma=sigma, coils=coils)
    d = st.to_dict()
    h = d["headline"]
    mx = h["mixture"]
    raw = pooled_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils)
    head = float(st.headline_r2_per_s)
    fit_bias = float(mx["tile_fit_bias_r2_per_s"])
    row.update(
        mask_lic=float(st.headline_lic_mg_per_g), mask_ci=list(st.ci95_lic_mg_per_g), mask_r2=head,
        mask_ci_r2=list(d["r2_per_s"]["headline_ci95"]),
        raw_r2=float(raw.mean_r2_per_s), raw_se_r2=float(raw.se_r2_per_s),
        after_fit_bias_r2=float(raw.mean_r2_per_s) - fit_bias, fit_bias_r2=fit_bias,
        fit_bias_sim_r2=float(mx["tile_fit_bias_simulated_r2_per_s"]),
        fit_bias_skipped=float(mx["tile_fit_bias_skipped_fraction"]),
        spread_correction_r2=head - (float(raw.mean_r2_per_s) - fit_bias),
        rho=mx["rho_by_tile_size"], rho_se=mx["rho_se_by_tile_size"], misfit=mx["misfit_tile_sizes"],
        se_meas_r2=d["r2_per_s"]["headline_se_measurement"], se_boot_r2=d["r2_per_s"]["headline_se_bootstrap"],
        se_spread_r2=mx["se_spread_r2_per_s"], se_shape_r2=mx["se_shape_r2_per_s"],
        shape_diff_r2=mx["shape_difference_r2_per_s"], tile_sizes=h["tile_sizes"])
    row["mask_lic_raw"] = float(lic_from_r2(row["raw_r2"]))
    row["cpu_total_s"] = time.process_time() - t0
    return row


def sb_cal(fit):
    """The default calibration, as ``analyze`` resolves it."""
    from r2mri import calibration

    return calibration.get_calibration(calibration.DEFAULT_CALIBRATION)


def pct(v, ref):
    return 100.0 * (v / ref - 1.0)


def summarise(rows: list) -> dict:
    out = {}

    def ms(x):
        x = np.asarray(x, float)
        return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan"), \
            float(x.std(ddof=1)) if x.size > 1 else float("nan")

    keys = [("mask_lic", "truth_lic"), ("mask_lic_raw", "truth_lic")]
    if "auto_lic" in rows[0]:
        keys[:0] = [("auto_before_lic", "truth_lic"), ("auto_lic", "truth_lic")]
        out["auto_minus_before_pct"] = ms([pct(r["auto_lic"], r["truth_lic"]) - pct(r["auto_before_lic"], r["truth_lic"])
                                           for r in rows])
    for k, ref in keys:
        out[k + "_err_pct"] = ms([pct(r[k], r[ref]) for r in rows])
    for k in ("raw_r2", "after_fit_bias_r2", "mask_r2"):
        out[k + "_err_pct"] = ms([pct(r[k], r["truth_r2"]) for r in rows])
    for k in ("fit_bias_r2", "spread_correction_r2"):
        out[k + "_pct"] = ms([100 * r[k] / r["truth_r2"] for r in rows])
    out["rho"] = ms([float(np.mean(list(r["rho"].values()))) for r in rows])
    for ci, lic in (("mask_ci", "mask_lic"), ("auto_before_ci", "auto_before_lic"), ("auto_ci", "auto_lic")):
        if ci not in rows[0]:
            continue
        cover = sum(r[ci][0] <= r["truth_lic"] <= r[ci][1] for r in rows)
        half = np.array([(r[ci][1] - r[ci][0]) / 2 / r["truth_lic"] * 100 for r in rows])
        out[ci + "_coverage"] = [int(cover), len(rows)]
        out[ci + "_half_width_pct"] = float(half.mean())
    out["se_meas_pct"] = float(np.mean([100 * r["se_meas_r2"] / r["truth_r2"] for r in rows]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--spec", default=SPEC)
    ap.add_argument("--no-analyze", action="store_true", help="fit with the true sigma, true mask only")
    ap.add_argument("--set", nargs="*", default=[], help="phantom overrides key=value (float)")
    ap.add_argument("--out", default=str(RESULTS / "snr10.json"))
    a = ap.parse_args(argv)
    overrides = {k: (float(v) if v.replace(".", "").replace("-", "").isdigit() else v)
                 for k, v in (s.split("=", 1) for s in a.set)}
    overrides = {k: (int(v) if k in ("coils",) else v) for k, v in overrides.items()}
    rows = []
    for seed in a.seeds:
        r = one(seed, a.spec, analyze=not a.no_analyze, **overrides)
        rows.append(r)
        auto = (f"auto before {pct(r['auto_before_lic'], r['truth_lic']):+.2f} % "
                f"[{pct(r['auto_before_ci'][0], r['truth_lic']):+.2f}, {pct(r['auto_before_ci'][1], r['truth_lic']):+.2f}] "
                f"after {pct(r['auto_lic'], r['truth_lic']):+.2f} % [{pct(r['auto_ci'][0], r['truth_lic']):+.2f}, "
                f"{pct(r['auto_ci'][1], r['truth_lic']):+.2f}] sigma {pct(r['sigma_est'], r['sigma_true']):+.3f} % | "
                if "auto_lic" in r else "")
        print(f"seed {seed}: {auto}mask {pct(r['mask_lic'], r['truth_lic']):+.2f} % "
              f"[{pct(r['mask_ci'][0], r['truth_lic']):+.2f}, {pct(r['mask_ci'][1], r['truth_lic']):+.2f}] | R2: raw "
              f"{pct(r['raw_r2'], r['truth_r2']):+.3f} fitbias-corr {pct(r['after_fit_bias_r2'], r['truth_r2']):+.3f} "
              f"head {pct(r['mask_r2'], r['truth_r2']):+.3f} % rho {r['rho']} +- {r['rho_se']} misfit {r['misfit']} "
              f"se_meas {100 * r['se_meas_r2'] / r['truth_r2']:.3f} % se_spread {r['se_spread_r2']:.3f} "
              f"cpu {r['cpu_total_s']:.1f} s", flush=True)
    s = summarise(rows)
    for k, v in s.items():
        print(f"== {k}: {v}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"rows": rows, "summary": s}, indent=1, default=float))


if __name__ == "__main__":
    main()
