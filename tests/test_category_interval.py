"""The categories the headline's 95 % interval spans: the rule, report.json, page, SR, terminal.

Thresholds 1.8, 3.2, 7 and 15 mg/g (St Pierre 2005; domain.md section 4), each band
upper-inclusive; the interval's ends are filed by the same rule as the headline, so a
threshold ``t`` is inside ``[lo, hi]`` when ``lo <= t < hi``. Exact values: no fit, no noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _report_fake import fake_result  # noqa: E402

from r2mri._category_interval import SHORT_LABELS, interval_categories  # noqa: E402
from r2mri.calibration import CATEGORIES, lic_category  # noqa: E402
from r2mri.report import report_dict  # noqa: E402

_NOTE_32 = "95 % interval spans 3.2 mg/g: mildly raised or chelation target range"


def test_interval_containing_a_threshold():
    d = interval_categories(3.19, 3.21)  # the demo: 3.20 (3.196-3.212)
    assert d == {"ci95_categories": ["mildly-raised", "target-range"], "ci95_thresholds_mg_per_g": [3.2],
                 "ci95_spans_threshold": True, "ci95_note": _NOTE_32}
    assert interval_categories(3.21, 3.19) == d  # the ends in either order


def test_interval_touching_a_threshold_exactly():
    # from below: every value <= 3.2 is mildly raised (upper-inclusive), one category
    below = interval_categories(3.0, 3.2)
    assert below["ci95_categories"] == ["mildly-raised"] and below["ci95_thresholds_mg_per_g"] == []
    assert below["ci95_note"] is None and below["ci95_spans_threshold"] is False
    # from above: the low end 3.2 itself is mildly raised, the rest target range
    above = interval_categories(3.2, 3.4)
    assert above["ci95_categories"] == ["mildly-raised", "target-range"]
    assert above["ci95_note"] == _NOTE_32
    # a zero-width interval on the threshold is the headline's own category
    assert interval_categories(3.2, 3.2)["ci95_categories"] == [lic_category(3.2).name]


def test_interval_clear_of_every_threshold():
    for lo, hi in ((0.5, 1.7), (2.0, 3.1), (4.5, 5.5), (8.0, 14.0), (16.0, 40.0)):
        d = interval_categories(lo, hi)
        assert d["ci95_categories"] == [lic_category((lo + hi) / 2).name]
        assert d["ci95_thresholds_mg_per_g"] == [] and d["ci95_note"] is None


def test_interval_spanning_several_thresholds_and_the_top_band():
    d = interval_categories(2.5, 8.0)
    assert d["ci95_thresholds_mg_per_g"] == [3.2, 7.0]
    assert d["ci95_categories"] == ["mildly-raised", "target-range", "increased-risk"]
    assert d["ci95_note"] == "95 % interval spans 3.2 and 7 mg/g: mildly raised to increased risk"
    assert interval_categories(14.0, 16.5)["ci95_note"] == (
        "95 % interval spans 15 mg/g: increased risk or greatly increased risk")


def test_no_interval_gives_none():
    assert interval_categories(None, 3.0) is None
    assert interval_categories(float("nan"), 3.0) is None
    assert set(SHORT_LABELS) == {c.name for c in CATEGORIES}


def _rep(lo, hi, head):
    res = fake_result(shape=(12, 10, 2))
    res.statistics["lic_mg_per_g"].update(of_mean_r2=head, ci95=[lo, hi])
    res.statistics["category"] = lic_category(head).to_dict()
    return report_dict(res)


@pytest.fixture(scope="module")
def spanning():
    return _rep(3.196, 3.212, 3.204)


def test_report_json_category_block(spanning):
    cat = spanning["category"]
    # the headline's own category and the old keys unchanged (3.204 > 3.2: target range)
    assert {k: cat[k] for k in ("name", "label", "lower_mg_per_g", "upper_mg_per_g", "thresholds_mg_per_g")} == {
        "name": "target-range", "label": "Chelation target range (3.2-7 mg/g)", "lower_mg_per_g": 3.2,
        "upper_mg_per_g": 7.0, "thresholds_mg_per_g": [1.8, 3.2, 7.0, 15.0]}
    assert "St Pierre" in cat["source"]
    assert cat["ci95_thresholds_mg_per_g"] == [3.2] and cat["ci95_note"] == _NOTE_32
    clear = _rep(4.5, 5.5, 5.0)
    assert clear["category"]["ci95_note"] is None and clear["category"]["ci95_categories"] == ["target-range"]
    assert "one category" in clear["null_reasons"]["category.ci95_note"]


def test_terminal_sr_and_page_say_it(spanning):
    from r2mri.commands.analyze import headline_lines
    from r2mri.report._page_headline import headline_rows, interval_note
    from r2mri.report._sr import _text_items

    assert headline_lines(spanning)[1] == f"category: Chelation target range (3.2-7 mg/g); {_NOTE_32}"
    texts = {item.ConceptNameCodeSequence[0].CodeValue: item.TextValue for item in _text_items(spanning)}
    assert texts["LIC-CAT-CI95"] == _NOTE_32
    assert interval_note(spanning) == _NOTE_32
    clear = _rep(4.5, 5.5, 5.0)
    assert "LIC-CAT-CI95" not in {i.ConceptNameCodeSequence[0].CodeValue for i in _text_items(clear)}
    assert interval_note(clear) is None and headline_lines(clear)[1] == "category: Chelation target range (3.2-7 mg/g)"
    # the page: one more row under the CI line, rows no closer than the closest pair of the
    # hand-placed layouts (which were checked on the rendered page not to collide)
    layouts = [(pdff, het) for pdff in (False, True) for het in (False, True)]
    closest = min(_gap(*headline_rows(p, h, False)) for p, h in layouts)
    for pdff, het in layouts:
        h0, y0 = headline_rows(pdff, het, False)
        h1, y1 = headline_rows(pdff, het, True)
        assert y1["ci"] > y1["note"] > max(y1["pdff"], y1["het"], y1["cal"])
        assert _gap(h1, y1) >= closest - 1e-12
        assert h1 > h0


def _gap(h, y):
    """Smallest distance (box units) between the centres of two rows drawn."""
    rows = sorted((v * h for v in y.values() if v), reverse=True)
    return min(a - b for a, b in zip(rows, rows[1:]))



def test_trend_caption_says_which_exams_ci_spans_a_threshold():
    from r2mri.trend import build_trends
    from r2mri.trend._page import caption_lines

    def row(date, lic, lo, hi):
        return {"exam_id": f"P1/{date}", "subject": "P1", "study_date": date, "status": "ok", "lic_mg_per_g": lic,
                "lic_ci_low": lo, "lic_ci_high": hi, "field_strength_t": 1.5, "sequence": "SE",
                "calibration": "st-pierre-2005", "model": "ncchi"}

    (trend,) = build_trends([row("2024-01-15", 5.0, 4.5, 5.5), row("2024-07-15", 3.2, 3.0, 3.2),
                             row("2025-01-15", 3.204, 3.196, 3.212)])
    assert [e.ci95_thresholds_mg_per_g for e in trend.exams] == [[], [], [3.2]]
    assert [e.category for e in trend.exams] == ["target-range", "mildly-raised", "target-range"]
    changes = [ln for ln in caption_lines(trend) if ln.startswith("  P1/")]
    assert changes[0].endswith("; target-range -> mildly-raised")  # touching 3.2 from below: one category
    assert changes[1].endswith("; mildly-raised -> target-range (95 % CI spans 3.2 mg/g)")
