"""Offline table of ``benchmarks.leftwarn`` (branch leftwarn): the left-out difference on saved fits.

Per saved liver: the headline's error, the fitted left-out difference ``d`` and its LIC shift as
the library computes them, ``d`` from the true R2 over the same masks (all tissue, and liver
only), and where the headline's R2 error comes from: liver outside the candidate, the liver
ring the ROI leaves out inside it, and the non-liver tissue in that ring.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage


def _depth(cand: np.ndarray) -> np.ndarray:
    """In-plane distance (voxels) of each candidate voxel to the candidate's outside."""
    return np.stack([ndimage.distance_transform_edt(cand[:, :, i]) for i in range(cand.shape[2])], -1)


def liver_row(path: Path) -> dict:
    """The numbers of one saved liver (see the module docstring)."""
    from r2mri._left_out_shift import left_out_difference_r2
    from r2mri._left_out_warning import left_out_shift_warning
    from r2mri.calibration import get_calibration, lic_from_r2

    z = np.load(path)
    meta = json.loads(str(z["meta"]))
    cal = get_calibration(None)
    r2, se, rt = (z[k].astype(np.float64) for k in ("r2", "se", "r2_true"))
    roi, cand, npar, liver = z["roi"], z["candidate"], z["non_parenchyma"], z["liver"]
    h = float(meta["headline_r2_per_s"])
    lv = (cand & ~npar) | roi
    u = lv & ~roi
    diff = left_out_difference_r2(r2, se, roi, cand & ~npar)
    shift, warn = left_out_shift_warning(diff, h, cal, automatic=True)
    n_liver = int(liver.sum())
    s_true = float(rt[roi & liver].mean())
    out = liver & ~lv
    ring, ring_other = u & liver, u & ~liver
    depth = _depth(cand)
    deep = u & (depth > 3)

    def part(m):
        return float(np.count_nonzero(m) * (rt[m].mean() - s_true) / n_liver) if m.any() else 0.0

    def bias(m):
        return float((r2[m] - rt[m]).mean()) if m.any() else float("nan")

    lic_h = float(lic_from_r2(h, cal))
    return {"file": path.name, "cell": meta["cell"], "k": meta["k"],
            "error_pct": 100 * (meta["headline_lic_mg_per_g"] / meta["truth"] - 1),
            "headline_r2_per_s": h, "median_rel_se": diff["median_relative_se"], "used": diff["used"],
            "d_fit": diff["difference_r2_per_s"], "d_noise_se": diff["noise_se_r2_per_s"],
            "shift_pct": shift, "warned_main": warn is not None,
            "d_true_all": float(rt[lv].mean() - rt[roi].mean()),
            "d_true_liver": float(rt[lv & liver].mean() - rt[roi & liver].mean()),
            "r2_error_true": float(rt[liver].mean() - s_true),
            "part_outside_candidate": part(out), "part_ring_liver": part(ring),
            "n_outside_candidate": int(out.sum()), "n_ring_liver": int(ring.sum()), "n_ring_other": int(ring_other.sum()),
            "fit_bias_roi": bias(roi), "fit_bias_ring_liver": bias(ring), "fit_bias_ring_other": bias(ring_other),
            "fit_bias_ring_deep": bias(deep), "n_ring_deep": int(deep.sum()),
            "lic_per_r2_pct": 100 * (float(lic_from_r2(h + 0.01, cal)) / lic_h - 1) / 0.01,
            "warnings": meta["warnings"]}


def table(directory: Path, name: str = "leftwarn-table") -> int:
    rows = [liver_row(p) for p in sorted(Path(directory).glob("*.npz"))]
    print("liver | err % | rel SE | d fit / true(all) / true(liver) s^-1 | shift % (warns here) | R2 error: "
          "outside cand / ring liver | fit bias ROI / ring liver / ring other (n) / ring deep")
    for r in rows:
        print(f"{r['cell']} k {r['k']} | {r['error_pct']:+.2f} | {r['median_rel_se']:.3f} | {r['d_fit']:+.3f} / "
              f"{r['d_true_all']:+.3f} / {r['d_true_liver']:+.3f} | "
              f"{(r['shift_pct'] if r['shift_pct'] is not None else float('nan')):+.2f} ({int(r['warned_main'])}) | "
              f"{r['r2_error_true']:+.3f}: {r['part_outside_candidate']:+.3f} / {r['part_ring_liver']:+.3f} | "
              f"{r['fit_bias_roi']:+.3f} / {r['fit_bias_ring_liver']:+.3f} / {r['fit_bias_ring_other']:+.2f} "
              f"({r['n_ring_other']}) / {r['fit_bias_ring_deep']:+.3f}", flush=True)
    for line in summary(rows):
        print(line)
    err = [r for r in rows if r["used"] and r["shift_pct"] is not None and r["cell"].startswith("sd0.4_w")
           and "_lic1_snr20_" in r["cell"] and "_w1_" not in r["cell"]]
    gap = np.array([r["error_pct"] + r["shift_pct"] for r in err])
    part = np.array([r["part_outside_candidate"] / r["r2_error_true"] for r in err if r["r2_error_true"] < -0.2])
    print(f"coarse / texture-4 1 mg/g SNR 20 (n {len(err)}): error + shift {gap.min():+.2f} to {gap.max():+.2f} "
          f"(mean {gap.mean():+.2f}, SD {gap.std(ddof=1):.2f}); share of the R2 error from liver outside the "
          f"candidate where it is < -0.2 s^-1: {part.min():.2f}-{part.max():.2f} (n {part.size})")
    out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.write_text(json.dumps(rows, indent=1))
    return 0


def _warns(r: dict, limit: float) -> bool:
    """Whether the left-out warning fires on saved row ``r`` at the LIC-shift limit ``limit`` (%)."""
    s = r["shift_pct"]
    return bool(r["used"] and s is not None and abs(s) > limit
                and abs(r["d_fit"]) > 2.0 * r["d_noise_se"])


def summary(rows: list[dict], limits=(2.0, 1.25)) -> list[str]:
    """Detection (livers reading > +2 %) and false alarms (within +-1 %) at each limit, by set."""
    def kind(r):
        c = r["cell"]
        if c.startswith("sd0_"):
            return "uniform"
        if "_w1_" in c:
            return "fine (w1)"
        if 9000 <= r["k"] <= 9031:
            return "corner (w8)"
        return "coarse/texture-4 (w8, w4)"

    lines = []
    for lo, hi, what in ((2.0, 99, "> +2 %"), (1.0, 2.0, "+1..+2 %"), (-1.0, 1.0, "within +-1 %"),
                         (-99, -1.0, "< -1 %")):
        for name in dict.fromkeys(kind(r) for r in rows):
            rs = [r for r in rows if kind(r) == name and lo < r["error_pct"] <= hi]
            if not rs:
                continue
            gate = [r for r in rs if r["used"]]
            cnt = " ".join(f"limit {t:g}: {sum(_warns(r, t) for r in rs)}/{len(rs)}" for t in limits)
            sh = [abs(r["shift_pct"]) for r in gate]
            lines.append(f"{what:13s} {name:26s} n {len(rs):2d} (gate open {len(gate)}) warned {cnt}; |shift| "
                         + (f"{min(sh):.2f}-{max(sh):.2f}" if sh else "-")
                         + "; k " + ",".join(str(r["k"]) for r in rs))
    return lines
