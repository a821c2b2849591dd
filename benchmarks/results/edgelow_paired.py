"""Branch edgelow: paired before/after summary of two benchmarks.autogrid results files (same livers).

Run: python -m benchmarks.results.edgelow_paired BEFORE.json AFTER.json"""

from __future__ import annotations

import json
import sys

import numpy as np


def _ms(x):
    x = np.asarray(x, float)
    return f"{x.mean():+.2f} +- {x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float('nan'):.2f}"


def main(argv) -> int:
    b = {r["k"]: r for r in json.load(open(argv[0]))["rows"]}
    a = {r["k"]: r for r in json.load(open(argv[1]))["rows"]}
    ks = sorted(set(a) & set(b))
    for cell in sorted({a[k]["cell"] for k in ks}):
        kk = [k for k in ks if a[k]["cell"] == cell]
        g = lambda d, f: [f(d[k]["automatic"]) for k in kk]  # noqa: E731
        hb, ha = g(b, lambda r: r["headline_error_pct"]), g(a, lambda r: r["headline_error_pct"])
        print(f"{cell} n {len(kk)} (k {kk[0]}-{kk[-1]}): headline {_ms(hb)} -> {_ms(ha)} %, paired diff "
              f"{_ms(np.subtract(ha, hb))}; sel {_ms(g(b, lambda r: r['pool_truth_error_pct']))} -> "
              f"{_ms(g(a, lambda r: r['pool_truth_error_pct']))}; covered {sum(g(b, lambda r: r['covers']))}/{len(kk)}"
              f" -> {sum(g(a, lambda r: r['covers']))}/{len(kk)}; half-width "
              f"{np.mean(g(b, lambda r: (r['ci95_pct'][1] - r['ci95_pct'][0]) / 2)):.2f} -> "
              f"{np.mean(g(a, lambda r: (r['ci95_pct'][1] - r['ci95_pct'][0]) / 2)):.2f} %; Dice "
              f"{np.mean(g(b, lambda r: r['dice_roi_liver'])):.3f} -> {np.mean(g(a, lambda r: r['dice_roi_liver'])):.3f};"
              f" non-liver in ROI {np.mean(g(b, lambda r: r['non_liver_voxels_in_roi'])):.0f} -> "
              f"{np.mean(g(a, lambda r: r['non_liver_voxels_in_roi'])):.0f}; red {sum(map(len, g(b, lambda r: r['red_warnings'])))}"
              f" -> {sum(map(len, g(a, lambda r: r['red_warnings'])))}; outline same "
              f"{all(a[k]['outline']['headline_error_pct'] == b[k]['outline']['headline_error_pct'] for k in kk)}")
        for k in kk:
            wb, wa = ({w[:60] for w in d[k]["automatic"]["red_warnings"]} for d in (b, a))
            if wb != wa:
                print(f"  k {k} red gone: {[w[:90] for w in wb - wa]} new: {[w[:90] for w in wa - wb]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
