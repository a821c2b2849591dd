"""``r2mri demo [--gre] [-o OUT]``: analyse a built-in phantom and compare with its truth.

Generates the default digital phantom (FerriScan 1.5 T protocol: five single-echo
spin-echo series, TE 6-18 ms), or with ``--gre`` the 1.5 T multi-echo gradient-echo
phantom with liver fat (``gre-1.5t-fat15-lic3.2``: 6 echoes, PDFF 15 %, the R2* path with
the fat-water fit), runs :func:`r2mri.analyze` on it exactly as on a patient series, and
prints the headline LIC beside the phantom's known truth.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from ..errors import InputError

__all__ = ["add_parser", "run"]

#: the phantom of ``--gre``: 1.5 T multi-echo GRE, 6 echoes, PDFF 15 %, LIC 3.2 mg/g
GRE_SPEC = "gre-1.5t-fat15-lic3.2"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="analyse a built-in FerriScan phantom and print the result against its truth",
        description="Generate the FerriScan 1.5 T digital phantom, analyse it and compare with the truth.",
    )
    p.add_argument("-o", "--output", "--out", dest="out", metavar="OUT",
                   help="also write the full report folder (report.pdf, report.json, maps) here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--lic", type=float, metavar="MG_PER_G", help="true LIC of the phantom liver (default: the spec's)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--gre", action="store_true",
                   help=f"the R2* path instead: the 1.5 T gradient-echo phantom with liver fat ({GRE_SPEC})")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .. import phantom
    from ..analysis import analyze
    from ..report import report_dict, write_outputs
    from .analyze import headline_lines, warning_lines

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.overwrite:
        raise InputError(f"{out}: output folder exists (use --overwrite to replace it)")
    t0 = time.perf_counter()
    overrides = {} if args.lic is None else {"lic_mg_per_g": args.lic}
    # 128 x 128 x 5 slices of 3 mm pixels: the FerriScan field of view at half the
    # matrix, so the demo runs in seconds on a laptop (the full 256 x 256 x 11 default
    # is `r2mri phantom` + `r2mri analyze`).
    spec = GRE_SPEC if args.gre else None
    ph = phantom.generate(spec, seed=args.seed, matrix=(128, 128), pixel_mm=3.0, n_slices=5, **overrides)
    truth = ph.summary
    img = ph.image
    print(
        f"r2mri demo: digital {'GRE' if args.gre else 'FerriScan'} phantom '{truth.get('spec_name')}' "
        f"({img.field_strength_t:g} T, "
        f"{img.sequence}, TE {', '.join(f'{t:g}' for t in img.echo_times_ms)} ms, SNR {truth.get('snr')}, "
        f"{truth.get('coils')} coil(s), seed {args.seed}, shape {img.shape})"
    )
    # The reader's liver outline: parenchyma plus the vessels inside it (as drawn on a
    # scan); vessel exclusion, edge erosion and failed fits are left to r2mri.roi.
    labels = ph.truth.labels
    outline = (labels == phantom.LABELS["liver"]) | (labels == phantom.LABELS["vessel"])
    rate = "R2* and fat (fat-water model)" if args.gre else "R2"
    print(f"  fitting {rate} voxel by voxel (the first run after installing compiles the numba kernels, "
          f"which takes ~{20 if args.gre else 10} s; they are cached for later runs) ...", flush=True)
    from ._cold_start import first_run_kernels

    # the cold-start child prepares the spin-echo (ncchi) run's kernels: not those of --gre
    cold = (contextlib.nullcontext() if args.gre else
            first_run_kernels(("fit_starts", "noise", "smooth", "stats"), before=("noise",)))
    with cold:
        result = analyze(img, mask=outline, progress=True)
    rep = report_dict(result)
    lic = rep["lic_mg_per_g"]
    head = lic.get("of_mean_r2")
    true_head = truth.get("lic_of_mean_r2_mg_per_g")
    ci = lic.get("ci95") or [None, None]
    for line in headline_lines(rep) + warning_lines(rep):  # the warnings as `r2mri analyze` prints them
        print("  " + line)
    if head is not None and true_head:
        err = 100.0 * (head - true_head) / true_head
        inside = ci[0] is not None and ci[1] is not None and ci[0] <= true_head <= ci[1]
        q = "R2*" if args.gre else "R2"
        print(f"  truth: LIC of the mean liver {q} {true_head:.2f} mg/g "
              f"(mean liver {q} {truth.get('mean_liver_r2_per_s'):.1f} 1/s); "
              f"error {err:+.1f} %; truth inside the 95 % CI: {'yes' if inside else 'no'}")
        pdff_true = truth.get("mean_liver_pdff_percent")
        pdff = (rep.get("pdff_percent") or {}).get("median")
        if args.gre and pdff_true is not None and pdff is not None:
            print(f"  truth: liver PDFF {pdff_true:.1f} %; measured median {pdff:.1f} % "
                  f"({pdff - pdff_true:+.1f} points)")
    else:
        print("  truth: no headline to compare (see warnings)")
    if out is not None:
        write_outputs(result, out, overwrite=args.overwrite, dicom=False)
        print(f"  report written to {out}/ (report.pdf, report.png, report.json, NIfTI maps)")
    print(f"  done in {time.perf_counter() - t0:.1f} s. Research use only; not a medical device.")
    return 0
