"""The panels of the report page drawn by :func:`r2mri.report._page.render_page`.

The header (patient, series, acquisition), the headline box (LIC, interval, PDFF,
heterogeneity flag, calibration) and the LIC maps over the first-echo image. Drawing
only: every number comes from the report dictionary or the analysis result.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ._calibration_words import origin_text
from ._page import _category_label, _fmt, _liver_slices, _slice_title, display_plane


def header_panel(ax, rep: dict, q: str) -> None:
    """The page header: title, patient/study line, series or input line, acquisition line, version and date."""
    inp = rep.get("input", {})
    acq = rep.get("acquisition", {})
    ax.axis("off")
    ax.text(0, 1, f"Liver iron concentration (LIC) from MRI {q}", fontsize=14, fontweight="bold", va="top")
    ident = []
    for label, key in (("Patient", "patient_name"), ("ID", "patient_id"), ("Study date", "study_date"),
                       ("Accession", "accession_number")):
        if inp.get(key):
            value = str(inp[key])
            if key == "patient_name":
                value = ", ".join(p for p in value.split("^") if p)  # DICOM PN Family^Given
            ident.append(f"{label}: {value}")
    series = inp.get("series_description") or inp.get("study_description")
    src = inp.get("files") or []
    source = ("Input: " + Path(src[0]).name + (f" (+{len(src) - 1})" if len(src) > 1 else "")) if src else (
        "Input: in-memory image")
    line2 = f"Series: {series}" if series else source
    listed = [e for e in (inp.get("series") or []) if isinstance(e, dict)]
    if series and len(listed) > 1:  # one series per echo (FerriScan): say that there are more
        more = ", ".join(f"#{e.get('series_number')}" for e in listed[1:] if e.get("series_number") is not None)
        line2 += f" (+{len(listed) - 1} more series" + (f": {more})" if more else ")")
    field = acq.get("field_strength_t")
    te = acq.get("echo_times_ms") or []
    tr = acq.get("repetition_time_ms")
    acq_line = (
        f"{_fmt(field, 1, 'T') if field else 'field n/a'} | {acq.get('manufacturer') or 'manufacturer n/a'} | "
        f"sequence {acq.get('sequence') or 'n/a'} | TE {', '.join(f'{t:g}' for t in te)} ms"
        + (f" | TR {tr:g} ms" if tr else "")
    )
    lines = [ln for ln in (" | ".join(ident), line2, acq_line) if ln]
    for i, ln in enumerate(lines[:3]):
        ax.text(0, 0.62 - 0.26 * i, textwrap.shorten(ln, 118, placeholder=" ..."), fontsize=8, va="top",
                color="#000000" if i == 0 else "#333333")
    ax.text(1, 1, f"r2mri {rep.get('software', {}).get('version', '')}\n{rep.get('created_utc', '')}",
            fontsize=7, va="top", ha="right", color="#555555")


def headline_panel(ax, rep: dict, q: str, pdff: dict | None, het_flag: str | None, note: str | None,
                   y_row: dict) -> None:
    """The headline box: LIC and its interval, liver PDFF, heterogeneity flag, category, calibration."""
    import matplotlib

    cal = rep.get("calibration", {})
    lic = rep.get("lic_mg_per_g", {})
    umol = rep.get("lic_umol_per_g", {})
    r2s = rep.get("r2_per_s", {})
    y_lic, y_ci, y_pdff, y_het, y_cal, y_note = (y_row[k] for k in ("lic", "ci", "pdff", "het", "cal", "note"))
    ax.axis("off")
    ax.add_patch(matplotlib.patches.FancyBboxPatch((0, 0), 1, 1, boxstyle="round,pad=0.01",
                                                   transform=ax.transAxes, facecolor="#eef3fa",
                                                   edgecolor="#4a6fa5", linewidth=1))
    head = lic.get("of_mean_r2")
    ci = lic.get("ci95") or [None, None]
    ax.text(0.02, y_lic, f"LIC {_fmt(head, 2)} mg Fe/g dry weight", fontsize=16, fontweight="bold",
            va="center", color="#12365f")
    ax.text(0.02, y_ci,
            f"= {_fmt(umol.get('of_mean_r2'), 0)} \u00b5mol Fe/g     95 % CI {_fmt(ci[0], 2)} \u2013 "
            f"{_fmt(ci[1], 2)} mg/g     (from the mean liver {q} = "
            f"{_fmt(r2s.get('headline_mean', r2s.get('mean')), 1)} s\u207b\u00b9)",
            fontsize=8.5, va="center")
    if pdff:
        how = ([f"SE {_fmt(pdff.get('se'), 2)} %"] if pdff.get("se") is not None else []) + (
            ["tile-pooled"] if pdff.get("mean_method") == "tile-fw-ncchi" else [])
        ax.text(0.02, y_pdff, f"Liver fat (PDFF) {_fmt(pdff.get('mean'), 1)} % mean"
                + (f" ({'; '.join(how)})" if how else "")
                + f", {_fmt(pdff.get('median'), 1)} % voxel median (fat-water fit)",
                fontsize=9, fontweight="bold", va="center", color="#12365f")
    if het_flag:
        ax.text(0.02, y_het, textwrap.shorten(het_flag, 96, placeholder=" ..."), fontsize=8.5,
                fontweight="bold", va="center", color="#b00000")
    label = _category_label(rep)
    ax.text(0.98, y_lic, "\n".join(textwrap.wrap(label, 44)), fontsize=9, fontweight="bold", va="center",
            ha="right", color="#8a1c1c", linespacing=1.1)
    if note:  # the headline's interval spans a category threshold (report.json category.ci95_note)
        ax.text(0.02, y_note, textwrap.shorten(note, 112, placeholder=" ..."), fontsize=8.5, fontweight="bold",
                va="center", color="#8a1c1c")
    origin = origin_text(cal)  # a site curve says so (its title may not)
    cal_txt = f"Calibration: {cal.get('label') or cal.get('name') or 'n/a'}" + (f" ({origin})" if origin else "")
    derived = bool(cal.get("derived"))
    ax.text(0.02, y_cal, textwrap.shorten(cal_txt, 125, placeholder=" ..."), fontsize=7.5, va="center",
            color="#8a1c1c" if derived else "#333333", fontweight="bold" if derived else "normal")


def maps_panel(fig, cell, result: Any, rep: dict) -> tuple[np.ndarray, np.ndarray]:
    """The LIC map over the first-echo image on the liver slices, with the ROI outline and a colour bar.

    ``cell`` is the gridspec cell of the row. Returns ``(roi, lic_values)``: the ROI mask
    and the finite LIC values inside it (mg Fe/g), which the histogram panel shows.
    """
    img = result.image
    roi = np.asarray(result.roi.mask, dtype=bool)
    disp = display_plane(img.affine)
    frame = disp["frame"]
    first = np.asarray(img.data[..., 0], dtype=float)
    licm = np.asarray(result.lic_mg_per_g, dtype=float)
    roi_d = roi
    slices = _liver_slices(roi_d)
    vals = licm[roi_d & np.isfinite(licm)]
    vmax = float(max(15.0, np.percentile(vals, 99))) if vals.size else 15.0
    sub = cell.subgridspec(1, len(slices) + 1, width_ratios=[1] * len(slices) + [0.06], wspace=0.05)
    gray_hi = float(np.percentile(first[np.isfinite(first)], 99.5)) if np.isfinite(first).any() else 1.0
    im = None
    for i, k in enumerate(slices):
        axm = fig.add_subplot(sub[0, i])
        axm.imshow(frame(first[:, :, k]), cmap="gray", vmin=0, vmax=gray_hi, interpolation="nearest")
        over = frame(np.where(roi_d[:, :, k], licm[:, :, k], np.nan))
        im = axm.imshow(over, cmap="inferno", vmin=0, vmax=vmax, alpha=0.85, interpolation="nearest")
        # the ROI's outline, so the reader sees the region checked also where its LIC
        # colour is dark (low iron) against dark tissue
        roi_k = frame(roi_d[:, :, k].astype(float))
        if roi_k.any():
            axm.contour(roi_k, levels=[0.5], colors="#4fc3f7", linewidths=0.5)
        axm.set_xticks([])
        axm.set_yticks([])
        axm.set_title(_slice_title(rep, k, licm.shape[2]), fontsize=7.5, pad=2)
        if i == 0:
            left, right = disp["labels"]
            axm.text(0.02, 0.98, left, color="w", fontsize=7, va="top", transform=axm.transAxes)
            axm.text(0.98, 0.98, right, color="w", fontsize=7, va="top", ha="right", transform=axm.transAxes)
    if im is not None:
        cax = fig.add_subplot(sub[0, -1])
        cb = fig.colorbar(im, cax=cax)
        cb.set_label("LIC (mg Fe/g dw)", fontsize=7.5)
        cb.ax.tick_params(labelsize=7)
    return roi, vals
