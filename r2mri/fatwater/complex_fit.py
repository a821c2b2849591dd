"""Complex fat-water fit with a field-map term: driver over ``_complex_kernels`` (private).

Called by :func:`r2mri.fatwater.fit.fit_fatwater_maps` when phase images are given;
see docs/fatwater.md ("Complex fit"). Two passes:

1. every voxel: R2* start from the magnitude, a variable-projection grid over one
   period of the off-resonance psi (``1 / dTE``, dTE the smallest echo spacing), then
   Levenberg-Marquardt on (W, F, R2*, phi0, psi);
2. spatial step (inputs with an image plane, i.e. at least two spatial axes): the
   field map is smooth, a water/fat swap shows as a jump of psi by about the main fat
   frequency. The pass-1 field map is median-filtered in-plane (``SMOOTH_SIZE`` voxels,
   per slice) and every voxel whose psi lies more than half the main fat frequency
   (``|f_fat| / 2``) from the filtered map is refitted with its grid restricted to
   filtered psi +- ``|f_fat| / 2``. This holds while most voxels of a neighbourhood
   are right in pass 1 (a median).
"""

from __future__ import annotations

import math

import numpy as np

from ..fitting._fit import voxel_chunks
from . import _complex_kernels as CK
from ._kernels import RULE_MIN_RESIDUAL

#: In-plane size (voxels) of the median filter of the spatial step. [D] A design choice:
#: 5 x 5 tolerates up to 12 swapped voxels of 25 in a neighbourhood.
SMOOTH_SIZE = 5
#: Grid points per width of a psi minimum (1 / echo-train span). [D] A design choice:
#: 8 points keep the start inside the basin of the nearest minimum.
GRID_PER_WIDTH = 8


#: Rule recorded in ``FitResult.options["complex_floor"]`` (docs/fatwater.md "Phase with a
#: multi-channel magnitude").
RSS_FLOOR_RULE = ("magnitude with n > 1 channels (root-sum-of-squares) and sigma known: "
                  "A = sqrt(max(M^2 - 2 (n - 1) sigma^2, 0)) before the complex fit, so that "
                  "E[A^2] = |S|^2 + 2 sigma^2, the second moment of one complex channel")


def remove_rss_floor(flat_mag: np.ndarray, sigma: float, coils: int) -> np.ndarray:
    """Magnitude of a root-sum-of-squares image of ``coils`` channels, brought to the
    second moment of one complex channel (the phase images come from a coil combination):
    ``sqrt(max(M^2 - 2 (n - 1) sigma^2, 0))``.

    The complex fit models Gaussian complex noise (no floor). An RSS magnitude of n
    channels has ``E[M^2] = |S|^2 + 2 n sigma^2`` (non-central chi, r2mri.noise;
    Constantinides et al., MRM 1997;38:852, doi 10.1002/mrm.1910380524; domain.md section
    3), a complex combined channel ``|S|^2 + 2 sigma^2``: the n - 1 extra channels' noise
    power is the floor that biased the complex fit's R2* low (-42 % at 3 T, R2* 539 s^-1,
    SNR 20, 8 channels; benchmarks/fatwater_floor.py). [D] The subtraction is derived here (not
    a published method): it assumes uncorrelated channels of equal sigma and a combination
    normalised to the RSS gain, as the ``ncchi`` model does; it matches the second moment
    only (the residual bias measured: R2* -0.1..+1.9 %). Without sigma, or with one
    channel, the magnitude is returned unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> remove_rss_floor(np.array([[10.0, 5.0, 1.0]]), 1.0, 8).round(3)
    array([[9.274, 3.317, 0.   ]])
    """
    if not sigma > 0.0 or coils <= 1:
        return flat_mag
    sq = flat_mag.astype(np.float64) ** 2 - 2.0 * (coils - 1) * sigma * sigma
    return np.sqrt(np.maximum(sq, 0.0))


def floor_threshold(sigma: float, coils: int, floor_sigmas: float) -> float:
    """Noise threshold of the complex fit's BELOW_NOISE test, on the magnitude it fits.

    The test is the magnitude fit's (:func:`r2mri.fatwater._kernels._signal_echoes` over
    ``floor_sigmas * sigma``, ``floor_sigmas = noise_floor_threshold(k_sigma, coils)``: a
    pure-noise echo passes with probability ``exp(-k_sigma^2 / 2)`` at every channel count)
    on the magnitude as read, M, whose sigma and coils are those of the loader's noise
    estimate (the air of that magnitude). With ``coils > 1`` the fit sees ``A = sqrt(max(M^2
    - 2 (n - 1) sigma^2, 0))`` (:func:`remove_rss_floor`), monotonic in M, so ``M > x sigma``
    is ``A > sqrt(x^2 - 2 (n - 1)) sigma``: the same echoes pass, exactly while ``x^2 >= 2 (n
    - 1)`` (k_sigma >= 0.78 / 0.93 / 1.01 at 2 / 4 / 8 channels; below that the threshold is
    0, a few more echoes count). Sigma unknown: -1 (no test).

    Examples
    --------
    >>> from r2mri.noise import noise_floor_threshold
    >>> floor_threshold(1.0, 1, noise_floor_threshold(2.0, 1))
    2.0
    >>> round(floor_threshold(1.0, 8, noise_floor_threshold(2.0, 8)), 4)  # sqrt(4.7169^2 - 14)
    2.8721
    """
    if not sigma > 0.0:
        return -1.0
    if coils <= 1:
        return float(floor_sigmas * sigma)
    return float(math.sqrt(max(floor_sigmas * floor_sigmas - 2.0 * (coils - 1), 0.0)) * sigma)


def psi_period_hz(te: np.ndarray) -> float:
    """Period of the off-resonance ambiguity, ``1 / dTE`` with dTE the smallest spacing."""
    return 1.0 / float(np.min(np.diff(te)))


def fit_complex(flat_mag, flat_phase, spatial, te64, basis, mask_flat, *, lo, hi, max_iter, xtol,
                ftol, chunk, rule, main_fat_hz, progress, total, fat_floor, convention_mag=None,
                robust_se=False, floor_thr=-1.0):
    """Both passes; returns ``(out (NOUT, n) float64, status (n,) uint8, info dict)``.
    ``floor_thr``: noise threshold on ``flat_mag`` of the BELOW_NOISE test (negative: none;
    :func:`floor_threshold`).
    ``convention_mag``: the magnitude the phase-convention test uses (default
    ``flat_mag``; the driver passes the magnitude as read, see :func:`remove_rss_floor`).
    ``robust_se``: the R2* SE is the sandwich (heteroscedasticity-consistent) one, for a
    floor-corrected magnitude whose noise is not the same at every echo."""
    nvox, m = flat_mag.shape
    cr = np.ascontiguousarray(basis.real)
    ci = np.ascontiguousarray(basis.imag)
    period = psi_period_hz(te64)
    span = float(te64[-1] - te64[0])
    out = np.full((CK.NOUT, nvox), np.nan)
    status = np.full(nvox, 255, dtype=np.uint8)

    def run(sel_flat, centres, halfwidth, report):
        n_grid = max(16, int(math.ceil(2.0 * halfwidth * span * GRID_PER_WIDTH)))
        done = 0
        for start, idx, y in voxel_chunks(np.arange(nvox, dtype=np.float64)[:, None], sel_flat,
                                          chunk):
            rows = idx if idx.size else np.arange(start, start + y.shape[0])
            z = flat_mag[rows] * np.exp(1j * flat_phase[rows])
            CK.fit_chunk(np.ascontiguousarray(z.real, dtype=np.float64),
                         np.ascontiguousarray(z.imag, dtype=np.float64), te64, cr, ci, lo, hi,
                         float(fat_floor), np.ascontiguousarray(centres[rows], dtype=np.float64),
                         float(halfwidth), np.int64(n_grid), np.int64(max_iter), float(xtol),
                         float(ftol), np.int64(rule), bool(robust_se), float(floor_thr),
                         rows.astype(np.int64), np.int64(0),
                         out, status)
            done += rows.size
            if report and progress is not None:
                progress(done, total)
        return n_grid

    conj, conv_info = _phase_convention(flat_mag if convention_mag is None else convention_mag, flat_phase, mask_flat, te64, basis, lo, hi,
                                        fat_floor, max_iter, xtol, ftol, 0.5 * period, span)
    if conj:  # fit the conjugate data; psi and phi0 are flipped back at the end
        flat_phase = -flat_phase
    n_grid = run(mask_flat, np.zeros(nvox), 0.5 * period, True)
    info = {"psi_period_hz": period, "psi_grid_points": n_grid, "spatial_step": False,
            "n_refit_spatial": 0, **conv_info}
    if len(spatial) >= 2:
        psi = out[CK.O_PSI].reshape(spatial)
        # BELOW_NOISE voxels were fitted too (the status is a label on their fit; they
        # entered the filter and the refit as OK before they had it)
        fitted = np.isin(status, (CK.S_OK, CK.S_NOT_CONVERGED, CK.S_BELOW_NOISE)).reshape(spatial)
        smooth = _median_field(psi, fitted)
        dev = (out[CK.O_PSI] - smooth.reshape(-1) + 0.5 * period) % period - 0.5 * period
        half = 0.5 * abs(main_fat_hz)
        redo = fitted.reshape(-1) & (np.abs(dev) > half)
        info["spatial_step"] = True
        info["n_refit_spatial"] = int(redo.sum())
        if redo.any():
            run(redo, smooth.reshape(-1), half, False)
    if conj:
        out[CK.O_PSI] = -out[CK.O_PSI]
        out[CK.O_PHI] = -out[CK.O_PHI]
    return out, status, info


#: Voxels (the brightest, at most) used to decide the phase convention. [D] design choice.
CONVENTION_VOXELS = 2000
#: The conjugate convention is taken when its summed residual is below this fraction of
#: the other's. [D] A design choice: with fat in the sample the wrong convention leaves
#: the fat beat unexplained (residuals several times the noise); without fat both fit
#: equally and the given convention is kept.
CONVENTION_RATIO = 0.8


def _phase_convention(flat_mag, flat_phase, mask_flat, te64, basis, lo, hi, fat_floor, max_iter,
                      xtol, ftol, halfwidth, span):
    """Whether the phase images follow the conjugate sign convention (fat at positive
    frequency in exp(+i 2 pi f t)): both conventions are fitted on the brightest
    voxels and the one with the clearly lower summed residual wins."""
    cand = np.flatnonzero(mask_flat) if mask_flat is not None else np.arange(flat_mag.shape[0])
    cand = cand[np.all(np.isfinite(flat_mag[cand]) & np.isfinite(flat_phase[cand]), axis=1)]
    if cand.size == 0:
        return False, {"phase_convention": "as given (no voxel to test)"}
    bright = cand[np.argsort(flat_mag[cand, 0])[::-1][:CONVENTION_VOXELS]]
    n_grid = max(16, int(math.ceil(2.0 * halfwidth * span * GRID_PER_WIDTH)))
    costs = []
    for sign in (1.0, -1.0):
        z = flat_mag[bright] * np.exp(1j * sign * flat_phase[bright])
        out = np.full((CK.NOUT, bright.size), np.nan)
        status = np.empty(bright.size, dtype=np.uint8)
        CK.fit_chunk(np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag), te64,
                     np.ascontiguousarray(basis.real), np.ascontiguousarray(basis.imag), lo, hi,
                     float(fat_floor), np.zeros(bright.size), float(halfwidth), np.int64(n_grid),
                     np.int64(max_iter), float(xtol), float(ftol), np.int64(RULE_MIN_RESIDUAL), False, -1.0,
                     np.empty(0, dtype=np.int64), np.int64(0), out, status)
        costs.append(float(np.nansum(out[CK.O_COST])))
    ratio = costs[1] / costs[0] if costs[0] > 0 else 1.0
    conj = ratio < CONVENTION_RATIO
    return conj, {"phase_convention": "conjugate (phase negated before fitting)" if conj else "as given",
                  "phase_convention_residual_ratio": ratio, "phase_convention_voxels": int(bright.size)}


def _median_field(psi: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """In-plane median filter of the field map (axes 0 and 1), per slice; voxels not
    fitted take the median of the fitted ones before filtering."""
    from scipy.ndimage import median_filter

    filled = np.where(fitted, psi, np.nanmedian(psi[fitted]) if fitted.any() else 0.0)
    size = (SMOOTH_SIZE, SMOOTH_SIZE) + (1,) * (psi.ndim - 2)
    return median_filter(filled, size=size, mode="nearest")
