"""Phase of a multi-echo acquisition: find the phase (or real/imaginary) series that
belong to the loaded magnitude dataset, check them, and fill ``MultiEchoImage.phase_rad``.

Rules (docs/loading.md, "Phase"):

* Classic MR images whose ImageType value 3 is ``P``/``PHASE`` (phase) or
  ``R``/``REAL`` and ``I``/``IMAGINARY`` are *complex-component* frames: they are never
  analysed as magnitude and never make a series "left out".
* Complex-component series are *candidates* when they share the magnitude dataset's
  study and frame of reference and at least one echo time. A candidate is usable when it
  matches the dataset exactly: same matrix, pixel spacing, orientation, slice positions
  (all three coordinates), TR, flip angle and field strength, only echoes of the dataset.
  The usable series must give one image per echo and slice, every echo and slice covered.
  Otherwise the phase is not used and the warning finding ``phase-not-paired`` says why,
  with every candidate's reason (never a silent or partial pairing). Candidates that do
  not match while others pair (another acquisition on the same frame of reference) are
  named in the ``phase-paired`` finding.
* Phase series are preferred; else real + imaginary give ``atan2(I, R)``.
* Units (from the rescaled range the header declares, BitsStored and
  RescaleSlope/Intercept, not from the pixel values): a range within [-pi, pi] is radians
  (as Philips writes phase, e.g. slope ~0.0015, intercept ~-3.14); RescaleSlope 2 with
  RescaleIntercept -4096 (stored 0..4095, checked) is the Siemens convention,
  radians = value x pi / 4096 (see
  :mod:`r2mri.phantom._dicom_phase` for the source). Anything else (e.g. milliradians or
  a vendor scaling we have no source for) gives ``phase-not-paired``: units not recognised.

Enhanced MR objects: frames whose ComplexImageComponent is PHASE, REAL or IMAGINARY are
complex-component frames too (in a separate object, or beside magnitude frames in a MIXED
one) and pair by the same rules.
"""

from __future__ import annotations

import numpy as np

from ._grouping import CONTRAST_PARAMS, POSITION_ATOL_MM, by_series, echo_key, geometry_difference, series_label

__all__ = ["complex_frames", "attach_phase", "COMPONENTS"]

#: ImageType value 3 -> component letter.
COMPONENTS = {"P": "P", "PHASE": "P", "R": "R", "REAL": "R", "I": "I", "IMAGINARY": "I"}
#: The Siemens rescaled phase range -4096..4094 (or ..4095) maps to -pi..pi.
SIEMENS_PHASE_HALF_RANGE = 4096.0
_PI_TOL = 1e-3


class _Unpaired(Exception):
    """Why the complex-component series cannot pair (the finding's message)."""


def complex_frames(ds, path: str) -> list:
    """The frame of a classic phase/real/imaginary MR image, or the phase/real/imaginary
    frames of an Enhanced MR object (``params["complex_component"]`` is ``"P"``, ``"R"`` or
    ``"I"``), else []. A damaged header gives [] (the file is then listed as skipped, as
    before): the phase is optional, the magnitude still loads."""
    from ..errors import InputError
    from ._dicom import classic_frame

    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_complex_frames(ds, path)
    try:
        vals = [str(v).upper() for v in ds.get("ImageType", [])]
    except TypeError:
        return []
    comp = COMPONENTS.get(vals[2]) if len(vals) > 2 else None
    if comp is None or any(k not in ds for k in ("Rows", "Columns", "ImagePositionPatient",
                                                 "ImageOrientationPatient", "PixelSpacing")):
        return []
    try:
        f = classic_frame(ds, path)
    except InputError:
        return []
    f.params["complex_component"] = comp
    return [f]


#: Enhanced MR ComplexImageComponent -> component letter.
_ENHANCED_COMPONENTS = {"PHASE": "P", "REAL": "R", "IMAGINARY": "I"}


def _enhanced_complex_frames(ds, path: str) -> list:
    """Phase/real/imaginary frames of an Enhanced MR object (a magnitude-only object: [])."""
    from ..errors import InputError
    from ._enhanced import enhanced_frames, frame_component

    top = str(ds.get("ComplexImageComponent", "") or "").upper()
    if top == "MAGNITUDE":
        return []
    try:
        frames = enhanced_frames(ds, path, components=tuple(_ENHANCED_COMPONENTS))
    except InputError:
        return []
    for f in frames:
        f.params["complex_component"] = _ENHANCED_COMPONENTS[
            str(frame_component(ds, f.frame_index)).upper()]
    return frames


def _layout(mag_frames: list, echo_times_ms) -> tuple[dict, list, np.ndarray]:
    """Echo index per echo key and the slice positions along the normal, in the order of
    :func:`r2mri.io._dicom.assemble` (echoes by header TE or by ``echo_times_ms``, slices
    ascending along the normal)."""
    echoes: dict = {}
    for f in mag_frames:
        echoes.setdefault(echo_key(f), []).append(f)
    keys = sorted(echoes, key=lambda k: (k[0] != "te", k[1]))
    if echo_times_ms is not None:
        order = np.argsort(np.asarray(echo_times_ms, dtype=float).reshape(-1), kind="stable")
    else:
        order = np.argsort([k[1] for k in keys], kind="stable")
    keys = [keys[i] for i in order]
    ref = echoes[keys[0]][0]
    first = sorted(echoes[keys[0]], key=lambda f: float(np.dot(f.position, ref.normal)))
    return {k: e for e, k in enumerate(keys)}, first, ref.normal


def _declared_range(f) -> tuple[float, float] | None:
    bs = f.params.get("bits_stored")
    if not bs:
        return None
    signed = bool(f.params.get("pixel_representation"))
    lo, hi = (-(2.0 ** (bs - 1)), 2.0 ** (bs - 1) - 1) if signed else (0.0, 2.0**bs - 1)
    a, b = lo * f.rescale_slope + f.rescale_intercept, hi * f.rescale_slope + f.rescale_intercept
    return (min(a, b), max(a, b))


def _units(f) -> tuple[str, float]:
    """('radians' | 'siemens-4096', factor to radians) of a phase frame, or _Unpaired."""
    if f.rescale_slope == 2.0 and f.rescale_intercept == -SIEMENS_PHASE_HALF_RANGE:
        # Siemens slope and intercept, whatever BitsStored says (a MIXED Enhanced object has
        # one BitsStored for magnitude and phase frames); stored values are checked <= 4095
        return "siemens-4096", np.pi / SIEMENS_PHASE_HALF_RANGE
    rng = _declared_range(f)
    if rng is None:
        raise _Unpaired(f"{f.where}: BitsStored missing, the phase units cannot be known")
    lo, hi = rng
    if lo >= -np.pi - _PI_TOL and hi <= np.pi + _PI_TOL and hi - lo > np.pi:
        return "radians", 1.0
    raise _Unpaired(f"{f.where}: phase units not recognised (rescaled range {lo:g}..{hi:g}; known: radians "
                    f"within [-pi, pi], Siemens -4096..4095)")


def _check_series(ref, fs: list, echo_index: dict) -> None:
    lab = series_label(fs)
    for f in fs:
        d = geometry_difference(ref, f)
        if d:
            raise _Unpaired(f"series {lab}: {d} (magnitude: {series_label([ref])})")
        if echo_key(f) not in echo_index:
            raise _Unpaired(f"series {lab}: echo time {f.te_ms} ms is not an echo of the magnitude dataset")
    for key, _code, label, unit, rtol, atol in CONTRAST_PARAMS:
        va, vb = ref.params.get(key), fs[0].params.get(key)
        if va is not None and vb is not None and not np.isclose(vb, va, rtol=rtol, atol=atol):
            raise _Unpaired(f"series {lab}: {label} {vb:g} {unit} vs {va:g} {unit} in the magnitude")


def _place(frames: list, echo_index: dict, first: list, normal: np.ndarray, shape: tuple) -> dict:
    """(echo, slice) -> frame for every frame; _Unpaired on duplicates, strays or gaps."""
    along = np.array([float(np.dot(f.position, normal)) for f in first])
    slots: dict = {}
    for f in frames:
        z = int(np.argmin(np.abs(along - float(np.dot(f.position, normal)))))
        if np.linalg.norm(f.position - first[z].position) > POSITION_ATOL_MM:
            raise _Unpaired(f"{f.where}: slice position {np.round(f.position, 2).tolist()} mm is not a slice "
                            f"of the magnitude dataset")
        slot = (echo_index[echo_key(f)], z)
        if slot in slots:
            raise _Unpaired(f"{f.where} and {slots[slot].where}: two images for echo {slot[0] + 1}, slice {z + 1}")
        slots[slot] = f
    missing = shape[3] * shape[2] - len(slots)
    if missing:
        raise _Unpaired(f"{missing} of {shape[3] * shape[2]} echo/slice images have no phase "
                        f"(series {', '.join(sorted({series_label([f]) for f in frames}))})")
    return slots


def _read_plane(f, cache: dict) -> np.ndarray:
    from ._dicom import _pixels

    return _pixels(f, cache).astype(np.float64) * f.rescale_slope + f.rescale_intercept


def _phase_volume(comp: dict, echo_index, first, normal, shape) -> tuple[np.ndarray, str]:
    """Phase (x, y, z, echo) float32 radians from P frames, else R + I frames."""
    out = np.empty(shape, dtype=np.float32)
    cache: dict = {}
    if comp.get("P"):
        slots = _place(comp["P"], echo_index, first, normal, shape)
        units = {_units(f) for f in slots.values()}
        if len(units) > 1:
            raise _Unpaired(f"phase series mix units {sorted(u[0] for u in units)}")
        name, factor = units.pop()
        for (e, z), f in slots.items():
            plane = _read_plane(f, cache)
            if name == "siemens-4096" and plane.max() > SIEMENS_PHASE_HALF_RANGE:
                raise _Unpaired(f"{f.where}: stored phase above 4095 with the Siemens slope 2 and intercept -4096")
            out[:, :, z, e] = np.clip(plane * factor, -np.pi, np.pi).T
        return out, f"phase series ({name})"
    re_slots = _place(comp["R"], echo_index, first, normal, shape)
    im_slots = _place(comp["I"], echo_index, first, normal, shape)
    for slot, fr in re_slots.items():
        re = _read_plane(fr, cache)
        im = _read_plane(im_slots[slot], cache)
        out[:, :, slot[1], slot[0]] = np.arctan2(im, re).T
    return out, "real and imaginary series (atan2)"


def attach_phase(img, mag_frames: list, cplx: list, echo_times_ms=None) -> None:
    """Pair complex-component frames with the magnitude dataset of ``img`` (in place).

    Sets ``img.phase_rad`` when a belonging phase (or real + imaginary) set passes every
    check; records ``metadata["phase"]`` (source, series, units) and adds the findings
    ``phase-paired`` (info) or ``phase-not-paired`` (warning) to ``header_findings``.
    """
    meta = img.metadata
    ref = mag_frames[0]
    echo_index, first, normal = _layout(mag_frames, echo_times_ms)
    mine = [f for f in cplx if f.study_uid == ref.study_uid
            and (not f.for_uid or not ref.for_uid or f.for_uid == ref.for_uid)]
    groups = {u: fs for u, fs in by_series(mine).items() if any(echo_key(f) in echo_index for f in fs)}
    meta["phase"] = {"available": False, "source": None, "series_instance_uids": sorted(groups)}
    if not groups:
        return
    findings = meta.setdefault("header_findings", [])
    ok, rejected = [], []
    for fs in groups.values():  # another acquisition on the same frame of reference fails here
        try:
            _check_series(ref, fs, echo_index)
            ok.append(fs)
        except _Unpaired as exc:
            rejected.append(str(exc))
    comp: dict = {"P": [], "R": [], "I": []}
    for fs in ok:
        comp[fs[0].params["complex_component"]].extend(fs)
    use = ("P",) if comp["P"] else ("R", "I")
    used = [fs for fs in ok if fs[0].params["complex_component"] in use]
    try:
        if not comp["P"] and not (comp["R"] and comp["I"]):
            raise _Unpaired("; ".join(rejected) if rejected else "real or imaginary series without its partner")
        phase, how = _phase_volume(comp, echo_index, first, normal, img.data.shape)
    except _Unpaired as exc:
        why = str(exc) if not rejected or str(exc) == "; ".join(rejected) else f"{exc}; {'; '.join(rejected)}"
        findings.append({"severity": "warning", "code": "phase-not-paired",
                         "message": f"phase images found but not used: {why}; the magnitude is analysed alone",
                         "details": {"series": sorted(groups)}})
        return
    img.phase_rad = phase
    img.__post_init__()  # validates the new field (shape, finite, radians)
    uids = sorted(fs[0].series_uid for fs in used)
    meta["phase"] = {"available": True, "source": how, "series_instance_uids": uids}
    nums = ", ".join(f"#{fs[0].series_number}" for fs in sorted(used, key=lambda fs: fs[0].series_number or 0))
    findings.append({"severity": "info", "code": "phase-paired",
                     "message": f"phase from {how}: {len(used)} series ({nums})"
                                + (f"; not used (another acquisition?): {'; '.join(rejected)}" if rejected else ""),
                     "details": {"series": uids}})


def load_real_imaginary(cplx: list, echo_times_ms, source: str):
    """Magnitude and phase from real + imaginary series when there is no magnitude series.

    The real series are grouped and chosen like magnitude series (:mod:`r2mri.io._grouping`),
    assembled, and the imaginary images of the same study, frame of reference, echoes and
    slices are placed beside them under the checks of :func:`attach_phase`. Returns the
    :class:`~r2mri.MultiEchoImage` (``data = hypot(R, I)``, ``phase_rad = atan2(I, R)``),
    or None when there is no real/imaginary pair to build from.
    """
    from ..errors import InputError
    from . import _dicom, _grouping

    re = [f for f in cplx if f.params["complex_component"] == "R"]
    im = [f for f in cplx if f.params["complex_component"] == "I"]
    if not re or not im:
        return None
    cands, _ = _grouping.candidates(re)
    if not cands:
        return None
    best = cands[0]
    img = _dicom.assemble(best.frames, echo_times_ms=echo_times_ms, source=source, kind=best.kind)
    ref = best.frames[0]
    echo_index, first, normal = _layout(best.frames, echo_times_ms)
    mine = [f for f in im if f.study_uid == ref.study_uid and (not f.for_uid or not ref.for_uid or f.for_uid == ref.for_uid)
            and echo_key(f) in echo_index]
    try:
        if not mine:
            raise _Unpaired("no imaginary series of the same study, frame of reference and echo times")
        for fs in by_series(mine).values():
            _check_series(ref, fs, echo_index)
        slots = _place(mine, echo_index, first, normal, img.data.shape)
    except _Unpaired as exc:
        raise InputError(f"{source}: real series without a matching imaginary series ({exc}); "
                         f"no magnitude series to analyse") from None
    imag = np.empty(img.data.shape, dtype=np.float64)
    cache: dict = {}
    for (e, z), f in slots.items():
        imag[:, :, z, e] = _read_plane(f, cache).T
    real = img.data.astype(np.float64)
    img.data = np.hypot(real, imag).astype(np.float32)
    img.phase_rad = np.arctan2(imag, real).astype(np.float32)
    img.__post_init__()
    uids = sorted({f.series_uid for f in best.frames} | {f.series_uid for f in mine})
    img.metadata["phase"] = {"available": True, "source": "real and imaginary series (magnitude = hypot, "
                                                          "phase = atan2)", "series_instance_uids": uids}
    img.metadata.setdefault("header_findings", []).append({
        "severity": "info", "code": "magnitude-from-real-imaginary",
        "message": f"no magnitude series: magnitude and phase computed from {len(uids)} real/imaginary series",
        "details": {"series": uids}})
    return img
