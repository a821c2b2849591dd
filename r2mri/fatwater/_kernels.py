"""numba kernels of the magnitude fat-water fit (private).

Per voxel, three parameters p = (W, F, R2*) of ``S_k = |W + F c_k| exp(-R2* t_k)``
(``c_k = cr_k + i ci_k``, the fat basis) are fitted by a projected Levenberg-Marquardt
iteration (Marquardt 1963, diagonal scaling) with bounds W >= 0, F >= -a W (signed fat,
``a = fat_floor``, r2mri.fatwater.fit.FAT_FLOOR_FRACTION; docs/fatwater.md "Fat bound and
PDFF rule"),
R2* in [lo, hi]: a parameter on a bound whose gradient points out of the box is held
fixed for that step (active set), the others take the reduced step; on the oblique fat
bound the step is taken with F + a W held (:func:`_shear`).

Water/fat swap rule (magnitude data cannot tell water from fat with a single-peak
spectrum; a multi-peak spectrum breaks the symmetry only weakly): every voxel is fitted
twice, from a water-dominant start (W, F) = (0.9, 0.1) A and a fat-dominant start
(0.1, 0.9) A, A and R2* from a log-linear fit of the magnitude; the solution with the
lower residual sum of squares wins (a tie keeps the water-dominant one).

Work arrays are allocated once per block of ``_BLOCK`` voxels, never per voxel; voxels
are independent, so results do not depend on threads or chunking.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba_setup import njit
from ..noise import _ncchi_eval

#: sha256 of r2mri/noise.py, whose numba functions are compiled into these kernels
#: (numba keys its on-disk cache on this file only; see r2mri/fitting/_kernels.py).
_NOISE_PY_SHA256 = "2380f3ebe3ec584c01f2bd8527b481b9412788565786ec1d6f807edcee656287"

# output rows
O_W, O_F, O_R2, O_R2STD, O_RMS, O_RSQ, O_PDFF, O_NITER, O_FATSTART = range(9)
NOUT = 9

# r2mri.status.FitStatus codes, duplicated as ints for numba
S_OK, S_NOT_CONVERGED, S_BOUND_HIT, S_BELOW_NOISE, S_BAD = 0, 1, 2, 3, 5

# swap rules (see the module docstring and docs/fatwater.md)
RULE_MIN_RESIDUAL, RULE_LIVER = 0, 1

_BLOCK = 128
# The LM functions (_jac, _solve3, _freeze, _shear, _lm) are compiled without numba's
# reference counting (``_nrt=False``): they allocate nothing and only borrow the caller's
# arrays, yet with it every call atomically increfs and decrefs each array argument
# (~19 atomic operations per trial, on the meminfos of t, cr, ci and the E[M] table that
# both threads share): 7-14 % less CPU per voxel (docs/fatwater.md, "Speed"). For _lm
# (1-2 calls per voxel) the gain is in compile time: each of its returns decrefs ~15 arrays.
_LAMBDA0 = 1e-3  # initial Marquardt damping (design choice)
_LAMBDA_MAX = 1e12  # damping at which no descent step exists: a (constrained) minimum


@njit(error_model="numpy", _nrt=False)
def _jac(y, t, cr, ci, p, uniform, nz, J, res, A, g):
    """Normal equations at ``p``: ``A = J^T J`` (3, 3) and ``g = J^T (y - S)`` (3,), with
    ``J`` the Jacobian of the model S; returns the residual sum of squares. ``J`` (m, 3)
    and ``res`` (m,) are scratch. With ``uniform`` (equally spaced echoes) exp(-R2* t_k)
    is built by repeated multiplication (relative error ~ k * 1e-16). ``nz = (sigma,
    coils, lgamma ratio, E[M] table)``: with sigma > 0 the model is the expected
    magnitude E[M](S) of a non-central chi (r2mri.noise) and its Jacobian dE[M]/dS times
    that of S. The normal equations are summed here, with the cost, so that a trial step
    needs no second pass over the echoes and no copy of its Jacobian when accepted."""
    sigma, coils, lg, tab = nz
    m = y.size
    # three passes, so that the middle one has no loop-carried dependence (vectorisable):
    # exp(-R2* t_k) into res, then S_k and J (then E[M] with sigma), then the sums in order
    e = math.exp(-p[2] * t[0])
    q = math.exp(-p[2] * (t[1] - t[0]))
    for k in range(m):
        if k > 0:
            e = e * q if uniform else math.exp(-p[2] * t[k])
        res[k] = e
    w = p[0]
    f = p[1]
    for k in range(m):
        e = res[k]
        re = w + f * cr[k]
        im = f * ci[k]
        g2 = re * re + im * im
        s = math.sqrt(g2) * e
        if g2 > 0.0:
            h = e / math.sqrt(g2)
            J[k, 0] = h * re
            J[k, 1] = h * (re * cr[k] + im * ci[k])
        else:  # |W + F c| = 0: one-sided derivatives
            J[k, 0] = e
            J[k, 1] = e * math.sqrt(cr[k] * cr[k] + ci[k] * ci[k])
        J[k, 2] = -t[k] * s
        res[k] = s
    if sigma > 0.0:
        for k in range(m):
            s, ds, _ = _ncchi_eval(res[k], sigma, coils, lg, tab)
            res[k] = s
            J[k, 0] *= ds
            J[k, 1] *= ds
            J[k, 2] *= ds
    c = g0 = g1 = gg2 = a00 = a10 = a11 = a20 = a21 = a22 = 0.0
    for k in range(m):
        j0 = J[k, 0]
        j1 = J[k, 1]
        j2 = J[k, 2]
        r = y[k] - res[k]
        c += r * r
        g0 += j0 * r
        g1 += j1 * r
        gg2 += j2 * r
        a00 += j0 * j0
        a10 += j1 * j0
        a11 += j1 * j1
        a20 += j2 * j0
        a21 += j2 * j1
        a22 += j2 * j2
    g[0] = g0
    g[1] = g1
    g[2] = gg2
    A[0, 0] = a00
    A[1, 0] = A[0, 1] = a10
    A[1, 1] = a11
    A[2, 0] = A[0, 2] = a20
    A[2, 1] = A[1, 2] = a21
    A[2, 2] = a22
    return c


@njit(error_model="numpy", _nrt=False)
def _solve3(M, b, x):
    """Solve the 3x3 symmetric positive definite system M x = b (Cholesky); False if not SPD."""
    l00 = M[0, 0]
    if not l00 > 0.0:
        return False
    l00 = math.sqrt(l00)
    l10 = M[1, 0] / l00
    l20 = M[2, 0] / l00
    d1 = M[1, 1] - l10 * l10
    if not d1 > 0.0:
        return False
    l11 = math.sqrt(d1)
    l21 = (M[2, 1] - l20 * l10) / l11
    d2 = M[2, 2] - l20 * l20 - l21 * l21
    if not d2 > 0.0:
        return False
    l22 = math.sqrt(d2)
    z0 = b[0] / l00
    z1 = (b[1] - l10 * z0) / l11
    z2 = (b[2] - l20 * z0 - l21 * z1) / l22
    x[2] = z2 / l22
    x[1] = (z1 - l21 * x[2]) / l11
    x[0] = (z0 - l10 * x[1] - l20 * x[2]) / l00
    return math.isfinite(x[0]) and math.isfinite(x[1]) and math.isfinite(x[2])


@njit(error_model="numpy", _nrt=False)
def _freeze(M, d, i):
    """Hold parameter ``i`` fixed in the step system M x = d."""
    for j in range(3):
        M[i, j] = 0.0
        M[j, i] = 0.0
    M[i, i] = 1.0
    d[i] = 0.0


@njit(error_model="numpy", _nrt=False)
def _shear(M, d, a):
    """Rewrite the step system M x = d (n x n, n = d.size; parameters 0 and 1 are W and F)
    for the coordinates (W, u = F + a W, ...), in which the fat bound F >= -a W is u >= 0:
    M <- T^T M T, d <- T^T d with T the map back (F = u - a W). A step x found in these
    coordinates is mapped back by ``x[1] -= a x[0]``."""
    m00 = M[0, 0] - 2.0 * a * M[1, 0] + a * a * M[1, 1]
    for j in range(1, d.size):
        v = M[0, j] - a * M[1, j]
        M[0, j] = v
        M[j, 0] = v
    M[0, 0] = m00
    d[0] = d[0] - a * d[1]


@njit(error_model="numpy", _nrt=False)
def _lm(y, t, cr, ci, uniform, nz, p, lo, hi, fat_floor, max_iter, xtol, ftol, J, res, A, M, g, d,
        pt, At, gt):
    """Projected Levenberg-Marquardt from ``p`` (updated in place). Returns
    (cost, converged, iterations). A trial point's normal equations are summed with its
    cost (into ``At``, ``gt``), so an accepted step needs no second pass over the echoes;
    on return ``A``, ``g`` hold J^T J and J^T (y - S) at ``p``. Bounds: W >= 0,
    F >= -fat_floor W (signed fat, docs/fatwater.md "Fat bound and PDFF rule"), R2* in [lo, hi]."""
    cost = _jac(y, t, cr, ci, p, uniform, nz, J, res, A, g)
    lam = _LAMBDA0
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        # active set: a parameter on a bound with the descent direction g pointing out.
        # The fat bound F >= -a W is oblique: on it, the step is taken in (W, u = F + a W,
        # R2*) with u held (F follows W along the bound), where W's descent is g0 - a g1
        fat_on = p[1] <= -fat_floor * p[0] and g[1] <= 0.0
        gw = g[0] - fat_floor * g[1] if fat_on else g[0]
        free0 = not (p[0] <= 0.0 and gw <= 0.0)
        free2 = not ((p[2] <= lo and g[2] <= 0.0) or (p[2] >= hi and g[2] >= 0.0))
        accepted = False
        while lam <= _LAMBDA_MAX:
            for i in range(3):
                for j in range(3):
                    M[i, j] = A[i, j]
                d[i] = g[i]
            if fat_on:
                _shear(M, d, fat_floor)
            for i in range(3):
                M[i, i] = M[i, i] * (1.0 + lam) + 1e-300
            if not free0:
                _freeze(M, d, 0)
            if fat_on:
                _freeze(M, d, 1)
            if not free2:
                _freeze(M, d, 2)
            if not _solve3(M, d, pt):
                lam *= 10.0
                continue
            if fat_on:
                pt[1] -= fat_floor * pt[0]
            for i in range(3):
                pt[i] += p[i]
            pt[0] = max(pt[0], 0.0)
            pt[1] = max(pt[1], -fat_floor * pt[0])
            pt[2] = min(max(pt[2], lo), hi)
            amp_scale = abs(pt[0]) + abs(pt[1])
            if (abs(pt[0] - p[0]) <= xtol * amp_scale and abs(pt[1] - p[1]) <= xtol * amp_scale
                    and abs(pt[2] - p[2]) <= xtol * (abs(pt[2]) + 1e-3)
                    and p[0] > 0.0 and pt[0] > 0.0 and p[1] > -fat_floor * p[0]
                    and pt[1] > -fat_floor * pt[0] and lo < p[2] < hi and lo < pt[2] < hi):
                # a step below xtol between interior points (strictly inside every bound):
                # converged at p, whose cost and normal equations are known, so pt is not
                # evaluated (one Jacobian pass less per fit; the result differs from taking
                # the step by less than xtol). A step onto or off a bound is still taken,
                # so that the status (BOUND_HIT) and values on a bound stay as they were
                return cost, True, n_iter
            ct = _jac(y, t, cr, ci, pt, uniform, nz, J, res, At, gt)
            if ct < cost:
                accepted = True
                break
            lam *= 10.0
        if not accepted:
            return cost, True, n_iter  # no descent step left: a (constrained) minimum
        amp_scale = abs(pt[0]) + abs(pt[1])
        small = (abs(pt[0] - p[0]) <= xtol * amp_scale and abs(pt[1] - p[1]) <= xtol * amp_scale
                 and abs(pt[2] - p[2]) <= xtol * (abs(pt[2]) + 1e-3))
        flat = cost - ct <= ftol * cost
        for i in range(3):
            p[i] = pt[i]
            g[i] = gt[i]
            for j in range(3):
                A[i, j] = At[i, j]
        cost = ct
        lam = max(lam * 0.1, 1e-12)
        if small or flat:
            return cost, True, n_iter
    return cost, False, n_iter


#: Echoes below the noise threshold that the signal-echo run of :func:`_signal_echoes`
#: steps over. [D] A design choice, measured (docs/fatwater.md "Which echoes count"): an
#: echo near opposed phase dips alone (the dips of the trains used lie >= 2 echo spacings
#: apart), while the floor after the decay is a run of echoes; 1 keeps healthy fatty voxels
#: (<= 0.4 % flagged where >= 5 echoes carry signal at SNR 20-50) and passes 1.6 % of
#: pure-noise voxels whatever the echo count (any 3 of m echoes: 3.6 % at 6, 21.5 % at 12).
RUN_GAP_ECHOES = 1
#: Signal echoes the fat-water fits need (3 magnitude parameters; the complex fit's 5
#: real parameters need 3 complex echoes): fewer gives status BELOW_NOISE.
MIN_SIGNAL_ECHOES = 3


def pure_noise_below_probability(m: int, p: float) -> float:
    """Probability that a voxel of ``m`` pure-noise echoes is BELOW_NOISE, each echo
    passing the threshold independently with probability ``p`` (``exp(-k_sigma^2 / 2)`` at
    every channel count, :func:`r2mri.noise.noise_floor_threshold`): fewer than
    ``MIN_SIGNAL_ECHOES`` in the leading run of :func:`_signal_echoes` (exact, a Markov
    chain over (count, consecutive misses)).

    Examples
    --------
    >>> import math
    >>> round(pure_noise_below_probability(12, math.exp(-2.0)), 4)  # k_sigma = 2
    0.9839
    """
    alive = {(0, 0): 1.0}
    below = 0.0
    for _ in range(int(m)):
        nxt: dict = {}
        for (n, miss), q in alive.items():
            up = (min(n + 1, MIN_SIGNAL_ECHOES), 0)
            nxt[up] = nxt.get(up, 0.0) + q * p
            if miss + 1 > RUN_GAP_ECHOES:  # the run ends here
                below += q * (1.0 - p) if n < MIN_SIGNAL_ECHOES else 0.0
            else:
                nxt[(n, miss + 1)] = nxt.get((n, miss + 1), 0.0) + q * (1.0 - p)
        alive = nxt
    return below + sum(q for (n, _), q in alive.items() if n < MIN_SIGNAL_ECHOES)


@njit(error_model="numpy", _nrt=False)
def _signal_echoes(y, thr):
    """Echoes of ``y`` above ``thr`` in the leading run: counted from the first echo
    until ``RUN_GAP_ECHOES + 1`` consecutive echoes are at or below ``thr`` (an isolated
    opposed-phase dip does not end the run, the noise floor does; noise spikes after it
    are not counted). Shared by the magnitude and complex fits' BELOW_NOISE test."""
    n = 0
    miss = 0
    for k in range(y.size):
        if y[k] > thr:
            n += 1
            miss = 0
        else:
            miss += 1
            if miss > RUN_GAP_ECHOES:
                break
    return n


@njit(error_model="numpy")
def _start(y, t, lo, hi, s2n, thr, p):
    """Amplitude A and R2* from a log-linear fit of the magnitude (weights y^2). With noise
    (``s2n = 2 n sigma^2 > 0``) the floor is removed from the second moment,
    ``A_k ~ sqrt(y_k^2 - 2 n sigma^2)`` (E[M^2] = A^2 + 2 n sigma^2, r2mri.noise), and only
    echoes above the noise threshold ``thr`` are used (the first two at least)."""
    sw = st = stt = sl = stl = 0.0
    used = 0
    for k in range(y.size):
        a2 = y[k] * y[k] - s2n
        if a2 <= 0.0 or (y[k] <= thr and used >= 2):
            continue
        used += 1
        q = a2
        l = 0.5 * math.log(a2)
        sw += q
        st += q * t[k]
        stt += q * t[k] * t[k]
        sl += q * l
        stl += q * t[k] * l
    det = sw * stt - st * st
    if det > 0.0:
        r = -(sw * stl - st * sl) / det
        icpt = (stt * sl - st * stl) / det
    else:
        r = lo
        icpt = math.log(max(y.max(), 1e-300))
    r = min(max(r, lo), hi)
    p[0] = math.exp(min(icpt, 700.0))
    p[2] = r


@njit(error_model="numpy")
def _fit_voxel(y, t, cr, ci, uniform, nz, floor_sigmas, lo, hi, fat_floor, max_iter, xtol, ftol, rule, J,
               res, A, M, g, d, pt, p, q, o, At, gt):
    """Fit one voxel from both starts (swap rule); write the maps to ``o`` (NOUT,)."""
    m = y.size
    sigma = nz[0]
    s2n = 2.0 * nz[1] * sigma * sigma
    thr = floor_sigmas * sigma  # noise threshold (r2mri.noise.noise_floor_threshold, channel-aware)
    _start(y, t, lo, hi, s2n, thr, q)
    amp = q[0]
    r0 = q[2]
    p[0] = 0.9 * amp
    p[1] = 0.1 * amp
    p[2] = r0
    cw, convw, itw = _lm(y, t, cr, ci, uniform, nz, p, lo, hi, fat_floor, max_iter, xtol, ftol, J,
                         res, A, M, g, d, pt, At, gt)
    if rule == RULE_LIVER and p[1] <= p[0]:
        # the water start gave PDFF <= 50 %: the liver rule keeps it unless the fat start
        # also ends at PDFF <= 50 % with a lower residual, which did not happen in 300,000
        # test voxels (docs/fatwater.md, "Speed"), so the fat start is not fitted
        q[0] = p[0]
        q[1] = p[1]
        q[2] = p[2]
        cf, convf, itf = cw, convw, 0
        fat_fitted = False
    else:
        fat_fitted = True
        q[0] = 0.1 * amp
        q[1] = 0.9 * amp
        q[2] = r0
        cf, convf, itf = _lm(y, t, cr, ci, uniform, nz, q, lo, hi, fat_floor, max_iter, xtol, ftol,
                             J, res, A, M, g, d, pt, At, gt)
    fat_start = cf < cw
    if rule != RULE_MIN_RESIDUAL:
        # keep the solution with PDFF <= 50 % when exactly one of the two has it
        w_low = p[1] <= p[0]
        f_low = q[1] <= q[0]
        if w_low != f_low:
            fat_start = f_low
    if fat_start:
        for i in range(3):
            p[i] = q[i]
        cost = cf
        conv = convf
    else:
        cost = cw
        conv = convw
    # covariance at the chosen solution: s^2 (J^T J)^-1, s^2 = cost / (m - 3); A holds
    # J^T J at the solution of the last fit, recomputed only if the other one was chosen
    if fat_fitted and not fat_start:
        _jac(y, t, cr, ci, p, uniform, nz, J, res, A, g)
    r2std = np.nan
    if m > 3:
        d[0] = 0.0
        d[1] = 0.0
        d[2] = 1.0
        if _solve3(A, d, pt):
            r2std = math.sqrt(max(pt[2], 0.0) * cost / (m - 3))
    mean = 0.0
    for k in range(m):
        mean += y[k]
    mean /= m
    ss = 0.0
    for k in range(m):
        ss += (y[k] - mean) ** 2
    tot = p[0] + p[1]
    o[O_W] = p[0]
    o[O_F] = p[1]
    o[O_R2] = p[2]
    o[O_R2STD] = r2std
    o[O_RMS] = math.sqrt(cost / m)
    o[O_RSQ] = 1.0 - cost / ss if ss > 0.0 else np.nan
    o[O_PDFF] = 100.0 * p[1] / tot if tot > 0.0 else np.nan
    o[O_NITER] = itw + itf
    o[O_FATSTART] = 1.0 if fat_start else 0.0
    if sigma > 0.0:  # checked first, as in the spin-echo kernels
        if _signal_echoes(y, thr) < MIN_SIGNAL_ECHOES:  # fewer signal echoes than parameters:
            return S_BELOW_NOISE  # R2* is a lower bound
    if p[2] <= lo or p[2] >= hi:
        return S_BOUND_HIT
    return S_OK if conv else S_NOT_CONVERGED


@njit(parallel=True, error_model="numpy")
def fit_chunk(y, t, cr, ci, uniform, nz, floor_sigmas, lo, hi, fat_floor, max_iter, xtol, ftol, rule, dest,
              offset, out, status):
    """Fit every row ``i`` of ``y`` (nvox, m) into column ``j`` of ``out`` (NOUT, n) float32
    and ``status`` (n,) uint8, ``j = dest[i]``, or ``offset + i`` when ``dest`` is empty."""
    nvox, m = y.shape
    nblock = (nvox + _BLOCK - 1) // _BLOCK
    for b in prange(nblock):
        J = np.empty((m, 3))
        res = np.empty(m)
        A = np.empty((3, 3))
        At = np.empty((3, 3))
        gt = np.empty(3)
        M = np.empty((3, 3))
        g = np.empty(3)
        d = np.empty(3)
        pt = np.empty(3)
        p = np.empty(3)
        q = np.empty(3)
        o = np.empty(NOUT)
        for i in range(b * _BLOCK, min(nvox, (b + 1) * _BLOCK)):
            j = dest[i] if dest.size > 0 else offset + i
            yi = y[i]
            bad = False
            allzero = True
            for k in range(m):
                v = yi[k]
                if not (math.isfinite(v) and v >= 0.0):
                    bad = True
                if v != 0.0:
                    allzero = False
            if bad or allzero:
                for r in range(NOUT):
                    out[r, j] = np.nan
                status[j] = S_BAD
                continue
            st = _fit_voxel(yi, t, cr, ci, uniform, nz, floor_sigmas, lo, hi, fat_floor, max_iter, xtol,
                            ftol, rule, J, res, A, M, g, d, pt, p, q, o, At, gt)
            for r in range(NOUT):
                out[r, j] = o[r]
            status[j] = st
