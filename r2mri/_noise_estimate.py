"""Noise estimation from magnitude images: ``sigma`` and the channel count (:func:`estimate_noise`).

Split out of :mod:`r2mri.noise` (which keeps the non-central chi physics and the numba
functions compiled into the fitting kernels, whose source is hashed): see that module
and docs/fitting.md for the statistics. Public names are re-exported by
:mod:`r2mri.noise`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._numba_setup import njit
from .errors import InputError
from ._noise_check import background_check
from ._noise_correlation import noise_correlation
from .image import MultiEchoImage

__all__ = ["estimate_noise", "NoiseEstimate"]

#: Tail probability of the air test [D, design choice]: a voxel is air-like when
#: ``sum_k M_k^2 / sigma^2`` (sum over its ``m`` echoes) is below the ``1 - P_AIR_CUT``
#: quantile of chi-square with ``2 n m`` degrees of freedom, the law of that sum for pure
#: noise. The truncation it causes is modelled in the likelihood (no bias from it).
P_AIR_CUT = 1e-3
#: Largest channel count considered by the maximum-likelihood search (design choice,
#: not a hardware figure; an estimate at this limit is flagged in the notes).
MAX_COILS = 64


@dataclass
class NoiseEstimate:
    """Result of :func:`estimate_noise`.

    Attributes
    ----------
    sigma : float
        Noise standard deviation per real/imaginary part of one channel (signal units).
    coils : int
        Effective channel count ``n`` (integer maximum-likelihood estimate, >= 1) used by
        the ``ncchi`` model.
    coils_estimate : float or None
        Maximum-likelihood ``n`` when ``n`` may take any real value >= 1 (``None`` for the
        residual method); far from an integer means the noise is not an exact central chi
        (correlated channels, filtering, parallel imaging).
    method : str
        ``"background"`` (pure-noise voxels); ``"residual"`` (fallback: residuals of
        mono-exponential fits in bright tissue, background zeroed by the scanner);
        ``"tissue"`` (no background of pure noise: noise-corrected fits of the voxels
        themselves, :mod:`r2mri.fitting._tissue_noise`); ``"noise-free"`` (mono-exponential
        fits exact to rounding: ``sigma`` 0).
    n_voxels : int
        Voxels the estimate is based on.
    notes : list of str
        Caveats a report should show.
    sigma_se : float or None
        Standard error of ``sigma`` from the sampling error of the estimate (background:
        ``sigma / (2 sqrt(n N m))`` for ``N`` voxels of ``m`` echoes, ``n`` fixed;
        residual: ``sigma / sqrt(2 N (m - 2))``, model misfit not included).
    coils_log_lr : float or None
        Log-likelihood of ``coils`` minus that of the next best integer: > 3 means the
        next best is at least e^3 = 20 times less likely.
    background_check : dict or None
        The pure-noise test of the background candidate (:func:`r2mri._noise_check.background_check`):
        ``passed``, ``z_decay``, ``relative_decay``, ``echo_share``, ``reason``...; ``None``
        when no candidate was tested.
    spatial_correlation : dict or None
        Correlation of the noise between neighbouring voxels, from the background voxels
        (:func:`r2mri._noise_correlation.noise_correlation`: ``rho_by_lag``,
        ``rho_lag1_se``, ``rho_through_plane``, ``variance_factor_2x2``...); ``None`` for the
        other methods (no air: the correlation is not known) or too little air.

    Examples
    --------
    >>> import r2mri
    >>> from r2mri import phantom
    >>> ph = phantom.generate(matrix=(48, 48), pixel_mm=8.0, n_slices=2, seed=0)  # sigma 19.39, 4 coils
    >>> est = r2mri.estimate_noise(ph.image)
    >>> round(est.sigma, 1), est.coils, est.method
    (19.4, 4, 'background')
    """

    sigma: float
    coils: int
    coils_estimate: float | None
    method: str
    n_voxels: int
    notes: list[str] = field(default_factory=list)
    sigma_se: float | None = None
    coils_log_lr: float | None = None
    background_check: dict | None = None
    spatial_correlation: dict | None = None

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


class _ChiFit:
    """Maximum likelihood of ``sigma`` and ``n`` for pure-noise magnitudes (central chi, 2n dof).

    [D] Each value ``M`` of an air voxel has the density
    ``f(M) = 2 M^(2n-1) exp(-M^2 / (2 sigma^2)) / ((2 sigma^2)^n Gamma(n))`` (domain.md
    section 3 with A = 0; Constantinides et al. MRM 1997). For ``N`` voxels of ``m`` echoes
    the log-likelihood depends on the data only through ``S1 = sum ln M`` and
    ``S2 = sum M^2``::

        l(sigma, n) = (2n - 1) S1 - S2 / (2 sigma^2) - N m (n ln(2 sigma^2) + ln Gamma(n))
                      - N ln F_{2nm}(T / sigma^2)

    where the last term accounts for selecting only voxels with ``sum_k M_k^2 < T``
    (``F_k`` the chi-square CDF; absent when ``T`` is None). Without truncation
    ``sigma^2 = S2 / (2 n N m)``. Using the whole distribution (not one moment ratio)
    makes ``n`` far better determined: the moment ratio ``E[M]^2 / E[M^2]`` changes by
    only about ``1 / (4 n (n + 1))`` per unit of ``n`` (0.0034 from n = 8 to 9), so a
    little tail truncation or a few tissue voxels move a moment estimate of ``n`` by
    whole units.
    """

    def __init__(self, s1: float, s2: float, n_vox: int, m: int, threshold: float | None = None):
        self.s1, self.s2 = float(s1), float(s2)
        self.n_vox = float(n_vox)
        self.m = m
        self.nm = self.n_vox * m  # N m values
        self.t = threshold

    @classmethod
    def from_values(cls, vals: np.ndarray, m: int) -> "_ChiFit":
        """From positive values (any shape, ``N m`` of them), no truncation."""
        v = np.asarray(vals, dtype=np.float64).ravel()
        return cls(np.sum(np.log(v)), np.dot(v, v), v.size / m, m)

    def _ll(self, log_s2: float, n: float) -> float:
        from scipy.special import gammainc, gammaln

        s2 = math.exp(log_s2)
        ll = ((2 * n - 1) * self.s1 - self.s2 / (2 * s2)
              - self.nm * (n * math.log(2 * s2) + float(gammaln(n))))
        if self.t is not None:
            # chi2.logcdf(x, 2 h) = log P(h, x / 2) (regularised lower gamma); scipy.special
            # instead of scipy.stats, whose import alone costs ~0.5 s per process.
            with np.errstate(divide="ignore"):
                ll -= self.n_vox * float(np.log(gammainc(n * self.m, self.t / s2 / 2)))
        return ll

    def profile(self, n: float) -> tuple[float, float]:
        """``(max over sigma of l, sigma)`` at channel count ``n``."""
        log_s2 = math.log(self.s2 / (2 * n * self.nm))
        if self.t is None:
            return self._ll(log_s2, n), math.exp(0.5 * log_s2)
        x, fx = _maximize_bounded(lambda u: self._ll(u, n), log_s2 - 0.3, log_s2 + 0.3, 1e-9)
        return fx, math.exp(0.5 * x)

    def integer_scan(self) -> tuple[int, float, float]:
        """Integer ``n`` in 1..MAX_COILS maximising the untruncated likelihood, sigma, and the
        log-likelihood margin over the runner-up (vectorised, closed-form sigma)."""
        from scipy.special import gammaln

        n = np.arange(1, MAX_COILS + 1, dtype=np.float64)
        s2 = self.s2 / (2 * n * self.nm)
        ll = (2 * n - 1) * self.s1 - self.nm * n - self.nm * (n * np.log(2 * s2) + gammaln(n))
        k = int(np.argmax(ll))
        return k + 1, math.sqrt(s2[k]), float(ll[k] - np.max(np.delete(ll, k)))

    def solve(self) -> tuple[float, int, float, float]:
        """``(sigma, n, n_continuous, log-likelihood margin of n)`` with the truncation term."""
        n0 = self.integer_scan()[0]
        cands = [c for c in (n0 - 1, n0, n0 + 1, n0 + 2) if 1 <= c <= MAX_COILS]
        prof = {c: self.profile(c) for c in cands}
        while True:  # walk to the integer maximum (the truncation may shift it)
            best = max(prof, key=lambda c: prof[c][0])
            grown = False
            for c in (best - 1, best + 1):
                if 1 <= c <= MAX_COILS and c not in prof:
                    prof[c] = self.profile(c)
                    grown = True
            if not grown:
                break
        others = [prof[c][0] for c in prof if c != best]
        margin = prof[best][0] - max(others) if others else float("inf")
        lo, hi = max(1.0, best - 1.0), min(float(MAX_COILS), best + 1.0)
        n_cont = _maximize_bounded(lambda u: self.profile(u)[0], lo, hi, 1e-4)[0]
        return prof[best][1], best, n_cont, float(margin)


#: 1 / golden ratio, the interval reduction per step of a golden-section search
_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0


def _maximize_bounded(func, lo: float, hi: float, xatol: float) -> tuple[float, float]:
    """Maximum of a unimodal ``func`` on ``[lo, hi]`` by golden-section search (Kiefer,
    Proc Am Math Soc 4:502, 1953; Press et al., Numerical Recipes, 3rd ed., 2007, sec.
    10.2): ``(x, func(x))`` with ``x`` within ``xatol`` of the maximiser.

    [D] In place of ``scipy.optimize.minimize_scalar(method="bounded")``: importing
    scipy.optimize costs ~0.2 s per process (7 % of ``r2mri analyze``) for these two
    one-dimensional searches of smooth likelihood profiles; golden section needs
    ``log(width / xatol) / log(1.618)`` evaluations (41 for the sigma profile), a
    few milliseconds here, and its bracket always holds the maximum of a unimodal
    function.
    """
    a, b = float(lo), float(hi)
    c = b - _INV_PHI * (b - a)
    d = a + _INV_PHI * (b - a)
    fc, fd = func(c), func(d)
    while b - a > xatol:
        if fc >= fd:  # the maximum is in [a, d]
            b, d, fd = d, c, fc
            c = b - _INV_PHI * (b - a)
            fc = func(c)
        else:  # in [c, b]
            a, c, fc = c, d, fd
            d = a + _INV_PHI * (b - a)
            fd = func(d)
    return (c, float(fc)) if fc >= fd else (d, float(fd))


def _edge_connected(low: np.ndarray) -> np.ndarray:
    """Voxels of ``low`` (spatial boolean array) 4-connected in-plane (axes 0, 1) to the
    in-plane border of the volume; all of ``low`` when there is no plane (1-D)."""
    if low.ndim < 2:
        return low
    from scipy import ndimage

    structure = np.zeros((3,) * low.ndim, dtype=bool)
    centre = (1,) * low.ndim
    structure[centre] = True
    for ax in (0, 1):
        for d in (0, 2):
            idx = list(centre)
            idx[ax] = d
            structure[tuple(idx)] = True
    lab, nlab = ndimage.label(low, structure)
    if nlab == 0:
        return low
    border = np.concatenate([lab[0].ravel(), lab[-1].ravel(), lab[:, 0].ravel(), lab[:, -1].ravel()])
    keep = np.zeros(nlab + 1, dtype=bool)
    keep[border] = True
    keep[0] = False
    return keep[lab]


#: bits of the per-voxel codes of :func:`_voxel_sums`
_FINITE, _NONNEG, _VALID, _SOME_ZERO, _ALL_ZERO = 1, 2, 4, 8, 16


@njit(error_model="numpy")
def _voxel_sums(flat):
    """Per voxel (row of ``flat``, (N, m)): a code (bits: all echoes finite; finite and
    >= 0; finite and all > 0, i.e. usable; finite with an exact zero; all zero), and for
    usable voxels the sufficient statistics of the chi likelihood, ``sum M^2`` (else
    inf) and ``sum ln M`` (else 0), in float64. One pass over the data instead of seven
    numpy passes and a float64 copy (0.08 -> 0.01 s on a 256 x 256 x 11 x 5 series)."""
    nvox, m = flat.shape
    code = np.zeros(nvox, np.uint8)
    q = np.full(nvox, np.inf)
    s1 = np.zeros(nvox)
    for i in range(nvox):
        finite = True
        nonneg = True
        npos = 0
        nzero = 0
        for k in range(m):
            v = float(flat[i, k])
            if not math.isfinite(v):
                finite = False
            elif v > 0.0:
                npos += 1
            elif v == 0.0:
                nzero += 1
            else:
                nonneg = False
        if not finite:
            continue
        c = _FINITE
        if nonneg:
            c |= _NONNEG
        if npos == m:
            c |= _VALID
            sq = 0.0
            sl = 0.0
            for k in range(m):
                v = float(flat[i, k])
                sq += v * v
                sl += math.log(v)
            q[i] = sq
            s1[i] = sl
        if nzero > 0:
            c |= _SOME_ZERO
            if nzero == m:
                c |= _ALL_ZERO
        code[i] = c
    return code, q, s1


def _background_estimate(data: np.ndarray, min_voxels: int, sums=None):
    """Maximum-likelihood noise estimate from the air surrounding the body.

    [D] Air is noise at every echo while tissue carries a decaying signal, so each voxel
    is tested with all its echoes: ``Q = sum_k M_k^2``, which for air is ``sigma^2`` times a
    chi-square with ``2 n m`` degrees of freedom. The background is the set of voxels with
    ``Q < T = sigma^2 chi2.isf(P_AIR_CUT, 2 n m)`` that are 4-connected in-plane to the
    edge of the field of view: the air around the body. Dark tissue (bone, vessels,
    organs at the noise floor at low SNR) passes the intensity test but lies inside the
    body, separated from the outside air by the brighter body wall, so it is excluded.
    Iteration: seed with the 10 % (at least ``min_voxels``) of valid voxels with the
    lowest ``Q`` (no spatial rule), fit, set ``T``, select, refit, until the selection no
    longer changes (or sigma changes by < 1e-6). The fit (:class:`_ChiFit`) is maximum
    likelihood over integer ``n`` with the truncation ``Q < T`` in the likelihood.
    ``sums`` is :func:`_voxel_sums` of ``data`` (computed here when not given).
    Returns ``(sigma, n, n_continuous, margin, n_voxels, notes, selection)`` (selection:
    flat boolean array of the voxels used) or ``None``.
    """
    from scipy.special import gammainccinv

    spatial = data.shape[:-1]
    m = data.shape[-1]
    if sums is None:
        sums = _voxel_sums(np.ascontiguousarray(data.reshape(-1, m)))
    code, q, s1 = sums
    valid = (code & _VALID) > 0
    if valid.sum() < min_voxels:
        return None
    # exact zeros (zero-filled rims, clipped air) are never used but connect air to the edge
    zero = (code & _SOME_ZERO) > 0
    qv = q[valid]
    seed_thr = np.quantile(qv, min(1.0, max(0.10, min_voxels / qv.size)))
    sel = valid & (q <= seed_thr)
    n, sigma, _ = _ChiFit(s1[sel].sum(), q[sel].sum(), int(sel.sum()), m).integer_scan()
    notes: list[str] = []
    spatial_rule = len(spatial) >= 2
    prev = None
    thr = None
    for _ in range(50):
        thr = sigma * sigma * 2.0 * float(gammainccinv(n * m, P_AIR_CUT))  # = chi2.isf(p, 2 n m)
        low = q < thr
        if spatial_rule:
            sel = _edge_connected((low | zero).reshape(spatial)).reshape(-1) & low
        else:
            sel = low
        if sel.sum() < min_voxels:
            if spatial_rule:
                # no air around the body in the field of view: intensity rule only
                spatial_rule = False
                notes.append("no air connected to the image edge; background chosen by intensity only "
                             "(dark tissue may bias sigma upwards)")
                continue
            return None
        if prev is not None and np.array_equal(sel, prev):
            break
        n_new, sigma_new, _ = _ChiFit(s1[sel].sum(), q[sel].sum(), int(sel.sum()), m).integer_scan()
        done = abs(sigma_new - sigma) <= 1e-6 * sigma and n_new == n
        prev, sigma, n = sel, sigma_new, n_new
        if done:
            break
    sigma, n, n_cont, margin = _ChiFit(s1[prev].sum(), q[prev].sum(), int(prev.sum()), m, thr).solve()
    if n >= MAX_COILS:
        notes.append(f"channel count at the search limit ({MAX_COILS}): the background is probably "
                     "not pure noise (too little air?); give noise_sigma and coils")
    return sigma, n, n_cont, margin, int(prev.sum()), notes, prev


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
        When neither background voxels nor bright tissue voxels suffice
        (``NoBackgroundError``, a subclass, when there is no air and the tissue cannot
        tell the noise).

    Notes
    -----
    Method ``"background"`` [D]: pure-noise voxels follow a central chi distribution
    with ``2n`` degrees of freedom and scale ``sigma`` (domain.md section 3 with A = 0);
    ``sigma`` and the integer ``n`` are its maximum-likelihood estimates (``_ChiFit``;
    ``coils_estimate`` lets ``n`` be real). The air is found with all echoes and a
    spatial rule (``_background_estimate``): voxels whose summed squared magnitude over
    the echoes is consistent with noise *and* that are connected in-plane to the edge of
    the field of view. Intensity alone is not enough at low SNR: dark tissue inside the
    body (bone, vessels, organs near the noise floor) is then indistinguishable from
    air and inflated sigma by 40 % on the SNR-10 phantom. ``sigma_se`` is the sampling
    standard error of ``sigma``; ``coils_log_lr`` how strongly ``coils`` beats the next
    best integer. With ``mask`` the same fit runs on the given voxels.
    The automatic background must behave like pure noise (:func:`r2mri._noise_check.background_check`:
    independent echoes, no decay, one law at every echo; result in ``background_check``). Data that
    mono-exponential fits reproduce to rounding are method ``"noise-free"`` (sigma 0).
    Arrays without air, or whose background candidate fails the check, get method
    ``"tissue"``: sigma and coils from noise-corrected fits of the voxels themselves
    (:mod:`r2mri.fitting._tissue_noise`), or an ``InputError`` asking for
    ``noise_sigma`` when the tissue cannot pin the noise floor (docs/fitting.md, "Arrays
    without air").
    Scanners often set the background to exactly zero; zeros are never used. If the
    automatic background holds mostly exact zeros (>= 5 % of the voxels), method
    ``"residual"`` is used: the pooled residual variance of mono-exponential fits in
    the brightest tissue voxels (Gaussian regime), an upper estimate when tissue is not
    mono-exponential.

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
        return _mask_estimate(data, flat, mask, min_voxels)
    sums = _voxel_sums(np.ascontiguousarray(flat))
    finite = (sums[0] & _NONNEG) > 0
    n_finite = int(np.count_nonzero(finite))
    zero_frac = float(np.count_nonzero(sums[0] & _ALL_ZERO)) / n_finite if n_finite else 1.0
    free = _noise_free(flat, te, (sums[0] & _VALID) > 0)
    if free is not None:
        return free
    est, check = _checked_background(data, flat, min_voxels, sums) if zero_frac < 0.05 else (None, None)
    if est is not None:
        return est
    if not finite.all():
        flat = flat[finite]
    if zero_frac < 0.05:
        # no air in the array, or what looked like air is not pure noise: tissue only
        return _tissue_estimate(flat, te, check)
    return _residual_fallback(flat, te, min_voxels, zero_frac)


def _mask_estimate(data: np.ndarray, flat: np.ndarray, mask, min_voxels: int) -> NoiseEstimate:
    """Sigma and coils from the given background ``mask`` (its voxels with every echo > 0)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != data.shape[:-1]:
        raise InputError(f"mask: shape {mask.shape} does not match the spatial shape {data.shape[:-1]}")
    vals = flat[mask.reshape(-1)].astype(np.float64)
    vals = vals[np.all(vals > 0, axis=1)].ravel()
    if vals.size < min_voxels:
        raise InputError(f"mask: only {vals.size} non-zero background values (need {min_voxels})")
    sigma, n, n_cont, margin = _ChiFit.from_values(vals, data.shape[-1]).solve()
    return NoiseEstimate(sigma, n, n_cont, "background", int(mask.sum()), [],
                         sigma / (2.0 * math.sqrt(n * vals.size)), margin,
                         spatial_correlation=noise_correlation(data, mask, erode=0))


def _checked_background(data: np.ndarray, flat: np.ndarray, min_voxels: int, sums):
    """``(estimate, check)``: the automatic background's estimate if its pure-noise check
    passes (else None), and the check (None without a usable background)."""
    bg = _background_estimate(data, min_voxels, sums)
    if bg is None:
        return None, None
    sigma, n, n_cont, margin, nvox, bg_notes, sel = bg
    check = background_check(flat[_even_subset(np.flatnonzero(sel), CHECK_MAX_VOXELS)], sigma, n,
                             MAX_COILS)
    if not check["passed"]:
        return None, check
    se = sigma / (2.0 * math.sqrt(n * nvox * data.shape[-1]))
    corr = noise_correlation(data, sel.reshape(data.shape[:-1]))
    return NoiseEstimate(sigma, n, n_cont, "background", nvox, list(bg_notes), se, margin, check, corr), check


def _residual_fallback(flat: np.ndarray, te, min_voxels: int, zero_frac: float) -> NoiseEstimate:
    """Sigma from tissue residuals when the background is mostly exact zeros (an upper
    estimate, coils assumed 1), with a warning to the caller of :func:`estimate_noise`."""
    notes = [f"background unusable ({zero_frac:.0%} of voxels exactly zero); "
             "sigma from tissue residuals (upper estimate, coils assumed 1)"]
    res = _residual_estimate(flat, te, min_voxels)
    if res is None:
        raise InputError("img_or_array: cannot estimate noise (no usable background and too few "
                         "bright voxels or echoes for the residual method); pass noise_sigma")
    sigma, nvox = res
    warnings.warn(notes[-1], RuntimeWarning, stacklevel=3)
    se = sigma / math.sqrt(2.0 * nvox * max(1, flat.shape[1] - 2))
    return NoiseEstimate(sigma, 1, None, "residual", nvox, notes, se, None)


class NoBackgroundError(InputError):
    """No background of pure noise and no estimate from the tissue: ``noise_sigma`` is
    needed (``r2mri.fit`` with ``model="auto"`` re-raises it instead of falling back)."""


#: The pure-noise check runs on at most this many background voxels, evenly spaced in
#: the selection [D, design choice: its cost stays ~1 ms; tissue scores z > 30 on 500
#: voxels, and the SD of z does not depend on N].
CHECK_MAX_VOXELS = 20000


def _even_subset(idx: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of the indices ``idx``, evenly spaced (deterministic)."""
    if idx.size <= limit:
        return idx
    return idx[np.linspace(0, idx.size - 1, limit).round().astype(np.int64)]


def _noise_free(flat: np.ndarray, te, valid: np.ndarray) -> NoiseEstimate | None:
    """A ``"noise-free"`` estimate (sigma 0) when mono-exponential fits of the voxels
    with every echo finite and positive (``valid``) are exact."""
    if te is None or flat.shape[1] < 3:
        return None
    from .fitting._tissue_noise import MAX_VOXELS, noise_free_residual

    res = noise_free_residual(flat[_even_subset(np.flatnonzero(valid), MAX_VOXELS)], te)
    if res is None:
        return None
    rel, nvox, note = res
    return NoiseEstimate(0.0, 1, None, "noise-free", nvox, [note], 0.0, None)


def _tissue_estimate(flat: np.ndarray, te, check: dict | None) -> NoiseEstimate:
    """Method ``"tissue"``: sigma and coils from noise-corrected fits of the voxels."""
    why = ("no air around the body in the array" if check is None
           else f"the background candidate is not pure noise: {check['reason']}")
    est = None
    if te is not None:
        from .fitting._tissue_noise import tissue_noise

        est = tissue_noise(flat, te)
    if est is None:
        raise NoBackgroundError(f"img_or_array: cannot estimate noise ({why}; the tissue estimate needs "
                                "echo times, >= 3 echoes and >= 50 positive voxels); pass noise_sigma")
    if est.method == "undetermined":
        raise NoBackgroundError(f"img_or_array: cannot estimate noise ({why}; {est.notes[0]}); "
                                "pass noise_sigma and coils")
    notes = [f"{why}; {est.notes[0]}"] + est.notes[1:]
    return NoiseEstimate(est.sigma, est.coils, None, "tissue", est.n_voxels, notes, est.sigma_se,
                         est.coils_log_lr, check)
