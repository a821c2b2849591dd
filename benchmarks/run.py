"""Run the benchmarks and write ``results/*.json``, ``results/*.png`` and ``results/tables.md``.

Usage (from the repository root)::

    python -m benchmarks [--quick] [--out DIR] [--only speed scaling ...]

Sections: ``speed``, ``scaling``, ``end_to_end``, ``accuracy``, ``mrbias``. A section
that cannot run (a module not there yet, ``../shared`` absent) records why in its
JSON instead of failing the run. ``--quick`` is the smoke run CI executes (< 60 s);
the full mode (< 15 min on 2 cores) writes the committed results in
``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path
from typing import Any

from . import _accuracy, _end_to_end, _mrbias, _scaling, _speed
from ._common import machine_info, write_json

RESULTS = Path(__file__).resolve().parent / "results"

#: name -> (module); each has run(quick) -> dict and tables(dict) -> str, maybe plots().
SECTIONS = {
    "speed": _speed,
    "scaling": _scaling,
    "end_to_end": _end_to_end,
    "accuracy": _accuracy,
    "mrbias": _mrbias,
}

TITLES = {
    "speed": "Speed on the FerriScan volume (256 x 256 x 11 voxels x 5 echoes)",
    "scaling": "Scaling with volume size, echo count and threads; memory",
    "end_to_end": "End to end: `r2mri analyze` on a FerriScan-protocol DICOM phantom",
    "accuracy": "Accuracy against known truth",
    "mrbias": "Real data: MR-BIAS Siemens 3 T system phantom, T2 per sphere",
}


def run_sections(out: Path, quick: bool, only: list[str] | None = None) -> dict[str, Any]:
    """Run the selected sections into ``out``; return {section: result dict}.

    ``tables.md``, ``summary.json`` (and, for the committed full results, the README)
    are rebuilt from every section's JSON in ``out`` of the same mode, so ``--only``
    re-measures one section without dropping the others; each section states when, on
    which commit and at which load it was measured.
    """
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    mode = "quick" if quick else "full"
    results: dict[str, Any] = {}
    t_all = time.perf_counter()
    for name, mod in SECTIONS.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        print(f"[benchmarks] {name} ...", flush=True)
        try:
            res = mod.run(quick)
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            res = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        res["section_time_s"] = time.perf_counter() - t0
        pngs: list[str] = []
        if hasattr(mod, "plots") and "error" not in res and "skipped" not in res:
            try:
                pngs = mod.plots(res, out)
            except Exception as exc:  # noqa: BLE001
                res["plot_error"] = f"{type(exc).__name__}: {exc}"
        res["plots"] = pngs
        write_json(out / f"{name}.json", {"section": name, "mode": mode, "machine": machine, "result": res})
        results[name] = res
        print(f"[benchmarks] {name} done in {res['section_time_s']:.1f} s", flush=True)
    total = time.perf_counter() - t_all

    # every section of this mode found in `out`: the ones just run and earlier ones
    sections: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for name in SECTIONS:
        path = out / f"{name}.json"
        if name in results:
            sections[name] = (results[name], machine)
        elif path.exists():
            try:
                payload = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if payload.get("mode") == mode and isinstance(payload.get("result"), dict):
                sections[name] = (payload["result"], payload.get("machine", {}))
    md = [f"<!-- written by `python -m benchmarks{' --quick' if quick else ''}`; do not edit -->",
          f"Mode: {mode}. Machine: {machine['cpu_model']}, nproc {machine['nproc']}, "
          f"{machine['mem_total_gb']} GB; versions " +
          ", ".join(f"{k} {v}" for k, v in machine["versions"].items()) + "."]
    for name, (res, mach) in sections.items():
        mod = SECTIONS[name]
        try:
            body = mod.tables(res) if "error" not in res or name in ("scaling", "accuracy") \
                else f"error: {res['error']}"
        except Exception as exc:  # noqa: BLE001
            body = f"table error: {type(exc).__name__}: {exc}"
        load = (mach.get("loadavg_at_start") or [None])[0]
        when = (f"Measured {mach.get('date_utc', '?')} on git {mach.get('git_commit', '?')}"
                + (f", load average {load:.2f} at the start" if isinstance(load, (int, float)) else "")
                + ".")
        md.append(f"\n## {TITLES[name]}\n\n{when}\n\n{body}\n")
        for p in res.get("plots", []):
            md.append(f"![{p}]({{IMG}}{p})\n")
        md.append(f"_Section run time {res.get('section_time_s', float('nan')):.1f} s._")
    text = "\n".join(md) + "\n"
    (out / "tables.md").write_text(text.replace("{IMG}", ""))
    if out.resolve() == RESULTS.resolve() and not quick:
        _update_readme(text.replace("{IMG}", "results/"))
    write_json(out / "summary.json", {"mode": mode, "machine": machine, "last_run_time_s": total,
                                      "last_run_sections": list(results),
                                      "sections": {k: {"time_s": v.get("section_time_s"),
                                                       "measured_utc": m.get("date_utc"),
                                                       "git_commit": m.get("git_commit"),
                                                       "error": v.get("error"),
                                                       "skipped": v.get("skipped")}
                                                   for k, (v, m) in sections.items()}})
    return results


README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _update_readme(tables_md: str) -> None:
    """Replace the measured part of benchmarks/README.md with the tables just written."""
    if not README.exists():
        return
    text = README.read_text()
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(head + BEGIN + "\n" + tables_md.replace("\n## ", "\n### ") + END + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run (< 60 s); writes to a scratch folder unless --out")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: benchmarks/results in full mode, "
                             "benchmarks/results-quick with --quick)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=None,
                        help="run only these sections")
    args = parser.parse_args(argv)
    out = args.out or (RESULTS.parent / "results-quick" if args.quick else RESULTS)
    results = run_sections(out, args.quick, args.only)
    print(f"[benchmarks] wrote {out}/tables.md and {len(results)} JSON files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
