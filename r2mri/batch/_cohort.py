"""The cohort table: one row per exam, written as ``OUT/cohort.csv`` and ``OUT/cohort.json``.

Rows are built from each exam's report.json (never from in-memory results), so an
exam analysed now and one skipped because its outputs are up to date give the same
row, and two runs give the same table (``seconds`` is the time of the analysis that
wrote the outputs).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

from .._atomic import atomic_write_text

__all__ = ["COLUMNS", "row_from_report", "failed_row", "write_cohort", "read_cohort"]

#: Columns of cohort.csv, in order (issue 14). Units: tesla, mg Fe/g dry tissue, 1/s, ml, s.
COLUMNS = (
    "exam_id", "subject", "session", "study_date", "input", "status", "error",
    "field_strength_t", "sequence", "model", "calibration", "lic_mg_per_g", "lic_ci_low",
    "lic_ci_high", "category", "category_ci95_thresholds_mg_per_g", "mean_r2_per_s", "quantity", "pdff_median_percent",
    "roi_volume_ml", "n_warnings", "n_red_warnings", "heterogeneous", "seconds", "r2mri_version",
)


def _base(exam: Any, input_label: str) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(exam_id=exam.exam_id, subject=exam.subject, session=exam.session,
               study_date=exam.study_date, input=input_label)
    return row


def row_from_report(exam: Any, rep: dict, *, input_label: str, seconds: float | None) -> dict:
    """The cohort row of an exam whose report.json is ``rep``."""
    row = _base(exam, input_label)
    lic = rep.get("lic_mg_per_g") or {}
    ci = lic.get("ci95") or [None, None]
    acq = rep.get("acquisition") or {}
    r2 = rep.get("r2_per_s") or {}
    cat = rep.get("category") or {}
    study_date = exam.study_date
    if study_date is None:
        from ._discover import _iso_date

        study_date = _iso_date((rep.get("input") or {}).get("study_date"))
    row.update(
        study_date=study_date,
        status="ok",
        error="",
        field_strength_t=acq.get("field_strength_t"),
        sequence=acq.get("sequence"),
        model=(rep.get("model") or {}).get("name"),
        calibration=(rep.get("calibration") or {}).get("name"),
        lic_mg_per_g=lic.get("of_mean_r2"),
        lic_ci_low=ci[0],
        lic_ci_high=ci[1],
        category=cat.get("name") if isinstance(cat, dict) else cat,
        category_ci95_thresholds_mg_per_g=_interval_thresholds(cat),
        mean_r2_per_s=r2.get("headline_mean", r2.get("mean")),
        # "R2*" for gradient echo: mean_r2_per_s then holds R2* (report.json 1.1 `quantity`)
        quantity=rep.get("quantity", "R2"),
        pdff_median_percent=(rep.get("pdff_percent") or {}).get("median"),
        roi_volume_ml=(rep.get("roi") or {}).get("volume_ml"),
        n_warnings=len(rep.get("warnings") or []),
        n_red_warnings=_n_red_warnings(rep),
        heterogeneous=_heterogeneous(rep),
        seconds=None if seconds is None else round(float(seconds), 3),
        r2mri_version=(rep.get("software") or {}).get("version"),
    )
    return row


def _n_red_warnings(rep: dict) -> int:
    """How many warnings the report page prints in red (they change the reading), ranked
    by the page's own rule (:func:`r2mri.report._page_notes.warning_items`)."""
    from ..report._page_notes import warning_items

    return sum(rank == 0 for rank, _ in warning_items(rep))


def _interval_thresholds(cat: Any) -> str | None:
    """The clinical thresholds inside the headline's 95 % interval, ";"-joined in mg/g ("3.2",
    "3.2;7"), "" when the interval lies in one category (report.json 1.3 ``category`` block,
    the page's "95 % interval spans ..." line); ``None`` for a report without the key."""
    thr = cat.get("ci95_thresholds_mg_per_g") if isinstance(cat, dict) else None
    if thr is None:
        return None
    return ";".join(f"{float(t):g}" for t in thr)


def _heterogeneous(rep: dict) -> bool | None:
    """Whether report.json's heterogeneity block warns (the page's red "Heterogeneous liver"
    line); ``None`` when the report has no such block."""
    het = rep.get("heterogeneity")
    return bool(het.get("warning")) if isinstance(het, dict) else None


def failed_row(exam: Any, *, input_label: str, error: str, seconds: float | None) -> dict:
    """The cohort row of an exam that failed: status ``failed`` and the one-line reason."""
    from .._version import __version__

    row = _base(exam, input_label)
    first = (str(error).strip().splitlines() or ["unknown error"])[0]
    row.update(status="failed", error=first, seconds=None if seconds is None else round(float(seconds), 3),
               r2mri_version=__version__)
    return row


def _sort_key(row: dict) -> tuple:
    return (str(row["subject"]), str(row["study_date"] or ""), str(row["session"]), str(row["exam_id"]))


def _csv_text(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in COLUMNS})
    return buf.getvalue()


def write_cohort(out: str | os.PathLike, rows: Sequence[dict]) -> tuple[Path, Path]:
    """Write ``out/cohort.csv`` and ``out/cohort.json`` (rows sorted: subject, date, session).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> csv_path, _ = write_cohort(out, [])
    >>> csv_path.read_text().startswith("exam_id,subject,session,study_date,input,status,error,")
    True
    """
    out = Path(out)
    rows = sorted(rows, key=_sort_key)
    csv_path = atomic_write_text(out / "cohort.csv", _csv_text(rows))
    doc = {"columns": list(COLUMNS), "rows": [{k: row.get(k) for k in COLUMNS} for row in rows]}
    json_path = atomic_write_text(out / "cohort.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return csv_path, json_path


def read_cohort(path: str | os.PathLike) -> list[dict]:
    """Rows of a cohort.csv / cohort.json (numbers as float, blanks as ``None``)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return list(json.loads(path.read_text(encoding="utf-8"))["rows"])
    numeric = {"field_strength_t", "lic_mg_per_g", "lic_ci_low", "lic_ci_high", "mean_r2_per_s",
               "pdff_median_percent", "roi_volume_ml", "seconds"}
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for raw in csv.DictReader(fh):
            row: dict[str, Any] = {}
            for k, v in raw.items():
                if v == "" or v is None:
                    row[k] = None
                elif k in numeric:
                    row[k] = float(v)
                elif k in ("n_warnings", "n_red_warnings"):
                    row[k] = int(v)
                elif k == "heterogeneous":
                    row[k] = v == "True"
                else:
                    row[k] = v
            rows.append(row)
    return rows
