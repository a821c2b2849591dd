"""Write a phantom to disk: image (NIfTI or DICOM), truth maps and ``truth.json``.

Layout of ``out_dir`` (built in a temporary sibling and renamed into place):

* ``truth.json`` - the phantom summary (:attr:`Phantom.summary`);
* ``truth/{r2_per_s,lic_mg_per_g,s0,labels,liver_mask}.nii.gz`` (and for complex GRE
  phantoms ``{pdff_percent,water,fat,field_hz}.nii.gz``) - truth maps on the
  image grid;
* the image in the chosen ``format``:

  - ``nifti``: ``phantom_MESE.nii.gz`` (4-D, echoes last) + ``phantom_MESE.json``
    (BIDS-style sidecar, ``EchoTime`` a list in seconds); ``_MEGRE`` for GRE;
  - ``nifti-per-echo``: ``phantom_echo-<n>_MESE.nii.gz`` + ``.json`` per echo
    (dcm2niix / BIDS multi-echo style, ``EchoTime`` in seconds);
  - ``dicom``: the FerriScan protocol, one single-echo series per TE
    (``dicom/S01_TE6/IM0001.dcm``... or one flat folder of shuffled names);
  - ``dicom-multiecho``: one MR Image Storage series holding every echo;
  - ``dicom-enhanced``: one Enhanced MR Image Storage multi-frame object.

Every byte is a function of the phantom (UIDs are derived from the spec name
and seed, no dates or times are written), so the same seed writes the same files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .._atomic import atomic_directory
from ..errors import InputError

__all__ = ["write", "FORMATS"]

FORMATS = ("nifti", "nifti-per-echo", "dicom", "dicom-multiecho", "dicom-enhanced")


def _suffix(phantom) -> str:
    return "MEGRE" if phantom.image.sequence == "GRE" else "MESE"


def _nifti(data: np.ndarray, affine: np.ndarray, path: Path, *, xyzt_units=("mm", "sec")) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units(*xyzt_units)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    nib.save(img, str(path))


def _sidecar_common(phantom) -> dict[str, Any]:
    img = phantom.image
    sp = phantom.spec
    seq = {"SE": ("SE", "NONE"), "SE-CPMG": ("SE", "NONE"), "GRE": ("GR", "SP")}[sp.sequence]
    out = {
        "Manufacturer": img.manufacturer,
        "ManufacturersModelName": "digital liver phantom",
        "MagneticFieldStrength": img.field_strength_t,
        "ImagingFrequency": _larmor_mhz(img.field_strength_t),
        "ScanningSequence": seq[0],
        "SequenceVariant": seq[1],
        "MRAcquisitionType": "2D",
        "SeriesDescription": sp.description,
        "ProtocolName": sp.name,
        "RepetitionTime": sp.repetition_time_ms / 1000.0,
        "FlipAngle": sp.excitation_flip_deg if sp.sequence != "SE-CPMG" else sp.refocusing_flip_deg * sp.b1_scale,
        "EchoTrainLength": sp.echo_train_length,
        "SliceThickness": sp.slice_thickness_mm,
        "SpacingBetweenSlices": sp.slice_spacing_mm,
        "ConversionSoftware": "r2mri.phantom",
        "ConversionSoftwareVersion": phantom.summary["generator_version"],
        "PhantomSeed": phantom.seed,
        "NoiseSigma": phantom.summary["noise_sigma"],
        "Coils": phantom.summary["coils"],
    }
    return out


def _larmor_mhz(field_t: float) -> float:
    # Proton gyromagnetic ratio gamma/2pi = 42.577 MHz/T [C: CODATA 2018,
    # 42.577 478 518 MHz/T for the free proton; shielded-proton value differs in the 5th digit].
    return round(42.577478518 * float(field_t), 6)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


def _write_truth(phantom, tmp: Path) -> None:
    t = phantom.truth
    aff = phantom.image.affine
    d = tmp / "truth"
    d.mkdir()
    _nifti(t.r2_per_s.astype(np.float32), aff, d / "r2_per_s.nii.gz")
    _nifti(t.lic_mg_per_g.astype(np.float32), aff, d / "lic_mg_per_g.nii.gz")
    _nifti(t.s0.astype(np.float32), aff, d / "s0.nii.gz")
    _nifti(t.labels.astype(np.uint8), aff, d / "labels.nii.gz")
    _nifti(t.liver_mask.astype(np.uint8), aff, d / "liver_mask.nii.gz")
    for key in ("pdff_percent", "water", "fat", "field_hz"):  # complex GRE phantoms only
        value = getattr(t, key, None)
        if value is not None:
            _nifti(value.astype(np.float32), aff, d / f"{key}.nii.gz")
    _write_json(tmp / "truth.json", phantom.summary)


def _write_nifti(phantom, tmp: Path, *, phase: bool = False) -> list[Path]:
    img = phantom.image
    name = f"phantom_{_suffix(phantom)}"
    _nifti(img.data, img.affine, tmp / f"{name}.nii.gz")
    side = _sidecar_common(phantom)
    side["EchoTime"] = [float(t) for t in img.echo_times_s]
    _write_json(tmp / f"{name}.json", side)
    out = [tmp / f"{name}.nii.gz"]
    if phase:  # BIDS "part-phase" entity; the phase in radians, as the sidecar says
        pname = f"phantom_part-phase_{_suffix(phantom)}"
        _nifti(img.phase_rad, img.affine, tmp / f"{pname}.nii.gz")
        _write_json(tmp / f"{pname}.json", dict(side, Units="rad"))
        out.append(tmp / f"{pname}.nii.gz")
    return out


def _write_nifti_per_echo(phantom, tmp: Path) -> list[Path]:
    img = phantom.image
    out = []
    for k in range(img.n_echoes):
        name = f"phantom_echo-{k + 1}_{_suffix(phantom)}"
        _nifti(img.data[..., k], img.affine, tmp / f"{name}.nii.gz", xyzt_units=("mm", "unknown"))
        side = _sidecar_common(phantom)
        side["EchoTime"] = float(img.echo_times_s[k])
        side["EchoNumber"] = k + 1
        _write_json(tmp / f"{name}.json", side)
        out.append(tmp / f"{name}.nii.gz")
    return out


def write(
    phantom,
    out_dir: "str | Path",
    *,
    format: str = "nifti",
    overwrite: bool = False,
    per_series_rescale: bool = False,
    shuffle_files: bool = False,
    phase: bool = False,
) -> Path:
    """Write a phantom's image, truth maps and ``truth.json`` into a new folder.

    Parameters
    ----------
    phantom : Phantom
        From :func:`generate`.
    out_dir : str or Path
        Output folder; built in a temporary sibling and renamed into place.
    format : {"nifti", "nifti-per-echo", "dicom", "dicom-multiecho", "dicom-enhanced"}
        Image container (see the module docstring for the file layout).
    overwrite : bool, default False
        Replace an existing ``out_dir`` (otherwise :class:`~r2mri.InputError`).
    per_series_rescale : bool, default False
        DICOM only: give each FerriScan series its own RescaleSlope (a vendor
        auto-scaling trap a loader must undo), instead of one slope shared by all.
    shuffle_files : bool, default False
        DICOM only: write every file into one flat ``dicom/`` folder under
        seeded random names, as a PACS export would.
    phase : bool, default False
        Also write the phase image (GRE phantoms with ``fat_water`` or a field map):
        ``dicom``/``dicom-multiecho`` add a phase series (ImageType
        ``ORIGINAL\\PRIMARY\\P\\ND``, Siemens scaling) after each magnitude series,
        ``dicom-enhanced`` a second Enhanced MR series (ComplexImageComponent PHASE);
        ``nifti`` adds ``phantom_part-phase_MEGRE.nii.gz`` in radians.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from r2mri.phantom import generate, write
    >>> ph = generate(matrix=(32, 32), pixel_mm=12.0, n_slices=2)
    >>> out = write(ph, pathlib.Path(tempfile.mkdtemp()) / "ph")
    >>> sorted(p.name for p in out.iterdir())
    ['phantom_MESE.json', 'phantom_MESE.nii.gz', 'truth', 'truth.json']
    """
    if format not in FORMATS:
        raise InputError(f"format: must be one of {', '.join(FORMATS)}, got {format!r}")
    if shuffle_files and not format.startswith("dicom"):
        raise InputError(f"shuffle_files: only applies to DICOM formats, not {format!r}")
    if phase:
        from ._dicom_phase import check_phase

        check_phase(phantom.image)
        if format == "nifti-per-echo":
            raise InputError(f"phase: written for formats nifti and dicom*, not {format!r}")
    if per_series_rescale and format != "dicom":
        raise InputError(f"per_series_rescale: only applies to format 'dicom' (one series per TE), not {format!r}")
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        _write_truth(phantom, tmp)
        if format == "nifti":
            _write_nifti(phantom, tmp, phase=phase)
        elif format == "nifti-per-echo":
            _write_nifti_per_echo(phantom, tmp)
        else:
            from . import _dicom

            _dicom.write_dicom(phantom, tmp / "dicom", form=format, per_series_rescale=per_series_rescale,
                               shuffle_files=shuffle_files, phase=phase)
    return Path(out_dir)
