"""``r2mri trend OUT/cohort.csv | REPORT.json... -o TREND``: per-patient LIC over time.

A thin shell over :func:`r2mri.trend.trend`.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "trend",
        help="per-patient LIC over time from a cohort table or report.json files",
        description=(
            "Read cohort.csv/cohort.json tables (r2mri batch) and/or report.json files, and write "
            "trend.json and one PNG and PDF page per patient into TREND: LIC over time with 95 % CIs "
            "on the clinical category bands, the change between consecutive exams and whether it "
            "exceeds the exams' measurement variability, and warnings when field strength, "
            "calibration or sequence changed."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="TABLE|REPORT", help="cohort.csv, cohort.json or report.json files")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="TREND", help="output folder")
    p.add_argument("--subject", metavar="ID", help="only this subject")
    p.add_argument("--reproducibility-cv", type=float, metavar="CV",
                   help="your site's scan-rescan coefficient of variation (0.1 = 10 %%), added to each exam's "
                        "uncertainty; default none (no published figure is built in)")
    p.add_argument("--reproducibility-source", metavar="TEXT", help="where --reproducibility-cv comes from")
    p.add_argument("--overwrite", action="store_true", help="replace an existing TREND")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..trend import trend

    trends = trend(args.inputs, args.out, subject=args.subject, reproducibility_cv=args.reproducibility_cv,
                   reproducibility_source=args.reproducibility_source, overwrite=args.overwrite)
    for t in trends:
        print(f"{t.subject}: {len(t.exams)} exam(s), {sum(bool(c.exceeds_variability) for c in t.changes)} "
              f"change(s) beyond measurement variability, {len(t.warnings)} warning(s)")
    print(f"trend written to {args.out}/")
    return 0
