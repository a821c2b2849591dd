"""The candidate of a seed, box or automatic liver ROI (:func:`r2mri.roi.liver_roi`).

Steps: :func:`growth_maps` (tissue, smoothed log R2, high-passed log S0, the patient's
right half), :func:`seed_order`, :func:`grow_regions` (band growing,
:mod:`r2mri._roi_grow`, from each seed, scored), :func:`choose_candidate` (the best
region, extended into parenchyma by :mod:`r2mri._roi_extend`, and, for the automatic
proposal, self-checked with the high-iron fallback of :mod:`r2mri._roi_high_iron`).

Seeds (box, automatic): tissue voxels (5x5 in-plane eroded; automatic: on the patient's
right half of the body, RAS +x) in order of homogeneity (local 5x5 SD of smoothed log R2
plus log S0), skipping any voxel inside or next to a region already grown (unless
that region drifted, below) or within 40 mm in-plane of an earlier seed, until
12 regions are grown or the voxels run out.
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

Self-check of the automatic proposal (``roi.options["automatic_checks"]``; any failure
adds a ``"liver ROI: WARNING - ..."`` to ``roi.warnings``, which the report prints):
the winning region must have >= 60 % of its voxels on the patient's right, cover
10-60 % of the body cross-section (filled tissue outline) in its slices, and no
separate region may score >= 80 % of it (ambiguous); its median R2 must not lie below
the parenchyma floor, and the edge erosion must not remove more than half of
it. These limits are r2mri's own [D], chosen around the shipped phantoms (right fraction 0.81-0.86, body fraction
0.26-0.32, runner-up 0.04-0.10; the old wrong choice at 40 mg/g: right fraction 0.28).
A proposal that fails (or is thin) is retried on R2 of pooled 5x5 neighbourhoods, and
the ROI says so when that is used (:mod:`r2mri._roi_high_iron`, high iron at low SNR).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from ._roi_evidence import (below_floor_median, demote_below_floor, determined_r2, relative_r2_se,
                            thin_region_warning)
from ._roi_edge_bays import with_liver_like_bays
from ._roi_extend import extend_candidate
from ._roi_grow import (_BAND_CAP_R2, _BAND_CAP_S0, _BAND_FLOOR_R2, _SHADING_MM, _box, _grow, _inplane_steps, _robust,
                        _smooth)
from ._roi_high_iron import high_iron_proposal
from ._roi_parenchyma import extension_min_median_per_s
from ._roi_rules import FAILED_STATUSES, eroded_voxels
from .errors import InputError
from .status import FitStatus

__all__ = ["GrowthMaps", "growth_maps", "seed_order", "grow_regions", "choose_candidate"]

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


@dataclass
class GrowthMaps:
    """The maps the band growing reads (:func:`growth_maps`), on the image grid."""

    ok: np.ndarray  # finite, positive R2 and S0, status not failed
    tissue: np.ndarray  # status OK, S0 above 5 % of its 99th percentile (inside the box)
    logr: np.ndarray  # 3x3 in-plane median of log R2
    logs: np.ndarray  # 3x3 in-plane median of log S0, minus its tissue neighbourhood's mean
    steps: np.ndarray  # largest in-plane step of the smoothed log S0 (before the high-pass)
    se_map: np.ndarray | None  # |fit.r2_std_per_s| when it matches the grid
    rel_se: np.ndarray | None  # 3x3 median of the relative R2 SE (r2mri/_roi_evidence.py)
    right: np.ndarray  # the patient's right half of the tissue (RAS +x)


def _within(bbox: Sequence[Sequence[int]] | None, shape: tuple[int, ...], options: dict[str, Any]) -> np.ndarray:
    """The user's box as a mask (the whole grid without one); records it in ``options``."""
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
    return within


def growth_maps(image: Any, fit: Any, r2: np.ndarray, s0: np.ndarray, status: np.ndarray,
                bbox: Sequence[Sequence[int]] | None, grow_k: float, options: dict[str, Any]) -> GrowthMaps:
    """Tissue and the smoothed log maps the band growing compares (module docstring of
    :mod:`r2mri._roi_grow`); records ``bbox`` and ``grow_k`` in ``options``."""
    shape = tuple(image.shape)
    dx, dy, _ = image.voxel_size_mm
    ok = np.isfinite(r2) & np.isfinite(s0) & (r2 > 0) & (s0 > 0) & ~np.isin(status, FAILED_STATUSES)
    if not ok.any():
        raise InputError("fit: no voxel with a finite, positive R2 and S0 to build an ROI from")
    # growing runs on status-OK voxels only (noise-only air fits can have any S0);
    # holes are filled afterwards, so noisy liver voxels come back
    fitted = ok & (status == FitStatus.OK)
    if not fitted.any():
        raise InputError("fit: no voxel with status OK to build an ROI from")
    tissue = fitted & (s0 > 0.05 * float(np.percentile(s0[fitted], 99)))
    tissue &= _within(bbox, shape, options)
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
    steps = _inplane_steps(logs)
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
    return GrowthMaps(ok, tissue, logr, logs, steps, se_map, rel_se, right)


def seed_order(maps: GrowthMaps, seed: Sequence[int] | None, bbox: Sequence[Sequence[int]] | None,
               options: dict[str, Any]) -> tuple[np.ndarray, str, bool]:
    """``(seeds, method, automatic)``: the flat indices to grow from, in order (the user's
    seed; else the most homogeneous tissue voxels, on the patient's right when automatic)."""
    tissue = maps.tissue
    shape = tissue.shape
    if seed is not None:
        sd = tuple(int(v) for v in seed)
        if len(sd) != 3 or any(not 0 <= v < s for v, s in zip(sd, shape)):
            raise InputError(f"seed: expected a voxel index (i, j, k) inside {shape}, got {tuple(seed)}")
        if not tissue[sd]:
            raise InputError(f"seed: voxel {sd} is not in fitted tissue (failed fit, masked or air)")
        options["seed"] = list(sd)
        return np.array([np.ravel_multi_index(sd, shape)]), "seed", False
    # seeds: the most homogeneous tissue voxels (5 x 5 in-plane window), spread out;
    # automatic mode keeps only the patient's right half of the body (RAS +x)
    hom = _homogeneity(maps.logr, maps.logs, 5)
    pool = tissue & (ndimage.binary_erosion(tissue, np.ones((5, 5, 1), bool)))
    if bbox is None:
        pool &= maps.right
        method, automatic = "automatic", True
    else:
        method, automatic = "bounding box", False
    if not pool.any():
        pool = tissue
    if not pool.any():
        raise InputError("liver ROI: no fitted tissue to start from (give a mask)")
    order = np.argsort(np.where(pool, hom, np.inf), axis=None, kind="stable")
    return order[: int(np.count_nonzero(pool))], method, automatic


def _grow_one(sd: tuple[int, ...], maps: GrowthMaps, components: np.ndarray, component_boxes: list,
              grow_k: float, automatic: bool) -> tuple[dict[str, Any], np.ndarray, tuple[slice, ...], np.ndarray]:
    """One region grown from seed voxel ``sd`` on the box of the tissue it touches:
    ``(description, region, box, region on the box)``; the description is :func:`_describe`'s
    with the ``filled`` region on the whole grid."""
    tissue, logr, logs = maps.tissue, maps.logr, maps.logs
    shape = tissue.shape
    start = np.zeros(shape, dtype=bool)
    start[max(sd[0] - 1, 0):sd[0] + 2, max(sd[1] - 1, 0):sd[1] + 2, sd[2]] = True
    start &= tissue
    reach = np.zeros(shape, dtype=bool)
    for label in np.unique(components[start]):
        reach[component_boxes[label - 1]] = True
    gbox = _box(reach)
    region_c = _grow(start[gbox], tissue[gbox], logr[gbox], logs[gbox], grow_k, maps.steps[gbox])
    gate = None if maps.rel_se is None else determined_r2(maps.rel_se[gbox], region_c)
    if gate is not None:  # again, only through voxels whose R2 is determined (_roi_evidence)
        region_c = _grow(start[gbox], tissue[gbox] & gate, logr[gbox], logs[gbox], grow_k, maps.steps[gbox])
    filled_c = region_c.copy()
    for k in range(filled_c.shape[2]):  # per-slice hole filling: vessels and noisy voxels inside
        filled_c[:, :, k] = ndimage.binary_fill_holes(region_c[:, :, k])
    desc = _describe(region_c, filled_c, start[gbox], logr[gbox], logs[gbox], maps.right[gbox], automatic, grow_k)
    region, filled = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    region[gbox], filled[gbox] = region_c, filled_c
    desc["filled"] = filled
    return desc, region, gbox, region_c


def grow_regions(maps: GrowthMaps, seeds: np.ndarray, voxel_size_mm: Sequence[float], grow_k: float,
                 automatic: bool) -> list[dict[str, Any]]:
    """Regions grown from ``seeds`` in order, each scored (:func:`_describe`), until
    ``_N_SEEDS`` are grown or the seeds run out (module docstring)."""
    tissue = maps.tissue
    shape = tissue.shape
    dx, dy = voxel_size_mm[0], voxel_size_mm[1]
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
        desc, region, gbox, region_c = _grow_one(sd, maps, components, component_boxes, grow_k, automatic)
        # the same organ grown again from a later (less homogeneous) seed, typically one
        # on its partial-volume rim, which then comes along: keep the first growth only
        # (an organ's extent is its filled region, a ring's only its grown voxels: a
        # ring's holes are the rest of the body)
        desc["extent"] = desc["filled"] if desc.get("compact", 0.0) >= 0.5 else region
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
    return found


def _check_automatic(best: dict[str, Any], ranked: list[dict[str, Any]], cand: np.ndarray, maps: GrowthMaps,
                     image: Any, fit: Any, floors: tuple, erode_mm: float, n_found: int, options: dict[str, Any],
                     warnings: list[str]) -> np.ndarray:
    """Self-checks of the automatic candidate (module docstring); when it fails them, the
    high-iron fallback's candidate (:mod:`r2mri._roi_high_iron`) replaces it if that one
    passes. Returns the candidate; ``options`` and ``warnings`` are added to in place."""
    floor_r2, floor_source = floors
    dx, dy, _ = image.voxel_size_mm
    tissue, right = maps.tissue, maps.right
    options["regions_grown"] = n_found
    msgs, checks = _plausibility(best, ranked[1:], cand, tissue, right, _voxel_volume_ml(image))
    low = None if floor_r2 is None else below_floor_median(maps.logr, cand & tissue, floor_r2)
    if low is not None and best["score"] > 0:
        msgs.append(f"liver ROI: WARNING - the automatic region's median R2 ({low:.1f} s^-1) is below the "
                    f"lowest R2 of liver parenchyma ({floor_r2:.1f} s^-1, {floor_source}'s calibrated "
                    "range): it is probably not the liver: check it or give a mask")
    thin = thin_region_warning(int(np.count_nonzero(cand)), eroded_voxels(cand, (dx, dy), erode_mm), erode_mm)
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
    return cand


def choose_candidate(found: list[dict[str, Any]], maps: GrowthMaps, image: Any, fit: Any, r2: np.ndarray,
                     s0: np.ndarray, status: np.ndarray, *, automatic: bool, floor_r2: float | None,
                     floor_ext: float | None, floor_source: str, calibration: Any, grow_k: float, erode_mm: float,
                     options: dict[str, Any], warnings: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """``(candidate, dark_edge)``: the best-scoring grown region, extended into parenchyma
    (:func:`r2mri._roi_extend.extend_candidate`) and, when automatic, self-checked.
    ``dark_edge``: voxels too dark to fit next to it (rule 1 keeps its edge there), or None."""
    dark_edge = None
    if found:
        if floor_r2 is not None:  # a region below the parenchymal floor is not the liver (_roi_evidence)
            options["below_floor_regions"] = demote_below_floor(found, maps.logr, maps.tissue, floor_r2, _AMBIGUOUS)
        ranked = sorted(found, key=lambda c: -c["score"])
        best = ranked[0]
        cand = best.pop("filled")
        ext_min = extension_min_median_per_s(calibration, image)  # R2*: not a normal-iron liver
        if floor_ext is not None and (ext_min is None or below_floor_median(maps.logr, cand & maps.tissue,
                                                                            ext_min) is None):
            cand, dark_edge = extend_candidate(cand, maps, image, fit, r2, s0, status, floor_ext=floor_ext,
                                               floor_r2=floor_r2, grow_k=grow_k, options=options, warnings=warnings)
        if automatic:
            cand = _check_automatic(best, ranked, cand, maps, image, fit, (floor_r2, floor_source), erode_mm,
                                    len(found), options, warnings)
        # rule 1 keeps the edge along narrow bays of left-out liver-like tissue (r2mri/_roi_edge_bays.py)
        dark_edge = with_liver_like_bays(cand, maps, dark_edge, erode_mm, image.voxel_size_mm, options, r2, floor_ext)
    else:
        cand = np.zeros(maps.tissue.shape, dtype=bool)
    if automatic:
        warnings.insert(0, "liver ROI: automatic proposal (homogeneous region chosen by size on the "
                           "patient's right side); check it or give a mask")
    return cand, dark_edge
