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
``sr_report.dcm``      Comprehensive 3D SR, TID 1500 measurement report (see ``_sr.py``)
``sc_report.dcm``      Secondary Capture (RGB) of the report page, for PACS viewers
=====================  =====================================================================

Gradient-echo data (R2*, ``_labels.quantity_of``): ``pm_r2star.dcm`` instead of
``pm_r2.dcm``, quantity DCM 126395 "R2*"; with a fat-water fit also ``pm_pdff.dcm``, the
PDFF in percent (UCUM ``%``), quantity DCM 129100 "Fat fraction". Both codes were
confirmed in the DICOM PS3.16 code tables shipped with pydicom 3.0
(``pydicom.sr.codedict.codes.DCM.R2Star`` and ``.FatFraction``, members of CID 218
"Quantitative Image Feature", CID 7180 "Abstract Multi-dimensional Image Model Component
Semantics" and CID 7469); PS3.16 has no "proton density fat fraction" concept, so the
PDFF map uses "Fat fraction" with its LUT explanation saying what it is. The water, fat
and field maps of the fat-water fit: ``pm_water.dcm``, ``pm_fat.dcm``, ``pm_fieldmap.dcm``
(``_dicom_fatwater.py``, with their codes' sources).

Outside the map's computed voxels (NaN in the maps) the Parametric Maps hold 0; the
SEG says which voxels the statistics used. Every object names r2mri in its
ContributingEquipmentSequence (purpose "Processing Equipment", with the r2mri version),
as the IHE AI Results profile asks of result objects. Missing or invalid Type 2
attributes of the source are written empty (``_dicom_source.py``). With a ``uid_seed``
every UID r2mri generates is derived from it, so writing again replaces, not duplicates.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._version import __version__
from ._dicom_source import reference_headers, source_series
from ._labels import Labels, labels_of

__all__ = ["write_dicom", "write_dicom_page", "CODES", "PRIVATE_SCHEME", "quantity_codes"]

#: Designator of r2mri's private coding scheme ("99" prefix: PS3.16 8.2 private schemes).
PRIVATE_SCHEME = "99R2MRI"


def _codes() -> dict:
    from pydicom.sr.coding import Code

    return {
        # DCM 126394 "R2": quantity code named in ../shared/domain.md section 6.
        "r2": Code("126394", "DCM", "R2"),
        # DCM 126395 "R2*" and DCM 129100 "Fat fraction": PS3.16 (CID 7180), as shipped in
        # pydicom 3.0's code tables (codes.DCM.R2Star, codes.DCM.FatFraction), checked.
        "r2star": Code("126395", "DCM", "R2*"),
        "fat_fraction": Code("129100", "DCM", "Fat fraction"),
        # R2* counterparts of the private concepts whose meaning names R2
        "lic_of_mean_r2star": Code("LIC-MEANR2STAR", PRIVATE_SCHEME,
                                   "Liver iron concentration of the mean liver R2*"),
        "calibration_r2star": Code("CALIB-R2STAR", PRIVATE_SCHEME, "R2* to LIC calibration"),
        "model_r2star": Code("SIGNAL-MODEL", PRIVATE_SCHEME, "Signal model of the R2* fit"),
        # No standard DICOM / SNOMED concept for "liver iron concentration" could be
        # confirmed, so r2mri uses clearly private "99" coding-scheme concepts.
        "lic": Code("LIC-DW", PRIVATE_SCHEME, "Liver iron concentration, dry weight"),
        "lic_of_mean_r2": Code("LIC-MEANR2", PRIVATE_SCHEME, "Liver iron concentration of the mean liver R2"),
        "lic_ci95_low": Code("LIC-CI95-LOW", PRIVATE_SCHEME, "Lower limit of the 95 % interval of the LIC"),
        "lic_ci95_high": Code("LIC-CI95-HIGH", PRIVATE_SCHEME, "Upper limit of the 95 % interval of the LIC"),
        "category": Code("LIC-CATEGORY", PRIVATE_SCHEME, "Liver iron concentration category"),
        "category_interval": Code("LIC-CAT-CI95", PRIVATE_SCHEME,
                                  "Categories spanned by the 95 % interval of the LIC"),
        "calibration": Code("CALIBRATION", PRIVATE_SCHEME, "R2 to LIC calibration"),
        "calibration_status": Code("CALIB-STATUS", PRIVATE_SCHEME, "Calibration status"),
        "calibration_citation": Code("CALIB-CITATION", PRIVATE_SCHEME, "Calibration source"),
        "model": Code("DECAY-MODEL", PRIVATE_SCHEME, "Signal decay model of the R2 fit"),
        "qc_warning": Code("QC-WARNING", PRIVATE_SCHEME, "Quality control warning"),
        # UCUM units (https://ucum.org): "/s" per second, "mg/g", "umol/g", "mL".
        "per_s": Code("/s", "UCUM", "per second"),
        "mg_per_g": Code("mg/g", "UCUM", "milligram per gram"),
        "umol_per_g": Code("umol/g", "UCUM", "micromole per gram"),
        "ml": Code("mL", "UCUM", "milliliter"),
        "percent": Code("%", "UCUM", "percent"),
    }


CODES = _codes()


def quantity_codes(quantity: str) -> dict:
    """The codes that name the rate: ``rate``, ``lic_of_mean``, ``calibration``, ``model``.

    ``"R2"``: DCM 126394 and the original private concepts (SE reports are unchanged);
    ``"R2*"``: DCM 126395 and the R2* private concepts.
    """
    if quantity == "R2*":
        return {"rate": CODES["r2star"], "lic_of_mean": CODES["lic_of_mean_r2star"],
                "calibration": CODES["calibration_r2star"], "model": CODES["model_r2star"]}
    return {"rate": CODES["r2"], "lic_of_mean": CODES["lic_of_mean_r2"], "calibration": CODES["calibration"],
            "model": CODES["model"]}


def _uid(seed: str | None, role: str) -> str:
    """A new UID; with ``seed`` the same one for the same (seed, role), every time."""
    from pydicom.uid import PYDICOM_ROOT_UID, generate_uid

    if seed is None:
        return generate_uid()
    return generate_uid(prefix=PYDICOM_ROOT_UID, entropy_srcs=[seed, role])


def _equipment(description: str = "R2 and LIC maps, liver ROI and LIC report computed by r2mri") -> list:
    """ContributingEquipmentSequence item naming r2mri (IHE AI Results: the result's producer).

    Purpose DCM 109102 "Processing Equipment" (CID 7005): CID 7005 has no "Processing
    Algorithm" concept; 109103 is "Modifying Equipment" (pydicom's DICOM code tables).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return [hd.ContributingEquipment(
        manufacturer="r2mri", purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name="r2mri", software_versions=__version__,
        contribution_description=description,
    )]


def _contribution(labels: Labels) -> str:
    """ContributionDescription of r2mri's equipment item (names what r2mri computed)."""
    if labels.quantity == "R2":
        return "R2 and LIC maps, liver ROI and LIC report computed by r2mri"
    fat = ", PDFF" if labels.fatwater else ""
    return f"{labels.quantity}{fat} and LIC maps, liver ROI and LIC report computed by r2mri"


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


def _parametric_map(src, values, image, *, label, explanation, unit, quantity, series_number, description, uids,
                    equipment=None):
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
        source_images=src, pixel_array=_frames(vals), series_instance_uid=uids("series"),
        series_number=series_number, sop_instance_uid=uids("sop"), instance_number=1, manufacturer="r2mri",
        manufacturer_model_name="r2mri", software_versions=__version__, device_serial_number="0",
        contains_recognizable_visual_features=False, real_world_value_mappings=[rwvm],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=center, window_width=width)],
        content_description=description[:64],
        # CS: upper case, digits, space, underscore ("R2*" -> "R2STAR")
        content_label=label.upper().replace("*", "STAR")[:16].replace(" ", "_"), pixel_measures=measures,
        plane_orientation=orientation, plane_positions=positions,
        contributing_equipment=equipment if equipment is not None else _equipment(),
    )


def _segmentation(src, mask, image, rep, series_number, uids, equipment=None):
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
        series_instance_uid=uids("series"), series_number=series_number, sop_instance_uid=uids("sop"),
        instance_number=1, manufacturer="r2mri", manufacturer_model_name="r2mri",
        software_versions=__version__, device_serial_number="0", pixel_measures=measures,
        plane_orientation=orientation, plane_positions=positions, omit_empty_frames=False,
        content_description="Liver ROI used for LIC statistics",
        contributing_equipment=equipment if equipment is not None else _equipment(),
    )


def _secondary_capture(src, rgb, series_number, orientation, uids, equipment=None):
    import highdicom as hd

    return hd.sc.SCImage.from_ref_dataset(
        ref_dataset=src[0], pixel_array=np.ascontiguousarray(rgb, dtype=np.uint8),
        photometric_interpretation="RGB", bits_allocated=8, coordinate_system="PATIENT",
        # The page's map panels are shown radiologically (see _page.display_plane);
        # PatientOrientation says so (axial: columns toward Left, rows toward Posterior).
        patient_orientation=orientation, series_instance_uid=uids("series"), series_number=series_number,
        sop_instance_uid=uids("sop"), instance_number=1, manufacturer="r2mri",
        series_description="r2mri LIC report page",
        contributing_equipment=equipment if equipment is not None else _equipment(),
    )


def declare_private_scheme(ds: Any) -> None:
    """Declare the private coding scheme 99R2MRI (Coding Scheme Identification Sequence)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = "r2mri private concepts (no standard code for liver iron concentration)"
    item.CodingSchemeResponsibleOrganization = "r2mri developers"
    existing = list(getattr(ds, "CodingSchemeIdentificationSequence", []) or [])
    if not any(getattr(x, "CodingSchemeDesignator", None) == PRIVATE_SCHEME for x in existing):
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


def _roles(seed: str | None, key: str):
    """UID factory of one output object: ``uids("series")``, ``uids("sop")``..."""
    return lambda role: _uid(seed, f"{key}/{role}")


@_source_uid_warnings_off
def write_dicom(result: Any, rep: dict, folder: Path, *, page_rgb: np.ndarray | None = None,
                uid_seed: str | None = None) -> dict[str, Path]:
    """Write the DICOM objects of ``result`` into ``folder``; return kind -> path.

    Without ``page_rgb`` the Secondary Capture is left out; :func:`write_dicom_page`
    writes it later (the page can be drawn while the other objects are encoded). With
    ``uid_seed`` every generated UID is derived from it (see ``write_outputs``).
    """
    from ._sr import structured_report

    src = reference_headers(source_series(result.image))
    folder.mkdir(parents=True, exist_ok=True)
    base = _base_series_number(src)
    labels = labels_of(result)
    equipment = _equipment(_contribution(labels))
    objs: dict[str, Any] = {}
    q, key = labels.quantity, "pm_" + labels.ascii.lower()
    objs[key] = _parametric_map(
        src, result.fit.r2_per_s, result.image, label=q, explanation=f"{q} relaxation rate (1/s)",
        unit=CODES["per_s"], quantity=quantity_codes(q)["rate"], series_number=base + 1,
        description=f"{q} map, model {rep.get('model', {}).get('name')}", uids=_roles(uid_seed, key),
        equipment=equipment,
    )
    objs["pm_lic"] = _parametric_map(
        src, result.lic_mg_per_g, result.image, label="LIC", explanation="LIC mg Fe/g dry tissue",
        unit=CODES["mg_per_g"], quantity=CODES["lic"], series_number=base + 2,
        description=f"LIC map, calibration {rep.get('calibration', {}).get('name')}",
        uids=_roles(uid_seed, "pm_lic"), equipment=equipment,
    )
    pdff = (getattr(result.fit, "extra", None) or {}).get("pdff_percent") if labels.fatwater else None
    if pdff is not None:
        objs["pm_pdff"] = _parametric_map(
            src, pdff, result.image, label="PDFF",
            explanation="Proton density fat fraction 100 F/(W+F) (%)",
            unit=CODES["percent"], quantity=CODES["fat_fraction"], series_number=base + 6,
            description="PDFF map (%), fat-water model", uids=_roles(uid_seed, "pm_pdff"), equipment=equipment,
        )
    if pdff is not None:  # water, fat (and field map) signal maps: _dicom_fatwater.py
        from ._dicom_fatwater import fatwater_parametric_maps

        objs.update(fatwater_parametric_maps(result, src, base, uid_seed, equipment))
    objs["seg_liver_roi"] = _segmentation(src, result.roi.mask, result.image, rep, base + 3,
                                          _roles(uid_seed, "seg_liver_roi"), equipment)
    objs["sr_report"] = structured_report(src, objs["seg_liver_roi"], rep, base + 4,
                                          _roles(uid_seed, "sr_report"), equipment)
    paths = _save_all(objs, src, folder, uid_seed)
    if page_rgb is not None:
        paths.update(write_dicom_page(result, rep, folder, page_rgb, uid_seed=uid_seed))
    return paths


@_source_uid_warnings_off
def write_dicom_page(result: Any, rep: dict, folder: Path, page_rgb: np.ndarray, *,
                     uid_seed: str | None = None) -> dict[str, Path]:
    """Write the Secondary Capture of the report page (``sc_report.dcm``); kind -> path."""
    from ._page import display_plane

    src = reference_headers(source_series(result.image)[:1])
    folder.mkdir(parents=True, exist_ok=True)
    sc = _secondary_capture(src, page_rgb, _base_series_number(src) + 5,
                            display_plane(result.image.affine)["patient_orientation"],
                            _roles(uid_seed, "sc_report"), _equipment(_contribution(labels_of(result))))
    return _save_all({"sc_report": sc}, src, folder, uid_seed)


def _base_series_number(src: list) -> int:
    try:
        return int(src[0].get("SeriesNumber") or 0) * 100 + 90
    except (TypeError, ValueError):
        return 90


def _body_part(src: list) -> str:
    """The source's BodyPartExamined when valid (CS), else ABDOMEN (a liver analysis)."""
    from pydicom import config
    from pydicom.valuerep import validate_value

    value = src[0].get("BodyPartExamined")
    try:
        validate_value("CS", value, config.RAISE)
    except ValueError:
        value = None
    return str(value or "ABDOMEN")


def _save_all(objs: dict[str, Any], src: list, folder: Path, uid_seed: str | None) -> dict[str, Path]:
    for key, ds in objs.items():
        if key.startswith("pm_") or key == "sc_report":
            # General Series: without it dciodvfy cannot tell that Laterality (2C) is not needed
            ds.BodyPartExamined = _body_part(src)
        if key in ("pm_lic", "sr_report"):
            declare_private_scheme(ds)
        if uid_seed is not None and "DimensionOrganizationSequence" in ds:
            # highdicom draws this one itself: derive it too, so that a re-write is byte-equal
            uid = _uid(uid_seed, f"{key}/dimension-organization")
            ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = uid
            for item in ds.DimensionIndexSequence:
                item.DimensionOrganizationUID = uid
    paths = {}
    for key, ds in objs.items():
        path = folder / f"{key}.dcm"
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        paths[key] = path
    return paths
