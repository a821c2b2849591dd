"""The page's warnings and QC notes: every warning, ordered, wrapped to fit.

A radiologist must never miss a warning, so the page prints all of them (report.json's
``warnings`` plus any protocol finding of severity warning or error it does not already
repeat), most important first:

0. warnings that change the reading: headline, heterogeneity, fit quality, an ROI that
   is probably not the liver, protocol errors overridden with ``force`` (and any warning
   whose source is not recognised: an unknown warning is never demoted);
1. the quality of the numbers: ``qc:``, ``noise:``, ``model:`` (but the liver's noise floor
   disagreeing with the air's sigma while the headline is "not corrected", ``sigma_check="widen"``,
   is rank 0: r2mri/_sigma_check.py);
2. protocol and calibration warnings (the calibration is also named in the headline box);
3. reminders: "liver ROI: automatic proposal ... check it".

The warnings and the QC notes share the column beside the statistics table; the page
(:mod:`r2mri.report._page`) asks :func:`plan_column` for the smallest height at the
largest font (7, 6.5 or 6 pt) that holds everything, and shrinks its maps and histogram
rows to make room. Only when even 6 pt does not fit, the lowest-ranked warnings are left
to a continuation page of report.pdf, and the page says how many and where
(``+N more``): the PNG and the DICOM Secondary Capture are the first page only.

Wrapping uses the advance widths of the page's font (DejaVu Sans by default), measured
once per character, so a line never runs into the table or off the page.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["warning_items", "qc_notes", "protocol_notes", "range_text", "plan_column", "plan_row", "continued",
           "draw_column", "draw_lines", "ColumnPlan"]

#: Font sizes tried, largest first (pt); 6 pt is the smallest that prints legibly.
FONT_SIZES = (7.0, 6.5, 6.0)
#: Line pitch as a multiple of the font size.
LINE_PITCH = 1.22
#: Heading size (pt) and the space it takes (multiple of its size).
HEAD_PT, HEAD_PITCH = 8.0, 1.6
_RED = "#b00000"

_READING = ("headline:", "heterogeneity:", "fit quality:", "liver roi: warning", "liver roi: empty",
            "protocol errors overridden")
_QUALITY = ("qc:", "noise:", "model:")
_PROTOCOL = ("protocol:", "protocol ", "calibration ")
_REMINDER = ("liver roi: automatic proposal",)
_ASSUMED = "unknown; assumed"
_S0_TEXTURE = re.compile(r"headline: the liver signal is more textured at fine scale.*(?:may read ~([0-9.]+) % high"
                         r"|was lowered by)")


def warning_rank(text: str) -> int:
    """0 (changes the reading) to 3 (reminder), by the warning's source prefix."""
    t = text.strip().lower()
    m = _S0_TEXTURE.match(t)
    if m:  # fine S0 texture (r2mri/_s0_texture.py): corrected, a quality note; not corrected, a quality note below
        # a 2 % over-read (full-size intervals still held the truth, docs/statistics.md "*Measured with fine S0
        # texture*"), above it changes the reading
        return 1 if m.group(1) is None else (0 if float(m.group(1)) >= 2.0 else 1)
    if t.startswith(_READING):
        return 0
    if t.startswith("calibration ") and _ASSUMED in t:
        # the curve applied on an assumed field, sequence or echo train: if the assumption is
        # wrong, so is the LIC (3 T data read as 1.5 T: 6.04 instead of 3.2 mg/g)
        return 0
    if t.startswith("noise: spatially correlated") and "statistics assume independent voxels" in t:
        # the uncorrected form: on phantoms at lag-1 r 0.79 such an interval covered down to
        # 9/16 and 30 mg/g at SNR 20 read +15 to +26 % (branch corrnoise); analyze writes the
        # corrected form (both headlines carry the correlation: corrfix, gcorr), a quality note
        return 0
    if t.startswith("noise: the liver's noise floor") and "not corrected" in t:
        # the liver's sigma differs from the air's and the headline still uses the air's: at
        # 30 mg/g SNR 20 8 ch a 3 % difference is a 15-20 % error of R2 (r2mri/_sigma_check.py);
        # the corrected form (the default) is a quality note
        return 0
    if t.startswith(_QUALITY):
        return 1
    if t.startswith(_REMINDER):
        return 3
    if t.startswith(_PROTOCOL):
        return 2
    return 0  # not recognised: shown with the most important


def warning_items(rep: dict) -> list[tuple[int, str]]:
    """All warnings of ``rep`` as (rank, text), most important first (stable within a rank).

    Protocol findings of severity warning or error that report.json's ``warnings`` does
    not already repeat (``"protocol: <code>: <message>"``) are added as such, except those
    the calibration's own warning already makes
    (:func:`r2mri.calibration.covered_protocol_codes`: a derived 3 T bridge is warned once).

    Examples
    --------
    >>> rep = {"warnings": ["calibration c: DERIVED", "heterogeneity: WARNING - patchy"],
    ...        "qc": {"protocol_findings": [{"severity": "warning", "code": "x", "message": "late TE"}]}}
    >>> [r for r, _ in warning_items(rep)]
    [0, 2, 2]
    """
    from ..calibration import covered_protocol_codes

    texts = [str(w) for w in (rep.get("warnings") or []) if str(w).strip()]
    covered = covered_protocol_codes(rep.get("calibration") or {})  # said by the curve's own warning
    for f in (rep.get("qc") or {}).get("protocol_findings") or []:
        if not isinstance(f, dict) or f.get("severity") not in ("warning", "error") or f.get("code") in covered:
            continue
        msg = str(f.get("message") or "")
        if msg and not any(msg in t for t in texts):
            texts.append(f"protocol {f.get('severity')}: {f.get('code')}: {msg}")
    ranked = [(warning_rank(t), i, t) for i, t in enumerate(texts)]
    return [(r, t) for r, _, t in sorted(ranked)]


def range_text(cal: dict) -> str:
    """What the calibration's valid LIC range is, or that its sources state none.

    Examples
    --------
    >>> range_text({"range": {"lic_min_mg_per_g": 0.3, "lic_max_mg_per_g": 42.7}})
    'calibrated range 0.3–42.7 mg/g'
    >>> range_text({"range": {}})
    'no calibrated range stated in its sources: LIC not checked for extrapolation'
    """
    rng = cal.get("range") or {}
    lo, hi = rng.get("lic_min_mg_per_g"), rng.get("lic_max_mg_per_g")
    if lo is not None and hi is not None:
        return f"calibrated range {float(lo):.1f}\u2013{float(hi):.1f} mg/g"
    if hi is not None:
        return f"calibrated up to {float(hi):.1f} mg/g (no lower limit stated)"
    if lo is not None:
        return f"calibrated from {float(lo):.1f} mg/g (no upper limit stated)"
    return "no calibrated range stated in its sources: LIC not checked for extrapolation"


def _has_range(cal: dict) -> bool:
    rng = cal.get("range") or {}
    return rng.get("lic_min_mg_per_g") is not None or rng.get("lic_max_mg_per_g") is not None


def _checked_text(cal: dict) -> str:
    """" (formula checked against its source)" for a verified curve; nothing for the others,
    whose status the headline box's label and a warning already say in plain words.

    Examples
    --------
    >>> _checked_text({"verified": True, "derived": False}), _checked_text({"verified": False})
    (' (formula checked against its source)', '')
    """
    return " (formula checked against its source)" if cal.get("verified") and not cal.get("derived") else ""


def _origin_and_checked(cal: dict) -> str:
    """" (site calibration, file X.toml; formula checked against its source)" and the like:
    a site curve is named as such, a verified one said to be checked.

    Examples
    --------
    >>> _origin_and_checked({"shipped": False, "source": "/a/b/site.toml", "verified": True})
    ' (site calibration, file site.toml; formula checked against its source)'
    >>> _origin_and_checked({"shipped": True, "verified": False})
    ''
    """
    from ._calibration_words import origin_text

    parts = [p for p in (origin_text(cal), _checked_text(cal).strip(" ()")) if p]
    return f" ({'; '.join(parts)})" if parts else ""


def qc_notes(rep: dict, fmt: Any, pct: Any) -> list[str]:
    """The QC and calibration lines (not warnings): model and noise, floor/failures/
    extrapolation, calibration with its range and citation, ROI method. ``fmt`` and
    ``pct`` are the page's number formatters."""
    qc = rep.get("qc") or {}
    cal = rep.get("calibration") or {}
    roi_b = rep.get("roi") or {}
    fails = qc.get("fit_failures")
    if isinstance(fails, dict):
        fail_txt = fmt(100 * fails["fraction"], 1, "%") if fails.get("fraction") is not None else "n/a"
    elif isinstance(fails, int) and not isinstance(fails, bool):
        fail_txt = f"{int(fails)} voxels"  # a count, not a measurement
    else:
        fail_txt = fmt(fails)
    extrap = (fmt(pct(qc.get("extrapolated_fraction")), 1, "%") if _has_range(cal)
              else "not checked (no range)")
    notes = [
        f"Model: {(rep.get('model') or {}).get('name')}; noise \u03c3 {fmt(qc.get('noise_sigma'), 2)}"
        f" ({qc.get('noise_coils') or 1} ch, {qc.get('noise_method') or 'given'})",
        f"At noise floor: {fmt(pct(qc.get('fraction_at_noise_floor')), 1, '%')}; fit failures: {fail_txt}; "
        f"extrapolated: {extrap}",
        f"Calibration: {cal.get('name')}{_origin_and_checked(cal)}; {range_text(cal)}",
        f"{cal.get('citation_text') or ''}",
        f"ROI: {roi_b.get('method') or 'n/a'}{' (a proposal: check it)' if roi_b.get('automatic') else ''}",
    ]
    return [n for n in notes if n]


def protocol_notes(rep: dict) -> list[str]:
    """The protocol findings that are not warnings (severity info), one line each."""
    return [f"Protocol {f.get('severity')}: {f.get('message')}"
            for f in (rep.get("qc") or {}).get("protocol_findings") or []
            if isinstance(f, dict) and f.get("severity") not in ("warning", "error")]


# ----------------------------------------------------------------------------- wrapping
@functools.lru_cache(maxsize=4)
def _font(bold: bool):
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    prop = font_manager.FontProperties(weight="bold" if bold else "normal")
    font = FT2Font(font_manager.findfont(prop))
    font.set_size(100.0, 72)  # 100 pt at 72 dpi: advances in 1/64 px = 1/64 pt
    return font


@functools.lru_cache(maxsize=2048)
def _advance_em(char: str, bold: bool) -> float:
    from matplotlib import ft2font

    # LoadFlags from matplotlib 3.10 (the module constant is deprecated there)
    flags = ft2font.LoadFlags.NO_HINTING if hasattr(ft2font, "LoadFlags") else ft2font.LOAD_NO_HINTING
    font = _font(bold)
    try:
        glyph = font.load_char(ord(char), flags=flags)
    except (RuntimeError, ValueError):  # noqa: PERF203 - a glyph the font lacks
        return 1.0
    return glyph.linearHoriAdvance / 65536.0 / 100.0


def text_width_pt(text: str, size: float, bold: bool = False) -> float:
    """Width of ``text`` in points at ``size`` pt (advance widths, no kerning)."""
    return size * sum(_advance_em(c, bold) for c in text)


def wrap_pt(text: str, width_pt: float, size: float, *, indent: str = "   ", bold: bool = False) -> list[str]:
    """Greedy word wrap of ``text`` into lines at most ``width_pt`` wide; continuation
    lines start with ``indent``; a word longer than a line is cut."""
    return list(_wrap(text, width_pt, size, indent, bold))


@functools.lru_cache(maxsize=1024)
def _wrap(text: str, width_pt: float, size: float, indent: str, bold: bool) -> tuple[str, ...]:
    words = re.split(r" +", text.strip())
    space = text_width_pt(" ", size, bold)
    lines: list[str] = []
    cur, cur_w = "", 0.0
    for w in words:
        ww = text_width_pt(w, size, bold)
        if cur and cur_w + space + ww <= width_pt:
            cur, cur_w = cur + " " + w, cur_w + space + ww
            continue
        if cur:
            lines.append(cur)
        cur = (indent if lines or cur else "") + w
        cur_w = text_width_pt(cur, size, bold)
        while cur_w > width_pt and len(cur) > 1:  # one word wider than the line: cut it
            n = max(1, int(len(cur) * width_pt / cur_w) - 1)
            lines.append(cur[:n])
            cur = indent + cur[n:]
            cur_w = text_width_pt(cur, size, bold)
    if cur:
        lines.append(cur)
    return tuple(lines)


# ------------------------------------------------------------------------------ layout
@dataclass
class ColumnPlan:
    """What the warnings/QC column draws: font size, the lines (text, colour), height."""

    size: float
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, text, colour)
    height_in: float = 0.0
    n_warnings: int = 0
    n_hidden: int = 0
    hidden: list[str] = field(default_factory=list)
    #: line indices where a block starts (a warning, the QC section): the column may
    #: continue under the statistics table there, never inside a block
    breaks: list[int] = field(default_factory=list)
    #: lines[:split] beside the table, lines[split:] under it (None: all beside it)
    split: int | None = None
    #: height of the page's statistics row this plan was fitted to (inches)
    row_in: float = 0.0


def page_text(text: str) -> str:
    """``text`` as printed on the page: the ASCII unit ``s^-1`` of report.json warnings as
    ``s\u207b\u00b9``, and a protocol finding without its code.

    The page writes rates in s\u207b\u00b9 everywhere else (headline, table, decay plot).
    The finding's code (``echo-times-not-ferriscan``) is for report.json and the docs'
    tables; the radiologist reads its message.

    Examples
    --------
    >>> page_text("R2 only bounded by the first echo, 211-395 s^-1")
    'R2 only bounded by the first echo, 211-395 s\u207b\u00b9'
    >>> page_text("protocol error: too-few-echoes: 2 echoes")
    'protocol error: 2 echoes'
    """
    text = re.sub(r"^(protocol(?: warning| error)?): [a-z0-9]+(?:-[a-z0-9]+)+: ", r"\1: ", text)
    return re.sub(r"\bs\^-1\b", "s\u207b\u00b9", text)


def _build(items, notes, width_pt, size, keep: int | None = None) -> ColumnPlan:
    items = [(rank, page_text(t)) for rank, t in items]
    notes = [page_text(t) for t in notes]
    n = len(items)
    shown = items if keep is None else items[:keep]
    plan = ColumnPlan(size=size, n_warnings=n, n_hidden=n - len(shown),
                      hidden=[t for _, t in items[len(shown):]])
    if n:
        red = any(rank == 0 for rank, _ in items)
        head = f"Warnings ({n}" + ("; red ones change the reading)" if red else ", most important first)")
        for ln in wrap_pt(head, width_pt, HEAD_PT, indent="", bold=True):
            plan.lines.append(("head", ln, _RED))
        for i, (rank, text) in enumerate(shown):
            colour = _RED if rank == 0 else "#000000"
            if i:  # the heading stays with the first warning
                plan.breaks.append(len(plan.lines))
            for ln in wrap_pt(f"{i + 1}. {text}", width_pt, size):
                plan.lines.append(("line", ln, colour))
        if plan.n_hidden:
            plan.lines.append(("line", f"+{plan.n_hidden} more (lower priority): page 2 of report.pdf "
                               "and report.json", _RED))
        plan.breaks.append(len(plan.lines))
        plan.lines.append(("gap", "", ""))
    plan.lines.append(("head", "QC and calibration", "#000000"))
    for note in notes:  # the QC section moves as one block
        for ln in wrap_pt(note, width_pt, size):
            plan.lines.append(("line", ln, "#000000"))
    plan.height_in = _height_in(plan.lines, size)
    return plan


def _height_in(lines, size: float) -> float:
    pt = 0.0
    for kind, _, _ in lines:
        pt += HEAD_PT * HEAD_PITCH if kind == "head" else (0.5 * size if kind == "gap" else size * LINE_PITCH)
    return pt / 72.0


def plan_column(items: list[tuple[int, str]], notes: list[str], width_in: float,
                max_height_in: float, optional: list[str] = ()) -> ColumnPlan:
    """The largest font that fits all warnings and notes in ``max_height_in``; at the
    smallest font, the most important warnings that fit (the rest counted as hidden).

    ``optional`` notes (protocol findings of severity info) go first: at each font size
    they are tried with, then without (one line then says they are in report.json).

    Examples
    --------
    >>> p = plan_column([(0, "heterogeneity: WARNING - patchy")], ["Model: ncchi"], 3.4, 3.0)
    >>> p.size, p.n_hidden, [k for k, _, _ in p.lines]
    (7.0, 0, ['head', 'line', 'gap', 'head', 'line'])
    """
    width_pt = 72.0 * width_in
    optional = list(optional)
    short = notes + ([f"{len(optional)} protocol note(s) (not warnings): see report.json"] if optional else [])
    for size in FONT_SIZES:
        for these in ((notes + optional, short) if optional else (notes,)):
            plan = _build(items, these, width_pt, size)
            if plan.height_in <= max_height_in:
                return plan
    size = FONT_SIZES[-1]
    for keep in range(len(items) - 1, -1, -1):
        plan = _build(items, short, width_pt, size, keep=keep)
        if plan.height_in <= max_height_in or keep == 0:
            return plan
    return plan  # pragma: no cover - the loop always returns


def _split_at(plan: ColumnPlan, right_in: float, left_in: float) -> int | None:
    """The first line under the table when ``right_in`` beside it and ``left_in`` under
    it must hold the plan (at a block boundary, the most beside it); None if impossible."""
    n = len(plan.lines)
    if plan.height_in <= right_in:
        return n
    for b in sorted(plan.breaks, reverse=True):
        if _height_in(plan.lines[:b], plan.size) > right_in:
            continue
        return b if _height_in(continued(plan, b), plan.size) <= left_in else None
    return None


def continued(plan: ColumnPlan, b: int) -> list[tuple[str, str, str]]:
    """The lines from ``b`` on as drawn under the table: a leading gap dropped, and a
    "Warnings (continued)" heading when they start inside the warnings."""
    rest = plan.lines[b:]
    if rest and rest[0][0] == "gap":
        return rest[1:]
    return [("head", "Warnings (continued)", _RED)] + rest


def plan_row(items: list[tuple[int, str]], notes: list[str], width_in: float, table_in: float,
             max_row_in: float, optional: list[str] = (), *, rise_in: float = 0.0,
             gap_in: float = 0.2, optional_max_in: float | None = None) -> ColumnPlan:
    """Fit warnings and notes beside the statistics table (``table_in`` tall; the column
    starts ``rise_in`` above the row) and, when they need more, under it (after
    ``gap_in``): the smallest row height up to ``max_row_in`` at the largest font, as in
    :func:`plan_column` (optional notes dropped first, then the lowest-ranked warnings
    at the smallest font). ``optional`` notes are kept only within ``optional_max_in``
    (the row height that leaves the maps their usual size): they never shrink the maps.
    """
    width_pt = 72.0 * width_in
    optional = list(optional)
    short = notes + ([f"{len(optional)} protocol note(s) (not warnings): see report.json"] if optional else [])
    steps = [table_in + 0.02 * i for i in range(int(max(0.0, max_row_in - table_in) / 0.02) + 1)]

    def fit(plan, limit=None):
        for h in steps:
            if limit is not None and h > limit:
                break
            b = _split_at(plan, h + rise_in, h - table_in - gap_in)
            if b is not None:
                plan.split = None if b >= len(plan.lines) else b
                plan.row_in = h
                return plan
        return None

    for size in FONT_SIZES:
        variants = [(notes + optional, optional_max_in), (short, None)] if optional else [(notes, None)]
        for these, limit in variants:
            plan = fit(_build(items, these, width_pt, size), limit)
            if plan is not None:
                return plan
    for keep in range(len(items) - 1, -1, -1):
        plan = fit(_build(items, short, width_pt, FONT_SIZES[-1], keep=keep))
        if plan is not None:
            return plan
    plan = _build(items, short, width_pt, FONT_SIZES[-1], keep=0)  # notes alone too tall: clip
    plan.row_in = max(table_in, max_row_in)
    return plan


def draw_lines(ax, lines, size: float, *, start_pt: float = 0.0, x: float = 0.0) -> None:
    """Draw ``lines`` into ``ax`` from ``start_pt`` below its top (negative: above), one
    text per line at a fixed pitch in points, so the height measured is the height drawn."""
    from matplotlib.transforms import ScaledTranslation

    y_pt = start_pt
    for i, (kind, text, colour) in enumerate(lines):
        if kind == "gap":
            y_pt += 0.5 * size if i else 0.0
            continue
        step = HEAD_PT * HEAD_PITCH if kind == "head" else size * LINE_PITCH
        at = ax.transAxes + ScaledTranslation(0, -y_pt / 72.0, ax.figure.dpi_scale_trans)
        if kind == "head":
            ax.text(x, 1.0, text, fontsize=HEAD_PT, fontweight="bold", va="top", color=colour, transform=at)
        else:
            ax.text(x, 1.0, text, fontsize=size, va="top", color=colour, transform=at)
        y_pt += step


def draw_column(ax, plan: ColumnPlan, *, rise_pt: float = 0.0) -> None:
    """Draw all of ``plan`` into ``ax`` (axis off) from ``rise_pt`` above its top, one text
    per line at a fixed pitch in points, so the height :func:`plan_column` measured is the
    height drawn."""
    from matplotlib.transforms import ScaledTranslation

    ax.axis("off")
    y_pt = -rise_pt
    for kind, text, colour in plan.lines:
        if kind == "gap":
            y_pt += 0.5 * plan.size
            continue
        step = HEAD_PT * HEAD_PITCH if kind == "head" else plan.size * LINE_PITCH
        at = ax.transAxes + ScaledTranslation(0, -y_pt / 72.0, ax.figure.dpi_scale_trans)
        if kind == "head":
            ax.text(0, 1.0, text, fontsize=HEAD_PT, fontweight="bold", va="top", color=colour, transform=at)
        else:
            ax.text(0, 1.0, text, fontsize=plan.size, va="top", color=colour, transform=at)
        y_pt += step


def continuation_page(rep: dict, items: list[tuple[int, str]], notes: list[str]):
    """A second A4 page listing every warning and note (when page 1 could not hold them)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 11.69), dpi=100)
    ax = fig.add_axes((0.075, 0.05, 0.875, 0.89))
    fig.text(0.075, 0.97, "Liver iron report, page 2: all warnings and QC notes", fontsize=12,
             fontweight="bold", va="top")
    plan = _build(items, notes, 72.0 * 0.875 * 8.27, 8.0)
    draw_column(ax, plan)
    fig.text(0.5, 0.02, rep.get("disclaimer", ""), fontsize=7.5, ha="center", style="italic", color="#8a1c1c")
    return fig


# --------------------------------------------------------------------- page geometry
#: The A4 page's usable height (figure 11.69 in, top 0.975, bottom 0.035) and width
#: (left 0.075, right 0.95), inches; the page's GridSpec uses the same fractions.
PAGE_H_IN, PAGE_W_IN = 11.69 * (0.975 - 0.035), 8.27 * (0.95 - 0.075)
#: Gaps between the page's rows, inches: header | box | maps (slice titles above) |
#: histogram and decay (titles above) | statistics (axis labels and titles between) |
#: disclaimer.
GAPS_IN = (0.22, 0.34, 0.36, 0.66, 0.22)
#: Fixed rows (header, disclaimer) and the flexible ones (maps, histogram/decay:
#: their usual and smallest heights), inches.
HEADER_IN, DISCLAIMER_IN = 0.66, 0.36
MAPS_IN, MAPS_MIN_IN, HIST_IN, HIST_MIN_IN, HIST_MAX_IN = 1.8, 1.3, 1.92, 1.3, 2.4
#: The warnings/QC column starts level with the statistics table's title, this far above
#: the row's top (points).
TITLE_RISE_PT = 13.0
#: Space between the statistics table and what continues under it (points).
TABLE_GAP_PT = 14.0


def page_rows(box_in: float, table_rows: int, table_pt: float, items, notes, optional=()):
    """Heights (inches) of the page's 11 GridSpec rows (header, gap, headline box, gap,
    maps, gap, histogram, gap, statistics, gap, disclaimer) and the column's plan.

    The statistics row holds the table (``table_rows`` rows at ``table_pt`` pitch) and,
    beside it, the warnings and QC notes, which continue under the table when they need
    more (:func:`plan_row`); the maps and histogram rows shrink (down to their minimum)
    before the font does.
    """
    fixed = HEADER_IN + box_in + DISCLAIMER_IN + sum(GAPS_IN)
    table_in = (3.4 + table_rows * table_pt) / 72.0
    row_max = PAGE_H_IN - fixed - MAPS_MIN_IN - HIST_MIN_IN
    width_in = 0.97 * PAGE_W_IN * 2.45 / (4 + 3 * 0.45)  # two of four columns, wspace 0.45
    plan = plan_row(items, notes, width_in, table_in, row_max, optional, rise_in=TITLE_RISE_PT / 72.0,
                    gap_in=TABLE_GAP_PT / 72.0, optional_max_in=PAGE_H_IN - fixed - MAPS_IN - HIST_IN)
    row4 = plan.row_in
    room = PAGE_H_IN - fixed - row4
    if room >= MAPS_IN + HIST_IN:
        maps, hist = MAPS_IN, min(room - MAPS_IN, HIST_MAX_IN)
        row4 += room - maps - hist
    else:  # shrink both toward their minimum in proportion
        f = max(0.0, (room - MAPS_MIN_IN - HIST_MIN_IN) / (MAPS_IN + HIST_IN - MAPS_MIN_IN - HIST_MIN_IN))
        maps = MAPS_MIN_IN + f * (MAPS_IN - MAPS_MIN_IN)
        hist = HIST_MIN_IN + f * (HIST_IN - HIST_MIN_IN)
    rows = [HEADER_IN, box_in, maps, hist, row4, DISCLAIMER_IN]
    heights = [rows[0]]
    for gap, row in zip(GAPS_IN, rows[1:]):
        heights += [gap, row]
    return heights, plan
