"""Noise ``sigma`` and channel count from tissue alone (arrays without air).

Used by :func:`r2mri.estimate_noise` when the image has no background that behaves like
pure noise (an interior block cropped out of a liver, a masked voxel list, a simulation).
Two cases (docs/fitting.md, "Arrays without air"):

- **noise-free** data: the weighted log-linear mono-exponential fits leave residuals at
  the rounding level (pooled relative RMS below :data:`NOISE_FREE_REL`); sigma is 0 and
  ``auto`` fits the plain mono-exponential model, exact for such data.
- **tissue**: ``sigma`` and ``n`` from the residuals of noise-corrected (``ncchi``) fits of
  the voxels themselves, with the noise floor in the model. For a candidate ``(sigma,
  n)`` every voxel is fitted (``S0``, ``R2``), giving the expected magnitude
  ``E_k = E[M](A_k; sigma, n)`` and its variance ``V_k = A_k^2 + 2 n sigma^2 - E_k^2``
  (domain.md section 3) at each echo; the estimate minimises the Gaussian
  pseudo-likelihood ``sum_k [c r_k^2 / V_k + ln V_k]`` (``r_k = M_k - E_k``), whose
  expectation is smallest at the true mean and variance whatever the law of ``M``
  (Gourieroux, Monfort & Trognon, Econometrica 52:681-700, 1984, quasi-generalised
  pseudo maximum likelihood). ``c = m / (m - 2)`` restores the two degrees of freedom
  each voxel's fit absorbs, so that in the Gaussian regime the minimiser is the unbiased
  ``sigma^2 = RSS / (N (m - 2))`` [D]. ``n`` matters only where echoes approach the
  floor; it is the integer with the smallest profiled criterion.
- **undetermined** (``estimate_noise`` then raises ``InputError`` asking for
  ``noise_sigma`` and ``coils``): the tissue SNR (median fitted ``S0 / sigma``) is below
  :data:`MIN_TISSUE_SNR`, or the median R2 moves by more than
  :data:`MAX_R2_HALF_WIDTH` over the plausible channel counts and ``sigma +- 3 SE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["tissue_noise", "noise_free_residual", "TissueNoise", "NOISE_FREE_REL"]

#: Pooled relative RMS residual of mono-exponential fits below which data are taken as
#: noise-free [D, design choice]: float32 rounding leaves ~1e-7; noise of SNR > 1e5 (which
#: this would call noise-free) biases a mono-exponential R2 by < 1e-6 relative.
NOISE_FREE_REL = 1e-5
#: Voxels the tissue estimate is computed on (evenly spaced sample) [D, design choice]:
#: relative SE of sigma ~ 1 / sqrt(2 N (m - 2)) = 0.6 % for 4000 voxels of 5 echoes.
MAX_VOXELS = 4000
#: Fewest voxels for the tissue estimate [D, design choice]: relative SE of sigma about
#: 1 / sqrt(2 * 50 * 3) = 6 % with 5 echoes; below this ``estimate_noise`` asks for sigma.
MIN_VOXELS = 50
#: Channel counts whose profiled pseudo-log-likelihood is within this of the best are
#: plausible [D, design choice; the pseudo-likelihood is not calibrated like a true one,
#: hence a wide margin, e^10].
PLAUSIBLE_LOG_LR = 10.0
#: Largest relative half-width of the median R2 over the plausible channel counts and
#: sigma +- 3 standard errors for which the tissue estimate is used [D, design choice:
#: below the 3 % accuracy asked of the interior-block tests]; above it
#: ``estimate_noise`` raises and asks for noise_sigma.
MAX_R2_HALF_WIDTH = 0.02
#: Smallest tissue SNR (median fitted S0 / sigma) for which the tissue estimate is used
#: [D, measured, docs/fitting.md]: on the FerriScan phantom blocks it is within 4 % in
#: median R2 at SNR 50 and 100, but at SNR 10-20 the pseudo-likelihood picks a channel
#: count one too low and median R2 comes out 7-34 % low (with the true sigma and coils:
#: within 3.3 %).
MIN_TISSUE_SNR = 30.0
#: Largest channel count searched from tissue (design choice; the profile walk stops
#: earlier once the criterion rises twice in a row).
MAX_TISSUE_COILS = 32


@dataclass
class TissueNoise:
    """Result of :func:`tissue_noise` (``sigma`` 0 for noise-free data)."""

    sigma: float
    coils: int
    method: str  # "tissue", or "undetermined" (the caller must ask for sigma)
    n_voxels: int
    relative_residual: float
    notes: list[str] = field(default_factory=list)
    sigma_se: float | None = None
    coils_log_lr: float | None = None
    r2_half_width: float | None = None


def _loglinear_residual(y: np.ndarray, te: np.ndarray) -> tuple[float, float]:
    """Pooled RMS residual (signal space) of weighted log-linear mono-exponential fits
    (weights ``y^2``) and the pooled RMS signal."""
    w = y * y
    ly = np.log(y)
    sw, st, stt = w.sum(1), (w * te).sum(1), (w * te * te).sum(1)
    sl, stl = (w * ly).sum(1), (w * te * ly).sum(1)
    det = sw * stt - st * st
    ok = det > 0
    slope = np.where(ok, (sw * stl - st * sl) / np.where(ok, det, 1.0), 0.0)
    icpt = np.where(ok, (stt * sl - st * stl) / np.where(ok, det, 1.0), 0.0)
    fitted = np.exp(icpt[:, None] + slope[:, None] * te[None, :])
    return float(np.sqrt(np.mean((y - fitted) ** 2))), float(np.sqrt(np.mean(y * y)))


def _criterion(y: np.ndarray, te: np.ndarray, sigma: float, n: int) -> tuple[float, float, float]:
    """Gaussian pseudo-likelihood (-2 ln, per value) of ``ncchi`` fits at ``(sigma, n)``,
    the median fitted R2 (s^-1) and the median fitted S0."""
    from ..noise import ncchi_mean_interpolated
    from ..status import FitStatus
    from ._fit import fit

    res = fit(y, te, model="ncchi", noise_sigma=sigma, coils=n, threads=1)
    ok = (res.status != FitStatus.BAD_INPUT) & np.isfinite(res.r2_per_s) & np.isfinite(res.s0)
    amp = res.s0[ok, None].astype(np.float64) * np.exp(-res.r2_per_s[ok, None].astype(np.float64) * te)
    mean, _ = ncchi_mean_interpolated(amp, sigma, n)
    var = np.maximum(amp * amp + 2.0 * n * sigma * sigma - mean * mean, 1e-12 * sigma * sigma)
    m = te.size
    r = y[ok] - mean
    crit = float(np.mean(m / (m - 2.0) * r * r / var + np.log(var)))
    if not ok.any():
        return crit, float("nan"), float("nan")
    return crit, float(np.median(res.r2_per_s[ok])), float(np.median(res.s0[ok]))


def _profile_sigma(y, te, n: int, sigma0: float) -> tuple[float, float, float, float]:
    """``(sigma, criterion, median R2, median S0)`` minimising the criterion over ``ln sigma`` at
    fixed ``n`` (golden section on ``ln sigma``, 2e-3 wide, from ``sigma0 e^-2.5`` to
    ``sigma0 e^0.7``: the start is an upper estimate)."""
    from .._noise_estimate import _maximize_bounded

    seen: dict[float, tuple[float, float, float]] = {}

    def neg(u: float) -> float:
        seen[u] = _criterion(y, te, math.exp(u), n)
        return -seen[u][0]

    lo, hi = math.log(sigma0) - 2.5, math.log(sigma0) + 0.7
    x, _ = _maximize_bounded(neg, lo, hi, 2e-3)
    return (math.exp(x),) + seen[x]


def _usable_sample(flat: np.ndarray) -> np.ndarray:
    """Indices of up to :data:`MAX_VOXELS` evenly spaced voxels with every echo finite and > 0."""
    usable = np.all(np.isfinite(flat) & (flat > 0), axis=1)
    idx = np.flatnonzero(usable)
    if idx.size > MAX_VOXELS:
        idx = idx[np.linspace(0, idx.size - 1, MAX_VOXELS).round().astype(np.int64)]
    return idx


def noise_free_residual(flat: np.ndarray, te) -> tuple[float, int, str] | None:
    """``(relative residual, voxels, note)`` when the data are noise-free, else ``None``.

    Noise-free: the pooled relative RMS residual of weighted log-linear mono-exponential
    fits of (a sample of) the usable voxels (every echo finite and > 0; exact zeros such
    as a zero-filled background are left out) is below :data:`NOISE_FREE_REL`. Needs 3
    echoes and one usable voxel.
    """
    te = np.asarray(te, dtype=np.float64)
    if te.size < 3 or flat.shape[0] == 0:
        return None
    idx = _usable_sample(flat)
    if idx.size == 0:
        return None
    y = np.ascontiguousarray(flat[idx], dtype=np.float64)
    rms_res, rms_sig = _loglinear_residual(y, te)
    rel = rms_res / rms_sig if rms_sig > 0 else float("inf")
    if not rel < NOISE_FREE_REL:
        return None
    return rel, int(idx.size), (f"data noise-free: mono-exponential fits of {idx.size} voxels leave a "
                                f"relative residual of {rel:.1e} (< {NOISE_FREE_REL:g}); sigma 0")


def tissue_noise(flat: np.ndarray, te: np.ndarray) -> TissueNoise | None:
    """Noise estimate from tissue voxels only (see the module notes).

    Parameters
    ----------
    flat : ndarray, shape (voxels, echoes)
        Magnitudes; voxels with a non-finite or non-positive echo are ignored.
    te : ndarray, shape (echoes,)
        Echo times in seconds.

    Returns
    -------
    TissueNoise or None
        ``None`` when there are fewer than 3 echoes or fewer than :data:`MIN_VOXELS`
        usable voxels.
    """
    te = np.asarray(te, dtype=np.float64)
    m = te.size
    if m < 3:
        return None
    idx = _usable_sample(flat)
    if idx.size < MIN_VOXELS:
        return None
    y = np.ascontiguousarray(flat[idx], dtype=np.float64)
    rms_res, rms_sig = _loglinear_residual(y, te)
    # start: the Gaussian-regime residual sigma (an upper estimate at the noise floor)
    sigma0 = max(rms_res * math.sqrt(m / (m - 2.0)), 1e-6 * rms_sig)
    prof: dict[int, tuple[float, float, float, float]] = {}
    rises = 0
    for n in range(1, MAX_TISSUE_COILS + 1):
        prof[n] = _profile_sigma(y, te, n, sigma0)
        best = min(prof, key=lambda c: prof[c][1])
        rises = rises + 1 if n > best else 0
        if rises >= 2:
            break
    best = min(prof, key=lambda c: prof[c][1])
    sigma = prof[best][0]
    # the criterion is -2 ln(pseudo-likelihood) per value: half of N m times a gap is the
    # log-likelihood-ratio analogue of NoiseEstimate.coils_log_lr
    gap = {c: 0.5 * y.size * (prof[c][1] - prof[best][1]) for c in prof}
    others = [g for c, g in gap.items() if c != best]
    margin = min(others) if others else None
    plausible = sorted(c for c, g in gap.items() if g < PLAUSIBLE_LOG_LR)
    se = sigma / math.sqrt(2.0 * idx.size * (m - 2))
    snr = prof[best][3] / sigma
    # median R2 over the plausible channel counts and sigma +- 3 SE at the best one
    r2 = [prof[c][2] for c in plausible]
    r2 += [_criterion(y, te, sigma + d * 3.0 * se, best)[1] for d in (-1.0, 1.0)]
    half = (max(r2) - min(r2)) / (2.0 * prof[best][2]) if prof[best][2] > 0 else float("inf")
    notes = [f"sigma and coils from noise-corrected fits of {idx.size} tissue voxels"]
    why = None
    if not snr >= MIN_TISSUE_SNR:
        why = (f"the tissue SNR (median fitted S0 / sigma) is {snr:.1f}, below {MIN_TISSUE_SNR:g}, "
               "where the tissue estimate is not reliable")
    elif not half <= MAX_R2_HALF_WIDTH:
        why = (f"coils {plausible[0]}..{plausible[-1]} and sigma {sigma:.4g} +- {3 * se:.2g} fit the "
               f"tissue about equally well but move the median R2 over {min(r2):.1f}..{max(r2):.1f} "
               f"s^-1 (+-{half:.1%}): the noise floor is not determined by the tissue")
    if why is not None:
        return TissueNoise(sigma, best, "undetermined", int(idx.size), rms_res / rms_sig, [why],
                           None, margin, half)
    if best == MAX_TISSUE_COILS:
        notes.append(f"channel count at the tissue search limit ({MAX_TISSUE_COILS})")
    return TissueNoise(sigma, best, "tissue", int(idx.size), rms_res / rms_sig, notes, se, margin, half)
