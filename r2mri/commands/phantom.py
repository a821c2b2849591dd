"""``r2mri phantom NAME|SPEC -o DIR``: write a digital liver phantom with its truth.

A thin shell over :func:`r2mri.phantom.generate` and :func:`r2mri.phantom.write`.
"""

from __future__ import annotations

import argparse
import math

from ..errors import InputError

__all__ = ["add_parser", "run"]


def _snr(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number (or inf): {text!r}") from None
    return v


def _focal(text: str) -> dict:
    """``X,Y,Z,RADIUS,LIC`` (mm, mm, mg/g) -> one ``focal`` table of the spec."""
    try:
        v = [float(t) for t in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 5:
        raise argparse.ArgumentTypeError(f"expected X,Y,Z,RADIUS,LIC (five numbers: mm, mm, mg/g), got {text!r}")
    return {"center_mm": v[:3], "radius_mm": v[3], "lic_mg_per_g": v[4]}


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..phantom import FORMATS

    p = subparsers.add_parser(
        "phantom",
        help="write a digital liver phantom (image + exact truth)",
        description=(
            "Generate a digital liver phantom from a shipped definition (see --list) or a "
            "TOML spec, and write the image (NIfTI or DICOM), the truth maps and truth.json "
            "into DIR, atomically."
        ),
    )
    p.add_argument("spec", nargs="?", metavar="NAME|SPEC", help="shipped phantom name or path to a phantom TOML (default: ferriscan-1.5t, FerriScan protocol, LIC 3.2)")
    p.add_argument("-o", "--output", "--out", dest="out", metavar="DIR", help="output folder (must not exist; required unless --list)")
    p.add_argument("--format", default="nifti", choices=FORMATS, help="image container (default nifti)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="noise seed (default 0)")
    p.add_argument("--snr", type=_snr, metavar="X", help="SNR: mean liver S0 / channel sigma (inf: no noise)")
    p.add_argument("--lic", type=float, metavar="X", help="liver iron concentration in mg Fe/g dry tissue")
    p.add_argument("--texture-sd", type=float, metavar="SD",
                   help="SD of the log-normal LIC texture in log LIC (0: uniform liver); replaces the spec's lic_cv")
    p.add_argument("--texture-voxels", type=float, metavar="W",
                   help="smoothing width of the texture in in-plane voxels (the SD of the Gaussian kernel)")
    p.add_argument("--focal", type=_focal, action="append", metavar="X,Y,Z,R,LIC",
                   help="a focal sphere: centre (LPS mm from the slab centre), radius mm, its LIC in mg/g; "
                        "repeat for several; replaces the spec's focal regions")
    p.add_argument("--no-focal", action="store_true", help="remove the spec's focal regions")
    p.add_argument("--pdff", type=float, metavar="PCT", help="GRE with fat_water: liver proton density fat fraction, percent")
    p.add_argument("--b0-peak-hz", type=float, metavar="HZ", help="GRE: peak off-resonance of the smooth B0 field map, Hz")
    p.add_argument("--phase", action="store_true",
                   help="also write the phase image (GRE with fat or a field map): DICOM phase series, NIfTI part-phase")
    p.add_argument("--coils", type=int, metavar="N", help="receive channels (root-sum-of-squares)")
    p.add_argument("--zero-background", action="store_true", help="zero the air outside the body, as scanners do")
    p.add_argument("--per-series-rescale", action="store_true",
                   help="DICOM: a different RescaleSlope per FerriScan series")
    p.add_argument("--shuffle-files", action="store_true", help="DICOM: one flat folder with random file names")
    p.add_argument("--overwrite", action="store_true", help="replace an existing DIR")
    p.add_argument("--list", action="store_true", help="list the shipped phantom names and exit")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..phantom import generate, list_specs, write

    from ..phantom._spec import PhantomSpec

    if args.list:
        print(PhantomSpec.name)  # the default (no NAME given)
        for name in list_specs():
            print(name)
        return 0
    if not args.out:
        raise InputError("-o/--output: an output folder is required (only --list runs without one)")
    overrides = {}
    if args.snr is not None:
        overrides["snr"] = args.snr
    if args.lic is not None:
        overrides["lic_mg_per_g"] = args.lic
    if args.coils is not None:
        overrides["coils"] = args.coils
    if args.texture_sd is not None:
        overrides["lic_log_sd"] = args.texture_sd
        overrides["lic_cv"] = 0.0  # one way to give the spread (the spec's lic_cv is replaced)
    if args.texture_voxels is not None:
        overrides["lic_correlation_voxels"] = args.texture_voxels
    if args.focal and args.no_focal:
        raise InputError("--focal and --no-focal: give one")
    if args.focal or args.no_focal:
        overrides["focal"] = tuple(args.focal or ())
    if args.pdff is not None:
        overrides["pdff_percent"] = args.pdff
    if args.b0_peak_hz is not None:
        overrides["b0_peak_hz"] = args.b0_peak_hz
    if args.zero_background:
        overrides["zero_background"] = True
    ph = generate(args.spec or None, seed=args.seed, **overrides)  # no name: the default
    out = write(ph, args.out, format=args.format, overwrite=args.overwrite,
                per_series_rescale=args.per_series_rescale, shuffle_files=args.shuffle_files,
                phase=args.phase)
    s = ph.summary
    snr = s["snr"] if s["snr"] is not None else math.inf
    print(
        f"{out}: {s['spec_name']} {args.format}, {s['field_strength_t']:g} T {s['sequence']}, "
        f"LIC of mean {s['rate_quantity']} {s['lic_of_mean_r2_mg_per_g']:.3f} mg/g "
        f"(mean {s['rate_quantity']} {s['mean_liver_r2_per_s']:.2f} s^-1), SNR {snr:g}, "
        f"sigma {s['noise_sigma']:.4g}, {s['coils']} coils, seed {s['seed']}"
        + (f", texture SD {s['texture_log_sd']:.3g} in log LIC over {s['texture_scale_voxels']:.3g} voxels"
           if s.get("texture_log_sd") else "")
        + (f", {len(s['spec']['focal'])} focal regions" if s["spec"].get("focal") else "")
        + (f", liver PDFF {s['mean_liver_pdff_percent']:.3g} %" if s.get("fat_water") else "")
        + (", phase written" if args.phase else "")
    )
    return 0
