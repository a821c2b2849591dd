"""The source images the DICOM outputs reference, as highdicom needs them.

Real inputs often lack attributes the standard lets them leave out or empty: a
de-identified export drops PatientBirthDate, PatientName or AccessionNumber, a research
export drops StudyID or StudyTime, an anonymiser writes ``ANON`` into a date. highdicom
reads nine Type 2 attributes of the Patient and General Study modules from the first
source image by attribute access (a missing one raises ``AttributeError``) and parses
the dates, times and sex it finds (an invalid one raises ``ValueError``). Neither may
cost the analysis its DICOM outputs: :func:`reference_headers` gives highdicom
header-only copies in which each such attribute that is missing or not valid for its
VR is present and empty, as PS3.3 allows for Type 2 ("required, may be empty"). The
caller's datasets are never changed. Type 3 attributes are copied only when present
(highdicom's module copy skips absent ones) and valid for their VR.

What the outputs cannot do without (the Type 1 UIDs that tie them to the source study,
series, instances and frame of reference) is checked by :func:`source_series`, which
raises :class:`r2mri.InputError` naming the file and the attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["source_series", "reference_headers", "TYPE2_READ_BY_HIGHDICOM", "TYPE1_NEEDED"]

#: Type 2 attributes (PS3.3 C.7.1.1 Patient, C.7.2.1 General Study) that highdicom's
#: ParametricMap, Segmentation and Comprehensive3DSR read from the first source image
#: as ``src.Attr`` (highdicom 0.28 ``pm/sop.py``, ``seg/sop.py``, ``sr/sop.py``).
TYPE2_READ_BY_HIGHDICOM = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
)

#: Type 1 attributes every output needs from the source images.
TYPE1_NEEDED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")

_PIXEL_DATA = 0x7FE00010
_VR = {"PatientName": "PN", "PatientID": "LO", "PatientBirthDate": "DA", "PatientSex": "CS",
       "StudyDate": "DA", "StudyTime": "TM", "StudyID": "SH", "AccessionNumber": "SH",
       "ReferringPhysicianName": "PN"}


def source_series(image: Any) -> list:
    """Datasets of the first echo's series (one per SOP instance), Type 1 UIDs checked."""
    datasets = [ds for ds in (image.source_datasets or []) if ds.get("SOPInstanceUID")]
    if not datasets:
        raise InputError("--dicom: no source DICOM datasets kept with the image (input was not DICOM?)")
    tes = [_float(ds.get("EchoTime")) for ds in datasets]
    first_te = np.nanmin(tes) if np.isfinite(tes).any() else None
    pick = [ds for ds, te in zip(datasets, tes)
            if first_te is None or not np.isfinite(te) or abs(te - first_te) < 1e-3]
    series = pick[0].get("SeriesInstanceUID")
    pick = [ds for ds in pick if ds.get("SeriesInstanceUID") == series]
    seen, unique = set(), []
    for ds in pick:
        if ds.SOPInstanceUID not in seen:
            seen.add(ds.SOPInstanceUID)
            unique.append(ds)
    for ds in unique:
        for keyword in TYPE1_NEEDED:
            if not ds.get(keyword):
                name = getattr(ds, "filename", None) or "a source dataset"
                raise InputError(
                    f"--dicom: {name}: the source has no {keyword} (Type 1), so no DICOM output can "
                    f"reference it; use --no-dicom"
                )
    return unique


def reference_headers(datasets: list) -> list:
    """Header-only copies of ``datasets`` with every Type 2 attribute highdicom reads present.

    A missing attribute of :data:`TYPE2_READ_BY_HIGHDICOM`, or one whose value is not
    valid for its VR (a date ``ANON``, a sex ``U``, an accession number longer than 16
    characters), is written empty. Of the other attributes of the Patient and Study
    modules, which highdicom copies when present, an invalid Type 2 one is emptied and
    an invalid Type 3 one left out (an age ``45`` without its unit letter). Elements are
    shared with the source (no pixel data, no deep copy); the source datasets themselves
    are not changed.
    """
    from pydicom.dataset import Dataset

    out = []
    for ds in datasets:
        ref = Dataset({tag: ds.get_item(tag) for tag in ds.keys() if tag != _PIXEL_DATA})
        if hasattr(ds, "file_meta"):
            ref.file_meta = ds.file_meta
        ref.filename = getattr(ds, "filename", None)
        for keyword in TYPE2_READ_BY_HIGHDICOM:
            if keyword not in ref or not _valid(keyword, ref.get(keyword)):
                _empty(ref, keyword)
        for keyword, kind in _patient_study_attributes(str(ref.get("SOPClassUID", ""))):
            if keyword in ref and keyword not in TYPE2_READ_BY_HIGHDICOM and kind in ("2", "3"):
                elem = ref[keyword]
                if elem.VR != "SQ" and not _vr_valid(elem.VR, elem.value):
                    if kind == "2":
                        _empty(ref, keyword)
                    else:
                        del ref[keyword]
        out.append(ref)
    return out


def _empty(ref: Any, keyword: str) -> None:
    if keyword in ref:
        del ref[keyword]  # a new element: the old one is shared with the source
    setattr(ref, keyword, None)


def _patient_study_attributes(sop_class_uid: str) -> list[tuple[str, str]]:
    """(keyword, type) of the root attributes of the Patient and Study modules of the IOD
    (highdicom's tables of the standard; empty for a SOP class they do not know)."""
    try:
        from highdicom._standard_utils import (get_iod_module_map, get_module_attribute_map,
                                               get_sop_class_iod_map)

        modules = get_iod_module_map()[get_sop_class_iod_map()[sop_class_uid]]
        attributes = get_module_attribute_map()
    except (ImportError, KeyError):  # private helpers of highdicom 0.28: a later one may move them
        return []
    return [(str(a["keyword"]), str(a["type"])) for m in modules if m["ie"] in ("Patient", "Study")
            for a in attributes[m["key"]] if not a["path"]]


def _vr_valid(vr: str, value: Any) -> bool:
    from pydicom import config
    from pydicom.multival import MultiValue
    from pydicom.valuerep import validate_value

    values = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    try:
        for v in values:
            validate_value(vr, v, config.RAISE)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _valid(keyword: str, value: Any) -> bool:
    """True when highdicom can take ``value`` for ``keyword`` and it is valid for its VR."""
    from pydicom.valuerep import DA, TM

    if value is None or value == "":
        return True
    vr = _VR[keyword]
    if not _vr_valid(vr, value):
        return False
    try:
        if vr == "DA":
            DA(str(value))
        elif vr == "TM":
            TM(str(value))
    except (ValueError, TypeError, OverflowError):
        return False
    return keyword != "PatientSex" or str(value) in ("M", "F", "O")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
