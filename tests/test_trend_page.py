"""The trend page's numbers: two decimals next to the 7 mg/g threshold, no empty caption.

6.96 mg/g was printed "7.0", on the target-range / increased-risk threshold; a patient
with one exam got an empty "Changes between consecutive exams" heading.
"""

from __future__ import annotations

from r2mri.trend import build_trends
from r2mri.trend._page import caption_lines, patient_figure


def _row(date, lic, subject="P1"):
    return {"exam_id": f"{subject}/{date}", "subject": subject, "session": date, "study_date": date,
            "status": "ok", "lic_mg_per_g": lic, "lic_ci_low": lic - 0.3, "lic_ci_high": lic + 0.3,
            "field_strength_t": 1.5, "sequence": "SE", "calibration": "st-pierre-2005", "model": "ncchi"}


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_one_exam_at_6_96_prints_two_decimals_and_no_changes_heading():
    (trend,) = build_trends([_row("2024-01-15", 6.96)])
    texts = _texts(patient_figure(trend))
    assert "6.96" in texts and "7.0" not in texts
    assert not any("Changes between" in t for t in texts)


def test_changes_print_two_decimals_and_warnings_are_never_cut_for_changes():
    rows = [_row(f"20{10 + k}-01-15", 7.0 + 0.01 * k) for k in range(30)]
    (trend,) = build_trends(rows)
    texts = _texts(patient_figure(trend))
    assert "+0.01" in texts and "7.00" in texts and "7.0" not in texts and "7.29" in texts
    trend.warnings.extend(f"warning {k}" for k in range(5))
    lines = caption_lines(trend)
    # 29 changes, 5 warnings + disclaimer: heading, the note, the 10 latest changes, the 6 lines
    assert len(lines) == 18 and lines[0].startswith("Changes between")
    assert "(19 earlier change(s) not shown: see trend.json)" in lines[1]
    assert [ln for ln in lines if ln.startswith("Warning:")] == [f"Warning: warning {k}" for k in range(5)]
    assert lines[-1].startswith("Research use only")


def test_a_long_warning_is_wrapped_not_shortened():
    (trend,) = build_trends([_row("2024-01-15", 6.96)])
    long = "calibration changed between exams: " + "word " * 60 + "END"
    trend.warnings.append(long)
    lines = caption_lines(trend)
    assert all(len(ln) <= 170 for ln in lines) and lines[-2].endswith("END")
    assert " ".join(ln.strip() for ln in lines[:-1]) == "Warning: " + " ".join(long.split())
