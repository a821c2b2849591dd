"""Small DICOM / NIfTI test series written with pydicom and nibabel into a tmp folder.

Every writer returns ``(paths, truth)`` where ``truth`` holds what the loader must
return exactly: ``data`` (x = column, y = row, z = slice along the normal, echo),
``echo_times_ms``, ``affine`` (RAS+), and the series UIDs.

Geometry used by default: a slightly oblique axial stack (column direction tilted
by 10 degrees about x), slices written in shuffled order with shuffled
InstanceNumbers so that sorting by position is actually tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
FERRISCAN_TE_MS = (6.0, 9.0, 12.0, 15.0, 18.0)

_TILT = np.deg2rad(10.0)
ROW_COS = np.array([1.0, 0.0, 0.0])
COL_COS = np.array([0.0, np.cos(_TILT), -np.sin(_TILT)])
NORMAL = np.cross(ROW_COS, COL_COS)
ORIGIN = np.array([-20.5, 13.25, 40.0])
PIXEL_SPACING = (1.5, 1.25)  # (row spacing, column spacing) mm
SLICE_STEP_MM = 7.5
THICKNESS_MM = 5.0


def expected_affine(n_slices_origin=ORIGIN, step=SLICE_STEP_MM) -> np.ndarray:
    """RAS+ affine of data[col, row, slice] for the default geometry (hand-derived)."""
    lps = np.eye(4)
    lps[:3, 0] = ROW_COS * PIXEL_SPACING[1]
    lps[:3, 1] = COL_COS * PIXEL_SPACING[0]
    lps[:3, 2] = NORMAL * step
    lps[:3, 3] = n_slices_origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def raw_values(rows: int, cols: int, n_slices: int, echo_times_ms, *, s0=3000.0, seed=0) -> np.ndarray:
    """Stored integer values (slice, echo, rows, cols): mono-exponential decays, R2 per pixel."""
    rng = np.random.default_rng(seed)
    r2 = rng.uniform(20.0, 250.0, size=(n_slices, 1, rows, cols))
    te = np.asarray(echo_times_ms, float).reshape(1, -1, 1, 1) * 1e-3
    return np.rint(s0 * np.exp(-r2 * te)).astype(np.uint16)


def base_dataset(*, rows: int, cols: int, study_uid: str, series_uid: str, for_uid: str,
                 series_number: int, description: str, te_ms: float | None, tr_ms: float = 1000.0,
                 flip_deg: float = 90.0, field_t: float | None = 1.5, etl: int = 1,
                 sequence: str = "SE", sop_class: str = MR_IMAGE_STORAGE) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = "MR"
    ds.Manufacturer = "TESTCO"
    ds.PatientID = "P-001"
    ds.PatientName = "TEST^LIVER"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.ReferringPhysicianName = ""
    ds.ManufacturerModelName = "TEST"
    ds.SoftwareVersions = "1"
    ds.AccessionNumber = "ACC42"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = for_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    if field_t is not None:
        ds.MagneticFieldStrength = field_t
    ds.RepetitionTime = tr_ms
    ds.FlipAngle = flip_deg
    ds.EchoTrainLength = etl
    ds.ScanningSequence = sequence
    ds.ReceiveCoilName = "Body"
    if te_ms is not None:
        ds.EchoTime = te_ms
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _slice_position(z: int) -> np.ndarray:
    return ORIGIN + NORMAL * SLICE_STEP_MM * z


def write_per_te_series(folder: Path, *, echo_times_ms=FERRISCAN_TE_MS, rows: int = 6, cols: int = 5,
                        n_slices: int = 3, rescale=None, philips_scale=None, tr_ms=None, flip_deg=None,
                        field_t: float | None = 1.5, seed: int = 0, study_uid: str | None = None,
                        for_uid: str | None = None, first_series_number: int = 10,
                        shuffle: bool = True) -> tuple[list[Path], dict]:
    """FerriScan-style: one single-echo spin-echo series per TE, one file per slice.

    ``rescale``: list of (slope, intercept) per echo; ``philips_scale``: list of the
    private scale slope SS per echo; ``tr_ms`` / ``flip_deg``: lists per echo.
    """
    folder = Path(folder)
    n_e = len(echo_times_ms)
    study_uid = study_uid or generate_uid()
    for_uid = for_uid or generate_uid()
    raw = raw_values(rows, cols, n_slices, echo_times_ms, seed=seed)
    rng = np.random.default_rng(seed + 1)
    data = np.zeros((cols, rows, n_slices, n_e))
    paths, uids = [], []
    for e, te in enumerate(echo_times_ms):
        uid = generate_uid()
        uids.append(uid)
        slope, inter = rescale[e] if rescale is not None else (1.0, 0.0)
        order = rng.permutation(n_slices) if shuffle else np.arange(n_slices)
        for k, z in enumerate(order):
            ds = base_dataset(rows=rows, cols=cols, study_uid=study_uid, series_uid=uid, for_uid=for_uid,
                              series_number=first_series_number + e, description=f"SE TE{te:g}", te_ms=te,
                              tr_ms=(tr_ms[e] if tr_ms is not None else 1000.0),
                              flip_deg=(flip_deg[e] if flip_deg is not None else 90.0), field_t=field_t)
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = int(k + 1)
            ds.ImagePositionPatient = [float(v) for v in _slice_position(int(z))]
            ds.ImageOrientationPatient = [float(v) for v in np.r_[ROW_COS, COL_COS]]
            ds.PixelSpacing = list(PIXEL_SPACING)
            ds.SliceThickness = THICKNESS_MM
            ds.EchoNumbers = 1
            if rescale is not None:
                ds.RescaleSlope = slope
                ds.RescaleIntercept = inter
            if philips_scale is not None:
                block = ds.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
                block.add_new(0x0E, "FL", float(philips_scale[e]))
                block.add_new(0x0D, "FL", 0.0)
            ds.PixelData = raw[z, e].tobytes()
            paths.append(_save(ds, folder / f"s{e:02d}" / f"IM{k:04d}"))
            data[:, :, z, e] = raw[z, e].T.astype(float) * slope + inter
    truth = {"data": data, "echo_times_ms": np.asarray(echo_times_ms, float), "affine": expected_affine(),
             "series_uids": uids, "study_uid": study_uid, "for_uid": for_uid, "raw": raw}
    return paths, truth


def write_multiecho_series(folder: Path, *, echo_times_ms=(10.0, 20.0, 30.0, 40.0), rows: int = 4, cols: int = 7,
                           n_slices: int = 2, field_t: float | None = 3.0, etl: int | None = None,
                           seed: int = 3, with_te: bool = True) -> tuple[list[Path], dict]:
    """One multi-echo spin-echo (CPMG) series: a file per (slice, echo), EchoNumbers 1..n."""
    folder = Path(folder)
    n_e = len(echo_times_ms)
    study_uid, uid, for_uid = generate_uid(), generate_uid(), generate_uid()
    raw = raw_values(rows, cols, n_slices, echo_times_ms, seed=seed)
    data = np.zeros((cols, rows, n_slices, n_e))
    paths = []
    rng = np.random.default_rng(seed)
    items = [(z, e) for z in range(n_slices) for e in range(n_e)]
    for k, i in enumerate(rng.permutation(len(items))):
        z, e = items[i]
        ds = base_dataset(rows=rows, cols=cols, study_uid=study_uid, series_uid=uid, for_uid=for_uid,
                          series_number=5, description="MSE", te_ms=echo_times_ms[e] if with_te else None,
                          tr_ms=2000.0, flip_deg=90.0, field_t=field_t, etl=n_e if etl is None else etl)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.EchoNumbers = e + 1
        ds.ImagePositionPatient = [float(v) for v in _slice_position(z)]
        ds.ImageOrientationPatient = [float(v) for v in np.r_[ROW_COS, COL_COS]]
        ds.PixelSpacing = list(PIXEL_SPACING)
        ds.SliceThickness = THICKNESS_MM
        ds.PixelData = raw[z, e].tobytes()
        paths.append(_save(ds, folder / f"IM{k:04d}.dcm"))
        data[:, :, z, e] = raw[z, e].T
    truth = {"data": data, "echo_times_ms": np.asarray(echo_times_ms, float), "affine": expected_affine(),
             "series_uids": [uid], "study_uid": study_uid, "for_uid": for_uid, "raw": raw}
    return paths, truth


def write_enhanced(path: Path, *, echo_times_ms=FERRISCAN_TE_MS, rows: int = 5, cols: int = 6,
                   n_slices: int = 3, field_t: float = 1.5, slope: float = 2.0, intercept: float = -1.0,
                   seed: int = 7) -> tuple[list[Path], dict]:
    """One Enhanced MR Image Storage object, frames in (echo-major, shuffled slice) order."""
    path = Path(path)
    n_e = len(echo_times_ms)
    study_uid, uid, for_uid = generate_uid(), generate_uid(), generate_uid()
    raw = raw_values(rows, cols, n_slices, echo_times_ms, seed=seed)
    ds = base_dataset(rows=rows, cols=cols, study_uid=study_uid, series_uid=uid, for_uid=for_uid,
                      series_number=7, description="enhanced SE", te_ms=None, field_t=field_t,
                      sop_class=ENHANCED_MR_STORAGE)
    for kw in ("RepetitionTime", "FlipAngle", "EchoTrainLength", "ScanningSequence"):
        delattr(ds, kw)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.ImageType = ["ORIGINAL", "PRIMARY", "T2", "NONE"]
    ds.EchoPulseSequence = "SPIN"
    ds.InstanceNumber = 1
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = list(PIXEL_SPACING)
    pm.SliceThickness = THICKNESS_MM
    shared.PixelMeasuresSequence = Sequence([pm])
    po = Dataset()
    po.ImageOrientationPatient = [float(v) for v in np.r_[ROW_COS, COL_COS]]
    shared.PlaneOrientationSequence = Sequence([po])
    tm = Dataset()
    tm.RepetitionTime = 1000.0
    tm.FlipAngle = 90.0
    tm.EchoTrainLength = 1
    shared.MRTimingAndRelatedParametersSequence = Sequence([tm])
    pv = Dataset()
    pv.RescaleSlope = slope
    pv.RescaleIntercept = intercept
    pv.RescaleType = "US"
    shared.PixelValueTransformationSequence = Sequence([pv])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame, pixels = [], []
    rng = np.random.default_rng(seed)
    data = np.zeros((cols, rows, n_slices, n_e))
    for e, te in enumerate(echo_times_ms):
        for z in rng.permutation(n_slices):
            fg = Dataset()
            pp = Dataset()
            pp.ImagePositionPatient = [float(v) for v in _slice_position(int(z))]
            fg.PlanePositionSequence = Sequence([pp])
            me = Dataset()
            me.EffectiveEchoTime = float(te)
            fg.MREchoSequence = Sequence([me])
            fc = Dataset()
            fc.InStackPositionNumber = int(z) + 1
            fc.TemporalPositionIndex = e + 1
            fg.FrameContentSequence = Sequence([fc])
            ft = Dataset()
            ft.FrameType = ["ORIGINAL", "PRIMARY", "T2", "NONE"]
            ft.ComplexImageComponent = "MAGNITUDE"
            fg.MRImageFrameTypeSequence = Sequence([ft])
            per_frame.append(fg)
            pixels.append(raw[z, e])
            data[:, :, z, e] = raw[z, e].T * slope + intercept
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.NumberOfFrames = len(per_frame)
    ds.PixelData = np.stack(pixels).tobytes()
    _save(ds, path)
    truth = {"data": data, "echo_times_ms": np.asarray(echo_times_ms, float), "affine": expected_affine(),
             "series_uids": [uid], "study_uid": study_uid, "for_uid": for_uid}
    return [path], truth


def write_nifti_4d(folder: Path, *, echo_times_ms=FERRISCAN_TE_MS, shape=(5, 4, 3), sidecar: bool = True,
                   extra_sidecar: dict | None = None, seed: int = 11) -> tuple[list[Path], dict]:
    """One 4-D NIfTI with a BIDS sidecar listing EchoTime in seconds (echoes in given order)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = rng.uniform(0, 1000, size=(*shape, len(echo_times_ms))).astype(np.float32)
    affine = expected_affine()
    f = folder / "sub-01_MESE.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), f)
    if sidecar:
        meta = {"EchoTime": [t * 1e-3 for t in echo_times_ms], "MagneticFieldStrength": 1.5,
                "Manufacturer": "TESTCO", "RepetitionTime": 1.0, "FlipAngle": 90,
                "ScanningSequence": "SE", "EchoTrainLength": 1}
        meta.update(extra_sidecar or {})
        (folder / "sub-01_MESE.json").write_text(json.dumps(meta))
    return [f], {"data": data, "echo_times_ms": np.asarray(echo_times_ms, float), "affine": affine}


def write_nifti_per_echo(folder: Path, *, echo_times_ms=FERRISCAN_TE_MS, shape=(5, 4, 3), sidecar: bool = True,
                         seed: int = 12) -> tuple[list[Path], dict]:
    """dcm2niix / BIDS style: ``sub-01_echo-<n>_MESE.nii.gz`` + ``.json`` (EchoTime in s) per echo."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = rng.uniform(0, 1000, size=(*shape, len(echo_times_ms))).astype(np.float32)
    affine = expected_affine()
    paths = []
    for e, te in enumerate(echo_times_ms):
        f = folder / f"sub-01_echo-{e + 1}_MESE.nii.gz"
        nib.save(nib.Nifti1Image(data[..., e], affine), f)
        if sidecar:
            (folder / f"sub-01_echo-{e + 1}_MESE.json").write_text(json.dumps(
                {"EchoTime": te * 1e-3, "MagneticFieldStrength": 1.5, "ScanningSequence": "SE",
                 "EchoNumber": e + 1, "RepetitionTime": 1.0}))
        paths.append(f)
    return paths, {"data": data, "echo_times_ms": np.asarray(echo_times_ms, float), "affine": affine}


def read(path) -> Dataset:
    return pydicom.dcmread(str(path))
