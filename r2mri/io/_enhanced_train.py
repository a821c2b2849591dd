"""Enhanced MR: frames at several echo times that are separate single-echo acquisitions.

The loader reads a series holding n >= 2 echo times at one slice position as a multi-echo
(CPMG) train (:func:`r2mri.io._headers.echo_train`), because the classic MR
EchoTrainLength counts k-space lines *per image* and so says 1 on every echo of a CPMG
series. The Enhanced MR object defines it otherwise, in the MR Timing and Related
Parameters macro [DICOM PS3.3, C.8.13.5.2, Table C.8-89, read at
dicom.nema.org/medical/dicom/current/output/chtml/part03/sect_C.8.13.5.2.html, 2024c]:

- Echo Train Length (0018,0091): "Number of lines in k-space acquired per excitation of
  the same volume regardless of the type of echo or the number of frames derived from
  them". A CPMG train whose echoes fill n frames acquires n lines per excitation; a value
  of 1 says one line per excitation, so frames at different echo times come from
  different excitations: single-echo acquisitions (FerriScan's per-TE protocol).
- RF Echo Train Length (0018,9240): RF echoes per shot *per frame*; "Several frames may
  be derived from the same shot". 1 on every frame is what a CPMG frame carries too: it
  does **not** by itself tell single-echo acquisitions from a train (0 = gradient echo).
- Multiple Spin Echo (0018,9011), MR Pulse Sequence module [C.8.13.4, Table C.8-87]:
  "Multiple Spin Echo category of pulse sequence used to collect different lines in
  k-space for a single frame", i.e. YES = turbo/fast spin echo. NO does **not** say the
  frames are single-echo acquisitions (a CPMG with one echo per frame is NO as well).

So the rule: an Enhanced MR spin-echo dataset is a set of single-echo acquisitions when
every frame's Echo Train Length is 1, no frame's RF Echo Train Length is other than 1
and Multiple Spin Echo is not YES (either would contradict one line per excitation).
Without Echo Train Length the data's count stands (a CPMG train). No vendor Enhanced MR
multi-echo object was available to check how scanners fill (0018,0091): a writer that
copies the classic per-image meaning would make a CPMG train read as single-echo (and a
single-echo calibration be applied to it), so the reading is a *warning* finding,
``enhanced-single-echo-frames``, naming the attributes relied on.
"""

from __future__ import annotations

from typing import Any

__all__ = ["single_echo_frames", "apply"]

_TRAIN_CODES = ("echo-train-length-contradicts", "echo-train-length-from-data")


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def single_echo_frames(frames: list) -> dict[str, Any] | None:
    """The header values that make ``frames`` (Enhanced MR) single-echo acquisitions, or None.

    Examples
    --------
    >>> single_echo_frames([]) is None
    True
    """
    from ._dicom import find_attr

    if not frames or any(f.frame_index is None for f in frames):
        return None
    rf_seen, mse_seen = set(), set()
    for f in frames:
        if f.params.get("echo_train_length") != 1:
            return None
        rf = _int(find_attr(f.header, "RFEchoTrainLength", f.frame_index))
        mse = find_attr(f.header, "MultipleSpinEcho", f.frame_index)
        mse = str(mse).strip().upper() if mse is not None else None
        if (rf is not None and rf != 1) or mse == "YES":
            return None
        rf_seen.add(rf)
        mse_seen.add(mse)
    return {"echo_train_length": 1, "rf_echo_train_length": sorted(v for v in rf_seen if v is not None),
            "multiple_spin_echo": sorted(v for v in mse_seen if v is not None)}


def apply(sorted_echoes: list[list], rev: dict[str, Any]) -> dict[str, Any]:
    """Correct :func:`r2mri.io._headers.review`'s result for single-echo Enhanced MR frames.

    When the data rule made the dataset a spin-echo train (``SE-CPMG``) and
    :func:`single_echo_frames` holds, the dataset is single-echo spin echo (``SE``,
    echo train length 1): the train findings are replaced by the warning finding
    ``enhanced-single-echo-frames``. Otherwise ``rev`` is returned unchanged.
    """
    frames = [f for fs in sorted_echoes for f in fs]
    if rev.get("sequence") != "SE-CPMG":
        return rev
    why = single_echo_frames(frames)
    if why is None:
        return rev
    n = len(sorted_echoes)
    out = dict(rev)
    out["sequence"] = "SE"
    out["echo_train_length"] = 1
    findings = [f for f in rev.get("findings") or [] if f.get("code") not in _TRAIN_CODES]
    rf = why["rf_echo_train_length"]
    mse = why["multiple_spin_echo"]
    findings.append({
        "severity": "warning", "code": "enhanced-single-echo-frames",
        "message": (f"Enhanced MR: Echo Train Length (0018,0091) 1 on every frame (k-space lines per "
                    f"excitation, whatever the number of frames: DICOM PS3.3 C.8.13.5.2)"
                    f"{', RF Echo Train Length 1' if rf else ''}"
                    f"{', Multiple Spin Echo ' + '/'.join(mse) if mse else ''}: "
                    f"the {n} echo times are read as separate single-echo spin-echo acquisitions, not a CPMG "
                    f"train; if this object holds a multi-echo train whose writer put the classic per-image "
                    f"count in (0018,0091), single-echo calibrations do not apply: check the protocol"),
        "details": {**why, "n_echoes": n},
    })
    out["findings"] = findings
    return out
