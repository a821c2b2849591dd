"""Fat-water BELOW_NOISE against the channel count and the fit: pure noise, the echo rule, GRE phantoms.

Run: ``python -m benchmarks.fatwater_below_noise [--part noise|rules|status|phantoms|all]
[--cases NAME,..] [--seeds 0,1,..] [--out FILE]`` from the repository root
(``NUMBA_NUM_THREADS=1`` on a shared machine). For a before/after comparison run
``--part phantoms`` twice on the same seeds, once with the older tree first on ``PYTHONPATH``.

- ``noise``: 4000 voxels of pure root-sum-of-squares noise (sigma 10) through
  ``r2mri.fit(model="fatwater", noise_sigma=10, coils=n)``, 6 and 12 echoes (1.5 T train of
  the shipped phantoms), n = 1, 2, 4, 8, magnitude and complex (phase of one channel): the
  BELOW_NOISE fraction against the expected one, ``pure_noise_below_probability(m, p)``
  (r2mri.fatwater._kernels: fewer than 3 echoes in the leading run, one echo below allowed;
  echoes of pure noise are independent and pass with ``p = exp(-k^2/2)`` at every n,
  r2mri.noise.noise_floor_threshold), with its binomial SE; the former "any 3 echoes" rule
  (``binom.cdf(2, m, p)``), the fixed ``k_sigma * sigma`` threshold and the leading-3 rule
  counted on the same data.
- ``rules``: three echo rules counted in numpy on simulated fat-water voxels (the rule is a
  function of the data only): "run" (the fits' rule: the leading run, one echo below the
  threshold allowed), "any 3" (the former rule) and "leading 3" (the first 3 echoes all
  above); 1.5 and 3 T trains of 6 and 12 echoes, R2* 50-1500 s^-1, PDFF 0-45 %, SNR 20 and
  50, 1 and 8 channels, 4000 voxels each; rows where they differ by > 0.02, with the count
  of echoes whose noise-free E[M] exceeds the threshold.
- ``status``: what the rule does to the fit's answer: 3000 voxels per cell through the
  magnitude fit (sigma, coils given), R2* 100-1500 s^-1, PDFF 15 and 45 %, SNR 20 and 50, 1
  and 8 channels, both trains at 6 and 12 echoes; per rule the fraction of voxels OK, OK
  with |R2* error| > 25 % ("OK and wrong"), and within 10 % but flagged ("good flagged").
  The "any 3" status is rebuilt from the same fit (BOUND_HIT where R2* sits on a bound).
- ``phantoms``: the shipped ``gre-*.toml`` phantoms at 1 and 8 channels and the GRE
  high-iron case (30 mg/g, 1.5 T, SNR 20) through :func:`r2mri.analyze` with the reader's
  outline (as ``r2mri demo``): liver status fractions, headline LIC and PDFF against the
  truth, the noise/range warnings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SIGMA = 10.0
N_VOX = 4000
TE_15 = 0.0012 + 0.001 * np.arange(12)  # 1.5 T train of the shipped GRE phantoms (12 echoes)
TE_3 = 0.0010 + 0.0008 * np.arange(12)  # 3 T train

#: name -> (spec, noise seed, overrides); every case on a 128 x 128 x 3 grid, 3 mm pixels.
#: The phantoms carry phase images, so ``analyze`` fits them complex (BELOW_NOISE there
#: since branch fwbelow); the ``_mag`` cases drop the phase (magnitude-only GRE).
_BASE = {
    **{f"{spec}_c{c}": (spec, 0, {"coils": c}) for spec in
       ("gre-1.5t-fat15-lic3.2", "gre-1.5t-fat40-lic7-12echo", "gre-1.5t-lic3.2", "gre-3t-fat15-lic3.2")
       for c in (1, 8)},
    **{f"gre-1.5t-lic30-snr20_c{c}": ("gre-1.5t-fat15-lic3.2", 0, {"lic_mg_per_g": 30.0, "snr": 20.0, "coils": c})
       for c in (1, 8)},
}
CASES = {**{k + suffix: v for k, v in _BASE.items() for suffix in ("_mag", "")}}


def _rss_noise(coils, m, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, SIGMA, (N_VOX, m, coils, 2))
    return np.sqrt(np.sum(z * z, axis=(2, 3)))


def _rss_noise_phase(coils, m, seed):
    """RSS magnitude of pure noise and the phase of channel 0 (a coil combination's phase
    of pure noise is uniform, as this one)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, SIGMA, (N_VOX, m, coils, 2))
    return np.sqrt(np.sum(z * z, axis=(2, 3))), np.arctan2(z[..., 0, 1], z[..., 0, 0])


def run_count(above):
    """Echoes in the leading run (one echo below allowed, two end it), per row of ``above``
    (numpy twin of r2mri.fatwater._kernels._signal_echoes, for counting rules on data)."""
    n = np.zeros(above.shape[0], int)
    alive = np.ones(above.shape[0], bool)
    miss = np.zeros(above.shape[0], int)
    for k in range(above.shape[1]):
        n += above[:, k] & alive
        miss = np.where(above[:, k], 0, miss + 1)
        alive &= miss < 2
    return n


def part_noise():
    import r2mri
    from scipy import stats

    from r2mri.fatwater._kernels import pure_noise_below_probability
    from r2mri.noise import noise_floor_threshold
    from r2mri.status import FitStatus

    p = float(np.exp(-2.0))  # k_sigma = 2
    rows = []
    for m in (6, 12):
        te = TE_15[:m]
        expect = pure_noise_below_probability(m, p)
        any3 = float(stats.binom.cdf(2, m, p))
        se = float(np.sqrt(expect * (1 - expect) / N_VOX))
        for coils in (1, 2, 4, 8):
            y, ph = _rss_noise_phase(coils, m, 100 * m + coils)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = r2mri.fit(y.reshape(N_VOX, 1, 1, m), te, model="fatwater", field_strength_t=1.5,
                                noise_sigma=SIGMA, coils=coils)
                resc = r2mri.fit(y.reshape(N_VOX, 1, 1, m), te, model="fatwater", field_strength_t=1.5,
                                 noise_sigma=SIGMA, coils=coils, phase_rad=ph.reshape(N_VOX, 1, 1, m))
            frac = float(np.mean(res.status == FitStatus.BELOW_NOISE))
            fracc = float(np.mean(resc.status == FitStatus.BELOW_NOISE))
            badc = float(np.mean(resc.status == FitStatus.BAD_INPUT))
            old = float(np.mean(np.sum(y > 2.0 * SIGMA, axis=1) < 3))
            thr = noise_floor_threshold(2.0, coils)
            any3_data = float(np.mean(np.sum(y > thr * SIGMA, axis=1) < 3))
            lead = float(np.mean(~np.all(y[:, :3] > thr * SIGMA, axis=1)))
            rows.append({"echoes": m, "coils": coils, "threshold_sigma": thr, "below_noise": frac,
                         "below_noise_complex": fracc, "bad_input_complex": badc,
                         "expected": expect, "binomial_se": se, "any3_rule": any3_data, "any3_expected": any3,
                         "fixed_2sigma_threshold_any3": old, "leading3_rule": lead})
            print(f"| {m} | {coils} | {thr:.2f} | {frac:.4f} | {fracc:.4f} (+{badc:.4f} bad input) | "
                  f"{expect:.4f} +- {se:.4f} | {any3_data:.4f} | {old:.4f} | {lead:.4f} |", flush=True)
    return rows


def part_rules():
    from r2mri.fatwater import load_fat_spectrum
    from r2mri.noise import noise_floor_threshold

    from r2mri.noise import ncchi_mean

    spec = load_fat_spectrum()
    rows = []
    for m in (6, 12):
        for field, te_all in ((1.5, TE_15), (3.0, TE_3)):
            te = te_all[:m]
            c = spec.basis(te, field)
            for r2 in (50.0, 200.0, 500.0, 800.0, 1000.0, 1500.0):
                for pdff in (0.0, 15.0, 30.0, 45.0):
                    s = np.abs(((100.0 - pdff) + pdff * c) * np.exp(-r2 * te))
                    for snr in (20.0, 50.0):
                        sig = 100.0 / snr
                        for coils in (1, 8):
                            rng = np.random.default_rng(7)
                            z = (rng.normal(0, sig, (N_VOX, coils, m))
                                 + 1j * rng.normal(0, sig, (N_VOX, coils, m)))
                            z[:, 0, :] += s  # RSS of n channels: the signal may sit in one
                            y = np.sqrt(np.sum(np.abs(z) ** 2, axis=1))
                            thr = noise_floor_threshold(2.0, coils) * sig
                            above = y > thr
                            any3 = float(np.mean(above.sum(axis=1) < 3))
                            lead3 = float(np.mean(~above[:, :3].all(axis=1)))
                            run = float(np.mean(run_count(above) < 3))
                            n_sig = int(np.sum(ncchi_mean(s, sig, coils) > thr))
                            row = {"echoes": m, "field_t": field, "r2_per_s": r2, "pdff": pdff, "snr": snr,
                                   "coils": coils, "run": run, "any3": any3, "leading3": lead3,
                                   "echoes_expected_above": n_sig,
                                   "noise_free_over_sigma": np.round(s / sig, 1).tolist()}
                            rows.append(row)
                            if max(run, any3, lead3) - min(run, any3, lead3) > 0.02:
                                print(f"| {m} | {field} | {r2:.0f} | {pdff:.0f} | {snr:.0f} | {coils} | {n_sig} | "
                                      f"{run:.3f} | {any3:.3f} | {lead3:.3f} |", flush=True)
    return rows


def part_status():
    import r2mri
    from r2mri.fatwater import load_fat_spectrum
    from r2mri.noise import noise_floor_threshold
    from r2mri.status import FitStatus

    spec = load_fat_spectrum()
    n = 3000
    rows = []
    for field, te_all in ((1.5, TE_15), (3.0, TE_3)):
        for m in (6, 12):
            te = te_all[:m]
            c = spec.basis(te, field)
            for r2 in (100.0, 300.0, 500.0, 800.0, 1000.0, 1500.0):
                for pdff in (15.0, 45.0):
                    s = np.abs(((100.0 - pdff) + pdff * c) * np.exp(-r2 * te))
                    for snr in (20.0, 50.0):
                        sig = 100.0 / snr
                        for coils in (1, 8):
                            rng = np.random.default_rng(11)
                            z = rng.normal(0, sig, (n, coils, m)) + 1j * rng.normal(0, sig, (n, coils, m))
                            z[:, 0, :] += s
                            y = np.sqrt(np.sum(np.abs(z) ** 2, axis=1))
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore")
                                res = r2mri.fit(y.reshape(n, 1, 1, m), te, model="fatwater", field_strength_t=field,
                                                noise_sigma=sig, coils=coils)
                            st = res.status.ravel()
                            r = res.r2_per_s.ravel().astype(np.float64)
                            lo, hi = res.options["r2_bounds_per_s"]
                            above = y > noise_floor_threshold(2.0, coils) * sig
                            under = np.where((r <= lo) | (r >= hi), FitStatus.BOUND_HIT, FitStatus.OK)
                            under = np.where(st == FitStatus.BELOW_NOISE, under, st)  # the status without the floor test
                            any3 = np.where(above.sum(axis=1) < 3, FitStatus.BELOW_NOISE, under)
                            err = np.abs(r / r2 - 1)
                            row = {"field_t": field, "echoes": m, "r2_per_s": r2, "pdff": pdff, "snr": snr,
                                   "coils": coils, "good_fraction": float(np.mean(err <= 0.10))}
                            for name, sv in (("run", st), ("any3", any3)):
                                ok = sv == FitStatus.OK
                                row[name] = {"ok": float(np.mean(ok)), "ok_wrong": float(np.mean(ok & (err > 0.25))),
                                             "good_flagged": float(np.mean((err <= 0.10) & (sv == FitStatus.BELOW_NOISE)))}
                            rows.append(row)
                            a, b = row["run"], row["any3"]
                            print(f"| {field} | {m} | {r2:.0f} | {pdff:.0f} | {snr:.0f} | {coils} | "
                                  f"{a['ok']:.3f} / {b['ok']:.3f} | {a['ok_wrong']:.3f} / {b['ok_wrong']:.3f} | "
                                  f"{a['good_flagged']:.3f} / {b['good_flagged']:.3f} | {row['good_fraction']:.3f} |",
                                  flush=True)
    return rows


def run_case(name, seed=None):
    import r2mri
    from r2mri import phantom
    from r2mri.report import report_dict
    from r2mri.status import FitStatus

    spec, seed0, ov = CASES[name]
    seed = seed0 if seed is None else int(seed)
    ph = phantom.generate(spec, seed=seed, matrix=(128, 128), pixel_mm=3.0, n_slices=3, **ov)
    img = ph.image if not name.endswith("_mag") else dataclasses.replace(ph.image, phase_rad=None)
    labels = ph.truth.labels
    outline = (labels == phantom.LABELS["liver"]) | (labels == phantom.LABELS["vessel"])
    liver = labels == phantom.LABELS["liver"]
    t0 = time.process_time()
    # 3 T: the field-scaled bridge curve (no validated 3 T R2* curve ships; the phantom's truth)
    cal = {"calibration": "hernando-2022-r2star-3t-scaled"} if img.field_strength_t > 2 else {}
    res = r2mri.analyze(img, mask=outline, **cal)
    cpu = time.process_time() - t0
    st = np.asarray(res.fit.status)
    rep = report_dict(res)
    lic = rep["lic_mg_per_g"]
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    head = lic.get("of_mean_r2")
    ci = lic.get("ci95") or [None, None]
    pdff = (rep.get("pdff_percent") or {}).get("median")
    n = max(int(liver.sum()), 1)
    return {
        "case": name, "spec": spec, "seed": seed, "overrides": ov, "truth_lic": truth,
        "truth_pdff": ph.summary.get("mean_liver_pdff_percent"),
        "fit": res.fit.options.get("fit"), "coils": res.fit.options.get("coils"),
        "noise_sigma": res.fit.options.get("noise_sigma"),
        "noise_threshold_sigma": res.fit.options.get("noise_threshold_sigma"),
        "status_liver": {c.name.lower(): float(np.count_nonzero(st[liver] == c)) / n for c in FitStatus
                         if np.any(st[liver] == c)},
        "headline_lic": head, "headline_error_pct": None if head is None else 100 * (head / truth - 1),
        "ci95_lic": ci, "pdff_median": pdff,
        "qc_fraction_beyond_r2_range": (rep.get("qc") or {}).get("fraction_beyond_r2_range"),
        "qc_fraction_tiles_at_noise_floor": (rep.get("qc") or {}).get("fraction_tiles_at_noise_floor"),
        "warnings": [w for w in res.warnings if any(k in w.lower() for k in
                                                   ("noise", "floor", "range", "lower bound", "beyond"))],
        "n_warnings": len(res.warnings), "cpu_s": cpu, "load_1min": os.getloadavg()[0],
    }


def part_phantoms(names, seeds=(None,)):
    rows = []
    for name, seed in ((nm, sd) for sd in seeds for nm in names):
        r = run_case(name, seed)
        rows.append(r)
        h = r["headline_error_pct"]
        print(f"{name} seed {r['seed']}: thr {r['noise_threshold_sigma']} liver below_noise "
              f"{r['status_liver'].get('below_noise', 0):.4f} ok {r['status_liver'].get('ok', 0):.4f}; "
              f"headline {r['headline_lic']} ({'none' if h is None else f'{h:+.2f} %'}) truth {r['truth_lic']:.2f} "
              f"ci {r['ci95_lic']}; PDFF {r['pdff_median']} (truth {r['truth_pdff']}); "
              f"warnings {len(r['warnings'])}/{r['n_warnings']}: {r['warnings']}; cpu {r['cpu_s']:.1f} s "
              f"load {r['load_1min']:.1f}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=("noise", "rules", "status", "phantoms", "all"))
    ap.add_argument("--cases", default="all")
    ap.add_argument("--seeds", default=None, help="comma-separated noise seeds of the phantoms (default: each case's)")
    ap.add_argument("--out", default=str(RESULTS / "fatwater_below_noise.json"))
    a = ap.parse_args(argv)
    import r2mri

    out = {"r2mri": r2mri.__file__}
    if a.part in ("noise", "all"):
        print("| echoes | coils | threshold (sigma) | BELOW_NOISE magnitude | complex | expected +- SE | any-3 rule "
              "| any 3 at fixed 2 sigma | leading-3 rule |")
        print("|---|---|---|---|---|---|---|---|---|")
        out["noise"] = part_noise()
    if a.part in ("rules", "all"):
        print("| echoes | field T | R2* | PDFF | SNR | coils | echoes E[M] > thr | run (the rule) | any-3 | leading-3 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        out["rules"] = part_rules()
    if a.part in ("status", "all"):
        print("| field T | echoes | R2* | PDFF | SNR | coils | OK run / any-3 | OK and wrong (> 25 %) | "
              "good (<= 10 %) flagged | good |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        out["status"] = part_status()
    if a.part in ("phantoms", "all"):
        seeds = (None,) if a.seeds is None else tuple(int(v) for v in a.seeds.split(","))
        out["phantoms"] = part_phantoms(list(CASES) if a.cases == "all" else a.cases.split(","), seeds)
    out["load_1min"] = os.getloadavg()[0]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
