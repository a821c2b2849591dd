"""Failure notice: a small SR, in the received study, saying why no LIC was produced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._atomic import atomic_path
from .._version import __version__

__all__ = ["write_failure_notice", "derived_uid"]


def derived_uid(seed: str, role: str) -> str:
    """A UID derived from ``seed`` and ``role`` only (same inputs, same UID).

    Examples
    --------
    >>> derived_uid("1.2.3|0.1|abc", "notice") == derived_uid("1.2.3|0.1|abc", "notice")
    True
    >>> derived_uid("1.2.3|0.1|abc", "notice") != derived_uid("1.2.3|0.1|abc", "series")
    True
    """
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[seed, role]))


def write_failure_notice(source: Any, reason: str, folder: Path, uid_seed: str) -> Path:
    """Write ``folder/notice.dcm``: a Comprehensive SR in ``source``'s study whose one
    finding reads "r2mri produced no liver iron concentration: <reason>".

    ``source`` is one received instance (pydicom Dataset) of the study; its patient and
    study modules are copied by highdicom. The UIDs derive from ``uid_seed``, so the
    notice of a study re-analysed after a crash replaces the first one.
    """
    import highdicom as hd
    from pydicom.sr.coding import Code

    # LOINC 18748-4 "Diagnostic imaging report" (document title) and DCM 121071
    # "Finding" (PS3.16 Annex D): standard codes for a free-text imaging report.
    title = Code("18748-4", "LN", "Diagnostic imaging report")
    text = f"r2mri {__version__} produced no liver iron concentration: {reason}"[:1024]
    container = hd.sr.ContainerContentItem(name=title)
    container.ContentSequence = [
        hd.sr.TextContentItem(name=Code("121071", "DCM", "Finding"), value=text,
                              relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    ]
    sr = hd.sr.ComprehensiveSR(
        evidence=[source], content=container,
        series_instance_uid=derived_uid(uid_seed, "notice-series"), series_number=9999,
        sop_instance_uid=derived_uid(uid_seed, "notice-instance"), instance_number=1,
        manufacturer="r2mri", series_description="r2mri: no LIC (analysis failed)",
        is_complete=True,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "notice.dcm"
    with atomic_path(path) as tmp:
        sr.save_as(tmp, enforce_file_format=True)
    return path
