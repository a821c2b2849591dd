"""numba kernels of the voxel-wise decay fitter (private).

One parallel kernel, :func:`_fit_chunk`, fits every model: the model is a run-time
integer, so exactly one specialisation is compiled and cached (all arrays float64,
all integers int64), which keeps the first call in a fresh process fast.

Each voxel is fitted by a projected Levenberg-Marquardt iteration (Marquardt 1963,
diagonal scaling of the normal equations) for at most 4 parameters, started from a
weighted log-linear fit; the mono-exponential models (``monoexp``, ``truncated``) by
variable projection and a safeguarded Newton iteration on the rate (:func:`_vp_mono`). Work arrays are allocated once per block of ``_BLOCK`` voxels
(never per voxel); voxels are independent, so results do not depend on the number of
threads or on the block a voxel falls in.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba_setup import njit
from ..noise import _FM, _ncchi_eval

#: sha256 of r2mri/noise.py, whose numba functions are compiled into these kernels.
#: numba (0.68) keys its on-disk cache on the hash of *this* file only, so this line must
#: change whenever noise.py changes, or a cached kernel would keep the old noise code
#: (tests/test_numba_cache.py checks it; update with ``sha256sum r2mri/noise.py``).
_NOISE_PY_SHA256 = "d46f12b73804b809d3a355e5140c92421152d5f5241f625d4454ab2372ed019c"

# model ids (run-time switch inside the one kernel)
LOGLIN, MONO, OFFSET, BIEXP, NCCHI, TRUNC = 0, 1, 2, 3, 4, 5
N_PARAMS = (2, 2, 3, 4, 2, 2)

# output columns
O_S0, O_R2, O_OFFSET, O_R2STD, O_RMS, O_RSQ, O_FRAC, O_R2SLOW, O_R2FAST, O_NITER = range(10)
NOUT = 10

# status codes (r2mri.status.FitStatus; duplicated as ints for numba)
S_OK, S_NOT_CONVERGED, S_BOUND_HIT, S_BELOW_NOISE, S_TOO_FEW, S_BAD = 0, 1, 2, 3, 4, 5

_BLOCK = 128
_NGRID = 20  # rate grid points for the biexp start


@njit(error_model="numpy", fastmath=_FM)
def _loglin(y, t, w, sigma2n, out2, ly):
    """Weighted log-linear fit ln y = ln S0 - R2 t, weights y^2 (the variance of ln y is
    sigma^2 / y^2). With ``sigma2n = 2 n sigma^2 > 0`` the second-moment corrected
    amplitude sqrt(y^2 - 2 n sigma^2) is used (E[M^2] = A^2 + 2 n sigma^2). Echoes with
    ``w == 0`` or no positive amplitude are skipped. Writes (S0, R2, ln S0) to ``out2``
    and the log amplitudes to ``ly``; returns the number of echoes used (>= 2: valid)."""
    sw = 0.0
    st = 0.0
    stt = 0.0
    sl = 0.0
    stl = 0.0
    cnt = 0
    for k in range(y.size):
        if w[k] <= 0.0:
            continue
        q = y[k] * y[k] - sigma2n
        if q <= 0.0:
            continue
        l = 0.5 * math.log(q)
        ly[k] = l
        tk = t[k]
        sw += q
        st += q * tk
        stt += q * tk * tk
        sl += q * l
        stl += q * tk * l
        cnt += 1
    det = sw * stt - st * st
    if cnt < 2 or not det > 0.0:
        return 0
    slope = (sw * stl - st * sl) / det
    icpt = (stt * sl - st * stl) / det
    out2[0] = math.exp(min(icpt, 700.0))
    out2[1] = -slope
    out2[2] = icpt
    return cnt


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
        if model == NCCHI:
            mean, dmean, _ = _ncchi_eval(a, sigma, coils, lg, tab)
            f[k] = mean
            J[k, 0] = dmean * e
            J[k, 1] = -tk * a * dmean
        else:
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
def _chol_solve(M, b, npar, L, x):
    """Solve M x = b for symmetric positive definite M (npar <= 4); False if not SPD."""
    for i in range(npar):
        for j in range(i + 1):
            s = M[i, j]
            for q in range(j):
                s -= L[i, q] * L[j, q]
            if i == j:
                if not s > 0.0:
                    return False
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
    for i in range(npar):
        s = b[i]
        for q in range(i):
            s -= L[i, q] * x[q]
        x[i] = s / L[i, i]
    for i in range(npar - 1, -1, -1):
        s = x[i]
        for q in range(i + 1, npar):
            s -= L[q, i] * x[q]
        x[i] = s / L[i, i]
    for i in range(npar):
        if not math.isfinite(x[i]):
            return False
    return True


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
def _pass2(y, t, w, uniform, s0, r2, sigma, coils, lg, tab, fo, Jo, ampo):
    """One pass over the echoes for ``ncchi`` (parameters S0, R2): cost, the normal
    equations (J^T J, J^T r) and the second-order term sum_k r_k Hess(f_k) as scalars;
    model values, Jacobian and noise-free amplitude per echo into ``fo``, ``Jo``,
    ``ampo`` (zeros for echoes with weight 0). With f = E(A), A = S0 e, e = exp(-R2 t):
    d2f/dS0^2 = E'' e^2, d2f/dS0 dR2 = -t e (E' + A E''), d2f/dR2^2 = t^2 A (E' + A E'')."""
    cost = 0.0
    a00 = 0.0
    a01 = 0.0
    a11 = 0.0
    g0 = 0.0
    g1 = 0.0
    h00 = 0.0
    h01 = 0.0
    h11 = 0.0
    e = math.exp(-r2 * t[0])
    q = math.exp(-r2 * (t[1] - t[0]))
    for k in range(y.size):
        tk = t[k]
        if k > 0:
            if uniform:
                e *= q
            else:
                e = math.exp(-r2 * tk)
        if w[k] == 0.0:
            fo[k] = 0.0
            Jo[k, 0] = 0.0
            Jo[k, 1] = 0.0
            ampo[k] = 0.0
            continue
        a = s0 * e
        fm, d, d2 = _ncchi_eval(a, sigma, coils, lg, tab)
        j0 = d * e
        j1 = -tk * a * d
        fo[k] = fm
        Jo[k, 0] = j0
        Jo[k, 1] = j1
        ampo[k] = a
        r = y[k] - fm
        cost += r * r
        a00 += j0 * j0
        a01 += j0 * j1
        a11 += j1 * j1
        g0 += j0 * r
        g1 += j1 * r
        c = r * (d + a * d2)
        h00 += r * d2 * e * e
        h01 -= tk * e * c
        h11 += tk * tk * a * c
    return cost, a00, a01, a11, g0, g1, h00, h01, h11


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


@njit(error_model="numpy", fastmath=_FM, inline="always")
def _lm2(y, t, w, uniform, p, sigma, coils, lg, tab, r2_lo, r2_hi, max_iter, xtol, ftol,
         f, J, amp, fn, Jn, ampn):
    """Damped Newton (Levenberg-Marquardt form) for ``ncchi``'s (S0, R2) with scalar 2x2
    algebra; updates ``p`` in place and leaves ``f``, ``J``, ``amp`` at the solution.
    Returns (converged, iterations).

    The damped matrix is the full Hessian of the cost, J^T J - sum_k r_k Hess(f_k), when
    it is positive definite, else J^T J (Gauss-Newton): Gauss-Newton alone converges only
    linearly where residuals are not small against the model's curvature (the noise
    floor at high R2: a tail of 6-11 iterations); with the Hessian the convergence is
    quadratic, and the minimiser is the same. A step is kept only if it lowers the cost
    (else the damping grows x10). Besides the step and cost tests, it stops when the
    step sequence predicts the remaining error: with a contraction rate
    rho = step_k / step_(k-1) < 0.5, the distance to the limit is at most
    step_k rho / (1 - rho)."""
    s0 = p[0]
    r2 = p[1]
    prev_rel = 0.0
    cost, a00, a01, a11, g0, g1, s00, s01, s11 = _pass2(y, t, w, uniform, s0, r2, sigma, coils,
                                                        lg, tab, f, J, amp)
    lam = 1e-3
    n_iter = 0
    converged = False
    while n_iter < max_iter:
        n_iter += 1
        q00 = a00 - s00
        q01 = a01 - s01
        q11 = a11 - s11
        if not (q00 > 0.0 and q11 > 0.0 and q00 * q11 - q01 * q01 > 0.0):
            q00 = a00
            q01 = a01
            q11 = a11
        dmax = max(q00, q11)
        improved = False
        n0 = s0
        n1 = r2
        c_n = cost
        b00 = a00
        b01 = a01
        b11 = a11
        k0 = g0
        k1 = g1
        t00 = s00
        t01 = s01
        t11 = s11
        # active set: a parameter on its bound with the gradient pointing outwards stays
        fix0 = s0 <= 0.0 and g0 <= 0.0
        fix1 = (r2 <= r2_lo and g1 <= 0.0) or (r2 >= r2_hi and g1 >= 0.0)
        while lam <= 1e16:
            m00 = q00 + lam * max(q00, 1e-15 * dmax)
            m11 = q11 + lam * max(q11, 1e-15 * dmax)
            if fix0 and fix1:
                break
            elif fix1:
                n0 = s0 + g0 / m00
                n1 = r2
            elif fix0:
                n0 = s0
                n1 = r2 + g1 / m11
            else:
                det = m00 * m11 - q01 * q01
                if not det > 0.0:
                    lam *= 10.0
                    continue
                n0 = s0 + (m11 * g0 - q01 * g1) / det
                n1 = r2 + (m00 * g1 - q01 * g0) / det
            if not (math.isfinite(n0) and math.isfinite(n1)):
                lam *= 10.0
                continue
            if n0 < 0.0:
                n0 = 0.0
            if n1 < r2_lo:
                n1 = r2_lo
            elif n1 > r2_hi:
                n1 = r2_hi
            c_n, b00, b01, b11, k0, k1, t00, t01, t11 = _pass2(y, t, w, uniform, n0, n1, sigma,
                                                               coils, lg, tab, fn, Jn, ampn)
            if c_n < cost:
                improved = True
                break
            if c_n == cost:
                break  # the step changes nothing: at the minimum to precision
            lam *= 10.0
        if not improved:
            converged = True
            break
        rel = max(abs(n0 - s0) / (abs(s0) + 1e-12), abs(n1 - r2) / (abs(r2) + 1e-12))
        small = rel <= xtol
        if prev_rel > 0.0:
            rho = rel / prev_rel
            if rho < 0.5 and rel * rho / (1.0 - rho) <= xtol:
                small = True
        prev_rel = rel
        tiny = cost - c_n <= ftol * cost
        for k in range(y.size):
            f[k] = fn[k]
            J[k, 0] = Jn[k, 0]
            J[k, 1] = Jn[k, 1]
            amp[k] = ampn[k]
        s0 = n0
        r2 = n1
        cost = c_n
        a00 = b00
        a01 = b01
        a11 = b11
        g0 = k0
        g1 = k1
        s00 = t00
        s01 = t01
        s11 = t11
        lam = max(lam * 0.1, 1e-12)
        if small or tiny or cost == 0.0:
            converged = True
            break
    p[0] = s0
    p[1] = r2
    return converged, n_iter


@njit(error_model="numpy", fastmath=_FM, inline="always")
def _fit_voxel(y, t, cfg, tab, w, f, fn, amp, ampn, J, Jn, p, pn, g, dx, gr, act, A, M, L, grid,
               Eg, Gg, yE, out):
    """Fit one voxel ``y`` (work arrays preallocated by the caller); returns its status.
    ``cfg`` holds the scalar settings (see ``_fit_block``)."""
    model = int(cfg[0])
    uniform = cfg[1] > 0.0
    sigma = cfg[2]
    coils = int(cfg[3])
    lg = cfg[4]
    k_sigma = cfg[5]
    r2_lo = cfg[6]
    r2_hi = cfg[7]
    max_iter = int(cfg[8])
    xtol = cfg[9]
    ftol = cfg[10]
    m = y.size
    for c in range(out.size):
        out[c] = np.nan
    # --- input checks
    allzero = True
    for k in range(m):
        v = y[k]
        if not math.isfinite(v) or v < 0.0:
            return S_BAD
        if v != 0.0:
            allzero = False
    if allzero:
        return S_BAD
    npar = N_PARAMS[model]
    # --- echo weights, noise floor
    below = False
    for k in range(m):
        w[k] = 1.0
    if sigma > 0.0:
        thr = k_sigma * sigma
        nabove = 0
        for k in range(m):
            if y[k] > thr:
                nabove += 1
            else:
                break  # leading run of echoes above k sigma
        below = nabove < 2
        if model == TRUNC:
            use = max(nabove, 2)
            for k in range(use, m):
                w[k] = 0.0
    if model == LOGLIN:
        for k in range(m):
            if y[k] <= 0.0:
                w[k] = 0.0
    used = 0.0
    for k in range(m):
        used += w[k]
    if used < npar:
        return S_TOO_FEW
    # --- initial values: weighted log-linear (second-moment corrected for ncchi)
    sigma2n = 2.0 * coils * sigma * sigma if model == NCCHI else 0.0
    ok = _loglin(y, t, w, sigma2n, pn, fn)
    if ok < 2 and sigma2n > 0.0:
        ok = _loglin(y, t, w, 0.0, pn, fn)
    if ok < 2:
        # fewer than 2 positive echoes: start flat at the largest value
        ymax = 0.0
        for k in range(m):
            ymax = max(ymax, y[k])
        pn[0] = ymax
        pn[1] = r2_lo
    s0i = pn[0]
    r2i = pn[1]
    log_s0i = pn[2]
    if model == BIEXP:
        p[0] = 0.5 * s0i
        p[1] = 0.5 * r2i
        p[2] = 0.5 * s0i
        p[3] = 2.0 * r2i
        # better start: best pair of rates on a geometric grid, amplitudes >= 0 by
        # linear least squares (Gram matrix Gg of the grid exponentials Eg, per block)
        ng = grid.size
        yy = 0.0
        for k in range(m):
            yy += y[k] * y[k]
        for a in range(ng):
            s = 0.0
            for k in range(m):
                s += y[k] * Eg[a, k]
            yE[a] = s
        best = yy
        for a in range(ng):
            for b in range(a + 1, ng):
                det = Gg[a, a] * Gg[b, b] - Gg[a, b] * Gg[a, b]
                if not det > 0.0:
                    continue
                c1 = (Gg[b, b] * yE[a] - Gg[a, b] * yE[b]) / det
                c2 = (Gg[a, a] * yE[b] - Gg[a, b] * yE[a]) / det
                if c1 <= 0.0 or c2 <= 0.0:
                    continue
                rss = yy - c1 * yE[a] - c2 * yE[b]
                if rss < best:
                    best = rss
                    p[0] = c1
                    p[1] = grid[a]
                    p[2] = c2
                    p[3] = grid[b]
    else:
        p[0] = s0i
        p[1] = r2i
        if model == OFFSET:
            p[2] = 0.0
    loglin_out = r2i < r2_lo or r2i > r2_hi
    _clip(model, p, npar, r2_lo, r2_hi)
    n_iter = 0
    converged = True
    # residual variance source: 0 = residuals, 1 = known sigma (trunc), 2 = ncchi sandwich
    if model == LOGLIN:
        _model(MONO, t, uniform, p, sigma, coils, lg, tab, f, J, amp)
    elif model == MONO or model == TRUNC:
        converged, n_iter = _vp_mono(y, t, w, uniform, p, r2_lo, r2_hi, max_iter, xtol, amp)
        for k in range(m):
            a = p[0] * amp[k]
            f[k] = a
            J[k, 0] = amp[k]
            J[k, 1] = -t[k] * a
            amp[k] = a
    elif npar == 2:
        converged, n_iter = _lm2(y, t, w, uniform, p, sigma, coils, lg, tab, r2_lo, r2_hi,
                                 max_iter, xtol, ftol, f, J, amp, fn, Jn, ampn)
    else:
        _model(model, t, uniform, p, sigma, coils, lg, tab, f, J, amp)
        cost = _cost(y, f, w)
        lam = 1e-3
        converged = False
        while n_iter < max_iter:
            n_iter += 1
            _normal(J, y, f, w, npar, A, g)
            dmax = 0.0
            for i in range(npar):
                dmax = max(dmax, A[i, i])
            # active set: parameters on a bound whose gradient points outwards, and
            # parameters without influence (a vanished component's rate), stay fixed
            for i in range(npar):
                fixed = A[i, i] <= 1e-30 * dmax
                if not (model == OFFSET and i == 2):
                    if i % 2 == 0:
                        fixed = fixed or (p[i] <= 0.0 and g[i] <= 0.0)
                    else:
                        fixed = fixed or (p[i] <= r2_lo and g[i] <= 0.0) or (p[i] >= r2_hi and g[i] >= 0.0)
                        if model == BIEXP and p[i - 1] <= 0.0:
                            fixed = True
                gr[i] = 0.0 if fixed else g[i]
                act[i] = 1.0 if fixed else 0.0
            improved = False
            while lam <= 1e16:
                for i in range(npar):
                    for j in range(npar):
                        M[i, j] = 0.0 if (act[i] > 0.0 or act[j] > 0.0) else A[i, j]
                    if act[i] > 0.0:
                        M[i, i] = 1.0
                    else:
                        M[i, i] += lam * max(A[i, i], 1e-15 * dmax)
                if not _chol_solve(M, gr, npar, L, dx):
                    lam *= 10.0
                    continue
                for i in range(npar):
                    pn[i] = p[i] + dx[i]
                _clip(model, pn, npar, r2_lo, r2_hi)
                _model(model, t, uniform, pn, sigma, coils, lg, tab, fn, Jn, amp)
                cost_n = _cost(y, fn, w)
                if cost_n < cost:
                    improved = True
                    break
                if cost_n == cost:
                    break  # the step changes nothing: at the minimum to precision
                lam *= 10.0
            if not improved:
                converged = True  # no reduction possible: at the minimum to precision
                break
            small = True
            for i in range(npar):
                if abs(pn[i] - p[i]) > xtol * (abs(p[i]) + 1e-12):
                    small = False
                p[i] = pn[i]
            for k in range(m):
                f[k] = fn[k]
                for i in range(npar):
                    J[k, i] = Jn[k, i]
            tiny_decrease = cost - cost_n <= ftol * cost
            cost = cost_n
            # biexp: a gentler decrease of the damping after a successful step (x0.5, not
            # x0.1): in its ill-conditioned valleys the x0.1/x10 cycle rejected about every
            # second step (FerriScan volume: 40 model evaluations per voxel -> 20)
            lam = max(lam * (0.5 if model == BIEXP else 0.1), 1e-12)
            if small or tiny_decrease or cost == 0.0:
                converged = True
                break
        # final state (f, J, amp) at p
        _model(model, t, uniform, p, sigma, coils, lg, tab, f, J, amp)
    # --- derived maps
    if model == BIEXP and p[1] > p[3]:  # order rates: component 1 slow, 2 fast
        tmp = p[0]
        p[0] = p[2]
        p[2] = tmp
        tmp = p[1]
        p[1] = p[3]
        p[3] = tmp
        _model(model, t, uniform, p, sigma, coils, lg, tab, f, J, amp)
    if model == BIEXP:
        s0 = p[0] + p[2]
        r2 = (p[0] * p[1] + p[2] * p[3]) / s0 if s0 > 0.0 else p[3]
        out[O_FRAC] = p[2] / s0 if s0 > 0.0 else np.nan
        out[O_R2SLOW] = p[1]
        out[O_R2FAST] = p[3]
    else:
        s0 = p[0]
        r2 = p[1]
    if model == OFFSET:
        out[O_OFFSET] = p[2]
    out[O_S0] = s0
    out[O_R2] = r2
    out[O_NITER] = n_iter
    rss = 0.0
    sy = 0.0
    for k in range(m):
        r = y[k] - f[k]
        rss += w[k] * r * r
        sy += w[k] * y[k]
    ybar = sy / used
    tss = 0.0
    for k in range(m):
        d = y[k] - ybar
        tss += w[k] * d * d
    out[O_RMS] = math.sqrt(rss / used)
    out[O_RSQ] = 1.0 - rss / tss if tss > 0.0 else np.nan
    # --- standard error of the reported R2: var = grad^T Cov grad
    if model == LOGLIN:
        # weighted LS in log space (weights y^2), residual variance from the same fit
        sw = 0.0
        st = 0.0
        stt = 0.0
        rl = 0.0
        for k in range(m):
            if w[k] > 0.0:
                q = y[k] * y[k]
                d = fn[k] - (log_s0i + r2i * (-t[k]))
                sw += q
                st += q * t[k]
                stt += q * t[k] * t[k]
                rl += q * d * d
        det = sw * stt - st * st
        if used > 2.0 and det > 0.0:
            out[O_R2STD] = math.sqrt(rl / (used - 2.0) * sw / det)
    elif npar == 2:
        # closed-form 2x2: z = (J^T J)^-1 e_R2 = (-a01, a00) / det
        a00 = 0.0
        a01 = 0.0
        a11 = 0.0
        for k in range(m):
            if w[k] > 0.0:
                a00 += J[k, 0] * J[k, 0]
                a01 += J[k, 0] * J[k, 1]
                a11 += J[k, 1] * J[k, 1]
        det = a00 * a11 - a01 * a01
        if det > 0.0:
            z0 = -a01 / det
            z1 = a00 / det
            var = np.nan
            if model == NCCHI:
                # sandwich (J^T J)^-1 J^T V J (J^T J)^-1 with V_k = Var M_k of the
                # non-central chi magnitude: A_k^2 + 2 n sigma^2 - E[M_k]^2
                var = 0.0
                for k in range(m):
                    if w[k] > 0.0:
                        vk = max(amp[k] * amp[k] + 2.0 * coils * sigma * sigma - f[k] * f[k], 0.0)
                        jz = J[k, 0] * z0 + J[k, 1] * z1
                        var += vk * jz * jz
            elif model == TRUNC and sigma > 0.0:
                var = sigma * sigma * z1
            elif used > 2.0:
                var = rss / (used - 2.0) * z1
            if var >= 0.0:
                out[O_R2STD] = math.sqrt(var)
    else:
        _normal(J, y, f, w, npar, A, g)
        for i in range(npar):
            g[i] = 0.0
        if model == BIEXP:
            if s0 > 0.0:
                g[0] = (p[1] - r2) / s0
                g[1] = p[0] / s0
                g[2] = (p[3] - r2) / s0
                g[3] = p[2] / s0
        else:
            g[1] = 1.0
        if _chol_solve(A, g, npar, L, dx):
            var = np.nan
            if model == NCCHI:
                # sandwich (J^T J)^-1 J^T V J (J^T J)^-1 with V_k = Var M_k of the
                # non-central chi magnitude: A_k^2 + 2 n sigma^2 - E[M_k]^2
                var = 0.0
                for k in range(m):
                    vk = amp[k] * amp[k] + 2.0 * coils * sigma * sigma - f[k] * f[k]
                    vk = max(vk, 0.0)
                    jz = 0.0
                    for i in range(npar):
                        jz += J[k, i] * dx[i]
                    var += w[k] * vk * jz * jz
            else:
                s2 = np.nan
                if model == TRUNC and sigma > 0.0:
                    s2 = sigma * sigma
                elif used > npar:
                    s2 = rss / (used - npar)
                gz = 0.0
                for i in range(npar):
                    gz += g[i] * dx[i]
                var = s2 * gz
            if var >= 0.0:
                out[O_R2STD] = math.sqrt(var)
    # --- status
    if below:
        return S_BELOW_NOISE
    if not converged:
        return S_NOT_CONVERGED
    if model == LOGLIN:
        if loglin_out:
            return S_BOUND_HIT
        return S_OK
    if s0 <= 0.0:
        return S_BOUND_HIT
    rtol = 1e-9
    for i in (1, 3):
        if i >= npar:
            break
        if model == BIEXP and p[i - 1] <= 0.0:
            continue  # a vanished component's rate is irrelevant
        if p[i] <= r2_lo + rtol * (abs(r2_lo) + 1.0) or p[i] >= r2_hi * (1.0 - rtol):
            return S_BOUND_HIT
    return S_OK


@njit(error_model="numpy", fastmath=_FM, inline="always")
def _fit_block(y, t, cfg, tab, start, stop, dest, offset, out, status):
    """Fit rows ``start:stop`` with one set of work arrays (allocated once per block);
    row ``i`` goes to column ``dest[i]`` of ``out`` (or ``offset + i`` when ``dest`` is
    empty)."""
    m = y.shape[1]
    model = int(cfg[0])
    r2_lo = cfg[6]
    r2_hi = cfg[7]
    yv = np.zeros(m)
    ov = np.zeros(NOUT)
    w = np.zeros(m)
    f = np.zeros(m)
    fn = np.zeros(m)
    amp = np.zeros(m)
    ampn = np.zeros(m)
    J = np.zeros((m, 4))
    Jn = np.zeros((m, 4))
    p = np.zeros(4)
    pn = np.zeros(4)
    g = np.zeros(4)
    dx = np.zeros(4)
    gr = np.zeros(4)
    act = np.zeros(4)
    A = np.zeros((4, 4))
    M = np.zeros((4, 4))
    L = np.zeros((4, 4))
    # rate grid for the biexp start: _NGRID geometric steps over the rate bounds,
    # [D] from 0.1/TE_last (slower looks constant) to 7/TE_first (faster has decayed
    # below 0.1 % at the first echo), inside the rate bounds
    grid = np.empty(_NGRID)
    glo = max(r2_lo, 0.1 / t[m - 1], 0.1)
    ghi = min(r2_hi, 7.0 / t[0]) if t[0] > 0.0 else r2_hi
    if not ghi > 2.0 * glo:
        glo = max(r2_lo, 0.1)
        ghi = r2_hi
    for a in range(_NGRID):
        grid[a] = glo * (ghi / glo) ** (a / (_NGRID - 1.0))
    Eg = np.empty((_NGRID, m))
    Gg = np.empty((_NGRID, _NGRID))
    yE = np.empty(_NGRID)
    if model == BIEXP:
        for a in range(_NGRID):
            for k in range(m):
                Eg[a, k] = math.exp(-grid[a] * t[k])
        for ga in range(_NGRID):
            for gb in range(_NGRID):
                acc = 0.0
                for k in range(m):
                    acc += Eg[ga, k] * Eg[gb, k]
                Gg[ga, gb] = acc
    for i in range(start, stop):
        for k in range(m):
            yv[k] = y[i, k]
        j = dest[i] if dest.size > 0 else offset + i
        status[j] = _fit_voxel(yv, t, cfg, tab, w, f, fn, amp, ampn, J, Jn, p, pn, g, dx, gr, act, A,
                               M, L, grid, Eg, Gg, yE, ov)
        for c in range(NOUT):
            out[c, j] = ov[c]


@njit(parallel=True, error_model="numpy", fastmath=_FM)
def _fit_chunk(y, t, uniform, model, sigma, coils, tab, k_sigma, r2_lo, r2_hi, max_iter, xtol,
               ftol, dest, offset, out, status):
    """Fit every row ``i`` of ``y`` (nvox, m) float64 into column ``j`` of the float32 maps
    ``out`` (NOUT, n_total) and of ``status`` (n_total,) uint8, with ``j = dest[i]`` (int64
    voxel indices), or ``j = offset + i`` when ``dest`` is empty. Writing the caller's
    maps in place saves a scatter per map and chunk. ``tab`` is ``noise.ncchi_table(coils)``
    for ``ncchi`` (any (k, 4) float64 array otherwise)."""
    nvox = y.shape[0]
    cfg = np.empty(11)
    cfg[0] = model
    cfg[1] = 1.0 if uniform else 0.0
    cfg[2] = sigma
    cfg[3] = coils
    cfg[4] = math.lgamma(coils + 0.5) - math.lgamma(coils)
    cfg[5] = k_sigma
    cfg[6] = r2_lo
    cfg[7] = r2_hi
    cfg[8] = max_iter
    cfg[9] = xtol
    cfg[10] = ftol
    nblock = (nvox + _BLOCK - 1) // _BLOCK
    for b in prange(nblock):
        start = b * _BLOCK
        stop = min(nvox, start + _BLOCK)
        _fit_block(y, t, cfg, tab, start, stop, dest, offset, out, status)
