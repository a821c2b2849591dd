"""One page per patient: LIC over time with 95 % CIs on the clinical category bands."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from .._atomic import atomic_path

__all__ = ["write_patient_page"]

#: Band colours, lowest band first (light, print-friendly; no clinical meaning of their own).
_BAND_COLOURS = ("#e8f5e9", "#fffde7", "#e3f2fd", "#fff3e0", "#ffebee")
_A4_LANDSCAPE_IN = (11.69, 8.27)


#: Lines the caption under the plot holds at 7.5 pt.
_CAPTION_LINES = 18
#: Characters a caption line holds (monospace 7.5 pt across the page).
_WIDTH = 170
_CHANGES_HEAD = "Changes between consecutive exams (* exceeds the measurement variability of the two exams' 95 % CIs):"
_DISCLAIMER = "Research use only; not a medical device. Measurement CIs exclude scan-rescan variability."


def write_patient_page(trend, png: str | Path, pdf: str | Path) -> None:
    """Draw ``trend`` (a :class:`~r2mri.trend.PatientTrend`) to a PNG and a PDF page."""
    fig = patient_figure(trend)
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt)


def caption_lines(trend, max_lines: int = _CAPTION_LINES) -> list[str]:
    """The text under the plot: the changes (when there are two exams or more), every
    warning, the disclaimer. When they do not fit, the oldest changes give way (the page
    says how many, and trend.json has them all); a warning never does.

    Examples
    --------
    >>> from r2mri.trend import PatientTrend
    >>> caption_lines(PatientTrend(subject="P1"))[0][:23]
    'Research use only; not '
    """
    changes = []
    by_id = {e.exam_id: e for e in trend.exams}
    for c in trend.changes:
        ci = "" if c.delta_ci95 is None else f" (95 % CI {c.delta_ci95[0]:+.2f} to {c.delta_ci95[1]:+.2f})"
        changes.append(f"  {c.from_exam} -> {c.to_exam}: {c.delta_mg_per_g:+.2f} mg/g in {c.days} days{ci}"
                       f"{' *' if c.exceeds_variability else ''}; {_category(c.category_from, by_id.get(c.from_exam))}"
                       f" -> {_category(c.category_to, by_id.get(c.to_exam))}")
    import textwrap

    # a warning is wrapped onto as many lines as it needs, never shortened
    tail = [ln for w in trend.warnings for ln in textwrap.wrap(f"Warning: {w}", _WIDTH, subsequent_indent="  ")]
    tail.append(_DISCLAIMER)
    room = max_lines - len(tail) - 1  # the heading
    if changes and len(changes) > room:
        n_left = len(changes) - max(room - 1, 0)
        changes = [f"  ({n_left} earlier change(s) not shown: see trend.json)"] + changes[n_left:]
    head = [_CHANGES_HEAD] + [c if len(c) <= _WIDTH else textwrap.shorten(c, _WIDTH, placeholder=" ...")
                                 for c in changes] if changes else []
    return head + tail



def _category(name: str, exam) -> str:
    """An exam's category, with the thresholds its 95 % CI spans when it spans any."""
    thr = getattr(exam, "ci95_thresholds_mg_per_g", None)
    if not thr:
        return name
    return f"{name} (95 % CI spans {' and '.join(f'{t:g}' for t in thr)} mg/g)"


def patient_figure(trend):
    """The page's matplotlib Figure (not drawn to any screen)."""
    from matplotlib.figure import Figure

    data = trend.plot_data()
    dates = [_dt.date.fromisoformat(d) for d in data["dates"]]
    lic = data["lic_mg_per_g"]
    fig = Figure(figsize=_A4_LANDSCAPE_IN, dpi=100)
    ax = fig.add_axes((0.08, 0.36, 0.7, 0.54))
    top = max([v for v in data["ci_high"] + lic if v is not None] + [1.0]) * 1.15
    for colour, band in zip(_BAND_COLOURS, data["bands"]):
        lo = band["lower_mg_per_g"] or 0.0
        hi = band["upper_mg_per_g"] if band["upper_mg_per_g"] is not None else max(top, lo * 1.2)
        if lo >= top:
            continue
        ax.axhspan(lo, min(hi, top), color=colour, zorder=0)
        ax.text(1.01, (lo + min(hi, top)) / 2, band["label"], transform=ax.get_yaxis_transform(),
                fontsize=7, va="center", wrap=True)
    if dates:
        lows = [v - lo if lo is not None else 0.0 for v, lo in zip(lic, data["ci_low"])]
        highs = [hi - v if hi is not None else 0.0 for v, hi in zip(lic, data["ci_high"])]
        ax.errorbar(dates, lic, yerr=[lows, highs], fmt="o-", color="#1a237e", capsize=4, zorder=3,
                    label="LIC of the mean liver R2, 95 % CI")
        for d, v in zip(dates, lic):
            # two decimals, as the report page: 6.96 printed "7.0" sat on the 7 mg/g threshold
            ax.annotate(f"{v:.2f}", (d, v), textcoords="offset points", xytext=(6, 6), fontsize=8)
        for c, d0, d1, v0, v1 in zip(trend.changes, dates, dates[1:], lic, lic[1:]):
            mark = "*" if c.exceeds_variability else ""
            ax.annotate(f"{c.delta_mg_per_g:+.2f}{mark}", (d0 + (d1 - d0) / 2, (v0 + v1) / 2),
                        textcoords="offset points", xytext=(0, -14), fontsize=8, ha="center", color="#424242")
        ax.legend(loc="upper right", fontsize=8)
        fig.autofmt_xdate()
    ax.set_ylim(0, top)
    ax.set_ylabel("LIC (mg Fe/g dry tissue)")
    ax.set_title(f"Liver iron over time: {trend.subject}", fontsize=13, loc="left")
    text = "\n".join(caption_lines(trend))
    fig.text(0.08, 0.27, text, fontsize=7.5, va="top", family="monospace")
    return fig
