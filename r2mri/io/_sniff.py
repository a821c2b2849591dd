"""Tell a damaged DICOM file from a file that is simply not DICOM.

pydicom refuses a file without the Part 10 header (128-byte preamble + ``DICM``) as
"not DICOM". Most such files in a study folder really are not images (Siemens
``VERSION``, notes, thumbnails) and are skipped. But a transfer cut short leaves a file
of a few bytes, or an empty one, with the name of a DICOM file: skipping it silently
would drop a whole echo series when it was that series' only file (issue 12, "never
analyse a silent subset"). :func:`damaged_dicom_reason` says when a refused file looks
like a damaged DICOM file, so that the loader refuses the folder instead of skipping it.
"""

from __future__ import annotations

import os

__all__ = ["damaged_dicom_reason"]

_PREAMBLE = 128
_PREFIX = b"DICM"
_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
# first group of a data set written without the Part 10 header: file meta (0002) or
# identifying (0008) group, little endian
_RAW_GROUPS = (b"\x02\x00", b"\x08\x00")


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def damaged_dicom_reason(path: str) -> str | None:
    """Why a file pydicom refused looks like a damaged DICOM file, or ``None``.

    Parameters
    ----------
    path : str
        A file that ``pydicom.dcmread`` refused with ``InvalidDicomError``.

    Returns
    -------
    str or None
        A short reason (``"empty file"``, ``"cut to 60 bytes inside the preamble"``), or ``None``
        for a file that is not DICOM at all (text, an unrelated binary, a hidden file).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "IM0001"); _ = open(p, "wb").write(bytes(60))
    >>> damaged_dicom_reason(p)
    'cut to 60 bytes inside the preamble'
    >>> p = os.path.join(d, "VERSION"); _ = open(p, "w").write("1\\n")
    >>> damaged_dicom_reason(p) is None
    True
    """
    name = os.path.basename(path)
    if name.startswith("."):  # .gitkeep, .DS_Store...
        return None
    with open(path, "rb") as fh:
        head = fh.read(_PREAMBLE + len(_PREFIX))
    size = len(head)
    if size == 0:
        return "empty file"
    if _is_text(head):
        return None
    if size <= _PREAMBLE and not any(head):
        return f"cut to {size} bytes inside the preamble"
    if size > _PREAMBLE:
        tail = head[_PREAMBLE:]
        if tail != _PREFIX and _PREFIX.startswith(tail):
            return f"cut to {os.path.getsize(path)} bytes inside the DICM prefix"
        if not any(head[:_PREAMBLE]):
            return "a zero preamble without the DICM prefix"
    if head[:2] in _RAW_GROUPS:
        return "a data set without the Part 10 file header: no preamble, no DICM prefix"
    if name.lower().endswith(_DICOM_SUFFIXES):
        return "a DICOM file name, but no DICM prefix"
    return None
