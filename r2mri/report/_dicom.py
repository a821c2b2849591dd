"""DICOM outputs, written with highdicom, all in the source study (new series UIDs).

=====================  =====================================================================
file                   content
=====================  =====================================================================
``pm_r2.dcm``          Parametric Map of R2, float32, Real World Value Mapping in UCUM
                       ``/s``; quantity DCM 126394 "R2" (domain.md section 6)
``pm_lic.dcm``         Parametric Map of LIC, float32, RWVM in UCUM ``mg/g``; quantity is
                       the private concept ``(LIC-DW, 99R2MRI, ...)`` because no standard
                       DICOM code for liver iron concentration was found
``seg_liver_roi.dcm``  Segmentation (binary) of the liver ROI used for the statistics
``sr_report.dcm``      Comprehensive 3D SR, TID 1500 measurement report: LIC of the mean
                       liver R2, mean/median LIC and R2, ROI volume (never NaN: a value
                       that could not be computed is left out and named in the report)
``sc_report.dcm``      Secondary Capture (RGB) of the report page, for PACS viewers
=====================  =====================================================================

Outside the map's computed voxels (NaN in the maps) the Parametric Maps hold 0; the
SEG says which voxels the statistics used.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._version import __version__
from ..errors import InputError

__all__ = ["write_dicom", "write_dicom_page", "CODES"]


def _codes() -> dict:
    from pydicom.sr.coding import Code

    return {
        # DCM 126394 "R2": quantity code named in ../shared/domain.md section 6.
        "r2": Code("126394", "DCM", "R2"),
        # No standard DICOM / SNOMED concept for "liver iron concentration" could be
        # confirmed, so r2mri uses clearly private "99" coding-scheme concepts.
        "lic": Code("LIC-DW", "99R2MRI", "Liver iron concentration, dry weight"),
        "lic_of_mean_r2": Code("LIC-MEANR2", "99R2MRI", "Liver iron concentration of the mean liver R2"),
        "category": Code("LIC-CATEGORY", "99R2MRI", "Liver iron concentration category"),
        # UCUM units (https://ucum.org): "/s" per second, "mg/g", "umol/g", "mL".
        "per_s": Code("/s", "UCUM", "per second"),
        "mg_per_g": Code("mg/g", "UCUM", "milligram per gram"),
        "umol_per_g": Code("umol/g", "UCUM", "micromole per gram"),
        "ml": Code("mL", "UCUM", "milliliter"),
    }


CODES = _codes()


def _source_series(image: Any) -> list:
    """Datasets of the first echo's series, sorted along the slice normal."""
    datasets = [ds for ds in (image.source_datasets or []) if hasattr(ds, "SOPInstanceUID")]
    if not datasets:
        raise InputError("--dicom: no source DICOM datasets kept with the image (input was not DICOM?)")
    first_te = None
    tes = [float(getattr(ds, "EchoTime", np.nan) or np.nan) for ds in datasets]
    if np.isfinite(tes).any():
        first_te = np.nanmin(tes)
    pick = [ds for ds, te in zip(datasets, tes) if first_te is None or not np.isfinite(te) or abs(te - first_te) < 1e-3]
    series = pick[0].SeriesInstanceUID
    pick = [ds for ds in pick if ds.SeriesInstanceUID == series]
    # one dataset per SOP instance
    seen, unique = set(), []
    for ds in pick:
        if ds.SOPInstanceUID not in seen:
            seen.add(ds.SOPInstanceUID)
            unique.append(ds)
    return unique


def _geometry(image: Any):
    """highdicom plane orientation / pixel measures / positions from the RAS affine.

    The frame for slice ``k`` is ``data[:, :, k].T`` (rows follow the image's second
    axis, columns its first), the nibabel/dcm2niix convention for DICOM planes.
    """
    import highdicom as hd

    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(image.affine, dtype=float)
    col0, col1, col2 = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    dx, dy, dz = (float(np.linalg.norm(c)) for c in (col0, col1, col2))
    row_cos = col0 / dx
    col_cos = col1 / dy
    orientation = hd.PlaneOrientationSequence(
        coordinate_system="PATIENT",
        image_orientation=[float(v) for v in (*row_cos, *col_cos)],
    )
    measures = hd.PixelMeasuresSequence(pixel_spacing=[dy, dx], slice_thickness=dz, spacing_between_slices=dz)
    positions = [
        hd.PlanePositionSequence(coordinate_system="PATIENT",
                                 image_position=[float(v) for v in (lps @ [0.0, 0.0, float(k), 1.0])[:3]])
        for k in range(image.shape[2])
    ]
    return orientation, measures, positions


def _frames(arr: np.ndarray) -> np.ndarray:
    """(x, y, z) -> (z, rows=y, cols=x)."""
    return np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))


def _parametric_map(src, values, image, *, label, explanation, unit, quantity, series_number, description):
    import highdicom as hd

    vals = np.asarray(values, dtype=np.float32)
    vals = np.where(np.isfinite(vals), vals, np.float32(0.0)).astype(np.float32)
    lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        hi = lo + 1.0
    rwvm = hd.pm.RealWorldValueMapping(
        lut_label=label, lut_explanation=explanation, unit=unit, value_range=(lo, hi),
        slope=1.0, intercept=0.0, quantity_definition=quantity,
    )
    orientation, measures, positions = _geometry(image)
    center, width = (lo + hi) / 2.0, max(hi - lo, 1e-3)
    return hd.pm.ParametricMap(
        source_images=src, pixel_array=_frames(vals), series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="r2mri",
        manufacturer_model_name="r2mri", software_versions=__version__, device_serial_number="0",
        contains_recognizable_visual_features=False, real_world_value_mappings=[rwvm],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=center, window_width=width)],
        content_description=description[:64],
        content_label=label.upper()[:16].replace(" ", "_"), pixel_measures=measures,
        plane_orientation=orientation, plane_positions=positions,
    )


def _segmentation(src, mask, image, rep, series_number):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    automatic = bool(rep.get("roi", {}).get("automatic"))
    algo = hd.AlgorithmIdentificationSequence(name="r2mri liver ROI", family=codes.DCM.ImageProcessing,
                                              version=__version__)
    desc = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Liver ROI",
        segmented_property_category=codes.SCT.AnatomicalStructure, segmented_property_type=codes.SCT.Liver,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if automatic
        else hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
        algorithm_identification=algo,
    )
    orientation, measures, positions = _geometry(image)
    return hd.seg.Segmentation(
        source_images=src, pixel_array=_frames(np.asarray(mask, dtype=np.uint8)),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=[desc],
        series_instance_uid=hd.UID(), series_number=series_number, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="r2mri", manufacturer_model_name="r2mri",
        software_versions=__version__, device_serial_number="0", pixel_measures=measures,
        plane_orientation=orientation, plane_positions=positions, omit_empty_frames=False,
        content_description="Liver ROI used for LIC statistics",
    )


def _measurements(rep: dict) -> tuple[list, list[str]]:
    """TID 300 measurements for every finite headline value; names of those left out."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    lic = rep.get("lic_mg_per_g", {})
    umol = rep.get("lic_umol_per_g", {})
    r2 = rep.get("r2_per_s", {})
    algo = hd.sr.AlgorithmIdentification(name="r2mri", version=__version__)
    wanted = [
        ("lic_mg_per_g.of_mean_r2", CODES["lic_of_mean_r2"], lic.get("of_mean_r2"), CODES["mg_per_g"], None),
        ("lic_umol_per_g.of_mean_r2", CODES["lic_of_mean_r2"], umol.get("of_mean_r2"), CODES["umol_per_g"], None),
        ("lic_mg_per_g.mean", CODES["lic"], lic.get("mean"), CODES["mg_per_g"], codes.SCT.Mean),
        ("lic_mg_per_g.median", CODES["lic"], lic.get("median"), CODES["mg_per_g"], codes.SCT.Median),
        ("r2_per_s.mean", CODES["r2"], r2.get("mean"), CODES["per_s"], codes.SCT.Mean),
        ("r2_per_s.median", CODES["r2"], r2.get("median"), CODES["per_s"], codes.SCT.Median),
        ("roi.volume_ml", codes.SCT.Volume, rep.get("roi", {}).get("volume_ml"), CODES["ml"], None),
    ]
    out, missing = [], []
    for key, name, value, unit, derivation in wanted:
        if value is None or not np.isfinite(float(value)):
            missing.append(key)
            continue
        out.append(hd.sr.Measurement(name=name, value=float(value), unit=unit, derivation=derivation,
                                     algorithm_id=algo))
    return out, missing


def _structured_report(src, seg, rep, series_number):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    measurements, missing = _measurements(rep)
    if not measurements:
        raise InputError("--dicom: no finite headline value to put in the SR")
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="r2mri", model_name="r2mri " + __version__),
    )
    context = hd.sr.ObservationContext(observer_device_context=observer)
    group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Liver ROI"),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=1,
            source_series=hd.sr.SourceSeriesForSegmentation(src[0].SeriesInstanceUID),
        ),
        finding_type=codes.SCT.Liver,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Liver)],
        measurements=measurements,
    )
    procedure = getattr(codes.SCT, "MagneticResonanceImaging", codes.SCT.ImagingProcedure)
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=procedure,
                                     imaging_measurements=[group])
    sr = hd.sr.Comprehensive3DSR(
        evidence=list(src) + [seg], content=report, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="r2mri",
        series_description="r2mri LIC measurement report", is_complete=True,
    )
    return sr, missing


def _secondary_capture(src, rgb, series_number, orientation=("L", "P")):
    import highdicom as hd

    ref = src[0]
    return hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref, pixel_array=np.ascontiguousarray(rgb, dtype=np.uint8), photometric_interpretation="RGB",
        # The page's map panels are shown radiologically (see _page.display_plane);
        # PatientOrientation says so (axial: columns toward Left, rows toward Posterior).
        bits_allocated=8, coordinate_system="PATIENT", patient_orientation=orientation, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="r2mri",
        series_description="r2mri LIC report page",
    ) if hasattr(hd.sc.SCImage, "from_ref_dataset") else None


def _declare_private_scheme(ds: Any) -> None:
    """Declare the private coding scheme 99R2MRI (Coding Scheme Identification Sequence)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    item.CodingSchemeDesignator = "99R2MRI"
    item.CodingSchemeName = "r2mri private concepts (no standard code for liver iron concentration)"
    item.CodingSchemeResponsibleOrganization = "r2mri developers"
    existing = list(getattr(ds, "CodingSchemeIdentificationSequence", []) or [])
    if not any(getattr(x, "CodingSchemeDesignator", None) == "99R2MRI" for x in existing):
        ds.CodingSchemeIdentificationSequence = Sequence(existing + [item])


def _source_uid_warnings_off(func):
    """Silence pydicom's "Invalid value for VR UI" while ``func`` runs: the outputs must
    reference the source study's UIDs as they are, and real scanners write some that the
    standard does not allow (a leading zero in a component, as in the MR-BIAS Siemens
    series); the loader accepts them silently too."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Invalid value for VR UI", module=r"pydicom(\..*)?$")
            return func(*args, **kwargs)
    return wrapper


@_source_uid_warnings_off
def write_dicom(result: Any, rep: dict, folder: Path, *, page_rgb: np.ndarray | None = None) -> dict[str, Path]:
    """Write the DICOM objects of ``result`` into ``folder``; return kind -> path.

    Without ``page_rgb`` the Secondary Capture is left out; :func:`write_dicom_page`
    writes it later (the page can be drawn while the other objects are encoded).
    """
    src = _source_series(result.image)
    folder.mkdir(parents=True, exist_ok=True)
    base = _base_series_number(src)
    objs: dict[str, Any] = {}
    objs["pm_r2"] = _parametric_map(
        src, result.fit.r2_per_s, result.image, label="R2", explanation="R2 relaxation rate (1/s)",
        unit=CODES["per_s"], quantity=CODES["r2"], series_number=base + 1,
        description=f"R2 map, model {rep.get('model', {}).get('name')}",
    )
    objs["pm_lic"] = _parametric_map(
        src, result.lic_mg_per_g, result.image, label="LIC", explanation="LIC mg Fe/g dry tissue",
        unit=CODES["mg_per_g"], quantity=CODES["lic"], series_number=base + 2,
        description=f"LIC map, calibration {rep.get('calibration', {}).get('name')}",
    )
    objs["seg_liver_roi"] = _segmentation(src, result.roi.mask, result.image, rep, base + 3)
    sr, _missing = _structured_report(src, objs["seg_liver_roi"], rep, base + 4)
    objs["sr_report"] = sr
    paths = _save_all(objs, src, folder)
    if page_rgb is not None:
        paths.update(write_dicom_page(result, rep, folder, page_rgb))
    return paths


@_source_uid_warnings_off
def write_dicom_page(result: Any, rep: dict, folder: Path, page_rgb: np.ndarray) -> dict[str, Path]:
    """Write the Secondary Capture of the report page (``sc_report.dcm``); kind -> path."""
    from ._page import display_plane

    src = _source_series(result.image)
    folder.mkdir(parents=True, exist_ok=True)
    base = _base_series_number(src)
    sc = _secondary_capture(src, page_rgb, base + 5, display_plane(result.image.affine)["patient_orientation"])
    if sc is None:
        return {}
    return _save_all({"sc_report": sc}, src, folder)


def _base_series_number(src: list) -> int:
    return int(getattr(src[0], "SeriesNumber", 0) or 0) * 100 + 90


def _save_all(objs: dict[str, Any], src: list, folder: Path) -> dict[str, Path]:
    body_part = str(getattr(src[0], "BodyPartExamined", "") or "ABDOMEN")  # a liver analysis
    for key, ds in objs.items():
        if key in ("pm_r2", "pm_lic", "sc_report") and not getattr(ds, "BodyPartExamined", None):
            # General Series: without it dciodvfy cannot tell that Laterality (2C) is not needed
            ds.BodyPartExamined = body_part
        if key in ("pm_lic", "sr_report"):
            _declare_private_scheme(ds)
    paths = {}
    for key, ds in objs.items():
        path = folder / f"{key}.dcm"
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        paths[key] = path
    return paths
