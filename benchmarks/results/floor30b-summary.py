"""Branch floor30b: 30 mg/g, SNR 20 autogrid cells on main f8dd6f9, n livers per cell, with the
lead's merged-tree livers of the same cells (autogrid-merged25.json, k 800-815; library identical:
cfb8dd9 -> f8dd6f9 changed tests only) pooled in. Per cell and ROI kind: mean +- SE, t = mean / SE,
coverage, median half-width, sel / est, share of ROI voxels at the noise floor (analyze's qc line).

Run from the repository root: ``python benchmarks/results/floor30b-summary.py``."""
import json
import re
import sys
from pathlib import Path

import numpy as np

R = Path(__file__).resolve().parent
FILES = [R / "floor30b-autogrid.json", R / "autogrid-merged25.json"]
CELLS = ["sd0.4_w1_lic30_snr20_c1", "sd0.4_w1_lic30_snr20_c8", "sd0.4_w8_lic30_snr20_c1",
         "sd0.4_w8_lic30_snr20_c8", "sd0_w0_lic30_snr20_c1", "sd0_w0_lic30_snr20_c8"]


def floor_share(r):
    for w in r["automatic"]["all_warnings"]:
        m = re.match(r"qc: ([0-9.]+) % of ROI voxels at the noise floor", w)
        if m:
            return float(m.group(1))
    return 0.0


def ms(v):
    v = np.asarray(v, float)
    return v.mean(), (v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan"))


def main(files):
    rows = []
    for f in files:
        if f.exists():
            rows += [dict(r, src=f.name) for r in json.loads(f.read_text())["rows"]]
    for cell in CELLS:
        rs = [r for r in rows if r["cell"] == cell]
        if not rs:
            continue
        src = {s: sum(r["src"] == s for r in rs) for s in dict.fromkeys(r["src"] for r in rs)}
        print(f"== {cell}: n {len(rs)} {src}; k {min(r['k'] for r in rs)}-{max(r['k'] for r in rs)}")
        fl = np.array([floor_share(r) for r in rs])
        for kind in ("automatic", "outline"):
            e = [r[kind]["headline_error_pct"] for r in rs]
            m, se = ms(e)
            cov = sum(r[kind]["covers"] for r in rs)
            half = np.median([(r[kind]["ci95_pct"][1] - r[kind]["ci95_pct"][0]) / 2 for r in rs])
            lo = np.mean([r[kind]["ci95_pct"][0] for r in rs])
            hi = np.mean([r[kind]["ci95_pct"][1] for r in rs])
            sel, sse = ms([r[kind]["pool_truth_error_pct"] for r in rs])
            est, ese = ms([r[kind]["pool_estimator_error_pct"] for r in rs])
            sd = np.std(e, ddof=1)
            print(f"  {kind:9s} {m:+.2f} +- {se:.2f} % (t {m / se:+.1f}, seed SD {sd:.2f}, range {min(e):+.2f}..{max(e):+.2f})"
                  f" covered {cov}/{len(rs)} median half {half:.2f} % (mean interval {lo:+.2f}..{hi:+.2f})"
                  f" sel {sel:+.2f} +- {sse:.2f} est {est:+.2f} +- {ese:.2f}"
                  f" red {sum(bool(r[kind]['red_warnings']) for r in rs)}")
        print(f"  at-floor share of ROI (analyze's qc line) {fl.mean():.1f} % ({fl.min():.1f}..{fl.max():.1f})")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or FILES)
