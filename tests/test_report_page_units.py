"""The page's warnings and notes write rates as s\u207b\u00b9, like its headline, table and plot."""

from __future__ import annotations

from r2mri.report._page_notes import plan_column


def test_warning_rates_print_in_the_page_unit():
    # a report.json warning of the 30 mg/g SNR 20 phantom, in its ASCII form
    items = [(0, "headline: the 95 % interval is widened for the liver too dark to fit "
                 "(1.8 % of it; its R2 only bounded by the first echo, 211-395 s^-1)")]
    notes = ["Protocol info: echo train measures R2* about 21-1006 s^-1 (SNR 50 assumed)"]
    plan = plan_column(items, notes, 3.4, 5.0)
    text = " ".join(t for _, t, _ in plan.lines)
    assert "s^-1" not in text
    assert "211-395 s\u207b\u00b9" in text and "21-1006 s\u207b\u00b9" in text
