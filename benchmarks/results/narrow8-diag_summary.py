"""Summary (branch narrow8): uniform small livers, seeds 0-39 (grid24) against fresh seeds 40-159.

For each cell: tile-mixture coverage, seed SD of the R2 error against the interval's implied SD
(median half-width / 1.96), the ratio, and the chi-square P of a seed SD that large if the
interval's SD were right; then how alike the three 8-channel cells are on seeds 0-39 (they draw
the same standard-normal stream per seed: only sigma and the signal differ).
Run: python benchmarks/results/narrow8-diag_summary.py (from the repository root)
"""
import json

import numpy as np
from scipy import stats

R = "benchmarks/results/"
CELLS = {"30 mg/g SNR 50 8 ch": ("hetero_grid-diag_uniform30-snr50", "narrow8-diag_uniform30-snr50-s40-159"),
         "30 mg/g SNR 100 8 ch": ("hetero_grid-diag_uniform30-snr100", "narrow8-diag_uniform30-snr100-s40-159"),
         "7 mg/g SNR 100 8 ch": ("hetero_grid-diag_uniform7-snr100", "narrow8-diag_uniform7-snr100-s40-159"),
         "30 mg/g SNR 50 1 ch": ("hetero_grid-diag_uniform30-snr50-1ch", "narrow8-diag_uniform30-snr50-1ch-s40-159")}


def load(name):
    return [json.loads(l)["tile-mixture"] | {"seed": json.loads(l)["seed"]} for l in open(R + name + ".jsonl")
            if l.startswith("{")]


def line(rows):
    e = np.array([r["err_r2_pct"] for r in rows])
    imp = np.median([r["half_r2_pct"] for r in rows]) / 1.96
    sd = e.std(ddof=1)
    p = stats.chi2.sf((e.size - 1) * sd**2 / imp**2, e.size - 1)
    cov = sum(r["covered"] for r in rows)
    return f"{cov}/{len(rows)} covered, seed SD {sd:.3f} vs implied {imp:.3f} % (ratio {sd / imp:.2f}, P {p:.3f})"


errs = {}
for cell, (old, new) in CELLS.items():
    a, b = load(old), load(new)
    errs[cell] = np.array([r["err_r2_pct"] for r in a])
    print(f"{cell}: seeds 0-39 {line(a)}; seeds 40-159 {line(b)}; all {line(a + b)}")
k = [c for c in CELLS if "8 ch" in c]
print("seeds 0-39, correlation of the per-seed R2 errors between 8-channel cells:",
      {f"{k[i][:15]} / {k[j][:15]}": round(float(np.corrcoef(errs[k[i]], errs[k[j]])[0, 1]), 2)
       for i in range(3) for j in range(i + 1, 3)})
vm = [json.loads(l) for l in open(R + "narrow8-diag_voxelmean_seeds-8ch-snr50-s0-239.jsonl")]
e = np.array([r["err_pct"] for r in vm]); se = np.array([r["se_pct"] for r in vm])
for lo, hi in ((0, 40), (40, 240)):
    print(f"voxel-mean ncchi R2, 8 ch SNR 50, seeds {lo}-{hi - 1}: seed SD / median naive SE "
          f"{e[lo:hi].std(ddof=1) / np.median(se[lo:hi]):.2f}")
s = np.array([100 * (r["sigma_est"] / r["sigma_true"] - 1) for r in vm])
sse = np.array([100 * r["sigma_se"] / r["sigma_true"] for r in vm])
print(f"estimate_noise on the same 240 images: sigma error {s.mean():+.3f} % (SD {s.std(ddof=1):.3f} %, "
      f"reported SE {np.median(sse):.3f} %), coils {sorted({r['coils_est'] for r in vm})}, "
      f"ML coils {np.mean([r['coils_ml'] for r in vm]):.3f} (SD {np.std([r['coils_ml'] for r in vm], ddof=1):.3f}); "
      f"correlation with the voxel-mean error {np.corrcoef(s, e)[0, 1]:+.2f}")
