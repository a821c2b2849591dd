"""Low-iron liver taken into a grown ROI by pooled evidence (issue 16, R2 route).

The parenchyma extension (:func:`r2mri._roi_parenchyma.extend_to_parenchyma`) adds edge
tissue only where each voxel's 3x3 median R2 lies above the parenchymal floor (18 s^-1
for St Pierre 2005) by twice its own noise (:func:`r2mri._roi_evidence.above_floor`).
At SNR 20 a voxel's R2 SE is 6-8 s^-1, so a low-iron patch at 20 s^-1 (0.4 mg/g) fails
that test however large it is: on the coarse-texture livers of ``benchmarks.autogrid``
at 1 mg/g (SD 0.4 in log LIC over 8 voxels) the automatic ROI left those patches out
and read +6 % (0/4 intervals covered; the true outline +0.2 %), with only the red
low-side warning of :mod:`r2mri._roi_low_side`. After this module: +3.1 % (1 channel,
4/8 covered) and +1.9 % (8 channels, 7/8) on 8 livers each (benchmarks/README.md,
"Low-iron liver taken into the automatic ROI").

It runs only where that check warns (:func:`take_low_side`), so every other liver is
left exactly as before.

Here the evidence is pooled over a piece instead of a voxel (:func:`low_side_pieces`):

1. Marking (sample splitting, as :func:`r2mri._roi_evidence.drop_below_floor_pieces`):
   on the "black" colour of an in-plane checkerboard, the median R2 of the same-colour
   status-OK tissue voxels in a 9 x 9 window is at or above the floor; a "white" voxel
   is marked when 3 or 4 of its 4 black neighbours are.
2. Pieces: the region extended once as the extension does (its S0 band, S0-edge limit
   and R2 band, :func:`r2mri._roi_parenchyma._extend_once`) through the marked tissue,
   with the marking in place of the per-voxel floor test; the face-connected pieces
   outside the region.
3. A piece is taken when it looks like the region's tissue
   (:func:`r2mri._roi_patches.same_tissue`), its median R2 is at or below the region's
   (the high side is the extension's), and the median R2 of its *white* voxels lies
   above the floor by :data:`INTAKE_K` standard errors of a median (``1.2533 x 1.4826
   MAD / sqrt(n)``, at least :data:`MIN_WHITE_VOXELS`). The white voxels' own noise did
   not mark them (their black neighbours did), so the test is not selected on noise.
   The S0 reference is the region's voxels within :data:`NEAR_VOXELS` of the piece.
4. Of a taken piece, the voxels whose 3x3 median R2 is below the floor are left out (the
   9 x 9 window smears the marking 2-4 voxels into an organ below the floor where no S0
   edge separates it); holes are then filled slice by slice, and only what stays
   connected to the candidate is kept.

Rounds (:data:`INTAKE_ROUNDS`) repeat from the region with the taken pieces. The
spleen (16.4 s^-1) and viscera (13.2) of the phantom are below the floor: their windows
are mostly not marked, and a piece of them fails the pooled test. What stays out: pieces
at the floor (18.2-18.4 s^-1: liver at ~0.3 mg/g that no R2 evidence separates from an
organ just below it) and pieces that are half another organ (refused by their S0 level).
A refused piece gets a second look (:mod:`r2mri._roi_floor_piece`, branch floorpiece): cut
to the S0 core of the nearby region, its liver part is tested again as a piece.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ._roi_floor_piece import second_look

__all__ = ["INTAKE_K", "INTAKE_HALF_WINDOW", "MIN_WHITE_VOXELS", "INTAKE_ROUNDS", "NEAR_VOXELS", "RESIDUAL_WARN_FRACTION",
           "VERDICTS", "marked_not_below", "take_low_side",
           "low_side_pieces"]

#: Standard errors of a median by which a piece's white-voxel median R2 must lie above the
#: parenchymal floor to be taken [D: r2mri's choice, the per-voxel test's own FLOOR_K of
#: r2mri._roi_evidence, now on the pooled median: a piece exactly at the floor passes with
#: probability 0.023; a piece of the phantom's spleen (16.4 s^-1, voxel SD 7 s^-1 at SNR 20) with
#: 10 white voxels (SE 2.8) with probability 0.005, with 100 (SE 0.9) 7e-5; its viscera (13.2) less. 4 (PIECE_K) refused a liver
#: piece at 19.55 +- 0.42 s^-1 in tests/test_roi_low_intake.py's maps].
INTAKE_K = 2.0
#: Half-width (voxels) of the same-colour window of the marking [D: as PIECE_HALF_WINDOW].
INTAKE_HALF_WINDOW = 4
#: Fewest white voxels a piece needs for its pooled test [D: as drop_below_floor_pieces].
MIN_WHITE_VOXELS = 10
#: In-plane reach (voxels) of the region's voxels that a piece's S0 is compared with [D: r2mri's
#: choice]: with one receive channel the S0 noise grows where the coil's shading is dark, and the
#: low-iron pieces of the coarse 1 mg/g SNR 20 one-channel livers (autogrid k 5000, 5006) had
#: 1.42-1.59 times the S0 spread of the whole region (same_tissue's limit 1.25) and were refused;
#: against the region within 6 voxels the liver pieces read 0.90-1.05 and were taken (liver
#: 88-96 % of their voxels), while the pieces half of other organs stayed refused by the S0
#: level (0.092-0.099 against the limit 0.05); benchmarks/results/lowside_proto*.log.
NEAR_VOXELS = 6
#: After an intake, the low-side check (r2mri._roi_low_side) warns above this fraction of the
#: region instead of LOW_SIDE_WARN_FRACTION [D: r2mri's choice, set on the livers of the
#: module docstring: ...].
RESIDUAL_WARN_FRACTION = 0.01
#: Rounds of intake [D: as the extension's EXTENSION_ROUNDS].
INTAKE_ROUNDS = 3


def marked_not_below(tissue: np.ndarray, r2: np.ndarray, floor_r2_per_s: float,
                     half: int = INTAKE_HALF_WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """``(marked, black)``: tissue whose same-colour window median R2 is at or above the
    floor (module docstring, step 1), and the black colour of the checkerboard.

    Examples
    --------
    >>> r2 = np.full((20, 20, 1), 20.0); r2[:, 10:] = 14.0
    >>> marked, black = marked_not_below(np.ones(r2.shape, bool), r2, 18.0)
    >>> bool(marked[5, 2, 0]), bool(marked[5, 17, 0]), bool(black[0, 0, 0])
    (True, False, True)
    """
    ii, jj = np.indices(r2.shape[:2])
    black = np.broadcast_to((((ii + jj) % 2) == 0)[:, :, None], r2.shape)
    oi, oj = np.mgrid[-half:half + 1, -half:half + 1]
    footprint = (((oi + oj) % 2) == 0)[:, :, None]
    valid = tissue & np.isfinite(r2)
    # other voxels count as just below the floor: they never make a window "at or above"
    below = np.nextafter(floor_r2_per_s, -np.inf)
    med = ndimage.median_filter(np.where(valid, r2, below), footprint=footprint, mode="nearest")
    marked_black = black & (med >= floor_r2_per_s)
    cross = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)[:, :, None]
    votes = ndimage.convolve(marked_black.astype(float), cross, mode="constant")
    return (marked_black | (~black & (votes >= 3))) & tissue, black


def _white_median_test(v: np.ndarray, floor_r2_per_s: float, k: float) -> tuple[bool, float, float]:
    """(passes, median, its SE) of the white voxels' R2 ``v`` against the floor."""
    m = float(np.median(v))
    sem = 1.2533 * 1.4826 * float(np.median(np.abs(v - m))) / np.sqrt(v.size)
    return m - k * sem > floor_r2_per_s, m, float(sem)


def _near(region: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """The part of ``region`` within :data:`NEAR_VOXELS` in-plane voxels of ``piece`` (the
    whole region when that holds fewer than 100 voxels): the S0 reference of the piece."""
    near = region & ndimage.binary_dilation(piece, np.ones((3, 3, 1), bool), iterations=NEAR_VOXELS)
    return near if np.count_nonzero(near) >= 100 else region


VERDICTS = ("taken", "floor", "s0", "small", "above")
"""A tested piece's verdict in :func:`low_side_pieces`'s ``record``: taken (its voxels at or above
the floor), refused as not above the floor by :data:`INTAKE_K` SE, refused by ``same_tissue``,
too few white voxels, median R2 above the region's."""


def _test_piece(piece: np.ndarray, region: np.ndarray, med_region: float, maps: Any, r2: np.ndarray,
                white_valid: np.ndarray, floor_r2_per_s: float, k: float,
                pdff: np.ndarray | None) -> tuple[str, np.ndarray | None, dict[str, Any], dict[str, Any]]:
    """``(verdict, voxels taken or None, row, same_tissue's tests)`` of one piece of a round of
    :func:`low_side_pieces` (module docstring, steps 3-4; a refused piece's second look)."""
    from ._roi_patches import same_tissue

    v = r2[piece & white_valid]
    if v.size < MIN_WHITE_VOXELS:
        return "small", None, {}, {}
    if float(np.median(maps.logr[piece])) > med_region:
        return "above", None, {}, {}
    ok, m, sem = _white_median_test(v, floor_r2_per_s, k)
    same, tests = same_tissue(piece, _near(region, piece), maps.logs, maps.logr, pdff) if ok else (False, {})
    row = {"voxels": int(np.count_nonzero(piece)), "median_r2_per_s": round(m, 2), "se_per_s": round(sem, 2)}
    log_floor = np.log(floor_r2_per_s)
    if ok and same:
        # the extension's own per-voxel floor (no noise margin) trims the rim that the window
        # marking smears into a neighbouring organ below the floor
        return "taken", piece & (maps.logr >= log_floor), row, tests
    row = {**row, "above_floor": bool(ok), "same_tissue": bool(same), **tests}
    taken = second_look(piece, region, _near(region, piece), maps, r2, white_valid, floor_r2_per_s, k,
                        MIN_WHITE_VOXELS, pdff)[0] & (maps.logr >= log_floor)  # branch floorpiece
    return ("s0" if ok else "floor"), taken, row, tests


def low_side_pieces(cand: np.ndarray, maps: Any, r2: np.ndarray, floor_r2_per_s: float, grow_k: float,
                    pdff: np.ndarray | None = None, *, k: float = INTAKE_K,
                    rounds: int = INTAKE_ROUNDS, record: list | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """``(candidate, info)``: ``cand`` with the low-side pieces that pass the pooled test
    (module docstring) added and holes filled slice by slice; ``maps``:
    :class:`r2mri._roi_proposal.GrowthMaps`, ``r2``: the fit's voxel R2 (s^-1).
    ``info``: ``added`` (voxels), ``pieces`` (the taken ones: voxels, white-voxel median
    R2 and its SE), ``refused`` (the five largest pieces that failed a test).

    ``record``: when a list, one dict per tested piece is appended, in the order tested
    (nothing is recorded otherwise; the result is the same): ``round`` (0-based), ``mask``
    (its voxels, ``cand``'s shape), ``verdict`` (one of :data:`VERDICTS`), ``taken`` (the
    voxels it adds: after the floor trim when taken, the second look's when refused; all
    False for small / above), ``row`` (as in ``info``; empty for small / above) and
    ``tests`` (``same_tissue``'s measures). The candidate before round ``r`` is ``cand``
    with the ``taken`` of every earlier round (the fill and the connectivity step follow).
    ``benchmarks.floorpiece`` classifies the left-out liver with it.
    """
    info: dict[str, Any] = {"added": 0, "pieces": [], "refused": []}
    if np.count_nonzero(cand & maps.tissue) < 10:
        return cand, info
    marked, black = marked_not_below(maps.tissue, r2, floor_r2_per_s)
    white_valid = ~black & maps.tissue & np.isfinite(r2)
    face = ndimage.generate_binary_structure(3, 1)
    out = cand.copy()
    for rnd in range(rounds):
        region = out & maps.tissue
        pieces, n = _round_pieces(out, marked, maps, grow_k, face)
        if n == 0:
            break
        med_region = float(np.median(maps.logr[region]))
        take = np.zeros(out.shape, dtype=bool)
        for p in range(1, n + 1):
            piece = pieces == p
            verdict, taken, row, tests = _test_piece(piece, region, med_region, maps, r2, white_valid,
                                                     floor_r2_per_s, k, pdff)
            if taken is not None:
                take |= taken
                info["pieces" if verdict == "taken" else "refused"].append(row)
            if record is not None:
                record.append({"round": rnd, "mask": piece, "verdict": verdict, "row": row, "tests": tests,
                               "taken": taken if taken is not None else np.zeros(out.shape, dtype=bool)})
        if not take.any():
            break
        out = out | take
    if (out & ~cand).any():
        for kk in range(out.shape[2]):
            out[:, :, kk] = ndimage.binary_fill_holes(out[:, :, kk])
        labels, _ = ndimage.label(out, structure=face)  # what the trim cut off the candidate goes
        touched = np.unique(labels[cand])
        out = np.isin(labels, touched[touched > 0]) | cand
    info["added"] = int(np.count_nonzero(out & ~cand))
    info["pieces"] = sorted(info["pieces"], key=lambda q: -q["voxels"])[:5]
    info["refused"] = sorted(info["refused"], key=lambda q: -q["voxels"])[:5]
    return out, info


def _round_pieces(out: np.ndarray, marked: np.ndarray, maps: Any, grow_k: float,
                  face: np.ndarray) -> tuple[np.ndarray, int]:
    """``(labels, n)``: the face-connected pieces of the marked tissue that the extension
    step (module docstring, step 2) reaches from ``out`` outside it; ``n`` 0 when none."""
    from ._roi_grow import _BAND_CAP_R2, _BAND_CAP_S0, _BAND_FLOOR_S0, _EDGE_FLOOR, _MAD_TO_SD
    from ._roi_parenchyma import _extend_once

    no_floor = float(np.finfo(float).tiny)  # the pieces: the marking stands for the floor (the test's sample)
    loose, _, _ = _extend_once(out, marked, maps.logr, maps.logs, maps.steps, no_floor, grow_k,
                               (_BAND_FLOOR_S0, _BAND_CAP_S0), _BAND_CAP_R2, _EDGE_FLOOR, _MAD_TO_SD, None,
                               np.zeros(out.shape, dtype=bool))
    if loose is None:
        return np.zeros(out.shape, dtype=np.int32), 0
    return ndimage.label(loose & ~out & marked, structure=face)


def take_low_side(cand: np.ndarray, maps: Any, r2: np.ndarray, floor_r2: float | None, floor_ext: float,
                  grow_k: float, pdff: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any], dict | None, str | None]:
    """The hook of :func:`r2mri._roi_extend.extend_candidate`: ``(candidate, low-side info,
    intake info or None, warning or None)``.

    The low-side check (:func:`r2mri._roi_low_side.check_low_side`) runs on ``cand``; only
    when it warns (liver-like tissue on the low-R2 side left out beyond 2 % of the region)
    and on the R2 route (``floor_r2`` given, voxel SEs known) are the pieces that pass the
    pooled test taken in (:func:`low_side_pieces`). The check then runs again on the new
    candidate and warns above :data:`RESIDUAL_WARN_FRACTION`; its info carries
    ``before_intake_fraction``. Every other liver is left exactly as before.
    """
    from ._roi_low_side import check_low_side

    info, warn = check_low_side(cand, maps, floor_ext, grow_k, pdff)
    if warn is None or floor_r2 is None or getattr(maps, "se_map", None) is None:
        return cand, info, None, warn
    out, intake = low_side_pieces(cand, maps, r2, floor_r2, grow_k, pdff)
    if not intake["added"]:
        return cand, info, intake, warn
    after, warn_after = check_low_side(out, maps, floor_ext, grow_k, pdff, warn_fraction=RESIDUAL_WARN_FRACTION)
    after["before_intake_fraction"] = info["fraction"]
    return out, after, intake, warn_after
