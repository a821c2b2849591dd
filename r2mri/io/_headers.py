"""Header fields that scanners fill inconsistently, checked against each other and the data.

The protocol checks trust a few DICOM attributes: the field strength, spin versus
gradient echo, the echo train length and the 2D/3D acquisition type. Each can be
missing, written in the wrong unit, or contradicted by another attribute or by the
images themselves. This module reconciles them, one rule per function, and returns
protocol findings as plain dicts (``severity``, ``code``, ``message``, ``details``) that
:func:`r2mri.io.protocol.check_protocol` turns into :class:`~r2mri.io.protocol.Finding`.
Each rule and the vendor behaviour behind it is listed in ``docs/loading.md``
("Headers the data can contradict").

Rules in short:

- field strength: MagneticFieldStrength (0018,0087) against ImagingFrequency
  (0018,0084) / TransmitterFrequency (0018,9098) divided by the proton gyromagnetic
  ratio;
- spin or gradient echo: ScanningSequence (0018,0020), EchoPulseSequence (0018,9008),
  PulseSequenceName (0018,9005), SequenceName (0018,0024, Siemens grammar), the Siemens
  CSA tSequenceFileName, GE (0019,xx9C) and Philips (2001,xx20) private names must
  agree, else no guess;
- echo train: several echo times at one slice position of one series make a
  multi-echo train, whatever EchoTrainLength (0018,0091) says;
- 2D/3D: MRAcquisitionType (0018,0023) against the Siemens SequenceName.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

#: Proton gyromagnetic ratio gamma_p / 2 pi, MHz/T: CODATA 2018 recommended value
#: 42.577 478 518(18) MHz T^-1 (Tiesinga et al., Rev Mod Phys 2021;93:025010,
#: doi:10.1103/RevModPhys.93.025010; NIST "gammapbar"). The shielded proton in water
#: (42.576 384 74 MHz/T) differs by 3e-5, far below the tolerances used here.
PROTON_GYROMAGNETIC_MHZ_PER_T = 42.577478518

#: Nominal field classes of clinical and research MR magnets, tesla. A scanner's
#: actual field may sit a few per cent below its class (a Siemens "3 T" Skyra runs at
#: 2.89 T: 123.225342 MHz in the MR-BIAS series), so a field from the frequency is
#: reported as its class when within :data:`FIELD_CLASS_RTOL`.
NOMINAL_FIELDS_T = (0.55, 1.0, 1.5, 3.0, 7.0)
#: Relative tolerance for "same field" (our choice: covers 2.89 vs 3 T, 3.7 %, and
#: still separates every pair of nominal classes above).
FIELD_CLASS_RTOL = 0.05
#: A MagneticFieldStrength above this cannot be tesla for a human MR scanner (the
#: strongest run at 11.7 T); such values are read as gauss (1 G = 1e-4 T, SI definition)
#: when the imaging frequency confirms it.
MAX_TESLA = 100.0
GAUSS_TO_TESLA = 1e-4

#: Private creators and elements of vendor sequence names (pydicom's private
#: dictionary: GEMS_ACQU_01 (0019,xx9C) "Pulse Sequence Name"; Philips Imaging DD 001
#: (2001,xx20) "Scanning Technique Description MR").
GE_ACQ_CREATOR, GE_PSD_ELEMENT = "GEMS_ACQU_01", (0x0019, 0x9C)
PHILIPS_IMAGING_CREATOR, PHILIPS_TECHNIQUE_ELEMENT = "Philips Imaging DD 001", (0x2001, 0x20)

#: Siemens CSA Series Header Info (0029,xx20), creator "SIEMENS CSA HEADER" (pydicom's private
#: dictionary); its ASCII protocol block holds ``tSequenceFileName = ""%SiemensSeq%\\se_mc""``
#: (the key dcm2niix reads as the pulse sequence; seen in nibabel's Siemens test file).
SIEMENS_CSA_CREATOR, SIEMENS_CSA_SERIES_ELEMENT = "SIEMENS CSA HEADER", (0x0029, 0x20)
_SEQUENCE_FILE = re.compile(rb'tSequenceFileName\s*=\s*""([^"\r\n]{1,128})""')

#: Substrings of free-text sequence names that mean a gradient echo (GE fgre/spgr/
#: fiesta, Philips FFE/T1FFE, Siemens FLASH/FISP, "MEGRE"); checked before spin tokens.
_GRADIENT_PARTS = ("GRE", "FFE", "SPGR", "FLASH", "FISP", "FIESTA", "SSFP", "GRADIENT")
#: Whole tokens of free-text names that mean a spin echo (GE fse/fse-xl, Philips SE/TSE,
#: "MESE", "CPMG", Siemens tSequenceFileName "se_mc").
_SPIN_TOKENS = {"SE", "TSE", "FSE", "FSEXL", "MESE", "MSE", "SSE", "CPMG", "SPIN"}
#: Siemens SequenceName grammar: optional '*'/'#', a lower-case family, '2d'/'3d', digits
#: (e.g. "*se2d1", "*se2d32" in the MR-BIAS se_mc series, "*tse2d1_16", "*fl3d1r").
_SIEMENS_NAME = re.compile(r"^[*#]?([a-z]+)([23])d\d")
_SIEMENS_FAMILIES = {"se": "SE", "tse": "SE", "epse": "SE", "fl": "GRE", "tfl": "GRE", "fi": "GRE",
                     "epfid": "GRE", "gre": "GRE"}

#: Every finding code this module emits (documented in docs/loading.md; a test checks).
CODES = (
    "field-strength-from-frequency", "field-strength-in-gauss", "field-strength-contradicts",
    "field-strength-implausible", "sequence-type-contradicts", "echo-train-length-contradicts",
    "echo-train-length-from-data", "acquisition-type-contradicts", "acquisition-3d",
)


# ----------------------------------------------------------------------------- field
def field_class_t(field_t: float) -> float:
    """Nominal field class of ``field_t`` (within 5 %), else ``field_t`` to 0.01 T.

    Examples
    --------
    >>> field_class_t(123.225342 / PROTON_GYROMAGNETIC_MHZ_PER_T)  # Siemens Skyra
    3.0
    >>> field_class_t(2.0)
    2.0
    """
    for nominal in NOMINAL_FIELDS_T:
        if abs(field_t - nominal) <= FIELD_CLASS_RTOL * nominal:
            return nominal
    return round(float(field_t), 2)


def _same_field(a_t: float, b_t: float) -> bool:
    return abs(a_t - b_t) <= FIELD_CLASS_RTOL * max(a_t, b_t)


def reconcile_field(header_t: float | None, frequency_mhz: float | None,
                    nucleus: str | None = None) -> tuple[float | None, dict | None]:
    """Field strength (tesla) from MagneticFieldStrength and the imaging frequency.

    Parameters
    ----------
    header_t : float or None
        MagneticFieldStrength as written (DICOM says tesla).
    frequency_mhz : float or None
        ImagingFrequency (classic) or TransmitterFrequency (Enhanced MR).
    nucleus : str, optional
        ImagedNucleus / ResonantNucleus; the frequency is used only for ``1H`` (or
        when not recorded).

    Returns
    -------
    (field_t, finding)
        ``finding`` is ``None`` when the header stands, else a finding dict.

    Examples
    --------
    >>> reconcile_field(3.0, 123.225342)  # Siemens "3 T" runs at 2.89 T: header stands
    (3.0, None)
    >>> reconcile_field(None, 63.86)[0]
    1.5
    >>> t, f = reconcile_field(15000.0, 63.86); t, f["code"]
    (1.5, 'field-strength-in-gauss')
    """
    h = header_t if header_t is not None and header_t > 0 else None
    proton = nucleus is None or str(nucleus).strip().upper() in ("", "1H", "H1")
    b_f = frequency_mhz / PROTON_GYROMAGNETIC_MHZ_PER_T if proton and frequency_mhz and frequency_mhz > 0 else None
    det = {"magnetic_field_strength": header_t, "imaging_frequency_mhz": frequency_mhz,
           "field_from_frequency_t": None if b_f is None else round(b_f, 4)}
    if h is None:
        if b_f is None:
            return None, None
        b = field_class_t(b_f)
        return b, _finding("info", "field-strength-from-frequency",
                           f"MagneticFieldStrength not recorded; {b:g} T from the imaging frequency "
                           f"{frequency_mhz:g} MHz", det)
    if b_f is None:
        if h > MAX_TESLA:
            return None, _finding("error", "field-strength-implausible",
                                  f"MagneticFieldStrength {h:g} is not a field in tesla (gauss?) and no "
                                  "imaging frequency confirms it; field strength unknown", det)
        return float(h), None
    if _same_field(h, b_f):
        return float(h), None
    if h > MAX_TESLA and _same_field(h * GAUSS_TO_TESLA, b_f):
        b = field_class_t(h * GAUSS_TO_TESLA)
        return b, _finding("warning", "field-strength-in-gauss",
                           f"MagneticFieldStrength {h:g} is in gauss: {b:g} T, as the imaging frequency "
                           f"{frequency_mhz:g} MHz confirms", det)
    b = field_class_t(b_f)
    return b, _finding("error", "field-strength-contradicts",
                       f"MagneticFieldStrength {h:g} T contradicts the imaging frequency {frequency_mhz:g} MHz "
                       f"({b_f:.3g} T); {b:g} T from the frequency is used", det)


# ----------------------------------------------------------------------------- sequence type
def name_kind(name: Any) -> str | None:
    r""""SE", "GRE", "SE+GRE" (hybrid, e.g. GRASE) or None for a free-text sequence name.

    Examples
    --------
    >>> [name_kind(n) for n in ("fse-xl", "T1FFE", "GRASE", "MESE", "epi", "%SiemensSeq%\\se_mc")]
    ['SE', 'GRE', 'SE+GRE', 'SE', None, 'SE']
    """
    if name is None:
        return None
    s = str(name).upper()
    if "GRASE" in s:
        return "SE+GRE"
    if any(p in s for p in _GRADIENT_PARTS):
        return "GRE"
    tokens = {t for t in re.split(r"[^A-Z0-9]+", s.replace("-", "")) if t}
    tokens |= set(re.split(r"[^A-Z]+", s))
    if tokens & _SPIN_TOKENS:
        return "SE"
    return None


def siemens_name(name: Any) -> tuple[str | None, str | None]:
    """(kind, "2D"/"3D") from a Siemens-style SequenceName (0018,0024), else (None, None).

    Examples
    --------
    >>> siemens_name("*se2d32"), siemens_name("*fl3d1r"), siemens_name("T2 map")
    (('SE', '2D'), ('GRE', '3D'), (None, None))
    """
    m = _SIEMENS_NAME.match(str(name).strip()) if name is not None else None
    if not m:
        return None, None
    return _SIEMENS_FAMILIES.get(m.group(1)), f"{m.group(2)}D"


def siemens_file_kind(name: Any) -> str | None:
    r"""Kind named by a Siemens tSequenceFileName ("%SiemensSeq%\\se_mc" -> "SE").

    Examples
    --------
    >>> [siemens_file_kind(n) for n in ("%SiemensSeq%\\se_mc", "%SiemensSeq%\\fl3d_vibe", "%SiemensSeq%\\ep2d_diff")]
    ['SE', 'GRE', None]
    """
    if name is None:
        return None
    base = re.split(r"[\\/]", str(name))[-1].lower()
    m = re.match(r"[a-z]+", base)
    return _SIEMENS_FAMILIES.get(m.group(0)) if m else None


def scanning_sequence_kind(scanning_sequence: Any) -> str | None:
    """Kind named by ScanningSequence (0018,0020) values (SE, GR; IR/EP/RM say neither)."""
    if scanning_sequence is None:
        return None
    if isinstance(scanning_sequence, str):
        vals = {v.strip().upper() for v in scanning_sequence.split("\\")}
    else:
        try:
            vals = {str(v).strip().upper() for v in scanning_sequence}
        except TypeError:
            vals = {str(scanning_sequence).strip().upper()}
    kinds = [k for k, code in (("SE", "SE"), ("GRE", "GR")) if code in vals]
    return "+".join(kinds) if kinds else None


def echo_pulse_kind(value: Any) -> str | None:
    """Kind named by EchoPulseSequence (0018,9008): SPIN, GRADIENT or BOTH."""
    v = str(value).strip().upper() if value is not None else ""
    return {"SPIN": "SE", "GRADIENT": "GRE", "BOTH": "SE+GRE"}.get(v)


def resolve_sequence(votes: dict[str, str]) -> tuple[str | None, bool]:
    """(sequence, contradicted) from the kinds named by each header field.

    ``"SE"`` or ``"GRE"`` when every field that names one agrees; ``None`` and
    ``contradicted=True`` when spin and gradient echo are both named (no guess).

    Examples
    --------
    >>> resolve_sequence({"ScanningSequence": "SE", "SequenceName": "SE"})
    ('SE', False)
    >>> resolve_sequence({"ScanningSequence": "GRE", "SequenceName": "SE"})
    (None, True)
    """
    kinds: set[str] = set()
    for k in votes.values():
        if k:
            kinds.update(k.split("+"))
    if len(kinds) > 1:
        return None, True
    return (kinds.pop() if kinds else None), False


def sequence_findings(votes: dict[str, str], names: dict[str, Any]) -> dict | None:
    """The ``sequence-type-contradicts`` finding for one series, or None."""
    _, contradicted = resolve_sequence(votes)
    if not contradicted:
        return None
    said = "; ".join(f"{src} {names.get(src)!r} says {_KIND_WORDS[k]}" for src, k in votes.items() if k)
    return _finding("error", "sequence-type-contradicts",
                    f"spin or gradient echo cannot be told from the header ({said}); "
                    "the sequence is left unknown", {"votes": dict(votes), "values": {k: str(v) for k, v in names.items()}})


_KIND_WORDS = {"SE": "spin echo", "GRE": "gradient echo", "SE+GRE": "spin and gradient echo"}


def _private(ds, creator: str, group_element: tuple[int, int]) -> Any:
    """Value of a private element by creator (DICOM PS3.5 7.8.1: the creator at
    (gggg,00bb) reserves (gggg,bbxx)); a plain key scan, as pydicom's ``private_block``
    slices the whole dataset on every miss (1 ms a call on a small header)."""
    group, element = group_element
    keys = ds.keys()
    v = None
    for block in range(0x10, 0x100):
        tag = (group << 16) | block
        if tag in keys and str(ds[tag].value).strip() == creator:
            elem = ds.get((group << 16) | (block << 8) | element)
            v = None if elem is None else elem.value
            break
    if isinstance(v, bytes) and group != 0x0029:  # CSA headers stay binary
        v = v.decode("latin-1", "replace").strip("\x00 ")
    return v if v not in (None, "", b"") else None


def _siemens_sequence_file(ds) -> str | None:
    raw = _private(ds, SIEMENS_CSA_CREATOR, SIEMENS_CSA_SERIES_ELEMENT)
    if isinstance(raw, str):
        raw = raw.encode("latin-1", "replace")
    if not isinstance(raw, (bytes, bytearray)):
        return None
    m = _SEQUENCE_FILE.search(raw)
    return m.group(1).decode("latin-1").strip() if m else None


def header_params(ds, fi: int | None, find) -> dict[str, Any]:
    """Header-derived parameters of one frame (``find(ds, keyword, fi)`` reads a keyword
    at top level or in the functional groups)."""
    def num(v):
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        return x if np.isfinite(x) else None

    header_t = num(find(ds, "MagneticFieldStrength", fi))
    freq = num(find(ds, "ImagingFrequency", fi))
    if freq is None:
        freq = num(find(ds, "TransmitterFrequency", fi))
    nucleus = find(ds, "ImagedNucleus", fi) or find(ds, "ResonantNucleus", fi)
    field_t, _ = reconcile_field(header_t, freq, nucleus)
    names = {
        "ScanningSequence": find(ds, "ScanningSequence", fi),
        "EchoPulseSequence": find(ds, "EchoPulseSequence", fi),
        "PulseSequenceName": find(ds, "PulseSequenceName", fi),
        "SequenceName": find(ds, "SequenceName", fi),
        "GE (0019,xx9C)": _private(ds, GE_ACQ_CREATOR, GE_PSD_ELEMENT),
        "Philips (2001,xx20)": _private(ds, PHILIPS_IMAGING_CREATOR, PHILIPS_TECHNIQUE_ELEMENT),
        "Siemens tSequenceFileName": _siemens_sequence_file(ds),
    }
    sk, dim = siemens_name(names["SequenceName"])
    votes = {
        "ScanningSequence": scanning_sequence_kind(names["ScanningSequence"]),
        "EchoPulseSequence": echo_pulse_kind(names["EchoPulseSequence"]),
        "PulseSequenceName": name_kind(names["PulseSequenceName"]),
        "SequenceName": sk,
        "GE (0019,xx9C)": name_kind(names["GE (0019,xx9C)"]),
        "Philips (2001,xx20)": name_kind(names["Philips (2001,xx20)"]),
        "Siemens tSequenceFileName": siemens_file_kind(names["Siemens tSequenceFileName"]),
    }
    votes = {k: v for k, v in votes.items() if v}
    seq, _ = resolve_sequence(votes)
    mr_type = find(ds, "MRAcquisitionType", fi)
    return {
        "field_strength_t": field_t,
        "field_strength_header": header_t,
        "imaging_frequency_mhz": freq,
        "imaged_nucleus": str(nucleus) if nucleus else None,
        "sequence": seq,
        "sequence_votes": votes,
        "sequence_names": {k: _text(v) for k, v in names.items() if v is not None and votes.get(k)},
        "mr_acquisition_type": str(mr_type).strip().upper() if mr_type else None,
        "sequence_name_dim": dim,
    }


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    try:
        return "\\".join(str(x) for x in v)
    except TypeError:
        return str(v)


# ----------------------------------------------------------------------------- acquisition type
def acquisition_findings(mr_type: str | None, name_dim: str | None) -> dict | None:
    """2D/3D: MRAcquisitionType against the Siemens SequenceName, then 3D itself."""
    t = str(mr_type).strip().upper() if mr_type else None
    if t and name_dim and t != name_dim:
        return _finding("warning", "acquisition-type-contradicts",
                        f"MRAcquisitionType {t} but the sequence name says {name_dim}; slice profile and "
                        "echo behaviour depend on which is true", {"mr_acquisition_type": t, "sequence_name_dim": name_dim})
    if (t or name_dim) == "3D":
        return _finding("warning", "acquisition-3d",
                        "3D acquisition: the single-echo spin-echo calibrations were built on 2D multi-slice "
                        "spin echo", {"mr_acquisition_type": t, "sequence_name_dim": name_dim})
    return None


# ----------------------------------------------------------------------------- echo train
def echoes_per_position(frames: list) -> dict[str, int]:
    """{series uid: most distinct echo times at one slice position} over ``frames``."""
    seen: dict[str, dict[float, set]] = {}
    for f in frames:
        pos = round(float(np.dot(f.position, f.normal)), 2)
        key = f.te_ms if f.te_ms is not None else ("echo", f.echo_number)
        seen.setdefault(f.series_uid, {}).setdefault(pos, set()).add(key)
    return {uid: max(len(v) for v in by_pos.values()) for uid, by_pos in seen.items()}


def echo_train(header_etl: int | None, n_per_position: int) -> tuple[int | None, dict | None]:
    """Echo train length from the header and the data of one series.

    A series holding ``n_per_position >= 2`` echoes at each slice position is a
    multi-echo train of at least that length, whatever EchoTrainLength says.

    Examples
    --------
    >>> echo_train(1, 10)[0], echo_train(1, 10)[1]["code"]
    (10, 'echo-train-length-contradicts')
    >>> echo_train(32, 32), echo_train(1, 1)
    ((32, None), (1, None))
    """
    if n_per_position < 2 or (header_etl is not None and header_etl >= n_per_position):
        return header_etl, None
    det = {"echo_train_length_header": header_etl, "echoes_per_slice_position": n_per_position}
    if header_etl is None:
        return n_per_position, _finding("info", "echo-train-length-from-data",
                                        f"EchoTrainLength not recorded; {n_per_position} echoes at each slice "
                                        "position of one series make a multi-echo train", det)
    return n_per_position, _finding("warning", "echo-train-length-contradicts",
                                    f"EchoTrainLength {header_etl} but one series holds {n_per_position} echoes at "
                                    "each slice position: a multi-echo train of that length", det)


# ----------------------------------------------------------------------------- whole dataset
def review(sorted_echoes: list[list]) -> dict[str, Any]:
    """Reconcile the headers of an assembled dataset with its frames.

    Parameters
    ----------
    sorted_echoes : list of list of Frame
        Per echo, the frames in slice order (as :func:`r2mri.io._dicom.assemble` builds).

    Returns
    -------
    dict
        ``sequence`` ("SE", "SE-CPMG", "GRE" or None), ``echo_train_length``,
        ``field_strength_t`` and ``findings`` (finding dicts, one per code, naming
        the series involved).
    """
    frames = [f for fs in sorted_echoes for f in fs]
    firsts: dict[str, Any] = {}
    for f in frames:
        firsts.setdefault(f.series_uid, f)
    per_pos = echoes_per_position(frames)
    raw: list[tuple[str, str, dict]] = []
    etls = []
    for uid, f in firsts.items():
        p = f.params
        label = _label(f)
        _, ff = reconcile_field(p.get("field_strength_header"), p.get("imaging_frequency_mhz"), p.get("imaged_nucleus"))
        sf = sequence_findings(p.get("sequence_votes") or {}, p.get("sequence_names") or {})
        af = acquisition_findings(p.get("mr_acquisition_type"), p.get("sequence_name_dim"))
        etl, ef = echo_train(p.get("echo_train_length"), per_pos.get(uid, 1))
        etls.append(etl)
        raw += [(label, uid, x) for x in (ff, sf, af, ef) if x is not None]
    ref = sorted_echoes[0][0].params
    seq = ref.get("sequence")
    known = [e for e in etls if e is not None]
    etl = max(known) if known else None  # the longest train of any series decides
    in_one = max(per_pos.values(), default=1) >= 2
    # a spin-echo train: EchoTrainLength > 1, or several echoes at a slice position in one series
    if seq == "SE" and ((etl is not None and etl > 1) or in_one):
        seq = "SE-CPMG"
    return {"sequence": seq, "echo_train_length": etl, "field_strength_t": ref.get("field_strength_t"),
            "findings": _merge(raw)}


def sidecar_field(metas: list[dict], labels: list[str]) -> tuple[list[float | None], list[dict]]:
    """Field strength per JSON sidecar (dcm2niix copies MagneticFieldStrength and
    ImagingFrequency from the DICOM header, lies included) and the merged findings."""
    fields, raw = [], []
    for m, label in zip(metas, labels):
        def num(key):
            try:
                v = float(m.get(key))
            except (TypeError, ValueError):
                return None
            return v if np.isfinite(v) else None
        b, f = reconcile_field(num("MagneticFieldStrength"), num("ImagingFrequency"), m.get("ImagedNucleus"))
        fields.append(b)
        if f is not None:
            raw.append((label, label, f))
    return fields, _merge(raw)


def _label(f) -> str:
    """"series #5 'T2 MSE'" (the UID only when the series has no number)."""
    ident = f"#{f.series_number}" if f.series_number is not None else f.series_uid
    desc = f" '{f.series_description}'" if f.series_description else ""
    return f"series {ident}{desc}"


def _finding(severity: str, code: str, message: str, details: dict) -> dict:
    return {"severity": severity, "code": code, "message": message, "details": details}


def _merge(raw: list[tuple[str, str, dict]]) -> list[dict]:
    """One finding per code from (label, key, finding) triples: the first series' message,
    the others counted, details per series (by SeriesInstanceUID, or file for NIfTI)."""
    out: dict[str, dict] = {}
    for label, key, f in raw:
        g = out.get(f["code"])
        if g is None:
            g = out[f["code"]] = {**f, "details": {"per_series": {}}, "_labels": []}
        g["_labels"].append(label)
        g["details"]["per_series"][key] = f["details"]
    merged = []
    for g in out.values():
        labels = g.pop("_labels")
        extra = f" (and {len(labels) - 1} more series)" if len(labels) > 1 else ""
        g["message"] = f"{labels[0]}: {g['message']}{extra}"
        merged.append(g)
    return merged
