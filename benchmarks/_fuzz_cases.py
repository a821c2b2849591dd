"""Fuzz cases for the loader: small valid inputs, and seeded mutations of them.

Case ``i`` of seed ``s`` is fully determined by ``numpy.random.default_rng([s, i])``:
it picks one valid input (a tiny r2mri phantom written as per-TE DICOM series,
one multi-echo DICOM series, one Enhanced MR file, a 4-D NIfTI ``.nii.gz`` or
``.nii`` with its JSON sidecar, or one NIfTI per echo) and applies one to three
mutations to it: header tags deleted or given bad values, wrong value
representations, huge dimensions, damaged or resized pixel data, truncation, flipped
bytes, a wrong transfer syntax, damaged NIfTI header fields, sidecars and gzip
streams, files removed, emptied or duplicated. :func:`write_case` writes the case
into a folder and returns the paths to pass to :func:`r2mri.load`.

Used by ``python -m benchmarks.fuzz`` (100,000 cases in worker processes) and by
``tests/test_load_fuzz.py`` (a few hundred, in process).
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

#: Valid inputs a case starts from, with the probability of each.
KINDS = {
    "dicom-per-te": 0.22,
    "dicom-multiecho": 0.2,
    "dicom-enhanced": 0.2,
    "nifti-gz": 0.14,
    "nifti-raw": 0.1,
    "nifti-per-echo": 0.14,
}

_SEED_FORMATS = {
    "dicom-per-te": "dicom",
    "dicom-multiecho": "dicom-multiecho",
    "dicom-enhanced": "dicom-enhanced",
    "nifti-gz": "nifti",
    "nifti-raw": "nifti",
    "nifti-per-echo": "nifti-per-echo",
}

Seeds = dict[str, dict[str, bytes]]

#: Distinctive patient identifiers written into every seed (DICOM header, NIfTI sidecar):
#: no loader message may contain them (a case whose message does is a ``phi_leak``).
PATIENT = {"PatientName": "Fuzzpatient^Zelda", "PatientID": "PID-7391-FUZZ", "PatientBirthDate": "19230417"}
PHI_STRINGS = ("Fuzzpatient", "Zelda", "PID-7391-FUZZ", "19230417", "1923-04-17")


def _with_patient(rel: str, raw: bytes) -> bytes:
    if rel.endswith(".dcm"):
        ds = _read_ds(raw)
        for k, v in PATIENT.items():
            setattr(ds, k, v)
        return _write_ds(ds)
    if rel.endswith(".json"):
        return json.dumps({**json.loads(raw), **PATIENT}, indent=1).encode()
    return raw


#: shape (x, y, z, echo) of every valid input
VALID_SHAPE = (8, 8, 2, 3)


def make_seeds() -> Seeds:
    """{kind: {relative path: bytes}} of the valid inputs (8 x 8 x 2 voxels, 3 echoes), carrying
    :data:`PATIENT`."""
    import nibabel as nib

    from r2mri.phantom import generate, write

    ph = generate(matrix=(8, 8), pixel_mm=40.0, n_slices=2, echo_times_ms=(10.0, 20.0, 30.0))
    seeds: Seeds = {}
    with tempfile.TemporaryDirectory(prefix="r2mri-fuzz-seed-") as tmp:
        for kind, fmt in _SEED_FORMATS.items():
            out = write(ph, Path(tmp) / kind, format=fmt)
            files = {}
            for p in sorted(out.rglob("*")):
                rel = p.relative_to(out).as_posix()
                if not p.is_file() or rel.startswith("truth"):
                    continue
                files[rel] = _with_patient(rel, p.read_bytes())
            if kind == "nifti-raw":  # the same image as an uncompressed .nii
                (gz,) = [r for r in files if r.endswith(".nii.gz")]
                img = nib.load(str(out / gz))
                raw = Path(tmp) / "raw.nii"
                nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine, img.header), str(raw))
                files = {gz[:-3]: raw.read_bytes(), gz[:-7] + ".json": files[gz[:-7] + ".json"]}
            seeds[kind] = files
    return seeds


# ----------------------------------------------------------------------------- value pools
_FLOATS = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, -1.0, 1e-300, 1e300, 3.4e38, -3.4e38, 0.5, 1e9]
_INTS = [0, 1, -1, 2, 3, 7, 8, 12, 15, 16, 17, 31, 32, 33, 64, 255, 256, 32767, -32768, 65535, 2**31 - 1, -2**31]
_STRINGS = ["", " ", "abc", "nan", "inf", "-inf", "1e400", "-0", "1\\2\\3", "1\\", "\\", "0x10", "١٢٣",
            "9" * 64, "1.2.3", "NaN\\NaN\\NaN", "1e-400", "\x00", "12 34", "+5", "5.", ".5"]
_GEOMETRY_TAGS = ["Rows", "Columns", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient",
                  "SliceThickness", "SpacingBetweenSlices", "NumberOfFrames"]
_HEADER_TAGS = _GEOMETRY_TAGS + [
    "EchoTime", "EchoNumbers", "RepetitionTime", "FlipAngle", "EchoTrainLength", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation", "RescaleSlope",
    "RescaleIntercept", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID", "SOPClassUID",
    "SeriesNumber", "ImageType", "MagneticFieldStrength", "ScanningSequence", "SequenceVariant",
    "MRAcquisitionType", "Manufacturer", "AcquisitionMatrix", "PixelData", "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence", "SpecificCharacterSet", "ImagingFrequency", "InstanceNumber",
]
_VRS = ["US", "SS", "UL", "SL", "FL", "FD", "DS", "IS", "LO", "SH", "CS", "UI", "OB", "OW", "SQ", "AT", "DA", "PN",
        "UN", "UT"]
_TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.5",  # RLE lossless
    "1.2.3.4.5.6",  # unknown
    "",
]


def _random_value(rng: np.random.Generator, vr: str):
    """A value an element of representation ``vr`` can be written with, biased to edge cases."""
    n = int(rng.choice([1, 1, 1, 2, 3, 6, 0]))
    if vr in ("US", "UL"):
        vals = [int(rng.choice([v for v in _INTS if v >= 0])) % (2**16 if vr == "US" else 2**32) for _ in range(max(n, 1))]
        return vals[0] if len(vals) == 1 else vals
    if vr in ("SS", "SL"):
        lim = 2**15 if vr == "SS" else 2**31
        vals = [int(np.clip(rng.choice(_INTS), -lim, lim - 1)) for _ in range(max(n, 1))]
        return vals[0] if len(vals) == 1 else vals
    if vr in ("FL", "FD"):
        vals = [float(rng.choice(_FLOATS)) for _ in range(max(n, 1))]
        return vals[0] if len(vals) == 1 else vals
    if vr in ("OB", "OW", "UN"):
        size = int(rng.choice([0, 1, 2, 3, 4, 7, 8, 64, 1000]))
        size += size % 2 if vr == "OW" else 0
        return rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
    if vr == "SQ":
        return []
    if vr == "AT":
        return int(rng.integers(0, 2**32))
    if vr in ("DS", "IS"):
        if rng.random() < 0.5:
            vals = [str(rng.choice(_STRINGS)) for _ in range(max(n, 1))]
        else:
            vals = [repr(float(rng.choice(_FLOATS)))[:16] for _ in range(max(n, 1))]
        return "\\".join(vals)
    if vr == "UI":
        return str(rng.choice(["", "1.2.3", "0.0", "1.2.840.10008.5.1.4.1.1.4", "abc", "1." + "9" * 70]))
    if vr == "DA":
        return str(rng.choice(["", "20261301", "abcdefgh", "19000101", "2026"]))
    return str(rng.choice(_STRINGS))


# ----------------------------------------------------------------------------- DICOM mutations
def _read_ds(raw: bytes):
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(raw), force=True)


def _write_ds(ds) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def _all_elements(ds, out=None, depth=0):
    """(container dataset, tag) of every element, nested sequences included."""
    out = [] if out is None else out
    for elem in ds:
        out.append((ds, elem.tag))
        if elem.VR == "SQ" and depth < 4:
            for item in elem.value:
                _all_elements(item, out, depth + 1)
    return out


def _pick_element(rng, ds, keyword_bias: float = 0.6):
    """A (container, tag): a known header tag (often), else any element, nested ones included."""
    from pydicom.datadict import tag_for_keyword

    if rng.random() < keyword_bias:
        kw = str(rng.choice(_HEADER_TAGS))
        tag = tag_for_keyword(kw)
        holders = [(c, t) for c, t in _all_elements(ds) if t == tag]
        if holders:
            return holders[int(rng.integers(len(holders)))]
        return ds, tag
    elems = _all_elements(ds)
    return elems[int(rng.integers(len(elems)))]


def _dicom_header_op(rng, raw: bytes, op: str) -> bytes:
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import DataElement

    ds = _read_ds(raw)
    if op == "delete":
        container, tag = _pick_element(rng, ds)
        if tag in container:
            del container[tag]
    elif op in ("alter", "wrong_vr"):
        container, tag = _pick_element(rng, ds)
        try:
            vr = container[tag].VR if tag in container else dictionary_VR(tag)
        except KeyError:
            vr = "LO"
        if op == "wrong_vr":
            vr = str(rng.choice([v for v in _VRS if v != vr]))
        value = _random_value(rng, vr)
        if vr == "SQ":
            from pydicom.sequence import Sequence

            value = Sequence([])
        container[tag] = DataElement(tag, vr, value)
    elif op == "huge_dims":
        choice = int(rng.integers(4))
        if choice == 0:
            ds.Rows, ds.Columns = 65535, 65535
        elif choice == 1:
            ds.Rows = 65535
        elif choice == 2:
            ds.NumberOfFrames = str(int(rng.choice([2**31 - 1, 10**9, 65536, 1000])))
        else:
            ds.Rows, ds.Columns = 4096, 4096
            ds.NumberOfFrames = "4096"
    elif op == "pixels":
        _pixel_op(rng, ds)
    elif op == "geometry":  # plausible numbers, wrong geometry: moved, tilted, scaled, far away
        _geometry_op(rng, ds)
    elif op == "philips":  # Philips private scale slope / intercept, any VR and value
        block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
        for element in (0x0E, 0x0D):
            vr = str(rng.choice(["FL", "FL", "DS", "OB", "LO", "FD"]))
            block.add_new(element, vr, _random_value(rng, vr))
    elif op == "transfer_syntax":
        ds.file_meta.TransferSyntaxUID = str(rng.choice(_TRANSFER_SYNTAXES))
        return _write_raw_meta(ds, raw)
    else:  # pragma: no cover
        raise ValueError(op)
    return _write_ds(ds)


def _geometry_op(rng, ds) -> None:
    geometry_tags = (0x00200032, 0x00200037, 0x00280030, 0x00180050, 0x00180088)  # IPP, IOP, spacing, thickness
    targets = [(c, t) for c, t in _all_elements(ds) if t in geometry_tags]
    if not targets:
        return
    container, tag = targets[int(rng.integers(len(targets)))]
    try:
        vals = np.array([float(v) for v in container[tag].value], float)
    except (TypeError, ValueError):
        vals = np.atleast_1d(np.array(float(container[tag].value)))
    how = int(rng.integers(5))
    if how == 0:
        vals = vals + rng.normal(0, float(rng.choice([0.001, 0.05, 1.0, 100.0])), size=vals.shape)
    elif how == 1:
        vals = vals * float(rng.choice([1e-9, 1e-3, 0.5, 2.0, 1e6, 1e300]))
    elif how == 2:
        vals = vals + float(rng.choice([1e15, 1e307, -1e307]))
    elif how == 3:
        vals = rng.permutation(vals)
    else:
        vals = -vals
    container[tag].value = [f"{v:.10g}"[:16] for v in vals] if container[tag].VR == "DS" else vals.tolist()


def _write_raw_meta(ds, raw: bytes) -> bytes:
    """Change only the file meta group; the dataset bytes stay as they were encoded."""
    from pydicom.filewriter import write_file_meta_info
    from pydicom.filebase import DicomBytesIO

    # the original meta group ends where the dataset starts: after the group length value
    group_len = struct.unpack("<I", raw[140:144])[0]
    body = raw[144 + group_len:]
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, ds.file_meta, enforce_standard=False)
    return raw[:132] + buf.getvalue() + body


def _pixel_op(rng, ds) -> None:
    from pydicom.dataelem import DataElement

    data = bytes(ds.get("PixelData", b"") or b"")
    choice = int(rng.integers(8))
    if choice == 0:  # same length, random values: should load
        ds.PixelData = rng.integers(0, 256, size=len(data), dtype=np.uint8).tobytes()
    elif choice == 1:  # shorter / longer / odd / empty
        size = int(rng.choice([0, 1, 7, max(len(data) // 2, 1), len(data) - 2, len(data) + 2, len(data) * 2, 100000]))
        ds.PixelData = rng.integers(0, 256, size=max(size, 0), dtype=np.uint8).tobytes()
    elif choice == 2:
        ds.BitsAllocated = int(rng.choice([8, 32, 64, 1]))
    elif choice == 3:
        ds.PixelRepresentation = int(rng.choice([0, 1, 2]))
    elif choice == 4:  # float pixel data next to or instead of integer data
        vals = rng.choice(np.array([np.nan, np.inf, -np.inf, 1.0, -5.0, 1e38], np.float32), size=max(len(data) // 2, 1))
        if "PixelData" in ds and rng.random() < 0.5:
            del ds.PixelData
        ds[0x7FE00008] = DataElement(0x7FE00008, "OF", vals.astype("<f4").tobytes())
        ds.BitsAllocated = 32
    elif choice == 5:  # high values: saturation at the stored maximum
        ds.PixelData = b"\xff" * len(data)
    elif choice == 6:
        ds.BitsStored = int(rng.choice([1, 8, 12, 16, 17]))
        ds.HighBit = int(ds.BitsStored) - 1
    else:
        ds.SamplesPerPixel = int(rng.choice([1, 3]))
        ds.PhotometricInterpretation = str(rng.choice(["MONOCHROME1", "RGB", "YBR_FULL", "PALETTE COLOR"]))


def _bytes_op(rng, raw: bytes, op: str, start: int) -> bytes:
    if op == "truncate":
        if rng.random() < 0.3:
            return raw[: int(rng.integers(0, min(len(raw), start + 16) + 1))]
        return raw[: int(rng.integers(0, len(raw) + 1))]
    buf = bytearray(raw)  # flip
    n = int(rng.choice([1, 2, 4, 8, 16, 64]))
    lo = start if rng.random() < 0.8 else 0
    if len(buf) <= lo:
        return raw
    for pos in rng.integers(lo, len(buf), size=n):
        buf[int(pos)] = int(rng.integers(0, 256))
    return bytes(buf)


DICOM_OPS = ["delete", "alter", "wrong_vr", "huge_dims", "pixels", "truncate", "flip", "transfer_syntax", "file",
             "philips", "swap", "geometry"]
_DICOM_P = np.array([16, 18, 12, 6, 12, 10, 12, 6, 8, 4, 8, 10], float)
#: Tags whose value "swap" copies from one file to another (mixes up series, echoes, slices).
_SWAP_TAGS = ["SeriesInstanceUID", "EchoTime", "EchoNumbers", "ImagePositionPatient", "ImageOrientationPatient",
              "FrameOfReferenceUID", "PixelSpacing", "Rows", "StudyInstanceUID", "RescaleSlope", "SOPInstanceUID",
              "SliceThickness", "RepetitionTime", "SeriesNumber", "PixelData"]


def _swap_op(rng, files: dict[str, bytes], names: list[str]) -> None:
    """Copy one tag's value from one file into another (a header that contradicts its neighbours)."""
    if len(names) < 2:
        return
    a, b = rng.choice(len(names), size=2, replace=False)
    src, dst = _read_ds(files[names[int(a)]]), _read_ds(files[names[int(b)]])
    kw = str(rng.choice(_SWAP_TAGS))
    if kw in src:
        setattr(dst, kw, src[kw].value)
    elif kw in dst:
        delattr(dst, kw)
    files[names[int(b)]] = _write_ds(dst)


def _file_op(rng, files: dict[str, bytes], target: str) -> None:
    choice = int(rng.integers(6))
    if choice == 0:
        files.pop(target)
    elif choice == 1:  # duplicate under another name
        files[target + ".copy"] = files[target]
    elif choice == 2:
        files[target] = b""
    elif choice == 3:
        files[target] = b"\x00" * 128 + b"DICM" + rng.integers(0, 256, size=int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
    elif choice == 4:  # a stray non-image file next to the data
        files[str(Path(target).parent / "README.txt")] = b"exported by a PACS\n"
    else:  # a second copy of the whole series under a sub-folder
        for k in list(files):
            files[k.replace("dicom/", "dicom/copy/", 1)] = files[k]


def mutate_dicom(rng, files: dict[str, bytes], ops: list[str]) -> None:
    for op in ops:
        names = [k for k in files if k.endswith(".dcm")] or list(files)
        if not names:
            return
        target = names[int(rng.integers(len(names)))]
        if op == "file":
            _file_op(rng, files, target)
        elif op == "swap":
            try:
                _swap_op(rng, files, names)
            except Exception:  # noqa: BLE001 - an earlier mutation left a file pydicom cannot rewrite
                files[target] = _bytes_op(rng, files[target], "flip", 132)
        elif op in ("truncate", "flip"):
            files[target] = _bytes_op(rng, files[target], op, 132)
        else:
            try:
                files[target] = _dicom_header_op(rng, files[target], op)
            except Exception:  # noqa: BLE001 - pydicom could not write this value: flip bytes instead
                files[target] = _bytes_op(rng, files[target], "flip", 132)


# ----------------------------------------------------------------------------- NIfTI mutations
#: NIfTI-1 header fields: name -> (byte offset, struct format, count); NIfTI-1 standard
#: (nifti1.h, https://nifti.nimh.nih.gov/pub/dist/src/niftilib/nifti1.h).
NIFTI_FIELDS = {
    "sizeof_hdr": (0, "i", 1), "dim_info": (39, "b", 1), "dim": (40, "h", 8), "intent_code": (68, "h", 1),
    "datatype": (70, "h", 1), "bitpix": (72, "h", 1), "pixdim": (76, "f", 8), "vox_offset": (108, "f", 1),
    "scl_slope": (112, "f", 1), "scl_inter": (116, "f", 1), "xyzt_units": (123, "b", 1),
    "qform_code": (252, "h", 1), "sform_code": (254, "h", 1), "quatern": (256, "f", 6),
    "srow": (280, "f", 12), "magic": (344, "4s", 1),
}
_DATATYPES = [0, 1, 2, 4, 8, 16, 32, 64, 128, 255, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 7, -1]


def _nifti_field_value(rng, name: str, fmt: str, old):
    if name == "datatype":
        return int(rng.choice(_DATATYPES))
    if name == "magic":
        return bytes(rng.choice([b"n+1\x00", b"ni1\x00", b"n+2\x00", b"\x00\x00\x00\x00", b"xxxx"]))
    if fmt in ("h", "i", "b"):
        pool = [0, 1, -1, 2, 3, 4, 5, 7, 8, 9, 100, 32767, -32768]
        lim = {"h": 2**15, "b": 2**7, "i": 2**31}[fmt]
        return int(np.clip(int(rng.choice(pool)), -lim, lim - 1))
    v = float(old) * float(rng.choice([-1.0, 2.0, 1e6])) if rng.random() < 0.2 else float(rng.choice(_FLOATS))
    with np.errstate(over="ignore"):
        return float(np.float32(v))  # beyond float32 range: inf


def _nifti_header_op(rng, hdr: bytearray, huge: bool) -> None:
    if huge:
        dims = list(struct.unpack_from("<8h", hdr, 40))
        k = int(rng.integers(1, 5))
        dims[k] = int(rng.choice([32767, 20000, 4096]))
        if rng.random() < 0.5:
            dims[(k % 4) + 1] = 32767
        dims[0] = max(dims[0], k)
        struct.pack_into("<8h", hdr, 40, *dims)
        return
    name = str(rng.choice(list(NIFTI_FIELDS)))
    off, fmt, count = NIFTI_FIELDS[name]
    size = struct.calcsize("<" + fmt)
    j = int(rng.integers(count))
    old = struct.unpack_from("<" + fmt, hdr, off + j * size)[0]
    struct.pack_into("<" + fmt, hdr, off + j * size, _nifti_field_value(rng, name, fmt, old))


def _sidecar_op(rng, files: dict[str, bytes], name: str) -> None:
    raw = files.get(name)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:  # an earlier mutation broke it already
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    choice = int(rng.integers(6))
    if choice == 0:
        files[name] = (raw or b"{}")[: int(rng.integers(0, len(raw or b"{}")))]
    elif choice == 1:
        files[name] = b"\xff\xfe{\x00}" if rng.random() < 0.5 else b'["EchoTime", 0.01]'
    elif choice == 2:
        files.pop(name, None)
    else:
        key = str(rng.choice(["EchoTime", "EchoTime", "MagneticFieldStrength", "RepetitionTime", "EchoTrainLength",
                              "ScanningSequence", "FlipAngle", "SliceThickness", "Manufacturer",
                              "UsePhilipsFloatNotDisplayScaling", "PhilipsScaleSlope"]))
        te = meta.get("EchoTime", 0.01)
        n = len(te) if isinstance(te, list) else 1
        pool = ["abc", [], None, {"a": 1}, True, -0.01, 0, 1e308, [0.01] * n, [-0.01] * n, [[0.01] * n],
                ["0.01"] * n, [0.01, 0.02], list(np.linspace(0.01, 0.03, 1000)), [float("nan")] * n, "1e400"]
        value = pool[int(rng.integers(len(pool)))]
        if value == "1e400":
            text = json.dumps({**meta, key: 0.5}).replace("0.5", "1e400")
            files[name] = text.encode()
            return
        meta[key] = value
        files[name] = json.dumps(meta, allow_nan=True).encode()


NIFTI_OPS = ["header", "huge_dims", "data", "truncate", "flip", "gzip", "sidecar", "file"]
_NIFTI_P = np.array([30, 8, 10, 10, 10, 8, 16, 8], float)


def mutate_nifti(rng, files: dict[str, bytes], ops: list[str]) -> None:
    for op in ops:
        images = [k for k in files if k.endswith((".nii", ".nii.gz"))]
        if not images:
            return
        target = images[int(rng.integers(len(images)))]
        gz = target.endswith(".gz")
        if op == "sidecar":
            _sidecar_op(rng, files, target[: -7 if gz else -4] + ".json")
            continue
        if op == "file":
            choice = int(rng.integers(4))
            if choice == 0:
                files.pop(target)
            elif choice == 1:
                files[target] = b""
            elif choice == 2 and gz:  # gzip name, uncompressed bytes
                try:
                    files[target] = gzip.decompress(files[target])
                except (OSError, EOFError, zlib.error):  # an earlier mutation broke the stream
                    files[target] = b""
            else:
                files[target[:-3] if gz else target + ".gz"] = files.pop(target)
            continue
        if op == "gzip" and gz:
            files[target] = _bytes_op(rng, files[target], "flip" if rng.random() < 0.5 else "truncate", 10)
            continue
        try:
            raw = bytearray(gzip.decompress(files[target]) if gz else files[target])
        except (OSError, EOFError, zlib.error):
            continue
        if len(raw) < 348:
            continue
        if op in ("header", "huge_dims"):
            _nifti_header_op(rng, raw, op == "huge_dims")
        elif op == "data":  # NaN / inf / random values in the voxel data
            start = 352
            n = int(rng.choice([1, 4, 64]))
            for pos in rng.integers(start, max(len(raw) - 4, start + 1), size=n):
                raw[int(pos):int(pos) + 4] = bytes(rng.choice([b"\xff\xff\xff\x7f", b"\x00\x00\x80\x7f", b"\x00\x00\x80\xff",
                                                               b"\x12\x34\x56\x78"]))
        elif op in ("truncate", "flip", "gzip"):
            raw = bytearray(_bytes_op(rng, bytes(raw), "flip" if op == "gzip" else op, 0))
        files[target] = gzip.compress(bytes(raw), compresslevel=1, mtime=0) if gz else bytes(raw)


# ----------------------------------------------------------------------------- cases
def case_plan(seed: int, index: int) -> tuple[str, list[str], np.random.Generator]:
    """(input kind, mutation names, rng for the mutations) of case ``index``."""
    rng = np.random.default_rng([seed, index])
    kinds = list(KINDS)
    kind = kinds[int(rng.choice(len(kinds), p=np.array(list(KINDS.values())) / sum(KINDS.values())))]
    n_ops = int(rng.choice([1, 1, 1, 2, 2, 3]))
    if kind.startswith("dicom"):
        ops = [DICOM_OPS[int(i)] for i in rng.choice(len(DICOM_OPS), size=n_ops, p=_DICOM_P / _DICOM_P.sum())]
    else:
        ops = [NIFTI_OPS[int(i)] for i in rng.choice(len(NIFTI_OPS), size=n_ops, p=_NIFTI_P / _NIFTI_P.sum())]
    return kind, ops, rng


def write_case(seeds: Seeds, seed: int, index: int, folder: Path) -> tuple[list[Path], dict]:
    """Write case ``index`` into the empty ``folder``; return (paths to load, description)."""
    kind, ops, rng = case_plan(seed, index)
    files = dict(seeds[kind])
    mutate: Callable = mutate_dicom if kind.startswith("dicom") else mutate_nifti
    mutate(rng, files, ops)
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    if kind.startswith("dicom"):
        paths = [folder / "dicom"] if (folder / "dicom").exists() else [folder]
    elif rng.random() < 0.05:
        paths = [folder]  # a folder of NIfTI files: the loader says to pass the files
    else:
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith((".nii", ".nii.gz")))
        paths = paths or [folder / "missing.nii.gz"]
    return paths, {"index": index, "kind": kind, "ops": ops}


def clear(folder: Path) -> None:
    """Empty ``folder`` (keep the folder itself)."""
    for p in folder.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
