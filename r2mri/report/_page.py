"""report.pdf / report.png: the one-page report a radiologist reads.

Drawn with matplotlib's Agg backend (no display needed). The page shows the
header (patient/study/series when present), the headline LIC with its category,
the LIC map over the first-echo image on the liver slices, the LIC histogram with
the clinical thresholds, a representative decay curve with its fit, the statistics
table, every warning (most important first) and the QC and calibration notes beside and
under it (:mod:`r2mri.report._page_notes`), and the research-use disclaimer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._labels import labels_of
from ._page_headline import headline_rows, interval_note
from ._page_notes import (TABLE_GAP_PT, TITLE_RISE_PT, continuation_page, continued, draw_lines, page_rows,
                          protocol_notes, qc_notes, warning_items)

__all__ = ["render_page", "write_page", "write_png", "display_plane"]

_A4_IN = (8.27, 11.69)
#: Clinical thresholds in mg Fe/g dry weight (St Pierre 2005; domain.md section 4),
#: used only when the statistics do not carry their own list.
_THRESHOLDS_FALLBACK = (1.8, 3.2, 7.0, 15.0)


def _fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(v):
        return "n/a"
    text = f"{v:.{digits}f}"
    return f"{text} {unit}".rstrip()


def display_plane(affine: np.ndarray) -> dict:
    """How to show slice ``k`` (array axis 2) of a map in radiological convention.

    Returns ``plane`` ("axial", "coronal", "sagittal"), a function ``frame(arr2d)``
    turning ``arr[:, :, k]`` into the displayed ``[row, col]`` image, the side labels
    (left, right edge) and the DICOM PatientOrientation of the displayed image
    (direction of increasing column, of increasing row). Axial and coronal images
    show the patient's right on the left; rows run toward posterior (axial) or feet.
    """
    lps = np.diag([-1.0, -1.0, 1.0]) @ np.asarray(affine, dtype=float)[:3, :3]
    d = [lps[:, 0], lps[:, 1]]
    normal = np.cross(d[0], d[1])
    ax_n = int(np.argmax(np.abs(normal)))
    if ax_n == 2:
        plane, (ci, cs), (ri, rs), labels, po = "axial", (0, 1), (1, 1), ("R", "L"), ("L", "P")
    elif ax_n == 1:
        plane, (ci, cs), (ri, rs), labels, po = "coronal", (0, 1), (2, -1), ("R", "L"), ("L", "F")
    else:
        plane, (ci, cs), (ri, rs), labels, po = "sagittal", (1, 1), (2, -1), ("A", "P"), ("P", "F")
    c_axis = 0 if abs(d[0][ci]) >= abs(d[1][ci]) else 1
    r_axis = 1 - c_axis
    flip_c = np.sign(d[c_axis][ci]) != cs
    flip_r = np.sign(d[r_axis][ri]) != rs

    def frame(arr2d: np.ndarray) -> np.ndarray:
        out = arr2d.T if c_axis == 0 else arr2d
        if flip_c:
            out = out[:, ::-1]
        if flip_r:
            out = out[::-1, :]
        return out

    return {"plane": plane, "frame": frame, "labels": labels, "patient_orientation": po}


def _thresholds(rep: dict) -> list[float]:
    cat = rep.get("category") or {}
    thr = cat.get("thresholds_mg_per_g") if isinstance(cat, dict) else None
    if isinstance(thr, dict):
        thr = list(thr.values())
    if thr:
        out = []
        for t in thr:
            if isinstance(t, (list, tuple)):
                out.extend(float(v) for v in t if v is not None)
            elif isinstance(t, dict):
                for k in ("upper", "lower", "value", "mg_per_g"):
                    if t.get(k) is not None:
                        out.append(float(t[k]))
                        break
            elif t is not None:
                out.append(float(t))
        vals = sorted({v for v in out if np.isfinite(v) and v > 0})
        if vals:
            return vals
    return list(_THRESHOLDS_FALLBACK)


def _category_label(rep: dict) -> str:
    cat = rep.get("category")
    if isinstance(cat, dict):
        return str(cat.get("label") or cat.get("name") or cat.get("description") or "")
    return "" if cat is None else str(cat)


def _liver_slices(roi: np.ndarray, n_max: int = 4) -> list[int]:
    counts = roi.sum(axis=(0, 1))
    idx = np.flatnonzero(counts)
    if idx.size == 0:
        return [roi.shape[2] // 2]
    if idx.size > n_max:
        idx = np.sort(idx[np.argsort(counts[idx])[::-1][:n_max]])
    return [int(i) for i in idx]


def _representative_voxel(result: Any, roi: np.ndarray) -> tuple[int, int, int] | None:
    r2 = np.asarray(result.fit.r2_per_s, dtype=float)
    ok = roi & np.isfinite(r2)
    if not ok.any():
        return None
    med = np.median(r2[ok])
    idx = np.argwhere(ok)
    k = int(np.argmin(np.abs(r2[ok] - med)))
    return tuple(int(v) for v in idx[k])  # type: ignore[return-value]


def _model_curve(result: Any, vox: tuple[int, int, int], t_s: np.ndarray, rep: dict):
    """Model signal at ``t_s`` for one voxel; (expected magnitude, underlying decay or None)."""
    fit = result.fit
    s0 = float(np.asarray(fit.s0)[vox])
    r2 = float(np.asarray(fit.r2_per_s)[vox])
    offset = getattr(fit, "offset", None)
    c = 0.0
    if offset is not None:
        c = float(np.asarray(offset)[vox])
        if not np.isfinite(c):
            c = 0.0
    decay = s0 * np.exp(-r2 * t_s) + c
    sigma = rep.get("qc", {}).get("noise_sigma")
    coils = rep.get("qc", {}).get("noise_coils") or 1
    model = str(getattr(fit, "model", "")).lower()
    if sigma and any(k in model for k in ("ncchi", "rician", "noise", "auto")):
        try:
            from ..noise import ncchi_mean

            expected = np.asarray(ncchi_mean(s0 * np.exp(-r2 * t_s), float(sigma), int(coils)), dtype=float)
            return expected, decay
        except Exception:  # noqa: BLE001 - the plot falls back to the plain decay
            pass
    return decay, None


def _decay_panel(axd, result: Any, rep: dict, roi: np.ndarray, labels: Any) -> None:
    """The measured signal of the ROI's median-rate voxel with the fitted model curve."""
    img = result.image
    q = labels.quantity
    vox = _representative_voxel(result, roi)
    if vox is not None:
        t_s = img.echo_times_s
        sig = np.asarray(img.data[vox], dtype=float)
        tt = np.linspace(0, float(t_s[-1]) * 1.1, 400 if labels.fatwater else 200)
        axd.plot(t_s * 1e3, sig, "o", color="#12365f", ms=4, label="signal")
        r2v = float(np.asarray(result.fit.r2_per_s)[vox])
        title = f"Median-{q} voxel {tuple(v + 1 for v in vox)}: {q} = {r2v:.1f} s\u207b\u00b9"
        curves = _fatwater_curve(result, vox, tt) if labels.fatwater else None
        if curves is not None:
            model, envelope, pdff = curves
            axd.plot(tt * 1e3, model, "-", color="#c0392b", lw=1.2, label="fit (fat-water, multi-peak fat)")
            axd.plot(tt * 1e3, envelope, ":", color="#c0392b", lw=1, label=f"(W + F) exp(-{q} t)")
            title += f", PDFF {pdff:.1f} %"
        else:
            expected, decay = _model_curve(result, vox, tt, rep)
            axd.plot(tt * 1e3, expected, "-", color="#c0392b", lw=1.2,
                     label=f"fit ({rep.get('model', {}).get('name')})")
            if decay is not None:
                axd.plot(tt * 1e3, decay, ":", color="#c0392b", lw=1, label="noise-free decay")
        sigma = (rep.get("qc") or {}).get("noise_sigma")
        if sigma:
            axd.axhline(float(sigma), color="#777777", lw=0.7, ls="--", label="noise \u03c3")
        axd.set_title(title, fontsize=8.5, loc="left")
        axd.legend(fontsize=6.5, frameon=False)
        axd.set_ylim(bottom=0)
    axd.set_xlabel("echo time (ms)", fontsize=7.5)
    axd.set_ylabel("signal (a.u.)", fontsize=7.5)
    axd.tick_params(labelsize=7)


def _fatwater_curve(result: Any, vox: tuple[int, int, int], t_s: np.ndarray):
    """(model magnitude, (W + F) exp(-R2* t), PDFF %) at ``t_s`` for one voxel of a fat-water
    fit, from :func:`r2mri.fatwater.magnitude_signal` and the fitted W, F, R2*; None when the
    fit lacks W, F or the field strength."""
    from ..errors import InputError
    from ..fatwater import DEFAULT_SPECTRUM, load_fat_spectrum, magnitude_signal

    fit = result.fit
    extra = getattr(fit, "extra", None) or {}
    options = getattr(fit, "options", None) or {}
    field = options.get("field_strength_t") or getattr(result.image, "field_strength_t", None)
    if extra.get("water") is None or extra.get("fat") is None or not field:
        return None
    w, f = float(np.asarray(extra["water"])[vox]), float(np.asarray(extra["fat"])[vox])
    r2 = float(np.asarray(fit.r2_per_s)[vox])
    if not all(np.isfinite(v) for v in (w, f, r2)):
        return None
    try:  # the fit records the spectrum's name; a spectrum given as a file may not load by name
        spec = load_fat_spectrum(options.get("fat_spectrum") or DEFAULT_SPECTRUM)
    except InputError:
        return None
    model = magnitude_signal(spec.basis(t_s, float(field)), t_s, w, f, r2)
    pdff = extra.get("pdff_percent")
    pdff_v = float(np.asarray(pdff)[vox]) if pdff is not None else 100.0 * f / (w + f)
    return model, (w + f) * np.exp(-r2 * t_s), pdff_v


#: a share of ROI voxels tied at the top value above which the top is taken as the calibration's
#: clip (a continuous estimate has no ties; clipped voxels all share the domain edge's LIC)
CLIP_TIE_FRACTION = 0.005


def clipped_at_top(vals: np.ndarray) -> np.ndarray:
    """Voxels whose LIC sits at the calibration's clip (the domain edge): all tied at the top
    value, more than :data:`CLIP_TIE_FRACTION` of them.

    >>> clipped_at_top(np.array([1.0, 2.0, 125.4, 125.4, 125.4])).tolist()
    [False, False, True, True, True]
    >>> clipped_at_top(np.array([1.0, 2.0, 3.0])).any()
    np.False_
    """
    if not vals.size:
        return np.zeros(0, bool)
    top = vals == vals.max()
    return top if np.count_nonzero(top) > max(1, CLIP_TIE_FRACTION * vals.size) else np.zeros(vals.shape, bool)


def _histogram_panel(axh, vals: np.ndarray, rep: dict, head: Any, q: str = "R2") -> None:
    """The voxel LIC histogram. Voxels clipped at the calibration's domain edge (noise-floor
    fits at high iron; 30 % of a 30 mg/g liver at SNR 20) are not drawn as a bar at the clip
    value, which looked like a high-iron region, but counted in the title."""
    clip = clipped_at_top(vals)
    shown = vals[~clip]
    if shown.size:
        hi = float(np.percentile(shown, 99.5))
        bins = np.linspace(0, max(hi * 1.05, 2.0), 40)
        axh.hist(np.clip(shown, 0, bins[-1]), bins=bins, color="#4a6fa5", edgecolor="white", linewidth=0.3)
    # labels of thresholds close on the axis (1.8 / 3.2 / 7 on a 0-110 mg/g axis) step down a
    # row so they do not print over each other ("1.83.27" at 30 mg/g)
    x_span = float(bins[-1]) if shown.size else 20.0
    row, last = 0, None
    for t in _thresholds(rep):
        axh.axvline(t, color="#8a1c1c", lw=0.8, ls="--")
        row = row + 1 if last is not None and (t - last) < 0.06 * x_span else 0
        last = t
        axh.text(t, 1.0 - 0.07 * row, f" {t:g}", color="#8a1c1c", fontsize=6.5, va="top", ha="left",
                 transform=axh.get_xaxis_transform())
    if head is not None:
        axh.axvline(float(head), color="k", lw=1.4)
    axh.set_xlabel("voxel LIC (mg Fe/g dw); black: headline, red: thresholds", fontsize=7.5)
    axh.set_ylabel("voxels", fontsize=7.5)
    axh.tick_params(labelsize=7)
    axh.set_title("LIC distribution in the liver ROI", fontsize=8.5, loc="left")
    if clip.any():
        axh.text(0.99, 0.97, f"not drawn: {100 * clip.mean():.0f} % of voxels with {q} beyond the\n"
                 f"calibration's domain (their LIC clipped to {vals.max():.0f})", transform=axh.transAxes,
                 ha="right", va="top", fontsize=6.5, color="#555555")


def _table(ax, rows: list[tuple[str, str]], title: str, *, fontsize: float = 7.5) -> None:
    """Two-column table of ``rows`` (label, value) under ``title``, ruled between rows.

    Each cell is one text at a fixed offset (in points) below the axes top, so rows and
    rules line up at any resolution (PDF and raster). [D] A matplotlib ``Table`` looked
    the same but measured every cell's text to lay itself out: its raster draw took 35 ms,
    against 21 ms for placed texts (measured; the whole page changed within the noise).
    """
    from matplotlib.transforms import ScaledTranslation

    ax.axis("off")
    ax.set_title(title, loc="left", fontsize=9, fontweight="bold", pad=2)
    # the former table's geometry: rows 1.79 font sizes apart from 3.4 pt below the axes
    # top; rules from 0.02 to 1.02 of the axes width, labels at 0.078, values at 0.642
    pitch_pt, first_pt = 1.79 * fontsize, 3.4
    x_rule, x_label, x_value = (0.02, 1.02), 0.078, 0.642

    def at(y_pt: float):
        return ax.transAxes + ScaledTranslation(0, -(first_pt + y_pt) / 72.0, ax.figure.dpi_scale_trans)

    for i, (label, value) in enumerate(rows):
        mid = (i + 0.5) * pitch_pt
        ax.text(x_label, 1.0, label, fontsize=fontsize, va="center_baseline", transform=at(mid))
        ax.text(x_value, 1.0, value, fontsize=fontsize, va="center_baseline", transform=at(mid))
    for i in range(len(rows) + 1):
        ax.plot(x_rule, [1.0, 1.0], color="#bbbbbb", lw=0.4, transform=at(i * pitch_pt), clip_on=False,
                solid_capstyle="butt")


def render_page(result: Any, rep: dict):
    """Draw the report page; return the matplotlib Figure (A4 portrait).

    Parameters
    ----------
    result : r2mri.analysis.AnalysisResult
    rep : dict
        The report dictionary from :func:`r2mri.report.report_dict`.
    """
    # [D] no matplotlib.use(): the figure is drawn by canvases made here (Agg, PDF), so
    # the host's backend (a notebook's, say) and its open figures are left alone
    from matplotlib.figure import Figure
    from matplotlib.gridspec import GridSpec

    from ._page_panels import header_panel, headline_panel, maps_panel

    labels = labels_of(result)
    q = labels.quantity
    pdff = rep.get("pdff_percent") if labels.fatwater else None
    pdff = pdff if isinstance(pdff, dict) else None
    # the headline box: LIC, its interval and rate, (liver PDFF,) (the heterogeneity
    # flag,) calibration; the flag sits under the number it qualifies
    het_flag = _heterogeneity_flag(rep.get("heterogeneity"), q)
    note = interval_note(rep)
    box_h, y_row = headline_rows(bool(pdff), bool(het_flag), bool(note))
    # every warning is printed (issue: the first four used to be): the statistics row
    # grows to hold them beside the table, the maps and histogram rows give way
    rows = _stat_rows(rep, q, pdff)
    items = warning_items(rep)
    notes = qc_notes(rep, _fmt, _pct)
    infos = protocol_notes(rep)
    heights, plan = page_rows(1.2 * box_h, len(rows), 1.79 * 7.5, items, notes, infos)
    fig = Figure(figsize=_A4_IN, dpi=100)
    # rows 0, 2, ... 10 hold the page's panels, the odd rows are the gaps between them
    gs = GridSpec(
        11, 4, figure=fig, left=0.075, right=0.95, top=0.975, bottom=0.035,
        height_ratios=heights, hspace=0.0, wspace=0.45,
    )
    # --- header, headline, LIC maps (r2mri/report/_page_panels.py) ---------------
    header_panel(fig.add_subplot(gs[0, :]), rep, q)
    headline_panel(fig.add_subplot(gs[2, :]), rep, q, pdff, het_flag, note, y_row)
    roi, vals = maps_panel(fig, gs[4, :], result, rep)
    head = rep.get("lic_mg_per_g", {}).get("of_mean_r2")

    # --- histogram -----------------------------------------------------------
    _histogram_panel(fig.add_subplot(gs[6, :2]), vals, rep, head, labels.quantity)

    # --- decay curve -----------------------------------------------------------
    _decay_panel(fig.add_subplot(gs[6, 2:]), result, rep, roi, labels)

    # --- statistics table, warnings and QC notes -------------------------------------
    ax_table = fig.add_subplot(gs[8, :2])
    _table(ax_table, rows, "Statistics")

    # the warnings and QC notes beside the table, continued under it when they need more
    ax_col = fig.add_subplot(gs[8, 2:])
    ax_col.axis("off")
    split = len(plan.lines) if plan.split is None else plan.split
    draw_lines(ax_col, plan.lines[:split], plan.size, start_pt=-TITLE_RISE_PT)
    if split < len(plan.lines):
        draw_lines(ax_table, continued(plan, split), plan.size, x=0.02,
                   start_pt=3.4 + len(rows) * 1.79 * 7.5 + TABLE_GAP_PT)
    fig._r2mri_column = (plan, items, notes + infos)  # write_page adds page 2 when warnings were left off

    # --- disclaimer ------------------------------------------------------------------
    ax = fig.add_subplot(gs[10, :])
    ax.axis("off")
    ax.text(0.5, 0.5, rep.get("disclaimer", ""), fontsize=7.5, ha="center", va="center", style="italic",
            color="#8a1c1c", wrap=True)
    return fig



def _stat_rows(rep: dict, q: str, pdff: dict | None) -> list[tuple[str, str]]:
    """The statistics table's (label, value) rows."""
    lic = rep.get("lic_mg_per_g", {})
    r2s = rep.get("r2_per_s", {})
    roi_b = rep.get("roi", {})
    head = lic.get("of_mean_r2")
    ci = lic.get("ci95") or [None, None]
    frac = lic.get("fraction_above") or rep.get("fraction_above") or {}
    rows = [
        (f"LIC of mean {q} (headline)", f"{_fmt(head, 2)} mg/g"),
        ("  95 % CI", f"{_fmt(ci[0], 2)} \u2013 {_fmt(ci[1], 2)}"),
        ("LIC voxel mean / median", f"{_fmt(lic.get('mean'), 2)} / {_fmt(lic.get('median'), 2)}"),
        ("LIC voxel SD / IQR", f"{_fmt(lic.get('sd'), 2)} / {_fmt(_iqr(lic), 2)}"),
        (f"mean liver {q}, headline (s\u207b\u00b9)", _fmt(r2s.get("headline_mean", r2s.get("mean")), 1)),
        (f"{q} voxel mean / median (s\u207b\u00b9)", f"{_fmt(r2s.get('mean'), 1)} / {_fmt(r2s.get('median'), 1)}"),
        (f"{q} SD (s\u207b\u00b9)", _fmt(r2s.get("sd"), 1)),
    ]
    if pdff:
        rows.append(("PDFF ROI mean \u00b1 SE (%)", f"{_fmt(pdff.get('mean'), 1)} \u00b1 {_fmt(pdff.get('se'), 2)}"))
        rows.append(("PDFF voxel mean / median (%)", f"{_fmt(pdff.get('voxel_mean', pdff.get('mean')), 1)} / "
                     f"{_fmt(pdff.get('median'), 1)}"))
    rows.append(("ROI voxels / volume", f"{roi_b.get('n_voxels')} / {_fmt(roi_b.get('volume_ml'), 1)} ml"))
    if isinstance(frac, dict):
        for k, v in list(frac.items())[:4]:
            rows.append((f"voxels > {k} mg/g (as measured)", _fmt(None if v is None else 100 * float(v), 1, "%")))
    rows.extend(_heterogeneity_rows(rep.get("heterogeneity"), q))
    return rows

def _heterogeneity_rows(het: Any, q: str = "R2") -> list[tuple[str, str]]:
    """Two table rows: the noise-corrected ``q`` (R2 or R2*) CV with its interval, and the
    deconvolved ROI share per clinical category (report.json ``heterogeneity``)."""
    if not isinstance(het, dict):
        return []
    if not het.get("measurable"):
        lb = het.get("r2_cv_lower_bound_tiles")
        if lb is None:
            return [(f"{q} CV, noise removed", "not measurable (noise)")]
        ci = het.get("r2_cv_lower_bound_tiles_ci95") or [None, None]
        return [(f"{q} CV at least (tiles; 95 % CI)", f"{_fmt(lb, 3)} ({_fmt(ci[0], 3)}\u2013{_fmt(ci[1], 3)})")]
    ci = het.get("r2_cv_ci95") or [None, None]
    rows = [(f"{q} CV, noise removed (95 % CI)",
             f"{_fmt(het.get('r2_cv_noise_corrected'), 3)} ({_fmt(ci[0], 3)}\u2013{_fmt(ci[1], 3)})")]
    frac = het.get("category_fractions")
    if isinstance(frac, dict) and frac:
        rows.append(("denoised % \u22641.8|3.2|7|15|>15",
                     " / ".join(_fmt(None if v is None else 100 * float(v), 0) for v in frac.values())))
    return rows


def _heterogeneity_flag(het: Any, q: str = "R2") -> str | None:
    """The headline box's one-line flag when report.json's heterogeneity block warns: what
    share lies outside the headline's band and the noise-corrected CV (or its tile bound)."""
    if not isinstance(het, dict) or not het.get("warning"):
        return None
    diff = het.get("different_category_fraction")
    cv = het.get("r2_cv_noise_corrected")
    lb = het.get("r2_cv_lower_bound_tiles")
    if het.get("measurable") and diff is not None and diff >= 0.005:
        from .._heterogeneity import WARN_MARGIN  # the margin the fraction counts beyond

        # "clearly" read as the whole share outside the band, which the table's denoised
        # shares (larger: no margin) then contradicted; say what the number counts
        what = (f"{100 * float(diff):.0f} % of the ROI more than {100 * WARN_MARGIN:.0f} % beyond the headline "
                "category")
        # the CV without its "(noise removed)" clarifier (the statistics table gives it):
        # with it the line ran past the box's right edge at 8.5 pt bold
        what += f"; {q} CV {float(cv):.2f}" if cv is not None else ""
    elif cv is not None:
        what = f"{q} CV {float(cv):.2f} after noise removal"
    elif lb is not None:
        what = f"{q} CV at least {float(lb):.2f} between tiles"
    else:
        what = "see the warning"
    return f"Heterogeneous liver: {what}"


def _slice_title(rep: dict, k: int, n: int) -> str:
    """"slice k/n: LIC x mg/g" with the per-slice LIC of mean R2 from the statistics."""
    title = f"slice {k + 1}/{n}"
    for entry in rep.get("per_slice") or []:
        if isinstance(entry, dict) and entry.get("slice") == k and entry.get("lic_of_mean_r2") is not None:
            title += f": LIC {float(entry['lic_of_mean_r2']):.1f} mg/g"
    return title


def _pct(v: Any) -> float | None:
    return None if v is None else 100.0 * float(v)


def _iqr(block: dict) -> Any:
    if block.get("iqr") is not None:
        iqr = block["iqr"]
        if isinstance(iqr, (list, tuple)) and len(iqr) == 2 and None not in iqr:
            return float(iqr[1]) - float(iqr[0])
        return iqr
    q1, q3 = block.get("p25"), block.get("p75")
    if q1 is not None and q3 is not None:
        return float(q3) - float(q1)
    return None


def write_page(result: Any, rep: dict, pdf_path: Path, png_path: Path | None, *, dpi: int = 150) -> np.ndarray:
    """Write the page as PDF (and PNG, unless ``png_path`` is None); return its RGB pixels
    at ``dpi`` (for the PNG, see :func:`write_png`, and the DICOM Secondary Capture)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from .._atomic import atomic_path

    fig = render_page(result, rep)
    vector_dpi = fig.get_dpi()
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    # [D] unhinted glyphs: at 150 dpi they read as well as hinted ones (checked by eye on
    # the rendered page), and the raster draw is 0.29 -> 0.21 s of CPU (FreeType's
    # hinting of every glyph of a text-heavy page)
    with rc_context({"text.hinting": "none"}):
        canvas.draw()
    # the PNG is the pixels just drawn (what fig.savefig(png) would draw a second time)
    rgb = np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])
    if png_path is not None:
        write_png(rgb, png_path, dpi=dpi)
    fig.set_dpi(vector_dpi)  # the PDF's embedded images at the figure's own resolution
    from matplotlib.backends.backend_pdf import PdfPages

    with atomic_path(pdf_path) as tmp:
        with PdfPages(tmp, metadata={"Title": "r2mri liver iron report", "Creator": "r2mri"}) as pdf:
            pdf.savefig(fig)
            plan, items, notes = getattr(fig, "_r2mri_column", (None, None, None))
            if plan is not None and plan.n_hidden:  # page 1 says "+N more: page 2"
                pdf.savefig(continuation_page(rep, items, notes))
    return rgb


def write_png(rgb: np.ndarray, path: Path, *, dpi: int = 150) -> None:
    """Write the page pixels (rows, cols, 3) uint8 as an 8-bit RGB PNG, atomically.

    [D] zlib level 3: 0.05 s for an A4 page at 150 dpi, 540 kB (level 6: 0.09 s, +4 %).
    """
    from PIL import Image

    from .._atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG", compress_level=3, dpi=(dpi, dpi))
