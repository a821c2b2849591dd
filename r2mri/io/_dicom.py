"""DICOM discovery, slice sorting, assembly and pixel reading.

Everything is reduced to *frames*: one 2-D image with its geometry, echo time and
acquisition parameters. A classic MR Image Storage file is one frame; an Enhanced MR
multi-frame file gives one frame per item of its Per-frame Functional Groups
(see :mod:`r2mri.io._enhanced`). Frames are grouped by series, series into candidate
datasets (:mod:`r2mri.io._grouping`), and the chosen dataset is assembled into
``(x, y, z, echo)``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from ..image import MultiEchoImage
from ._geometry import (
    MM_ATOL,
    MM_RTOL,
    affine_from_dicom,
    slice_normal,
)
from ._dicom_metadata import _drop_undecodable, _metadata, _s, _strip, _text  # noqa: F401
from ._dicom_volume import _series_label, _uniform_step, echo_order, philips_floating, sorted_slices  # noqa: F401
from ._grouping import echo_key as _echo_key
from ._grouping import geometry_difference
from ._headers import header_params
from ._headers import review as review_headers
from ._sniff import damaged_dicom_reason

#: DICOM Media Storage Directory (DICOMDIR) SOP Class UID, DICOM PS3.4 Annex B.5.
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: MR Image Storage SOP Class UID, DICOM PS3.4 Annex B.5.
MR_IMAGE_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.4"
#: Enhanced MR Image Storage SOP Class UID, DICOM PS3.4 Annex B.5.
ENHANCED_MR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.4.1"

#: Philips private MR scale slope / intercept ("SS", "SI"), creator "Philips MR Imaging DD 001",
#: element (2005,xx0E) / (2005,xx0D). Floating value FP = (PV * RS + RI) / (RS * SS):
#: confirmed in dcm2niix (nii_dicom.c, PhilipsPreciseVal) and in the Philips PAR/REC
#: header text ("FP = DV / (RS * SS)", quoted on discuss.afni.nimh.nih.gov/t/1541).
#: Literature: Chenevert TL et al., "Errors in quantitative image analysis due to
#: platform-dependent image scaling", Transl Oncol 2014;7(1):65-71 [R: citation from
#: memory, the paper's text was not at hand].
PHILIPS_CREATOR = "Philips MR Imaging DD 001"
PHILIPS_SCALE_SLOPE_ELEMENT = 0x0E
PHILIPS_SCALE_INTERCEPT_ELEMENT = 0x0D

#: Complex-component markers in ImageType value 3 / FrameType that are not magnitude.
_NON_MAGNITUDE = {"P", "PHASE", "R", "REAL", "I", "IMAGINARY", "MIXED"}


@dataclass
class Frame:
    """One 2-D image of the input (internal)."""

    path: str
    frame_index: int | None  # 0-based frame of a multi-frame file, else None
    header: Any  # pydicom Dataset without pixel data
    series_uid: str
    study_uid: str | None
    for_uid: str | None
    series_number: int | None
    series_description: str
    te_ms: float | None
    echo_number: int | None
    position: np.ndarray
    row_cos: np.ndarray
    col_cos: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    cols: int
    slice_thickness: float | None
    rescale_slope: float
    rescale_intercept: float
    params: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        return self.path if self.frame_index is None else f"{self.path} (frame {self.frame_index + 1})"

    @property
    def normal(self) -> np.ndarray:
        return slice_normal(self.row_cos, self.col_cos)


# ----------------------------------------------------------------------------- reading
def _read(path: str, *, pixels: bool):
    with warnings.catch_warnings():
        # e.g. "Invalid value for VR UI" on UIDs with a leading-zero component
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, stop_before_pixels=not pixels)


def _iter_files(paths: Sequence[Path]) -> tuple[list[tuple[str, bool]], list[str]]:
    """(file, explicit) pairs from files and recursively walked folders."""
    out: list[tuple[str, bool]] = []
    missing = []
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    out.append((os.path.join(root, f), False))
        elif p.is_file():
            out.append((str(p), True))
        else:
            missing.append(str(p))
    return out, missing


def _num(value, cast=float):
    if value is None or value == "":
        return None
    try:
        v = cast(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if cast is float and not np.isfinite(v):
        return None
    return v


def _vec(value, n: int, what: str, where: str) -> np.ndarray:
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {what} is not numeric ({value!r})") from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise InputError(f"{where}: {what} must have {n} finite values, got {value!r}")
    return arr


def find_attr(ds, keyword: str, frame_index: int | None = None):
    """Value of ``keyword`` at top level, else in the per-frame / shared functional groups
    (one or two sequence levels deep), else ``None``."""
    if keyword in ds:
        v = ds.get(keyword)
        if v is not None and v != "":
            return v
    groups = []
    if frame_index is not None:
        pf = ds.get("PerFrameFunctionalGroupsSequence")
        if pf is not None and frame_index < len(pf):
            groups.append(pf[frame_index])
    sh = ds.get("SharedFunctionalGroupsSequence")
    if sh:
        groups.append(sh[0])
    for g in groups:
        for elem in g:
            if elem.VR != "SQ":
                continue
            for item in elem.value:
                if keyword in item:
                    v = item.get(keyword)
                    if v is not None and v != "":
                        return v
                for sub in item:
                    if sub.VR == "SQ":
                        for it2 in sub.value:
                            if keyword in it2:
                                v = it2.get(keyword)
                                if v is not None and v != "":
                                    return v
    return None


def _philips_scale(ds) -> tuple[float | None, float | None]:
    try:
        block = ds.private_block(0x2005, PHILIPS_CREATOR)
    except (KeyError, ValueError):
        return None, None
    out = []
    for el in (PHILIPS_SCALE_SLOPE_ELEMENT, PHILIPS_SCALE_INTERCEPT_ELEMENT):
        try:
            v = block[el].value
            if isinstance(v, (bytes, bytearray)):
                v = np.frombuffer(bytes(v)[:4], "<f4")[0] if len(v) >= 4 else None
            elif isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
                v = v[0] if len(v) else None
            out.append(_num(v))
        except (KeyError, TypeError, ValueError, IndexError):
            out.append(None)
    return out[0], out[1]


def _frame_params(ds, fi: int | None) -> dict:
    """Acquisition parameters compared between series by the protocol check."""
    tr = _num(find_attr(ds, "RepetitionTime", fi))
    fa = _num(find_attr(ds, "FlipAngle", fi))
    bs = _num(ds.get("BitsStored"), int)
    pr = _num(ds.get("PixelRepresentation"), int) or 0
    acq = find_attr(ds, "AcquisitionMatrix", fi)
    try:
        acq = [int(v) for v in acq] if acq is not None else None
    except (TypeError, ValueError):
        acq = None
    ss, si = _philips_scale(ds)
    etl = _num(find_attr(ds, "EchoTrainLength", fi), int)
    coil = find_attr(ds, "ReceiveCoilName", fi)
    return {
        "repetition_time_ms": tr,
        "flip_angle_deg": fa,
        "echo_train_length": etl,
        "receive_coil": str(coil) if coil is not None else None,
        "transmit_coil": (str(find_attr(ds, "TransmitCoilName", fi)) if find_attr(ds, "TransmitCoilName", fi) is not None else None),
        "acquisition_matrix": acq,
        "bits_stored": bs,
        "pixel_representation": pr,
        "philips_scale_slope": ss,
        "philips_scale_intercept": si,
        "manufacturer": str(ds.get("Manufacturer")) if ds.get("Manufacturer") else None,
        "pixel_bandwidth_hz": _num(find_attr(ds, "PixelBandwidth", fi)),
        # field strength (checked against the imaging frequency), spin/gradient echo (every
        # header field that names it), 2D/3D: see r2mri.io._headers
        **header_params(ds, fi, find_attr),
    }


def _is_magnitude(image_type) -> bool:
    try:
        vals = [str(v).upper() for v in image_type]
    except TypeError:
        return True
    return not (len(vals) > 2 and vals[2] in _NON_MAGNITUDE)


def frames_from_dataset(ds, path: str) -> list[Frame]:
    """All magnitude frames of one header (classic or Enhanced MR); [] if not an image."""
    from ._enhanced import enhanced_frames

    if "PerFrameFunctionalGroupsSequence" in ds:
        return enhanced_frames(ds, path)
    required = ("Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient")
    meta = getattr(ds, "file_meta", None)
    sop = {str(ds.get("SOPClassUID", "")), str(meta.get("MediaStorageSOPClassUID", "")) if meta else ""}
    if MR_IMAGE_SOP_CLASS in sop:
        # an MR image must carry its geometry: a missing tag means a damaged header
        missing = [k for k in required + ("PixelSpacing",) if k not in ds]
        if missing:
            raise InputError(f"{path}: MR image header lacks {', '.join(missing)} (truncated or damaged file?)")
    elif any(k not in ds for k in required):
        if not any(sop):  # a DICM prefix and no SOP class at all: cut right after the prefix
            raise InputError(f"{path}: damaged DICOM file (no SOP Class UID: empty or truncated header)")
        return []  # secondary capture, SR, presentation state...
    if not _is_magnitude(ds.get("ImageType", [])):
        return []
    return [classic_frame(ds, path)]


def classic_frame(ds, path: str) -> Frame:
    where = path
    rows = _num(ds.get("Rows"), int)
    cols = _num(ds.get("Columns"), int)
    if not rows or not cols or rows < 1 or cols < 1:
        raise InputError(f"{where}: invalid matrix Rows={ds.get('Rows')!r} Columns={ds.get('Columns')!r}")
    iop = _vec(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", where)
    ipp = _vec(ds.ImagePositionPatient, 3, "ImagePositionPatient", where)
    if "PixelSpacing" not in ds:
        raise InputError(f"{where}: PixelSpacing is missing")
    _check_pixel_format(ds, where)
    ps = _vec(ds.PixelSpacing, 2, "PixelSpacing", where)
    if np.any(ps <= 0):
        raise InputError(f"{where}: PixelSpacing must be positive, got {ps.tolist()}")
    return _make_frame(ds, path, None, rows, cols, iop, ipp, ps,
                       te=_num(ds.get("EchoTime")),
                       echo_number=ds.get("EchoNumbers"),
                       thickness=_num(ds.get("SliceThickness")),
                       slope=ds.get("RescaleSlope"), intercept=ds.get("RescaleIntercept"))


def _check_pixel_format(ds, where: str) -> None:
    """Image Pixel module sanity (DICOM PS3.3 C.7.6.3): one grey sample, BitsStored <= BitsAllocated,
    HighBit = BitsStored - 1 (required for MR, PS3.3 C.8.3.1.1)."""
    spp = _num(ds.get("SamplesPerPixel"), int)
    if spp is not None and spp != 1:
        raise InputError(f"{where}: SamplesPerPixel {spp}; expected 1 (greyscale magnitude)")
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").upper()
    if pi not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputError(f"{where}: PhotometricInterpretation {pi!r}; expected MONOCHROME2")  # repr: one line (fuzz case 90967)
    ba = _num(ds.get("BitsAllocated"), int)
    bs = _num(ds.get("BitsStored"), int)
    hb = _num(ds.get("HighBit"), int)
    if ba is not None and ba not in (8, 16, 32):
        raise InputError(f"{where}: BitsAllocated {ba}; expected 8, 16 or 32")
    if bs is not None and (bs < 1 or (ba is not None and bs > ba)):
        raise InputError(f"{where}: BitsStored {bs} inconsistent with BitsAllocated {ba}")
    if hb is not None and bs is not None and hb != bs - 1:
        raise InputError(f"{where}: HighBit {hb} != BitsStored - 1 ({bs - 1})")


def _rescale_value(value, name: str, where: str, default: float) -> float:
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) == 1 else None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name} is not a number ({value!r})") from None
    if not np.isfinite(v) or (name == "RescaleSlope" and v == 0):
        raise InputError(f"{where}: invalid {name} {v}")
    return v


def _make_frame(ds, path, fi, rows, cols, iop, ipp, ps, *, te, echo_number, thickness, slope, intercept) -> Frame:
    where = path if fi is None else f"{path} (frame {fi + 1})"
    row_cos, col_cos = iop[:3], iop[3:]
    for v, name in ((row_cos, "row"), (col_cos, "column")):
        if abs(np.linalg.norm(v) - 1.0) > 1e-2:
            raise InputError(f"{where}: ImageOrientationPatient {name} direction is not a unit vector")
    if abs(float(np.dot(row_cos, col_cos))) > 1e-2:
        raise InputError(f"{where}: ImageOrientationPatient directions are not orthogonal")
    row_cos = row_cos / np.linalg.norm(row_cos)
    col_cos = col_cos / np.linalg.norm(col_cos)
    if te is not None and te < 0:
        raise InputError(f"{where}: negative EchoTime {te}")
    en = echo_number
    if isinstance(en, (list, tuple, pydicom.multival.MultiValue)):
        en = en[0] if len(en) else None
    en = _num(en, int)
    rs = _rescale_value(slope, "RescaleSlope", where, 1.0)
    ri = _rescale_value(intercept, "RescaleIntercept", where, 0.0)
    series_uid = str(ds.get("SeriesInstanceUID", "") or "")
    if not series_uid:
        raise InputError(f"{where}: SeriesInstanceUID is missing")
    return Frame(
        path=path,
        frame_index=fi,
        header=ds,
        series_uid=series_uid,
        study_uid=str(ds.get("StudyInstanceUID")) if ds.get("StudyInstanceUID") else None,
        for_uid=str(ds.get("FrameOfReferenceUID")) if ds.get("FrameOfReferenceUID") else None,
        series_number=_num(ds.get("SeriesNumber"), int),
        series_description=str(ds.get("SeriesDescription", "") or ""),
        te_ms=te,
        echo_number=en,
        position=ipp,
        row_cos=row_cos,
        col_cos=col_cos,
        pixel_spacing=(float(ps[0]), float(ps[1])),
        rows=int(rows),
        cols=int(cols),
        slice_thickness=thickness,
        rescale_slope=rs,
        rescale_intercept=ri,
        params=_frame_params(ds, fi),
    )


def discover(paths: Sequence[Path], complex_out: list | None = None) -> tuple[list[Frame], list[str]]:
    """Read headers of every file under ``paths``.

    Non-DICOM files (``VERSION``, text, DICOMDIR, SR, presentation states) are skipped
    and listed, whether met in a folder or in a list of files (a shell glob); a single
    named file that is not DICOM, any corrupt DICOM file, and a file that looks like a
    damaged one (empty, cut inside the preamble: :func:`._sniff.damaged_dicom_reason`)
    raises InputError. With ``complex_out``, phase/real/imaginary images are appended
    there (:func:`r2mri.io._phase.complex_frames`) instead of being skipped.
    """
    files, missing = _iter_files(paths)
    if missing:
        raise InputError(f"{missing[0]}: no such file or folder")
    frames: list[Frame] = []
    skipped: list[str] = []
    single = len(files) == 1
    for path, explicit in files:
        try:
            ds = _read(path, pixels=False)
        except InvalidDicomError:
            if explicit and single:
                raise InputError(f"{path}: not a DICOM file (no DICM preamble)") from None
            damaged = damaged_dicom_reason(path)
            if damaged:  # skipping it could drop a whole series without a word
                raise InputError(f"{path}: damaged DICOM file ({damaged}); "
                                 "remove it or name the files to load") from None
            skipped.append(path)
            continue
        except InputError:
            raise
        except PermissionError as exc:
            raise InputError(f"{path}: cannot read the file: {exc.strerror}") from None
        except Exception as exc:  # truncated / corrupt header: pydicom raises many types
            raise InputError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc})") from None
        try:
            sop = str(ds.file_meta.get("MediaStorageSOPClassUID", "")) if hasattr(ds, "file_meta") else ""
            if sop == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
                skipped.append(path)
                continue
            new = frames_from_dataset(ds, path)
            if complex_out is not None:
                from ._phase import complex_frames

                extra = complex_frames(ds, path)
                complex_out.extend(extra)
                if extra and not new:
                    continue
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{path}: malformed DICOM header ({type(exc).__name__}: {exc})") from None
        if not new:
            skipped.append(path)
        frames.extend(new)
    return frames, skipped


# ----------------------------------------------------------------------------- assembly
def _stored_max(bits_stored, pixel_representation) -> float | None:
    if not bits_stored or bits_stored < 1 or bits_stored > 32:
        return None
    return float(2 ** (bits_stored - 1) - 1) if pixel_representation else float(2**bits_stored - 1)


def _check_native_length(ds, path: str) -> None:
    """Refuse uncompressed pixel data longer than the header describes: pydicom would drop
    the excess with a warning, so a wrong Rows / Columns / NumberOfFrames (a header that
    does not match its data) would load as a smaller image (fuzz case 2873)."""
    from pydicom.pixels.utils import get_expected_length

    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None)
    if ts is None or getattr(ts, "is_compressed", True) or "PixelData" not in ds:
        return
    expected = get_expected_length(ds, unit="bytes")
    actual = len(ds.PixelData)
    if actual > expected + (expected % 2):  # one pad byte to an even length is allowed
        raise InputError(f"{path}: pixel data holds {actual} bytes but Rows x Columns x frames x "
                         f"BitsAllocated describe {expected}: the header does not match the data")


def _pixels(frame: Frame, cache: dict) -> np.ndarray:
    """Stored (raw) 2-D pixel values of ``frame``, shape (rows, cols)."""
    key = frame.path
    if key not in cache:
        ds = None
        try:
            ds = _read(frame.path, pixels=True)
            _check_native_length(ds, frame.path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arr = ds.pixel_array
        except InputError:
            raise
        except Exception as exc:
            ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            ts_txt = f", transfer syntax {ts.name if hasattr(ts, 'name') else ts}" if ts else ""
            raise InputError(
                f"{frame.path}: cannot read pixel data (corrupt, truncated or undecodable{ts_txt}; "
                f"{type(exc).__name__}: {exc})"
            ) from None
        cache.clear()  # keep at most one file (multi-frame files can be big)
        cache[key] = np.asarray(arr)
    arr = cache[key]
    if frame.frame_index is not None:
        if arr.ndim == 2 and frame.frame_index == 0:
            pass
        elif arr.ndim != 3 or frame.frame_index >= arr.shape[0]:
            raise InputError(f"{frame.where}: pixel data holds {arr.shape} but frame {frame.frame_index + 1} is described")
        else:
            arr = arr[frame.frame_index]
    if arr.shape != (frame.rows, frame.cols):
        raise InputError(f"{frame.where}: pixel data shape {arr.shape} != Rows x Columns {(frame.rows, frame.cols)}")
    return arr


def _fill_volume(sorted_echoes: list[list[Frame]], ref: Frame, source: str,
                 use_fp: bool) -> tuple[np.ndarray, list[int], list[float | None]]:
    """The float32 volume (x, y, z, echo) of the frames' rescaled pixel values.

    Returns ``(data, clipped_voxels_per_echo, max_stored_value_per_echo)``.
    """
    first = sorted_echoes[0]
    cache: dict = {}
    _pixels(first[0], cache)  # Rows x Columns must match the stored pixels before the volume is allocated
    shape = (ref.cols, ref.rows, len(first), len(sorted_echoes))
    try:
        data = np.empty(shape, dtype=np.float32)
    except MemoryError:
        raise InputError(f"{source}: a {' x '.join(map(str, shape))} image ({np.prod(shape, dtype=float) * 4 / 2**30:.1f} "
                         f"GiB as float32) does not fit in memory") from None
    clipped = []
    max_stored = []
    for e, fs in enumerate(sorted_echoes):
        n_clip = 0
        mx = None
        for z, f in enumerate(fs):
            raw = _pixels(f, cache)
            smax = _stored_max(f.params.get("bits_stored"), f.params.get("pixel_representation"))
            if smax is not None:
                n_clip += int(np.count_nonzero(raw >= smax))
                mx = smax
            with np.errstate(over="ignore", invalid="ignore"):
                val = raw.astype(np.float64) * f.rescale_slope + f.rescale_intercept
                if use_fp:
                    val = val / (f.rescale_slope * f.params["philips_scale_slope"])
                data[:, :, z, e] = val.T
        clipped.append(n_clip)
        max_stored.append(mx)
    if not np.all(np.isfinite(data)):
        raise InputError(f"{source}: pixel data contain non-finite values after rescaling")
    return data, clipped, max_stored


def assemble(frames: list[Frame], *, echo_times_ms=None, source: str, kind: str) -> MultiEchoImage:
    """Build the MultiEchoImage from the frames of one dataset."""
    echoes, keys, te_ms = echo_order(frames, echo_times_ms, source)
    ref, sorted_echoes = sorted_slices(echoes, keys, te_ms)
    first = sorted_echoes[0]
    nz = len(first)
    if nz > 1:
        step = (first[-1].position - first[0].position) / (nz - 1)
    else:
        thick = ref.slice_thickness
        sbs = _num(_text(ref.header, "SpacingBetweenSlices"))
        dz = sbs or thick or 1.0
        step = ref.normal * dz
    affine = affine_from_dicom(ref.row_cos, ref.col_cos, ref.pixel_spacing, first[0].position, step)

    use_fp = philips_floating(sorted_echoes)

    data, clipped, max_stored = _fill_volume(sorted_echoes, ref, source, use_fp)

    meta = _metadata(sorted_echoes, te_ms, kind, source)
    meta["clipped_voxels_per_echo"] = clipped
    meta["max_stored_value_per_echo"] = max_stored
    meta["philips_floating_point_values"] = use_fp
    meta["echo_times_overridden"] = echo_times_ms is not None
    p = ref.params
    # headers reconciled with each other and with the frames (echo train from the data)
    rev = review_headers(sorted_echoes)
    meta["header_findings"] = rev["findings"]
    etl = rev["echo_train_length"]
    seq = rev["sequence"]
    if kind == "enhanced":
        src = [_strip(first[0].header)]
    else:
        src = [_strip(f.header) for f in first]
    return MultiEchoImage(
        data=data,
        echo_times_s=te_ms * 1e-3,
        affine=affine,
        field_strength_t=p.get("field_strength_t"),
        manufacturer=p.get("manufacturer"),
        sequence=seq,
        echo_train_length=etl,
        metadata=meta,
        source_datasets=src,
    )
