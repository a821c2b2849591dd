"""JSON-lines logging of the node, free of patient identity.

Every record is one JSON object per line: ``time`` (ISO 8601, UTC), ``level``,
``event`` and the fields the caller gives (``job``, ``study_uid``, ``state``,
``seconds``, ``error``...). The node only ever passes UIDs, AE titles, states,
durations and one-line errors; as a second line of defence any field named like a
patient attribute is dropped and the values of the DICOM attributes PatientName,
PatientID and PatientBirthDate are never formatted.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from typing import Any

__all__ = ["JsonFormatter", "setup_logging", "log_event", "LOGGER_NAME"]

LOGGER_NAME = "r2mri.node"

#: Field names never written (patient identity).
_PHI_FIELDS = {"patient_name", "patient_id", "patient_birth_date", "patientname", "patientid",
               "patientbirthdate", "birth_date", "name"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the record's ``fields`` dict becomes top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        if record.name != LOGGER_NAME:
            out["logger"] = record.name
        for key, value in (getattr(record, "fields", None) or {}).items():
            if key.lower() in _PHI_FIELDS:
                continue
            out[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            out.setdefault("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return json.dumps(out, default=str)


def setup_logging(log_file: str = "", level: int = logging.INFO) -> logging.Handler:
    """Send the node's records (and pynetdicom's warnings) as JSON lines to ``log_file``
    (stderr when empty). Returns the handler (remove it to undo)."""
    handler: logging.Handler
    handler = logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    node = logging.getLogger(LOGGER_NAME)
    node.setLevel(level)
    node.addHandler(handler)
    node.propagate = False
    # pynetdicom's INFO/DEBUG output can dump whole datasets (patient identity): warnings only
    net = logging.getLogger("pynetdicom")
    net.setLevel(logging.WARNING)
    net.addHandler(handler)
    net.propagate = False
    return handler


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields`` (UIDs, states, durations; never patient identity)."""
    logging.getLogger(LOGGER_NAME).log(level, event, extra={"event": event, "fields": fields})
