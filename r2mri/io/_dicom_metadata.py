"""The header side of an assembled DICOM image: its metadata dict and the source headers
kept (pixel data dropped, undecodable elements removed). Split out of :mod:`._dicom`."""

from __future__ import annotations

import numpy as np
import pydicom


def _strip(ds):
    if "PixelData" in ds:
        ds = ds.copy()
        del ds.PixelData
    _drop_undecodable(ds)
    return ds


_KNOWN_VRS = frozenset(v.value for v in pydicom.valuerep.VR)


def _drop_undecodable(ds, depth: int = 0) -> None:
    """Remove elements with an unknown VR (a damaged file) from a kept header: pydicom raises
    NotImplementedError when one is first read, and the writers of the DICOM outputs copy
    patient and study attributes. Checked on the raw elements, without decoding any value."""
    for tag in list(ds.keys()):
        try:
            elem = ds.get_item(tag)  # raw (undecoded) unless something read it already
        except NotImplementedError:  # get_item decodes a deferred value: unknown VR (fuzz case 87219)
            del ds[tag]
            continue
        vr = getattr(elem, "VR", None)
        if vr is not None and str(vr) not in _KNOWN_VRS:
            del ds[tag]
        elif vr == "SQ" and depth < 4 and not isinstance(elem, pydicom.dataelem.RawDataElement):
            for item in elem.value or []:
                _drop_undecodable(item, depth + 1)


def _s(v):
    return None if v is None or v == "" else str(v)


def _text(ds, keyword: str) -> str | None:
    """Header value as text; None when absent, empty or undecodable (pydicom decodes an element
    at its first access, so a damaged one that nothing needed raises only here: it is not kept)."""
    try:
        v = ds.get(keyword)
    except Exception:  # noqa: BLE001 - e.g. NotImplementedError for an unknown VR
        return None
    if isinstance(v, (list, pydicom.multival.MultiValue)):
        return "\\".join(map(str, v)) or None
    return _s(v)


def _metadata(sorted_echoes: list, te_ms: np.ndarray, kind: str, source: str) -> dict:
    """The image's metadata: source, identity and study text, geometry and one entry per
    series (:func:`_series_entries`)."""
    ref = sorted_echoes[0][0]
    h = ref.header
    nz = len(sorted_echoes[0])
    spacing, gap = _slice_spacing_and_gap(sorted_echoes)
    return {
        "source": source,
        "format": "dicom",
        "dataset_kind": kind,
        "study_instance_uid": ref.study_uid,
        "frame_of_reference_uid": ref.for_uid,
        "series_instance_uids": [fs[0].series_uid for fs in sorted_echoes],
        "series_descriptions": [fs[0].series_description for fs in sorted_echoes],
        "series_numbers": [fs[0].series_number for fs in sorted_echoes],
        "echo_files": [list(dict.fromkeys(f.path for f in fs)) for fs in sorted_echoes],
        "echo_times_ms": [float(t) for t in te_ms],
        "repetition_time_s": (ref.params["repetition_time_ms"] * 1e-3) if ref.params.get("repetition_time_ms") is not None else None,
        "flip_angle_deg": ref.params.get("flip_angle_deg"),
        "patient_id": _text(h, "PatientID"),
        "patient_name": _text(h, "PatientName"),
        "patient_birth_date": _text(h, "PatientBirthDate"),
        "patient_sex": _text(h, "PatientSex"),
        "study_date": _text(h, "StudyDate"),
        "study_time": _text(h, "StudyTime"),
        "study_description": _text(h, "StudyDescription"),
        "accession_number": _text(h, "AccessionNumber"),
        "institution_name": _text(h, "InstitutionName"),
        "manufacturer_model_name": _text(h, "ManufacturerModelName"),
        "software_versions": _text(h, "SoftwareVersions"),
        "pixel_spacing_mm": list(ref.pixel_spacing),
        "slice_thickness_mm": ref.slice_thickness,
        "slice_spacing_mm": spacing,
        "slice_gap_mm": gap,
        "matrix": [ref.rows, ref.cols],
        "n_slices": nz,
        "series": _series_entries(sorted_echoes, te_ms),
    }


def _series_entries(sorted_echoes: list, te_ms: np.ndarray) -> list[dict]:
    """One entry per series of the frames: identity, echo times, files, matrix, spacing,
    the rescale values met and the acquisition parameters, in order of first appearance."""
    series: dict[str, dict] = {}
    for te, fs in zip(te_ms, sorted_echoes):
        for f in fs:
            s = series.setdefault(f.series_uid, {
                "series_instance_uid": f.series_uid,
                "series_number": f.series_number,
                "series_description": f.series_description,
                "echo_times_ms": [],
                "files": [],
                "rows": f.rows,
                "columns": f.cols,
                "pixel_spacing_mm": list(f.pixel_spacing),
                "slice_thickness_mm": f.slice_thickness,
                "rescale_slopes": [],
                "rescale_intercepts": [],
                "philips_scale_slopes": [],
                **{k: v for k, v in f.params.items() if k not in ("philips_scale_slope", "philips_scale_intercept")},
            })
            if float(te) not in s["echo_times_ms"]:
                s["echo_times_ms"].append(float(te))
            if f.path not in s["files"]:
                s["files"].append(f.path)
            for key, v in (("rescale_slopes", f.rescale_slope), ("rescale_intercepts", f.rescale_intercept),
                           ("philips_scale_slopes", f.params.get("philips_scale_slope"))):
                if v is not None and v not in s[key]:
                    s[key].append(v)
    return list(series.values())


def _slice_spacing_and_gap(sorted_echoes: list) -> tuple[float | None, float | None]:
    """Slice spacing along the normal (mm, first to last slice over their count) and the
    gap beyond the slice thickness; None for one slice or no thickness."""
    ref = sorted_echoes[0][0]
    nz = len(sorted_echoes[0])
    spacing = None
    if nz > 1:
        n = ref.normal
        spacing = abs(float(np.dot(sorted_echoes[0][-1].position - sorted_echoes[0][0].position, n)) / (nz - 1))
    gap = None
    if spacing is not None and ref.slice_thickness is not None:
        gap = spacing - ref.slice_thickness
    return spacing, gap
