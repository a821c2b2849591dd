"""Pockets of liver whose first echo is at the noise floor, next to the liver candidate
(issue 16; branch edge24).

On ``heterogeneous-coarse-1.5t`` at 30 mg/g, SNR 20, 8 channels the richest patches
(true R2 310-380 s^-1) have a first echo of about 2 sigma (``S0 exp(-R2 TE1)``), where
the 8-channel noise floor's mean is 3.94 sigma and its SD 0.70 sigma: per voxel, and
per 3 x 3 mean, within 3 SEs of the floor. Neither the candidate's extension (tissue
must show first-echo signal, :class:`r2mri._roi_iron.IronNoise`) nor the rim join
(:func:`r2mri._roi_iron.join_decayed_rim`, same test) can take them, and the automatic
ROI read -2.25 +- 0.37 % (16 livers; the voxels left out had a mean true R2 of ~365
s^-1 against the liver's ~231).

Per voxel they cannot be told from air, a flow void or bone. As a *pocket* they can:
:func:`floor_pockets` takes an in-plane connected set of such voxels when

- it touches the candidate and at least :data:`POCKET_MIN_CANDIDATE_RING` of the voxels
  around it are candidate (the rest is tissue with signal, or failed inputs: the pocket
  is enclosed, not the open air or a lung beyond the liver's edge, whose border is
  mostly chest wall);
- it touches no edge of the slice and is not larger than the candidate on that slice;
- the mean first echo over its core (the pocket, grown by one voxel into the gap the
  3 x 3 test leaves and with its holes filled, eroded by one voxel, so that no partial
  volume with the tissue around it counts and no voxel is chosen for its low noise; the
  whole pocket when the erosion is empty) is above the floor's mean by ``k`` standard
  errors of that mean (``sd_floor / sqrt(n)``, independent voxel noise): evidence of
  tissue with a fast decay, not of a void. A flow void or air has no first echo, and an
  iron-loaded spleen touching the liver would pass (as with the rim join).

The voxels then go through rules 1-3 of :func:`r2mri.roi.liver_roi` as any other, and
the tile-pooled headline fits their magnitudes with the noise floor's model. Measured
(same 16 fits, benchmarks/README.md): selection -1.71 -> -1.12 %, headline -2.25 ->
-2.07 % (paired +0.18 +- 0.12 %; the estimator reads the added at-floor tiles low), no
non-liver voxel; uniform livers and the ROI golden cases unchanged but one (+0.03 %).
Untested: spatially correlated noise (interpolated images) makes the pooled test too
lenient, and ringing next to a bright edge could lift a void's core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["POCKET_MIN_CANDIDATE_RING", "floor_pockets"]

#: Least fraction of the voxels around a floor pocket (in-plane, 8-neighbourhood) that must be
#: in the candidate [D: r2mri's own, edge24; on heterogeneous-coarse-1.5t at 30 mg/g, SNR 20,
#: 8 channels, the liver pockets had 0.50-0.92 (textures 1 and 5, noise seed 0)].
POCKET_MIN_CANDIDATE_RING = 0.5

_S8 = np.ones((3, 3), dtype=bool)


def floor_pockets(cand: np.ndarray, image: Any, fit: Any, usable: np.ndarray,
                  k: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Voxels to add to the candidate ``cand``: the pockets of voxels at the noise floor by
    the first echo that the candidate encloses (module docstring), and a summary
    ``{"voxels", "pockets", "refused"}`` (``refused``: pockets that touch the candidate
    and failed a test). ``usable``: voxels that are not failed inputs (too few echoes,
    bad input, masked). ``k``: standard errors, for the 3 x 3 floor test and the pocket's
    first-echo test. Nothing is added when sigma, channels or the images are unknown.

    Examples
    --------
    A candidate with a bay of dark tissue (coil-combined first echo 1.8 sigma, 8 channels),
    open on the left onto tissue with signal; the same bay empty (a flow void) stays out:

    >>> from types import SimpleNamespace
    >>> def first_echo(amp, seed):
    ...     noise = np.random.default_rng(seed).standard_normal((8, 2) + amp.shape)
    ...     noise[0, 0] += amp
    ...     return SimpleNamespace(data=np.sqrt((noise ** 2).sum(axis=(0, 1)))[..., None])
    >>> fit = SimpleNamespace(options={"noise_sigma": 1.0, "coils": 8})
    >>> amp = np.full((40, 40, 1), 20.0); amp[8:24, 8:24] = 1.8
    >>> cand = np.zeros(amp.shape, bool); cand[4:32, 4:32] = True; cand[8:24, 4:24] = False
    >>> add, info = floor_pockets(cand, first_echo(amp, 0), fit, np.ones_like(cand), 3.0)
    >>> info["pockets"], bool(add[15, 12, 0]), bool(add[15, 5, 0])
    (1, True, False)
    >>> amp[8:24, 8:24] = 0.0
    >>> floor_pockets(cand, first_echo(amp, 0), fit, np.ones_like(cand), 3.0)[1]
    {'voxels': 0, 'pockets': 0, 'refused': 1}
    """
    from .noise import ncchi_mean

    add = np.zeros(cand.shape, dtype=bool)
    info: dict[str, Any] = {"voxels": 0, "pockets": 0, "refused": 0}
    opts = getattr(fit, "options", None) or {}
    sigma, coils = opts.get("noise_sigma"), opts.get("coils")
    data = getattr(image, "data", None)
    if sigma is None or coils is None or data is None or not float(sigma) > 0 or not cand.any():
        return add, info
    sigma, coils = float(sigma), int(coils)
    floor_mean = float(ncchi_mean(0.0, sigma, coils))
    floor_sd = float(np.sqrt(max(2.0 * coils * sigma**2 - floor_mean**2, 0.0)))
    if not floor_sd > 0:
        return add, info
    first = np.asarray(data[..., 0], dtype=np.float64)
    mean9 = ndimage.uniform_filter(first, size=(3, 3, 1), mode="nearest")
    at_floor = usable & ~cand & (mean9 <= floor_mean + k * floor_sd / 3.0)
    for z in np.flatnonzero(cand.any(axis=(0, 1))):
        c2, f2, u2 = cand[:, :, z], at_floor[:, :, z], usable[:, :, z] & ~cand[:, :, z]
        lab, n = ndimage.label(f2, structure=_S8)
        if n == 0:
            continue
        # the 3 x 3 floor test leaves a one-voxel gap where the pocket meets brighter tissue:
        # a pocket counts as touching the candidate across it
        near = ndimage.binary_dilation(c2, structure=_S8, iterations=2)
        touching = np.unique(lab[near & (lab > 0)])
        edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        slices = ndimage.find_objects(lab)
        for i in touching:
            ok = _pocket_ok(lab, int(i), slices[i - 1], c2, u2, first[:, :, z], int(np.count_nonzero(c2)),
                            i in edge, floor_mean, floor_sd, k)
            if ok is None:
                info["refused"] += 1
                continue
            add[:, :, z] |= ok
            info["pockets"] += 1
    info["voxels"] = int(np.count_nonzero(add))
    return add, info


def _pocket_ok(lab: np.ndarray, i: int, box: tuple, cand2: np.ndarray, free2: np.ndarray, first2: np.ndarray,
               n_cand: int, at_edge: bool, floor_mean: float, floor_sd: float, k: float) -> "np.ndarray | None":
    """The voxels to add for pocket ``i`` of the slice's labels (full-slice mask) when it
    passes the tests of :func:`floor_pockets`, else None. The pocket is judged grown by one
    voxel into ``free2`` (usable, not candidate: the gap the 3 x 3 test leaves at its
    edge) with its holes filled; it adds its own voxels, the ones it encloses and those of
    the gap next to the candidate."""
    if at_edge:
        return None
    # the pocket's box grown by two voxels (clipped: a pocket at the slice's edge was refused)
    b = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in box)
    comp = lab[b] == i
    if int(np.count_nonzero(comp)) > n_cand:
        return None
    grown = comp | (ndimage.binary_dilation(comp, structure=_S8) & free2[b])
    # tissue the pocket encloses (3 x 3 means just above the floor test) is part of it, not its border
    grown = ndimage.binary_fill_holes(grown) & (grown | free2[b])
    ring = ndimage.binary_dilation(grown, structure=_S8) & ~grown
    if np.count_nonzero(ring & cand2[b]) < POCKET_MIN_CANDIDATE_RING * np.count_nonzero(ring):
        return None
    # the test runs on every voxel of the filled pocket's core, not only on those whose 3 x 3
    # mean fell below the floor test (a selection on low noise that reads the pocket darker)
    core = ndimage.binary_erosion(grown, structure=_S8)
    if not core.any():
        core = grown
    vals = first2[b][core]
    if not vals.mean() > floor_mean + k * floor_sd / np.sqrt(vals.size):
        return None
    out = np.zeros(lab.shape, dtype=bool)
    out[b] = (ndimage.binary_fill_holes(comp) | ndimage.binary_dilation(cand2[b], structure=_S8)) & grown
    return out
