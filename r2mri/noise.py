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
- ``_ncchi_mean_deriv`` -- its numba twin, returning ``E[M]`` and ``dE[M]/dA``
  (``d/dz 1F1(a; b; z) = a/b 1F1(a+1; b+1; z)``, Abramowitz & Stegun 13.4.8), and
  ``_ncchi_eval``, the fast interpolated form the fitting kernels use;
- :func:`estimate_noise` -- ``sigma`` and the effective channel count by maximum
  likelihood on the air around the body, with fallbacks for zero-filled backgrounds and
  arrays without air (defined in ``r2mri._noise_estimate``, re-exported here: this
  module's source is hashed into the fitting kernels' cache key, so it holds only the
  physics they compile).

Evaluation of ``1F1(-1/2; n; -x)`` (all references to Abramowitz & Stegun, *Handbook of
Mathematical Functions*, 1964):

- ``x < X_ASYMPTOTIC_N + n`` (``n = 1``: ``x < X_ASYMPTOTIC_1``): Kummer's
  transformation (A&S 13.1.27)
  ``1F1(a; b; -x) = exp(-x) 1F1(b - a; b; x)`` turns the alternating series into one
  with positive terms (A&S 13.1.2), summed to double precision.
- larger ``x``: the asymptotic expansion A&S 13.5.1 (the ``exp(-x)`` term is
  below double precision there), ``E[M] = A sum_s (-1/2)_s (1/2 - n)_s / (s! x^s)`` and
  ``dE[M]/dA = sum_s (1/2)_s (1/2 - n)_s / (s! x^s)``, summed until the terms fall
  below 1e-16 of the sum (``n = 1``: a fixed 9 terms).

Inside the fitting kernels ``E[M]`` is evaluated for every echo of every iteration of
every voxel, so there it is a cubic Hermite interpolant (:func:`ncchi_table`) of these
exact values on a grid of ``nu = A / sigma`` (``TABLE_STEPS_PER_UNIT`` nodes per unit,
up to ``TABLE_NU_MAX``; above it the expansion); its errors are stated and tested in
tests/test_noise.py, and the Jacobian is the interpolant's own derivative, so the
fitted function is smooth and consistent with its Jacobian.

References
----------
.. [1] H. Gudbjartsson, S. Patz, "The Rician distribution of noisy MRI data",
   Magn Reson Med 34:910-914 (1995), doi:10.1002/mrm.1910340618.
.. [2] W. Feng, S. Nielsen, et al., "Effect of noise on R2 estimation in liver iron
   quantification", Magn Reson Med 70:1765-1774 (2013) (non-central chi noise of
   multi-channel root-sum-of-squares magnitude images).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._numba_setup import njit
from .errors import InputError

__all__ = ["ncchi_mean", "noise_floor_threshold", "estimate_noise", "NoiseEstimate"]

#: Switch point for n > 1: x >= 22 + n. [D] Numerically, the smallest term of A&S 13.5.1
#: is then below 1e-15 for every n in 2..32 and is reached within 120 terms (checked
#: against scipy.special.hyp1f1 in tests/test_noise.py); the convergent series below it
#: needs ~x + 10 sqrt(x) terms, so a low switch point keeps n > 1 fast.
X_ASYMPTOTIC_N = 22.0
#: For n = 1 the fixed 9-term asymptotic sum (A&S 13.5.1) is used from this x on. [D]
#: Its relative error vs mpmath hyp1f1 is 1.4e-10 (E[M]) and 2.7e-9 (dE/dA) at x = 20,
#: falling to 1e-16 at x = 150; below 150 the convergent series is summed instead
#: (~x + 10 sqrt(x) terms; the kernels read E[M] from a table there, so cost is moot).
X_ASYMPTOTIC_1 = 150.0
#: Interpolation grid of the kernels' E[M] table: nodes per unit of nu = A / sigma, and
#: the largest tabulated nu (x = nu^2 / 2 = 162: above it the 9-term sum for n = 1 and
#: the expansion for n <= 140 are exact to double precision and cheap). [D] A design choice: the cubic
#: Hermite error bound h^4 / 384 max|d^4 E/d nu^4| is then ~1e-11 relative;
#: 18 * 128 intervals of 4 coefficients = 74 kB per channel count.
TABLE_STEPS_PER_UNIT = 128
TABLE_NU_MAX = 18.0

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


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_mean_deriv(a, sigma, n, lgamma_ratio):
    """``E[M]`` and ``dE[M]/dA`` of a non-central chi magnitude (numba twin of ``ncchi_mean``).

    Parameters: amplitude ``a >= 0``, channel ``sigma > 0``, channel count ``n >= 1``,
    ``lgamma_ratio = lgamma(n + 1/2) - lgamma(n)`` (precomputed by the caller).
    """
    if a < 0.0:
        a = -a
    x = a * a / (2.0 * sigma * sigma)
    if n == 1 and x >= X_ASYMPTOTIC_1:
        # A&S 13.5.1 with n = 1, fixed 9 terms in Horner form (coefficients _ASYM1_*
        # computed exactly from the Pochhammer symbols); relative error < 1e-16 at
        # x >= 150 (see X_ASYMPTOTIC_1).
        u = 1.0 / x
        sm = _ASYM1_M[8]
        sd = _ASYM1_D[8]
        for s in range(7, -1, -1):
            sm = sm * u + _ASYM1_M[s]
            sd = sd * u + _ASYM1_D[s]
        return a * sm, sd
    if n > 1 and x >= X_ASYMPTOTIC_N + n:
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


@functools.lru_cache(maxsize=16)
def ncchi_table(coils: int) -> np.ndarray:
    """Cubic Hermite table of ``E[M] / sigma`` against ``nu = A / sigma`` (for the kernels).

    Row ``i`` holds the coefficients ``c0..c3`` of ``c0 + c1 u + c2 u^2 + c3 u^3`` on
    ``nu = (i + u) h``, ``0 <= u < 1``, ``h = 1 / TABLE_STEPS_PER_UNIT``, from the exact
    values and derivatives at the nodes (:func:`_ncchi_mean_deriv`). Read-only, cached
    per channel count.
    """
    h = 1.0 / TABLE_STEPS_PER_UNIT
    nodes = np.arange(int(round(TABLE_NU_MAX * TABLE_STEPS_PER_UNIT)) + 1) * h
    f = np.empty_like(nodes)
    d = np.empty_like(nodes)
    _ncchi_mean_array(nodes, 1.0, np.int64(coils), f)
    _ncchi_deriv_array(nodes, 1.0, np.int64(coils), d)  # dE/dA = d(E/sigma)/d(nu)
    f0, f1, d0, d1 = f[:-1], f[1:], h * d[:-1], h * d[1:]
    tab = np.stack([f0, d0, 3.0 * (f1 - f0) - 2.0 * d0 - d1, 2.0 * (f0 - f1) + d0 + d1], axis=1)
    tab.setflags(write=False)
    return tab


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_eval(a, sigma, n, lgamma_ratio, tab):
    """``E[M]``, ``dE[M]/dA`` and ``d2E[M]/dA2`` from the interpolation table
    ``tab = ncchi_table(n)`` below ``nu = TABLE_NU_MAX`` (the derivatives are those of
    the interpolant, so value, Jacobian and Hessian are consistent; the second one is
    piecewise linear). Above the table, :func:`_ncchi_mean_deriv` and a second
    derivative of 0: there ``|d2E/dA2| < 1 / (2 nu^3 sigma) < 1e-4 / sigma`` (A&S 13.5.1,
    leading term), negligible next to ``(dE/dA)^2 ~ 1`` in a Newton step."""
    if a < 0.0:
        a = -a
    s = a / sigma * TABLE_STEPS_PER_UNIT
    if s < tab.shape[0]:
        i = int(s)
        u = s - i
        c0 = tab[i, 0]
        c1 = tab[i, 1]
        c2 = tab[i, 2]
        c3 = tab[i, 3]
        mean = sigma * (c0 + u * (c1 + u * (c2 + u * c3)))
        deriv = (c1 + u * (2.0 * c2 + u * 3.0 * c3)) * TABLE_STEPS_PER_UNIT
        deriv2 = (2.0 * c2 + 6.0 * u * c3) * (TABLE_STEPS_PER_UNIT * TABLE_STEPS_PER_UNIT / sigma)
        return mean, deriv, deriv2
    mean, deriv = _ncchi_mean_deriv(a, sigma, n, lgamma_ratio)
    return mean, deriv, 0.0


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_eval_array(a, sigma, n, lgamma_ratio, tab, mean, deriv):
    for i in range(a.size):
        mean[i], deriv[i], _ = _ncchi_eval(a[i], sigma, n, lgamma_ratio, tab)


def ncchi_mean_interpolated(amplitude, sigma: float, coils: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``E[M]`` and ``dE[M]/dA`` as the fitting kernels evaluate them (the interpolation
    table of :func:`ncchi_table`; see the module notes for its error), for numpy code
    that must fit the same function as the kernels, fast (e.g. the pooled tile fit).

    Returns two float64 arrays shaped like ``amplitude``.
    """
    sigma, coils = _check_sigma_coils(sigma, coils)
    a = np.asarray(amplitude, dtype=np.float64)
    flat = np.ascontiguousarray(a.reshape(-1))
    mean = np.empty_like(flat)
    deriv = np.empty_like(flat)
    _ncchi_eval_array(flat, sigma, np.int64(coils), math.lgamma(coils + 0.5) - math.lgamma(coils),
                      ncchi_table(coils), mean, deriv)
    return mean.reshape(a.shape), deriv.reshape(a.shape)


def ncchi_mean_weights(amplitude, mean, sigma: float, coils: int, k) -> np.ndarray:
    """Inverse variance of the mean of ``k`` root-sum-of-squares magnitudes of amplitude
    ``amplitude`` and noncentral-chi mean ``mean``: ``k / (A^2 + 2 n sigma^2 - E[M]^2)``
    (``E[M^2] = A^2 + 2 n sigma^2`` for ``n`` channels of noise SD ``sigma`` per real and
    imaginary part), the variance floored at ``1e-6 sigma^2 / k``. The weights of the
    pooled tile fits (r2mri.stats, r2mri._gre) and of their bias and SE terms.
    """
    kk = np.asarray(k, dtype=np.float64)
    var = (amplitude * amplitude + 2 * coils * sigma**2 - mean * mean) / kk
    return 1.0 / np.maximum(var, 1e-6 * sigma**2 / kk)


def noise_floor_threshold(k_sigma: float, coils: int = 1) -> float:
    """Threshold, in units of ``sigma``, above which a magnitude counts as signal: the
    level pure noise of ``coils`` channels exceeds as often as one-channel pure noise
    (Rayleigh) exceeds ``k_sigma * sigma``.

    Pure noise combined by root-sum-of-squares over ``n`` channels is central chi with
    ``2n`` degrees of freedom (``M^2 / sigma^2`` is chi-square with ``2n``): ``P(M > x
    sigma) = Q(n, x^2 / 2)``, the regularised upper incomplete gamma function (for
    ``n = 1``: ``exp(-x^2 / 2)``). The threshold is ``x_n = sqrt(2 Q^-1(n, exp(-k^2 / 2)))``,
    so the probability that an echo of pure noise passes it is ``exp(-k_sigma^2 / 2)``
    at every channel count (``k_sigma = 2``: 0.135; thresholds 2.00, 2.65, 3.52, 4.72
    sigma at 1, 2, 4, 8 channels, where the pure-noise mean is 1.25, 1.88, 2.74, 3.94
    sigma). [D] A design choice: equal tail probability is what makes a threshold mean
    the same whatever ``n``; ``mean_n + 1.14 sd_n`` (the one-channel 2 sigma in SDs of
    the Rayleigh distribution) differs from it by under 0.025 sigma for n <= 32.

    Parameters
    ----------
    k_sigma : float
        The threshold for one channel, in units of sigma (>= 0; 0: no threshold).
    coils : int
        Number of channels ``n`` combined by root-sum-of-squares.

    Returns
    -------
    float
        ``x_n``; exactly ``k_sigma`` for one channel.

    Examples
    --------
    >>> from r2mri.noise import noise_floor_threshold
    >>> noise_floor_threshold(2.0, 1), round(noise_floor_threshold(2.0, 8), 4)
    (2.0, 4.7169)
    """
    k = float(k_sigma)
    if not (math.isfinite(k) and k >= 0):
        raise InputError(f"k_sigma: must be a finite number >= 0, got {k_sigma!r}")
    if int(coils) != coils or coils < 1:
        raise InputError(f"coils: must be an integer >= 1, got {coils!r}")
    if coils == 1 or k == 0.0:
        return k
    from scipy.special import gammainccinv

    n = int(coils)
    if k < 37.0:  # exp(-k^2 / 2) > 1e-297: no underflow
        return math.sqrt(2.0 * float(gammainccinv(n, math.exp(-0.5 * k * k))))
    # far tail: Q(n, u) ~ u^(n-1) e^-u (1 + (n-1)/u) / Gamma(n) (A&S 6.5.32), solved for
    # u by fixed-point iteration
    u = 0.5 * k * k
    for _ in range(60):
        u = 0.5 * k * k + (n - 1) * math.log(u) + math.log1p((n - 1) / u) - math.lgamma(n)
    return math.sqrt(2.0 * u)


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
        ``sigma sqrt(2) Gamma(n+1/2)/Gamma(n) 1F1(-1/2; n; -A^2/(2 sigma^2))``, to a
        relative accuracy of about 1e-13.

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


# estimation lives in its own module (no kernel code): re-exported here
from ._noise_estimate import NoiseEstimate, estimate_noise  # noqa: E402
