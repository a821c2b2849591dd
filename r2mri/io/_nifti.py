"""NIfTI multi-echo input: a 4-D file, or one 3-D file per echo, with BIDS JSON sidecars.

BIDS sidecar ``EchoTime`` is in **seconds** (BIDS specification, "Magnetic
Resonance Imaging" > "Sequence Specifics"; dcm2niix writes it so). A 4-D file's
sidecar may carry a list (one per volume).
"""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..image import MultiEchoImage
from ._headers import sidecar_field


def is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def sidecar_path(path: Path) -> Path:
    name = path.name
    stem = name[:-7] if name.lower().endswith(".nii.gz") else name[:-4]
    return path.with_name(stem + ".json")


def _sidecar(path: Path) -> dict:
    sc = sidecar_path(path)
    if not sc.is_file():
        return {}
    try:
        meta = json.loads(sc.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{sc}: unreadable JSON sidecar ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{sc}: JSON sidecar must be an object")
    return meta


def _load(path: Path):
    import nibabel as nib  # here, not at module level: DICOM loading never needs it

    try:
        with open(path, "rb"):
            pass
    except OSError as exc:  # permission denied, a folder named .nii...
        raise InputError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    try:
        img = nib.load(str(path))
        _check_size(path, img)
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except InputError:
        raise
    except Exception as exc:  # nibabel raises many types on corrupt files
        detail = " ".join(str(exc).split())  # nibabel's messages can span lines; ours are one line
        raise InputError(f"{path}: unreadable NIfTI ({type(exc).__name__}: {detail})") from None
    affine = img.affine
    if affine is None or not np.all(np.isfinite(affine)):
        raise InputError(f"{path}: NIfTI has no valid affine")
    return data, np.asarray(affine, float)


def _check_size(path: Path, img) -> None:
    """The file must hold the voxel data its header describes; checked before nibabel allocates
    the array, so a damaged dimension cannot claim gigabytes of memory for a small file."""
    offset = int(getattr(img.dataobj, "offset", 0) or 0)
    need = offset + int(np.prod(img.shape, dtype=object)) * img.get_data_dtype().itemsize
    if path.name.lower().endswith(".gz"):
        # fast path: a gzip member ends with its uncompressed size mod 2**32 (RFC 1952, ISIZE),
        # the whole size for the usual single-member file; else count by decompressing
        # (bounded memory; multi-member files are counted whole)
        with open(path, "rb") as f:
            f.seek(max(path.stat().st_size - 4, 0))
            tail = f.read(4)
        if len(tail) == 4 and need < 2**32 and struct.unpack("<I", tail)[0] == need:
            return
        with gzip.open(path) as f:
            have = f.seek(0, io.SEEK_END)
    else:
        have = path.stat().st_size
    if have < need:
        raise InputError(f"{path}: header describes {'x'.join(map(str, img.shape))} voxels ({need} bytes with the "
                         f"header) but the file holds {have} bytes (truncated or damaged)")
    if have > need:  # nibabel would read the first voxels only: a wrong dimension loads a crop
        raise InputError(f"{path}: header describes {'x'.join(map(str, img.shape))} voxels ({need} bytes with the "
                         f"header) but the file holds {have} bytes: the header does not match the data")


def _sidecar_value(meta: dict, key: str, cast=None):
    """``meta[key]`` cast to ``cast`` (float: finite only), ``None`` when absent or malformed."""
    v = meta.get(key)
    if v is None or cast is None:
        return v
    if cast is str:
        return v if isinstance(v, str) else None
    if isinstance(v, (list, dict, bool)):
        return None
    try:
        out = cast(v)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf) from "1e400"
        return None
    return out if cast is not float or np.isfinite(out) else None


def _sidecar_te_s(meta: dict, path: Path):
    te = meta.get("EchoTime")
    if te is None:
        return None
    try:
        arr = np.asarray(te, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"{sidecar_path(path)}: EchoTime is not numeric ({te!r})") from None
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(f"{sidecar_path(path)}: EchoTime is not numeric ({te!r})")
    return arr


def load_nifti(paths: Sequence[Path], echo_times_ms=None) -> MultiEchoImage:
    """Load one 4-D NIfTI or several 3-D NIfTI files (one per echo)."""
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    if len(paths) == 1:
        data, affine, te_s, files, metas, src, meta = _read_4d(paths[0])
    else:
        data, affine, te_s, files, metas, src, meta = _read_per_echo(paths, echo_times_ms)
    data, te_s, files = _echo_order(data, te_s, files, paths, src, echo_times_ms)
    md, seq_s, etl, fs = _nifti_metadata(paths, data, affine, te_s, files, meta, metas, src, echo_times_ms)
    return MultiEchoImage(
        data=data,
        echo_times_s=te_s,
        affine=affine,
        field_strength_t=fs,
        manufacturer=meta.get("Manufacturer"),
        sequence=seq_s,
        echo_train_length=etl,
        metadata=md,
        source_datasets=None,
    )


def _read_4d(path: Path):
    """One 4-D (or 3-D, one echo) file: ``(data, affine, te_s or None, files, metas, src, meta)``."""
    data, affine = _load(path)
    meta = _sidecar(path)
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise InputError(f"{path}: expected a 4-D (x, y, z, echo) NIfTI, got shape {data.shape}")
    te_s = _sidecar_te_s(meta, path)
    files = [[str(path)]] * data.shape[3]
    metas = [meta]
    src = [str(path)]
    return data, affine, te_s, files, metas, src, meta


def _read_per_echo(paths: list[Path], echo_times_ms):
    """One 3-D file per echo, same grid: ``(data, affine, te_s or None, files, metas, src, meta)``."""
    vols, tes, metas = [], [], []
    affine = None
    for p in paths:
        d, a = _load(p)
        if d.ndim == 4 and d.shape[3] == 1:
            d = d[..., 0]
        if d.ndim == 2:
            d = d[..., None]
        if d.ndim != 3:
            raise InputError(f"{p}: expected a 3-D volume per echo, got shape {d.shape}")
        if vols and d.shape != vols[0].shape:
            raise InputError(f"{p}: shape {d.shape} differs from {paths[0]} {vols[0].shape}")
        if affine is not None and not np.allclose(a, affine, rtol=1e-4, atol=1e-3):
            raise InputError(f"{p}: affine differs from {paths[0]} (different grid)")
        affine = a if affine is None else affine
        m = _sidecar(p)
        t = _sidecar_te_s(m, p)
        if t is not None and t.size != 1:
            raise InputError(f"{sidecar_path(p)}: {t.size} EchoTime values for a 3-D volume")
        vols.append(d)
        tes.append(None if t is None else float(t[0]))
        metas.append(m)
    if echo_times_ms is None and any(t is None for t in tes):
        k = tes.index(None)
        raise InputError(f"{paths[k]}: no echo time (no JSON sidecar with EchoTime); pass echo_times_ms= (command line: --echo-times-ms)")
    data = np.stack(vols, axis=-1)
    te_s = None if echo_times_ms is not None else np.asarray(tes, float)
    files = [[str(p)] for p in paths]
    src = [str(p) for p in paths]
    meta = metas[0]
    return data, affine, te_s, files, metas, src, meta


def _echo_order(data: np.ndarray, te_s, files: list, paths: list[Path], src: list[str], echo_times_ms):
    """The echo times (the user's, else the sidecars'), checked, and the echoes in ascending order."""
    n = data.shape[3]
    if echo_times_ms is not None:
        te_s = np.asarray(echo_times_ms, dtype=float).reshape(-1) * 1e-3
        if te_s.size != n:
            raise InputError(f"echo_times_ms: {te_s.size} values given but {src[0]} holds {n} echoes")
    elif te_s is None:
        raise InputError(f"{paths[0]}: no echo times (no JSON sidecar with EchoTime); pass echo_times_ms= (command line: --echo-times-ms)")
    elif te_s.size != n:
        raise InputError(
            f"{sidecar_path(paths[0])}: sidecar lists {te_s.size} EchoTime values but the image has {n} echoes"
        )
    if n < 2:
        raise InputError(f"{paths[0]}: only one echo; need a multi-echo dataset")
    order = np.argsort(te_s, kind="stable")
    if np.any(np.diff(te_s[order]) <= 0):
        raise InputError(f"{src[0]}: echo times must be distinct, got {(te_s * 1e3).tolist()} ms")
    data = data[..., order]
    te_s = te_s[order]
    files = [files[i] for i in order]
    if not np.all(np.isfinite(data)):
        raise InputError(f"{src[0]}: image contains NaN or inf")
    return data, te_s, files


def _nifti_metadata(paths: list[Path], data: np.ndarray, affine: np.ndarray, te_s: np.ndarray, files: list,
                    meta: dict, metas: list[dict], src: list[str], echo_times_ms):
    """``(metadata, sequence, echo_train_length, field_strength_t)`` of the image, from the JSON sidecars."""
    n = data.shape[3]

    def g(key, cast=None, m=None):
        return _sidecar_value(meta if m is None else m, key, cast)

    seq = meta.get("ScanningSequence")
    seq_s = None
    if seq is not None:
        s = str(seq).upper()
        seq_s = "SE" if "SE" in s else ("GRE" if "GR" in s else None)
    etl = g("EchoTrainLength", int)
    if seq_s == "SE" and etl is not None and etl > 1:
        seq_s = "SE-CPMG"
    tr = g("RepetitionTime", float)
    pixdim = np.linalg.norm(affine[:3, :3], axis=0)
    md = {
        "source": ", ".join(src),
        "format": "nifti",
        "dataset_kind": "nifti-4d" if len(paths) == 1 else "nifti-per-echo",
        "echo_files": files,
        "echo_times_ms": (te_s * 1e3).tolist(),
        "echo_times_overridden": echo_times_ms is not None,
        "repetition_time_s": tr,
        "flip_angle_deg": g("FlipAngle", float),
        "series_instance_uids": [m.get("SeriesInstanceUID") for m in metas] if len(paths) > 1 else [meta.get("SeriesInstanceUID")] * n,
        "series_descriptions": [m.get("SeriesDescription") for m in metas] if len(paths) > 1 else [meta.get("SeriesDescription")] * n,
        "study_instance_uid": meta.get("StudyInstanceUID"),
        "patient_id": meta.get("PatientID"),
        "patient_name": meta.get("PatientName"),
        "study_date": meta.get("AcquisitionDateTime", meta.get("StudyDate")),
        "accession_number": meta.get("AccessionNumber"),
        "pixel_spacing_mm": [float(pixdim[1]), float(pixdim[0])],
        "slice_thickness_mm": g("SliceThickness", float),
        "slice_spacing_mm": float(pixdim[2]),
        "matrix": [int(data.shape[1]), int(data.shape[0])],
        "n_slices": int(data.shape[2]),
        "series": [
            {
                "series_instance_uid": m.get("SeriesInstanceUID"),
                "series_description": m.get("SeriesDescription"),
                "repetition_time_ms": (g("RepetitionTime", float, m) * 1e3) if g("RepetitionTime", float, m) is not None else None,
                "flip_angle_deg": g("FlipAngle", float, m),
                "echo_train_length": g("EchoTrainLength", int, m),
                "receive_coil": g("ReceiveCoilName", str, m),
                "field_strength_t": g("MagneticFieldStrength", float, m),
                # a malformed value (list, text) counts as absent, as a missing DICOM tag does
                "philips_scale_slopes": [v] if (v := g("PhilipsScaleSlope", float, m)) is not None else [],
                "rescale_slopes": [v] if (v := g("PhilipsRescaleSlope", float, m)) is not None else [],
                "files": [str(p)],
            }
            for m, p in zip(metas, paths)
        ],
        "sidecar": meta,
        # dcm2niix writes Philips data as FP when UsePhilipsFloatNotDisplayScaling is 1
        "philips_floating_point_values": bool(metas) and all(
            m.get("UsePhilipsFloatNotDisplayScaling") == 1 for m in metas),
    }
    # MagneticFieldStrength checked against ImagingFrequency per sidecar (r2mri.io._headers)
    fields, md["header_findings"] = sidecar_field(metas or [meta], [str(p) for p in paths])
    for s_, b in zip(md["series"], fields):
        s_["field_strength_t"] = b
    return md, seq_s, etl, fields[0]
