"""Branch seedmix: legacy-seed grid (hetero-f2dc45e) against independent seeds (hetero-seedmix*), tile-mixture.

Run from the repository root: ``python benchmarks/results/seedmix-analysis.py [NEW.json ...]`` (reads stored
results only). Per block of small-liver cells: the mean over cells of bias / SE (cells independent: ~0 +-
1/sqrt(cells) if unbiased; legacy cells share their noise, so their mean z is one draw), the pooled bias
(mean of cell means, its SE from the cells' SEs, valid only for independent cells), and the interval
calibration: seed SD of the error over median half-width / 1.96 (1 = honest 95 % interval, < 1 wide).
"""
import json
import sys
from pathlib import Path

import numpy as np

R = Path(__file__).resolve().parent


def load(names):
    cells = {}
    for n in names:
        for c in json.loads((R / n).read_text())["cells"]:
            k = (c["sd_log_lic"], c["scale_voxels"], c["lic"], c["snr"], c["coils"])
            d = c["designs"]["tile-mixture"]
            e = cells.setdefault(k, {"err": [], "hits": 0, "half": []})
            e["err"] += d["err_pct"]
            e["hits"] += d["hits"]
            e["half"].append(d["half_width_pct"])
    return cells


BLOCKS = [("all but LIC 30 SNR 20", lambda k: not (k[2] == 30 and k[3] == 20)), ("SD 0", lambda k: k[0] == 0),
          ("SD > 0", lambda k: k[0] > 0), ("1 ch", lambda k: k[4] == 1), ("8 ch", lambda k: k[4] == 8),
          ("LIC 30 SNR 20 (small, beyond data)", lambda k: k[2] == 30 and k[3] == 20)]


def table(cells, label):
    print(f"\n{label}")
    print("| block | cells | mean z = bias/SE (+- 1/sqrt n) | pooled bias % +- SE | covered | seed SD / (half/1.96), median |")
    print("|---|---|---|---|---|---|")
    for name, sel in BLOCKS:
        ks = [k for k in cells if sel(k)]
        if not ks:
            continue
        b = np.array([np.mean(cells[k]["err"]) for k in ks])
        n = np.array([len(cells[k]["err"]) for k in ks])
        sd = np.array([np.std(cells[k]["err"], ddof=1) for k in ks])
        se = sd / np.sqrt(n)
        z = b / se
        pooled, pse = b.mean(), np.sqrt(np.sum(se ** 2)) / len(ks)
        ratio = sd / (np.array([np.median(cells[k]["half"]) for k in ks]) / 1.96)
        hits = sum(cells[k]["hits"] for k in ks)
        print(f"| {name} | {len(ks)} | {z.mean():+.2f} +- {1 / np.sqrt(len(ks)):.2f} | {pooled:+.3f} +- {pse:.3f} | "
              f"{hits}/{n.sum()} ({100 * hits / n.sum():.1f} %) | {np.median(ratio):.2f} |")


table(load(["hetero-f2dc45e.json"]), "legacy seeds (hetero-f2dc45e, replicates 0-7 shared by every cell)")
new = sys.argv[1:] or ["hetero-seedmix.json"]
table(load(new), "independent seeds (" + " + ".join(new) + ")")
