"""Phase of a NIfTI multi-echo acquisition: BIDS ``part-`` pairs, or a phase file named by
the caller, checked against the magnitude and converted to radians.

Rules (docs/loading.md, "Phase from NIfTI"):

* **Which files.** The BIDS ``part-<label>`` entity (values ``mag``, ``phase``, ``real``,
  ``imag``) marks the component of the complex signal a file holds [C: BIDS specification,
  "Entities" appendix, entity ``part``: "typically used in part-mag/part-phase or
  part-real/part-imag pairs of files"; "The sidecar JSON file MUST include the units of the
  phase image. The possible options are rad or arbitrary"; "When there is only a magnitude
  image of a given type, the part key MAY be omitted" (bids-standard/bids-specification,
  src/schema/objects/entities/part.yaml)]. A magnitude file (``part-mag``, or no ``part``)
  pairs with the files of the same folder whose names are identical once the ``part``
  entity is removed: ``part-phase`` first, else ``part-real`` + ``part-imag``
  (phase = ``atan2(I, R)``). ``phase=`` names the phase file(s) explicitly (any name).
  Among the input paths, a file without ``part`` whose sidecar ImageType value 3 is
  ``P``/``PHASE`` (``R``/``REAL``, ``I``/``IMAGINARY``), or that holds the value ``PHASE``
  (``REAL``, ``IMAGINARY``) anywhere, is a phase (real, imaginary) file:
  dcm2niix copies ImageType from the DICOM and names phase files ``..._ph`` (checked with
  dcm2niix v1.0.20260724 on the phantom's Siemens-convention phase series), so a glob of
  a dcm2niix folder pairs as a DICOM folder does.
* **Never magnitude.** Phase (or only real, or only imaginary) files without a magnitude
  file are never analysed as magnitude, nor is a ``part-mag`` file whose sidecar
  ImageType says phase/real/imaginary; ``part-real`` + ``part-imag`` without a magnitude
  give magnitude ``hypot(R, I)`` and phase ``atan2(I, R)``, as for DICOM.
* **Same acquisition.** Shape, affine (rtol 1e-4, atol 1e-3 mm) and echo times (within
  1 us, from the phase's own sidecars) must match the magnitude, else one
  :class:`~r2mri.InputError` names the file and the mismatch (never a silent pairing).
* **Units** (:func:`phase_radians`, applied per file, values after the NIfTI
  ``scl_slope``/``scl_inter``):

  1. ``scl_slope`` 2 with ``scl_inter`` -4096 (dcm2niix keeps the Siemens RescaleSlope and
     RescaleIntercept of the phase DICOM, stored values 0..4095 [C: dcm2niix issue 406,
     C. Rorden, 2020-07-06: "the raw data is in the range 0..4095 (12-bit), with the
     scl_slope = 2.0 and scl_inter = -4096"]): radians = value x pi / 4096, the rule of
     the DICOM loader (:mod:`r2mri.io._phase`); stored values outside 0..4095 refuse;
  2. sidecar ``Units`` ``"rad"``: values within [-pi, pi] are radians, within [0, 2 pi]
     they are wrapped to [-pi, pi]; anything else refuses;
  3. no ``Units`` or ``"arbitrary"``: non-integer values within [-pi, pi] spanning more
     than pi are radians; integer values within -4096..4095, some negative and spanning
     more than 4096 (half the range), are the rescaled Siemens range, radians = value x
     pi / 4096 [C: CMRR-C2P/MB issue 238, E. Auerbach, 2019-12-02: phases "scaled to
     -4096=-pi,+4095=+pi or 0=-pi,+4095=+pi"]. The span condition refuses smaller
     integer ranges (e.g. the ~-500..496 range reported for some Philips systems), whose
     scale we have no source for;
  4. anything else (unscaled 0..4095, where 0 may be -pi or 0 rad; milliradians; degrees)
     refuses in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..image import MultiEchoImage
from ._phase import _PI_TOL, SIEMENS_PHASE_HALF_RANGE

__all__ = ["part_of", "split_parts", "load_nifti_complex", "phase_radians"]

_PART = re.compile(r"(?:^|_)part-([A-Za-z0-9]+)(?=_|\.)")
#: Sidecar ImageType value 3 of a complex component (dcm2niix copies ImageType from DICOM).
_COMPLEX_TYPES = {"P": "phase", "PHASE": "phase", "R": "real", "REAL": "real", "I": "imaginary",
                  "IMAGINARY": "imaginary"}
#: The Siemens rescaled phase range -4096..4095 maps to -pi..pi, and the radians tolerance:
#: the DICOM phase loader's (r2mri.io._phase), so the two routes cannot drift apart.
SIEMENS_HALF_RANGE = SIEMENS_PHASE_HALF_RANGE
SIEMENS_STORED_MAX = 4095  # 12-bit stored values 0..4095
_TE_ATOL_S = 1e-6
_AFFINE_TOL = dict(rtol=1e-4, atol=1e-3)
_NAMES = {"phase": "phase", "real": "real", "imag": "imaginary"}


def part_of(path: Path) -> str | None:
    """The BIDS ``part`` label of a file name (``"mag"``, ``"phase"``...), or None."""
    m = _PART.search(Path(path).name)
    return m.group(1).lower() if m else None


def _without_part(name: str) -> str:
    return _PART.sub("", name, count=1)


def split_parts(paths: list[Path]) -> dict[str, list[Path]]:
    """Paths by component: ``mag``, ``phase``, ``real``, ``imag``, from the BIDS ``part``
    entity, else from the sidecar ImageType value 3 (dcm2niix names phase files ``..._ph``
    and copies ImageType ``P``), else magnitude. A ``part-mag`` file whose sidecar says
    phase/real/imaginary refuses."""
    out: dict[str, list[Path]] = {"mag": [], "phase": [], "real": [], "imag": []}
    for p in paths:
        label = part_of(p)
        kind = _image_type_component(_sidecar_of(p))
        if label is None:
            label = {"phase": "phase", "real": "real", "imaginary": "imag"}.get(kind, "mag")
        elif label == "mag" and kind:
            raise InputError(f"{p}: BIDS part-mag, but its sidecar ImageType says {kind}: a {kind} image is never "
                             f"analysed as magnitude")
        if label not in out:
            raise InputError(f"{p}: BIDS part-{label} is not a component r2mri knows (mag, phase, real, imag)")
        out[label].append(p)
    return out


def _sidecar_of(path: Path) -> dict:
    from ._nifti import _sidecar

    return _sidecar(path)


def _siblings(mags: list[Path], label: str) -> list[Path] | None:
    """The ``part-<label>`` file beside each magnitude file (same name without ``part``), or
    None when any magnitude file has none."""
    from ._nifti import is_nifti

    out = []
    for m in mags:
        key = _without_part(m.name)
        found = [p for p in m.parent.glob(f"*part-{label}*") if is_nifti(p) and part_of(p) == label
                 and _without_part(p.name) == key]
        if len(found) != 1:
            return None
        out.append(found[0])
    return out


def _image_type_component(meta: dict) -> str | None:
    """"phase", "real", "imaginary" or None from a sidecar ImageType: value 3 (as in DICOM),
    or any value PHASE / REAL / IMAGINARY (dcm2niix appends the component it detected, e.g.
    ["ORIGINAL", "PRIMARY", "P", "ND", "PHASE"])."""
    vals = meta.get("ImageType")
    if not isinstance(vals, list):
        return None
    vals = [str(v).upper() for v in vals]
    if len(vals) > 2 and vals[2] in _COMPLEX_TYPES:
        return _COMPLEX_TYPES[vals[2]]
    return next((_COMPLEX_TYPES[v] for v in vals if v in ("PHASE", "REAL", "IMAGINARY")), None)


def load_nifti_complex(paths: list[Path], echo_times_ms, phase) -> MultiEchoImage:
    """Load NIfTI magnitude (and phase) files: the BIDS ``part`` pairing of the module
    docstring, ``phase`` a path or list of paths (explicit phase files), ``None``
    (automatic pairing) or ``False`` (magnitude only, no pairing)."""
    from ._nifti import load_nifti

    parts = split_parts(paths)
    explicit = None
    if phase is not None and phase is not False:
        from . import _as_paths

        explicit = [p for p in _as_paths(phase) if p.suffix.lower() != ".json"]
        if parts["phase"] or parts["real"] or parts["imag"]:
            raise InputError("phase: given both as phase= (--phase) and as part-phase/real/imag input paths; pass it once")
    if not parts["mag"]:
        if parts["real"] and parts["imag"] and explicit is None:
            return _from_real_imaginary(parts["real"], parts["imag"], echo_times_ms)
        comp = next(k for k in ("phase", "real", "imag") if parts[k])
        raise InputError(f"{parts[comp][0]}: only {_NAMES[comp]} images (BIDS part-{comp} or sidecar ImageType), which "
                         f"are never analysed as magnitude; pass the magnitude file")
    img = load_nifti(parts["mag"], echo_times_ms)
    img.metadata["phase"] = {"available": False, "source": None, "files": []}
    if phase is False:
        return img
    if explicit is not None:
        _attach_phase(img, parts["mag"], explicit, echo_times_ms, "phase file given by the user")
    elif parts["phase"]:
        _attach_phase(img, parts["mag"], parts["phase"], echo_times_ms, "phase files among the inputs")
    elif parts["real"] or parts["imag"]:
        if not (parts["real"] and parts["imag"]):
            raise InputError(f"{(parts['real'] or parts['imag'])[0]}: part-real and part-imag come in pairs; one is missing")
        _attach_real_imaginary(img, parts["mag"], parts["real"], parts["imag"], echo_times_ms)
    elif (sib := _siblings(parts["mag"], "phase")) is not None:
        _attach_phase(img, parts["mag"], sib, echo_times_ms, "BIDS part-phase")
    elif (re_ := _siblings(parts["mag"], "real")) is not None and (im := _siblings(parts["mag"], "imag")) is not None:
        _attach_real_imaginary(img, parts["mag"], re_, im, echo_times_ms)
    return img


def _load_component(img: MultiEchoImage, mags: list[Path], files: list[Path], echo_times_ms) -> MultiEchoImage:
    """The component files as an image, echoes in TE order, checked against the magnitude."""
    from ._nifti import _sidecar, _sidecar_te_s, load_nifti

    te_known = [_sidecar_te_s(_sidecar(p), p) is not None for p in files]
    te_ms = echo_times_ms
    if te_ms is None and not all(te_known):
        if any(te_known):
            raise InputError(f"{files[te_known.index(False)]}: no EchoTime in its sidecar while other phase files have one")
        te_ms = _magnitude_te_in_file_order(img, mags, files)
        try:
            comp = load_nifti(files, te_ms)
        except InputError as exc:
            raise InputError(f"{exc} (the phase has no sidecar EchoTime: the magnitude's echo times were used)") from None
    else:
        comp = load_nifti(files, te_ms)
    where = comp.metadata["source"]
    if comp.data.shape != img.data.shape:
        raise InputError(f"{where}: shape {comp.data.shape} (x, y, z, echo) differs from the magnitude "
                         f"{img.metadata['source']} {img.data.shape}")
    if not np.allclose(comp.affine, img.affine, **_AFFINE_TOL):
        raise InputError(f"{where}: affine differs from the magnitude {img.metadata['source']} (another grid)")
    if not np.allclose(comp.echo_times_s, img.echo_times_s, rtol=0.0, atol=_TE_ATOL_S):
        raise InputError(f"{where}: echo times {np.round(comp.echo_times_ms, 4).tolist()} ms differ from the "
                         f"magnitude's {np.round(img.echo_times_ms, 4).tolist()} ms")
    return comp


def _magnitude_te_in_file_order(img, mags: list[Path], files: list[Path]) -> list[float]:
    """Echo times (ms) for phase files without sidecar EchoTime: those of the magnitude, in
    the phase files' order (one 4-D file each: the magnitude file's volume order; one file
    per echo: the magnitude file each pairs with)."""
    md = img.metadata
    if len(mags) == 1 and len(files) == 1:
        te = md.get("sidecar", {}).get("EchoTime") if not md.get("echo_times_overridden") else None
        if te is None:
            return [float(t) for t in img.echo_times_ms]  # no sidecar list: the magnitude's order is TE order
        return [float(t) * 1e3 for t in np.asarray(te, float).reshape(-1)]
    if len(mags) == len(files):
        by_file = {f[0]: t for f, t in zip(md["echo_files"], img.echo_times_ms)}
        return [float(by_file[str(m)]) for m in mags]
    raise InputError(f"{files[0]}: phase files without EchoTime and not one per magnitude file; add sidecars "
                     f"with EchoTime (seconds)")


def _slope_inter(path: Path) -> tuple[float, float]:
    import nibabel as nib

    # nibabel moves scl_slope/scl_inter from the header into the array proxy when it loads
    proxy = nib.load(str(path)).dataobj
    slope, inter = getattr(proxy, "slope", None), getattr(proxy, "inter", None)
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    return slope, inter


def phase_radians(values: np.ndarray, path, units: str | None, slope: float = 1.0,
                  inter: float = 0.0) -> tuple[np.ndarray, str]:
    """Phase values of one NIfTI file (after ``scl_slope``/``scl_inter``) in radians,
    float32 in [-pi, pi], and the name of the rule used (module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> rad, rule = phase_radians(np.array([-4096.0, 0.0, 4094.0]), "ph.nii", None, 2.0, -4096.0)
    >>> [round(float(r), 4) for r in rad], rule
    ([-3.1416, 0.0, 3.1401], 'Siemens 0..4095 stored, scl_slope 2, scl_inter -4096: value x pi / 4096')
    """
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    u = None if units is None else str(units).strip().lower()
    if u not in (None, "rad", "arbitrary"):
        raise InputError(f"{path}: sidecar Units {units!r} not recognised for a phase image (BIDS: rad or arbitrary)")
    span = f"values {lo:g}..{hi:g}"
    if slope == 2.0 and inter == -SIEMENS_HALF_RANGE:
        stored = (v - inter) / slope
        if u == "rad":
            raise InputError(f"{path}: sidecar Units rad, but scl_slope 2 / scl_inter -4096 give {span}, not radians")
        if stored.min() < 0 or stored.max() > SIEMENS_STORED_MAX or np.any(stored != np.rint(stored)):
            raise InputError(f"{path}: scl_slope 2 / scl_inter -4096 (Siemens phase) but stored values "
                             f"{stored.min():g}..{stored.max():g} are not integers within 0..4095")
        return _clip(v * (np.pi / SIEMENS_HALF_RANGE)), ("Siemens 0..4095 stored, scl_slope 2, scl_inter -4096: "
                                                          "value x pi / 4096")
    if lo >= -np.pi - _PI_TOL and hi <= np.pi + _PI_TOL:
        if u == "rad":
            return _clip(v), "radians (sidecar Units rad)"
        if hi - lo > np.pi and np.any(v != np.rint(v)):
            return _clip(v), "radians (values within [-pi, pi])"
    if u == "rad":
        if lo >= -_PI_TOL and hi <= 2 * np.pi + _PI_TOL:
            return _clip(np.angle(np.exp(1j * v))), "radians (sidecar Units rad, [0, 2 pi] wrapped to [-pi, pi])"
        raise InputError(f"{path}: sidecar Units rad but {span}: not within [-pi, pi] or [0, 2 pi]")
    integer = bool(np.all(v == np.rint(v)))
    if integer and lo < 0 and lo >= -SIEMENS_HALF_RANGE and hi <= SIEMENS_HALF_RANGE - 1 and hi - lo > SIEMENS_HALF_RANGE:
        return _clip(v * (np.pi / SIEMENS_HALF_RANGE)), "Siemens rescaled range -4096..4095: value x pi / 4096"
    if integer and lo >= 0 and hi <= SIEMENS_STORED_MAX:
        span += (" unscaled: 0 may be -pi (Siemens stored values) or 0 rad; keep dcm2niix's scl_slope 2 and "
                 "scl_inter -4096, or give radians with sidecar Units rad")
    raise InputError(f"{path}: phase units cannot be known ({span}, Units {units or 'absent'}); known: radians "
                     f"(sidecar Units rad, or values within [-pi, pi]), Siemens stored 0..4095 with scl_slope 2 and "
                     f"scl_inter -4096 (dcm2niix), integers -4096..4095")


def _clip(rad: np.ndarray) -> np.ndarray:
    return np.clip(rad, -np.pi, np.pi).astype(np.float32)


def _attach_phase(img: MultiEchoImage, mags: list[Path], files: list[Path], echo_times_ms, how: str) -> None:
    from ._nifti import _sidecar

    comp = _load_component(img, mags, files, echo_times_ms)
    # the echo order of comp: comp.metadata["echo_files"], one entry per echo (a 4-D file repeats)
    out = np.empty(comp.data.shape, dtype=np.float32)
    rules = set()
    order = [Path(f[0]) for f in comp.metadata["echo_files"]]
    for p in dict.fromkeys(order):
        idx = [k for k, q in enumerate(order) if q == p]
        rad, rule = phase_radians(comp.data[..., idx], p, _sidecar(p).get("Units"), *_slope_inter(p))
        out[..., idx] = rad
        rules.add(rule)
    if len(rules) > 1:
        raise InputError(f"{comp.metadata['source']}: phase files mix units ({'; '.join(sorted(rules))})")
    img.phase_rad = out
    img.__post_init__()
    _record(img, files, f"{how}, {rules.pop()}")


def _attach_real_imaginary(img, mags, real, imag, echo_times_ms) -> None:
    re_ = _load_component(img, mags, real, echo_times_ms)
    im = _load_component(img, mags, imag, echo_times_ms)
    img.phase_rad = np.arctan2(im.data.astype(np.float64), re_.data.astype(np.float64)).astype(np.float32)
    img.__post_init__()
    _record(img, list(real) + list(imag), "BIDS part-real and part-imag (atan2)")


def _from_real_imaginary(real: list[Path], imag: list[Path], echo_times_ms) -> MultiEchoImage:
    from ._nifti import load_nifti

    img = load_nifti(real, echo_times_ms)
    im = _load_component(img, real, imag, echo_times_ms)
    r64, i64 = img.data.astype(np.float64), im.data.astype(np.float64)
    img.data = np.hypot(r64, i64).astype(np.float32)
    img.phase_rad = np.arctan2(i64, r64).astype(np.float32)
    img.__post_init__()
    _record(img, list(real) + list(imag), "BIDS part-real and part-imag (magnitude = hypot, phase = atan2)")
    img.metadata.setdefault("header_findings", []).append({
        "severity": "info", "code": "magnitude-from-real-imaginary",
        "message": f"no magnitude file: magnitude and phase computed from {len(real) + len(imag)} part-real/part-imag files",
        "details": {"files": [str(p) for p in list(real) + list(imag)]}})
    return img


def _record(img: MultiEchoImage, files: list[Path], source: str) -> None:
    names = [str(p) for p in files]
    img.metadata["phase"] = {"available": True, "source": source, "files": names}
    img.metadata.setdefault("header_findings", []).append({
        "severity": "info", "code": "phase-paired",
        "message": f"phase from {Path(names[0]).name}" + (f" and {len(names) - 1} more files" if len(names) > 1 else "")
                   + f" ({source})",
        "details": {"files": names}})
