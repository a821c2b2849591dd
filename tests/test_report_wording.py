"""What a radiologist reads: plain words on the page and in the terminal.

The evidence tags of the calibration files ([C] confirmed, [R] widely quoted, [D] derived;
see calibration/README.md) and references to the developers' domain.md stay in
report.json's ``calibration.citation`` and the docs; the page's warnings and QC notes, the
terminal's ``warning:`` lines and the headline label never show them. A derived 3 T bridge
is warned about once, not three times.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from r2mri.calibration import (
    CATEGORIES,
    THRESHOLDS_MG_PER_G,
    check_applicability,
    get_calibration,
    list_calibrations,
)
from r2mri.commands.analyze import warning_lines
from r2mri.report._page_notes import qc_notes

TAGS = ("[R]", "[C]", "[D]", "domain.md")


def _fmt(value, digits=2, unit=""):
    return "n/a" if value is None else f"{value}{unit}"


def _report(name: str) -> dict:
    """A report dict as analyze writes it for curve ``name`` on data matching the curve
    (at 3 T with the protocol finding analyze records for any 3 T acquisition)."""
    cal = get_calibration(name)
    warnings = check_applicability(cal, field_strength_t=cal.field_strength_t, sequence=cal.sequence,
                                   echo_train_length=1 if cal.sequence == "SE" else 6)
    findings = []
    if cal.field_strength_t == 3.0:
        findings.append({"severity": "warning", "code": "field-strength-3t",
                         "message": "3 T: no published biopsy-validated spin-echo R2-LIC calibration at 3 T"})
    return {"warnings": warnings, "calibration": {**cal.to_dict(), "citation_text": "Author et al. Title."},
            "qc": {"protocol_findings": findings}, "model": {"name": "ncchi"}, "roi": {}}


@pytest.mark.parametrize("name", list_calibrations())
def test_no_evidence_tags_on_page_or_terminal(name):
    rep = _report(name)
    texts = warning_lines(rep) + qc_notes(rep, _fmt, lambda v: v) + [rep["calibration"]["label"]]
    for text in texts:
        assert not any(tag in text for tag in TAGS), (name, text)
    cal = get_calibration(name)
    if not cal.verified or cal.derived:  # the plain status is said, once
        assert sum(cal.reader_status in t for t in warning_lines(rep)) == 1
    else:
        assert warning_lines(rep) == []


@pytest.mark.parametrize("name", ["st-pierre-2005-3t-scaled", "hernando-2022-r2star-3t-scaled"])
def test_derived_bridge_is_one_warning(name):
    lines = warning_lines(_report(name))
    assert len(lines) == 1 and lines[0].count("not biopsy-validated") == 1, lines
    assert get_calibration(name).label.count("not biopsy-validated") == 1


def test_category_labels_one_style():
    bounds = [None, *THRESHOLDS_MG_PER_G, None]
    for cat, lo, hi in zip(CATEGORIES, bounds, bounds[1:]):
        m = re.fullmatch(r"[A-Z][a-z][^()]*? \(([^()]*) mg/g\)", cat.label)
        assert m, cat.label  # "Meaning (band mg/g)"
        band = m.group(1)  # the band in the label is the band of the thresholds
        assert band == (f"up to {hi:g}" if lo is None else f"above {lo:g}" if hi is None else f"{lo:g}-{hi:g}")
        # one line of the page's headline box (textwrap at 44), the longest meaning two
        assert len(textwrap.wrap(cat.label, 44)) <= (2 if hi is None else 1), cat.label
