"""``r2mri analyze`` prints its warnings in the page's order: the ones that change the reading first."""

from __future__ import annotations

from r2mri.commands.analyze import warning_lines


def test_cli_warnings_follow_the_page_order():
    # the order report.json held for a uniform 30 mg/g liver at SNR 20 (8 channels), where the
    # terminal printed the ROI fallback WARNING last and the page printed it second
    rep = {"warnings": [
        "calibration st-pierre-2005: formula not verified against the primary text",
        "qc: 43.4 % of ROI voxel LIC values outside the calibrated range",
        "headline: the 95 % interval is widened to 29.28-31.24 mg/g",
        "liver ROI: automatic proposal (homogeneous region chosen by size); check it or give a mask",
        "liver ROI: WARNING - the voxel-level proposal failed its checks; check it or give a mask",
    ], "qc": {"protocol_findings": [{"severity": "warning", "code": "late-te", "message": "last TE late"}]}}
    lines = warning_lines(rep)
    assert [ln.split(":", 2)[1].strip() for ln in lines] == [
        "headline", "liver ROI", "qc", "calibration st-pierre-2005", "protocol warning", "liver ROI"]
    assert lines[1].startswith("warning: liver ROI: WARNING")
    assert lines[-1].startswith("warning: liver ROI: automatic proposal")
    assert all(ln.startswith("warning: ") for ln in lines) and len(lines) == 6  # the protocol finding too
