"""Storage SCU of the node (pynetdicom): send a job's result objects to a destination.

One association per destination and attempt, proposing one presentation context per
SOP class of the files (Parametric Map Storage included, which pynetdicom's default
list of requested contexts lacks), each with the file's own transfer syntax and the
two uncompressed little-endian ones. What the destination acknowledged or refused is
returned per SOP Instance UID; a refusal (no accepted context for the SOP class, or a
failure status) concerns that object only, the others are still sent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterable

from .config import Destination

__all__ = ["SendOutcome", "send_files", "echo"]

#: C-STORE statuses after which the object is kept by the peer (success and warnings,
#: PS3.4 Annex B.2.3: 0xB000 coercion, 0xB007 data set does not match, 0xB006 elements discarded).
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}


@dataclasses.dataclass
class SendOutcome:
    """Result of one attempt to one destination."""

    stored: list[str] = dataclasses.field(default_factory=list)  # SOP Instance UIDs
    refused: dict[str, str] = dataclasses.field(default_factory=dict)  # uid -> why
    error: str | None = None  # association-level problem: try again later

    @property
    def complete(self) -> bool:
        return self.error is None


def _read_header(path: Path):
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)


def send_files(dest: Destination, files: Iterable[str | Path], *, calling_aet: str,
               timeout_s: float = 30.0, ssl_context=None,
               on_result: Callable[[str, str], None] | None = None) -> SendOutcome:
    """C-STORE ``files`` to ``dest`` over one association.

    Returns a :class:`SendOutcome`; a connection or association failure sets
    ``error`` (nothing is raised). ``on_result(sop_instance_uid, status)`` is called
    as soon as each object is stored (``"stored"``) or refused (``"refused: why"``),
    so a caller can record it before the next one goes out.
    """
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE, build_context

    out = SendOutcome()
    headers = []
    for f in files:
        hdr = _read_header(Path(f))
        headers.append((Path(f), str(hdr.SOPClassUID), str(hdr.SOPInstanceUID), str(hdr.file_meta.TransferSyntaxUID)))
    if not headers:
        return out
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    syntaxes: dict[str, list[str]] = {}
    for _, sop_class, _, ts in headers:
        wanted = syntaxes.setdefault(sop_class, [])
        for t in (ts, ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if t not in wanted:
                wanted.append(t)
    contexts = [build_context(sop_class, ts) for sop_class, ts in syntaxes.items()]
    tls = (ssl_context, dest.host) if ssl_context is not None else None
    try:
        assoc = ae.associate(dest.host, dest.port, contexts=contexts, ae_title=dest.aet, tls_args=tls)
    except OSError as exc:  # e.g. TLS handshake refused
        out.error = f"association with {dest} failed ({exc})"
        return out
    if not assoc.is_established:
        out.error = f"association with {dest} {'rejected' if assoc.is_rejected else 'failed'}"
        return out
    try:
        accepted = {c.abstract_syntax for c in assoc.accepted_contexts}
        for path, sop_class, sop_uid, _ in headers:
            if sop_class not in accepted:
                out.refused[sop_uid] = f"SOP class {sop_class} not accepted"
                if on_result:
                    on_result(sop_uid, "refused: " + out.refused[sop_uid])
                continue
            status = assoc.send_c_store(pydicom.dcmread(path))
            if not assoc.is_established and not status:
                out.error = f"association with {dest} lost"
                break
            code = int(getattr(status, "Status", -1)) if status else -1
            if code in _STORED:
                out.stored.append(sop_uid)
                if on_result:
                    on_result(sop_uid, "stored")
            elif code == -1:
                out.error = f"no answer from {dest}"
                break
            elif 0xA700 <= code <= 0xA7FF:  # out of resources: transient
                out.error = f"{dest} out of resources (0x{code:04X})"
                break
            else:
                out.refused[sop_uid] = f"status 0x{code:04X}"
                if on_result:
                    on_result(sop_uid, "refused: " + out.refused[sop_uid])
    finally:
        if assoc.is_established:
            assoc.release()
    return out


def echo(dest: Destination, *, calling_aet: str = "R2MRI-ECHO", timeout_s: float = 5.0, ssl_context=None) -> bool:
    """C-ECHO ``dest``; True when it answers success."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.add_requested_context(Verification)
    tls = (ssl_context, dest.host) if ssl_context is not None else None
    try:
        assoc = ae.associate(dest.host, dest.port, ae_title=dest.aet, tls_args=tls)
    except OSError:
        return False
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and int(status.Status) == 0
    finally:
        assoc.release()
