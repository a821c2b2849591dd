"""Report writers: report.json, report.pdf/png, NIfTI maps + settings.json, DICOM.

:func:`write_outputs` writes everything into one output folder atomically (a
temporary sibling renamed into place; on any error the folder is not created or
left as it was). :func:`report_dict` gives the report.json content as a dict; :func:`quantity_of`
says whether a result holds R2 or R2* (every label of the outputs follows it).
"""

from __future__ import annotations

from ._json import SCHEMA_VERSION, report_dict
from ._labels import quantity_of
from ._write import write_outputs

__all__ = ["write_outputs", "report_dict", "SCHEMA_VERSION", "quantity_of"]
