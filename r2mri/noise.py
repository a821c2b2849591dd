"""Noise statistics of magnitude MR images: the one place r2mri keeps noise physics.

A magnitude image combined by root-sum-of-squares over ``n`` receiver channels, each
with complex Gaussian noise of standard deviation ``sigma`` per real/imaginary part,
follows a non-central chi distribution with ``2n`` degrees of freedom (``n = 1`` is the
Rician case) [1]_, [2]_. With true amplitude ``A`` and ``x = A**2 / (2 sigma**2)``::

    E[M]   = sigma * sqrt(2) * Gamma(n + 1/2) / Gamma(n) * 1F1(-1/2; n; -x)
           = sigma * sqrt(pi/2) * (2n-1)!! / (2**(n-1) (n-1)!) * 1F1(-1/2; n; -x)
    E[M^2] = A**2 + 2 n sigma**2

(domain.md section 3, [D] checked by simulation; the two prefactors are equal because
``Gamma(n + 1/2) = (2n-1)!! sqrt(pi) / 2**n``). This module provides

- :func:`ncchi_mean` -- ``E[M]`` in numpy (the reference for users and tests);
- ``_ncchi_mean_deriv`` -- the numba twin used inside the fitting kernels, returning
  ``E[M]`` and ``dE[M]/dA`` (``d/dz 1F1(a; b; z) = a/b 1F1(a+1; b+1; z)``,
  Abramowitz & Stegun 13.4.8);
- :func:`estimate_noise` -- ``sigma`` and the effective channel count from the
  background air, with a fallback for zero-filled backgrounds.

Evaluation of ``1F1(-1/2; n; -x)`` (all references to Abramowitz & Stegun, *Handbook of
Mathematical Functions*, 1964):

- ``n = 1`` and ``x < X_BESSEL_MAX``: closed form with modified Bessel functions,
  ``1F1(-1/2; 1; -x) = exp(-x/2) [(1 + x) I0(x/2) + x I1(x/2)]`` and, for the
  derivative, ``1F1(1/2; 2; -x) = exp(-x/2) [I0(x/2) + I1(x/2)]``; the exponentially
  scaled ``I0``, ``I1`` come from the polynomial approximations A&S 9.8.1-9.8.4
  (absolute errors 1.6e-7, 8e-9 (on I1/x), 1.9e-7, 2.2e-7 as stated there). Relative
  accuracy of ``E[M]`` is therefore about 5e-7 in this range (tested against
  ``scipy.special.hyp1f1``).
- ``n > 1`` and ``x < X_ASYMPTOTIC_N + n``: Kummer's transformation (A&S 13.1.27)
  ``1F1(a; b; -x) = exp(-x) 1F1(b - a; b; x)`` turns the alternating series into one
  with positive terms (A&S 13.1.2), summed to double precision.
- larger ``x`` (``n = 1``: ``x >= X_BESSEL_MAX``): the asymptotic expansion A&S 13.5.1 (the ``exp(-x)`` term is
  below double precision there), ``E[M] = A sum_s (-1/2)_s (1/2 - n)_s / (s! x^s)`` and
  ``dE[M]/dA = sum_s (1/2)_s (1/2 - n)_s / (s! x^s)``, summed until the terms fall
  below 1e-16 of the sum.

References
----------
.. [1] H. Gudbjartsson, S. Patz, "The Rician distribution of noisy MRI data",
   Magn Reson Med 34:910-914 (1995), doi:10.1002/mrm.1910340618.
.. [2] W. Feng, S. Nielsen, et al., "Effect of noise on R2 estimation in liver iron
   quantification", Magn Reson Med 70:1765-1774 (2013) (non-central chi noise of
   multi-channel root-sum-of-squares magnitude images).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._numba_setup import njit
from .errors import InputError
from .image import MultiEchoImage

__all__ = ["ncchi_mean", "estimate_noise", "NoiseEstimate"]

#: Switch point for n > 1: x >= 22 + n. [D] Numerically, the smallest term of A&S 13.5.1
#: is then below 1e-15 for every n in 2..32 and is reached within 120 terms (checked
#: against scipy.special.hyp1f1 in tests/test_noise.py); the convergent series below it
#: needs ~x + 10 sqrt(x) terms, so a low switch point keeps n > 1 fast.
X_ASYMPTOTIC_N = 22.0
#: For n = 1 the Bessel form is used below this x (cheaper than the asymptotic sum
#: between 50 and 150, where that sum needs 10-25 terms).
X_BESSEL_MAX = 150.0

_SQRT2 = math.sqrt(2.0)
#: LLVM fast-math flags for the kernels: fused multiply-add and reassociation only
#: (no "nnan"/"ninf": the kernels test for NaN and inf).
_FM = {"contract", "reassoc", "nsz", "arcp"}
# 1 / (s + 1) for the series and asymptotic sums (multiplication instead of division)
_RECIP = 1.0 / np.arange(1.0, 513.0)


def _asymptotic_coefficients(n: int, terms: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Coefficients of A&S 13.5.1 for E[M]/A and dE[M]/dA: (-1/2)_s (1/2-n)_s / s! and
    (1/2)_s (1/2-n)_s / s! (exact products, no fitted constants)."""
    cm, cd = [1.0], [1.0]
    for s in range(terms - 1):
        cm.append(cm[-1] * (s - 0.5) * (s + 0.5 - n) / (s + 1))
        cd.append(cd[-1] * (s + 0.5) * (s + 0.5 - n) / (s + 1))
    return tuple(cm), tuple(cd)


_ASYM1_M, _ASYM1_D = _asymptotic_coefficients(1, 9)


# --- exponentially scaled modified Bessel functions, Abramowitz & Stegun 9.8.1-9.8.4 ---
@njit(error_model="numpy", fastmath=_FM)
def _i0e_i1e(v):
    """``exp(-v) I0(v)`` and ``exp(-v) I1(v)`` for ``v >= 0`` (A&S 9.8.1-9.8.4)."""
    if v <= 3.75:
        t = v / 3.75
        t2 = t * t
        # A&S 9.8.1, |error| < 1.6e-7
        i0 = 1.0 + t2 * (3.5156229 + t2 * (3.0899424 + t2 * (1.2067492 + t2 * (
            0.2659732 + t2 * (0.0360768 + t2 * 0.0045813)))))
        # A&S 9.8.2 (for I1(v)/v), |error| < 8e-9
        i1 = v * (0.5 + t2 * (0.87890594 + t2 * (0.51498869 + t2 * (0.15084934 + t2 * (
            0.02658733 + t2 * (0.00301532 + t2 * 0.00032411))))))
        ev = math.exp(-v)
        return i0 * ev, i1 * ev
    u = 3.75 / v
    s = 1.0 / math.sqrt(v)
    # A&S 9.8.3, |error| < 1.9e-7
    i0 = 0.39894228 + u * (0.01328592 + u * (0.00225319 + u * (-0.00157565 + u * (
        0.00916281 + u * (-0.02057706 + u * (0.02635537 + u * (-0.01647633 + u * 0.00392377)))))))
    # A&S 9.8.4, |error| < 2.2e-7
    i1 = 0.39894228 + u * (-0.03988024 + u * (-0.00362018 + u * (0.00163801 + u * (
        -0.01031555 + u * (0.02282967 + u * (-0.02895312 + u * (0.01787654 + u * -0.00420059)))))))
    return i0 * s, i1 * s


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_mean_deriv(a, sigma, n, lgamma_ratio):
    """``E[M]`` and ``dE[M]/dA`` of a non-central chi magnitude (numba twin of ``ncchi_mean``).

    Parameters: amplitude ``a >= 0``, channel ``sigma > 0``, channel count ``n >= 1``,
    ``lgamma_ratio = lgamma(n + 1/2) - lgamma(n)`` (precomputed by the caller).
    """
    if a < 0.0:
        a = -a
    x = a * a / (2.0 * sigma * sigma)
    if n == 1 and x >= X_BESSEL_MAX:
        # A&S 13.5.1 with n = 1, fixed 9 terms in Horner form (coefficients _ASYM1_*
        # computed exactly from the Pochhammer symbols below); the first omitted term is
        # < 1e-16 relative at x >= 150.
        u = 1.0 / x
        sm = _ASYM1_M[8]
        sd = _ASYM1_D[8]
        for s in range(7, -1, -1):
            sm = sm * u + _ASYM1_M[s]
            sd = sd * u + _ASYM1_D[s]
        return a * sm, sd
    if n == 1:
        # 1F1(-1/2;1;-x) = e^{-x/2}[(1+x) I0(x/2) + x I1(x/2)];
        # 1F1(1/2;2;-x) = e^{-x/2}[I0(x/2) + I1(x/2)]
        i0, i1 = _i0e_i1e(0.5 * x)
        mean = sigma * 1.2533141373155003 * ((1.0 + x) * i0 + x * i1)  # sqrt(pi/2)
        # dE/dA = sigma c_1 (1/2) 1F1(1/2;2;-x) A / sigma^2 with c_1 = sqrt(pi/2)
        deriv = 1.2533141373155003 * 0.5 * (i0 + i1) * a / sigma
        return mean, deriv
    if x >= X_ASYMPTOTIC_N + n:
        # A&S 13.5.1 for 1F1(-1/2; n; -x) and 1F1(1/2; n+1; -x), prefactors simplified
        inv_x = 1.0 / x
        b = 0.5 - n
        term_m = 1.0
        term_d = 1.0
        sum_m = 1.0
        sum_d = 1.0
        for s in range(_RECIP.size):
            c = (b + s) * inv_x * _RECIP[s]
            new_m = term_m * (s - 0.5) * c
            new_d = term_d * (s + 0.5) * c
            if s > n and abs(new_d) > abs(term_d):
                break  # past the smallest term: the expansion starts to diverge
            term_m = new_m
            term_d = new_d
            sum_m += term_m
            sum_d += term_d
            if abs(term_m) < 1e-16 * sum_m and abs(term_d) < 1e-16 * sum_d:
                break
        return a * sum_m, sum_d
    # Kummer (A&S 13.1.27) + positive series (A&S 13.1.2):
    # 1F1(-1/2; n; -x) = e^{-x} sum_k (n+1/2)_k / ((n)_k k!) x^k
    # 1F1(1/2; n+1; -x) = e^{-x} sum_k (n+1/2)_k / ((n+1)_k k!) x^k
    term_m = 1.0
    term_d = 1.0
    sum_m = 1.0
    sum_d = 1.0
    k = 0
    while True:
        c = (n + 0.5 + k) * x
        if n + k + 1 < _RECIP.size:  # reciprocal table: multiplications, no divisions
            c *= _RECIP[k]
            term_m *= c * _RECIP[n + k - 1]
            term_d *= c * _RECIP[n + k]
        else:
            c /= k + 1.0
            term_m *= c / (n + k)
            term_d *= c / (n + 1.0 + k)
        sum_m += term_m
        sum_d += term_d
        k += 1
        if (term_m < 1e-17 * sum_m and k > x) or k > 2000:
            break
    ex = math.exp(-x)
    cn = _SQRT2 * math.exp(lgamma_ratio)  # sqrt(2) Gamma(n+1/2) / Gamma(n)
    mean = sigma * cn * ex * sum_m
    deriv = cn / (2.0 * n) * ex * sum_d * a / sigma
    return mean, deriv


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_mean_array(a, sigma, n, out):
    lg = math.lgamma(n + 0.5) - math.lgamma(n)
    for i in range(a.size):
        out[i] = _ncchi_mean_deriv(a[i], sigma, n, lg)[0]


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_deriv_array(a, sigma, n, out):
    lg = math.lgamma(n + 0.5) - math.lgamma(n)
    for i in range(a.size):
        out[i] = _ncchi_mean_deriv(a[i], sigma, n, lg)[1]


def _check_sigma_coils(sigma: float, coils: int) -> tuple[float, int]:
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma > 0):
        raise InputError(f"sigma: must be a positive finite number, got {sigma!r}")
    if int(coils) != coils or coils < 1:
        raise InputError(f"coils: must be an integer >= 1, got {coils!r}")
    return sigma, int(coils)


def ncchi_mean(amplitude, sigma: float, coils: int = 1, *, derivative: bool = False) -> np.ndarray:
    """Expected magnitude ``E[M]`` of a non-central chi (Rician for one coil) signal.

    Parameters
    ----------
    amplitude : array_like
        True (noise-free) signal amplitude ``A`` (any shape; the sign is ignored).
    sigma : float
        Noise standard deviation per real/imaginary part of one channel.
    coils : int
        Number of channels ``n`` combined by root-sum-of-squares (1 = Rician).
    derivative : bool, keyword-only
        Return ``dE[M]/dA`` instead of ``E[M]``.

    Returns
    -------
    ndarray of float64, shape of ``amplitude``
        ``sigma sqrt(2) Gamma(n+1/2)/Gamma(n) 1F1(-1/2; n; -A^2/(2 sigma^2))``. Relative
        accuracy about 5e-7 for ``n = 1`` at ``A < 10 sigma`` (A&S 9.8 polynomials),
        about 1e-13 elsewhere.

    Examples
    --------
    >>> from r2mri.noise import ncchi_mean
    >>> round(float(ncchi_mean(0.0, 1.0, 1)), 6)  # Rayleigh mean sigma*sqrt(pi/2)
    1.253314
    >>> round(float(ncchi_mean(100.0, 1.0, 1)), 4)  # ~ A + sigma^2 / (2 A)
    100.005
    """
    sigma, coils = _check_sigma_coils(sigma, coils)
    a = np.asarray(amplitude, dtype=np.float64)
    flat = np.ascontiguousarray(a.reshape(-1))
    out = np.empty_like(flat)
    if derivative:
        _ncchi_deriv_array(flat, sigma, np.int64(coils), out)
    else:
        _ncchi_mean_array(flat, sigma, np.int64(coils), out)
    return out.reshape(a.shape)


def _chi_moment_ratio(n: float) -> float:
    """``E[M]^2 / E[M^2]`` of pure noise with ``n`` channels: Gamma(n+1/2)^2 / (n Gamma(n)^2)."""
    return math.exp(2.0 * (math.lgamma(n + 0.5) - math.lgamma(n))) / n


def _coils_from_ratio(ratio: float) -> float:
    """Invert :func:`_chi_moment_ratio` (monotone increasing from pi/4 at n=1 towards 1)."""
    lo, hi = 1.0, 256.0
    if ratio <= _chi_moment_ratio(lo):
        return 1.0
    if ratio >= _chi_moment_ratio(hi):
        return hi
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if _chi_moment_ratio(mid) < ratio:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


@dataclass
class NoiseEstimate:
    """Result of :func:`estimate_noise`.

    Attributes
    ----------
    sigma : float
        Noise standard deviation per real/imaginary part of one channel (signal units).
    coils : int
        Effective channel count ``n`` (rounded, >= 1) used by the ``ncchi`` model.
    coils_estimate : float or None
        Unrounded moment estimate of ``n`` (``None`` for the residual method).
    method : str
        ``"background"`` (pure-noise voxels) or ``"residual"`` (fallback: residuals of
        mono-exponential fits in bright tissue, background zeroed by the scanner).
    n_voxels : int
        Voxels the estimate is based on.
    notes : list of str
        Caveats a report should show.
    """

    sigma: float
    coils: int
    coils_estimate: float | None
    method: str
    n_voxels: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary."""
        return asdict(self)


def _as_data_te(img_or_array, echo_times_s):
    if isinstance(img_or_array, MultiEchoImage):
        return img_or_array.data, img_or_array.echo_times_s
    data = np.asarray(img_or_array)
    if data.ndim < 2:
        raise InputError(f"img_or_array: need at least 2 dimensions (..., echo), got shape {data.shape}")
    te = None if echo_times_s is None else np.asarray(echo_times_s, dtype=np.float64).reshape(-1)
    return data, te


def _chi_upper(n: float, p: float = 1e-3) -> float:
    """``c`` with P(M > c sigma) = p for pure noise with ``n`` channels (chi, 2n dof)."""
    from scipy.stats import chi2

    return math.sqrt(chi2.isf(p, 2.0 * n))


def _background_estimate(flat: np.ndarray, min_voxels: int):
    """Moment estimate from voxels whose every echo is consistent with pure noise.

    [D] Iteration: seed with the 10 % (at least ``min_voxels``) of voxels with the lowest
    maximum over echoes;
    from their values take sigma and n by the moments of pure noise (E[M^2] = 2 n
    sigma^2, E[M]^2 / E[M^2] = Gamma(n+1/2)^2 / (n Gamma(n)^2)); then keep the voxels
    whose every echo lies below the 99.9th percentile of that noise distribution, and
    repeat until sigma changes by less than 1e-4. The percentile cut removes < 0.1 % of
    each echo's noise values, so the truncation bias of sigma is < 0.1 %.
    """
    vmax = flat.max(axis=1)
    positive = vmax > 0
    if positive.sum() < min_voxels:
        return None
    vmax_p = vmax[positive]
    thr = np.quantile(vmax_p, min(1.0, max(0.10, min_voxels / vmax_p.size)))
    sigma = n = None
    sel = None
    for _ in range(30):
        sel = positive & (vmax <= thr)
        if sel.sum() < min_voxels:
            return None
        vals = flat[sel].astype(np.float64).ravel()
        m1 = vals.mean()
        m2 = np.mean(vals * vals)
        n_new = _coils_from_ratio(m1 * m1 / m2)
        sigma_new = math.sqrt(m2 / (2.0 * n_new))
        done = sigma is not None and abs(sigma_new - sigma) <= 1e-4 * sigma
        sigma, n = sigma_new, n_new
        if done:
            break
        thr = _chi_upper(n) * sigma
    return sigma, n, int(sel.sum())


def _residual_estimate(flat: np.ndarray, te: np.ndarray, min_voxels: int):
    """Fallback: pooled residual variance of log-linear mono-exponential fits in bright voxels.

    [D] In voxels whose *last* echo is in the top 20 % of non-zero voxels, every echo
    has high SNR, so magnitude noise is Gaussian with the channel sigma (Gudbjartsson &
    Patz 1995) and ``sum(residual^2) / (m - 2)`` is an unbiased estimate of sigma^2 for
    a mono-exponential signal. Model misfit (bi-exponential tissue, partial volume)
    inflates it, so this is an upper estimate; the channel count is not identifiable
    from Gaussian residuals and is reported as 1.
    """
    m = flat.shape[1]
    if te is None or m < 3:
        return None
    ok = np.all(flat > 0, axis=1)
    if ok.sum() < min_voxels:
        return None
    last = flat[:, -1]
    thr = np.quantile(last[ok], 0.80)
    sel = ok & (last >= thr)
    if sel.sum() < min_voxels:
        return None
    y = flat[sel].astype(np.float64)
    # weighted log-linear fit (weights y^2) per voxel, then residuals in signal space
    w = y * y
    ly = np.log(y)
    sw = w.sum(1)
    st = (w * te).sum(1)
    stt = (w * te * te).sum(1)
    sl = (w * ly).sum(1)
    stl = (w * te * ly).sum(1)
    det = sw * stt - st * st
    slope = (sw * stl - st * sl) / det
    icpt = (stt * sl - st * stl) / det
    fitted = np.exp(icpt[:, None] + slope[:, None] * te[None, :])
    s2 = ((y - fitted) ** 2).sum(1) / (m - 2)
    return math.sqrt(float(np.mean(s2))), int(sel.sum())


def estimate_noise(img_or_array, mask=None, *, echo_times_s=None, min_voxels: int = 200) -> NoiseEstimate:
    """Estimate the channel noise ``sigma`` and effective coil count from an image.

    Parameters
    ----------
    img_or_array : MultiEchoImage or ndarray, shape (..., echo)
        Magnitude data.
    mask : ndarray of bool, optional
        Background (air) voxels to use, spatial shape. Default: found automatically.
    echo_times_s : array_like, optional
        Echo times (only needed by the residual fallback for a plain array).
    min_voxels : int, keyword-only
        Fewest voxels an estimate may rest on.

    Returns
    -------
    NoiseEstimate

    Raises
    ------
    InputError
        When neither background voxels nor bright tissue voxels suffice.

    Notes
    -----
    Method ``"background"`` [D]: pure-noise voxels have the moments of a (central) chi
    distribution, ``E[M^2] = 2 n sigma^2`` and ``E[M] = sigma sqrt(2) Gamma(n+1/2) /
    Gamma(n)`` (domain.md section 3 with A = 0); their ratio gives ``n``, then
    ``sigma``. Voxels are selected iteratively (see ``_background_estimate``).
    Scanners often set the background to exactly zero; zeros are never used. If fewer
    than ``min_voxels`` non-zero background voxels exist (or if ``mask`` is absent and
    the automatic background holds mostly exact zeros), method ``"residual"`` is used:
    the pooled residual variance of mono-exponential fits in the brightest tissue
    voxels (Gaussian regime), an upper estimate when tissue is not mono-exponential.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri.noise import estimate_noise
    >>> rng = np.random.default_rng(0)
    >>> noise = np.hypot(rng.normal(0, 5, (40, 40, 1, 4)), rng.normal(0, 5, (40, 40, 1, 4)))
    >>> est = estimate_noise(noise)
    >>> est.method, est.coils, abs(est.sigma - 5) < 0.2
    ('background', 1, True)
    """
    data, te = _as_data_te(img_or_array, echo_times_s)
    if isinstance(img_or_array, MultiEchoImage) and echo_times_s is not None:
        te = np.asarray(echo_times_s, dtype=np.float64).reshape(-1)
    if te is not None and te.size != data.shape[-1]:
        raise InputError(f"echo_times_s: {te.size} echo times for {data.shape[-1]} echoes")
    flat = data.reshape(-1, data.shape[-1])
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape[:-1]:
            raise InputError(f"mask: shape {mask.shape} does not match the spatial shape {data.shape[:-1]}")
        vals = flat[mask.reshape(-1)].astype(np.float64)
        vals = vals[np.all(vals > 0, axis=1)].ravel()
        if vals.size < min_voxels:
            raise InputError(f"mask: only {vals.size} non-zero background values (need {min_voxels})")
        m1, m2 = vals.mean(), np.mean(vals * vals)
        n = _coils_from_ratio(m1 * m1 / m2)
        return NoiseEstimate(math.sqrt(m2 / (2 * n)), max(1, int(round(n))), n, "background",
                             int(mask.sum()))
    finite = np.all(np.isfinite(flat), axis=1) & np.all(flat >= 0, axis=1)
    if not finite.all():
        flat = flat[finite]
    notes: list[str] = []
    zero_frac = float(np.mean(np.all(flat == 0, axis=1))) if flat.size else 1.0
    bg = _background_estimate(flat, min_voxels) if zero_frac < 0.05 else None
    if bg is not None:
        sigma, n, nvox = bg
        return NoiseEstimate(sigma, max(1, int(round(n))), n, "background", nvox, notes)
    notes.append(f"background unusable ({zero_frac:.0%} of voxels exactly zero); "
                 "sigma from tissue residuals (upper estimate, coils assumed 1)")
    res = _residual_estimate(flat, te, min_voxels)
    if res is None:
        raise InputError("img_or_array: cannot estimate noise (no usable background and too few "
                         "bright voxels or echoes for the residual method); pass noise_sigma")
    sigma, nvox = res
    warnings.warn(notes[-1], RuntimeWarning, stacklevel=2)
    return NoiseEstimate(sigma, 1, None, "residual", nvox, notes)
