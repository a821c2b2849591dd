"""Model values and least-squares pieces of the per-voxel decay fit (private): the
models' values and Jacobian (:func:`_model`), the weighted cost and normal equations, the
bound projection, and the variable-projection solver of the mono-exponential models
(:func:`_vp_mono`).

:mod:`r2mri.fitting._lm_kernel` compiles them into its kernel (records this file's
sha256, ``_LM_MODEL_PY_SHA256``). Moved unchanged from ``_kernels.py`` (branch
kernsplit); the numba cache guards below are explained in :mod:`r2mri.fitting._kernels`.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba_setup import njit
from ..noise import _FM
from ._kernel_shared import BIEXP, OFFSET

#: sha256 of r2mri/noise.py, whose numba functions or fast-math flags (``_FM``) are compiled
#: into these kernels. numba keys its on-disk cache on the content of *this* file only, so
#: this line must change whenever noise.py changes, or a cached kernel would keep the old
#: noise code (tests/test_numba_cache.py checks it; update with ``sha256sum r2mri/noise.py``).
_NOISE_PY_SHA256 = "2380f3ebe3ec584c01f2bd8527b481b9412788565786ec1d6f807edcee656287"
#: sha256 of r2mri/fitting/_kernel_shared.py, whose numba helpers and constants are compiled
#: into these kernels (same reason as above; tests/test_kernel_cache_guards.py checks it;
#: update with ``sha256sum r2mri/fitting/_kernel_shared.py``).
_KERNEL_SHARED_PY_SHA256 = "0e0eb90981aa5a1144df9d1783f2a4918e15e8702e87b473d4cf773908d6fb9b"


@njit(error_model="numpy", fastmath=_FM)
def _model(model, t, uniform, p, sigma, coils, lg, tab, f, J, amp):
    """Model values ``f`` and Jacobian ``J`` (df/dp) at parameters ``p``.
    ``amp`` receives the noise-free amplitude (used by the ncchi covariance).
    With ``uniform`` (equally spaced echo times) e^{-R t_k} is built from two
    exponentials by repeated multiplication (relative error ~ k * 1e-16)."""
    m = t.size
    dt = t[1] - t[0]
    if model == BIEXP:
        e1 = math.exp(-p[1] * t[0])
        e2 = math.exp(-p[3] * t[0])
        q1 = math.exp(-p[1] * dt)
        q2 = math.exp(-p[3] * dt)
        for k in range(m):
            tk = t[k]
            if k > 0:
                if uniform:
                    e1 *= q1
                    e2 *= q2
                else:
                    e1 = math.exp(-p[1] * tk)
                    e2 = math.exp(-p[3] * tk)
            f[k] = p[0] * e1 + p[2] * e2
            J[k, 0] = e1
            J[k, 1] = -tk * p[0] * e1
            J[k, 2] = e2
            J[k, 3] = -tk * p[2] * e2
            amp[k] = f[k]
        return
    e = math.exp(-p[1] * t[0])
    q = math.exp(-p[1] * dt)
    for k in range(m):
        tk = t[k]
        if k > 0:
            if uniform:
                e *= q
            else:
                e = math.exp(-p[1] * tk)
        a = p[0] * e
        amp[k] = a
        f[k] = a
        J[k, 0] = e
        J[k, 1] = -tk * a
        if model == OFFSET:
            f[k] += p[2]
            J[k, 2] = 1.0


@njit(error_model="numpy", fastmath=_FM)
def _cost(y, f, w):
    c = 0.0
    for k in range(y.size):
        r = y[k] - f[k]
        c += w[k] * r * r
    return c


@njit(error_model="numpy", fastmath=_FM)
def _normal(J, y, f, w, npar, A, g):
    for i in range(npar):
        g[i] = 0.0
        for j in range(npar):
            A[i, j] = 0.0
    for k in range(y.size):
        if w[k] == 0.0:
            continue
        r = y[k] - f[k]
        for i in range(npar):
            ji = w[k] * J[k, i]
            g[i] += ji * r
            for j in range(i + 1):
                A[i, j] += ji * J[k, j]
    for i in range(npar):
        for j in range(i + 1, npar):
            A[i, j] = A[j, i]


@njit(error_model="numpy", fastmath=_FM)
def _clip(model, p, npar, r2_lo, r2_hi):
    for i in range(npar):
        if model == OFFSET and i == 2:
            continue  # the offset C is unbounded
        if i % 2 == 0:  # amplitudes
            if p[i] < 0.0:
                p[i] = 0.0
        else:  # rates
            if p[i] < r2_lo:
                p[i] = r2_lo
            elif p[i] > r2_hi:
                p[i] = r2_hi


@njit(error_model="numpy", fastmath=_FM, inline="always")
def _vp_mono(y, t, w, uniform, p, r2_lo, r2_hi, max_iter, xtol, e):
    """Mono-exponential least squares by variable projection (Golub & Pereyra 1973,
    SIAM J Numer Anal 10:413): for a fixed rate R the best amplitude is linear,
    S0(R) = a / b with a = sum w y e, b = sum w e^2, e_k = exp(-R t_k), and the cost
    sum w (y - S0 e)^2 = sum w y^2 - a^2 / b. Maximising psi(R) = ln(a^2 / b) is a 1-D
    problem solved by Newton's method, with
    psi'/2 = b1/b - a1/a and psi''/2 = Var_ye(t) - 2 Var_ee(t)
    (a1 = sum w t y e, b1 = sum w t e^2; Var_ye, Var_ee: variances of t under the
    weights w y e and w e^2), safeguarded by a bracket [L, H] of the maximiser that
    each evaluation narrows: a step beyond a rate bound tries the bound itself, any
    other step outside the bracket (or psi'' >= 0) is replaced by bisection.
    S0 >= 0 holds by construction (y >= 0). Same minimiser as the 2-parameter problem,
    in fewer, cheaper iterations than Levenberg-Marquardt.

    Starts from ``p[1]`` (inside the bounds); writes (S0, R2) to ``p`` and e_k at the
    solution to ``e``. Stops when the step is below ``xtol`` relative, or when the
    quadratic convergence of Newton's method predicts the remaining error
    (C step^2 with C = step / previous_step^2) to be. Returns (converged, iterations)."""
    r = p[1]
    lo = r2_lo
    hi = r2_hi
    n_iter = 0
    prev = 0.0
    done = False
    converged = False
    m = y.size
    dt = t[1] - t[0]
    while True:
        a = 0.0
        a1 = 0.0
        a2 = 0.0
        b = 0.0
        b1 = 0.0
        b2 = 0.0
        ek = math.exp(-r * t[0])
        q = math.exp(-r * dt)
        for k in range(m):
            tk = t[k]
            if k > 0:
                if uniform:
                    ek *= q
                else:
                    ek = math.exp(-r * tk)
            e[k] = ek
            if w[k] == 0.0:
                continue
            ye = y[k] * ek
            ee = ek * ek
            a += ye
            a1 += tk * ye
            a2 += tk * tk * ye
            b += ee
            b1 += tk * ee
            b2 += tk * tk * ee
        if not (a > 0.0 and b > 0.0):
            # every weighted echo is zero: amplitude 0 (on its bound), rate undetermined
            p[0] = 0.0
            p[1] = r
            return True, n_iter
        if done or n_iter >= max_iter:
            break
        n_iter += 1
        ma = a1 / a
        mb = b1 / b
        g = mb - ma
        h = (a2 / a - ma * ma) - 2.0 * (b2 / b - mb * mb)
        if g > 0.0:
            lo = r  # psi increases with R: the maximiser lies above r
        elif g < 0.0:
            hi = r
        else:
            converged = True
            break
        rn = r - g / h if h < 0.0 else np.nan
        if not (rn > lo and rn < hi):
            if rn >= hi and hi == r2_hi and r < hi:
                rn = hi  # the step leaves the feasible range: try the bound itself
            elif rn <= lo and lo == r2_lo and r > lo:
                rn = lo
            else:
                rn = 0.5 * (lo + hi)
        step = abs(rn - r)
        tol = xtol * (abs(rn) + 1e-12)
        done = step <= tol or hi - lo <= tol
        if prev > 0.0 and step < prev:
            done = done or step * step * step / (prev * prev) <= tol
        prev = step
        r = rn
        converged = done
    p[0] = a / b
    p[1] = r
    return converged, n_iter
