"""``r2mri fit INPUT... -o OUTDIR``: voxel-wise R2 maps (NIfTI) from multi-echo input.

A thin shell over :func:`r2mri.fit`. Writes, atomically, into OUTDIR:
``R2map.nii.gz`` (1/s), ``S0map.nii.gz``, ``R2std.nii.gz`` (1/s), ``status.nii.gz``
(uint8 :class:`r2mri.FitStatus` codes), model-specific maps (``offset``, biexp
components) and ``settings.json`` (everything needed to reproduce the maps). With
``--model fatwater``: ``R2starmap.nii.gz`` (1/s), ``R2starstd.nii.gz``, ``PDFFmap.nii.gz``
(%), ``water.nii.gz``, ``fat.nii.gz``, ``status.nii.gz``, and with phase images
``fieldmap_hz.nii.gz`` and ``phase0_rad.nii.gz``; the field strength comes from the header
or ``--field-strength``. NIfTI phase: BIDS ``part-phase`` files beside the magnitude, or
``--phase FILE...`` (``--no-phase``: magnitude fit), passed to :func:`r2mri.load`.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .._atomic import atomic_directory, atomic_path, atomic_write_text
from ..errors import InputError
from ..fitting import MODELS
from ..image import MultiEchoImage
from .._cli_phase import add_phase_options, phase_argument

#: Echo times of the built-in synthetic volume: the FerriScan protocol (domain.md section 2).
_SYNTHETIC_TE_MS = (6.0, 9.0, 12.0, 15.0, 18.0)


def series_list(groups: list[str] | None) -> list[str] | None:
    """The ``--series`` values, comma-separated or repeated, as one list (None: the loader's choice).

    Examples
    --------
    >>> series_list(["1,2", " 3 "]), series_list(None)
    (['1', '2', '3'], None)
    """
    return [s.strip() for group in groups for s in group.split(",") if s.strip()] if groups else None


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fit",
        help="fit R2 maps to multi-echo DICOM/NIfTI input (or a built-in synthetic volume)",
        description="Voxel-wise R2 fit. Writes R2map, S0map, R2std, status NIfTI maps and "
                    "settings.json into OUTDIR, atomically.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="DICOM folder(s)/files or NIfTI file(s)")
    p.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="output folder (must not exist)")
    p.add_argument("--model", default="auto", choices=list(MODELS),
                   help="decay model (default: auto); 'fatwater': R2* with a multi-peak fat "
                        "spectrum, writes R2starmap, PDFFmap, water, fat (docs/fatwater.md)")
    p.add_argument("--field-strength", type=float, metavar="TESLA",
                   help="main field in tesla for --model fatwater (default: from the header)")
    p.add_argument("--noise-sigma", type=float, metavar="SIGMA",
                   help="noise SD per channel in signal units (default: estimated)")
    p.add_argument("--coils", type=int, metavar="N", help="effective receiver channels (1 = Rician)")
    p.add_argument("--threads", type=int, metavar="N", help="threads (default: all cores)")
    p.add_argument("--echo-times-ms", type=float, nargs="+", metavar="TE",
                   help="echo times in ms (NIfTI without sidecars, or to override DICOM)")
    p.add_argument("--series", action="append", metavar="N[,N...]",
                   help="series to use, by series number or SeriesInstanceUID (comma-separated or "
                        "repeated for the series of a per-TE protocol), as for r2mri load and analyze")
    add_phase_options(p)
    p.add_argument("--mask", metavar="PATH", help="mask NIfTI/DICOM SEG of the voxels to fit")
    p.add_argument("--synthetic", action="store_true",
                   help="fit a small built-in synthetic volume instead of INPUT")
    p.add_argument("--overwrite", action="store_true", help="replace OUTDIR if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def synthetic_image(seed: int = 0) -> MultiEchoImage:
    """A small synthetic FerriScan-like volume (48 x 48 x 3, 5 echoes, Rician SNR 50).

    A disc of "liver" whose R2 rises from 30 to 250 s^-1 left to right, S0 = 1000, in
    air; Rician noise sigma = 20 (SNR 50 at TE = 0). For demonstrations and smoke tests.
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = 48, 48, 3
    x, y = np.meshgrid(np.linspace(-1, 1, nx), np.linspace(-1, 1, ny), indexing="ij")
    disc = (x**2 + y**2) < 0.6
    r2 = 30.0 + 220.0 * (x + 1.0) / 2.0
    te = np.array(_SYNTHETIC_TE_MS) * 1e-3
    amp = np.where(disc, 1000.0, 0.0)[..., None, None] * np.exp(-r2[..., None, None] * te)
    amp = np.broadcast_to(amp, (nx, ny, nz, te.size))
    sigma = 20.0
    data = np.hypot(amp + rng.normal(0, sigma, amp.shape), rng.normal(0, sigma, amp.shape))
    affine = np.diag([2.0, 2.0, 5.0, 1.0])
    return MultiEchoImage(data.astype(np.float32), te, affine, field_strength_t=1.5,
                          sequence="SE", echo_train_length=1,
                          metadata={"source": "synthetic", "noise_sigma_true": sigma})


def _save_nifti(path, data, affine, unit=None):
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data), affine)
    img.header.set_xyzt_units("mm", "sec")
    if unit:
        img.header["descrip"] = unit.encode()[:79]
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def run(args) -> int:
    import r2mri

    if args.synthetic:
        if args.inputs or args.phase:
            raise InputError("INPUT: give either input paths or --synthetic, not both")
        img = synthetic_image()
    else:
        if not args.inputs:
            raise InputError("INPUT: no input given (or use --synthetic)")
        img = r2mri.load(list(args.inputs), echo_times_ms=args.echo_times_ms, series=series_list(args.series),
                         phase=phase_argument(args))
    mask = None
    if args.mask:
        mask = r2mri.load_mask(args.mask, like=img)

    bar = None
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="vox", unit_scale=True, desc="r2mri fit", file=sys.stderr,
                   disable=None, leave=False)

        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

    extra_opts = {}
    if args.model == "fatwater":
        b0 = args.field_strength if args.field_strength is not None else img.field_strength_t
        if b0 is None:
            raise InputError(f"{_input_name(args)}: --model fatwater needs the main field strength, "
                             "not in the header; pass --field-strength 1.5 (or 3)")
        extra_opts["field_strength_t"] = b0
    elif args.field_strength is not None:
        raise InputError("--field-strength: only used with --model fatwater")
    try:
        res = r2mri.fit(img, model=args.model, mask=mask, noise_sigma=args.noise_sigma,
                        coils=args.coils, threads=args.threads, progress=progress, **extra_opts)
    finally:
        if bar is not None:
            bar.close()

    counts = res.status_counts()
    fitted = res.status != r2mri.FitStatus.MASKED
    ok = res.status == r2mri.FitStatus.OK
    fatwater = res.model == "fatwater"
    rate = "R2*" if fatwater else "R2"
    maps = _fatwater_maps(res) if fatwater else _decay_maps(res)
    settings = {
        "command": "r2mri fit",
        "inputs": ["<synthetic>"] if args.synthetic else [str(p) for p in args.inputs],
        "mask": args.mask,
        "fit": res.options,
        "status_counts": counts,
        ("median_r2star_per_s_ok_voxels" if fatwater else "median_r2_per_s_ok_voxels"):
            float(np.median(res.r2_per_s[ok])) if ok.any() else None,
        "outputs": {name: label for name, (_, label) in maps.items()},
    }
    if fatwater:
        settings["median_pdff_percent_ok_voxels"] = (float(np.median(res.extra["pdff_percent"][ok]))
                                                     if ok.any() else None)
    with atomic_directory(args.out, overwrite=args.overwrite) as tmp:
        for name, (data, label) in maps.items():
            _save_nifti(tmp / name, data, img.affine, label)
        atomic_write_text(tmp / "settings.json", json.dumps(settings, indent=2) + "\n")
    sigma = res.options["noise_sigma"]
    median = next(v for k, v in settings.items() if k.startswith("median_r2"))
    print(f"r2mri fit: model {res.model}"
          + (f" ({res.options['fit']})" if fatwater else "")
          + (f", sigma {sigma:.4g} ({res.options['noise_method']})" if sigma else "")
          + f", {int(fitted.sum())} voxels fitted, {counts.get('ok', 0)} ok"
          + (f", median {rate} {median:.1f} 1/s" if ok.any() else "")
          + (f", median PDFF {settings['median_pdff_percent_ok_voxels']:.1f} %"
             if fatwater and ok.any() else "")
          + f" -> {args.out}")
    return 0


def _input_name(args) -> str:
    return "<synthetic>" if args.synthetic else ", ".join(str(p) for p in args.inputs)


def _decay_maps(res) -> dict:
    """File name -> (map, label) of the spin-echo decay models."""
    maps = {"R2map.nii.gz": (res.r2_per_s, "R2 1/s"), "S0map.nii.gz": (res.s0, "S0 signal units"),
            "R2std.nii.gz": (res.r2_std_per_s, "R2 standard error 1/s"),
            "status.nii.gz": (res.status, "r2mri.FitStatus codes uint8")}
    if res.offset is not None:
        maps["offset.nii.gz"] = (res.offset, "constant offset signal units")
    for name in ("fast_fraction", "r2_slow_per_s", "r2_fast_per_s"):
        if name in res.extra:
            maps[f"{name}.nii.gz"] = (res.extra[name], name)
    return maps


def _fatwater_maps(res) -> dict:
    """File name -> (map, label) of the fat-water model (R2*, not R2)."""
    maps = {"R2starmap.nii.gz": (res.r2_per_s, "R2* 1/s"),
            "R2starstd.nii.gz": (res.r2_std_per_s, "R2* standard error 1/s"),
            "PDFFmap.nii.gz": (res.extra["pdff_percent"], "PDFF percent"),
            "water.nii.gz": (res.extra["water"], "water signal at TE 0, signal units"),
            "fat.nii.gz": (res.extra["fat"], "fat signal at TE 0, signal units"),
            "status.nii.gz": (res.status, "r2mri.FitStatus codes uint8")}
    if "field_map_hz" in res.extra:
        maps["fieldmap_hz.nii.gz"] = (res.extra["field_map_hz"], "B0 off-resonance Hz")
        maps["phase0_rad.nii.gz"] = (res.extra["phase0_rad"], "initial phase rad")
    return maps
