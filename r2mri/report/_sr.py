"""The TID 1500 measurement report (``sr_report.dcm``, Comprehensive 3D SR).

One volumetric ROI measurement group (TID 1411) references the liver ROI of the SEG
and holds what a PACS user or an auditor needs to trust the headline:

===============================  ======================================================
content item                     value (report.json key)
===============================  ======================================================
NUM ``LIC-MEANR2`` mg/g, umol/g  headline LIC of the mean liver R2 (``lic_mg_per_g.of_mean_r2``)
NUM ``LIC-CI95-LOW/-HIGH`` mg/g  its 95 % interval (``lic_mg_per_g.ci95``)
NUM DCM 126394 "R2" ``/s``       mean liver R2 the headline is computed from
                                 (``r2_per_s.headline_mean``; method = its estimator),
                                 voxel mean and median R2 (methods ``voxel-mean``,
                                 derivation Median)
NUM ``LIC-DW`` mg/g              voxel mean and median LIC
NUM SCT Volume ``mL``            ROI volume (``roi.volume_ml``)
CODE ``LIC-CATEGORY``            clinical category (``category.name`` / ``.label``)
TEXT ``LIC-CAT-CI95``            only when the 95 % interval spans a category threshold: the
                                 plain line ``category.ci95_note``, e.g. "95 % interval spans
                                 3.2 mg/g: mildly raised or chelation target range"
TEXT ``CALIBRATION``,            calibration name, status (shipped or site curve; checked
``CALIB-STATUS``,                against its source, widely quoted, or derived) and citation
``CALIB-CITATION``
TEXT ``DECAY-MODEL``             decay model used (``model.name``)
TEXT ``QC-WARNING``              one item per entry of ``warnings``
===============================  ======================================================

For R2* (report.json ``quantity`` "R2*"): the rate is DCM 126395 "R2*", the headline
concept ``LIC-MEANR2STAR``, the calibration ``CALIB-R2STAR`` and the model
``SIGNAL-MODEL``; with a fat-water fit the liver PDFF is added as NUM DCM 129100
"Fat fraction", UCUM ``%``: Mean with the method of ``pdff_percent.mean_method``
(``tile-fw-ncchi`` from analyze: the tile-pooled fit's ROI PDFF), the voxel Mean (method
``voxel-mean``, ``.voxel_mean``) when that differs, and Median (``.median``).

Every concept of scheme ``99R2MRI`` is private (no standard code for liver iron
concentration exists); the scheme is declared in CodingSchemeIdentificationSequence.
A value that could not be computed (null in report.json) is left out, never NaN.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._version import __version__
from ..errors import InputError
from ._dicom import CODES, PRIVATE_SCHEME, quantity_codes

__all__ = ["structured_report", "calibration_status", "CATEGORY_CODES"]

#: Code values (at most 16 characters, SH) of the clinical categories of
#: :data:`r2mri.calibration.CATEGORIES`, scheme 99R2MRI.
CATEGORY_CODES = {
    "normal": "LIC-NORMAL",
    "mildly-raised": "LIC-MILD",
    "target-range": "LIC-TARGET",
    "increased-risk": "LIC-HIGH",
    "greatly-increased-risk": "LIC-VERY-HIGH",
}

#: Meanings of the R2 estimators named in ``r2_per_s.estimator`` (methods, scheme 99R2MRI).
_ESTIMATORS = {
    "tile-ncchi": "Tile-pooled noise-corrected mean of the liver ROI",
    # the SE default since issue 16: the tiles corrected for the spread of R2 within them
    "tile-mixture": "Tile-pooled noise-corrected mean, within-tile spread corrected",
    # the GRE headline of analyze (issue 15): the same pooling with the fat-water model
    "tile-fw-ncchi": "Tile-pooled noise-corrected fat-water fit of the liver ROI",
    # the GRE default since issue 16: the same, the tiles corrected for the spread of R2* within them
    "tile-fw-mixture": "Tile-pooled fat-water fit, within-tile spread corrected",
    "voxel-mean": "Mean of the voxel values in the liver ROI",
}


def calibration_status(cal: dict) -> str:
    """The ``CALIB-STATUS`` text: where the curve comes from and how far it was checked, in
    plain words (:func:`r2mri.report._calibration_words.status_text`); the flags
    ``verified`` / ``derived`` stay in report.json.

    Examples
    --------
    >>> calibration_status({"name": "my-site", "source": "my-site.toml", "shipped": False, "verified": True})
    'Site calibration my-site (file my-site.toml): formula checked against its cited source'
    """
    from ._calibration_words import status_text

    return status_text(cal)


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _code(value: str, meaning: str):
    from pydicom.sr.coding import Code

    meaning = str(meaning)
    return Code(str(value)[:16], PRIVATE_SCHEME, meaning if len(meaning) <= 64 else meaning[:61] + "...")


def _measurements(rep: dict) -> list:
    """TID 300 measurements for every finite value of the table above."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    lic, umol, r2 = rep.get("lic_mg_per_g") or {}, rep.get("lic_umol_per_g") or {}, rep.get("r2_per_s") or {}
    ci = lic.get("ci95") if isinstance(lic.get("ci95"), (list, tuple)) and len(lic["ci95"]) == 2 else (None, None)
    estimator = str(r2.get("estimator") or "voxel-mean")
    voxel_mean = _code("voxel-mean", _ESTIMATORS["voxel-mean"])
    qc = quantity_codes(str(rep.get("quantity") or "R2"))
    wanted = [
        (qc["lic_of_mean"], lic.get("of_mean_r2"), CODES["mg_per_g"], None, None),
        (qc["lic_of_mean"], umol.get("of_mean_r2"), CODES["umol_per_g"], None, None),
        (CODES["lic_ci95_low"], ci[0], CODES["mg_per_g"], None, None),
        (CODES["lic_ci95_high"], ci[1], CODES["mg_per_g"], None, None),
    ]
    if estimator != "voxel-mean":  # else the headline mean is the voxel mean below
        wanted.append((qc["rate"], r2.get("headline_mean"), CODES["per_s"], codes.SCT.Mean,
                       _code(estimator, _ESTIMATORS.get(estimator, estimator))))
    wanted += [
        (qc["rate"], r2.get("mean"), CODES["per_s"], codes.SCT.Mean, voxel_mean),
        (qc["rate"], r2.get("median"), CODES["per_s"], codes.SCT.Median, None),
        (CODES["lic"], lic.get("mean"), CODES["mg_per_g"], codes.SCT.Mean, voxel_mean),
        (CODES["lic"], lic.get("median"), CODES["mg_per_g"], codes.SCT.Median, None),
    ]
    pdff = rep.get("pdff_percent")
    if isinstance(pdff, dict):
        wanted += [
            (CODES["fat_fraction"], pdff.get("mean"), CODES["percent"], codes.SCT.Mean,
             _code(pdff.get("mean_method") or "voxel-mean",
                   _ESTIMATORS.get(pdff.get("mean_method") or "voxel-mean", "voxel-mean"))),
            (CODES["fat_fraction"], pdff.get("median"), CODES["percent"], codes.SCT.Median, None),
        ]
        if pdff.get("mean_method") not in (None, "voxel-mean"):  # the voxel mean beside the ROI mean
            wanted.append((CODES["fat_fraction"], pdff.get("voxel_mean"), CODES["percent"], codes.SCT.Mean,
                           voxel_mean))
    wanted.append((codes.SCT.Volume, (rep.get("roi") or {}).get("volume_ml"), CODES["ml"], None, None))
    algo = hd.sr.AlgorithmIdentification(name="r2mri", version=__version__)
    return [hd.sr.Measurement(name=name, value=v, unit=unit, derivation=derivation, method=method,
                              algorithm_id=algo)
            for name, value, unit, derivation, method in wanted
            if (v := _finite(value)) is not None]


def _category(rep: dict) -> list:
    import highdicom as hd

    cat = rep.get("category") or {}
    name = cat.get("name")
    if not name:
        return []
    value = _code(CATEGORY_CODES.get(str(name), str(name)), cat.get("label") or name)
    return [hd.sr.QualitativeEvaluation(name=CODES["category"], value=value)]


def _text_items(rep: dict) -> list:
    """TEXT qualitative evaluations (TID 1411): calibration, model, QC warnings."""
    from highdicom.sr import RelationshipTypeValues, TextContentItem

    cal = rep.get("calibration") or {}
    qc = quantity_codes(str(rep.get("quantity") or "R2"))
    cat = rep.get("category") if isinstance(rep.get("category"), dict) else {}
    texts = [
        # beside the category: the categories its 95 % interval spans (only when it spans a threshold)
        (CODES["category_interval"], cat.get("ci95_note")),
        (qc["calibration"], cal.get("name")),
        (CODES["calibration_status"], calibration_status(cal) if cal else None),
        (CODES["calibration_citation"], cal.get("citation_text")),
        (qc["model"], (rep.get("model") or {}).get("name")),
    ] + [(CODES["qc_warning"], w) for w in rep.get("warnings") or []]
    return [TextContentItem(name=name, value=str(value), relationship_type=RelationshipTypeValues.CONTAINS)
            for name, value in texts if value not in (None, "")]


def structured_report(src: list, seg: Any, rep: dict, series_number: int, uids: Callable[[str], str],
                      equipment: list) -> Any:
    """The Comprehensive 3D SR of ``rep`` referencing the SEG ``seg`` and the images ``src``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    measurements = _measurements(rep)
    if not measurements:
        raise InputError("--dicom: no finite headline value to put in the SR")
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=uids("observer-device"), name="r2mri", model_name="r2mri " + __version__),
    )
    group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uids("tracking"), identifier="Liver ROI"),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=1,
            source_series=hd.sr.SourceSeriesForSegmentation(src[0].SeriesInstanceUID),
        ),
        finding_type=codes.SCT.Liver,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Liver)],
        measurements=measurements,
        qualitative_evaluations=_category(rep) or None,
    )
    group[0].ContentSequence.extend(_text_items(rep))
    procedure = getattr(codes.SCT, "MagneticResonanceImaging", codes.SCT.ImagingProcedure)
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_device_context=observer),
                                     procedure_reported=procedure, imaging_measurements=[group])
    return hd.sr.Comprehensive3DSR(
        evidence=list(src) + [seg], content=report, series_instance_uid=uids("series"),
        series_number=series_number, sop_instance_uid=uids("sop"), instance_number=1, manufacturer="r2mri",
        series_description="r2mri LIC measurement report", is_complete=True, contributing_equipment=equipment,
    )
