"""What the reports say about the calibration curve, in words a reader understands.

One place decides whether a curve is a site calibration (a TOML file given by the user)
or one shipped with r2mri, and how its status reads: the page's headline box and QC
notes, and the SR's ``CALIB-STATUS`` text, all use these functions. The developer flags
(``verified``, ``derived``) and evidence tags stay in report.json.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["is_shipped", "origin_text", "status_text"]

#: Generic status of an unchecked curve whose file gives no ``plain_status``
#: (the wording of ``r2mri.calibration.Calibration.reader_status``).
_UNCHECKED = "formula not checked against the original paper"
_CHECKED = "formula checked against its cited source"


def is_shipped(cal: dict) -> bool:
    """True when report.json's ``calibration`` block is a curve shipped with r2mri.

    ``cal["shipped"]`` decides when present (report.json from r2mri 0.1 on); otherwise the
    curve's ``source`` file must lie in r2mri's calibration folder.

    Examples
    --------
    >>> is_shipped({"name": "my-site", "source": "/data/site/my-site.toml"})
    False
    >>> is_shipped({"shipped": True})
    True
    """
    if isinstance(cal.get("shipped"), bool):
        return cal["shipped"]
    source = cal.get("source")
    if not source:
        return False
    from .._resources import calibration_dir

    try:
        return Path(str(source)).resolve().parent == calibration_dir().resolve()
    except OSError:  # no calibration folder (broken install): not shipped
        return False


def origin_text(cal: dict) -> str:
    """Where the curve comes from, for the page: "site calibration, file NAME.toml" or "".

    A shipped curve says nothing (its title names the paper); a site curve says so and
    names its file (the base name only: folders may name people or places).

    Examples
    --------
    >>> origin_text({"name": "my-site", "source": "/data/site/my-site.toml", "shipped": False})
    'site calibration, file my-site.toml'
    >>> origin_text({"shipped": True})
    ''
    """
    if is_shipped(cal):
        return ""
    source = cal.get("source")
    return "site calibration" + (f", file {Path(str(source)).name}" if source else "")


def _reader_status(cal: dict) -> str:
    if cal.get("verified") and not cal.get("derived"):
        return _CHECKED
    plain = str((cal.get("citation") or {}).get("plain_status") or "").strip() \
        if isinstance(cal.get("citation"), dict) else ""
    if plain:
        return plain
    return "derived, not biopsy-validated" if cal.get("derived") else _UNCHECKED


def status_text(cal: dict) -> str:
    """One sentence on the curve's origin and how far it was checked (SR ``CALIB-STATUS``).

    Examples
    --------
    >>> status_text({"name": "st-pierre-2005", "shipped": True, "verified": False, "derived": False,
    ...              "citation": {"plain_status": "formula as widely quoted; the original paper "
    ...                                           "was not available to check it"}})
    'Published calibration shipped with r2mri: formula as widely quoted; the original paper was not available to check it'
    >>> status_text({"name": "my-site", "source": "my-site.toml", "shipped": False, "verified": True})
    'Site calibration my-site (file my-site.toml): formula checked against its cited source'
    """
    status = _reader_status(cal)
    if is_shipped(cal):
        origin = "Calibration" if cal.get("derived") else "Published calibration"  # the status says derived
        return f"{origin} shipped with r2mri: {status}"
    source = cal.get("source")
    where = f" (file {Path(str(source)).name})" if source else ""
    return f"Site calibration {cal.get('name') or ''}{where}: {status}".replace("calibration  (", "calibration (")
