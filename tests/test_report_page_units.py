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


def test_an_assumed_field_sequence_or_echo_train_is_red():
    """A NIfTI without sidecar at 3 T, read with the 1.5 T curve on the assumption, gave
    6.04 mg/g for a 3.2 mg/g liver; the assumptions ranked with the protocol reminders (black)."""
    from r2mri.report._page_notes import warning_rank

    for text in ("calibration st-pierre-2005: field strength of the acquisition unknown; assumed 1.5 T as the curve",
                 "calibration st-pierre-2005: sequence of the acquisition unknown; assumed SE as the curve",
                 "calibration st-pierre-2005: echo train length unknown; assumed single-echo spin echo as the curve"):
        assert warning_rank(text) == 0, text
    assert warning_rank("calibration st-pierre-2005: formula not verified against the primary text") == 2
