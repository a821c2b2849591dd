"""Storage SCP of the node (pynetdicom): receive instances into the spool, answer C-ECHO.

The C-STORE handler runs on pynetdicom's association thread and only writes the
instance atomically into the spool (grouped by StudyInstanceUID) and answers; the
analysis happens elsewhere (:mod:`r2mri.node.service`).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from .config import NodeConfig
from .logs import log_event
from .spool import Spool

__all__ = ["handle_store", "make_ssl_context", "start_scp", "STATUS"]

#: C-STORE statuses the handler answers (PS3.4 Annex B.2.3).
STATUS = {
    "success": 0x0000,
    "out_of_resources": 0xA700,  # Refused: Out of Resources
    "cannot_understand": 0xC210,  # Error: Cannot understand (undecodable dataset)
    "processing_failure": 0x0110,
}


def handle_store(event: Any, spool: Spool, cfg: NodeConfig) -> int:
    """EVT_C_STORE handler: disk guard, decode the study UID, store, answer."""
    calling = event.assoc.requestor.ae_title
    sop_class = str(event.request.AffectedSOPClassUID)
    free_mb = spool.free_mb()
    if free_mb < cfg.min_free_mb:
        log_event("store_refused_disk_full", logging.WARNING, free_mb=round(free_mb, 1),
                  min_free_mb=cfg.min_free_mb, calling_aet=calling)
        return STATUS["out_of_resources"]
    try:
        ds = event.dataset
        study_uid = str(ds.StudyInstanceUID)
        sop_uid = str(event.request.AffectedSOPInstanceUID)
        if not study_uid or not sop_uid:
            raise ValueError("no StudyInstanceUID or SOPInstanceUID")
    except Exception as exc:  # noqa: BLE001 - any decoding problem is the sender's
        log_event("store_refused_undecodable", logging.WARNING, calling_aet=calling, sop_class=sop_class,
                  error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200])
        return STATUS["cannot_understand"]
    try:
        data = event.encoded_dataset(include_meta=True)
        job_id = spool.store_instance(study_uid, sop_uid, data)
    except OSError as exc:
        log_event("store_failed", logging.ERROR, calling_aet=calling, study_uid=study_uid, error=str(exc))
        return STATUS["out_of_resources"]
    log_event("instance_received", logging.DEBUG, job=job_id, study_uid=study_uid, sop_class=sop_class,
              calling_aet=calling)
    return STATUS["success"]


def _log_rejected(event: Any) -> None:
    log_event("association_rejected", logging.WARNING, calling_aet=event.assoc.requestor.ae_title,
              address=event.assoc.requestor.address)


def _log_aborted(event: Any) -> None:
    log_event("association_aborted", logging.WARNING, calling_aet=event.assoc.requestor.ae_title)


def make_ssl_context(cfg: NodeConfig, *, server: bool = True) -> ssl.SSLContext | None:
    """TLS context from the configured PEM files (``None`` without TLS).

    With a CA file, peers must present a certificate it signed (mutual TLS).
    """
    if not cfg.tls:
        return None
    purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
    ctx = ssl.create_default_context(purpose, cafile=cfg.tls_ca or None)
    ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    if server:
        ctx.verify_mode = ssl.CERT_REQUIRED if cfg.tls_ca else ssl.CERT_NONE
    else:
        ctx.check_hostname = False  # DICOM peers are named by AE title and address
    return ctx


def start_scp(cfg: NodeConfig, spool: Spool):
    """Start the storage SCP in background threads; return pynetdicom's server
    (``.shutdown()`` stops it; ``.server_address`` has the bound port)."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=cfg.aet)
    for ctx in AllStoragePresentationContexts:
        ae.add_supported_context(ctx.abstract_syntax, ctx.transfer_syntax)
    ae.add_supported_context(Verification)
    ae.require_calling_aet = list(cfg.allow)
    ae.maximum_associations = cfg.max_associations
    ae.acse_timeout = cfg.acse_timeout_s
    ae.dimse_timeout = cfg.dimse_timeout_s
    ae.network_timeout = cfg.network_timeout_s
    handlers = [
        (evt.EVT_C_STORE, handle_store, [spool, cfg]),
        (evt.EVT_REJECTED, _log_rejected),
        (evt.EVT_ABORTED, _log_aborted),
    ]
    return ae.start_server((cfg.host, cfg.port), block=False, evt_handlers=handlers,
                           ssl_context=make_ssl_context(cfg, server=True))
