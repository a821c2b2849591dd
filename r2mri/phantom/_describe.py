"""Phantom descriptions: the text of an overridden spec, and a SeriesDescription that fits
the DICOM LO limit (64 characters, PS3.5 Table 6.2-1) without losing the parameters.

An overridden spec is described by the parameters it *has* first ("LIC 30 mg/g, SNR 20,
8 coils (override of ferriscan-1.5t-lic7)"): the shipped text would describe another
phantom, and a description cut at 64 characters must still carry the number that matters.
"""

from __future__ import annotations

from typing import Any

LO_MAX_CHARS = 64  # DICOM PS3.5 Table 6.2-1: Long String, at most 64 characters

_SHORT = {
    "lic_mg_per_g": lambda v: f"LIC {v:g} mg/g",
    "snr": lambda v: f"SNR {v:g}",
    "coils": lambda v: f"{v} coil" + ("" if v == 1 else "s"),
    "lic_log_sd": lambda v: f"log-SD {v:g}",
    "lic_cv": lambda v: f"CV {v:g}",
    "s0_log_sd": lambda v: f"S0 log-SD {v:g}",
    "focal": lambda v: f"{len(v)} focal" if v else "no focal",
    "field_strength_t": lambda v: f"{v:g} T",
    "pdff_percent": lambda v: f"PDFF {v:g} %",
    "b0_peak_hz": lambda v: f"B0 {v:g} Hz",
    "echo_times_ms": lambda v: "TE " + "/".join(f"{t:g}" for t in v) + " ms",
    "sequence": lambda v: str(v),
}


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (tuple, list)):
        return "/".join(_value(x) for x in v)
    return str(v)


def override_description(base_name: str, changed: dict[str, Any]) -> str:
    """Description of a spec whose ``changed`` fields override the spec ``base_name``.

    Examples
    --------
    >>> override_description("ferriscan-1.5t-lic7", {"lic_mg_per_g": 30.0, "snr": 20.0, "coils": 8})
    'LIC 30 mg/g, SNR 20, 8 coils (override of ferriscan-1.5t-lic7)'
    """
    first = [k for k in _SHORT if k in changed]  # what changes the number, first
    parts = [_SHORT[k](changed[k]) for k in first]
    parts += [f"{k}={_value(v)}" for k, v in changed.items() if k not in _SHORT]
    return ", ".join(parts) + f" (override of {base_name})"


def fit_long_string(text: str, suffix: str = "", limit: int = LO_MAX_CHARS) -> str:
    """``text`` + ``suffix`` in at most ``limit`` characters: ``text`` is cut at a word
    boundary (never inside a number), an unclosed bracket and trailing punctuation dropped.

    Examples
    --------
    >>> fit_long_string("FerriScan-like 1.5 T SE, heterogeneous liver (CV 0.3, gradient)", " TE 6 ms")
    'FerriScan-like 1.5 T SE, heterogeneous liver TE 6 ms'
    """
    text = " ".join(text.split())  # no double spaces
    room = limit - len(suffix)
    if len(text) <= room:
        return text + suffix
    cut = text[:room + 1]
    cut = cut[:cut.rfind(" ")] if " " in cut else text[:room]
    if cut.count("(") > cut.count(")"):
        cut = cut[:cut.rfind("(")]
    if cut.count("[") > cut.count("]"):
        cut = cut[:cut.rfind("[")]
    return cut.rstrip(" ,;:-") + suffix
