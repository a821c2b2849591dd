"""``r2mri batch INPUT... -o OUT``: analyse a cohort, one folder per exam and a cohort table.

A thin shell over :func:`r2mri.batch.run`. Exit status: 0 every exam succeeded, 1 some
failed (their rows say why), 2 bad invocation (nothing written).
"""

from __future__ import annotations

import argparse
import os

from .analyze import _float_list  # the same echo-time list syntax as `r2mri analyze`

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "batch",
        help="analyse a cohort (DICOM tree, BIDS-like NIfTI tree or manifest) into one table",
        description=(
            "Find the exams under INPUT (DICOM studies at any depth grouped by StudyInstanceUID, "
            "BIDS-like sub-*/[ses-*/]anat/*_MESE.nii.gz files, or a manifest CSV), analyse each "
            "into OUT/<subject>/<session or study date>/ (the same files as `r2mri analyze`), "
            "skip exams that are up to date, and write OUT/cohort.csv and OUT/cohort.json. "
            "Exit status: 0 all exams succeeded, 1 some failed, 2 bad invocation."
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="folders, NIfTI files or manifest CSVs")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="OUT", help="cohort output folder")
    p.add_argument("--manifest", metavar="CSV",
                   help="manifest: path, subject, session, date, mask and per-row analyze options")
    ex = p.add_mutually_exclusive_group()
    ex.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: one per core)")
    ex.add_argument("--dask-local", type=int, metavar="N", help="run on a Dask LocalCluster of N worker processes")
    ex.add_argument("--dask-scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (tcp://host:8786)")
    p.add_argument("--force-rerun", action="store_true", help="analyse every exam again, even when up to date")
    p.add_argument("--deidentify", metavar="KEYFILE",
                   help="no patient name, ID, birth date or accession number in outputs; keyed pseudonyms")
    p.add_argument("--shift-dates", action="store_true",
                   help="with --deidentify: shift dates per subject by a keyed offset")
    p.add_argument("--dry-run", action="store_true", help="list the exams found and what was skipped; run nothing")
    a = p.add_argument_group("analyze options (for every exam; manifest columns override per row)")
    a.add_argument("--model", default=None, help="decay model (default auto)")
    a.add_argument("--calibration", default=None, help="calibration curve name")
    a.add_argument("--calibration-file", metavar="FILE", help="site-validated calibration curve (TOML)")
    a.add_argument("--field-strength", type=float, metavar="T", help="main field in tesla when inputs do not say")
    a.add_argument("--echo-times-ms", type=_float_list, metavar="TE", help="echo times in ms: 6,9,12,15,18")
    a.add_argument("--noise-sigma", type=float, metavar="X", help="channel noise sigma (default: estimated)")
    a.add_argument("--coils", type=int, metavar="N", help="receiver channels combined by root-sum-of-squares")
    a.add_argument("--force", action="store_true", help="analyse despite protocol errors (reported as warnings)")
    a.add_argument("--erode-mm", type=float, metavar="MM", help="in-plane margin removed from the ROI edge")
    a.add_argument("--dicom", dest="dicom", action=argparse.BooleanOptionalAction, default=None,
                   help="also write DICOM outputs (default: for DICOM inputs)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..batch import run as run_batch
    from ..errors import InputError

    if not args.inputs and not args.manifest:
        raise InputError("give at least one INPUT or --manifest CSV")
    options = {
        "model": args.model,
        "calibration": args.calibration,
        "calibration_file": args.calibration_file,
        "field_strength_t": args.field_strength,
        "echo_times_ms": args.echo_times_ms,
        "noise_sigma": args.noise_sigma,
        "coils": args.coils,
        "force": True if args.force else None,
        "roi_options": {"erode_mm": args.erode_mm} if args.erode_mm is not None else None,
    }
    res = run_batch(args.inputs, args.out, manifest=args.manifest, jobs=args.jobs, dask_local=args.dask_local,
                    dask_scheduler=args.dask_scheduler, force_rerun=args.force_rerun, deidentify=args.deidentify,
                    shift_dates=args.shift_dates, dicom=args.dicom, dry_run=args.dry_run, **options)
    if args.dry_run:
        print(f"{len(res.exams)} exam(s) found")
        for exam in res.exams:
            print(f"  {exam.exam_id}\t{exam.kind}\t{exam.study_date or 'no date'}\t{len(exam.inputs)} file(s)\t"
                  + (exam.origin if not args.deidentify else ""))
        if res.skipped:
            print(f"{len(res.skipped)} path(s) skipped")
            for s in res.skipped:
                print(f"  {s.path}: {s.reason}")
        return 0
    print(f"{len(res.rows)} exam(s): {res.n_ran} analysed, {res.n_reused} up to date (reused), "
          f"{res.n_failed} failed; table: {os.path.join(args.out, 'cohort.csv')}")
    return res.exit_code
