"""Spared parenchyma versus fluid among the low-R2 voxels of the liver ROI (issue 16).

The vessel rule of :func:`r2mri.roi.liver_roi` (rule 3a/a2) removes voxels whose R2 lies
far *below the liver's own median*. On a patchy liver that also removes parenchyma
spared from iron (a focal region at 0.8 mg/g in a 7 mg/g liver has R2 29 against
102 s^-1): on the shipped ``heterogeneous-focal-1.5t`` phantom it removed 446 of the 448
voxels of the spared region, and the headline read high. A radiologist keeps spared
and overloaded parenchyma alike and excludes only vessels and lesions that are not
parenchyma.

What separates the two is the absolute R2, not its distance from the median: liver
parenchyma has at least the R2 of the least-loaded livers of the calibration cohort,
while blood, bile and cysts (fluids, T2 of hundreds of ms) lie far below it. The floor
is the calibration's own calibrated range mapped to R2
(:attr:`r2mri.calibration.Calibration.calibrated_rate_range_per_s`; for St Pierre
2005, LIC >= 0.3 mg/g [C: St Pierre 2005 abstract] -> R2 >= 18.0 s^-1). No new constant:
a region of R2 below the range the calibration was built on would in any case be
read by extrapolation.

The decision is taken per connected low-R2 region (in-plane, 8-connectivity, slice by
slice: slices are thick and gapped), by the median of its voxels' R2: one noisy voxel
cannot flip it, and at SNR 10 (vessel voxel SE ~13 s^-1) a vessel's median still sits
near the blood R2. Regions with median R2 at or above the floor and at least 3 voxels
thick in-plane (there or in a slice they connect to) are kept (spared parenchyma; a thinner run is a small vessel in partial
volume, whose voxels read between blood and liver); the others stay removed and are dilated as before. A spared region that
touches a vessel in-plane is decided as one region by its majority.

:func:`extend_to_parenchyma` is the same idea for the candidate of the semi-/automatic
ROI: edge patches of high or low iron that the growing band left out are added back
when their S0 and edges look like the liver and their R2 is parenchymal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ._roi_iron import IronNoise, iron_pieces
from ._roi_patches import left_out_warning, same_tissue

__all__ = ["parenchyma_r2_floor_per_s", "is_r2star_floor", "extension_min_median_per_s", "spared_parenchyma", "below_parenchyma", "fluid_regions",
           "extend_to_parenchyma"]


def parenchyma_r2_floor_per_s(calibration: Any, image: Any) -> tuple[float | None, str]:
    """Lowest R2 (s^-1) of liver parenchyma: the calibration's calibrated range in rate.

    ``calibration`` as for :func:`r2mri.calibration.get_calibration`; ``None`` picks the
    default curve for the image (:func:`r2mri.calibration.default_calibration`). Returns
    ``(floor, name)``, ``(None, reason)`` when no curve or no lower range is known, or
    the curve is not an R2 curve (the parenchyma rules are then off, as before issue
    16). St Pierre 2005 gives 18.0 s^-1, below the 25-45 s^-1 of normal livers at
    1.5 T (/work/shared/domain.md); a site curve whose range starts higher would put
    the floor inside normal parenchyma: :func:`below_parenchyma` also asks for a voxel
    below the liver's median, so that a uniform liver is not cut.

    Examples
    --------
    >>> floor, name = parenchyma_r2_floor_per_s("st-pierre-2005", None)
    >>> name, round(floor, 1)
    ('st-pierre-2005', 18.0)
    """
    from . import calibration as _cal
    from .errors import CalibrationError

    try:
        cal = _cal.get_calibration(calibration if calibration is not None else _cal.default_calibration(image))
    except CalibrationError as exc:
        return None, f"no calibration ({exc})"
    if cal.quantity in ("R2*", "T2*"):
        # an R2* curve's calibrated range can start above normal livers (wood-2005-r2star:
        # 1.33 mg/g -> 44 s^-1): the floor is the lowest normal-liver R2* instead (r2mri/_r2star_floor.py)
        from ._r2star_floor import r2star_floor_per_s

        floor, why = r2star_floor_per_s(cal)
        return floor, (f"{cal.name}: {why}" if floor is not None else why)
    if cal.quantity != "R2":
        return None, f"{cal.name}: no parenchyma floor for quantity {cal.quantity}"
    lo, _ = cal.calibrated_rate_range_per_s
    if lo is None or not np.isfinite(lo) or lo <= 0:
        return None, f"{cal.name}: no lower calibrated range"
    return float(lo), str(cal.name)


def extension_min_median_per_s(calibration: Any, image: Any) -> float | None:
    """For R2* curves, the highest normal-liver R2* plus the field mapping's uncertainty
    (:func:`r2mri._r2star_floor.r2star_extension_min_per_s`: 37.77 s^-1 at 1.5 T, 73.7 s^-1
    on the 3 T Storey-mapped curve): a grown region whose median R2* is not above it is a
    normal-iron liver and is not extended (on ISMRM 2012 case 12, median ~27 s^-1, the
    extension added 1,711 voxels in pieces that crossed slices to the patient's left:
    ``tests/test_roi_islands.py``; on the real 3 T Bydder liver, median ~67 s^-1 against
    the mapped 64.5, it took in spleen and stomach). None for R2 curves (extension as
    before)."""
    from . import calibration as _cal
    from ._r2star_floor import r2star_extension_min_per_s
    from .errors import CalibrationError

    try:
        cal = _cal.get_calibration(calibration if calibration is not None else _cal.default_calibration(image))
    except CalibrationError:
        return None
    return r2star_extension_min_per_s(cal) if cal.quantity in ("R2*", "T2*") else None


def is_r2star_floor(source: str) -> bool:
    """Whether a floor of :func:`parenchyma_r2_floor_per_s` is the normal-liver R2* floor
    (:mod:`r2mri._r2star_floor`), which :func:`r2mri.roi.liver_roi` uses only to admit
    tissue (the extension), never to remove it: it sits at the lowest normal liver, not
    below it with a margin, and on a real 1.5 T liver near it (ISMRM 2012 case 12,
    headline 0.54 mg/g) the removal rules cut 1,400 voxels of the candidate and 400 more
    as fluid, and the headline moved +16 %."""
    return "Obrzut" in str(source)


def spared_parenchyma(low_r2: np.ndarray, r2: np.ndarray, floor_r2_per_s: float,
                      liver_median_r2: float | None = None, within: np.ndarray | None = None) -> np.ndarray:
    """The voxels of ``low_r2`` that belong to in-plane regions of median R2 >= the floor.

    Parameters
    ----------
    low_r2 : ndarray of bool, (x, y, z)
        Voxels the low-R2 vessel tests flagged.
    r2 : ndarray, (x, y, z)
        Voxel R2 (s^-1); non-finite values are ignored in the medians.
    floor_r2_per_s : float
        Lowest R2 of parenchyma (:func:`parenchyma_r2_floor_per_s`).
    liver_median_r2 : float, optional
        The ROI's median R2 (s^-1). With it, the thickness test (below) looks at the
        flagged voxels together with the voxels ``within`` whose R2 is below the midpoint
        of the floor and that median (a spared region whose voxels the vessel tests
        flagged only in part); without it, at the flagged voxels alone.
    within : ndarray of bool, optional
        Where those voxels may be (the ROI candidate); everywhere if omitted.

    Returns
    -------
    ndarray of bool
        Voxels to keep as parenchyma.

    Examples
    --------
    >>> r2 = np.full((12, 12, 1), 100.0)
    >>> low = np.zeros((12, 12, 1), bool)
    >>> low[1:3, 1:3] = True; r2[1:3, 1:3] = 4.0      # blood
    >>> low[5:9, 5:9] = True; r2[5:9, 5:9] = 29.0     # spared liver, 0.8 mg/g
    >>> low[1:11, 10] = True; r2[1:11, 10] = 42.0     # a thin vessel seen in partial volume
    >>> keep = spared_parenchyma(low, r2, 18.0)
    >>> int(keep.sum()), bool(keep[5, 5, 0]), bool(keep[1, 1, 0]), bool(keep[4, 10, 0])
    (16, True, False, False)
    """
    if not low_r2.any():
        return np.zeros(low_r2.shape, dtype=bool)
    inplane = np.zeros((3, 3, 3), dtype=bool)
    inplane[:, :, 1] = True  # 8-connected in-plane, no link across slices
    labels, n = ndimage.label(low_r2, structure=inplane)
    finite = np.isfinite(r2) & low_r2
    idx = np.arange(1, n + 1)
    med = np.asarray(ndimage.median(np.where(finite, r2, 0.0), labels=np.where(finite, labels, 0), index=idx),
                     dtype=np.float64)
    # [D] a region must be at least 3 voxels thick in-plane (a 3x3 erosion leaves a core),
    # here or in a slice it connects to (the thin caps of a spared sphere), counting the
    # low voxels around it that the vessel tests did not flag (a patchy liver's wide
    # spread flags only part of a spared region: 5 of 110 voxels at 3 mm): a vessel 1-2
    # voxels across is seen in partial volume with the liver around it, its voxels' R2
    # between blood's and the liver's (liver 240 s^-1 with 30 % blood reads ~42 s^-1 over
    # TE 6-18 ms, above the floor), and it must stay excluded
    lowish = low_r2.copy()
    if liver_median_r2 is not None and np.isfinite(liver_median_r2):
        with np.errstate(invalid="ignore"):
            lowish |= np.isfinite(r2) & (r2 < 0.5 * (floor_r2_per_s + liver_median_r2)) & (
                True if within is None else within)
    core = ndimage.binary_erosion(lowish, structure=inplane)
    labels3, n3 = ndimage.label(lowish, structure=np.ones((3, 3, 3), dtype=bool))
    thick3 = np.zeros(n3 + 1, dtype=bool)
    thick3[1:] = np.bincount(labels3[core], minlength=n3 + 1)[1:] > 0
    thick = np.bincount(labels[thick3[labels3]], minlength=n + 1)[1:] > 0
    keep_label = np.zeros(n + 1, dtype=bool)
    keep_label[1:] = np.isfinite(med) & (med >= floor_r2_per_s) & thick
    return keep_label[labels]


def below_parenchyma(r2: np.ndarray, r2_median3: np.ndarray, se: np.ndarray, floor_r2_per_s: float,
                     k: float, liver_median_r2: float = np.inf) -> np.ndarray:
    """Voxels whose R2 lies significantly below the lowest R2 of parenchyma: fluid.

    The voxel test ``R2 < floor - k se`` and the same on the 3x3 in-plane median
    ``R2_med < floor - k sqrt(pi/18) se`` (``pi/18 se^2``: the large-sample variance of a
    median of 9 values of SD ``se``, as in rule 3a2 of :mod:`r2mri.roi`). Unlike the
    tests against the liver's own median, these do not weaken when the liver is
    heterogeneous: on ``heterogeneous-coarse-1.5t`` (texture SD 0.4 in log LIC over
    8 voxels) the parenchyma's spread made ``4 x het`` larger than the median R2, and
    with the true outline all 2,864 vessel voxels stayed in the ROI. A voxel without a
    finite SE is no evidence (noise floor, bound hit) and is not flagged. The limit is
    the lower of the floor and ``liver_median_r2`` (the ROI's median R2): a liver whose
    median sits below the floor (a site curve with a high calibrated minimum) loses only
    its noise tail (``k`` = 4: 3e-5), not its low half.

    Examples
    --------
    >>> r2 = np.array([4.0, 12.0, 25.0]); r2_med = np.array([4.0, 16.0, 25.0]); se = np.full(3, 2.0)
    >>> below_parenchyma(r2, r2_med, se, 18.0, 4.0).tolist()   # limits 10.0 (voxel), 14.7 (median)
    [True, False, False]
    """
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(se)
        lim_v = np.minimum(floor_r2_per_s, liver_median_r2) - k * se
        lim_m = np.minimum(floor_r2_per_s, liver_median_r2) - k * np.sqrt(np.pi / 18.0) * se
        voxel = ok & np.isfinite(r2) & (r2 < lim_v)
        median = ok & np.isfinite(r2_median3) & (r2_median3 < lim_m)
    return voxel | median


#: Largest single added piece accepted, as a fraction of the grown candidate [D: r2mri's
#: own limit]. The extension is judged piece by piece (the face-connected components of
#: the added voxels): a neighbouring organ that passes the bands joins as one piece,
#: while a patchy liver's left-out edge patches are many. On heterogeneous-coarse-1.5t
#: (SD 0.4 over 8 voxels), textures 1-8, the largest piece was 0.135 of the candidate
#: (texture 6, whose whole extension, 0.268, the former limit on the total refused);
#: a leak into muscle at 40 mg/g, seen before the R2 band was added, was 0.29. A larger
#: piece is left out (the rest is kept) and noted in ``roi.options["parenchyma_extension"]``.
MAX_EXTENSION_FRACTION = 0.25
#: Percentile of the candidate's (smoothed) R2 SE x S0 that a voxel's is compared with
#: when its edge limit and S0 band are widened [D]. The limits are set on the candidate
#: (median + 6 robust SDs of its steps, 3 robust SDs of its S0) and so already admit the
#: noise of its noisier voxels; only noise beyond them widens. With the median, a
#: uniform liver at SNR 10 (low-snr-1.5t-lic7, R2 SE 56 s^-1, 90th percentile 75) gained
#: a voxel by its noise alone; a 15-30 mg/g patch of heterogeneous-coarse-1.5t (SE
#: 27-52 s^-1 against a 90th percentile of 12, at the same S0) is still widened 2-4 fold.
NOISE_REFERENCE_PERCENTILE = 90.0
#: Rounds of the extension, each with the band re-estimated on the extended candidate
#: (whose spread the growing's cap had truncated) [D].
EXTENSION_ROUNDS = 3


def extend_to_parenchyma(cand: np.ndarray, tissue: np.ndarray, logr: np.ndarray, logs: np.ndarray,
                         steps: np.ndarray, floor_r2_per_s: float, *, k: float, s0_band: tuple[float, float],
                         r2_cap: float, edge_floor: float, mad_to_sd: float,
                         r2_noise: np.ndarray | None = None,
                         iron_noise: "IronNoise | None" = None,
                         pdff: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Add to a grown candidate the tissue connected to it that looks like liver in S0 and
    has a parenchymal R2 (>= the floor), whatever its iron.

    The growing band caps log R2 at +-0.3 around the region's median (so a region that
    swallowed two tissues cannot widen to the body), which on a patchy liver leaves out
    the patches of high or low iron at the liver's edge (holes inside are filled
    back): on ``heterogeneous-coarse-1.5t`` (SD 0.4 in log LIC over 8 voxels) the
    candidate missed 14,266 liver voxels of mean LIC 5.4 mg/g and the headline read
    +9 %. Here the R2 band is widened to k robust SDs of the candidate's log R2 (never
    narrower than the growing band) below the median, bounded below by the parenchymal
    floor, and above the median to the largest deviation expected in a normal sample of
    the candidate's size (:func:`_upper_k`: iron raises R2, and on a coarse texture the
    highest patches sit 3.5-4 SDs up). The S0 band and the S0-edge limit of the growing
    (module :mod:`r2mri.roi`) are kept, computed on the candidate, and widened for each
    voxel by the noise its iron adds (``r2_noise``, below). One round:
    the components of (candidate or allowed voxels) that touch the candidate
    (6-connectivity), then holes filled slice by slice. An added piece larger than
    :data:`MAX_EXTENSION_FRACTION` of the candidate is refused (a leak).

    Parameters
    ----------
    r2_noise : ndarray, optional
        The 3x3 in-plane median of each voxel's R2 standard error times its S0: at a
        given R2 the SE goes as noise / S0, so the product leaves the part of the noise
        that grows with R2 (iron), not the part from a darker tissue or coil shading.
        The S0 of a mono-exponential fit is read from the same echoes as its R2, so its
        noise grows with R2's: in a 15-30 mg/g patch of a 7 mg/g liver (R2 SE 27-52
        against 5-7 s^-1) the in-plane log-S0 steps had a median of 0.18 (0.03 in the
        rest), and 70 % of the patch failed the 0.2 edge limit. A voxel with R2 above
        the candidate's median and ``r2_noise`` above the candidate's 90th percentile
        (:data:`NOISE_REFERENCE_PERCENTILE`) by a factor q > 1 gets its edge limit
        times q and its S0 band times q (at most the growing's S0 cap): the same
        false-edge rate as in the candidate. Not the SE alone: muscle (proton density
        0.6, R2 35 s^-1) is noisier than a 1-2 mg/g liver (R2 31-45 s^-1) by its lower
        S0 (q ~1.5-2), and widening by it added 8,300-9,500 muscle voxels to the
        candidates of ``ferriscan-1.5t-lic1.8`` and ``heterogeneous-coarse-1.5t`` at 1
        mg/g (texture 6; 609 stayed in the ROI). Without ``r2_noise``, no widening.
    iron_noise : IronNoise, optional
        :func:`iron_noise_maps`: on the iron side (R2 above the candidate's median) the
        voxels' own noise widens the S0 band, the edge limit and the upper R2 band, and
        voxels whose fit hit the noise floor or a bound but that carry signal at the
        first echo may join (a voxel too dark to fit is still liver).

    Returns ``(candidate, info)``; ``info`` holds ``added`` (voxels), ``accepted``,
    ``rounds``, the log-R2 half-bands, the largest added piece and the refused pieces
    (fractions of the candidate) and, when a piece was refused, a ``warning`` for the
    report.

    Examples
    --------
    A liver with a texture of SD 0.3 in log R2 and an iron-rich edge patch 3 SDs up
    (R2 246 against 100 s^-1), which a band of 3 SDs (0.88) would leave out:

    >>> rng = np.random.default_rng(0)
    >>> logr = np.log(100.0) + 0.3 * rng.standard_normal((30, 30, 2))
    >>> logr[24:] = np.log(100.0) + 0.9
    >>> tissue = np.zeros(logr.shape, bool); tissue[2:28, 2:28] = True
    >>> cand = tissue.copy(); cand[24:] = False
    >>> flat = np.zeros(logr.shape)
    >>> ext, info = extend_to_parenchyma(cand, tissue, logr, flat, flat, 18.0, k=3.0, s0_band=(0.25, 0.4),
    ...                                  r2_cap=0.3, edge_floor=0.2, mad_to_sd=1.4826)
    >>> bool(ext[25, 10, 0]), info["added"], round(info["r2_band_log"], 2), round(info["r2_band_log_high"], 2)
    (True, 208, 0.88, 0.98)
    """
    info: dict[str, Any] = {"added": 0, "accepted": False, "rounds": 0, "r2_band_log": None,
                            "r2_band_log_high": None, "largest_piece_fraction": 0.0, "refused_fractions": []}
    out = cand
    n0 = int(np.count_nonzero(cand))
    refused = np.zeros(cand.shape, dtype=bool)
    med0 = float(np.median(logr[cand & tissue])) if (cand & tissue).any() else np.inf
    for _ in range(EXTENSION_ROUNDS):
        ext, lim_r, lim_hi = _extend_once(out, tissue, logr, logs, steps, floor_r2_per_s, k, s0_band, r2_cap,
                                          edge_floor, mad_to_sd, r2_noise, refused, iron_noise)
        if ext is None:
            break
        ext, out = _drop_leaks(ext, out, cand, tissue, refused, logr, logs, pdff, n0, med0, iron_noise, info)
        if not (ext & ~out).any():
            break
        info["rounds"] += 1
        info["r2_band_log"], info["r2_band_log_high"] = lim_r, lim_hi
        out = ext
    info["added"] = int(np.count_nonzero(out & ~cand))
    info["accepted"] = info["added"] > 0
    if info.get("large_patch_fractions"):
        info["warning_patch"] = _patch_warning(info["large_patch_fractions"], pdff is not None)
    # whatever the extension took, tissue that looks like the region and was still left out (issue 16);
    # a refused piece already has its warning
    loose, _, _ = _extend_once(out, tissue, logr, logs, steps, floor_r2_per_s, k, s0_band, np.inf, edge_floor,
                               mad_to_sd, None, np.zeros(out.shape, dtype=bool))
    if loose is not None:
        info["left_out"], warn = left_out_warning(out & tissue, loose, logs, logr, pdff)
        if warn and not info["refused_fractions"]:
            info["warning_left_out"] = warn
    _leak_and_iron_warnings(info, n0, int(np.count_nonzero(out)))
    return out, info


def _drop_leaks(ext, out, cand, tissue, refused, logr, logs, pdff, n0: int, med0: float, iron_noise, info):
    """Judge the pieces one round added to the grown candidate ``cand``: one larger than
    :data:`MAX_EXTENSION_FRACTION` of it is a leak, unless it is iron-rich liver (with
    ``iron_noise``) or a patch of the region's own tissue; leaks are marked in ``refused``
    and removed from ``ext`` and ``out`` (a piece accepted in an earlier round that grew
    too large goes too). Returns ``(ext, out)``; the fractions go to ``info``."""
    face = ndimage.generate_binary_structure(3, 1)
    pieces, n = ndimage.label(ext & ~cand, structure=face)
    if not n:
        return ext, out
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    info["largest_piece_fraction"] = round(float(sizes[1:].max()) / n0, 4)
    big = np.flatnonzero(sizes[1:] > MAX_EXTENSION_FRACTION * n0) + 1
    if big.size and iron_noise is not None:
        big, iron_big = iron_pieces(pieces, big, logr, med0)
        # a fat-water fit's PDFF still tells another organ from iron-rich liver (_roi_patches)
        iron_big, not_liver = _split_same_tissue(pieces, iron_big, cand & tissue, logs, logr, pdff, info)
        big = np.concatenate([big, not_liver])
        info["large_iron_fractions"] = [round(float(sizes[b]) / n0, 4) for b in iron_big]
    if big.size:
        # a coarse texture's own patches: the region's S0 (and PDFF) (r2mri/_roi_patches.py)
        patch_big, big = _split_same_tissue(pieces, big, cand & tissue, logs, logr, pdff, info, low_only=True)
        if patch_big.size:  # the same patch grows over the rounds: its last size
            info["large_patch_fractions"] = [round(float(sizes[b]) / n0, 4) for b in patch_big]
    if big.size:
        leak = np.isin(pieces, big)
        refused |= leak
        ext &= ~leak
        out = out & ~leak  # a piece accepted in an earlier round that grew too large goes too
        info["refused_fractions"] += [round(float(sizes[b]) / n0, 4) for b in big]
    return ext, out


def _patch_warning(fractions: list, with_pdff: bool) -> str:
    """The report's warning for patches of the region's own tissue added outside its R2 range."""
    return (f"liver ROI: WARNING - the automatic liver region was extended by connected tissue "
            f"of its own S0{' and fat fraction' if with_pdff else ''} but outside its R2 "
            f"range ({', '.join(f'{f:.0%}' for f in fractions)} of the "
            "region; a patchy liver's low- or high-iron patches): check that it is liver")


def _leak_and_iron_warnings(info: dict, n0: int, n_final: int) -> None:
    """The report's warnings for refused pieces (a stopped leak, or liver left out) and for
    iron-rich tissue added as liver (its share of the final ROI of ``n_final`` voxels)."""
    if info["refused_fractions"]:
        # either a leak was stopped or a large part of the liver stays out: a reader must look
        info["warning"] = (f"liver ROI: WARNING - tissue connected to the liver region that looks like "
                           f"parenchyma ({', '.join(f'{f:.0%}' for f in info['refused_fractions'])} of the "
                           f"region) was left out as a possible leak into a neighbouring organ; if it is "
                           f"liver, the ROI misses it: check the ROI or give a mask")
    if info.get("large_iron_fractions"):
        # the share of the final ROI (the fractions are of the region before it: 333 % read as nonsense)
        n_out = max(n_final, 1)
        shares = ", ".join(f"{f * n0 / n_out:.0%}" for f in info["large_iron_fractions"])
        info["warning_iron"] = (f"liver ROI: WARNING - iron-rich tissue connected to the liver region "
                                f"({shares} of the final ROI) was "
                                f"added as liver: its R2 is above the liver's median and too noisy to find an organ "
                                f"edge in S0; check that no iron-loaded spleen or other organ came in")


def _split_same_tissue(pieces, idx, region, logs, logr, pdff, info, low_only=False):
    """(pieces of ``idx`` that look like the region's tissue, the others):
    :func:`r2mri._roi_patches.same_tissue`; the measures go to ``info["piece_tests"]``.
    ``low_only``: a piece whose median R2 is above the region's is never taken (the iron
    side is :func:`r2mri._roi_iron.iron_pieces`' decision)."""
    same = np.zeros(idx.size, dtype=bool)
    med = float(np.median(logr[region])) if region.any() else np.inf
    for i, b in enumerate(idx):
        piece = pieces == b
        if low_only and float(np.median(logr[piece])) > med:
            continue
        same[i], m = same_tissue(piece, region, logs, logr, pdff)
        info.setdefault("piece_tests", []).append({"same_tissue": bool(same[i]), **m})
    return idx[same], idx[~same]


def _upper_k(n: int, k: float) -> float:
    """Robust SDs above the median for the upper side of the extension's R2 band: the
    deviation that the largest of a normal sample of ``n`` voxels exceeds with
    probability 1 - (1 - 1/(2n))^n ~ 0.39 (the 1 - 1/(2n) quantile; 4.38 SDs for n =
    84,000, 3.3 for 1,000), never below ``k``."""
    from scipy.special import ndtri

    return max(float(k), float(ndtri(1.0 - 0.5 / max(n, 1))))


def _extend_once(cand, tissue, logr, logs, steps, floor_r2_per_s, k, s0_band, r2_cap, edge_floor, mad_to_sd,
                 r2_noise, refused, iron_noise=None):
    """One round of :func:`extend_to_parenchyma`: (extended candidate or None, low and
    high log-R2 half-bands)."""
    grown = cand & tissue
    n = int(np.count_nonzero(grown))
    if n < 10:
        return None, None, None
    vs, vst = logs[grown], steps[grown]
    med_s = float(np.median(vs))
    sd_s = mad_to_sd * float(np.median(np.abs(vs - med_s)))
    lim_s = min(max(k * sd_s, s0_band[0]), s0_band[1])
    med_st = float(np.median(vst))
    sd_st = mad_to_sd * float(np.median(np.abs(vst - med_st)))
    lim_st = max(edge_floor, med_st + 2 * k * sd_st)
    vr = logr[grown]
    med_r = float(np.median(vr))
    sd_r = mad_to_sd * float(np.median(np.abs(vr - med_r)))
    lim_r = max(r2_cap, k * sd_r)
    lim_hi = max(r2_cap, _upper_k(n, k) * sd_r)
    q = 1.0
    if r2_noise is not None:
        ref = np.asarray(r2_noise)[grown]
        ref = ref[np.isfinite(ref)]
        ref = float(np.percentile(ref, NOISE_REFERENCE_PERCENTILE)) if ref.size else np.nan
        if np.isfinite(ref) and ref > 0:
            with np.errstate(invalid="ignore"):
                # iron's noise only: above the median R2, and SE x S0 (a darker tissue such as
                # muscle is noisier by its S0 and widening for that let it in; docstring)
                q = np.where(np.isfinite(r2_noise) & (logr > med_r), np.maximum(r2_noise / ref, 1.0), 1.0)
    lim_step, lim_s0, lim_up, allowed = lim_st * q, np.minimum(lim_s * q, s0_band[1]), lim_hi, tissue
    if iron_noise is not None:
        lim_step, lim_s0, lim_up, allowed = iron_noise.widen(logr > med_r, k, lim_step, lim_s0, lim_up, tissue)
    with np.errstate(invalid="ignore"):
        ok = (allowed & ~refused & (steps <= lim_step) & (np.abs(logs - med_s) <= lim_s0)
              & (logr - med_r <= lim_up) & (med_r - logr <= lim_r) & (logr >= np.log(floor_r2_per_s)))
    labels, _ = ndimage.label(cand | ok, structure=ndimage.generate_binary_structure(3, 1))
    touched = np.unique(labels[cand])
    ext = np.isin(labels, touched[touched > 0])
    for kk in range(ext.shape[2]):
        if ext[:, :, kk].any():
            ext[:, :, kk] = ndimage.binary_fill_holes(ext[:, :, kk])
    return (ext & ~refused) | cand, lim_r, lim_hi


def fluid_regions(r2: np.ndarray, se: np.ndarray, candidate: np.ndarray, floor_r2_per_s: float, k: float,
                  liver_median_r2: float = np.inf) -> np.ndarray:
    """In-plane connected regions of voxels below the parenchyma floor whose median R2 lies
    significantly below it: fluid (rule 3a3 of :func:`r2mri.roi.liver_roi`, by region).

    The voxel test of :func:`below_parenchyma` needs ``R2 < floor - k se``: at SNR 20
    a vessel voxel (blood R2 4 s^-1, SE 6-7 s^-1) cannot pass it (limit 18 - 28 < 0),
    nor its 3x3 median in a vessel 1-2 voxels wide, and the liver's own spread at 30
    mg/g (``het`` 50-60 s^-1) hides it from the tests against the median: on
    ``heterogeneous-coarse-1.5t`` at 30 mg/g, SNR 20, one channel, 10-280 vessel voxels
    stayed in the ROI of the true outline (textures 1-5). A region of ``n`` such voxels
    has a median of SE ``sqrt(pi/2) se / sqrt(n)`` (the large-sample SE of a median);
    it is fluid when its median is below the limit by ``k`` of those. ``candidate``:
    the voxels that may be fluid (fitted, not at the noise floor: a fit at the floor
    is a dark voxel, whose R2 is only a lower bound, never a bright fluid). Voxels
    selected below the floor have a median biased below it, so the test runs only when
    ``liver_median_r2`` lies more than ``k`` times the median SE of the voxels below the
    floor above it, where noise cannot make such regions of parenchyma (a liver near or below
    the floor keeps the voxel tests alone). Non-finite SEs are ignored.

    Examples
    --------
    A vessel of 2 x 10 voxels at R2 4 +- 7 s^-1 (one voxel at 19) is fluid; a liver
    voxel that noise put at 15 s^-1 is not:

    >>> r2 = np.full((12, 12, 1), 230.0); se = np.full(r2.shape, 35.0)
    >>> rng = np.random.default_rng(0)
    >>> r2[1:3, 1:11] = np.clip(4 + 7 * rng.standard_normal((2, 10, 1)), 0, None); se[1:3, 1:11] = 7.0
    >>> r2[1, 5] = 19.0; r2[8, 8] = 15.0
    >>> f = fluid_regions(r2, se, np.ones(r2.shape, bool), 18.0, 4.0, 230.0)
    >>> int(f[1:3, 1:11].sum()), bool(f[8, 8, 0])
    (19, False)
    """
    limit = float(floor_r2_per_s)
    with np.errstate(invalid="ignore"):
        low = candidate & np.isfinite(r2) & (r2 < limit)
    se_c = np.abs(se[low & np.isfinite(se)])
    # selecting voxels below the limit biases a region's median below it: only where the
    # liver's median lies k of the low voxels' SEs above the floor can noise not make
    # such regions out of parenchyma
    if not low.any() or not se_c.size or not float(liver_median_r2) - limit > k * float(np.median(se_c)):
        return np.zeros(low.shape, dtype=bool)
    inplane = np.zeros((3, 3, 3), dtype=bool)
    inplane[:, :, 1] = True
    labels, n = ndimage.label(low, structure=inplane)
    idx = np.arange(1, n + 1)
    med = np.asarray(ndimage.median(r2, labels=labels, index=idx), dtype=np.float64)
    fin = low & np.isfinite(se)
    med_se = np.asarray(ndimage.median(np.abs(se), labels=np.where(fin, labels, 0), index=idx), dtype=np.float64)
    size = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    with np.errstate(invalid="ignore"):
        flag = np.isfinite(med_se) & (med < limit - k * np.sqrt(np.pi / 2.0) * med_se / np.sqrt(size))
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = flag
    return keep[labels]
