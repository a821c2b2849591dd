"""One DICOM dataset's frames in volume order: echoes by echo time, slices along the normal.

Helpers of :func:`r2mri.io._dicom.assemble`: they order and check the frames (echo
times distinct, one geometry and frame of reference, the same regularly spaced slices
in every echo) and say how Philips private scaling is reconciled. No pixel data is read
here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ._geometry import MM_ATOL, MM_RTOL
from ._grouping import echo_key as _echo_key
from ._grouping import geometry_difference

if TYPE_CHECKING:
    from ._dicom import Frame


def _uniform_step(positions: np.ndarray, where: str) -> float:
    d = np.diff(positions)
    if d.size == 0:
        return 0.0
    med = float(np.min(d))  # slices can only go missing, so the smallest step is the spacing
    if np.any(d > 1.5 * med):
        k = int(np.argmax(d))
        raise InputError(
            f"{where}: missing slice(s): gap of {d[k]:.3g} mm between slices at {positions[k]:.2f} "
            f"and {positions[k + 1]:.2f} mm where the spacing is {med:.3g} mm"
        )
    if not np.allclose(d, med, rtol=1e-2, atol=MM_ATOL):
        raise InputError(f"{where}: irregular slice spacing {np.round(d, 3).tolist()} mm")
    return med


def _series_label(frames: list[Frame]) -> str:
    f = frames[0]
    num = f"#{f.series_number} " if f.series_number is not None else ""
    desc = f" '{f.series_description}'" if f.series_description else ""
    return f"series {num}{f.series_uid}{desc}"


def echo_order(frames: list[Frame], echo_times_ms, source: str) -> tuple[dict, list, np.ndarray]:
    """The frames grouped by echo, and the echoes in ascending echo time.

    Returns ``(echoes, keys, te_ms)``: frames per echo key, the keys sorted by echo
    time, and the echo times in ms (``echo_times_ms`` when the user gave them).
    """
    echoes: dict = {}
    for f in frames:
        echoes.setdefault(_echo_key(f), []).append(f)
    keys = sorted(echoes, key=lambda k: (k[0] != "te", k[1]))
    if echo_times_ms is not None:
        te_user = np.asarray(echo_times_ms, dtype=float).reshape(-1)
        if te_user.size != len(keys):
            raise InputError(
                f"echo_times_ms: {te_user.size} values given but {source} holds {len(keys)} echoes"
            )
        te_ms = te_user
    else:
        if any(k[0] != "te" for k in keys):
            raise InputError(f"{_series_label(frames)}: EchoTime is missing; pass echo_times_ms= (command line: --echo-times-ms)")
        te_ms = np.array([k[1] for k in keys], dtype=float)
    order = np.argsort(te_ms, kind="stable")
    if np.any(np.diff(te_ms[order]) <= 0):
        raise InputError(f"echo_times_ms: echo times must be distinct, got {te_ms.tolist()}")
    keys = [keys[i] for i in order]
    te_ms = te_ms[order]
    if len(keys) < 2:
        raise InputError(f"{source}: only one echo time ({te_ms.tolist()} ms); need a multi-echo dataset")
    return echoes, keys, te_ms


def sorted_slices(echoes: dict, keys: list, te_ms: np.ndarray) -> tuple[Frame, list[list[Frame]]]:
    """Each echo's frames sorted along the slice normal, checked against the first echo's.

    Returns ``(ref, sorted_echoes)``: the reference frame (first frame of the first echo)
    and one list of frames per echo, in slice order. Raises on a geometry or frame of
    reference that differs, duplicated, missing or irregular slices, or slices that do
    not line up between echoes.
    """
    ref = echoes[keys[0]][0]
    normal = ref.normal
    sorted_echoes: list[list[Frame]] = []
    ref_pos = None
    for k, te in zip(keys, te_ms):
        fs = echoes[k]
        label = f"{_series_label(fs)} echo {te:g} ms"
        for f in fs:
            d = geometry_difference(ref, f)
            if d:
                raise InputError(f"{f.where}: geometry differs from {ref.where}: {d}")
            if ref.for_uid and f.for_uid and f.for_uid != ref.for_uid:
                raise InputError(
                    f"{f.where}: frame of reference {f.for_uid} differs from {ref.for_uid} ({ref.where})"
                )
        pos = np.array([float(np.dot(f.position, normal)) for f in fs])
        idx = np.argsort(pos, kind="stable")
        fs = [fs[i] for i in idx]
        pos = pos[idx]
        dup = np.where(np.diff(pos) <= MM_ATOL)[0]
        if dup.size:
            i = int(dup[0])
            raise InputError(
                f"{label}: duplicated slice at {pos[i]:.2f} mm ({fs[i].where} and {fs[i + 1].where})"
            )
        if ref_pos is None:
            ref_pos = pos
            _uniform_step(pos, label)
        elif pos.shape != ref_pos.shape:
            raise InputError(
                f"{label}: {pos.size} slices but the first echo ({ref_pos.size} slices) "
                f"has slices at {np.round(ref_pos, 2).tolist()} mm: missing or extra slices"
            )
        elif not np.allclose(pos, ref_pos, rtol=MM_RTOL, atol=max(MM_ATOL, 0.05)):
            raise InputError(
                f"{label}: slice positions {np.round(pos, 2).tolist()} mm differ from the first "
                f"echo's {np.round(ref_pos, 2).tolist()} mm"
            )
        else:  # same slices along the normal: the in-plane origin must agree too
            shift = max(float(np.linalg.norm(f.position - g.position)) for f, g in zip(fs, sorted_echoes[0]))
            if shift > max(MM_ATOL, 0.05):
                raise InputError(f"{label}: in-plane position (field-of-view offset) differs by "
                                 f"{shift:.2f} mm from the first echo's")
        sorted_echoes.append(fs)
    return ref, sorted_echoes


def philips_floating(sorted_echoes: list[list[Frame]]) -> bool:
    """Whether every echo is converted to the Philips floating value FP (see below)."""
    # Philips: when the private scale slope differs between echoes, the display values
    # (PV*RS+RI) are not comparable; convert every echo to the floating value FP.
    ss = [f.params.get("philips_scale_slope") for fs in sorted_echoes for f in fs]
    use_fp = False
    if any(v is not None for v in ss):
        per_echo = [
            {(f.params.get("philips_scale_slope"), f.rescale_slope) for f in fs} for fs in sorted_echoes
        ]
        flat = set().union(*per_echo)
        if len(flat) > 1 and all(v is not None and v != 0 for v in ss) and all(f.rescale_slope != 0 for fs in sorted_echoes for f in fs):
            use_fp = True
    return use_fp
