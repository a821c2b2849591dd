"""Which clinical LIC categories the headline's 95 % interval spans.

The headline's own category is decided by :func:`r2mri.calibration.lic_category` on the
headline value alone, each band upper-inclusive (<= 1.8 normal, 1.8-3.2 mildly raised,
3.2-7.0 chelation target range, 7-15 increased risk, > 15 greatly increased risk;
thresholds: St Pierre TG et al., Blood 2005;105:855; clinical meaning after Olivieri NF &
Brittenham GM, Blood 1997; domain.md section 4). A headline of 3.20 mg/g
with a 95 % interval of 3.19-3.21 is filed "mildly raised" by that rule, but the
measurement cannot tell mildly raised from the chelation target range. This module says
so, without changing the headline's category.

The rule [D]: each end of the interval is filed by the same upper-inclusive rule as the
headline, and the interval spans every category from its low end's to its high end's. A
threshold ``t`` therefore lies "in" the interval ``[lo, hi]`` when ``lo <= t < hi``:

- ``[3.0, 3.2]`` (touching 3.2 from below): every value is <= 3.2, all mildly raised, no note;
- ``[3.2, 3.4]`` (touching 3.2 from above): its low end 3.2 is mildly raised, the rest target
  range: the note is given;
- ``[3.19, 3.21]``: the note is given.
"""

from __future__ import annotations

import math
from typing import Any

from .calibration import CATEGORIES, THRESHOLDS_MG_PER_G, lic_category

__all__ = ["interval_categories", "SHORT_LABELS"]

#: Short plain names of the bands for one line of text (the meanings of
#: :data:`r2mri.calibration.CATEGORIES`' labels without their ranges; domain.md section 4).
SHORT_LABELS = {
    "normal": "normal",
    "mildly-raised": "mildly raised",
    "target-range": "chelation target range",
    "increased-risk": "increased risk",
    "greatly-increased-risk": "greatly increased risk",
}


def _fmt_mg(value: float) -> str:
    return f"{value:g}"


def interval_categories(ci_low_mg_per_g: Any, ci_high_mg_per_g: Any) -> dict | None:
    """The categories and thresholds a 95 % interval of the LIC spans.

    Parameters
    ----------
    ci_low_mg_per_g, ci_high_mg_per_g : float
        The interval's ends, mg Fe / g dry tissue.

    Returns
    -------
    dict or None
        ``None`` when an end is missing or not finite. Else the keys the report's
        ``category`` block gains: ``ci95_categories`` (names, low to high; one name when
        the interval lies in one band), ``ci95_thresholds_mg_per_g`` (the thresholds ``t``
        with ``low <= t < high``; empty when clear of every threshold),
        ``ci95_spans_threshold`` (bool) and ``ci95_note`` (one plain line, ``None`` when
        clear).

    Examples
    --------
    >>> d = interval_categories(3.19, 3.21)
    >>> d["ci95_categories"], d["ci95_thresholds_mg_per_g"]
    (['mildly-raised', 'target-range'], [3.2])
    >>> d["ci95_note"]
    '95 % interval spans 3.2 mg/g: mildly raised or chelation target range'
    >>> interval_categories(4.0, 6.0)["ci95_note"] is None
    True
    """
    try:
        lo, hi = float(ci_low_mg_per_g), float(ci_high_mg_per_g)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    lo, hi = min(lo, hi), max(lo, hi)
    names = [c.name for c in CATEGORIES]
    first, last = names.index(lic_category(lo).name), names.index(lic_category(hi).name)
    spanned = names[first:last + 1]
    thresholds = [float(t) for t in THRESHOLDS_MG_PER_G if lo <= t < hi]
    note = None
    if thresholds:
        where = " and ".join(_fmt_mg(t) for t in thresholds)
        words = [SHORT_LABELS.get(n, n) for n in spanned]
        which = " or ".join(words) if len(words) == 2 else f"{words[0]} to {words[-1]}"
        note = f"95 % interval spans {where} mg/g: {which}"
    return {
        "ci95_categories": spanned,
        "ci95_thresholds_mg_per_g": thresholds,
        "ci95_spans_threshold": bool(thresholds),
        "ci95_note": note,
    }
