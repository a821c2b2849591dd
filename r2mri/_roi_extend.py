"""Extension of a grown liver candidate into the parenchyma the growing band left out
(seed, box and automatic candidates of :func:`r2mri.roi.liver_roi`; not a user mask).

:func:`extend_candidate` is the hook: parenchyma extension, pieces below the
parenchymal floor cut, the decayed rim joined (and the in-plane holes it enclosed filled),
pockets of liver at the noise floor that the candidate encloses joined
(:mod:`r2mri._roi_floor_pockets`), the rim too dark to fit measured.

Parenchyma extension (seed, box, automatic; issue 16, :mod:`r2mri._roi_parenchyma`): the
band's 0.3 cap leaves out iron-rich or spared patches at the liver's edge (inner ones
come back as holes), so the chosen region is then extended, up to 3 rounds, into connected
tissue within its S0, edge and wider R2 bands and above the calibration's lowest calibrated
R2 (``extend_to_parenchyma``); an added piece > 25 % of it is refused (leak), with a warning,
unless its median R2 is above the region's (iron-rich liver too noisy to grow into; taken,
with a warning) or it has the region's S0 and fat fraction (a coarse texture's patch;
taken, with a warning; tissue like that still left out beyond 25 %: a warning;
:mod:`r2mri._roi_patches`). Voxels too dark to fit next to the region beyond 1 % of it: a
warning. R2* curves: the floor is the lowest normal-liver R2* (:mod:`r2mri._r2star_floor`),
used by the extension only, and only when the region's median R2* is above the normal range
(at 3 T above the mapped top by 2 SD of the field mapping's uncertainty:
:func:`r2mri._roi_parenchyma.extension_min_median_per_s`).
An automatic R2* ROI with more than 5 % of its voxels (3x3 median) inside the normal-liver
R2* range by twice their noise gets a warning, red only with evidence that the reading may
be wrong (the ROI straddles the range's top, or borders liver-like tissue above it), else a
plain note: R2* cannot separate a low-iron liver from other tissue
(:mod:`r2mri._roi_low_iron`, ``roi.options["low_iron"]``; the check runs in :mod:`r2mri.roi`).

Low-iron liver the floor's noise test left out: when liver-like tissue on the region's
low-R2 side is left out beyond 2 % of it (:mod:`r2mri._roi_low_side`), the R2 route takes
in the pieces of it whose pooled R2 lies above the floor by 2 of its SEs
(:mod:`r2mri._roi_low_intake`, ``roi.options["low_side_intake"]``); what is still left
out beyond 1 % of the region gets a red warning when liver-like
tissue on the region's low-R2 side is left out beyond 2 % of it (:mod:`r2mri._roi_low_side`).

Noisy neighbours (:mod:`r2mri._roi_evidence`): each region is grown a second time only
through voxels whose relative R2 SE is at most twice its median, the extension adds
only tissue above the floor by 2 of its SEs, and pieces of tissue whose R2 lies
significantly below the floor (checkerboard sample splitting) are cut from the
candidate: at low SNR and low iron the spleen and viscera otherwise came in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._roi_evidence import NO_EVIDENCE, above_floor, drop_below_floor_pieces
from ._roi_grow import _BAND_CAP_R2, _BAND_CAP_S0, _BAND_FLOOR_S0, _EDGE_FLOOR, _MAD_TO_SD, _WHOLE, _smooth
from ._roi_floor_pockets import floor_pockets
from ._roi_low_intake import take_low_side
from ._roi_iron import (dark_rim, dark_rim_mask, decayed_to_floor, fill_joined_holes, floor_at_last_echo,
                        iron_noise_maps, join_decayed_rim)
from ._roi_parenchyma import extend_to_parenchyma
from ._roi_patches import pdff_map
from .status import FitStatus

if TYPE_CHECKING:
    from ._roi_proposal import GrowthMaps

__all__ = ["extend_candidate"]


def extend_candidate(cand: np.ndarray, maps: "GrowthMaps", image: Any, fit: Any, r2: np.ndarray, s0: np.ndarray,
                     status: np.ndarray, *, floor_ext: float, floor_r2: float | None, grow_k: float,
                     options: dict[str, Any], warnings: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """``(candidate, dark_edge)``: the grown ``cand`` extended into the parenchyma (module
    docstring), and the voxels next to it with no signal left (too dark to fit, or at the
    floor by the last echo; rule 1 keeps the candidate's edge there), None for an empty
    candidate. ``options`` and ``warnings`` are added to in place."""
    shape = cand.shape
    tissue, logr, se_map, ok = maps.tissue, maps.logr, maps.se_map, maps.ok
    # patchy livers: edge patches the R2 band left out
    r2_sd = np.abs(np.asarray(getattr(fit, "r2_std_per_s", np.nan), dtype=np.float64)) * s0
    # added tissue must lie above the floor by its noise (r2mri/_roi_evidence.py)
    ext_tissue = tissue if se_map is None else tissue & (cand | above_floor(
        logr, _smooth(np.where(np.isfinite(se_map), se_map, NO_EVIDENCE), np.ones(shape, bool)), floor_ext))
    cand, ext = extend_to_parenchyma(cand, ext_tissue, logr, maps.logs, maps.steps, floor_ext, k=grow_k,
                                     s0_band=(_BAND_FLOOR_S0, _BAND_CAP_S0), r2_cap=_BAND_CAP_R2,
                                     edge_floor=_EDGE_FLOOR, mad_to_sd=_MAD_TO_SD, r2_noise=(
                                         _smooth(r2_sd, ok & np.isfinite(r2_sd)) if r2_sd.shape == shape
                                         else None),
                                     iron_noise=iron_noise_maps(fit, image, ok, _smooth, grow_k),
                                     pdff=pdff_map(fit, shape))
    options["parenchyma_extension"] = ext
    warnings.extend([ext.pop(w) for w in ("warning", "warning_iron", "warning_patch", "warning_left_out")
                     if w in ext])
    # low-iron patches the floor's noise test kept out, which the left-out check cannot see (_roi_low_side);
    # when it finds them, the R2 route takes in the pieces whose pooled R2 is above the floor (_roi_low_intake)
    cand, options["low_side_left_out"], intake, low_warn = take_low_side(cand, maps, r2, floor_r2, floor_ext, grow_k,
                                                                         pdff_map(fit, shape))
    if intake is not None:
        options["low_side_intake"] = intake
    warnings.extend([low_warn] if low_warn else [])
    # neighbouring organs let in where R2 is too noisy per voxel (r2mri/_roi_evidence.py)
    if floor_r2 is not None:
        cand, options["below_floor_pieces"] = drop_below_floor_pieces(cand, tissue, r2, floor_r2)
    decayed = decayed_to_floor(image, fit, _WHOLE, grow_k)  # fast decay at the edge is liver (_roi_iron)
    if decayed is not None:
        joined, options["dark_rim_joined"] = join_decayed_rim(cand, decayed, ~np.isin(status, (
            FitStatus.TOO_FEW_ECHOES, FitStatus.BAD_INPUT, FitStatus.MASKED)))
        cand, options["dark_rim_holes_filled"] = fill_joined_holes(cand, joined)  # liver the rim enclosed
    usable = ~np.isin(status, (FitStatus.TOO_FEW_ECHOES, FitStatus.BAD_INPUT, FitStatus.MASKED))
    pockets, options["floor_pockets"] = floor_pockets(cand, image, fit, usable, grow_k)  # liver at the floor
    cand = cand | pockets
    options["dark_rim"], dark_warning = dark_rim(cand, status, r2)  # liver too dark to fit
    floor_last = floor_at_last_echo(image, fit, grow_k)  # no signal left: no partial volume (_roi_iron)
    dark_edge = None if not cand.any() else dark_rim_mask(cand, status, r2) | (
        False if floor_last is None else floor_last & ~cand)
    warnings.extend([dark_warning] if dark_warning else [])
    return cand, dark_edge
