"""Grouping DICOM frames into candidate multi-echo datasets, and the series left out.

A FerriScan study is one single-echo spin-echo series per echo time. Series group into
one dataset when they are one acquisition on one voxel grid with one contrast: same
study, frame of reference, matrix, pixel spacing, orientation, slice positions (all
three coordinates of every slice), TR, flip angle and field strength. A series of the
same acquisition (same study, frame of reference, sequence and echo train length) that
does not group with the chosen dataset is *left out*: :func:`left_out` names it and
every reason, and the loader turns that into the error finding ``series-left-out``
(``docs/loading.md``, "Series left out"), so a subset of the echoes is never analysed
without the user choosing it.

Phase, real and imaginary images never reach this module: the loader keeps them apart
(:mod:`r2mri.io._phase`) and pairs them with the chosen magnitude dataset, so a phase
series of the acquisition is used, never "left out".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ._geometry import MM_ATOL, ORIENTATION_ATOL, close_mm

if TYPE_CHECKING:  # pragma: no cover
    from ._dicom import Frame

#: Slice positions (mm) count as the same slice within this distance: our choice, the
#: loader's existing tolerance for slice positions between echoes.
POSITION_ATOL_MM = max(MM_ATOL, 0.05)
#: Acquisition parameters that set the contrast of each echo, compared between series
#: with the tolerances of the protocol checks (r2mri/io/protocol.py): (params key,
#: reason code, label, unit, relative tolerance, absolute tolerance).
CONTRAST_PARAMS = (
    ("repetition_time_ms", "repetition-time", "TR", "ms", 1e-3, 0.0),
    ("flip_angle_deg", "flip-angle", "flip angle", "deg", 0.0, 0.5),
    ("field_strength_t", "field-strength", "field strength", "T", 0.0, 1e-3),
)


def echo_key(f: "Frame"):
    """What tells echoes apart: the echo time (ms, 3 decimals), else EchoNumbers."""
    if f.te_ms is not None:
        return ("te", round(f.te_ms, 3))
    if f.echo_number is not None:
        return ("echo", f.echo_number)
    return ("none", 0)


def by_series(frames: list["Frame"]) -> dict[str, list["Frame"]]:
    """Frames by SeriesInstanceUID, in the order met."""
    out: dict[str, list[Frame]] = {}
    for f in frames:
        out.setdefault(f.series_uid, []).append(f)
    return out


def series_label(frames: list["Frame"]) -> str:
    """``#13 'SE TE15' (UID ...4.5678)``: how a series is named in messages."""
    f = frames[0]
    num = f"#{f.series_number}" if f.series_number is not None else "#?"
    desc = f" '{f.series_description}'" if f.series_description else ""
    tail = f.series_uid if len(f.series_uid) <= 12 else "..." + f.series_uid[-10:]
    return f"{num}{desc} (UID {tail})"


# ----------------------------------------------------------------------------- differences
# A reason is (code, what, value in the reference series, value in the other series); slice
# reasons that are not two values carry the whole text in ``what`` and None values.
Reason = tuple  # (str, str, str | None, str | None)


def _vs(r: Reason) -> str:
    """"pixel spacing [1.5, 1.25] mm vs [1.6, 1.25] mm" (reference first)."""
    return r[1] if r[2] is None else f"{r[1]} {r[2]} vs {r[3]}"


def _left_out_text(r: Reason) -> str:
    """"pixel spacing [1.6, 1.25] mm (dataset: [1.5, 1.25] mm)" (the series left out first)."""
    return r[1] if r[2] is None else f"{r[1]} {r[3]} (dataset: {r[2]})"


def geometry_difference(a: "Frame", b: "Frame") -> str | None:
    """Why frames ``a`` and ``b`` cannot share one voxel grid (ignoring position), or None."""
    d = _geometry_differences(a, b)
    return _vs(d[0]) if d else None


def _geometry_differences(a: "Frame", b: "Frame") -> list[Reason]:
    out = []
    if (a.rows, a.cols) != (b.rows, b.cols):
        out.append(("matrix", "matrix", f"{a.rows}x{a.cols}", f"{b.rows}x{b.cols}"))
    if not close_mm(a.pixel_spacing, b.pixel_spacing):
        out.append(("pixel-spacing", "pixel spacing", f"{list(a.pixel_spacing)} mm", f"{list(b.pixel_spacing)} mm"))
    if not (np.allclose(a.row_cos, b.row_cos, atol=ORIENTATION_ATOL)
            and np.allclose(a.col_cos, b.col_cos, atol=ORIENTATION_ATOL)):
        out.append(("orientation", "orientation", str(np.round(np.r_[a.row_cos, a.col_cos], 5).tolist()),
                    str(np.round(np.r_[b.row_cos, b.col_cos], 5).tolist())))
    return out


def _sorted_slices(frames: list["Frame"], normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions along ``normal``, full positions (n, 3)) sorted along the normal."""
    full = np.array([f.position for f in frames], dtype=float)
    along = full @ normal
    order = np.argsort(along, kind="stable")
    return along[order], full[order]


def _fmt_mm(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _slice_differences(fa: list["Frame"], fb: list["Frame"]) -> list[Reason]:
    """Slice-position reasons of series ``fb`` against ``fa`` (same orientation assumed)."""
    normal = fa[0].normal
    pa, xa = _sorted_slices(fa, normal)
    pb, xb = _sorted_slices(fb, normal)
    out = []
    dup = np.unique(np.round(pb[np.where(np.diff(pb) <= MM_ATOL)[0]], 2))
    if dup.size:
        out.append(("duplicated-slice", f"duplicated slice at {_fmt_mm(dup)} mm ({pb.size} images at "
                                        f"{np.unique(np.round(pb, 2)).size} positions)", None, None))
    ua = pa[np.r_[True, np.diff(pa) > MM_ATOL]] if pa.size else pa
    ub = pb[np.r_[True, np.diff(pb) > MM_ATOL]] if pb.size else pb
    near = np.abs(ub[:, None] - ua[None, :]) <= POSITION_ATOL_MM  # (slices of b, slices of a)
    in_a, in_b = near.any(axis=1), near.any(axis=0)
    if in_a.all() and in_b.all():
        if not dup.size and pa.size == pb.size:
            shift = float(np.max(np.linalg.norm(xa - xb, axis=1)))
            if shift > POSITION_ATOL_MM:
                out.append(("position", f"in-plane position (field-of-view offset) differs by {shift:.2f} mm",
                            None, None))
        return out
    if in_a.all():  # every slice of b is in a: b lacks some
        out.append(("missing-slice", f"missing slice(s) at {_fmt_mm(ua[~in_b])} mm ({ub.size} of {ua.size} slices)",
                    None, None))
    elif in_b.all():
        out.append(("extra-slice", f"extra slice(s) at {_fmt_mm(ub[~in_a])} mm ({ub.size} vs {ua.size} slices)",
                    None, None))
    else:
        out.append(("position", "slice positions along the normal", f"[{_fmt_mm(ua)}] mm", f"[{_fmt_mm(ub)}] mm"))
    return out


def _param_differences(a: "Frame", b: "Frame") -> list[Reason]:
    out = []
    for key, code, label, unit, rtol, atol in CONTRAST_PARAMS:
        va, vb = a.params.get(key), b.params.get(key)
        if va is None or vb is None:
            continue  # not recorded in one of them: nothing to compare (protocol.py does the same)
        if not np.isclose(vb, va, rtol=rtol, atol=atol):
            out.append((code, label, f"{va:g} {unit}", f"{vb:g} {unit}"))
    return out


def series_differences(fa: list["Frame"], fb: list["Frame"], *, contrast: bool = True) -> list[Reason]:
    """Every reason why series ``fb`` cannot be echoes of the same dataset as ``fa``.

    Returns ``(code, what, value in fa, value in fb)`` tuples (values None when ``what``
    says it all); an empty list when they group. Codes: ``frame-of-reference``,
    ``matrix``, ``pixel-spacing``, ``orientation``, ``position``, ``missing-slice``,
    ``extra-slice``, ``duplicated-slice``, and with ``contrast`` (the automatic
    grouping) also ``repetition-time``, ``flip-angle``, ``field-strength``.
    """
    out = []
    a, b = fa[0].for_uid, fb[0].for_uid
    if a and b and a != b:
        out.append(("frame-of-reference", "frame of reference", a, b))
    geo = _geometry_differences(fa[0], fb[0])
    out.extend(geo)
    if not any(r[0] == "orientation" for r in geo):
        out.extend(_slice_differences(fa, fb))
    if contrast:
        out.extend(_param_differences(fa[0], fb[0]))
    return out


def series_difference(fa: list["Frame"], fb: list["Frame"], *, contrast: bool = True) -> str | None:
    """The reasons of :func:`series_differences` in one line, or None when they group."""
    d = series_differences(fa, fb, contrast=contrast)
    return "; ".join(_vs(r) for r in d) if d else None


# ----------------------------------------------------------------------------- candidates
@dataclass
class Candidate:
    """One dataset the loader could assemble, and the series of its acquisition left out."""

    kind: str  # "multi-echo", "per-te-series", "enhanced"
    series_uids: list[str]
    frames: list["Frame"]
    left_out: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        keys = sorted({echo_key(f) for f in self.frames})
        tes = sorted({f.te_ms for f in self.frames if f.te_ms is not None})
        f0 = self.frames[0]
        n_slices = len({round(float(np.dot(f.position, f0.normal)), 2) for f in self.frames})
        nums = [f.series_number for f in self.frames if f.series_number is not None]
        return {
            "kind": self.kind,
            "series_instance_uids": list(self.series_uids),
            "series_descriptions": sorted({f.series_description for f in self.frames}),
            "series_numbers": sorted(set(nums)),
            "n_echoes": len(keys),
            "echo_times_ms": tes,
            "n_slices": n_slices,
            "matrix": [f0.rows, f0.cols],
            "sequence": f0.params.get("sequence"),
            "series_left_out": [dict(s) for s in self.left_out],
        }

    def rank(self):
        s = self.summary()
        return (s["sequence"] == "SE", s["n_echoes"], s["n_slices"], max(s["series_numbers"] or [-1]))


def _number_key(item: tuple[str, list["Frame"]]):
    uid, fs = item
    return (fs[0].series_number if fs[0].series_number is not None else -1, uid)


def candidates(frames: list["Frame"]) -> tuple[list[Candidate], str | None]:
    """Candidate datasets (best first), and (when there is none) why per-TE series did not group.

    Every series with two or more echo times is a candidate; single-echo series group
    (in series-number order, each joining the first group it matches in every respect of
    :func:`series_differences`) and every group with two or more echo times is a candidate.
    Per-TE candidates list the series of their acquisition they leave out (:func:`left_out`).
    """
    series = by_series(frames)
    cands: list[Candidate] = []
    singles: list[tuple[str, list[Frame]]] = []
    for uid, fs in series.items():
        keys = {echo_key(f) for f in fs}
        if len(keys) >= 2:
            kind = "enhanced" if fs[0].frame_index is not None else "multi-echo"
            cands.append(Candidate(kind, [uid], fs))
        else:
            singles.append((uid, fs))
    singles.sort(key=_number_key)
    groups: list[list[tuple[str, list[Frame]]]] = []
    why = None
    for uid, fs in singles:
        for g in groups:
            if g[0][1][0].study_uid != fs[0].study_uid:
                continue
            d = series_difference(g[0][1], fs)
            if d is None:
                g.append((uid, fs))
                break
            if why is None and echo_key(g[0][1][0]) != echo_key(fs[0]):
                why = f"series {g[0][0]} and {uid} have different echo times but differ in {d}"
        else:
            groups.append([(uid, fs)])
    for g in groups:
        keys = {echo_key(fs[0]) for _, fs in g}
        if len(keys) >= 2:
            cand = Candidate("per-te-series", [u for u, _ in g], [f for _, fs in g for f in fs])
            cand.left_out = left_out([fs for _, fs in g], singles)
            cands.append(cand)
    cands.sort(key=lambda c: c.rank(), reverse=True)
    return cands, why


def same_acquisition(a: "Frame", b: "Frame") -> bool:
    """Same study, frame of reference, sequence and echo train length (unrecorded values match)."""
    if a.study_uid != b.study_uid:
        return False
    if a.for_uid and b.for_uid and a.for_uid != b.for_uid:
        return False
    for key in ("sequence", "echo_train_length"):
        va, vb = a.params.get(key), b.params.get(key)
        if va is not None and vb is not None and va != vb:
            return False
    return True


def left_out(group: list[list["Frame"]], singles: list[tuple[str, list["Frame"]]]) -> list[dict]:
    """The single-echo series of the group's acquisition that are not in the group, and why.

    ``group``: the frames of each series of a per-TE dataset; ``singles``: every
    single-echo series ``(uid, frames)``. A series is of the same acquisition when
    :func:`same_acquisition` holds against the group's first series; its reasons are
    :func:`series_differences` against that series. Returns one JSON-ready dict per
    series left out: uid, number, description, echo time, ``label`` (for messages) and
    ``reasons`` (``{"code", "text"}``).
    """
    ref = sorted(group, key=lambda fs: _number_key((fs[0].series_uid, fs)))[0]
    inside = {fs[0].series_uid for fs in group}
    out = []
    for uid, fs in singles:
        if uid in inside or not same_acquisition(ref[0], fs[0]):
            continue
        reasons = series_differences(ref, fs)
        if not reasons:  # pragma: no cover - it would have joined the group
            continue
        te = fs[0].te_ms
        out.append({
            "series_instance_uid": uid,
            "series_number": fs[0].series_number,
            "series_description": fs[0].series_description,
            "echo_time_ms": te,
            "n_images": len(fs),
            "label": series_label(fs),
            "compared_with": series_label(ref),
            "reasons": [{"code": r[0], "text": _left_out_text(r)} for r in reasons],
        })
    return out


# ----------------------------------------------------------------------------- the user's choice
def resolve_series(wanted: list[str], series: dict[str, list["Frame"]], source: str) -> list[str]:
    """SeriesInstanceUIDs for the user's ``series=`` items (UIDs, or series numbers).

    An item with a dot is a SeriesInstanceUID; an item of digits only (or an int) is a
    SeriesNumber, which must name exactly one series.
    """
    out = []
    for item in wanted:
        text = str(item).strip()
        if text in series:
            out.append(text)
            continue
        if text.isdigit():
            hits = [u for u, fs in series.items() if fs[0].series_number == int(text)]
            if len(hits) == 1:
                out.append(hits[0])
                continue
            if len(hits) > 1:
                raise InputError(f"series: series number {text} names {len(hits)} series in {source} "
                                 f"({', '.join(sorted(hits))}); pass the SeriesInstanceUID")
        present = ", ".join(f"#{fs[0].series_number} {u}" for u, fs in sorted(series.items(), key=_number_key))
        raise InputError(f"series: {text} not found in {source} (series present: {present})")
    if len(set(out)) != len(out):
        raise InputError(f"series: a series is named twice in {wanted}")
    return out


def duplicate_te_series(cand: Candidate) -> tuple[str, str] | None:
    """Two series of a per-TE candidate with the same echo time (a repeat), or None."""
    if cand.kind != "per-te-series":
        return None
    seen: dict = {}
    for uid, fs in by_series(cand.frames).items():
        k = echo_key(fs[0])
        if k in seen:
            return seen[k], uid
        seen[k] = uid
    return None
