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

The steps, each in its own module with the details in its docstring:

- Region growing (seed, box, automatic; :mod:`r2mri._roi_grow`): on status-OK tissue
  voxels (fat-water fits: also organ-sized regions of BELOW_NOISE voxels decayed to the
  floor with a clear first echo, :func:`r2mri._roi_grow.growth_status`) with 3x3 in-plane
  median filtered log R2 and log S0, S0 high-passed (minus its 30 mm Gaussian tissue mean:
  receive-coil shading), the region grows through connected
  voxels within ``grow_k`` (3) robust SDs of its medians (floors 0.15 / 0.25, caps
  0.3 / 0.4 in log units) whose in-plane log-S0 step does not mark an organ edge. Holes
  are filled slice by slice (vessels and noise-floor voxels come back and are judged by
  the rules, not by the growing).
- Seeds, scoring and self-checks (box, automatic; :mod:`r2mri._roi_proposal`): up to 12
  regions grown from the most homogeneous tissue voxels (automatic: on the patient's
  right, RAS +x), skipping grown regions; the best score (right-sided size x
  compactness x one-tissue fraction; 0 for drifted or duplicate regions) wins. The
  automatic proposal must be >= 60 % right-sided, cover 10-60 % of the body
  cross-section, have no separate region scoring >= 80 % of it and a median R2 not below
  the parenchyma floor, and the edge erosion must not remove more than half of it; any
  failure adds a ``"liver ROI: WARNING - ..."`` to ``roi.warnings``
  (``roi.options["automatic_checks"]``) and the proposal is retried on pooled 5x5 neighbourhoods (:mod:`r2mri._roi_high_iron`,
  high iron at low SNR).
- Parenchyma extension (seed, box, automatic; :mod:`r2mri._roi_extend`, issue 16): the
  chosen region is extended into connected parenchyma the band left out (iron-rich or
  spared patches at its edge, :mod:`r2mri._roi_parenchyma`), with warnings for leaks,
  patches and voxels too dark to fit; noisy neighbouring organs are kept out
  (:mod:`r2mri._roi_evidence`); liver-like tissue on the low-R2 side left out by the
  floor's noise test gets a red warning (:mod:`r2mri._roi_low_side`,
  ``roi.options["low_side_left_out"]``). An automatic R2* ROI inside the normal-liver R2* range
  gets a red warning with evidence that the reading may be wrong, else a plain note
  (:mod:`r2mri._roi_low_iron`, ``roi.options["low_iron"]``).

Exclusion rules (in this order; ``LiverROI.removed`` counts each; :mod:`r2mri._roi_rules`)
------------------------------------------------------------------------------------------
1. ``edge_erosion``: voxels within ``erode_mm`` (default 5 mm) of the candidate's edge,
   in-plane, by the Euclidean distance transform; holes are edges too. A grown candidate
   keeps its edge where the voxels next to it have no signal left
   (:func:`r2mri._roi_iron.erosion_inside`) and along narrow bays of left-out tissue
   that looks like its own by S0, with a median R2 at or above the parenchymal floor (an
   in-plane closing by the erosion's width:
   low-iron liver the growing left out, :mod:`r2mri._roi_edge_bays`,
   ``roi.options["edge_bays"]``).
2. ``fit_failed``: non-finite R2 or S0, or status NOT_CONVERGED, TOO_FEW_ECHOES,
   BAD_INPUT or MASKED (BELOW_NOISE and BOUND_HIT voxels are kept: real high-iron
   liver). NOT_CONVERGED voxels and floor fits with S0 = 0 are kept in
   ``LiverROI.not_converged`` for the tile-pooled headline.
3. ``vessels``: voxels far from the parenchyma: R2 below the median by ``vessel_k`` (4)
   times each voxel's own SE combined with the parenchyma's spread (voxel and 3x3
   median), R2 significantly below the calibration's lowest calibrated R2 (fluid), or
   3x3 median log S0 outside ``median +- vessel_k`` robust SDs; low-R2 regions at or
   above that floor are spared parenchyma and stay. Vessel voxels are then dilated
   in-plane by ``vessel_margin_mm`` (default one voxel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ._roi_grow import growth_status
from ._roi_low_iron import low_iron_warning
from ._roi_patches import pdff_map
from ._roi_parenchyma import extension_min_median_per_s, is_r2star_floor, parenchyma_r2_floor_per_s
from ._roi_proposal import _voxel_volume_ml, choose_candidate, grow_regions, growth_maps, seed_order
from ._roi_rules import FAILED_STATUSES, apply_rules
from .errors import InputError

__all__ = ["LiverROI", "liver_roi", "FAILED_STATUSES"]


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
        Voxels removed by rule 2 only because their voxel fit did not converge or found no
        signal (floor fit with S0 = 0), not by rules 1 or 3: liver whose noise sent the fit
        astray. Not in ``mask``; the
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


def _floors(calibration: Any, image: Any, options: dict[str, Any]) -> tuple[float | None, float | None, str]:
    """``(floor_r2, floor_ext, source)``: the lowest R2 of liver parenchyma for the rules
    (None for an R2* curve) and for the extension (:mod:`r2mri._roi_parenchyma`), recorded in ``options``."""
    floor_r2, floor_source = parenchyma_r2_floor_per_s(calibration, image)
    # R2* curves: the normal-liver floor only admits tissue (extension), never removes it (_r2star_floor)
    floor_ext, floor_r2 = floor_r2, (None if is_r2star_floor(floor_source) else floor_r2)
    if floor_ext is not None:
        options["parenchyma_r2_min_per_s"] = floor_ext
    options["parenchyma_r2_min_source"] = floor_source
    return floor_r2, floor_ext, floor_source


def _low_iron_check(kept: np.ndarray, cand: np.ndarray, r2: np.ndarray, maps: Any, image: Any, fit: Any,
                    calibration: Any, floor_ext: float, options: dict[str, Any], warnings: list[str]) -> None:
    """An automatic R2* ROI: a low-iron liver's R2* reaches the normal range and cannot
    separate it from other tissue (:mod:`r2mri._roi_low_iron`); adds ``options["low_iron"]``
    and its warning. ``maps``: the :class:`r2mri._roi_proposal.GrowthMaps` of the candidate."""
    options["low_iron"], low_iron = low_iron_warning(
        kept, r2, np.exp(maps.logr), extension_min_median_per_s(calibration, image), floor_ext,
        candidate=cand, logs=maps.logs, pdff=pdff_map(fit, kept.shape), tissue=maps.tissue,
        voxel_mm=tuple(float(v) for v in image.voxel_size_mm[:2]))
    warnings.extend([low_iron] if low_iron else [])


def _user_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    cand = np.asarray(mask)
    if cand.shape != shape:
        raise InputError(f"mask: shape {cand.shape} does not match the image grid {shape}")
    return cand.astype(bool)


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
    warnings: list[str] = []
    options: dict[str, Any] = {"erode_mm": float(erode_mm), "vessel_k": float(vessel_k)}
    floor_r2, floor_ext, floor_source = _floors(calibration, image, options)
    dark_edge = None  # voxels too dark to fit next to a grown candidate (rule 1 keeps its edge there)
    if mask is not None:
        cand, method, automatic = _user_mask(mask, shape), "user mask", False
    else:
        # fat-water fits: floor-decayed voxels with first-echo evidence grow too (r2mri/_roi_grow.py)
        maps = growth_maps(image, fit, r2, s0, growth_status(image, fit, status, grow_k, options), bbox, grow_k,
                           options)
        seeds, method, automatic = seed_order(maps, seed, bbox, options)
        found = grow_regions(maps, seeds, image.voxel_size_mm, grow_k, automatic)
        cand, dark_edge = choose_candidate(found, maps, image, fit, r2, s0, status, automatic=automatic,
                                           floor_r2=floor_r2, floor_ext=floor_ext, floor_source=floor_source,
                                           calibration=calibration, grow_k=grow_k, erode_mm=erode_mm,
                                           options=options, warnings=warnings)
    n_candidate = int(np.count_nonzero(cand))
    if n_candidate == 0:
        raise InputError("mask: the liver mask is empty")

    kept, removed, non_parenchyma, not_converged = apply_rules(
        cand, image, fit, r2, s0, status, erode_mm=erode_mm, vessel_k=vessel_k, vessel_margin_mm=vessel_margin_mm,
        grow_k=grow_k, floor_r2=floor_r2, dark_edge=dark_edge, automatic=automatic, options=options,
        warnings=warnings)
    if automatic and floor_ext is not None and is_r2star_floor(floor_source) and kept.any():
        _low_iron_check(kept, cand, r2, maps, image, fit, calibration, floor_ext, options, warnings)
    if not kept.any():
        warnings.append("liver ROI: empty after the exclusion rules")
    return LiverROI(mask=kept, method=method, automatic=automatic, removed=removed, n_candidate=n_candidate,
                    voxel_volume_ml=_voxel_volume_ml(image), options=options, warnings=warnings, candidate=cand,
                    non_parenchyma=non_parenchyma, not_converged=not_converged)
