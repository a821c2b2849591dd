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
(highdicom's module copy skips absent ones).

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
    characters), is written empty. Elements are shared with the source (no pixel data,
    no deep copy); the source datasets themselves are not changed.
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
                if keyword in ref:
                    del ref[keyword]  # a new element: the old one is shared with the source
                setattr(ref, keyword, None)
        out.append(ref)
    return out


def _valid(keyword: str, value: Any) -> bool:
    """True when highdicom can take ``value`` for ``keyword`` and it is valid for its VR."""
    from pydicom import config
    from pydicom.valuerep import DA, TM, validate_value

    if value is None or value == "":
        return True
    vr = _VR[keyword]
    try:
        validate_value(vr, value, config.RAISE)
        if vr == "DA":
            DA(str(value))
        elif vr == "TM":
            TM(str(value))
        elif keyword == "PatientSex":
            return str(value) in ("M", "F", "O")
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
