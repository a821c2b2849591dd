"""Enhanced MR Image Storage (multi-frame): one :class:`Frame` per frame.

Per frame, DICOM PS3.3 C.7.6.16 (Multi-frame Functional Groups) gives the geometry in
Plane Position (Patient) (ImagePositionPatient) and Plane Orientation (Patient)
(ImageOrientationPatient), the pixel size in Pixel Measures (PixelSpacing,
SliceThickness), the echo time in MR Echo (EffectiveEchoTime, C.8.13.5.2), rescaling
in Pixel Value Transformation, and magnitude/phase in MR Image Frame Type
(ComplexImageComponent). Each may sit in the Per-frame or the Shared group.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._dicom import Frame, _make_frame, _num, _vec, find_attr


def frame_component(ds, i: int):
    """ComplexImageComponent of frame ``i``: its MR Image Frame Type (per-frame, then shared)
    before the top-level value, which is MIXED when the frames differ (C.8.13.1)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    items = ([per_frame[i]] if i < len(per_frame) else []) + ([shared[0]] if shared else [])
    for g in items:
        for item in g.get("MRImageFrameTypeSequence") or []:
            v = item.get("ComplexImageComponent")
            if v:
                return v
    v = ds.get("ComplexImageComponent")
    return v or None


def enhanced_frames(ds, path: str, components: tuple[str, ...] = ("MAGNITUDE",)) -> list[Frame]:
    """Frames whose ComplexImageComponent is in ``components`` (a frame that does not say
    counts as MAGNITUDE)."""
    rows = _num(ds.get("Rows"), int)
    cols = _num(ds.get("Columns"), int)
    if not rows or not cols or rows < 1 or cols < 1:
        raise InputError(f"{path}: invalid matrix Rows={ds.get('Rows')!r} Columns={ds.get('Columns')!r}")
    from ._dicom import _check_pixel_format

    _check_pixel_format(ds, path)
    per_frame = ds.PerFrameFunctionalGroupsSequence
    n = _num(ds.get("NumberOfFrames"), int)
    if n is None or n < 1:
        raise InputError(f"{path}: NumberOfFrames is missing or invalid ({ds.get('NumberOfFrames')!r})")
    if len(per_frame) != n:
        raise InputError(
            f"{path}: {len(per_frame)} Per-frame Functional Groups items for NumberOfFrames={n}"
        )
    frames = []
    for i in range(n):
        where = f"{path} (frame {i + 1})"
        comp = frame_component(ds, i)
        if str(comp).upper() not in components if comp is not None else "MAGNITUDE" not in components:
            continue
        ipp = find_attr(ds, "ImagePositionPatient", i)
        iop = find_attr(ds, "ImageOrientationPatient", i)
        ps = find_attr(ds, "PixelSpacing", i)
        if ipp is None or iop is None or ps is None:
            raise InputError(f"{where}: Plane Position, Plane Orientation or Pixel Measures missing")
        ipp = _vec(ipp, 3, "ImagePositionPatient", where)
        iop = _vec(iop, 6, "ImageOrientationPatient", where)
        ps = _vec(ps, 2, "PixelSpacing", where)
        if np.any(ps <= 0):
            raise InputError(f"{where}: PixelSpacing must be positive, got {ps.tolist()}")
        te = _num(find_attr(ds, "EffectiveEchoTime", i))
        if te is None:
            te = _num(find_attr(ds, "EchoTime", i))
        frames.append(
            _make_frame(
                ds, path, i, rows, cols, iop, ipp, ps,
                te=te,
                echo_number=None,
                thickness=_num(find_attr(ds, "SliceThickness", i)),
                slope=find_attr(ds, "RescaleSlope", i),
                intercept=find_attr(ds, "RescaleIntercept", i),
            )
        )
    return frames
