"""Per-patient LIC over time: exams, changes between consecutive exams, comparability flags.

Whether a change "exceeds measurement variability" is judged from the two exams' own
95 % confidence intervals (the uncertainty of each headline LIC, from the voxel noise
of its ROI; ``r2mri.stats``): the difference ``d = LIC_2 - LIC_1`` has standard error
``sqrt(se_1^2 + se_2^2)`` with ``se = (ci_high - ci_low) / (2 x 1.959964)``, and the
change exceeds that variability when ``|d| > 1.959964 x se_d`` (two-sided 5 %).

Those intervals hold the measurement noise only: scan-rescan effects (slice position,
breathing, ROI placement, scanner drift) are not in them. No published scan-rescan
reproducibility figure for R2-MRI LIC could be confirmed from its primary source for
this code (a FerriScan / St Pierre reproducibility study would be the place to look),
so none is built in. A site that has measured its own scan-rescan coefficient of
variation passes it as ``reproducibility_cv`` (with its source, ``reproducibility_source``):
each exam's standard error then becomes ``sqrt(se^2 + (cv x LIC)^2)``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .._category_interval import interval_categories
from ..calibration import CATEGORIES, THRESHOLDS_MG_PER_G, THRESHOLDS_SOURCE, lic_category
from ..errors import InputError

__all__ = ["TrendExam", "Change", "PatientTrend", "build_trends", "read_exams", "Z95"]

#: Two-sided 95 % standard-normal quantile (Phi^-1(0.975) = 1.959964).
Z95 = 1.959963984540054

NO_REPRODUCIBILITY_NOTE = (
    "No published scan-rescan reproducibility figure for R2-MRI LIC was confirmed from its primary "
    "source, so changes are judged against the exams' own 95 % confidence intervals only (measurement "
    "noise; scan-rescan variability is not included and real variability is larger)."
)


@dataclass(frozen=True)
class TrendExam:
    """One exam on a patient's time line (LIC in mg Fe/g dry tissue, field in tesla)."""

    exam_id: str
    date: str
    lic_mg_per_g: float
    ci_low: float | None
    ci_high: float | None
    category: str
    field_strength_t: float | None = None
    sequence: str | None = None
    calibration: str | None = None
    model: str | None = None
    #: thresholds (mg/g) inside the 95 % CI, ``lo <= t < hi`` (r2mri._category_interval); [] when
    #: clear, None without a CI. ``category`` stays the headline's own (upper-inclusive bands).
    ci95_thresholds_mg_per_g: list | None = None

    def se_mg_per_g(self, cv: float | None = None) -> float | None:
        """Standard error of the headline from its 95 % CI (plus ``cv x LIC`` when given)."""
        if self.ci_low is None or self.ci_high is None:
            return None
        se = (self.ci_high - self.ci_low) / (2.0 * Z95)
        if cv:
            se = math.hypot(se, cv * self.lic_mg_per_g)
        return se


@dataclass(frozen=True)
class Change:
    """The change between two consecutive exams of a patient."""

    from_exam: str
    to_exam: str
    days: int
    delta_mg_per_g: float
    delta_ci95: list | None
    exceeds_variability: bool | None
    rate_mg_per_g_per_year: float | None
    category_from: str
    category_to: str
    comparable: bool


@dataclass
class PatientTrend:
    """A patient's exams in date order, the changes between them, and warnings."""

    subject: str
    exams: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    left_out: list = field(default_factory=list)

    def plot_data(self) -> dict:
        """What the page draws: dates, LIC, CI and the category bands."""
        return {
            "dates": [e.date for e in self.exams],
            "lic_mg_per_g": [e.lic_mg_per_g for e in self.exams],
            "ci_low": [e.ci_low for e in self.exams],
            "ci_high": [e.ci_high for e in self.exams],
            "bands": [{"name": c.name, "label": c.label, "lower_mg_per_g": c.lower_mg_per_g,
                       "upper_mg_per_g": c.upper_mg_per_g} for c in CATEGORIES],
        }

    def to_dict(self) -> dict:
        return {
            "subject": self.subject,
            "exams": [asdict(e) for e in self.exams],
            "changes": [asdict(c) for c in self.changes],
            "warnings": list(self.warnings),
            "left_out": list(self.left_out),
            "plot": self.plot_data(),
        }


def _f(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _date(text: Any) -> str | None:
    from ..batch._discover import _iso_date

    iso = _iso_date(text)
    if iso is None:
        return None
    try:
        _dt.date.fromisoformat(iso)
    except ValueError:
        return None
    return iso


def read_exams(paths: Sequence[str | os.PathLike]) -> list[dict]:
    """Exam rows from cohort.csv / cohort.json tables and report.json files.

    Each row has the cohort-table keys (``exam_id``, ``subject``, ``study_date``,
    ``status``, ``lic_mg_per_g``, ``lic_ci_low``, ``lic_ci_high``, ``field_strength_t``,
    ``sequence``, ``calibration``, ``model``).
    """
    from ..batch._cohort import read_cohort

    rows: list[dict] = []
    for item in paths:
        p = Path(item)
        if not p.is_file():
            raise InputError(f"{p}: no such file")
        try:
            if p.suffix.lower() == ".csv" or (p.suffix.lower() == ".json" and p.name != "report.json"
                                               and "rows" in json.loads(p.read_text(encoding="utf-8"))):
                rows.extend(read_cohort(p))
                continue
            rep = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{p}: not a cohort table or report.json ({type(exc).__name__}: {exc})") from None
        if not isinstance(rep, dict) or "lic_mg_per_g" not in rep:
            raise InputError(f"{p}: not a cohort table or report.json (no lic_mg_per_g block)")
        rows.append(_row_from_report(rep, p))
    return rows


def _row_from_report(rep: dict, path: Path) -> dict:
    inp = rep.get("input") or {}
    lic = rep.get("lic_mg_per_g") or {}
    ci = lic.get("ci95") or [None, None]
    acq = rep.get("acquisition") or {}
    subject = inp.get("patient_id") or "unknown"
    date = _date(inp.get("study_date"))
    return {
        "exam_id": f"{subject}/{date or path.parent.name}", "subject": subject, "study_date": date,
        "status": "ok", "lic_mg_per_g": lic.get("of_mean_r2"), "lic_ci_low": ci[0], "lic_ci_high": ci[1],
        "field_strength_t": acq.get("field_strength_t"), "sequence": acq.get("sequence"),
        "calibration": (rep.get("calibration") or {}).get("name"), "model": (rep.get("model") or {}).get("name"),
    }


def build_trends(rows: Iterable[dict], *, subject: str | None = None, reproducibility_cv: float | None = None
                 ) -> list[PatientTrend]:
    """Group exam rows by subject and compute each patient's trend.

    Parameters
    ----------
    rows : iterable of dict
        Cohort-table rows (:func:`read_exams`).
    subject : str, optional
        Only this subject.
    reproducibility_cv : float, optional
        A site's scan-rescan coefficient of variation (0.1 = 10 %) added to each exam's
        standard error; ``None``: the exams' CIs only (see the module notes).

    Returns
    -------
    list of PatientTrend
        One per subject, sorted by subject.

    Examples
    --------
    >>> rows = [{"exam_id": "p/1", "subject": "p", "study_date": "2024-01-01", "status": "ok",
    ...          "lic_mg_per_g": 15.0, "lic_ci_low": 14.7, "lic_ci_high": 15.3},
    ...         {"exam_id": "p/2", "subject": "p", "study_date": "2024-07-01", "status": "ok",
    ...          "lic_mg_per_g": 11.0, "lic_ci_low": 10.8, "lic_ci_high": 11.2}]
    >>> (t,) = build_trends(rows)
    >>> c = t.changes[0]
    >>> c.delta_mg_per_g, c.exceeds_variability, c.category_from, c.category_to
    (-4.0, True, 'increased-risk', 'increased-risk')
    """
    if reproducibility_cv is not None and not (0 <= reproducibility_cv < 1):
        raise InputError(f"reproducibility_cv: expected a fraction in [0, 1), got {reproducibility_cv}")
    by: dict[str, PatientTrend] = {}
    for row in rows:
        subj = str(row.get("subject") or "unknown")
        if subject is not None and subj != subject:
            continue
        trend = by.setdefault(subj, PatientTrend(subj))
        exam_id = str(row.get("exam_id") or subj)
        lic = _f(row.get("lic_mg_per_g"))
        date = _date(row.get("study_date"))
        if row.get("status", "ok") != "ok" or lic is None:
            trend.left_out.append({"exam_id": exam_id, "reason": row.get("error") or "no LIC (exam failed)"})
            continue
        if date is None:
            trend.left_out.append({"exam_id": exam_id, "reason": "no study date: cannot be placed in time"})
            continue
        trend.exams.append(TrendExam(
            exam_id=exam_id, date=date, lic_mg_per_g=lic, ci_low=_f(row.get("lic_ci_low")),
            ci_high=_f(row.get("lic_ci_high")), category=lic_category(lic).name,
            field_strength_t=_f(row.get("field_strength_t")), sequence=row.get("sequence") or None,
            calibration=row.get("calibration") or None, model=row.get("model") or None,
            ci95_thresholds_mg_per_g=_ci95_thresholds(row)))
    if subject is not None and subject not in by:
        raise InputError(f"--subject {subject}: no exam of this subject in the inputs")
    out = []
    for subj in sorted(by):
        trend = by[subj]
        trend.exams.sort(key=lambda e: (e.date, e.exam_id))
        for a, b in zip(trend.exams, trend.exams[1:]):
            change, warns = _change(a, b, reproducibility_cv)
            trend.changes.append(change)
            trend.warnings.extend(warns)
        for item in trend.left_out:
            trend.warnings.append(f"{item['exam_id']} left out: {item['reason']}")
        out.append(trend)
    return out


def _ci95_thresholds(row: dict) -> list | None:
    """The category thresholds inside an exam's 95 % CI (None without one)."""
    span = interval_categories(_f(row.get("lic_ci_low")), _f(row.get("lic_ci_high")))
    return None if span is None else span["ci95_thresholds_mg_per_g"]


def _change(a: TrendExam, b: TrendExam, cv: float | None) -> tuple[Change, list[str]]:
    warns = []
    for what, va, vb in (("field strength", a.field_strength_t, b.field_strength_t),
                         ("calibration", a.calibration, b.calibration),
                         ("sequence", a.sequence, b.sequence)):
        if va != vb:
            warns.append(f"{a.exam_id} -> {b.exam_id}: {what} changed ({va} -> {vb}); the LIC values "
                         "are not directly comparable")
    days = (_dt.date.fromisoformat(b.date) - _dt.date.fromisoformat(a.date)).days
    delta = b.lic_mg_per_g - a.lic_mg_per_g
    se_a, se_b = a.se_mg_per_g(cv), b.se_mg_per_g(cv)
    if se_a is None or se_b is None:
        ci, exceeds = None, None
    else:
        se = math.hypot(se_a, se_b)
        ci = [delta - Z95 * se, delta + Z95 * se]
        exceeds = bool(abs(delta) > Z95 * se)
    return Change(
        from_exam=a.exam_id, to_exam=b.exam_id, days=days, delta_mg_per_g=delta, delta_ci95=ci,
        exceeds_variability=exceeds, rate_mg_per_g_per_year=(delta / (days / 365.25)) if days > 0 else None,
        category_from=a.category, category_to=b.category, comparable=not warns,
    ), warns


def trend_document(trends: list[PatientTrend], *, reproducibility_cv: float | None = None,
                   reproducibility_source: str | None = None) -> dict:
    """The trend.json content."""
    from .._version import __version__

    if reproducibility_cv is None:
        method = {"reproducibility_cv": None, "note": NO_REPRODUCIBILITY_NOTE}
    else:
        method = {"reproducibility_cv": reproducibility_cv, "source": reproducibility_source or "given by the user",
                  "note": "each exam's standard error combines its CI and cv x LIC"}
    return {
        "schema_version": "1.1",  # 1.1: exams[].ci95_thresholds_mg_per_g added
        "software": {"name": "r2mri", "version": __version__},
        "units": {"lic": "mg Fe/g dry tissue", "days": "days", "rate": "mg Fe/g per year"},
        "thresholds_mg_per_g": list(THRESHOLDS_MG_PER_G),
        "thresholds_source": THRESHOLDS_SOURCE,
        "variability": {"test": "|delta| > 1.96 x sqrt(se_1^2 + se_2^2), se = CI width / (2 x 1.96)", **method},
        "patients": [t.to_dict() for t in trends],
    }
