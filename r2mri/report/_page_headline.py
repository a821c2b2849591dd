"""Rows of the page's headline box: where each line sits, and the interval-category line.

The box holds, top to bottom: the LIC (the category label on its right), its 95 % interval
and rate, the liver PDFF (fat-water fits), the line saying which categories the interval
spans (only when it spans a threshold, report.json ``category.ci95_note``), the
heterogeneity flag (when raised) and the calibration.
"""

from __future__ import annotations

from typing import Any

__all__ = ["headline_rows", "interval_note"]

#: Box height (grid ratio before the page's factor 1.2) and row centres (fractions of the
#: box, from its bottom) for the lic, ci, pdff, het and cal rows; 0 = row not drawn.
#: Keyed by (pdff shown, heterogeneity flag shown). Hand-placed on the rendered page.
_LAYOUTS = {
    (True, True): (1.05, (0.85, 0.65, 0.46, 0.27, 0.09)),
    (True, False): (0.95, (0.81, 0.56, 0.33, 0, 0.10)),
    (False, True): (0.9, (0.79, 0.52, 0, 0.31, 0.11)),
    (False, False): (0.72, (0.76, 0.42, 0, 0, 0.13)),
}
#: Height one more text row takes in the box (same units as the box height): the spacing
#: of the CI and heterogeneity rows of the (False, True) layout, (0.52 - 0.31) x 0.9.
_ROW = 0.19


def interval_note(rep: dict) -> str | None:
    """The plain line on the categories the headline's 95 % interval spans, or ``None``."""
    cat = rep.get("category")
    note = cat.get("ci95_note") if isinstance(cat, dict) else None
    return str(note) if note else None


def headline_rows(pdff: bool, het: bool, note: bool) -> tuple[float, dict[str, float]]:
    """Box height and the row centres ``{lic, ci, pdff, het, cal, note}`` of the headline box.

    Without the interval note the layouts are the hand-placed ones; with it, one row is
    added right under the CI line (the interval it speaks of): the rows above move up by
    one row height, the rows below keep their place.

    Examples
    --------
    >>> h, y = headline_rows(False, False, True)
    >>> round(h, 2), y["lic"] > y["ci"] > y["note"] > y["cal"]
    (0.91, True)
    """
    box_h, ys = _LAYOUTS[(bool(pdff), bool(het))]
    y = dict(zip(("lic", "ci", "pdff", "het", "cal"), ys))
    if not note:
        y["note"] = 0.0
        return box_h, y
    height = box_h + _ROW
    out: dict[str, Any] = {}
    for key, frac in y.items():
        if not frac:
            out[key] = 0.0
            continue
        absolute = frac * box_h + (_ROW if key in ("lic", "ci") else 0.0)
        out[key] = absolute / height
    out["note"] = y["ci"] * box_h / height  # where the CI row was
    return height, out
