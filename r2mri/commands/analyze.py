"""``r2mri analyze INPUT... -o OUT``: measure liver iron and write the report folder.

A thin shell over :func:`r2mri.analyze` and :func:`r2mri.report.write_outputs`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from ..errors import InputError
from .._cli_phase import add_phase_options, phase_argument

__all__ = ["add_parser", "run"]


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number list: {text!r}") from None


def _series_items(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"no series given: {text!r}")
    return items


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "analyze",
        help="fit R2, calibrate to LIC and write the liver iron report",
        description=(
            "Fit R2 voxel by voxel, convert to liver iron concentration with a published "
            "calibration, summarise the liver ROI and write report.json, report.pdf/png, "
            "NIfTI maps, settings.json (and DICOM objects) into OUT, atomically."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM folder(s)/files or NIfTI file(s), one per echo or 4-D")
    p.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="OUT", help="output folder (must not exist)")
    p.add_argument("--mask", metavar="M", help="liver mask (NIfTI or DICOM SEG); default: automatic liver ROI proposal")
    p.add_argument("--model", default="auto", help="decay model (default auto: noise-corrected for spin echo when sigma is known; fatwater, R2* with fat, for gradient echo)")
    p.add_argument("--calibration", default=None, help="calibration curve name (default from the data: st-pierre-2005 for 1.5 T spin echo, hernando-2022-r2star-1.5t for 1.5 T gradient echo; other fields must choose)")
    p.add_argument("--calibration-file", metavar="FILE", help="site-validated calibration curve (TOML); overrides --calibration")
    p.add_argument("--field-strength", type=float, metavar="T", help="main field in tesla when the input does not say")
    p.add_argument("--echo-times-ms", type=_float_list, nargs="+", metavar="TE", help="echo times in ms when the input has none: 6,9,12,15,18 (or space-separated after INPUT)")
    p.add_argument("--noise-sigma", type=float, metavar="X", help="channel noise sigma in signal units (default: estimated)")
    p.add_argument("--coils", type=int, metavar="N", help="receiver channels combined by root-sum-of-squares")
    p.add_argument("--series", action="append", type=_series_items, metavar="N[,N...]",
                   help="DICOM: the series forming the dataset, by series number or SeriesInstanceUID "
                        "(comma-separated or repeated); default: the loader's choice, refused when it "
                        "leaves series of the acquisition out")
    add_phase_options(p)
    p.add_argument("--force", action="store_true", help="analyse despite protocol errors and a curve's unmet fat-correction or echo-time requirements (reported as warnings); a calibration curve for another field, sequence or echo train is still refused: choose another with --calibration or --calibration-file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--dicom", dest="dicom", action=argparse.BooleanOptionalAction, default=None,
                   help="also write DICOM PM/SEG/SR/SC (default: on when the input is DICOM)")
    p.add_argument("--threads", type=int, metavar="N", help="threads for the fit (default: all)")
    roi = p.add_argument_group("liver ROI without a mask (semi-automatic; see docs/statistics.md)")
    roi.add_argument("--roi-seed", type=int, nargs=3, metavar=("I", "J", "K"),
                     help="voxel index (0-based, as in the NIfTI maps) inside the liver parenchyma")
    roi.add_argument("--roi-bbox", type=int, nargs=6, metavar=("I0", "I1", "J0", "J1", "K0", "K1"),
                     help="index box holding the liver (start inclusive, end exclusive)")
    roi.add_argument("--erode-mm", type=float, metavar="MM",
                     help="in-plane margin removed from the ROI edge (default 5 mm; 0 disables)")
    p.set_defaults(func=run)
    return p


def headline_lines(rep: dict) -> list[str]:
    """A few human lines with the headline of a report dict."""
    lic = rep.get("lic_mg_per_g", {})
    umol = rep.get("lic_umol_per_g", {})
    ci = lic.get("ci95") or [None, None]
    cat = rep.get("category") or {}
    label = cat.get("label") if isinstance(cat, dict) else cat

    def f(v, d=2):
        return "n/a" if v is None else f"{float(v):.{d}f}"

    lines = [
        f"LIC {f(lic.get('of_mean_r2'))} mg Fe/g dry weight ({f(umol.get('of_mean_r2'), 0)} umol/g), "
        f"95 % CI {f(ci[0])}-{f(ci[1])}; from the mean liver {rep.get('quantity') or 'R2'} = "
        f"{f(_head_r2(rep), 1)} 1/s",
        f"category: {label or 'n/a'}" + (f"; {cat['ci95_note']}" if isinstance(cat, dict)
                                            and cat.get("ci95_note") else ""),
        f"voxel LIC mean {f(lic.get('mean'))}, median {f(lic.get('median'))} mg/g; "
        f"ROI {rep.get('roi', {}).get('n_voxels')} voxels ({f(rep.get('roi', {}).get('volume_ml'), 1)} ml); "
        f"model {rep.get('model', {}).get('name')}; calibration {rep.get('calibration', {}).get('name')}",
    ]
    pdff = rep.get("pdff_percent")
    if isinstance(pdff, dict):
        lines.insert(2, f"liver PDFF mean {f(pdff.get('mean'), 1)} %, median {f(pdff.get('median'), 1)} %")
    return lines


def warning_lines(rep: dict) -> list[str]:
    """The report's warnings as ``warning: ...`` lines, in the page's order (most important first).

    The same list the PDF page prints (:func:`r2mri.report._page_notes.warning_items`),
    so the terminal and the page never disagree on what comes first.
    """
    from ..report._page_notes import warning_items

    return [f"warning: {text}" for _, text in warning_items(rep)]


def _head_r2(rep: dict):
    r2 = rep.get("r2_per_s", {})
    return r2.get("headline_mean", r2.get("mean"))


def run(args: argparse.Namespace) -> int:
    from ..analysis import _TqdmProgress, analyze
    from ..report import write_outputs

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.exists() and not args.overwrite:
        raise InputError(f"{out}: output folder exists (use --overwrite to replace it)")
    te = None
    if args.echo_times_ms:
        te = [t for group in args.echo_times_ms for t in group]
    roi_options = {}
    if args.roi_seed is not None:
        roi_options["seed"] = tuple(args.roi_seed)
    if args.roi_bbox is not None:
        b = args.roi_bbox
        roi_options["bbox"] = ((b[0], b[1]), (b[2], b[3]), (b[4], b[5]))
    if args.erode_mm is not None:
        roi_options["erode_mm"] = args.erode_mm
    # [D] a cold numba cache: the kernels compile in two processes (_cold_start), and
    # before the input is read: a bad input on a cold cache reports its one line after
    # the fit kernel's compilation (~8 s), once per install
    child_groups = ("fit_starts", "noise", "smooth", "stats") + (() if args.mask else ("grow",))
    cold_start = contextlib.nullcontext()
    if args.model in ("auto", "ncchi"):  # the fit kernel compiled here is ncchi's
        from ._cold_start import first_run_kernels

        cold_start = first_run_kernels(child_groups, before=("noise",))
    with cold_start:
        progress = _TqdmProgress()
        try:
            result = analyze(
                args.inputs,
                mask=args.mask,
                model=args.model,
                calibration=args.calibration,
                calibration_file=args.calibration_file,
                field_strength_t=args.field_strength,
                echo_times_ms=te,
                noise_sigma=args.noise_sigma,
                coils=args.coils,
                force=args.force,
                series=[s for group in args.series for s in group] if args.series else None,
                phase=phase_argument(args),
                threads=args.threads,
                roi_options=roi_options or None,
                progress=progress,
            )
        finally:
            progress.close()
        _keep_collector_off_old_objects()
        paths = write_outputs(result, out, overwrite=args.overwrite, dicom=args.dicom)
    rep = json.loads(paths["report_json"].read_text(encoding="utf-8"))
    for line in headline_lines(rep):
        print(line)
    for w in warning_lines(rep):
        print(w, file=sys.stderr)
    print(f"outputs written to {os.fspath(out)}/")
    return 0


def _keep_collector_off_old_objects() -> None:
    """Move every object alive now out of the collector's reach (:func:`gc.freeze`).

    [D] A program's choice, not the library's (the Python API leaves the caller's
    collector alone): this process exists for one analysis, and the objects the
    imports and the analysis left (millions: numba, scipy, pydicom) live until it ends.
    Drawing the page allocates enough for full collections, each walking all of them
    (see benchmarks/README.md, "One process").
    """
    import gc

    gc.freeze()
