"""numba kernels of the voxel-wise decay fitter (private).

One parallel kernel, :func:`_fit_chunk`, fits every model: the model is a run-time
integer, so exactly one specialisation is compiled and cached (all arrays float64,
all integers int64), which keeps the first call in a fresh process fast.

Each voxel is fitted by a projected Levenberg-Marquardt iteration (Marquardt 1963,
diagonal scaling of the normal equations) for at most 4 parameters, started from a
weighted log-linear fit. Work arrays are allocated once per block of ``_BLOCK`` voxels
(never per voxel); voxels are independent, so results do not depend on the number of
threads or on the block a voxel falls in.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba_setup import njit
from ..noise import _ncchi_mean_deriv

# model ids (run-time switch inside the one kernel)
LOGLIN, MONO, OFFSET, BIEXP, NCCHI, TRUNC = 0, 1, 2, 3, 4, 5
N_PARAMS = (2, 2, 3, 4, 2, 2)

# output columns
O_S0, O_R2, O_OFFSET, O_R2STD, O_RMS, O_RSQ, O_FRAC, O_R2SLOW, O_R2FAST, O_NITER = range(10)
NOUT = 10

# status codes (r2mri.status.FitStatus; duplicated as ints for numba)
S_OK, S_NOT_CONVERGED, S_BOUND_HIT, S_BELOW_NOISE, S_TOO_FEW, S_BAD = 0, 1, 2, 3, 4, 5

_BLOCK = 128


@njit
def _loglin(y, t, w, sigma2n, out2):
    """Weighted log-linear fit ln y = ln S0 - R2 t, weights y^2 (the variance of ln y is
    sigma^2 / y^2). With ``sigma2n = 2 n sigma^2 > 0`` the second-moment corrected
    amplitude sqrt(y^2 - 2 n sigma^2) is used (E[M^2] = A^2 + 2 n sigma^2). Echoes with
    ``w == 0`` or no positive amplitude are skipped. Writes (S0, R2) to ``out2``;
    returns the number of echoes used (the fit is valid when >= 2)."""
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
    return cnt


@njit
def _model(model, t, p, sigma, coils, lg, f, J, amp):
    """Model values ``f`` and Jacobian ``J`` (df/dp) at parameters ``p``.
    ``amp`` receives the noise-free amplitude (used by the ncchi covariance)."""
    for k in range(t.size):
        tk = t[k]
        if model == BIEXP:
            e1 = math.exp(-p[1] * tk)
            e2 = math.exp(-p[3] * tk)
            f[k] = p[0] * e1 + p[2] * e2
            J[k, 0] = e1
            J[k, 1] = -tk * p[0] * e1
            J[k, 2] = e2
            J[k, 3] = -tk * p[2] * e2
            amp[k] = f[k]
        else:
            e = math.exp(-p[1] * tk)
            a = p[0] * e
            amp[k] = a
            if model == NCCHI:
                mean, dmean = _ncchi_mean_deriv(a, sigma, coils, lg)
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


@njit
def _cost(y, f, w):
    c = 0.0
    for k in range(y.size):
        r = y[k] - f[k]
        c += w[k] * r * r
    return c


@njit
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


@njit
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


@njit
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


@njit
def _fit_voxel(y, t, model, sigma, coils, lg, k_sigma, r2_lo, r2_hi, max_iter, xtol,
               w, f, J, fn, Jn, amp, p, pn, A, g, M, L, dx, out):
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
    ok = _loglin(y, t, w, sigma2n, pn)
    if ok < 2 and sigma2n > 0.0:
        ok = _loglin(y, t, w, 0.0, pn)
    if ok < 2:
        # fewer than 2 positive echoes: start flat at the largest value
        ymax = 0.0
        for k in range(m):
            ymax = max(ymax, y[k])
        pn[0] = ymax
        pn[1] = r2_lo
    s0i = pn[0]
    r2i = pn[1]
    if model == BIEXP:
        p[0] = 0.5 * s0i
        p[1] = 0.5 * r2i
        p[2] = 0.5 * s0i
        p[3] = 2.0 * r2i
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
        _model(MONO, t, p, sigma, coils, lg, f, J, amp)
    else:
        _model(model, t, p, sigma, coils, lg, f, J, amp)
        cost = _cost(y, f, w)
        lam = 1e-3
        converged = False
        while n_iter < max_iter:
            n_iter += 1
            _normal(J, y, f, w, npar, A, g)
            dmax = 0.0
            for i in range(npar):
                dmax = max(dmax, A[i, i])
            improved = False
            while lam <= 1e16:
                for i in range(npar):
                    for j in range(npar):
                        M[i, j] = A[i, j]
                    M[i, i] += lam * max(A[i, i], 1e-15 * dmax)
                if not _chol_solve(M, g, npar, L, dx):
                    lam *= 10.0
                    continue
                for i in range(npar):
                    pn[i] = p[i] + dx[i]
                _clip(model, pn, npar, r2_lo, r2_hi)
                _model(model, t, pn, sigma, coils, lg, fn, Jn, amp)
                cost_n = _cost(y, fn, w)
                if cost_n <= cost:
                    improved = True
                    break
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
            tiny_decrease = cost - cost_n <= 1e-15 * cost
            cost = cost_n
            lam = max(lam * 0.1, 1e-12)
            if small or tiny_decrease or cost == 0.0:
                converged = True
                break
        # final state (f, J, amp) at p
        _model(model, t, p, sigma, coils, lg, f, J, amp)
    # --- derived maps
    if model == BIEXP and p[1] > p[3]:  # order rates: component 1 slow, 2 fast
        tmp = p[0]
        p[0] = p[2]
        p[2] = tmp
        tmp = p[1]
        p[1] = p[3]
        p[3] = tmp
        _model(model, t, p, sigma, coils, lg, f, J, amp)
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
                d = math.log(y[k]) - (math.log(s0) - r2 * t[k])
                sw += q
                st += q * t[k]
                stt += q * t[k] * t[k]
                rl += q * d * d
        det = sw * stt - st * st
        if used > 2.0 and det > 0.0:
            out[O_R2STD] = math.sqrt(rl / (used - 2.0) * sw / det)
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


@njit(parallel=True)
def _fit_chunk(y, t, model, sigma, coils, k_sigma, r2_lo, r2_hi, max_iter, xtol, out, status):
    """Fit every row of ``y`` (nvox, m) float64; write ``out`` (nvox, NOUT), ``status``."""
    nvox, m = y.shape
    lg = math.lgamma(coils + 0.5) - math.lgamma(coils)
    nblock = (nvox + _BLOCK - 1) // _BLOCK
    for b in prange(nblock):
        w = np.empty(m)
        f = np.empty(m)
        fn = np.empty(m)
        amp = np.empty(m)
        J = np.zeros((m, 4))
        Jn = np.zeros((m, 4))
        p = np.zeros(4)
        pn = np.zeros(4)
        A = np.zeros((4, 4))
        M = np.zeros((4, 4))
        L = np.zeros((4, 4))
        g = np.zeros(4)
        dx = np.zeros(4)
        start = b * _BLOCK
        stop = min(nvox, start + _BLOCK)
        for i in range(start, stop):
            status[i] = _fit_voxel(y[i], t, model, sigma, coils, lg, k_sigma, r2_lo, r2_hi,
                                   max_iter, xtol, w, f, J, fn, Jn, amp, p, pn, A, g, M, L,
                                   dx, out[i])
