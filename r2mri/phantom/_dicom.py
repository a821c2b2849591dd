"""DICOM writers for phantoms: FerriScan series, one multi-echo series, Enhanced MR
(:mod:`._dicom_enhanced`).

Geometry: axial slices, ImageOrientationPatient (1,0,0,0,1,0) (rows run to the
patient's left, columns to posterior), ImagePositionPatient of the first pixel of
each slice, PixelSpacing, SliceThickness and SpacingBetweenSlices (thickness +
gap). Pixel (row r, column c) of slice k is ``image.data[c, r, k]``.

Pixels are stored as unsigned 16-bit integers with RescaleSlope/RescaleIntercept
(real value = slope x stored + intercept); the slope puts the largest value at
``_STORED_TOP`` so the quantisation step (slope / 2 at most) stays far below the
noise sigma. UIDs derive from the spec name, the seed and the form (pydicom
``generate_uid`` with entropy sources), and no dates or times are written, so the
same phantom always gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .._version import __version__
from ._describe import LO_MAX_CHARS, fit_long_string

__all__ = ["write_dicom"]

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"  # DICOM PS3.4 Annex B.5
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"  # DICOM PS3.4 Annex B.5
_STORED_TOP = 32000.0
# Fixed, obviously synthetic date and time (Enhanced MR requires them; a wall-clock
# time would break "same seed, same bytes").
SYNTHETIC_DATE = "20000101"
SYNTHETIC_TIME = "000000"  # largest stored value (of 65535): headroom, never looks saturated



def _image_pixel_module(ds, sp) -> None:
    """Image Pixel module of the phantom's unsigned 16-bit greyscale frames (columns = x)."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(sp.matrix[1])
    ds.Columns = int(sp.matrix[0])
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0

def _ds_str(v: float) -> str:
    """Decimal String (at most 16 characters) that round-trips as closely as possible."""
    for p in range(12, 3, -1):
        s = f"{v:.{p}g}"
        if len(s) <= 16:
            return s
    return f"{v:.4g}"


def _uid(phantom, form: str, *parts) -> str:
    return generate_uid(entropy_srcs=["r2mri-phantom", phantom.spec.name, str(phantom.seed), form,
                                      *[str(p) for p in parts]])


def _slope(values: np.ndarray) -> str:
    top = float(np.max(values)) if values.size else 0.0
    return _ds_str(top / _STORED_TOP if top > 0 else 1.0)


def _quantise(values: np.ndarray, slope: str) -> np.ndarray:
    s = float(slope)
    return np.clip(np.rint(np.asarray(values, dtype=np.float64) / s), 0, 65535).astype(np.uint16)


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(entropy_srcs=["r2mri", __version__])
    meta.ImplementationVersionName = f"R2MRI_{__version__}"[:16]
    return meta


def _common(phantom, form: str) -> Dataset:
    """Patient, study, frame-of-reference, equipment and acquisition attributes."""
    sp = phantom.spec
    img = phantom.image
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Phantom^r2mri"
    ds.PatientID = f"R2MRI-{sp.name}"[:64]
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = _uid(phantom, form, "study")
    ds.StudyDate = SYNTHETIC_DATE
    ds.StudyTime = SYNTHETIC_TIME
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.StudyDescription = "r2mri digital liver phantom"
    ds.Modality = "MR"
    ds.PatientPosition = "HFS"
    ds.FrameOfReferenceUID = _uid(phantom, form, "for")
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = img.manufacturer or "r2mri-phantom"
    ds.ManufacturerModelName = "digital liver phantom"
    ds.SoftwareVersions = f"r2mri {__version__}"
    ds.DeviceSerialNumber = "0"
    ds.InstitutionName = "r2mri"
    ds.StationName = "PHANTOM"
    ds.BodyPartExamined = "ABDOMEN"
    ds.MagneticFieldStrength = _ds_str(float(img.field_strength_t))
    from ._writers import _larmor_mhz

    ds.ImagingFrequency = _ds_str(_larmor_mhz(img.field_strength_t))
    ds.ImagedNucleus = "1H"
    return ds


def _classic_image(phantom, form: str, base: Dataset) -> Dataset:
    sp = phantom.spec
    ds = Dataset()
    ds.update(base)
    seq = sp.sequence
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.ScanningSequence = "GR" if seq == "GRE" else "SE"
    ds.SequenceVariant = "SP" if seq == "GRE" else "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = {"SE": "se2d1", "SE-CPMG": f"se2d{len(sp.echo_times_ms)}", "GRE": f"fl2d{len(sp.echo_times_ms)}"}[seq]
    ds.AngioFlag = "N"
    ds.RepetitionTime = _ds_str(sp.repetition_time_ms)
    ds.EchoTrainLength = sp.echo_train_length
    ds.NumberOfAverages = "1"
    ds.FlipAngle = _ds_str(sp.excitation_flip_deg)
    ds.ReceiveCoilName = f"R2MRI {int(sp.coils)}CH"[:16]
    ds.TransmitCoilName = "Body"
    ds.PixelSpacing = [_ds_str(sp.pixel_mm), _ds_str(sp.pixel_mm)]
    ds.SliceThickness = _ds_str(sp.slice_thickness_mm)
    ds.SpacingBetweenSlices = _ds_str(sp.slice_spacing_mm)
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.AcquisitionMatrix = [0, int(sp.matrix[0]), int(sp.matrix[1]), 0]
    _image_pixel_module(ds, sp)
    ds.RescaleIntercept = "0"
    ds.RescaleType = "US"
    ds.SOPClassUID = MR_IMAGE_STORAGE
    return ds


def _slice_positions(phantom) -> np.ndarray:
    """LPS position (mm) of the first pixel of each slice, shape (z, 3)."""
    aff = phantom.image.affine
    nz = phantom.image.shape[2]
    ras = np.array([aff[:3, :3] @ [0, 0, k] + aff[:3, 3] for k in range(nz)])
    return ras * np.array([-1.0, -1.0, 1.0])


def _fix_binary_floats(ds: Dataset) -> None:
    """Turn decimal strings put into FD/FL attributes into floats (recursively)."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _fix_binary_floats(item)
        elif elem.VR in ("FD", "FL") and isinstance(elem.value, str):
            elem.value = float(elem.value)
        elif elem.VR in ("FD", "FL") and isinstance(elem.value, (list, tuple)):
            elem.value = [float(v) for v in elem.value]


def _write_ds(ds: Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _fix_binary_floats(ds)
    ds.save_as(str(path), enforce_file_format=True)


def _names(phantom, n: int, shuffle: bool, default) -> list[str]:
    if not shuffle:
        return [default(i) for i in range(n)]
    rng = np.random.default_rng([int(phantom.seed), 4242])
    tokens = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    names = [f"{int(t):016x}" for t in tokens]
    if len(set(names)) != n:  # pragma: no cover - 64-bit collision
        names = [f"{nm}{i}" for i, nm in enumerate(names)]
    return names


def _write_classic(phantom, root: Path, *, multiecho: bool, per_series_rescale: bool, shuffle: bool,
                   phase: bool = False) -> None:
    img = phantom.image
    form = "dicom-multiecho" if multiecho else "dicom"
    base = _common(phantom, form)
    jobs = _classic_jobs(phantom, form, base, multiecho=multiecho, per_series_rescale=per_series_rescale,
                         phase=False, numbering=2 if phase else 1)
    if phase:
        from ._dicom_phase import check_phase

        check_phase(img)
        jobs += _classic_jobs(phantom, form, base, multiecho=multiecho, per_series_rescale=False,
                              phase=True, numbering=2)
    names = _names(phantom, len(jobs), shuffle, lambda i: jobs[i][1])
    for (ds, _), name in zip(jobs, names):
        _write_ds(ds, root / name)


def _classic_jobs(phantom, form: str, base: Dataset, *, multiecho: bool, per_series_rescale: bool,
                  phase: bool, numbering: int) -> list:
    """(dataset, default relative path) of every image of the magnitude or the phase series.

    ``numbering`` 1: magnitude series 1..n as without phase; 2: magnitude series 1, 3, 5...
    and each phase series the number after its magnitude series (as Siemens numbers them).
    """
    img = phantom.image
    sp = phantom.spec
    data = img.phase_rad if phase else img.data
    nz, ne = img.shape[2], img.n_echoes
    pos = _slice_positions(phantom)
    shared = _slope(data) if not phase else None
    tag = "-phase" if phase else ""
    jobs = []  # (dataset, default relative path)
    for e in range(ne):
        te_ms = float(img.echo_times_ms[e])
        series_index = 0 if multiecho else e
        series_number = numbering * series_index + 1 + (1 if phase else 0)
        if multiecho:
            series_uid = _uid(phantom, form, "series" + tag)
            suffix = " (multi-echo)"
        else:
            series_uid = _uid(phantom, form, "series" + tag, e) if phase else _uid(phantom, form, "series", e)
            suffix = f" TE {te_ms:g} ms"
        if phase:
            suffix += " phase"
        desc = fit_long_string(sp.description, suffix)  # LO: 64 characters; the echo part stays
        slope = _slope(data[..., e]) if per_series_rescale and not multiecho else shared
        for k in range(nz):
            ds = _classic_image(phantom, form, base)
            ds.SeriesInstanceUID = series_uid
            ds.SeriesNumber = series_number
            ds.SeriesDescription = desc
            if len(sp.description) + len(suffix) > LO_MAX_CHARS:  # the full text (LT) where it was cut
                ds.ImageComments = sp.description + suffix
            ds.ProtocolName = sp.name[:64]
            inst = (e * nz + k + 1) if multiecho else (k + 1)
            ds.InstanceNumber = inst
            ds.AcquisitionNumber = 1
            ds.SOPInstanceUID = _uid(phantom, form, "image" + tag, e, k)
            ds.EchoTime = _ds_str(te_ms)
            ds.EchoNumbers = (e + 1) if multiecho else 1
            ds.ImagePositionPatient = [_ds_str(v) for v in pos[k]]
            ds.SliceLocation = _ds_str(pos[k][2])
            if phase:
                from ._dicom_phase import set_phase_pixels

                set_phase_pixels(ds, data[:, :, k, e].T)
            else:
                ds.RescaleSlope = slope
                stored = _quantise(data[:, :, k, e].T, slope)
                ds.SmallestImagePixelValue = int(stored.min())
                ds.LargestImagePixelValue = int(stored.max())
                centre = 0.5 * float(stored.max()) * float(slope)
                ds.WindowCenter = _ds_str(centre)
                ds.WindowWidth = _ds_str(max(2.0 * centre, 1.0))
                ds.PixelData = np.ascontiguousarray(stored).tobytes()
            ds.file_meta = _file_meta(ds.SOPClassUID, ds.SOPInstanceUID)
            if multiecho:
                rel = f"{'PH' if phase else 'IM'}{inst:04d}.dcm"
            else:
                rel = f"S{e + 1:02d}_TE{te_ms:g}".replace(".", "p") + ("_P" if phase else "") + f"/IM{k + 1:04d}.dcm"
            jobs.append((ds, rel))
    return jobs


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue = value
    c.CodingSchemeDesignator = scheme
    c.CodeMeaning = meaning
    return c


def write_dicom(phantom, root: Path, *, form: str, per_series_rescale: bool = False, shuffle_files: bool = False,
                phase: bool = False) -> None:
    """Write the phantom image as DICOM under ``root`` in the given form (``phase``: add
    a phase series per magnitude series)."""
    if form == "dicom":
        _write_classic(phantom, root, multiecho=False, per_series_rescale=per_series_rescale, shuffle=shuffle_files,
                       phase=phase)
    elif form == "dicom-multiecho":
        _write_classic(phantom, root, multiecho=True, per_series_rescale=False, shuffle=shuffle_files, phase=phase)
    elif form == "dicom-enhanced":
        from ._dicom_enhanced import enhanced  # imports this module's helpers

        enhanced(phantom, root)
        if phase:
            from ._dicom_phase import check_phase

            check_phase(phantom.image)
            enhanced(phantom, root, phase=True)
    else:  # pragma: no cover - checked by write()
        raise ValueError(form)
