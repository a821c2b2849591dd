"""Issue 16's grid in one table: bias and 95 % coverage per block, before and after.

Run: ``python -m benchmarks.hetero_grid [--after-small FILE] [--after-full FILE ...] [--name NAME]``
(from the repository root; reads stored results only, runs nothing, ~1 s). Writes
``benchmarks/results/NAME.md`` (default ``hetero_grid``) and prints it.

The issue's grid (texture SD 0 / 0.2 / 0.4 in log LIC, widths 1-8 voxels, LIC 1-30 mg/g,
SNR 20-100, 1 and 8 channels) is assembled from two benchmarks:

- ``benchmarks.hetero`` (small livers, 64 x 64 x 3 voxels of 6 mm, ~1,700 liver voxels,
  8 seeds per cell) for every cell except LIC 30 at SNR 20;
- ``benchmarks.hetero_full`` (full-size livers, 256 x 256 x 11 at 1.5 mm, ~95,000 voxels)
  for LIC 30 at SNR 20 (14 cells: 7 textures x 1 and 8 channels). A small liver cannot
  resolve 2 % there: the Cramer-Rao bound of its mean R2 is 7.2 % of LIC with 8 channels
  (benchmarks/README.md, "Second round of tile-mixture"); those cells are listed apart.

Columns: ``tile-ncchi`` (the original estimator: tiles fitted with the non-central chi
model, no spread correction; full size: ``uncorrected_err_pct``, no interval), the first
``tile-mixture`` (small livers git 609a7ee; full size git ca061fa, the earliest full-size
run), the merged tree a408d82 (the last grid before the kappa prior, mcseed, mapsmooth and
belownoise), and the tree measured now. A block's "worst" is the cell mean farthest from
0; "within 2 %" counts cell means; coverage pools the seeds of the block's cells.
Failing cells: |mean| > 2 % or a cell's coverage < 90 %; the bias excess is called real
when ``|mean| - 2 > 2 SE`` of the seed mean, and a coverage shortfall when the binomial
P(hits <= observed | 90 %) < 0.05.

Seeding (branch seedmix): runs before it used the replicate number as noise, texture and
estimator seed in every cell, so replicate r drew the same numbers in all cells and the
cells were not independent; ``benchmarks/_seeds.py`` now gives every (cell, replicate) its
own seeds. The table says which seeding each run used (the JSON's ``seeding``; absent =
legacy). When the "after" run has independent seeds, a column for the previous legacy run
(``--legacy-small``, ``--legacy-full``) is added, and the comparisons with it are unpaired
(difference of cell means against the SE of the difference: about 5 % of cells beyond
2 SE by chance); :func:`coupling` measures how alike the cells' per-replicate errors are.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
A408 = ["hetero_full-a408d82.json", "hetero_full-a408d82-seeds4to7.json", "hetero_full-a408d82-seeds8to15.json",
        "hetero_full-a408d82-snr50-seeds2to3.json"]


def _key(sd, width, lic, snr, coils):
    return (float(sd), float(width) if float(sd) > 0 else 1.0, float(lic), float(snr), int(coils))


def seeding_of(paths: "list[Path]") -> str:
    """The seeding of one or more stored runs (``legacy`` when the file predates branch seedmix)."""
    out = []
    for p in paths:
        res = json.loads(Path(p).read_text())
        out.append("independent per (cell, replicate)" if res.get("legacy_seeds") is False else "legacy (shared)")
    return " + ".join(sorted(set(out)))


def small_cells(path: "Path | list[Path]", design: str) -> dict[tuple, dict[str, Any]]:
    """{cell key: {"err": [...], "covered": [...] | None}} of one design of a hetero run (a list of
    runs: their replicates concatenated per cell, in the order given)."""
    if isinstance(path, (list, tuple)):
        out: dict[tuple, dict[str, Any]] = {}
        for p in path:
            for k, v in small_cells(p, design).items():
                o = out.setdefault(k, {"err": [], "covered": [], "src": "small"})
                o["err"] += v["err"]
                o["covered"] += v["covered"]
        return out
    res = json.loads(path.read_text())
    out = {}
    for c in res["cells"]:
        d = c["designs"].get(design)
        if d is None:
            continue
        k = _key(c["sd_log_lic"], c["scale_voxels"], c["lic"], c["snr"], c["coils"])
        n = len(d["err_pct"])
        out[k] = {"err": list(d["err_pct"]), "covered": [True] * d["hits"] + [False] * (n - d["hits"]),
                  "src": "small"}
    return out


def full_cells(paths: list[Path], uncorrected: bool = False) -> dict[tuple, dict[str, Any]]:
    """Full-size livers of one or more hetero_full runs, merged per cell by seed."""
    livers: dict[tuple, dict[int, dict]] = {}
    for p in paths:
        res = json.loads(p.read_text())
        for c in res["cells"]:
            k = _key(c["sd"], c["width"], c["lic"], c["snr"], c["coils"])
            for r in c["livers"]:
                livers.setdefault(k, {})[int(r["seed"])] = r
    out = {}
    for k, by_seed in livers.items():
        rows = [by_seed[s] for s in sorted(by_seed)]
        out[k] = {"err": [r["uncorrected_err_pct" if uncorrected else "err_pct"] for r in rows],
                  "covered": None if uncorrected else [bool(r["covered"]) for r in rows], "src": "full"}
    return out


def compose(small: dict, full: dict) -> dict[tuple, dict]:
    """The issue's grid: small livers, with LIC 30 at SNR 20 taken from the full-size run."""
    out = {k: v for k, v in small.items() if not (k[2] == 30 and k[3] == 20)}
    out.update({k: v for k, v in full.items() if k[2] == 30 and k[3] == 20})
    return out


def cell_stats(c: dict) -> dict[str, Any]:
    e = np.asarray(c["err"], float)
    n = e.size
    sd = float(e.std(ddof=1)) if n > 1 else float("nan")
    hits = None if c["covered"] is None else int(sum(c["covered"]))
    return {"n": n, "bias": float(e.mean()), "sd": sd, "se": sd / math.sqrt(n), "hits": hits}


def binom_cdf(k: int, n: int, p: float) -> float:
    return float(sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1)))


BLOCKS = ([("all cells", lambda k: True)]
          + [(f"SD {s:g}", (lambda s: lambda k: k[0] == s)(s)) for s in (0.0, 0.2, 0.4)]
          + [(f"width {w:g} (SD > 0)", (lambda w: lambda k: k[0] > 0 and k[1] == w)(w)) for w in (1.0, 4.0, 8.0)]
          + [(f"LIC {x:g}", (lambda x: lambda k: k[2] == x)(x)) for x in (1.0, 7.0, 30.0)]
          + [(f"SNR {x:g}", (lambda x: lambda k: k[3] == x)(x)) for x in (20.0, 50.0, 100.0)]
          + [(f"{x} ch", (lambda x: lambda k: k[4] == x)(x)) for x in (1, 8)])


def block_text(cells: dict, sel) -> str:
    ks = [k for k in cells if sel(k)]
    if not ks:
        return "-"
    st = [cell_stats(cells[k]) for k in ks]
    worst = max((s["bias"] for s in st), key=abs)
    within = sum(abs(s["bias"]) <= 2.0 for s in st)
    cov = [s for s in st if s["hits"] is not None]
    if cov:
        hits, n = sum(s["hits"] for s in cov), sum(s["n"] for s in cov)
        ctext = f"{100 * hits / n:.0f} %" + ("" if len(cov) == len(st) else f" ({len(cov)} cells)")
    else:
        ctext = "n/a"
    return f"{worst:+.1f} / {within}/{len(ks)} / {ctext}"


def failing(cells: dict) -> list[dict[str, Any]]:
    """Cells with |mean| > 2 % or coverage < 90 %, with the verdicts of the module docstring."""
    out = []
    for k in sorted(cells):
        s = cell_stats(cells[k])
        bad_bias = abs(s["bias"]) > 2.0
        bad_cov = s["hits"] is not None and s["hits"] < 0.9 * s["n"]
        if not (bad_bias or bad_cov):
            continue
        excess = abs(s["bias"]) - 2.0
        v_bias = "-" if not bad_bias else (f"{excess / s['se']:.1f} SE: " +
                                           ("real" if excess > 2 * s["se"] else "within 2 SE"))
        p = binom_cdf(s["hits"], s["n"], 0.9) if s["hits"] is not None else float("nan")
        v_cov = "-" if not bad_cov else f"P = {p:.2f}: " + ("real" if p < 0.05 else "chance")
        out.append({"key": k, "src": cells[k]["src"], **s, "bias_verdict": v_bias, "cov_verdict": v_cov})
    return out


def paired(before: dict, after: dict) -> str:
    """Same livers in two runs: per-cell mean shift +- SE; the cells moved beyond 2 SE and >= 0.1 %."""
    shifts = []
    for k in sorted(set(before) & set(after)):
        n = min(len(before[k]["err"]), len(after[k]["err"]))
        d = np.asarray(after[k]["err"][:n], float) - np.asarray(before[k]["err"][:n], float)
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        shifts.append((k, float(d.mean()), se, n))
    if not shifts:
        return "no common cells"
    moved = [x for x in shifts if abs(x[1]) > 2 * x[2] and abs(x[1]) >= 0.1]
    same = sum(abs(x[1]) < 1e-9 and x[2] < 1e-9 for x in shifts)
    big = max(shifts, key=lambda x: abs(x[1]))

    def name(k):
        return f"SD {k[0]:g} width {k[1]:g}, LIC {k[2]:g}, SNR {k[3]:g}, {k[4]} ch"

    text = (f"{len(shifts)} cells paired ({same} identical); largest shift {big[1]:+.2f} +- {big[2]:.2f} % "
            f"({name(big[0])}); moved beyond 2 paired SE and >= 0.1 %: {len(moved)}")
    if moved:
        text += ": " + "; ".join(f"{name(k)} {m:+.2f} +- {se:.2f}" for k, m, se, _ in moved)
    return text


def unpaired(before: dict, after: dict) -> str:
    """Different livers in two runs: per-cell difference of means against its SE; bias and pooled coverage."""
    d = []
    for k in sorted(set(before) & set(after)):
        b, a = cell_stats(before[k]), cell_stats(after[k])
        d.append((k, a["bias"] - b["bias"], math.hypot(a["se"], b["se"])))
    if not d:
        return "no common cells"
    beyond = [x for x in d if abs(x[1]) > 2 * x[2]]
    z = np.array([x[1] / x[2] for x in d if x[2] > 0])
    big = max(d, key=lambda x: abs(x[1]) / x[2] if x[2] > 0 else 0.0)
    cb = [cell_stats(before[k]) for k, _, _ in d]
    ca = [cell_stats(after[k]) for k, _, _ in d]

    def cov(cs):
        cs = [c for c in cs if c["hits"] is not None]
        return f"{sum(c['hits'] for c in cs)}/{sum(c['n'] for c in cs)}" if cs else "n/a"

    def name(k):
        return f"SD {k[0]:g} width {k[1]:g}, LIC {k[2]:g}, SNR {k[3]:g}, {k[4]} ch"

    return (f"{len(d)} cells; difference of cell means beyond 2 SE of the difference: {len(beyond)} "
            f"(about {0.046 * len(d):.0f} expected by chance); z = difference / SE: mean {z.mean():+.2f}, "
            f"SD {z.std(ddof=1) if z.size > 1 else float('nan'):.2f} (1 if the two runs agree); "
            f"largest |z| {big[1] / big[2]:+.1f} "
            f"({name(big[0])}: {big[1]:+.2f} +- {big[2]:.2f} %); covered {cov(cb)} before, {cov(ca)} after"
            + ("; beyond 2 SE: " + "; ".join(f"{name(k)} {m:+.2f} +- {se:.2f}" for k, m, se in beyond) if beyond
               else ""))


def coupling(cells: dict) -> str:
    """How alike the cells' per-replicate errors are: the correlation, over replicates, of the
    errors of every pair of cells with the same replicate count, summarised as the mean and the
    share of pairs with |r| > 0.7 (independent cells: mean ~0, share ~5 % at 8 replicates, the
    two-sided P of |r| > 0.7 at 6 degrees of freedom)."""
    ks = [k for k in sorted(cells) if len(cells[k]["err"]) > 2]
    if len(ks) < 2:
        return "too few cells"
    n = min(len(cells[k]["err"]) for k in ks)
    e = np.array([np.asarray(cells[k]["err"][:n], float) for k in ks])
    e = e[e.std(1) > 0]
    r = np.corrcoef(e)[np.triu_indices(len(e), 1)]
    return (f"{len(e)} cells x {n} replicates, {r.size} pairs: mean r {r.mean():+.2f}, "
            f"|r| > 0.7 in {100 * np.mean(np.abs(r) > 0.7):.0f} %")


def _small_crb(k) -> str:
    # docs/statistics.md, "30 mg/g at SNR 20 is beyond what these small livers support"
    return f"yes; small liver, CRB {7.2 if k[4] == 8 else 5.0} % of LIC"


def report(columns: list[tuple[str, dict]], beyond: dict, cross: dict, labels: dict[str, str]) -> str:
    from ._common import md_table

    lines = [md_table(["block (cells)"] + [c[0] + ": worst % / within 2 % / coverage" for c in columns],
                      [[name] + [block_text(c[1], sel) for c in columns] for name, sel in BLOCKS])]
    head = ["SD", "width", "LIC", "SNR", "ch", "in the issue's grid", "livers", "bias % +- SE (seed SD)", "covered",
            "bias excess", "coverage shortfall"]

    def rows(cells, where="yes"):
        return [[k[0], k[1] if k[0] > 0 else "-", k[2], k[3], k[4], where if isinstance(where, str) else where(k),
                 f"{f['src']} x {f['n']}",
                 f"{f['bias']:+.2f} +- {f['se']:.2f} ({f['sd']:.2f})",
                 "n/a" if f["hits"] is None else f"{f['hits']}/{f['n']}", f["bias_verdict"], f["cov_verdict"]]
                for f in failing(cells) for k in [f["key"]]]

    after = columns[-1]
    lines += ["", f"Failing cells of the issue's grid, {after[0]}:", "",
              md_table(head, rows(after[1])) if failing(after[1]) else "none"]
    lines += ["", f"Small livers at LIC 30, SNR 20 ({labels['small']}; beyond the data, see above), failing cells:", "",
              md_table(head, rows(beyond, _small_crb)) if failing(beyond) else "none"]
    lines += ["", f"Full size at LIC 30, SNR 50 ({labels['full']}; cross-check of the small livers), failing cells:",
              "", "not run" if not cross else md_table(head, rows(cross, "yes (cross-check)")) if failing(cross)
              else f"none ({len(cross)} cells)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--after-small", nargs="+", default=["hetero.json"],
                    help="hetero run(s) of the tree now (results/ files; replicates concatenated per cell)")
    ap.add_argument("--after-full", nargs="+", default=["hetero_full-merged23.json"],
                    help="hetero_full run(s) of the tree now (results/ files, merged by seed)")
    ap.add_argument("--after-label", default="now")
    ap.add_argument("--legacy-small", default="hetero-f2dc45e.json",
                    help="the last legacy-seed small run, a column when --after-small has independent seeds")
    ap.add_argument("--legacy-full", nargs="+", default=["hetero_full-grid24.json"])
    ap.add_argument("--legacy-label", default="main f2dc45e, legacy seeds")
    ap.add_argument("--name", default="hetero_grid")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    r = a.out
    first_small = r / "hetero-609a7ee.json"
    first_full = [r / "hetero_full-before.json"]
    small_paths = [r / f for f in a.after_small]
    after_small = small_cells(small_paths, "tile-mixture")
    after_full = full_cells([r / f for f in a.after_full])
    seed_small, seed_full = seeding_of(small_paths), seeding_of([r / f for f in a.after_full])
    independent = "independent" in seed_small
    label = f"{a.after_label} ({'independent seeds' if independent else 'legacy seeds'})"
    columns = [
        ("tile-ncchi (original)", compose(small_cells(first_small, "tile-ncchi"), full_cells(first_full, True))),
        ("tile-mixture first (609a7ee / full ca061fa)",
         compose(small_cells(first_small, "tile-mixture"), full_cells(first_full))),
        ("a408d82", compose(small_cells(r / "hetero-a408d82.json", "tile-mixture"), full_cells([r / f for f in A408]))),
    ]
    if independent:
        legacy_small = small_cells(r / a.legacy_small, "tile-mixture")
        legacy_full = full_cells([r / f for f in a.legacy_full])
        columns.append((a.legacy_label, compose(legacy_small, legacy_full)))
    columns.append((label, compose(after_small, after_full)))
    if independent:  # the full-size SNR 20 cells the new run lacks are the legacy run's, and say so
        missing = {k: v for k, v in legacy_full.items() if k[2] == 30 and k[3] == 20 and k not in after_full}
        if missing:
            columns[-1] = (label + f" ({len(missing)} full-size cells legacy)",
                           compose(after_small, {**legacy_full, **after_full}))
    beyond = {k: v for k, v in after_small.items() if k[2] == 30 and k[3] == 20}
    cross = {k: v for k, v in after_full.items() if k[2] == 30 and k[3] == 50}
    text = report(columns, beyond, cross, {"small": " + ".join(a.after_small), "full": " + ".join(a.after_full)})
    if independent:
        text += ("\n\nUnpaired (other livers), small livers, " + a.legacy_label + " -> " + label + ": "
                 + unpaired(legacy_small, after_small))
        text += ("\n\nUnpaired, full size, " + a.legacy_label + " -> " + label + ": "
                 + unpaired(legacy_full, after_full))
        text += ("\n\ntile-ncchi, unpaired, small livers, " + a.legacy_label + " -> " + label + ": "
                 + unpaired(small_cells(r / a.legacy_small, "tile-ncchi"),
                            small_cells(small_paths, "tile-ncchi")))
        text += ("\n\nCoupling of the cells (tile-mixture, small livers; per-replicate errors correlated between "
                 f"cells): {a.legacy_label}: {coupling(legacy_small)}; {label}: {coupling(after_small)}")
    else:
        text += ("\n\nPaired, small livers, a408d82 -> " + a.after_label + " (same livers and seeds): "
                 + paired(small_cells(r / "hetero-a408d82.json", "tile-mixture"), after_small))
        text += ("\n\nPaired, full size, merged23 (0492a6e) -> " + a.after_label + " (common seeds): "
                 + paired(full_cells([r / "hetero_full-merged23.json"]), after_full))
        text += ("\n\ntile-ncchi, small livers, 609a7ee -> " + a.after_label + ": "
                 + paired(small_cells(first_small, "tile-ncchi"), small_cells(small_paths, "tile-ncchi")))
    (a.out / f"{a.name}.md").write_text(f"# {__doc__.splitlines()[0]}\n\nafter = {' + '.join(a.after_small)} ({seed_small}) + "
                                        f"{' + '.join(a.after_full)} ({seed_full}); earlier columns: legacy "
                                        f"seeds\n\n{text}\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
