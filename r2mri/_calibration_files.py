"""Reading calibration curves: the shipped TOML files by name, or a site's file by path.

Part of :mod:`r2mri.calibration`, which re-exports :func:`get_calibration`,
:func:`list_calibrations` and :data:`DEFAULT_CALIBRATION` (import them from there).
Each file is checked against the schema of ``calibration/README.md``; a file that
breaks it raises :class:`r2mri.CalibrationError` naming the file and the key.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Mapping

from ._calibration_curve import _ECHO_TRAINS, _KINDS, _QUANTITIES, _SEQUENCES, Calibration
from ._calibration_requirements import parse_built_on
from ._resources import calibration_dir
from ._toml import read_toml
from .errors import CalibrationError

DEFAULT_CALIBRATION = "st-pierre-2005"


def _req(doc: Mapping[str, Any], key: str, types: tuple, where: str) -> Any:
    if key not in doc:
        raise CalibrationError(f"{where}: missing key {key!r}")
    value = doc[key]
    if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
        raise CalibrationError(f"{where}: key {key!r} has the wrong type ({type(value).__name__})")
    return value


def _from_document(doc: Mapping[str, Any], source: str) -> Calibration:
    """The :class:`Calibration` of one parsed TOML document, checked against the schema.

    The checks run in the order of ``calibration/README.md``: identity (name, quantity,
    field, sequence, echo train), formula, field scaling, LIC range, citation and flags,
    then ``[built_on]``; the first one that fails raises, naming ``source``.
    """
    where = f"calibration file {source}"
    name, quantity, field_t, sequence, echo_train = _identity(doc, where)
    kind, coefs = _formula(doc, quantity, where)
    scaling, divisor, offset = _field_scaling(doc, where)
    lo, hi = _lic_range(doc, where)
    citation, verified, derived = _citation_and_flags(doc, where)
    return Calibration(
        name=name,
        title=str(doc.get("title", name)),
        quantity=quantity,
        field_strength_t=field_t,
        sequence=sequence,
        echo_train=echo_train,
        model_family=str(doc.get("model_family", "")),
        kind=kind,
        coefficients=coefs,
        rate_divisor=divisor,
        lic_min_mg_per_g=lo,
        lic_max_mg_per_g=hi,
        citation=dict(citation),
        field_scaling=dict(scaling) if scaling else None,
        verified=verified,
        derived=derived,
        source=source,
        built_on=parse_built_on(doc, where),
        rate_offset_per_s=offset,
    )


def _identity(doc: Mapping[str, Any], where: str) -> tuple[str, str, float, str, str]:
    """``(name, quantity, field_strength_t, sequence, echo_train)`` of a curve file, checked."""
    version = doc.get("schema_version", 1)
    if version not in (1, 2):  # 2 adds [built_on] (r2mri._calibration_requirements)
        raise CalibrationError(f"{where}: schema_version {version!r} not supported (expected 1 or 2)")
    name = _req(doc, "name", (str,), where)
    quantity = _req(doc, "quantity", (str,), where)
    if quantity not in _QUANTITIES:
        raise CalibrationError(f"{where}: quantity {quantity!r} not one of {_QUANTITIES}")
    field_t = float(_req(doc, "field_strength_t", (int, float), where))
    if not field_t > 0:
        raise CalibrationError(f"{where}: field_strength_t must be > 0, got {field_t}")
    sequence = _req(doc, "sequence", (str,), where)
    if sequence not in _SEQUENCES:
        raise CalibrationError(f"{where}: sequence {sequence!r} not one of {_SEQUENCES}")
    if (quantity == "R2") != (sequence == "SE"):
        raise CalibrationError(
            f"{where}: quantity {quantity!r} does not match sequence {sequence!r} "
            "(R2 comes from spin echo, R2*/T2* from gradient echo)"
        )
    echo_train = doc.get("echo_train", "single" if sequence == "SE" else "any")
    if echo_train not in _ECHO_TRAINS:
        raise CalibrationError(f"{where}: echo_train {echo_train!r} not one of {_ECHO_TRAINS}")
    return name, quantity, field_t, sequence, echo_train


def _formula(doc: Mapping[str, Any], quantity: str, where: str) -> tuple[str, dict[str, float]]:
    """``(kind, coefficients)`` of the ``[formula]`` table, checked to rise with the rate."""
    formula = _req(doc, "formula", (dict,), where)
    kind = _req(formula, "kind", (str,), where + " [formula]")
    if kind not in _KINDS:
        raise CalibrationError(f"{where}: formula kind {kind!r} not one of {tuple(_KINDS)}")
    coefs = {}
    for key in _KINDS[kind]:
        v = float(_req(formula, key, (int, float), where + " [formula]"))
        if not math.isfinite(v):
            raise CalibrationError(f"{where}: formula.{key} is not finite")
        coefs[key] = v
    # Every curve must increase with the rate (more iron, faster decay).
    if kind == "st-pierre" and not (coefs["a"] > 0 and coefs["b"] > 0 and coefs["c"] > 0 and coefs["p"] > 0):
        raise CalibrationError(f"{where}: st-pierre formula needs a, b, c, p > 0")
    if kind == "linear" and not coefs["slope"] > 0:
        raise CalibrationError(f"{where}: linear formula needs slope > 0 (LIC rising with the rate)")
    if kind == "power":
        if not coefs["coefficient"] > 0 or coefs["exponent"] == 0:
            raise CalibrationError(f"{where}: power formula needs coefficient > 0 and exponent != 0")
        rising = coefs["exponent"] < 0 if quantity == "T2*" else coefs["exponent"] > 0
        if not rising:
            raise CalibrationError(
                f"{where}: power formula must give LIC rising with the rate "
                f"(exponent {'< 0 for T2*' if quantity == 'T2*' else '> 0 for a rate'})"
            )
    return kind, coefs


def _field_scaling(doc: Mapping[str, Any], where: str) -> tuple[Any, float, float]:
    """``(field_scaling table or None, rate_divisor, rate_offset_per_s)`` of a derived curve."""
    scaling = doc.get("field_scaling")
    divisor, offset = 1.0, 0.0
    if scaling is not None:
        if not isinstance(scaling, dict):
            raise CalibrationError(f"{where}: [field_scaling] must be a table")
        divisor = float(_req(scaling, "rate_divisor", (int, float), where + " [field_scaling]"))
        if not divisor > 0:
            raise CalibrationError(f"{where}: field_scaling.rate_divisor must be > 0")
        offset = float(scaling.get("rate_offset_per_s", 0.0))
        if not math.isfinite(offset):
            raise CalibrationError(f"{where}: field_scaling.rate_offset_per_s must be finite")
    return scaling, divisor, offset


def _lic_range(doc: Mapping[str, Any], where: str) -> tuple[float | None, float | None]:
    """The calibrated LIC range ``(lic_min_mg_per_g, lic_max_mg_per_g)``, either end ``None``."""
    rng = doc.get("range", {}) or {}
    lo = rng.get("lic_min_mg_per_g")
    hi = rng.get("lic_max_mg_per_g")
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    if lo is not None and hi is not None and not lo < hi:
        raise CalibrationError(f"{where}: range lic_min_mg_per_g must be < lic_max_mg_per_g")
    return lo, hi


def _citation_and_flags(doc: Mapping[str, Any], where: str) -> tuple[dict, bool, bool]:
    """``(citation table, verified, derived)`` of a curve file."""
    citation = doc.get("citation", {}) or {}
    if not isinstance(citation, dict):
        raise CalibrationError(f"{where}: [citation] must be a table")
    verified = doc.get("verified", False)
    derived = doc.get("derived", False)
    if not isinstance(verified, bool) or not isinstance(derived, bool):
        raise CalibrationError(f"{where}: verified/derived must be true or false")
    return citation, verified, derived


def _load_file(path: Path) -> Calibration:
    doc = read_toml(path, what="calibration file", error=CalibrationError)
    return _from_document(doc, str(path))


@functools.lru_cache(maxsize=None)
def _shipped(name: str) -> Calibration:
    return _load_file(calibration_dir() / f"{name}.toml")


def list_calibrations() -> list[str]:
    """Names of the shipped calibration curves.

    Examples
    --------
    >>> "st-pierre-2005" in list_calibrations()
    True
    """
    return sorted(p.stem for p in calibration_dir().glob("*.toml"))


def get_calibration(name_or_path: "str | Path | Calibration | None" = None) -> Calibration:
    """A calibration curve by shipped name, by TOML file path, or passed through.

    Parameters
    ----------
    name_or_path : str, Path, Calibration or None
        A shipped name (see :func:`list_calibrations`), a path to a TOML file with the
        schema of ``calibration/README.md`` (``--calibration-file``), or a
        :class:`Calibration` (returned as is). ``None`` gives ``"st-pierre-2005"``.

    Returns
    -------
    Calibration

    Raises
    ------
    CalibrationError
        Unknown name, unreadable file or a file that breaks the schema.

    Examples
    --------
    >>> cal = get_calibration("st-pierre-2005")
    >>> cal.quantity, cal.field_strength_t, cal.lic_max_mg_per_g
    ('R2', 1.5, 42.7)
    """
    if name_or_path is None:
        name_or_path = DEFAULT_CALIBRATION
    if isinstance(name_or_path, Calibration):
        return name_or_path
    if isinstance(name_or_path, Path) or (
        isinstance(name_or_path, str) and (name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path)
    ):
        return _load_file(Path(name_or_path))
    if not isinstance(name_or_path, str):
        raise CalibrationError(
            f"calibration: expected a name, a path or a Calibration, got {type(name_or_path).__name__}"
        )
    names = list_calibrations()
    if name_or_path not in names:
        raise CalibrationError(
            f"calibration: unknown curve {name_or_path!r}; shipped curves are {', '.join(names)} "
            "(or pass a path to a .toml file)"
        )
    return _shipped(name_or_path)
