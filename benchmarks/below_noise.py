"""BELOW_NOISE status against the channel count: before/after the channel-aware floor test.

Run: ``python -m benchmarks.below_noise [--cases all|NAME,..] [--out FILE] [--masks DIR]``
from the repository root (``NUMBA_NUM_THREADS=1`` on a shared machine; ~20-40 s per
phantom). For a before/after comparison run it twice on the same seeds, once with the
older tree first on ``PYTHONPATH``; ``--masks DIR`` stores each ROI mask and status map
(npz) so that two runs can be compared voxel by voxel (``--compare DIR_A DIR_B``).

Each case is one phantom through :func:`r2mri.analyze` (as ``r2mri analyze`` runs it).
Per case: the noise estimate, the fit-status fractions over the true liver (without
vessels) and over the ROI, the fraction of liver voxels whose noise-free second echo is
below 1 sigma (their decay is at the floor whatever the fit says), the headline LIC and
its 95 % interval against the truth (LIC of the mean true liver R2), the ROI's Dice with
the true liver and its non-liver voxels, and the warnings about the noise floor.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

#: name -> (spec, noise seed, overrides)
CASES = {
    **{f"uniform{lic}_snr20_c{c}": ("ferriscan-1.5t-lic7", 1, {"lic_mg_per_g": float(lic), "snr": 20.0, "coils": c})
       for lic in (30, 40) for c in (1, 8)},
    **{f"lowsnr_s{s}": ("low-snr-1.5t-lic7", s, {}) for s in range(5)},
    "focal": ("heterogeneous-focal-1.5t", 0, {}),
    **{f"coarse30_snr20_c8_t{t}": ("heterogeneous-coarse-1.5t", 0,
                                   {"texture_seed": t, "lic_mg_per_g": 30.0, "snr": 20.0, "coils": 8})
       for t in (1, 2)},
    # more noise seeds of the 8-channel high-iron cases (coverage, not one draw)
    **{f"uniform{lic}_snr20_c8_s{s}": ("ferriscan-1.5t-lic7", s, {"lic_mg_per_g": float(lic), "snr": 20.0, "coils": 8})
       for lic in (30, 40) for s in (2, 3, 4, 5)},
    **{f"coarse30_snr20_c8_t{t}_n{n}": ("heterogeneous-coarse-1.5t", n,
                                        {"texture_seed": t, "lic_mg_per_g": 30.0, "snr": 20.0, "coils": 8})
       for t in (1, 2) for n in (1, 2)},
    **{f"uniform{lic:g}_snr50_c4": ("ferriscan-1.5t-lic7", 0, {"lic_mg_per_g": float(lic), "snr": 50.0, "coils": 4})
       for lic in (0.5, 1.8, 3.2, 7.0, 15.0, 30.0, 40.0)},
}


def run_case(name: str, masks: "Path | None") -> dict:
    import r2mri
    from r2mri import phantom
    from r2mri.status import FitStatus

    spec, seed, ov = CASES[name]
    ph = phantom.generate(spec, seed=seed, **ov)
    t0 = time.process_time()
    res = r2mri.analyze(ph.image)
    cpu = time.process_time() - t0
    liver = ph.truth.liver_mask & (ph.truth.labels != phantom.LABELS["vessel"])
    st = np.asarray(res.fit.status)
    roi = np.asarray(res.roi.mask, dtype=bool)
    sigma = float(res.fit.options["noise_sigma"])

    def fractions(region):
        n = max(int(region.sum()), 1)
        return {c.name.lower(): float(np.count_nonzero(st[region] == c)) / n for c in FitStatus
                if np.any(st[region] == c)}

    nf = np.asarray(ph.noise_free, dtype=np.float64)
    echo2_below_sigma = float(np.mean(nf[..., 1][liver] < sigma))
    s = res.statistics
    h = float(s.headline_lic_mg_per_g)
    lo, hi = (float(v) for v in s.ci95_lic_mg_per_g)
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    lv = ph.truth.liver_mask
    if masks is not None:
        masks.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(masks / f"{name}.npz", roi=roi, status=st)
    return {
        "case": name, "spec": spec, "seed": seed, "overrides": ov, "truth_lic": truth,
        "noise_sigma": sigma, "noise_coils": res.fit.options.get("coils"),
        "noise_threshold_sigma": res.fit.options.get("noise_threshold_sigma"),
        "status_liver": fractions(liver), "status_roi": fractions(roi),
        "liver_echo2_noise_free_below_sigma": echo2_below_sigma,
        "headline_lic": h, "headline_error_pct": 100 * (h / truth - 1),
        "ci95_lic": [lo, hi], "covers": bool(lo <= truth <= hi),
        "dice_roi_liver": 2 * float(np.count_nonzero(roi & lv)) / (roi.sum() + lv.sum()),
        "non_liver_voxels_in_roi": int(np.count_nonzero(roi & ~lv)), "roi_voxels": int(roi.sum()),
        "warnings": [w for w in res.warnings if any(k in w.lower() for k in ("noise", "floor", "range", "lower bound"))],
        "n_warnings": len(res.warnings), "cpu_s": cpu, "load_1min": os.getloadavg()[0],
    }


def compare(a: Path, b: Path) -> None:
    """Voxels whose ROI membership or status differs between two ``--masks`` folders."""
    for fa in sorted(a.glob("*.npz")):
        fb = b / fa.name
        if not fb.exists():
            continue
        A, B = np.load(fa), np.load(fb)
        print(f"{fa.stem}: ROI voxels {int(A['roi'].sum())} -> {int(B['roi'].sum())}, "
              f"ROI differs in {int(np.count_nonzero(A['roi'] != B['roi']))}, "
              f"status differs in {int(np.count_nonzero(A['status'] != B['status']))}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="all")
    ap.add_argument("--out", default=str(RESULTS / "below_noise.json"))
    ap.add_argument("--masks", default=None)
    ap.add_argument("--compare", nargs=2, default=None)
    a = ap.parse_args(argv)
    if a.compare:
        compare(Path(a.compare[0]), Path(a.compare[1]))
        return 0
    import r2mri

    names = list(CASES) if a.cases == "all" else a.cases.split(",")
    rows = []
    for name in names:
        r = run_case(name, Path(a.masks) if a.masks else None)
        rows.append(r)
        print(f"{name}: sigma {r['noise_sigma']:.3g} coils {r['noise_coils']} thr {r['noise_threshold_sigma']} "
              f"liver below_noise {r['status_liver'].get('below_noise', 0):.3f} ok {r['status_liver'].get('ok', 0):.3f} "
              f"(echo2 < sigma {r['liver_echo2_noise_free_below_sigma']:.3f}); roi below_noise "
              f"{r['status_roi'].get('below_noise', 0):.3f}; headline {r['headline_error_pct']:+.2f} % "
              f"[{100 * (r['ci95_lic'][0] / r['truth_lic'] - 1):+.2f}, {100 * (r['ci95_lic'][1] / r['truth_lic'] - 1):+.2f}] "
              f"cover {r['covers']:d}; Dice {r['dice_roi_liver']:.3f} non-liver {r['non_liver_voxels_in_roi']}; "
              f"warnings {len(r['warnings'])}/{r['n_warnings']}; cpu {r['cpu_s']:.1f} s load {r['load_1min']:.1f}",
              flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"r2mri": r2mri.__file__, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
