"""What the page and the SR say of the calibration curve: plain words, true for each curve.

Every shipped curve's ``CALIB-STATUS`` text follows its file (checked against its source,
widely quoted, or derived and not biopsy-validated); a site curve (``--calibration-file``)
is named as such with its file, never by the option that loaded it; a 3 T site curve is
not followed by the 3 T protocol finding's advice to choose one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from r2mri.calibration import covered_protocol_codes, get_calibration, list_calibrations
from r2mri.report._calibration_words import is_shipped, origin_text, status_text
from r2mri.report._page_notes import qc_notes, warning_items
from r2mri.report._sr import calibration_status

SITE_TOML = '''schema_version = 2
name = "site-x-3t-se-2026"
title = "Site X 3 T SE R2 curve"
quantity = "R2"
field_strength_t = 3.0
sequence = "SE"
echo_train = "single"
model_family = "mono-exponential R2, noise-corrected"
verified = true
derived = false
[formula]
kind = "linear"
slope = 0.05
intercept = -1.0
[built_on]
fat_corrected = false
fitting_model = "mono-exponential, noise-corrected"
echo_time_first_ms = 6.0
echo_time_last_ms = 18.0
reference_standard = "liver biopsy"
[citation]
authors = "Site X physics group"
year = 2026
title = "Internal validation of 3 T R2-LIC"
journal = "internal validation report SX-2026-01"
'''

#: What a reader must not meet: developer flags, evidence tags, CLI options.
JARGON = ("verified", "primary text", "[R]", "[C]", "[D]", "--calibration", "domain.md", ": yes", ": no")


@pytest.mark.parametrize("name", list_calibrations())
def test_shipped_status_says_what_the_file_says(name):
    cal = get_calibration(name)
    d = cal.to_dict()
    assert is_shipped(d) and origin_text(d) == ""
    text = calibration_status(d)
    assert not any(j in text for j in JARGON), text
    if cal.derived:
        assert text.startswith("Calibration shipped with r2mri: derived, not biopsy-validated"), text
    else:
        assert text.startswith("Published calibration shipped with r2mri: "), text
    if cal.verified and not cal.derived:
        assert text.endswith("formula checked against its cited source")
    else:
        assert text.endswith(cal.reader_status)  # the file's plain status, e.g. "formula as widely quoted; ..."
    assert "--" not in cal.reader_status  # the page shows it: no option names


def test_site_curve_is_named_with_its_file_on_page_and_sr(tmp_path):
    path = tmp_path / "site-x.toml"
    path.write_text(SITE_TOML)
    d = {**get_calibration(path).to_dict(), "citation_text": "Site X physics group. Internal validation."}
    assert not is_shipped(d)
    assert status_text(d) == ("Site calibration site-x-3t-se-2026 (file site-x.toml): formula checked against "
                              "its cited source")
    assert origin_text(d) == "site calibration, file site-x.toml"
    notes = qc_notes({"calibration": d, "qc": {}, "model": {}, "roi": {}}, lambda v, *a: str(v), lambda v: v)
    assert notes[2].startswith("Calibration: site-x-3t-se-2026 (site calibration, file site-x.toml; formula "
                               "checked against its source); no calibrated range")
    assert str(tmp_path) not in " ".join(notes)  # the file's folder is not printed


def test_3t_site_curve_is_not_followed_by_the_advice_to_choose_one(tmp_path):
    path = tmp_path / "site-x.toml"
    path.write_text(SITE_TOML)
    d = get_calibration(path).to_dict()
    finding = {"severity": "warning", "code": "field-strength-3t",
               "message": "3 T: no biopsy-validated spin-echo R2-LIC calibration is published for 3 T; ..."}
    rep = {"warnings": [], "calibration": d, "qc": {"protocol_findings": [finding]}}
    assert covered_protocol_codes(d) == {"field-strength-3t"}
    assert warning_items(rep) == []
    # a 1.5 T curve (not possible at 3 T without an error, but the rule is per curve) keeps it
    rep15 = {**rep, "calibration": get_calibration("st-pierre-2005").to_dict()}
    assert [t for _, t in warning_items(rep15)] == [f"protocol warning: field-strength-3t: {finding['message']}"]


def test_report_json_says_shipped(tmp_path):
    """report.json's calibration block carries ``shipped`` (a PACS or audit reader need not
    compare paths)."""
    from types import SimpleNamespace as NS

    from r2mri.report._json import _calibration_block

    assert _calibration_block(NS(calibration=get_calibration("st-pierre-2005")))["shipped"] is True
    path = tmp_path / "site-x.toml"
    path.write_text(SITE_TOML)
    block = _calibration_block(NS(calibration=get_calibration(path)))
    assert block["shipped"] is False and Path(block["source"]).name == "site-x.toml"
