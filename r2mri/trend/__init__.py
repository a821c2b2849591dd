"""Longitudinal LIC: each patient's exams over time, changes and comparability warnings.

:func:`trend` reads cohort tables (``OUT/cohort.csv`` of ``r2mri batch``) and/or
report.json files and writes ``trend.json`` plus one PNG and one PDF page per patient.
See docs/batch.md ("Trends") for how a change is judged against measurement variability.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ._trend import Change, PatientTrend, TrendExam, build_trends, read_exams, trend_document

__all__ = ["trend", "build_trends", "read_exams", "PatientTrend", "TrendExam", "Change"]


def trend(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, subject: str | None = None,
          reproducibility_cv: float | None = None, reproducibility_source: str | None = None,
          overwrite: bool = False) -> list[PatientTrend]:
    """Write ``out/trend.json`` and ``out/<subject>.png`` / ``.pdf`` for each patient.

    Parameters
    ----------
    inputs : sequence of path
        cohort.csv / cohort.json tables and/or report.json files.
    out : path
        Output folder (written atomically; must not exist unless ``overwrite``).
    subject : str, optional
        Only this subject.
    reproducibility_cv, reproducibility_source : float, str, optional
        A site's scan-rescan coefficient of variation and where it comes from; by
        default only the exams' 95 % CIs are used (none is built in: see
        :mod:`r2mri.trend._trend`).

    Returns
    -------
    list of PatientTrend

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "cohort.csv").write_text(
    ...     "exam_id,subject,study_date,status,lic_mg_per_g,lic_ci_low,lic_ci_high\\n"
    ...     "p/a,p,2024-01-01,ok,15,14.7,15.3\\np/b,p,2024-07-01,ok,11,10.8,11.2\\n")
    >>> (t,) = trend([d / "cohort.csv"], d / "trend")
    >>> sorted(p.name for p in (d / "trend").iterdir())
    ['p.pdf', 'p.png', 'trend.json']
    """
    import json

    from .._atomic import atomic_directory, atomic_write_text
    from ..batch._discover import _label
    from ._page import write_patient_page

    trends = build_trends(read_exams(inputs), subject=subject, reproducibility_cv=reproducibility_cv)
    doc = trend_document(trends, reproducibility_cv=reproducibility_cv, reproducibility_source=reproducibility_source)
    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        atomic_write_text(tmp / "trend.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
        for t in trends:
            name = _label(t.subject, "unknown")
            write_patient_page(t, tmp / f"{name}.png", tmp / f"{name}.pdf")
    return trends
