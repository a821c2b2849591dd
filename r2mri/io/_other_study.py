"""Series of another patient or study in the input: named, never dropped silently.

A scanner or PACS folder can hold series of several patients or studies (an export of a
worklist, a wrong query). The loader builds one dataset from one study; every other
series used to be left aside without a word. This module

- refuses an automatic choice between the multi-echo datasets of two or more patients
  (different PatientID): the ranking of ``docs/loading.md`` knows nothing of patients,
  so the one line names each patient's best candidate and how to choose (``series=``);
- refuses a user's ``series=`` that mixes patients or studies;
- lists every series of another patient or study that is not in the dataset
  (``img.metadata["series_other_study"]``), which :func:`findings` turns into the
  warning ``series-other-study`` (report.json ``qc.protocol_findings``, terminal).

PatientID is compared only when both series record it (anonymised exports may blank
it); StudyInstanceUID is always compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError
from ._grouping import by_series, series_label

if TYPE_CHECKING:  # pragma: no cover
    from ._dicom import Frame
    from ._grouping import Candidate

__all__ = ["patient_id", "patient_label", "check_candidates", "check_chosen", "other_series", "findings"]


def patient_label(i: int) -> str:
    """A stand-in for the i-th patient found (0 -> "A"): messages, findings and the load
    command's output never carry a PatientID (they reach logs; tests/test_privacy.py).

    >>> patient_label(0), patient_label(1), patient_label(27)
    ('A', 'B', 'AB')
    """
    return (patient_label(i // 26 - 1) if i >= 26 else "") + chr(ord("A") + i % 26)


def patient_id(f: "Frame") -> str | None:
    """PatientID (0010,0020) of a frame's file, stripped; None when absent or empty."""
    try:
        v = f.header.get("PatientID")
    except Exception:  # noqa: BLE001 - an undecodable element counts as not recorded
        return None
    v = str(v).strip() if v is not None else ""
    return v or None


def _tail(uid: str | None) -> str:
    if not uid:
        return "?"
    return uid if len(uid) <= 12 else "..." + uid[-10:]


def _differs(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a != b


def _numbers_repeat(frames: list["Frame"]) -> bool:
    nums = [fs[0].series_number for fs in by_series(frames).values() if fs[0].series_number is not None]
    return len(nums) != len(set(nums))


def check_candidates(cands: list["Candidate"], frames: list["Frame"], source: str) -> None:
    """Refuse when the candidate datasets belong to two or more patients (known PatientIDs).

    ``cands`` best first (:func:`r2mri.io._grouping.candidates`); ``frames`` every
    magnitude frame (to tell whether series numbers repeat, so that the message offers
    SeriesInstanceUIDs, the only unambiguous ``series=`` items then).
    """
    best: dict[str, "Candidate"] = {}
    for c in cands:
        pid = patient_id(c.frames[0])
        if pid is not None and pid not in best:
            best[pid] = c
    if len(best) < 2:
        return
    repeat = _numbers_repeat(frames)  # then only the full UIDs choose: give them
    parts = []
    for i, (pid, c) in enumerate(best.items()):
        s = c.summary()
        nums = ",".join(str(n) for n in s["series_numbers"]) or "?"
        uids = ",".join(s["series_instance_uids"]) if repeat else ", ".join(_tail(u) for u in s["series_instance_uids"])
        parts.append(f"patient {patient_label(i)}: {s['kind']} series {nums} {s['series_descriptions']} "
                     f"({s['n_echoes']} echoes, study {_tail(c.frames[0].study_uid)}, UIDs {uids})")
    how = ("series= with the SeriesInstanceUIDs given here (series numbers repeat between the patients; "
           "command line --series UID,UID,...)" if repeat
           else "series= (command line --series N,N,...)")
    raise InputError(f"{source}: multi-echo series of {len(best)} patients, which r2mri will not choose "
                     f"between: {' | '.join(parts)}; choose one patient's series with {how}")


def check_chosen(uids: list[str], series: dict[str, list["Frame"]], source: str) -> None:
    """Refuse a ``series=`` choice whose series are of different patients or studies."""
    ref = series[uids[0]][0]
    for u in uids[1:]:
        f = series[u][0]
        if _differs(patient_id(ref), patient_id(f)):
            raise InputError(f"{source}: series {series_label(series[u])} and series "
                             f"{series_label(series[uids[0]])} have different PatientIDs: "
                             "choose the series of one patient")
        if _differs(ref.study_uid, f.study_uid):
            raise InputError(f"{source}: series {series_label(series[u])} is of study {_tail(f.study_uid)}, "
                             f"series {series_label(series[uids[0]])} of study {_tail(ref.study_uid)}: "
                             "choose the series of one study")


def other_series(dataset: list["Frame"], frames: list["Frame"], cplx: list["Frame"] | None = None) -> list[dict]:
    """Series of ``frames`` (and of the complex-component frames ``cplx``) of another
    patient or study than the dataset's first frame, and why (JSON-ready dicts)."""
    ref = dataset[0]
    ref_pid = patient_id(ref)
    inside = {f.series_uid for f in dataset}
    out = []
    for uid, fs in by_series(list(frames) + list(cplx or [])).items():
        if uid in inside:
            continue
        f = fs[0]
        reasons = []
        if _differs(ref_pid, patient_id(f)):
            reasons.append({"code": "other-patient",
                            "text": "other patient (its PatientID differs from the dataset's)"})
        if _differs(ref.study_uid, f.study_uid):
            reasons.append({"code": "other-study",
                            "text": f"other study (StudyInstanceUID {_tail(f.study_uid)}; the dataset's "
                                    f"{_tail(ref.study_uid)})"})
        if not reasons:
            continue
        tes = sorted({x.te_ms for x in fs if x.te_ms is not None})
        out.append({
            "series_instance_uid": uid,
            "series_number": f.series_number,
            "series_description": f.series_description,
            "study_instance_uid": f.study_uid,
            "echo_times_ms": tes,
            "n_images": len(fs),
            "label": series_label(fs),
            "reasons": reasons,
        })
    out.sort(key=lambda s: (s["series_number"] if s["series_number"] is not None else -1, s["series_instance_uid"]))
    return out


def findings(meta: dict) -> list:
    """The warning ``series-other-study`` from ``meta["series_other_study"]`` (or nothing).

    Examples
    --------
    >>> findings({"series_other_study": []})
    []
    """
    from .protocol import Finding

    items = [s for s in meta.get("series_other_study") or [] if isinstance(s, dict)]
    if not items:
        return []
    parts = [f"{s.get('label')}: {'; '.join(str(r.get('text')) for r in s.get('reasons') or [])}" for s in items]
    msg = (f"{len(items)} series of another patient or study in the input not used (the dataset is one "
           f"study of one patient): {' | '.join(parts)}")
    return [Finding("warning", "series-other-study", msg, {"series": items})]
