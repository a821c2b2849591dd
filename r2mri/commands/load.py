"""``r2mri load PATH...``: show what r2mri finds in DICOM/NIfTI input and the protocol findings.

Exit status: 0 when a multi-echo dataset loaded without error-level findings, 1 when it
loaded but has error-level findings (analysis will refuse it unless forced), 2 when
no usable multi-echo dataset was found (``r2mri: error: ...`` on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..io import load
from .._cli_phase import add_phase_options, phase_argument


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "load",
        help="summarise the multi-echo dataset found in DICOM/NIfTI input",
        description="Find and load a multi-echo dataset; print series, echo times, geometry and "
                    "protocol findings. Exit 0 ok, 1 error-level findings, 2 nothing usable.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="DICOM folder(s)/files, or NIfTI file(s)")
    p.add_argument("--echo-times-ms", type=float, nargs="+", metavar="TE",
                   help="echo times in ms, one per echo (NIfTI without sidecars, or to override DICOM)")
    p.add_argument("--series", action="append", metavar="N[,N...]",
                   help="series to use, by series number or SeriesInstanceUID (comma-separated or "
                        "repeated for the series of a per-TE protocol)")
    add_phase_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
    return p


def _fmt_list(values, fmt="{:g}") -> str:
    return ", ".join(fmt.format(v) for v in values)


def run(args) -> int:
    paths = list(args.paths)
    series = [s.strip() for group in args.series for s in group.split(",") if s.strip()] if args.series else None
    img = load(paths, echo_times_ms=args.echo_times_ms, series=series, phase=phase_argument(args))
    findings = img.protocol_report()
    meta = img.metadata
    found = None
    if "series_found" in meta:
        found = {"series": meta["series_found"], "skipped_files": meta.get("skipped_files", [])}
    summary = {
        "source": meta.get("source"),
        "dataset_kind": meta.get("dataset_kind"),
        "series_found": found["series"] if found else None,
        "series_used": sorted(set(u for u in meta.get("series_instance_uids", []) if u)),
        "echo_times_ms": [round(float(t), 4) for t in img.echo_times_ms],
        "matrix": list(img.shape),
        "voxel_size_mm": [round(v, 4) for v in img.voxel_size_mm],
        "field_strength_t": img.field_strength_t,
        "manufacturer": img.manufacturer,
        "sequence": img.sequence,
        "echo_train_length": img.echo_train_length,
        "repetition_time_s": meta.get("repetition_time_s"),
        "phase": getattr(img, "phase_rad", None) is not None,
        "findings": [f.to_dict() for f in findings],
    }
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        out = []
        if found:
            out.append(f"series found: {len(found['series'])}")
            for s in found["series"]:
                te = _fmt_list(s["echo_times_ms"]) or "-"
                out.append(f"  #{s['series_number']} {s['series_description']!r} {s['series_instance_uid']} "
                           f"TE {te} ms, {s['n_frames']} images")
            if found["skipped_files"]:
                out.append(f"  ({len(found['skipped_files'])} non-image files skipped)")
        out.append(f"dataset: {summary['dataset_kind']} from {len(summary['series_used']) or 1} series")
        out.append(f"echo times (ms): {_fmt_list(summary['echo_times_ms'])}  [{img.n_echoes} echoes]")
        out.append(f"matrix (x, y, z): {' x '.join(map(str, img.shape))}")
        out.append(f"voxel size (mm): {' x '.join(f'{v:g}' for v in summary['voxel_size_mm'])}")
        fs = img.field_strength_t
        out.append(f"field strength: {'unknown' if fs is None else f'{fs:g} T'}")
        out.append(f"sequence: {img.sequence or 'unknown'} (echo train length {img.echo_train_length})")
        how = (meta.get("phase") or {}).get("source")
        out.append(f"phase: {'yes' if summary['phase'] else 'no'}" + (f" ({how})" if summary["phase"] and how else ""))
        out.append(f"findings: {len(findings) or 'none'}")
        for f in findings:
            out.append(f"  {f}")
        print("\n".join(out))
    return 1 if any(f.severity == "error" for f in findings) else 0
