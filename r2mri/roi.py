"""The liver region of interest (ROI) the statistics are computed on.

:func:`liver_roi` starts from one of four candidates and then always applies the same
three exclusion rules, counting the voxels each removes.

Candidate (``LiverROI.method``)
-------------------------------
``"user mask"``
    A boolean mask (``r2mri.load_mask``), e.g. drawn by a radiologist.
``"seed"``
    Semi-automatic: the region grown (see below) from a voxel the user names.
``"bounding box"``
    Semi-automatic: the largest region grown from the most homogeneous voxels inside a
    box the user gives.
``"automatic"``
    A *proposal*, marked ``automatic=True`` in every output and self-checked (below).
    It assumes an axial slab through the liver and must be checked by a reader.

Region growing (seed, box, automatic): on status-OK voxels with S0 above 5 % of the
99th percentile of S0 ("tissue"), with the R2 and S0 maps 3x3 in-plane median filtered
and taken in log. The region starts as 3x3 voxels around the seed and is then, until it
stops changing, the set of tissue voxels connected to it (6-connectivity in 3-D) whose
log R2 and high-passed log S0 (log S0 minus its 30 mm Gaussian tissue mean, which takes
out receive-coil shading) lie within ``grow_k`` (3) robust SDs of the region's medians
(at least 0.15 and 0.25, at most 0.3 and 0.4), and whose log S0 step to an in-plane
neighbour does not exceed max(0.2, median + 6 robust SDs of the region's steps) (organ
edges stop it).
Holes are then filled slice by slice (vessels and noise-floor voxels come back and are
judged by the rules below, not by the growing).

Seeds (box, automatic): tissue voxels (5x5 in-plane eroded; automatic: on the patient's
right half of the body, RAS +x) in order of homogeneity (local 5x5 SD of smoothed log R2
plus log S0), skipping any voxel inside or next to a region already grown (unless
that region drifted, below) or within 40 mm in-plane of an earlier seed,, until 12 regions are grown or the voxels run out.
Skipping grown regions is what lets a noisy high-iron liver, the *least* homogeneous
tissue, get a seed after fat, muscle and soft tissue have had theirs (before, the eight
most homogeneous seeds all fell in those, and at 40 mg/g soft tissue + spleen was
returned). Score of a region: (grown voxels on the patient's right, or all voxels for
a box) x (grown / filled voxels) x (fraction within 0.15 of the region's median log
R2); the second factor rejects rings such as subcutaneous fat, which would fill to the
whole body, the third regions that merged two tissues. A region scores 0 when
(a) it *drifted*: its seed's 3x3 median log R2 (log S0) lies further than
max(0.3, k robust SDs) (max(0.4, k SDs)) from the final region's median (the seed's
tissue was swallowed by a larger neighbour), or (b) it is a *duplicate*: half or more of
its extent (filled voxels; grown voxels for a ring) lies in an earlier scored region.
(b) fixes an intermittent choice between the liver and the liver plus its one-voxel
partial-volume rim (grown from a later seed on the rim; scores within 1 %, Dice 0.94
vs 0.89 at 6 mm pixels): the first growth, from the more homogeneous seed, is kept.

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
used by the extension only, and only when the region's median R2* is above the normal range.
An automatic R2* ROI with more than 5 % of its voxels (3x3 median) inside the normal-liver
R2* range by twice their noise gets a warning: R2* cannot separate a low-iron liver from
other tissue (:mod:`r2mri._roi_low_iron`, ``roi.options["low_iron"]``).

Noisy neighbours (:mod:`r2mri._roi_evidence`): each region is grown a second time only
through voxels whose relative R2 SE is at most twice its median, the extension adds
only tissue above the floor by 2 of its SEs, and pieces of tissue whose R2 lies
significantly below the floor (checkerboard sample splitting) are cut from the
candidate: at low SNR and low iron the spleen and viscera otherwise came in.

Self-check of the automatic proposal (``roi.options["automatic_checks"]``; any failure
adds a ``"liver ROI: WARNING - ..."`` to ``roi.warnings``, which the report prints):
the winning region must have >= 60 % of its voxels on the patient's right, cover
10-60 % of the body cross-section (filled tissue outline) in its slices, and no
separate region may score >= 80 % of it (ambiguous); its median R2 must not lie below
the parenchyma floor, and the edge erosion must not remove more than half of it. These limits are r2mri's own
[D], chosen around the shipped phantoms (right fraction 0.81-0.86, body fraction
0.26-0.32, runner-up 0.04-0.10; the old wrong choice at 40 mg/g: right fraction 0.28).
A proposal that fails (or is thin) is retried on R2 of pooled 5x5 neighbourhoods, and
the ROI says so when that is used (:mod:`r2mri._roi_high_iron`, high iron at low SNR).

Exclusion rules (in this order; ``LiverROI.removed`` counts each)
-----------------------------------------------------------------
1. ``edge_erosion``: voxels within ``erode_mm`` (default 5 mm) of the candidate's edge,
   in-plane (slices are thick and gapped), by the Euclidean distance transform with the
   voxel size of the affine; holes (vessels cut out of the candidate) are edges too.
2. ``fit_failed``: non-finite R2 or S0, or status NOT_CONVERGED, TOO_FEW_ECHOES,
   BAD_INPUT or MASKED. BELOW_NOISE and BOUND_HIT voxels are *kept* (and counted by the
   statistics): they are real high-iron liver whose raw signal the headline estimator
   uses; dropping them would select on noise and bias the mean R2 low at high iron.
   NOT_CONVERGED voxels leave the mask (their R2 is no measurement) but are kept in
   ``LiverROI.not_converged``, and the tile-pooled headline fits their magnitudes: at SNR
   10 with 8 channels they are 0.3 % of the liver whose second echo read ~0.9 sigma low
   (the fit ran off towards R2 ~900 s^-1), and dropping them read the headline 0.3 % low
   in LIC (benchmarks/README.md, "SNR 10, 8 channels").
3. ``vessels``: voxels "far from the parenchyma". (a) R2, low side only (blood, cysts
   and bile have low R2; high R2 inside the liver is iron and stays): a voxel is a vessel
   when ``R2 - median(R2) < -vessel_k * sqrt(se^2 + het^2)``, with ``se`` the voxel's own
   fit standard error (``fit.r2_std_per_s``) and ``het`` = 1.4826 MAD of the 3x3 in-plane
   median-filtered R2 over the ROI (the parenchyma's spatial spread; 1.4826 MAD is the
   SD of a normal distribution). Scaling by each voxel's own uncertainty is what keeps
   the rule from selecting on noise: per-voxel R2 noise grows with R2 (about 25 % at
   40 mg/g, SNR 50) and with receive-coil shading, and a global threshold would cut the
   noisy low tail in dark regions and bias the mean up. ``vessel_k = 4`` removes a
   fraction 3e-5 of normal parenchyma voxels. (b) S0, both sides: the 3x3 median of log
   S0 outside ``median +- vessel_k`` SDs, the robust SD with each voxel's own S0 noise
   (``s0_outliers``: iron-rich voxels' S0 is an extrapolation) in place of the median's. (a2) The test of (a) on the 3x3 median R2, with the
   noise of a median of 9 (variance ``pi/18 se^2``) in place of ``se^2`` and ``het``
   without that noise: vessel cores that the voxel test misses at low SNR (10). (a3) R2
   below the calibration's lowest calibrated R2 (parenchyma floor) by ``vessel_k`` SE
   (voxel, 3x3 median, or an in-plane region's median: ``fluid_regions``): fluid,
   however wide the liver's spread. (c) Low-R2 regions
   (in-plane connected) whose median R2 is at or above the floor are spared
   parenchyma and stay (:mod:`r2mri._roi_parenchyma`, issue 16). Medians
   and MADs are over the voxels left after rules 1-2. Vessel voxels are then dilated in-plane by ``vessel_margin_mm`` (default: one
   voxel) to drop partial-volume rims. Even a few vessel voxels matter at high iron: in
   a tile of the headline estimator blood's slow decay dominates the late echoes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from ._numba_setup import njit
from ._roi_evidence import (NO_EVIDENCE, above_floor, below_floor_median, demote_below_floor, determined_r2,
                            drop_below_floor_pieces, relative_r2_se, thin_region_warning)
from ._roi_high_iron import eroded_voxels, high_iron_proposal
from ._roi_low_iron import low_iron_warning
from ._roi_iron import (dark_rim, dark_rim_mask, decayed_to_floor, erosion_inside, floor_at_last_echo,
                        iron_noise_maps, join_decayed_rim, log_s0_se, s0_outliers)
from ._roi_patches import pdff_map
from ._roi_parenchyma import (below_parenchyma, extend_to_parenchyma, extension_min_median_per_s, fluid_regions,
                              is_r2star_floor, parenchyma_r2_floor_per_s, spared_parenchyma)
from .errors import InputError
from .status import FitStatus

__all__ = ["LiverROI", "liver_roi", "FAILED_STATUSES"]

#: Fit statuses that remove a voxel from the ROI (rule 2).
FAILED_STATUSES = (
    FitStatus.NOT_CONVERGED,
    FitStatus.TOO_FEW_ECHOES,
    FitStatus.BAD_INPUT,
    FitStatus.MASKED,
)

_MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): MAD of a normal distribution times this is its SD
# Smallest half-widths of the growing band, in natural-log units [D]: 0.15 (R2 within
# about 16 %) and 0.25 (S0 within about 28 %, room for receive-coil shading); they only
# matter when the region's own robust SD is smaller than band / grow_k.
_BAND_FLOOR_R2 = 0.15
_BAND_FLOOR_S0 = 0.25
# Largest half-widths [D]: 0.4 (R2 within a factor 1.5) and 0.5 (S0 within a factor
# 1.65), so a region that has swallowed two tissues cannot widen its band to all of the
# body; the liver's own smoothed spread is below 0.1 in log R2 even at 40 mg/g, SNR 50.
_BAND_CAP_R2 = 0.3
_BAND_CAP_S0 = 0.4
# Scale of receive-coil shading removed from log S0 before growing (mm) [D]: larger than
# organ boundaries are sharp, smaller than the body; 30 mm.
_SHADING_MM = 30.0
# Smallest log-S0 step between in-plane neighbours that counts as an organ edge [D]:
# 0.2 (an 22 % jump); coil shading changes S0 by a few % per voxel, liver/muscle by ~50 %.
_EDGE_FLOOR = 0.2
# Automatic/box seeds: up to _N_SEEDS regions grown from the most homogeneous tissue
# voxels not inside an earlier region and _SEED_SPACING_MM apart in-plane, so that a noisy
# (high-iron) liver, which is never the most homogeneous tissue, still gets a seed [D]
# (on the shipped phantoms the liver was the 1st region grown at low iron, the 5th at 40 mg/g).
_N_SEEDS = 12
_SEED_SPACING_MM = 40.0
# Plausibility of the automatic candidate [D]: r2mri's own limits, set around the shipped
# phantoms (right fraction 0.81-0.86, body fraction 0.26-0.32, runner-up score ratio
# 0.04-0.10 at 128 and 256 matrices; see docs/statistics.md); failures warn, not raise.
_MIN_RIGHT_FRACTION = 0.6
_BODY_FRACTION = (0.1, 0.6)
_AMBIGUOUS = 0.8


@dataclass
class LiverROI:
    """The liver ROI used by the statistics.

    Attributes
    ----------
    mask : ndarray of bool, shape (x, y, z)
        Voxels kept after every rule.
    method : str
        ``"user mask"``, ``"seed"``, ``"bounding box"`` or ``"automatic"``.
    automatic : bool
        True when no human chose the region (report it as a proposal).
    removed : dict
        Voxels removed by each rule, in order: ``edge_erosion``, ``fit_failed``,
        ``vessels``.
    n_candidate : int
        Voxels in the candidate before the rules.
    voxel_volume_ml : float
        Volume of one voxel (in-plane size times slice thickness when known, else the
        slice spacing), millilitres.
    options : dict
        The options used (JSON-serialisable).
    warnings : list of str
    candidate : ndarray of bool or None
        The candidate before the rules.
    non_parenchyma : ndarray of bool or None
        Candidate voxels called vessels, fluid or S0 outliers by rule 3 (before the
        margin dilation): not liver parenchyma (the liver is ``candidate`` without them).
    not_converged : ndarray of bool or None
        Voxels removed by rule 2 only because their voxel fit did not converge (not by
        rules 1 or 3): liver whose noise sent the fit astray. Not in ``mask``; the
        tile-pooled headline, which fits magnitudes, uses them (docs/statistics.md,
        "Voxels whose fit did not converge").
    """

    mask: np.ndarray
    method: str
    automatic: bool
    removed: dict[str, int]
    n_candidate: int
    voxel_volume_ml: float
    options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    candidate: np.ndarray | None = None
    non_parenchyma: np.ndarray | None = None
    not_converged: np.ndarray | None = None

    @property
    def n_voxels(self) -> int:
        """Voxels in the final ROI."""
        return int(np.count_nonzero(self.mask))

    @property
    def volume_ml(self) -> float:
        """ROI volume in millilitres."""
        return self.n_voxels * self.voxel_volume_ml

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``roi`` block of report.json."""
        return {
            "method": self.method,
            "automatic": self.automatic,
            "n_voxels": self.n_voxels,
            "volume_ml": self.volume_ml,
            "n_candidate": self.n_candidate,
            "removed": dict(self.removed),
            "voxel_volume_ml": self.voxel_volume_ml,
            "options": dict(self.options),
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- helpers
def _maps(fit: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        r2 = np.asarray(fit.r2_per_s, dtype=np.float64)
        s0 = np.asarray(fit.s0, dtype=np.float64)
        status = np.asarray(fit.status)
    except AttributeError as exc:
        raise InputError(f"fit: expected a FitResult with r2_per_s, s0 and status ({exc})") from None
    for name, arr in (("fit.r2_per_s", r2), ("fit.s0", s0), ("fit.status", status)):
        if arr.shape != tuple(shape):
            raise InputError(f"{name}: shape {arr.shape} does not match the image grid {tuple(shape)}")
    return r2, s0, status


_WHOLE = (slice(None), slice(None), slice(None))


def _box(mask: np.ndarray, margin: int = 1) -> tuple[slice, slice, slice]:
    """Bounding box of a non-empty ``mask``, grown by ``margin`` voxels in-plane (inside the grid).

    An in-plane neighbourhood operation of radius ``<= margin`` gives the same numbers
    on the voxels of ``mask`` whether it runs on the box or on the whole grid: all the
    voxels it reads are in the box, and at a box edge that is not a grid edge the
    box holds ``margin`` voxels outside ``mask``.
    """
    box = []
    for axis, grow in ((0, margin), (1, margin), (2, 0)):
        idx = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(int(idx[0]) - grow, 0), min(int(idx[-1]) + 1 + grow, mask.shape[axis])))
    return tuple(box)  # type: ignore[return-value]


def _smooth(values: np.ndarray, valid: np.ndarray, box: tuple[slice, ...] = _WHOLE) -> np.ndarray:
    """3x3 in-plane median of ``values`` in ``box``; invalid voxels are filled with the valid median first.

    The fill value is the median over all valid voxels; the result (of the box's shape)
    equals the whole-grid filter on voxels one voxel inside the box or on a grid edge.
    """
    fill = float(np.median(values[valid])) if valid.any() else 0.0
    filled = np.where(valid[box], values[box], fill)
    if filled.ndim == 3 and filled.dtype == np.float64 and np.isfinite(filled).all():
        return _median3x3_inplane(filled)
    return ndimage.median_filter(filled, size=(3, 3, 1), mode="nearest")


@njit
def _median3x3_inplane(a):
    """``ndimage.median_filter(a, size=(3, 3, 1), mode="nearest")`` for a finite float64
    (x, y, z) array, exactly (a median picks one of the nine values), ~20x faster:
    the median-of-9 sorting network of Paeth (Graphics Gems, 1990) as given by
    Devillard ("Fast median search: an ANSI C implementation", 1998, ``opt_med9``),
    19 compare-exchanges per voxel instead of scipy's generic rank selection."""
    nx, ny, nz = a.shape
    out = np.empty_like(a)
    for k in range(nz):
        for i in range(nx):
            i0 = i - 1 if i > 0 else 0
            i2 = i + 1 if i < nx - 1 else nx - 1
            for j in range(ny):
                j0 = j - 1 if j > 0 else 0
                j2 = j + 1 if j < ny - 1 else ny - 1
                p0, p1, p2 = a[i0, j0, k], a[i0, j, k], a[i0, j2, k]
                p3, p4, p5 = a[i, j0, k], a[i, j, k], a[i, j2, k]
                p6, p7, p8 = a[i2, j0, k], a[i2, j, k], a[i2, j2, k]
                if p1 > p2:
                    p1, p2 = p2, p1
                if p4 > p5:
                    p4, p5 = p5, p4
                if p7 > p8:
                    p7, p8 = p8, p7
                if p0 > p1:
                    p0, p1 = p1, p0
                if p3 > p4:
                    p3, p4 = p4, p3
                if p6 > p7:
                    p6, p7 = p7, p6
                if p1 > p2:
                    p1, p2 = p2, p1
                if p4 > p5:
                    p4, p5 = p5, p4
                if p7 > p8:
                    p7, p8 = p8, p7
                if p0 > p3:
                    p0, p3 = p3, p0
                if p5 > p8:
                    p5, p8 = p8, p5
                if p4 > p7:
                    p4, p7 = p7, p4
                if p3 > p6:
                    p3, p6 = p6, p3
                if p1 > p4:
                    p1, p4 = p4, p1
                if p2 > p5:
                    p2, p5 = p5, p2
                if p4 > p7:
                    p4, p7 = p7, p4
                if p4 > p2:
                    p4, p2 = p2, p4
                if p6 > p4:
                    p6, p4 = p4, p6
                if p4 > p2:
                    p4, p2 = p2, p4
                out[i, j, k] = p4
    return out


def _robust(values: np.ndarray) -> tuple[float, float]:
    med = float(np.median(values))
    return med, _MAD_TO_SD * float(np.median(np.abs(values - med)))


def _inplane_steps(f: np.ndarray) -> np.ndarray:
    """Largest absolute difference of each voxel to its 4 in-plane neighbours."""
    step = np.zeros_like(f)
    for axis in (0, 1):
        d = np.abs(np.diff(f, axis=axis))
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        step[tuple(lo)] = np.maximum(step[tuple(lo)], d)
        step[tuple(hi)] = np.maximum(step[tuple(hi)], d)
    return step


def _grow(seed_region: np.ndarray, allowed_tissue: np.ndarray, logr: np.ndarray, logs: np.ndarray,
          k: float, steps: np.ndarray, max_iter: int = 100) -> np.ndarray:
    """Band region growing: iterate (robust band of the region) -> (connected component).

    Each round keeps the ``allowed_tissue`` voxels within the band of the region's
    medians (``logr``, ``logs``: ``min(max(k SD, floor), cap)``) whose in-plane step
    ``steps`` (of the smoothed log S0) is at most max(floor, median + 2 k SD of the
    region's steps), which bars growth across organ edges; the new region is every
    face-connected component of those voxels that the region touches. It stops when
    the region no longer changes, after ``max_iter`` rounds, or (keeping the region)
    when no component is touched.

    The rounds run in :func:`_grow_kernel` (numba): medians by selection and a flood
    fill instead of ``np.median`` and ``ndimage.label``, the same region to the voxel
    (tested against that reference); 0.18 -> 0.10 s for the five growths of a
    FerriScan phantom.
    """
    region = seed_region & allowed_tissue
    if not region.any():
        return region
    return _grow_kernel(
        np.ascontiguousarray(region), np.ascontiguousarray(allowed_tissue),
        np.ascontiguousarray(logr, dtype=np.float64), np.ascontiguousarray(logs, dtype=np.float64),
        np.ascontiguousarray(steps, dtype=np.float64), float(k), _EDGE_FLOOR, _BAND_FLOOR_R2, _BAND_CAP_R2,
        _BAND_FLOOR_S0, _BAND_CAP_S0, _MAD_TO_SD, int(max_iter),
    )


@njit
def _select(a, n, k):
    """The ``k``-th smallest of ``a[:n]`` (0-based), reordering ``a[:n]`` in place so that
    ``a[:k]`` holds values <= it: Hoare's quickselect with a median-of-three pivot
    (C. A. R. Hoare, "Algorithm 65: FIND", Commun. ACM 4(7), 1961). 0.66 ms for 80,000
    values, against 1 ms for numba's ``np.partition``."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@njit
def _median_of(values, n):
    """Median of finite ``values[:n]`` (reordered in place), as ``np.median`` gives it:
    the middle value, or the mean of the two middle values for even ``n``."""
    h = n // 2
    hi = _select(values, n, h)
    if n % 2 == 1:
        return hi
    lo = values[0]  # the largest of the lower half is the other middle value
    for i in range(1, h):
        if values[i] > lo:
            lo = values[i]
    return (lo + hi) / 2.0


@njit
def _robust_kernel(values, n, scratch, mad_to_sd):
    """(median, MAD-based SD) of ``values[:n]`` (reordered), as :func:`_robust`."""
    med = _median_of(values, n)
    for i in range(n):
        scratch[i] = abs(values[i] - med)
    return med, mad_to_sd * _median_of(scratch, n)


@njit
def _grow_kernel(region, allowed, logr, logs, steps, k, edge_floor, floor_r2, cap_r2, floor_s0, cap_s0,
                 mad_to_sd, max_iter):
    """The rounds of :func:`_grow` on C-contiguous (x, y, z) arrays; returns the region."""
    nx, ny, nz = region.shape
    size = region.size
    reg = region.ravel().copy()
    alw = allowed.ravel()
    fr, fs, fst = logr.ravel(), logs.ravel(), steps.ravel()
    vr = np.empty(size)
    vs = np.empty(size)
    vst = np.empty(size)
    scratch = np.empty(size)
    ok = np.empty(size, dtype=np.bool_)
    new = np.empty(size, dtype=np.bool_)
    queue = np.empty(size, dtype=np.int64)
    sx, sy = ny * nz, nz
    for _ in range(max_iter):
        # [D] an int64 from the start: a literal 0 made numba compile _robust_kernel,
        # _median_of and _select twice, for Literal[int](0) and for int64 (~1 s of a
        # first run; issue 14)
        n = np.int64(0)
        for i in range(size):
            if reg[i]:
                vr[n] = fr[i]
                vs[n] = fs[i]
                vst[n] = fst[i]
                n += 1
        med, sd = _robust_kernel(vst, n, scratch, mad_to_sd)
        lim_st = max(edge_floor, med + 2 * k * sd)
        med_r, sd_r = _robust_kernel(vr, n, scratch, mad_to_sd)
        lim_r = min(max(k * sd_r, floor_r2), cap_r2)
        med_s, sd_s = _robust_kernel(vs, n, scratch, mad_to_sd)
        lim_s = min(max(k * sd_s, floor_s0), cap_s0)
        for i in range(size):
            ok[i] = alw[i] and fst[i] <= lim_st and abs(fr[i] - med_r) <= lim_r and abs(fs[i] - med_s) <= lim_s
        # flood fill of ok from the region's ok voxels (6-connectivity) = the
        # components of ok that the region touches
        head = 0
        tail = 0
        for i in range(size):
            new[i] = False
        for i in range(size):
            if reg[i] and ok[i]:
                new[i] = True
                queue[tail] = i
                tail += 1
        if tail == 0:
            break  # no component touched: the region stays
        while head < tail:
            i = queue[head]
            head += 1
            x = i // sx
            y = (i // sy) % ny
            z = i % nz
            # the six face neighbours inside the box, written out: a helper function for
            # the repeated queueing step (even inlined) made the kernel 2.5x slower
            for d in range(6):
                if d == 0:
                    if x == 0:
                        continue
                    j = i - sx
                elif d == 1:
                    if x == nx - 1:
                        continue
                    j = i + sx
                elif d == 2:
                    if y == 0:
                        continue
                    j = i - sy
                elif d == 3:
                    if y == ny - 1:
                        continue
                    j = i + sy
                elif d == 4:
                    if z == 0:
                        continue
                    j = i - 1
                else:
                    if z == nz - 1:
                        continue
                    j = i + 1
                if ok[j] and not new[j]:
                    new[j] = True
                    queue[tail] = j
                    tail += 1
        same = True
        for i in range(size):
            if new[i] != reg[i]:
                same = False
            reg[i] = new[i]
        if same:
            break
    return reg.reshape((nx, ny, nz))


def _concurrently(*calls):
    """Results of independent calls ``(func, args, kwargs)``, two at a time on threads.

    For scipy.ndimage filters, which release the GIL while they run: on two cores
    the two shading filters of the ROI take 0.09 instead of 0.18 s, with the same
    numbers (each call is computed exactly as it would be alone). The threads end with
    the call (the ``with`` block joins them): the library leaves no thread behind in its
    caller's process (docs/architecture.md).
    """
    if len(calls) < 2 or (os.cpu_count() or 1) < 2:
        return [f(*a, **k) for f, a, k in calls]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(f, *a, **k) for f, a, k in calls]
        return [fut.result() for fut in futures]


def _homogeneity(logr: np.ndarray, logs: np.ndarray, size: int) -> np.ndarray:
    """Local in-plane SD of smoothed log R2 plus log S0 over a size x size window."""
    out = np.zeros(logr.shape)
    kw = {"size": (size, size, 1), "mode": "nearest"}
    filt = ndimage.uniform_filter
    m1r, m2r, m1s, m2s = _concurrently((filt, (logr,), kw), (filt, (logr * logr,), kw),
                                       (filt, (logs,), kw), (filt, (logs * logs,), kw))
    for m1, m2 in ((m1r, m2r), (m1s, m2s)):
        out += np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    return out


def _describe(region: np.ndarray, filled: np.ndarray, start: np.ndarray, logr: np.ndarray,
              logs: np.ndarray, right: np.ndarray, automatic: bool, k: float) -> dict[str, Any]:
    """Score of one grown region (see the module docstring) and the numbers behind it."""
    n = int(np.count_nonzero(region))
    out: dict[str, Any] = {"filled": filled, "n": n, "score": 0.0}
    if n == 0 or not start.any():
        return out
    # organs are compact; a ring (subcutaneous fat, muscle wall) encloses the body and
    # would fill to all of it: weight by the fraction of the filled region grown
    compact = n / max(int(np.count_nonzero(filled)), 1)
    med_r, med_s = float(np.median(logr[region])), float(np.median(logs[region]))
    # one tissue: the fraction of the region within the band floor of its own median
    # log R2 (a region that merged two tissues has two modes)
    core = float(np.mean(np.abs(logr[region] - med_r) <= _BAND_FLOOR_R2))
    # drift: a region whose median left its seed's tissue grew into a neighbour that
    # outnumbers the seed's own tissue (e.g. soft tissue -> spleen -> liver)
    drift_r = abs(med_r - float(np.median(logr[start])))
    drift_s = abs(med_s - float(np.median(logs[start])))
    n_filled = int(np.count_nonzero(filled))
    right_frac = float(np.count_nonzero(filled & right)) / max(n_filled, 1)
    base = np.count_nonzero(region & right) if automatic else n
    # drifted: the seed's tissue lies outside both the widest band and k robust SDs of
    # the final region (a heterogeneous liver seeded in an iron-rich patch is not drift)
    drifted = (drift_r > max(_BAND_CAP_R2, k * _robust(logr[region])[1])
               or drift_s > max(_BAND_CAP_S0, k * _robust(logs[region])[1]))
    out.update(compact=compact, core=core, drift_r2=drift_r, drift_s0=drift_s, right_fraction=right_frac,
               drifted=bool(drifted), score=0.0 if drifted else float(base) * compact * core)
    return out


def _plausibility(best: dict[str, Any], others: list[dict[str, Any]], cand: np.ndarray,
                  tissue: np.ndarray, right: np.ndarray, voxel_ml: float) -> tuple[list[str], dict[str, float]]:
    """Warnings when the automatic candidate does not look like a liver (module docstring)."""
    msgs: list[str] = []
    if best["score"] <= 0:
        return ["liver ROI: WARNING - no grown region qualified as one homogeneous organ; "
                "the automatic proposal is unreliable, give a mask"], {}
    body_area = 0
    for k in range(cand.shape[2]):
        if cand[:, :, k].any():
            body_area += int(np.count_nonzero(ndimage.binary_fill_holes(tissue[:, :, k] | cand[:, :, k])))
    frac_body = np.count_nonzero(cand) / max(body_area, 1)
    vol = np.count_nonzero(cand) * voxel_ml
    if best["right_fraction"] < _MIN_RIGHT_FRACTION:
        msgs.append(f"liver ROI: WARNING - the automatic region is not right-sided ({best['right_fraction']:.0%} "
                    f"on the patient's right, expected >= {_MIN_RIGHT_FRACTION:.0%}); it is probably not "
                    "the liver: check it or give a mask")
    if not _BODY_FRACTION[0] <= frac_body <= _BODY_FRACTION[1]:
        msgs.append(f"liver ROI: WARNING - the automatic region ({vol:.0f} ml) covers {frac_body:.0%} of the "
                    f"body cross-section in its slices, outside the plausible {_BODY_FRACTION[0]:.0%}-"
                    f"{_BODY_FRACTION[1]:.0%} for a liver; check it or give a mask")
    runner_up = max((o["score"] for o in others if not (o["extent"] & cand).any()), default=0.0) / best["score"]
    if runner_up >= _AMBIGUOUS:
        msgs.append(f"liver ROI: WARNING - a second, separate region scores {runner_up:.0%} of the chosen "
                    "one; the automatic choice is ambiguous: check it or give a mask")
    checks = {"volume_ml": float(vol), "right_fraction": float(best["right_fraction"]),
              "body_fraction": float(frac_body), "runner_up_score_ratio": float(runner_up)}
    return msgs, checks


def _ras_x(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return affine[0, 0] * i + affine[0, 1] * j + affine[0, 2] * k + affine[0, 3]


def _voxel_volume_ml(image: Any) -> float:
    dx, dy, dz = image.voxel_size_mm
    thick = (image.metadata or {}).get("slice_thickness_mm")
    if isinstance(thick, (int, float)) and np.isfinite(thick) and thick > 0:
        dz = float(thick)
    return dx * dy * dz / 1000.0


# --------------------------------------------------------------------------- public
def liver_roi(
    image: Any,
    fit: Any,
    *,
    mask: np.ndarray | None = None,
    seed: Sequence[int] | None = None,
    bbox: Sequence[Sequence[int]] | None = None,
    erode_mm: float = 5.0,
    vessel_k: float = 4.0,
    vessel_margin_mm: float | None = None,
    grow_k: float = 3.0,
    calibration: Any = None,
) -> LiverROI:
    """Liver ROI from a mask, a seed, a bounding box or an automatic proposal.

    Parameters
    ----------
    image : MultiEchoImage
        Gives the grid and voxel size (affine; ``metadata["slice_thickness_mm"]``).
    fit : FitResult
        ``r2_per_s``, ``s0`` and ``status`` maps on the image grid.
    mask : ndarray of bool, optional
        User liver mask (x, y, z). Takes precedence over ``seed`` and ``bbox``.
    seed : (i, j, k), optional
        Voxel index inside the liver: the homogeneous region holding it is the candidate.
    bbox : ((i0, i1), (j0, j1), (k0, k1)), optional
        Index ranges (inclusive start, exclusive end) holding the liver: the largest
        homogeneous region inside is the candidate.
    erode_mm : float, default 5.0
        In-plane edge margin removed from the candidate (rule 1); 0 disables.
    vessel_k : float, default 4.0
        Robust SDs from the parenchyma median beyond which a voxel is a vessel (rule 3).
    vessel_margin_mm : float, optional
        In-plane dilation of detected vessels; default one in-plane voxel.
    grow_k : float, default 3.0
        Half-width of the growing band in robust SDs (semi-/automatic only).
    calibration : str, Path or Calibration, optional
        The curve the ROI will be read with (default: the image's default curve). Its
        lowest calibrated rate is the lowest R2 of parenchyma: low-R2 regions at or
        above it are spared liver and stay (rule 3c, :mod:`r2mri._roi_parenchyma`).

    Returns
    -------
    LiverROI

    Raises
    ------
    InputError
        Mask of the wrong shape, seed/bbox outside the grid or outside tissue, maps that
        do not match the image, or an empty candidate.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from r2mri import MultiEchoImage
    >>> img = MultiEchoImage(np.ones((20, 20, 1, 2)), [0.006, 0.009], np.diag([2, 2, 5, 1.0]))
    >>> fit = SimpleNamespace(r2_per_s=np.full((20, 20, 1), 60.0), s0=np.ones((20, 20, 1)),
    ...                       status=np.zeros((20, 20, 1), np.uint8))
    >>> m = np.zeros((20, 20, 1), bool); m[2:18, 2:18] = True
    >>> roi = liver_roi(img, fit, mask=m, erode_mm=4.0)
    >>> roi.n_voxels, roi.removed["edge_erosion"], roi.volume_ml
    (144, 112, 2.88)
    """
    shape = tuple(image.shape)
    r2, s0, status = _maps(fit, shape)
    if not erode_mm >= 0:
        raise InputError(f"erode_mm: must be >= 0, got {erode_mm}")
    if not vessel_k > 0:
        raise InputError(f"vessel_k: must be > 0, got {vessel_k}")
    dx, dy, _ = image.voxel_size_mm
    warnings: list[str] = []
    options: dict[str, Any] = {"erode_mm": float(erode_mm), "vessel_k": float(vessel_k)}
    floor_r2, floor_source = parenchyma_r2_floor_per_s(calibration, image)
    # R2* curves: the normal-liver floor only admits tissue (extension), never removes it (_r2star_floor)
    floor_ext, floor_r2 = floor_r2, (None if is_r2star_floor(floor_source) else floor_r2)
    if floor_ext is not None:
        options["parenchyma_r2_min_per_s"] = floor_ext
    options["parenchyma_r2_min_source"] = floor_source

    dark_edge = None  # voxels too dark to fit next to a grown candidate (rule 1 keeps its edge there)
    if mask is not None:
        cand = np.asarray(mask)
        if cand.shape != shape:
            raise InputError(f"mask: shape {cand.shape} does not match the image grid {shape}")
        cand = cand.astype(bool)
        method, automatic = "user mask", False
    else:
        ok = np.isfinite(r2) & np.isfinite(s0) & (r2 > 0) & (s0 > 0) & ~np.isin(status, FAILED_STATUSES)
        if not ok.any():
            raise InputError("fit: no voxel with a finite, positive R2 and S0 to build an ROI from")
        # growing runs on status-OK voxels only (noise-only air fits can have any S0);
        # holes are filled afterwards, so noisy liver voxels come back
        fitted = ok & (status == FitStatus.OK)
        if not fitted.any():
            raise InputError("fit: no voxel with status OK to build an ROI from")
        tissue = fitted & (s0 > 0.05 * float(np.percentile(s0[fitted], 99)))
        within = np.ones(shape, dtype=bool)
        if bbox is not None:
            box = np.asarray(bbox, dtype=int)
            if box.shape != (3, 2) or np.any(box[:, 0] < 0) or np.any(box[:, 1] > np.asarray(shape)) or np.any(
                box[:, 1] <= box[:, 0]
            ):
                raise InputError(f"bbox: expected ((i0, i1), (j0, j1), (k0, k1)) inside {shape}, got {bbox}")
            within[:] = False
            within[box[0, 0]:box[0, 1], box[1, 0]:box[1, 1], box[2, 0]:box[2, 1]] = True
            options["bbox"] = box.tolist()
        tissue &= within
        logr = _smooth(np.log(np.where(ok, r2, 1.0)), ok)
        # relative R2 SE, 3x3 median: where R2 is not determined the band test is noise (r2mri/_roi_evidence.py)
        se_map = getattr(fit, "r2_std_per_s", None)
        se_map = None if se_map is None else np.abs(np.asarray(se_map, dtype=np.float64))
        se_map = se_map if se_map is not None and se_map.shape == shape else None
        rel_se = None if se_map is None else _smooth(relative_r2_se(r2, se_map, ok), np.ones(shape, bool))
        logs = _smooth(np.log(np.where(ok, s0, 1.0)), ok)
        # receive-coil shading varies S0 smoothly over the body (threefold in the phantom);
        # the band compares S0 with its tissue neighbourhood instead: log S0 minus its
        # Gaussian-weighted tissue mean (sigma _SHADING_MM in-plane), a high-pass that
        # keeps organ contrast (liver vs muscle) and drops the shading.
        steps = (_inplane_steps(logs),)
        sig_vox = (_SHADING_MM / dx, _SHADING_MM / dy, 0.0)
        wsum, lsum = _concurrently(
            (ndimage.gaussian_filter, (tissue.astype(float), sig_vox), {"mode": "constant"}),
            (ndimage.gaussian_filter, (np.where(tissue, logs, 0.0), sig_vox), {"mode": "constant"}),
        )
        logs = logs - np.where(wsum > 1e-6, lsum / np.maximum(wsum, 1e-6), 0.0)
        options["grow_k"] = float(grow_k)
        # the patient's right half of the tissue (RAS +x)
        rx = _ras_x(shape, image.affine)
        right = rx > float(np.median(rx[tissue])) if tissue.any() else np.ones(shape, bool)
        if seed is not None:
            sd = tuple(int(v) for v in seed)
            if len(sd) != 3 or any(not 0 <= v < s for v, s in zip(sd, shape)):
                raise InputError(f"seed: expected a voxel index (i, j, k) inside {shape}, got {tuple(seed)}")
            if not tissue[sd]:
                raise InputError(f"seed: voxel {sd} is not in fitted tissue (failed fit, masked or air)")
            seeds = np.array([np.ravel_multi_index(sd, shape)])
            method, automatic = "seed", False
            options["seed"] = list(sd)
        else:
            # seeds: the most homogeneous tissue voxels (5 x 5 in-plane window), spread out;
            # automatic mode keeps only the patient's right half of the body (RAS +x)
            hom = _homogeneity(logr, logs, 5)
            pool = tissue & (ndimage.binary_erosion(tissue, np.ones((5, 5, 1), bool)))
            if bbox is None:
                pool &= right
                method, automatic = "automatic", True
            else:
                method, automatic = "bounding box", False
            if not pool.any():
                pool = tissue
            if not pool.any():
                raise InputError("liver ROI: no fitted tissue to start from (give a mask)")
            order = np.argsort(np.where(pool, hom, np.inf), axis=None, kind="stable")
            seeds = order[: int(np.count_nonzero(pool))]
        ri, rj = int(np.ceil(_SEED_SPACING_MM / dx)), int(np.ceil(_SEED_SPACING_MM / dy))
        # a region grows inside the connected tissue its start touches: each growth runs on
        # the box of those components (one voxel of margin for hole filling and dilation),
        # which gives the same region as the whole grid at a fraction of the cost
        components, _ = ndimage.label(tissue, structure=ndimage.generate_binary_structure(3, 1))
        component_boxes = ndimage.find_objects(components)
        # inside or next to a region already grown, or near an earlier seed (in-plane, all slices)
        blocked = np.zeros(shape, dtype=bool)
        found: list[dict[str, Any]] = []
        n_tried = 0
        while len(found) < _N_SEEDS:
            # the next seed in order that is not blocked (one vectorised look-up per region)
            free = np.flatnonzero(~blocked.reshape(-1)[seeds[n_tried:]])
            if free.size == 0:
                break
            n_tried += int(free[0]) + 1
            sd = tuple(int(x) for x in np.unravel_index(seeds[n_tried - 1], shape))
            blocked[max(sd[0] - ri, 0):sd[0] + ri + 1, max(sd[1] - rj, 0):sd[1] + rj + 1, :] = True
            start = np.zeros(shape, dtype=bool)
            start[max(sd[0] - 1, 0):sd[0] + 2, max(sd[1] - 1, 0):sd[1] + 2, sd[2]] = True
            start &= tissue
            reach = np.zeros(shape, dtype=bool)
            for label in np.unique(components[start]):
                reach[component_boxes[label - 1]] = True
            gbox = _box(reach)
            region_c = _grow(start[gbox], tissue[gbox], logr[gbox], logs[gbox], grow_k, steps[0][gbox])
            gate = None if rel_se is None else determined_r2(rel_se[gbox], region_c)
            if gate is not None:  # again, only through voxels whose R2 is determined (_roi_evidence)
                region_c = _grow(start[gbox], tissue[gbox] & gate, logr[gbox], logs[gbox], grow_k, steps[0][gbox])
            filled_c = region_c.copy()
            for k in range(filled_c.shape[2]):  # per-slice hole filling: vessels and noisy voxels inside
                filled_c[:, :, k] = ndimage.binary_fill_holes(region_c[:, :, k])
            desc = _describe(region_c, filled_c, start[gbox], logr[gbox], logs[gbox], right[gbox], automatic, grow_k)
            region, filled = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
            region[gbox], filled[gbox] = region_c, filled_c
            desc["filled"] = filled
            # the same organ grown again from a later (less homogeneous) seed, typically one
            # on its partial-volume rim, which then comes along: keep the first growth only
            # (an organ's extent is its filled region, a ring's only its grown voxels: a
            # ring's holes are the rest of the body)
            desc["extent"] = filled if desc.get("compact", 0.0) >= 0.5 else region
            n_f = max(int(np.count_nonzero(desc["extent"])), 1)
            if any(c["score"] > 0 and np.count_nonzero(c["extent"] & desc["extent"]) >= 0.5 * n_f for c in found):
                desc["score"], desc["duplicate"] = 0.0, True
            found.append(desc)
            # later seeds inside this region would grow it again (one voxel of in-plane
            # dilation: noisy voxels the band left out at its edge); a drifted region does
            # not cover: the organ it swallowed must still get a seed of its own
            if not desc.get("drifted", False):
                blocked |= desc["extent"]
                blocked[gbox] |= ndimage.binary_dilation(region_c, structure=np.ones((3, 3, 1), bool))
        if found:
            if floor_r2 is not None:  # a region below the parenchymal floor is not the liver (_roi_evidence)
                options["below_floor_regions"] = demote_below_floor(found, logr, tissue, floor_r2, _AMBIGUOUS)
            ranked = sorted(found, key=lambda c: -c["score"])
            best = ranked[0]
            cand = best.pop("filled")
            ext_min = extension_min_median_per_s(calibration, image)  # R2*: not a normal-iron liver
            if floor_ext is not None and (ext_min is None or below_floor_median(logr, cand & tissue, ext_min) is None):
                # patchy livers: edge patches the R2 band left out
                r2_sd = np.abs(np.asarray(getattr(fit, "r2_std_per_s", np.nan), dtype=np.float64)) * s0
                # added tissue must lie above the floor by its noise (r2mri/_roi_evidence.py)
                ext_tissue = tissue if se_map is None else tissue & (cand | above_floor(
                    logr, _smooth(np.where(np.isfinite(se_map), se_map, NO_EVIDENCE), np.ones(shape, bool)), floor_ext))
                cand, ext = extend_to_parenchyma(cand, ext_tissue, logr, logs, steps[0], floor_ext, k=grow_k,
                                                 s0_band=(_BAND_FLOOR_S0, _BAND_CAP_S0), r2_cap=_BAND_CAP_R2,
                                                 edge_floor=_EDGE_FLOOR, mad_to_sd=_MAD_TO_SD, r2_noise=(
                                                     _smooth(r2_sd, ok & np.isfinite(r2_sd)) if r2_sd.shape == shape
                                                     else None),
                                                 iron_noise=iron_noise_maps(fit, image, ok, _smooth, grow_k),
                                                 pdff=pdff_map(fit, shape))
                options["parenchyma_extension"] = ext
                warnings.extend([ext.pop(w) for w in ("warning", "warning_iron", "warning_patch", "warning_left_out")
                                 if w in ext])
                # neighbouring organs let in where R2 is too noisy per voxel (r2mri/_roi_evidence.py)
                if floor_r2 is not None:
                    cand, options["below_floor_pieces"] = drop_below_floor_pieces(cand, tissue, r2, floor_r2)
                decayed = decayed_to_floor(image, fit, _WHOLE, grow_k)  # fast decay at the edge is liver (_roi_iron)
                if decayed is not None:
                    cand, options["dark_rim_joined"] = join_decayed_rim(cand, decayed, ~np.isin(status, (
                        FitStatus.TOO_FEW_ECHOES, FitStatus.BAD_INPUT, FitStatus.MASKED)))
                options["dark_rim"], dark_warning = dark_rim(cand, status, r2)  # liver too dark to fit
                floor_last = floor_at_last_echo(image, fit, grow_k)  # no signal left: no partial volume (_roi_iron)
                dark_edge = None if not cand.any() else dark_rim_mask(cand, status, r2) | (
                    False if floor_last is None else floor_last & ~cand)
                warnings.extend([dark_warning] if dark_warning else [])
            if automatic:
                options["regions_grown"] = len(found)
                msgs, checks = _plausibility(best, ranked[1:], cand, tissue, right, _voxel_volume_ml(image))
                low = None if floor_r2 is None else below_floor_median(logr, cand & tissue, floor_r2)
                if low is not None and best["score"] > 0:
                    msgs.append(f"liver ROI: WARNING - the automatic region's median R2 ({low:.1f} s^-1) is below the "
                                f"lowest R2 of liver parenchyma ({floor_r2:.1f} s^-1, {floor_source}'s calibrated "
                                "range): it is probably not the liver: check it or give a mask")
                thin = thin_region_warning(int(np.count_nonzero(cand)), eroded_voxels(cand, (dx, dy), erode_mm),
                                           erode_mm)
                if msgs or thin:  # failed its checks: propose again on pooled maps, with a warning (_roi_high_iron)
                    failed = msgs + ([thin] if thin else [])
                    hi = high_iron_proposal(image, fit, right, floor_r2, failed, _plausibility, _voxel_volume_ml(image),
                                            erode_mm)
                    if hi.candidate is not None:  # the first proposal's warnings describe a region no longer used
                        hi.info["first_proposal_warnings"] = warnings + failed
                        cand, msgs, checks = hi.candidate, hi.warnings, hi.info.pop("checks")
                        warnings.clear()
                    options["high_iron_fallback"] = hi.info
                warnings.extend(msgs)
                options["automatic_checks"] = checks
        else:
            cand = np.zeros(shape, dtype=bool)
        if automatic:
            warnings.insert(0, "liver ROI: automatic proposal (homogeneous region chosen by size on the "
                               "patient's right side); check it or give a mask")
    n_candidate = int(np.count_nonzero(cand))
    if n_candidate == 0:
        raise InputError("mask: the liver mask is empty")

    removed: dict[str, int] = {}
    # rule 1: in-plane erosion by erode_mm
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
    removed["edge_erosion"] = n_candidate - int(np.count_nonzero(kept))
    thin = thin_region_warning(n_candidate, removed["edge_erosion"], erode_mm) if automatic else None
    warnings.extend([thin] if thin else [])

    # rule 2: failed fits
    good = np.isfinite(r2) & np.isfinite(s0) & (s0 > 0) & ~np.isin(status, FAILED_STATUSES)
    after = kept & good
    removed["fit_failed"] = int(np.count_nonzero(kept)) - int(np.count_nonzero(after))
    # a fit that did not converge is noise, not bad data (SNR 10, 8 channels: 0.3 % of the liver, echo 2 read
    # 0.9 sigma low); the headline pools their magnitudes, or it selects on noise (LiverROI.not_converged)
    not_converged = kept & ~good & (status == FitStatus.NOT_CONVERGED)
    kept = after

    # rule 3: vessels
    non_parenchyma = np.zeros(shape, dtype=bool)
    n_before = int(np.count_nonzero(kept))
    if n_before >= 10:
        # (a) R2, low side, each voxel against its own fit uncertainty plus the
        #     parenchyma's spatial spread: z = (R2 - median) / sqrt(se^2 + het^2)
        r2_std = getattr(fit, "r2_std_per_s", None)
        se = np.zeros(shape) if r2_std is None else np.asarray(r2_std, dtype=np.float64)
        if se.shape != shape:
            raise InputError(f"fit.r2_std_per_s: shape {se.shape} does not match the image grid {shape}")
        # a voxel without a finite SE (noise floor, bound hit) is no evidence of a vessel
        se = np.where(np.isfinite(se[cbox]), np.abs(se[cbox]), np.inf)
        good_c, kept_c, r2_c = good[cbox], kept[cbox], r2[cbox]
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
            fluid |= fluid_regions(r2_c, se, good_c & cand[cbox] & (status[cbox] != FitStatus.BELOW_NOISE), floor_r2,
                                   vessel_k, med)
            spared = spared_parenchyma((vessel | fluid) & cand[cbox], r2_c, floor_r2, med, cand[cbox]) & ~fluid
            vessel = (vessel & ~spared) | fluid
            options["low_r2_kept_as_parenchyma"] = int(np.count_nonzero(spared))
        # (b) S0, both sides, on the 3x3 median of log S0
        ls = _smooth(np.log(np.where(good, s0, 1.0)), good, cbox)
        #     each voxel's own S0 noise in the SD (iron-rich patches: _roi_parenchyma.s0_outliers)
        s0_out = s0_outliers(ls, log_s0_se(r2_c, se, getattr(image, "echo_times_s", None)), kept_c, vessel_k,
                             _MAD_TO_SD)
        floor_decay = decayed_to_floor(image, fit, cbox, grow_k)  # no S0 evidence there (_roi_iron)
        vessel |= s0_out if floor_decay is None else s0_out & ~floor_decay
        vessel &= cand[cbox]
        non_parenchyma[cbox] = vessel
        margin = dx if vessel_margin_mm is None else float(vessel_margin_mm)
        options["vessel_margin_mm"] = margin
        if margin > 0 and vessel.any():
            ri, rj = int(np.floor(margin / dx + 1e-9)), int(np.floor(margin / dy + 1e-9))
            ii, jj = np.mgrid[-ri:ri + 1, -rj:rj + 1]
            disk = (ii * dx) ** 2 + (jj * dy) ** 2 <= margin**2 + 1e-9
            vessel = ndimage.binary_dilation(vessel, structure=disk[:, :, None])
        kept[cbox] &= ~vessel
        not_converged[cbox] &= ~vessel
    removed["vessels"] = n_before - int(np.count_nonzero(kept))
    if automatic and floor_ext is not None and is_r2star_floor(floor_source) and kept.any():
        # a low-iron liver: R2* reaches the normal range and cannot separate it (r2mri/_roi_low_iron.py)
        options["low_iron"], low_iron = low_iron_warning(kept, r2, np.exp(logr),
                                                         extension_min_median_per_s(calibration, image), floor_ext)
        warnings.extend([low_iron] if low_iron else [])
    if not kept.any():
        warnings.append("liver ROI: empty after the exclusion rules")
    return LiverROI(
        mask=kept,
        method=method,
        automatic=automatic,
        removed=removed,
        n_candidate=n_candidate,
        voxel_volume_ml=_voxel_volume_ml(image),
        options=options,
        warnings=warnings,
        candidate=cand,
        non_parenchyma=non_parenchyma,
        not_converged=not_converged,
    )
