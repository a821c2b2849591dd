"""The report page prints every warning (most important first) and the calibration's real range.

The page used to print the first four warnings only, so calibration and protocol lines
could push the heterogeneity, ROI or headline warnings off the page; and a curve without
a calibrated range read "range n/a-n/a".
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from r2mri.report._page_notes import (  # noqa: E402
    warning_rank,
    FONT_SIZES,
    page_text,
    plan_column,
    range_text,
    warning_items,
    wrap_pt,
    text_width_pt,
)

#: Warnings as the pipeline writes them (copied from real runs: heterogeneous phantom at
#: SNR 20, the real 3 T liver of benchmarks/real_liver.py, a complex fat-water fit).
REAL_EXTRA = [
    "heterogeneity: WARNING - the single headline hides clinically different regions: 37 % of the liver ROI "
    "has an LIC more than 15 % beyond the headline's category, Increased risk of complications (7-15 mg/g); "
    "the voxel R2 varies with a coefficient of variation of 0.269 (95 % CI 0.259-0.289) after noise removal, "
    "above 0.145, the variation at which 10 % of a liver centred in the chelation target range (3.2-7 mg/g) "
    "lies outside it",
    "liver ROI: WARNING - the automatic region (30 ml) covers 8% of the body cross-section in its slices, "
    "outside the plausible 10%-60% for a liver; check it or give a mask",
    "fit quality: WARNING - the fatwater fits leave residuals 5.1 x the noise sigma in the ROI (median over "
    "1873 voxels above the noise floor): the model does not describe these data; R2* may be biased",
]


def _column_warnings(fig) -> tuple[list[str], list[float], list]:
    """The warnings drawn on the page (wrapped lines joined; beside the statistics table,
    then continued under it), their font sizes, the axes they are in."""
    parts = []  # (is the continuation, lines, sizes, ax)
    for ax in fig.axes:
        lines, sizes, on, cont = [], [], False, False
        for t in ax.texts:
            s = t.get_text()
            if s.startswith("Warnings ("):
                on, cont = True, s.startswith("Warnings (continued)")
                continue
            if s == "QC and calibration":
                on = False
            if not on or t.get_fontweight() == "bold":  # headings (maybe wrapped)
                continue
            sizes.append(t.get_fontsize())
            if s.startswith("   ") and lines:
                lines[-1] += " " + s.strip()
            else:
                lines.append(s)
        if lines:
            parts.append((cont, lines, sizes, ax))
    parts.sort(key=lambda p: p[0])
    return ([ln for p in parts for ln in p[1]], [z for p in parts for z in p[2]], [p[3] for p in parts])


@pytest.fixture(scope="module")
def real_run():
    """A real analysis with many warnings: heterogeneous liver at 3 T (derived bridge),
    off-protocol echo times, SNR 15, very high iron (about 1.2 s of CPU)."""
    import r2mri
    from r2mri.phantom import generate

    ph = generate("heterogeneous-focal-1.5t", seed=3, snr=15, lic_mg_per_g=50.0, field_strength_t=3.0,
                  calibration="st-pierre-2005-3t-scaled", echo_times_ms=[3.0, 5.0, 7.0, 9.0, 11.0, 13.0],
                  matrix=(96, 96), pixel_mm=4.0, n_slices=4, lic_log_sd=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return r2mri.analyze(ph.image, threads=1, calibration="st-pierre-2005-3t-scaled", force=True)


def test_ten_real_warnings_all_on_the_page_in_order(real_run):
    from r2mri.report import report_dict
    from r2mri.report._page import render_page
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rep = report_dict(real_run)
    assert len(rep["warnings"]) >= 6  # the pipeline's own (protocol, calibration x3, qc, ROI)
    rep["warnings"] = rep["warnings"] + REAL_EXTRA
    n = len(rep["warnings"])
    fig = render_page(real_run, rep)
    drawn, sizes, axes = _column_warnings(fig)
    assert len(drawn) == n
    # every warning, word for word, numbered in order of importance
    expect = [t for _, t in warning_items(rep)]
    assert sorted(expect) == sorted(rep["warnings"])
    # (the ASCII unit s^-1 of report.json printed as the page's s\u207b\u00b9: page_text)
    assert drawn == [f"{i + 1}. {page_text(t)}" for i, t in enumerate(expect)]
    # those that change the reading (headline, heterogeneity, ROI WARNING, fit quality) come first
    red = [t for t in rep["warnings"] if warning_rank(t) == 0]
    assert len(red) >= 2
    assert {d.split(". ", 1)[1] for d in drawn[:len(red)]} == {page_text(t) for t in red}
    assert min(sizes) >= FONT_SIZES[-1]
    # nothing runs off the page or into the disclaimer below
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    page_w, _ = fig.bbox.width, fig.bbox.height
    boxes = [t.get_window_extent(r) for ax in axes for t in ax.texts]
    assert max(b.x1 for b in boxes) <= page_w * 0.99
    disclaimer = [t for a in fig.axes for t in a.texts if t.get_text().startswith("Research use only")]
    assert disclaimer and min(b.y0 for b in boxes) > disclaimer[0].get_window_extent(r).y1


def test_page_states_the_calibration_range_or_that_there_is_none():
    from r2mri.calibration import get_calibration

    def note(name):
        return range_text(get_calibration(name).to_dict())

    assert note("st-pierre-2005") == "calibrated range 0.3\u201342.7 mg/g"
    assert note("st-pierre-2005-3t-scaled") == "calibrated range 0.3\u201342.7 mg/g"
    assert note("garbowski-2014-t2star") == "calibrated up to 42.0 mg/g (no lower limit stated)"
    for name in ("hernando-2022-r2star-3t-scaled", "hernando-2022-r2star-1.5t", "hankins-2009-r2star"):
        assert note(name).startswith("no calibrated range stated in its sources")


def test_no_range_means_extrapolation_is_not_checked_on_the_page():
    """The 3 T R2* bridge has no range: the page must not read "range n/a-n/a" nor
    "extrapolated: 0.0 %" (a number nothing was checked against)."""
    from _report_fake import fake_result

    from r2mri.calibration import get_calibration
    from r2mri.report import report_dict
    from r2mri.report._page import render_page

    res = fake_result()
    res.calibration = get_calibration("hernando-2022-r2star-3t-scaled")
    rep = report_dict(res)
    text = " ".join(t.get_text() for ax in render_page(res, rep).axes for t in ax.texts)
    text = " ".join(text.split())
    assert "n/a\u2013n/a" not in text and "n/a-n/a" not in text
    assert "no calibrated range stated in its sources" in text
    assert "extrapolated: not checked (no range)" in text
    # report.json: null with its reason, not a 0 % that nothing was checked against
    assert rep["qc"]["extrapolated_fraction"] is None
    assert "no calibrated LIC range" in rep["null_reasons"]["qc.extrapolated_fraction"]
    assert rep["calibration"]["range"]["lic_max_mg_per_g"] is None
    assert "not stated" in rep["null_reasons"]["calibration.range.lic_max_mg_per_g"]


def test_too_many_warnings_go_to_page_two_and_page_one_says_so(tmp_path):
    from _report_fake import fake_result

    from r2mri.report import report_dict
    from r2mri.report._page import render_page, write_page

    res = fake_result()
    rep = report_dict(res)
    rep["warnings"] = [f"qc: low-priority warning {i} " + "padding words " * 12 for i in range(40)]
    rep["warnings"].insert(25, REAL_EXTRA[0])  # an important one late in the list
    fig = render_page(res, rep)
    drawn, _, _ = _column_warnings(fig)
    assert drawn[0] == "1. " + REAL_EXTRA[0]  # still shown, first
    assert drawn[-1].startswith(f"+{41 - (len(drawn) - 1)} more (lower priority): page 2 of report.pdf")
    write_page(res, rep, tmp_path / "report.pdf", None)
    assert _pages(tmp_path / "report.pdf") == 2


def _pages(path: Path) -> int:
    import re

    return len(re.findall(rb"/Type\s*/Page\b(?!s)", path.read_bytes()))


def test_protocol_findings_not_repeated_in_warnings_are_added():
    rep = {"warnings": ["protocol: echo-times-not-ferriscan: TE 3-13 ms"],
           "qc": {"protocol_findings": [
               {"severity": "warning", "code": "echo-times-not-ferriscan", "message": "TE 3-13 ms"},
               {"severity": "error", "code": "too-few-echoes", "message": "2 echoes"},
               {"severity": "info", "code": "sequence-unknown", "message": "assumed SE"}]}}
    texts = [t for _, t in warning_items(rep)]
    assert texts == ["protocol: echo-times-not-ferriscan: TE 3-13 ms", "protocol error: too-few-echoes: 2 echoes"]


def test_wrap_never_exceeds_the_width():
    text = REAL_EXTRA[0] + " DERIVED, NOT BIOPSY-VALIDATED " * 4 + "x" * 200
    for size in FONT_SIZES:
        lines = wrap_pt(text, 200.0, size)
        assert max(text_width_pt(ln, size) for ln in lines) <= 200.0
        assert " ".join(ln.strip() for ln in lines).replace(" ", "") == text.replace(" ", "")


def test_plan_prefers_the_largest_font_that_fits():
    items = [(0, "heterogeneity: WARNING - " + "word " * 30)] * 3
    big = plan_column(items, ["Model: ncchi"], 3.3, 10.0)
    small = plan_column(items, ["Model: ncchi"], 3.3, big.height_in * 0.9)
    assert big.size == FONT_SIZES[0] and small.size < big.size and small.n_hidden == 0
    assert np.isclose(big.height_in, sum(
        {"head": 8.0 * 1.6, "gap": 0.5 * big.size}.get(k, big.size * 1.22) for k, _, _ in big.lines) / 72)


_BYDDER = Path(__import__("os").environ.get("R2MRI_REALDATA", "/work/realdata")) / "pdff" / "liver_12echo_bipolar.mat"


@pytest.mark.skipif(not _BYDDER.is_file(), reason="real data (benchmarks/real_liver.py) not present")
def test_real_3t_liver_roi_warning_reaches_the_page():
    """The real 3 T liver of benchmarks/real_liver.py: its 7th warning ("liver ROI: WARNING -
    ... covers 8% of the body") was cut by the old first-four rule; now every warning that
    changes the reading is drawn on page 1 ahead of the others (the merged tree's ROI
    differs on this liver - the R2* extension adds iron-side tissue, docs/statistics.md -
    and warns on it in its place; lower-priority warnings may go to "+N more")."""
    from r2mri.report._page_notes import warning_rank

    import r2mri
    from benchmarks.real_liver import image, load_bydder

    from r2mri.report import report_dict
    from r2mri.report._page import render_page

    d, te, b0 = load_bydder(_BYDDER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = r2mri.analyze(image(d, te, b0, 1.5), threads=1, calibration="hernando-2022-r2star-3t-scaled",
                            noise_sigma=0.5, coils=1)
    rep = report_dict(res)
    drawn, _, _ = _column_warnings(render_page(res, rep))
    reading = [w for w in rep["warnings"] if warning_rank(w) == 0]
    # 6 warnings since the derived bridge is warned once (it was 3 lines saying the same)
    assert len(rep["warnings"]) >= 6 and len(reading) >= 2
    assert len(drawn) >= len(reading)
    for i, w in enumerate(reading):  # all drawn, first, whatever else is hidden
        assert drawn[i].startswith(f"{i + 1}. {w[:40]}")
    assert any(w.startswith("liver ROI: WARNING") for w in reading)


def test_many_warnings_continue_under_the_table_without_touching_it():
    """16 warnings: beside the statistics table and, continued, under it, all on page 1;
    the continuation starts below the table's last row."""
    from _report_fake import fake_result
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from r2mri.report import report_dict
    from r2mri.report._page import render_page

    res = fake_result()
    rep = report_dict(res)
    rep["warnings"] = REAL_EXTRA * 2 + [f"qc: warning {i} " + "padding words " * 10 for i in range(10)]
    fig = render_page(res, rep)
    drawn, _, axes = _column_warnings(fig)
    assert len(drawn) == 16 and fig._r2mri_column[0].n_hidden == 0
    assert len(axes) == 2  # beside the table, and under it
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    table_ax = axes[1]
    cont = [t for t in table_ax.texts if t.get_text().startswith("Warnings (continued)")][0]
    table_rows = [t for t in table_ax.texts if t.get_fontsize() == 7.5]
    assert cont.get_window_extent(r).y1 < min(t.get_window_extent(r).y0 for t in table_rows)


def test_page_prints_protocol_findings_without_their_code():
    """The code (``echo-times-not-ferriscan``) stays in report.json; the page says the message."""
    rep = {"warnings": ["protocol: echo-times-not-ferriscan: TE 3-13 ms"],
           "qc": {"protocol_findings": [{"severity": "error", "code": "too-few-echoes", "message": "2 echoes"}]}}
    plan = plan_column(warning_items(rep), ["Model: ncchi"], 3.3, 10.0)
    text = " ".join(ln for _, ln, _ in plan.lines)
    assert "1. protocol: TE 3-13 ms" in text and "2. protocol error: 2 echoes" in text
    assert "echo-times-not-ferriscan" not in text and "too-few-echoes" not in text


def test_correlated_noise_warning_is_red_other_noise_notes_are_not():
    """The correlated-noise warning changes how the interval reads where the statistics do not
    carry it (phantoms at lag-1 r 0.79: coverage down to 9/16), so it ranks with the reading;
    where they carry it, and other noise notes, it is a quality note."""
    corr = ("noise: spatially correlated (lag-1 r = 0.64 in the air, an interpolated or filtered "
            "reconstruction; a 2 x 2 mean's variance x2.7): the statistics assume independent voxels")
    assert warning_rank(corr) == 0
    carried = ("noise: spatially correlated (lag-1 r = 0.64 in the air, an interpolated or filtered "
               "reconstruction; a 2 x 2 mean's variance x2.7): the headline's tile statistics count each "
               "tile's noise with this correlation, which widens the 95 % interval")
    assert warning_rank(carried) == 1
    assert warning_rank("noise: sigma estimated from 412 air voxels only") == 1
