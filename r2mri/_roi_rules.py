"""The three exclusion rules of the liver ROI (:func:`r2mri.roi.liver_roi`), applied to every candidate.

Exclusion rules, in this order (``LiverROI.removed`` counts each):

1. ``edge_erosion``: voxels within ``erode_mm`` (default 5 mm) of the candidate's edge,
   in-plane (slices are thick and gapped), by the Euclidean distance transform with the
   voxel size of the affine; holes (vessels cut out of the candidate) are edges too.
   A grown candidate's ``dark_edge`` (no signal left; narrow bays of left-out
   liver-like tissue, :mod:`r2mri._roi_edge_bays`; liver-like tissue whose local R2 is
   within 30 % of the candidate's, :mod:`r2mri._roi_edge_grade`) counts as inside.
2. ``fit_failed``: non-finite R2 or S0, or status NOT_CONVERGED, TOO_FEW_ECHOES,
   BAD_INPUT or MASKED. BELOW_NOISE and BOUND_HIT voxels are *kept* (and counted by the
   statistics): they are real high-iron liver whose raw signal the headline estimator
   uses; dropping them would select on noise and bias the mean R2 low at high iron. The
   exception is a floor fit whose S0 came out 0 (no signal found): its R2 is no
   measurement, so it leaves the mask, but like NOT_CONVERGED it stays in the headline's
   sample (``LiverROI.not_converged``). Such voxels are high-iron liver whose noise
   happened to be low: on the coarse 30 mg/g, SNR 20, 8-channel liver 1,500-1,900 liver
   voxels at true R2 ~316 s^-1. Dropping them selected on noise twice: the liver's
   iron-richest voxels left the sample (-1.05 % in LIC with the true outline, -1.40 %
   automatic, 16 livers), and the voxels left in their tiles read a within-tile spread
   half the true one (rho 0.0016 against 0.0032), so every tile was under-corrected
   (-0.6 % of R2). Pooled, the headline reads +1.0 % (automatic ROI) and +1.4 % (true
   outline) instead of -2.6 / -2.3 % (branch floor30, docs/statistics.md,
   "Liver at the noise floor"): what is left is the simulated fit bias of the at-floor
   tiles (r2mri/_tile_bias_sim.py), under-estimated.
   NOT_CONVERGED voxels leave the mask (their R2 is no measurement) but are kept in
   ``LiverROI.not_converged``, and the tile-pooled headline fits their magnitudes: at SNR
   10 with 8 channels they are 0.3 % of the liver whose second echo read ~0.9 sigma low
   (the fit ran off towards R2 ~900 s^-1), and dropping them read the headline 0.3 % low
   in LIC (benchmarks/README.md, "SNR 10, 8 channels").
3. ``vessels``: voxels "far from the parenchyma". (a) R2, low side only (blood, cysts
   and bile have low R2; high R2 inside the liver is iron and stays): a voxel is a
   vessel when ``R2 - median(R2) < -vessel_k * sqrt(se^2 + het^2)``, with ``se`` the
   voxel's own fit standard error (``fit.r2_std_per_s``) and ``het`` = 1.4826 MAD of the
   3x3 in-plane median-filtered R2 over the ROI (the parenchyma's spatial spread; 1.4826
   MAD is the SD of a normal distribution). Scaling by each voxel's own uncertainty is
   what keeps the rule from selecting on noise: per-voxel R2 noise grows with R2 (about
   25 % at 40 mg/g, SNR 50) and with receive-coil shading, and a global threshold would
   cut the noisy low tail in dark regions and bias the mean up. ``vessel_k = 4`` removes
   a fraction 3e-5 of normal parenchyma voxels. (b) S0, both sides: the 3x3 median of
   log S0 outside ``median +- vessel_k`` SDs, the robust SD with each voxel's own S0
   noise (``s0_outliers``: iron-rich voxels' S0 is an extrapolation) in place of the
   median's. (a2) The test of (a) on the 3x3 median R2, with the noise of a median of 9
   (variance ``pi/18 se^2``) in place of ``se^2`` and ``het`` without that noise: vessel
   cores that the voxel test misses at low SNR (10). (a3) R2 below the calibration's
   lowest calibrated R2 (parenchyma floor) by ``vessel_k`` SE (voxel, 3x3 median, or an
   in-plane region's median: ``fluid_regions``): fluid, however wide the liver's spread.
   (c) Low-R2 regions (in-plane connected) whose median R2 is at or above the floor are
   spared parenchyma and stay (:mod:`r2mri._roi_parenchyma`, issue 16). Medians and MADs
   are over the voxels left after rules 1-2. Vessel voxels are then dilated in-plane by
   ``vessel_margin_mm`` (default: one voxel) to drop partial-volume rims. Even a few
   vessel voxels matter at high iron: in a tile of the headline estimator blood's slow
   decay dominates the late echoes.

Rule 1 is :func:`edge_erosion`, also used by the thin-structure check before the
automatic proposal's fallback decision (:func:`eroded_voxels`, so that both count the
same voxels); rule 2 is :func:`failed_fits`, rule 3 :func:`vessels`;
:func:`apply_rules` runs them in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ._roi_evidence import thin_region_warning
from ._roi_grow import _MAD_TO_SD, _box, _robust, _smooth
from ._roi_iron import decayed_to_floor, erosion_inside, log_s0_se, s0_outliers
from ._roi_parenchyma import below_parenchyma, fluid_regions, spared_parenchyma
from .errors import InputError
from .status import FitStatus

__all__ = ["FAILED_STATUSES", "apply_rules", "edge_erosion", "eroded_voxels", "failed_fits", "vessels"]

#: Fit statuses that remove a voxel from the ROI (rule 2).
FAILED_STATUSES = (
    FitStatus.NOT_CONVERGED,
    FitStatus.TOO_FEW_ECHOES,
    FitStatus.BAD_INPUT,
    FitStatus.MASKED,
)

#: rule 2's floor fits with S0 = 0 (no signal found) join ``LiverROI.not_converged`` (their magnitudes pooled
#: by the headline) instead of leaving the headline's sample (branch floor30)
_POOL_FLOOR_FITS = True


def edge_erosion(cand: np.ndarray, dx: float, dy: float, erode_mm: float,
                 dark_edge: np.ndarray | None = None) -> np.ndarray:
    """Rule 1: the voxels of the non-empty ``cand`` that lie ``erode_mm`` or more from its
    in-plane edge (``dx``, ``dy``: in-plane voxel size, mm); ``dark_edge`` (voxels too
    dark to fit next to a grown candidate) counts as inside (:func:`r2mri._roi_iron.erosion_inside`).

    Examples
    --------
    >>> c = np.zeros((12, 12, 1), bool); c[1:11, 1:11] = True
    >>> int(edge_erosion(c, 2.0, 2.0, 4.0).sum())   # 10 x 10 keeps its 6 x 6 core
    36
    """
    # rules 1 and 3 look at most one voxel around the candidate (the vessel margin only
    # grows vessels, which lie in the candidate): they run on its box, same numbers
    cbox = _box(cand)
    kept = cand.copy()
    if erode_mm > 0:
        # a grown candidate's edge against liver too dark to fit is no partial-volume edge (_roi_iron)
        ebox, inside = (cbox, cand) if dark_edge is None else erosion_inside(cand, dark_edge, erode_mm, dx, dy, _box)
        for k in range(cbox[2].start, cbox[2].stop):
            sl = inside[ebox[0], ebox[1], k]
            if sl.any():
                # centre-to-nearest-outside-centre distance minus half a voxel = distance
                # from the voxel centre to the candidate's edge
                dist = ndimage.distance_transform_edt(np.pad(sl, 1), sampling=(dx, dy))[1:-1, 1:-1]
                kept[ebox[0], ebox[1], k] = cand[ebox[0], ebox[1], k] & (dist - 0.5 * min(dx, dy) >= erode_mm)
    return kept


def eroded_voxels(cand: np.ndarray, voxel_size_mm, erode_mm: float) -> int:
    """Voxels of ``cand`` that rule 1 (:func:`edge_erosion`, without a dark edge) removes, so
    that the thin-structure check (:func:`r2mri._roi_evidence.thin_region_warning`) can run
    before the automatic proposal's fallback decision.

    Examples
    --------
    >>> c = np.zeros((12, 12, 1), bool); c[1:11, 1:11] = True
    >>> eroded_voxels(c, (2.0, 2.0, 5.0), 4.0)   # 10 x 10 keeps its 6 x 6 core
    64
    """
    if erode_mm <= 0 or not cand.any():
        return 0
    kept = edge_erosion(cand, float(voxel_size_mm[0]), float(voxel_size_mm[1]), erode_mm)
    return int(np.count_nonzero(cand)) - int(np.count_nonzero(kept))


def failed_fits(kept: np.ndarray, r2: np.ndarray, s0: np.ndarray,
                status: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rule 2: ``(kept & good, good, not_converged)``; ``good`` are the voxels with a finite
    R2 and a finite positive S0 whose status is not in :data:`FAILED_STATUSES`;
    ``not_converged`` the ``kept`` voxels that are not good only because their fit did not
    converge or is a floor fit without signal (BELOW_NOISE, S0 = 0): the headline's sample.

    Examples
    --------
    >>> from r2mri.status import FitStatus
    >>> st = np.array([FitStatus.OK, FitStatus.BELOW_NOISE, FitStatus.NOT_CONVERGED, FitStatus.BAD_INPUT], np.uint8)
    >>> mask, good, pooled = failed_fits(np.ones(4, bool), np.full(4, 300.0), np.array([20.0, 0, 20, 20]), st)
    >>> mask.tolist(), pooled.tolist()
    ([True, False, False, False], [False, True, True, False])
    """
    good = np.isfinite(r2) & np.isfinite(s0) & (s0 > 0) & ~np.isin(status, FAILED_STATUSES)
    # a fit that did not converge is noise, not bad data (SNR 10, 8 channels: 0.3 % of the liver, echo 2 read
    # 0.9 sigma low); the headline pools their magnitudes, or it selects on noise (LiverROI.not_converged).
    # So is a floor fit that found no signal (S0 = 0): high-iron liver whose noise happened to be low
    # (module docstring, rule 2; docs/statistics.md, "Liver at the noise floor")
    pooled = (status == FitStatus.NOT_CONVERGED) | (status == FitStatus.BELOW_NOISE) if _POOL_FLOOR_FITS else (
        status == FitStatus.NOT_CONVERGED)
    not_converged = kept & ~good & pooled
    return kept & good, good, not_converged


def _vessel_voxels(kept_c: np.ndarray, cand_c: np.ndarray, good: np.ndarray, cbox: tuple[slice, ...],
                   r2: np.ndarray, s0: np.ndarray, status: np.ndarray, se: np.ndarray, image: Any, fit: Any,
                   floor_r2: float | None, vessel_k: float, grow_k: float,
                   options: dict[str, Any]) -> np.ndarray:
    """Rule 3 before the margin: the candidate's vessel, fluid and S0-outlier voxels, on
    the candidate's box ``cbox`` (``kept_c``, ``cand_c``, ``se``: already cut to it)."""
    # (a) R2, low side, each voxel against its own fit uncertainty plus the
    #     parenchyma's spatial spread: z = (R2 - median) / sqrt(se^2 + het^2)
    good_c, r2_c = good[cbox], r2[cbox]
    rs = _smooth(np.where(good, r2, np.nan), good, cbox)
    med = float(np.median(r2_c[kept_c]))
    _, het = _robust(rs[kept_c])
    scale = np.sqrt(se**2 + het**2)
    with np.errstate(invalid="ignore"):
        vessel = good_c & (scale > 0) & np.isfinite(scale) & (r2_c - med < -vessel_k * scale)
    # (a2) the same test on the 3x3 median R2, for vessels the voxel test cannot see
    #      at low SNR: a vessel core is a run of low voxels, and the median of 9
    #      values of SD se has a variance of only about pi/(2*9) se^2 (the large-
    #      sample variance of a median, pi/2 sigma^2/n), while an isolated noisy
    #      liver voxel does not move its neighbourhood's median. The parenchyma's
    #      spread is het with that noise removed (at SNR 10 the noise was most of it).
    #      Measured on the low-SNR phantom (SNR 10, 8 coils, LIC 7): 2,490 vessel
    #      voxels (3.3 %) stayed in the ROI and the headline read 6.42 mg/g (95 %
    #      interval 6.30-6.55); with this rule <= 1 stays and it reads 7.04 (seed 0)
    #      and 7.00 (seed 1). At SNR 50 it changes the headline by <= 0.05 %.
    finite_se = se[kept_c][np.isfinite(se[kept_c])]
    noise_var = np.pi / 18.0 * float(np.median(finite_se**2)) if finite_se.size else 0.0
    het_par = float(np.sqrt(max(het**2 - noise_var, 0.0)))
    with np.errstate(invalid="ignore"):
        scale_s = np.sqrt(np.pi / 18.0 * se**2 + het_par**2)
        vessel |= good_c & np.isfinite(scale_s) & (scale_s > 0) & (rs - med < -vessel_k * scale_s)
    # (c) low R2 is not enough: spared parenchyma (R2 at or above the calibration's
    #     lowest calibrated rate) stays, fluids (blood, bile, cysts) go (issue 16,
    #     r2mri/_roi_parenchyma.py)
    #     and (a3) R2 significantly below that lowest rate is fluid whatever the
    #     liver's own spread (a heterogeneous liver widens het beyond the median)
    if floor_r2 is not None:
        fluid = good_c & below_parenchyma(r2_c, rs, se, floor_r2, vessel_k, med)
        fluid |= fluid_regions(r2_c, se, good_c & cand_c & (status[cbox] != FitStatus.BELOW_NOISE), floor_r2,
                               vessel_k, med)
        spared = spared_parenchyma((vessel | fluid) & cand_c, r2_c, floor_r2, med, cand_c) & ~fluid
        vessel = (vessel & ~spared) | fluid
        options["low_r2_kept_as_parenchyma"] = int(np.count_nonzero(spared))
    # (b) S0, both sides, on the 3x3 median of log S0
    ls = _smooth(np.log(np.where(good, s0, 1.0)), good, cbox)
    #     each voxel's own S0 noise in the SD (iron-rich patches: _roi_parenchyma.s0_outliers)
    s0_out = s0_outliers(ls, log_s0_se(r2_c, se, getattr(image, "echo_times_s", None)), kept_c, vessel_k,
                         _MAD_TO_SD)
    floor_decay = decayed_to_floor(image, fit, cbox, grow_k)  # no S0 evidence there (_roi_iron)
    vessel |= s0_out if floor_decay is None else s0_out & ~floor_decay
    return vessel & cand_c


def vessels(kept: np.ndarray, not_converged: np.ndarray, cand: np.ndarray, good: np.ndarray, r2: np.ndarray,
            s0: np.ndarray, status: np.ndarray, image: Any, fit: Any, floor_r2: float | None, vessel_k: float,
            vessel_margin_mm: float | None, grow_k: float, options: dict[str, Any]) -> np.ndarray:
    """Rule 3: removes vessels, fluid and S0 outliers (dilated in-plane by the vessel
    margin) from ``kept`` and ``not_converged`` in place; returns the non-parenchyma mask
    (before the margin). Nothing is removed when fewer than 10 voxels are left."""
    shape = kept.shape
    non_parenchyma = np.zeros(shape, dtype=bool)
    if int(np.count_nonzero(kept)) < 10:
        return non_parenchyma
    r2_std = getattr(fit, "r2_std_per_s", None)
    se = np.zeros(shape) if r2_std is None else np.asarray(r2_std, dtype=np.float64)
    if se.shape != shape:
        raise InputError(f"fit.r2_std_per_s: shape {se.shape} does not match the image grid {shape}")
    cbox = _box(cand)
    # a voxel without a finite SE (noise floor, bound hit) is no evidence of a vessel
    se = np.where(np.isfinite(se[cbox]), np.abs(se[cbox]), np.inf)
    vessel = _vessel_voxels(kept[cbox], cand[cbox], good, cbox, r2, s0, status, se, image, fit, floor_r2,
                            vessel_k, grow_k, options)
    non_parenchyma[cbox] = vessel
    dx, dy = image.voxel_size_mm[0], image.voxel_size_mm[1]
    margin = dx if vessel_margin_mm is None else float(vessel_margin_mm)
    options["vessel_margin_mm"] = margin
    if margin > 0 and vessel.any():
        ri, rj = int(np.floor(margin / dx + 1e-9)), int(np.floor(margin / dy + 1e-9))
        ii, jj = np.mgrid[-ri:ri + 1, -rj:rj + 1]
        disk = (ii * dx) ** 2 + (jj * dy) ** 2 <= margin**2 + 1e-9
        vessel = ndimage.binary_dilation(vessel, structure=disk[:, :, None])
    kept[cbox] &= ~vessel
    not_converged[cbox] &= ~vessel
    return non_parenchyma


def apply_rules(cand: np.ndarray, image: Any, fit: Any, r2: np.ndarray, s0: np.ndarray, status: np.ndarray, *,
                erode_mm: float, vessel_k: float, vessel_margin_mm: float | None, grow_k: float,
                floor_r2: float | None, dark_edge: np.ndarray | None, automatic: bool, options: dict[str, Any],
                warnings: list[str]) -> tuple[np.ndarray, dict[str, int], np.ndarray, np.ndarray]:
    """Rules 1-3 on the non-empty candidate ``cand``: ``(kept, removed, non_parenchyma,
    not_converged)``. ``options`` and ``warnings`` (an automatic candidate that the
    erosion thins by more than half) are added to in place."""
    dx, dy, _ = image.voxel_size_mm
    n_candidate = int(np.count_nonzero(cand))
    removed: dict[str, int] = {}
    kept = edge_erosion(cand, dx, dy, erode_mm, dark_edge)  # rule 1: in-plane erosion by erode_mm
    removed["edge_erosion"] = n_candidate - int(np.count_nonzero(kept))
    thin = thin_region_warning(n_candidate, removed["edge_erosion"], erode_mm) if automatic else None
    warnings.extend([thin] if thin else [])
    after, good, not_converged = failed_fits(kept, r2, s0, status)  # rule 2
    removed["fit_failed"] = int(np.count_nonzero(kept)) - int(np.count_nonzero(after))
    kept = after
    n_before = int(np.count_nonzero(kept))
    non_parenchyma = vessels(kept, not_converged, cand, good, r2, s0, status, image, fit, floor_r2, vessel_k,
                             vessel_margin_mm, grow_k, options)  # rule 3
    removed["vessels"] = n_before - int(np.count_nonzero(kept))
    return kept, removed, non_parenchyma, not_converged
