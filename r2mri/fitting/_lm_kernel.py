"""The per-voxel kernel of every decay model but ``ncchi`` (private): a projected
Levenberg-Marquardt iteration, and variable projection for the mono-exponential models.

Each voxel is fitted by a projected Levenberg-Marquardt iteration (Marquardt 1963,
diagonal scaling of the normal equations) for at most 4 parameters, started from a
weighted log-linear fit; the mono-exponential models (``monoexp``, ``truncated``) by
variable projection and a safeguarded Newton iteration on the rate
(:func:`r2mri.fitting._lm_model._vp_mono`). Work arrays are allocated once per block of
``_BLOCK`` voxels (never per voxel); voxels are independent, so results do not depend on
the number of threads or on the block a voxel falls in.

The parallel :func:`_fit_chunk_voxel` runs it over blocks of voxels (the model is a
run-time value in the settings array, :func:`r2mri.fitting._kernel_shared.settings`);
:func:`r2mri.fitting._kernels.fit_chunk` dispatches. Moved unchanged from ``_kernels.py``
(branch kernsplit); the numba cache guards below are explained in
:mod:`r2mri.fitting._kernels`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba_setup import njit
from ..noise import _FM
from ._kernel_shared import (BIEXP, LOGLIN, MONO, N_PARAMS, NCCHI, NOUT, O_FRAC, O_NITER, O_OFFSET,
                             O_R2, O_R2FAST, O_R2SLOW, O_R2STD, O_RMS, O_RSQ, O_S0, OFFSET, S_BAD,
                             S_BELOW_NOISE, S_BOUND_HIT, S_NOT_CONVERGED, S_OK, S_TOO_FEW, TRUNC,
                             _BLOCK, _chol_solve, _flat_start, _loglin, _settings)
from ._lm_model import _clip, _cost, _model, _normal, _vp_mono

#: sha256 of r2mri/noise.py, whose numba functions or fast-math flags (``_FM``) are compiled
#: into these kernels. numba keys its on-disk cache on the content of *this* file only, so
#: this line must change whenever noise.py changes, or a cached kernel would keep the old
#: noise code (tests/test_numba_cache.py checks it; update with ``sha256sum r2mri/noise.py``).
_NOISE_PY_SHA256 = "2380f3ebe3ec584c01f2bd8527b481b9412788565786ec1d6f807edcee656287"
#: sha256 of r2mri/fitting/_kernel_shared.py, whose numba helpers and constants are compiled
#: into these kernels (same reason as above; tests/test_kernel_cache_guards.py checks it;
#: update with ``sha256sum r2mri/fitting/_kernel_shared.py``).
_KERNEL_SHARED_PY_SHA256 = "0e0eb90981aa5a1144df9d1783f2a4918e15e8702e87b473d4cf773908d6fb9b"
#: sha256 of r2mri/fitting/_lm_model.py, whose numba functions are compiled into this kernel
#: (tests/test_kernel_cache_guards.py checks it; update with
#: ``sha256sum r2mri/fitting/_lm_model.py``).
_LM_MODEL_PY_SHA256 = "e86c4720b7b58ca9b99c6215d04683d81f80903c9c30a768e620ae909b1b5527"

_NGRID = 20  # rate grid points for the biexp start



_INLINE = dict(error_model="numpy", fastmath=_FM, inline="always")
# [D] The steps of _fit_voxel below are numba-inlined (inline="always") into it, so the
# kernel compiles to the same single function as when they were one body (same maps to
# the last bit, benchmarks/split_golden.py; speed: benchmarks/README.md, "split2").


@njit(**_INLINE)
def _valid_voxel(y):
    """True if every echo of ``y`` is finite and non-negative and one is non-zero."""
    allzero = True
    for k in range(y.size):
        v = y[k]
        if not math.isfinite(v) or v < 0.0:
            return False
        if v != 0.0:
            allzero = False
    return not allzero


@njit(**_INLINE)
def _echo_weights(y, model, sigma, floor_sigmas, w):
    """Echo weights ``w`` (0 or 1) of a voxel: ``truncated`` keeps the leading run of
    echoes above ``floor_sigmas * sigma`` (at least 2), ``loglinear`` drops echoes <= 0.
    Returns ``(below, used)``: fewer than 2 echoes above the floor, sum of the weights."""
    m = y.size
    below = False
    for k in range(m):
        w[k] = 1.0
    if sigma > 0.0:
        thr = floor_sigmas * sigma
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
    return below, used


@njit(**_INLINE)
def _biexp_start(y, s0i, r2i, grid, Eg, Gg, yE, p):
    """Bi-exponential start ``p``: half the log-linear amplitude at 0.5 and 2 times its
    rate, replaced by the best pair of rates on the geometric ``grid`` with amplitudes
    >= 0 by linear least squares (Gram matrix ``Gg`` of the grid exponentials ``Eg``)."""
    m = y.size
    p[0] = 0.5 * s0i
    p[1] = 0.5 * r2i
    p[2] = 0.5 * s0i
    p[3] = 2.0 * r2i
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


@njit(**_INLINE)
def _start(y, t, w, model, sigma, coils, r2_lo, pn, fn, grid, Eg, Gg, yE, p):
    """Start values ``p`` from a weighted log-linear fit (second-moment corrected for
    ncchi; flat if fewer than 2 echoes are usable). The log-linear ``(S0, R2, ln S0)``
    stay in ``pn`` and its log amplitudes in ``fn``; returns ``(r2i, log_s0i)``."""
    sigma2n = 2.0 * coils * sigma * sigma if model == NCCHI else 0.0
    ok = _loglin(y, t, w, sigma2n, pn, fn)
    if ok < 2 and sigma2n > 0.0:
        ok = _loglin(y, t, w, 0.0, pn, fn)
    if ok < 2:
        _flat_start(y, y.size, r2_lo, pn)
    s0i = pn[0]
    r2i = pn[1]
    log_s0i = pn[2]
    if model == BIEXP:
        _biexp_start(y, s0i, r2i, grid, Eg, Gg, yE, p)
    else:
        p[0] = s0i
        p[1] = r2i
        if model == OFFSET:
            p[2] = 0.0
    return r2i, log_s0i


@njit(**_INLINE)
def _active_set(model, p, g, A, npar, r2_lo, r2_hi, gr, act):
    """Parameters held fixed this iteration (``act`` 1, their gradient ``gr`` 0): on a
    bound with the gradient pointing outwards, or without influence (a vanished
    component's rate). Returns the largest diagonal entry of ``A``."""
    dmax = 0.0
    for i in range(npar):
        dmax = max(dmax, A[i, i])
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
    return dmax


@njit(**_INLINE)
def _damped_step(y, t, w, model, uniform, sigma, coils, lg, tab, r2_lo, r2_hi, npar, p, A, gr,
                 act, dmax, lam, cost, M, L, dx, pn, fn, Jn, amp):
    """Raise the damping ``lam`` until the step from ``p`` lowers the cost (trial point
    ``pn`` with model ``fn``, ``Jn``). Returns ``(improved, lam, cost_n)``."""
    improved = False
    cost_n = cost
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
    return improved, lam, cost_n


@njit(**_INLINE)
def _levenberg_marquardt(y, t, w, model, uniform, sigma, coils, lg, tab, r2_lo, r2_hi, max_iter,
                         xtol, ftol, npar, p, f, J, fn, Jn, pn, amp, g, gr, act, A, M, L, dx):
    """Projected Levenberg-Marquardt from ``p`` (every model but the mono-exponential
    ones and ncchi); leaves ``f``, ``J``, ``amp`` at the final ``p``. Returns
    ``(converged, n_iter)``."""
    m = y.size
    n_iter = 0
    _model(model, t, uniform, p, sigma, coils, lg, tab, f, J, amp)
    cost = _cost(y, f, w)
    lam = 1e-3
    converged = False
    while n_iter < max_iter:
        n_iter += 1
        _normal(J, y, f, w, npar, A, g)
        dmax = _active_set(model, p, g, A, npar, r2_lo, r2_hi, gr, act)
        improved, lam, cost_n = _damped_step(y, t, w, model, uniform, sigma, coils, lg, tab, r2_lo,
                                             r2_hi, npar, p, A, gr, act, dmax, lam, cost, M, L, dx,
                                             pn, fn, Jn, amp)
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
    return converged, n_iter


@njit(**_INLINE)
def _maps(y, t, w, model, uniform, sigma, coils, lg, tab, used, p, f, J, amp, out):
    """Write S0, R2, the bi-exponential and offset maps, RMS and R^2 of the fit at ``p``
    (bi-exponential rates ordered slow, fast first). Returns ``(s0, r2, rss)``."""
    m = y.size
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
    return s0, r2, rss


@njit(**_INLINE)
def _r2_std_loglin(y, t, w, fn, log_s0i, r2i, used):
    """SE of the log-linear R2: weighted LS in log space (weights y^2), residual
    variance from the same fit (``fn`` holds the log amplitudes); NaN if undefined."""
    sw = 0.0
    st = 0.0
    stt = 0.0
    rl = 0.0
    for k in range(y.size):
        if w[k] > 0.0:
            q = y[k] * y[k]
            d = fn[k] - (log_s0i + r2i * (-t[k]))
            sw += q
            st += q * t[k]
            stt += q * t[k] * t[k]
            rl += q * d * d
    det = sw * stt - st * st
    if used > 2.0 and det > 0.0:
        return math.sqrt(rl / (used - 2.0) * sw / det)
    return np.nan


@njit(**_INLINE)
def _r2_std_two(w, J, model, sigma, used, rss):
    """SE of R2 of a 2-parameter fit: closed-form 2x2, z = (J^T J)^-1 e_R2 = (-a01,
    a00) / det, the residual variance known (``truncated`` with sigma) or from the
    residuals; NaN if undefined."""
    a00 = 0.0
    a01 = 0.0
    a11 = 0.0
    for k in range(w.size):
        if w[k] > 0.0:
            a00 += J[k, 0] * J[k, 0]
            a01 += J[k, 0] * J[k, 1]
            a11 += J[k, 1] * J[k, 1]
    det = a00 * a11 - a01 * a01
    if det > 0.0:
        z1 = a00 / det
        var = np.nan
        if model == TRUNC and sigma > 0.0:
            var = sigma * sigma * z1
        elif used > 2.0:
            var = rss / (used - 2.0) * z1
        if var >= 0.0:
            return math.sqrt(var)
    return np.nan


@njit(**_INLINE)
def _r2_std_general(y, f, w, J, model, sigma, used, rss, npar, p, s0, r2, A, g, L, dx):
    """SE of the reported R2 of a 3- or 4-parameter fit: var = grad^T Cov grad (the
    bi-exponential's R2 is the amplitude-weighted mean rate); NaN if undefined."""
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
            return math.sqrt(var)
    return np.nan


@njit(**_INLINE)
def _fit_status(model, below, converged, loglin_out, s0, p, npar, r2_lo, r2_hi):
    """The voxel's status code: below the noise, not converged, a bound hit, or OK."""
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
def _fit_voxel(y, t, cfg, tab, w, f, fn, amp, ampn, J, Jn, p, pn, g, dx, gr, act, A, M, L, grid,
               Eg, Gg, yE, out):
    """Fit one voxel ``y`` (work arrays preallocated by the caller); returns its status.
    ``cfg`` holds the scalar settings (see :func:`_settings`). Every model but ``ncchi``
    (fitted by :func:`_ncchi_block`)."""
    model = int(cfg[0])
    uniform, sigma, coils, lg, floor_sigmas, r2_lo, r2_hi, max_iter, xtol, ftol = _settings(cfg)
    m = y.size
    for c in range(out.size):
        out[c] = np.nan
    if not _valid_voxel(y):
        return S_BAD
    npar = N_PARAMS[model]
    below, used = _echo_weights(y, model, sigma, floor_sigmas, w)
    if used < npar:
        return S_TOO_FEW
    r2i, log_s0i = _start(y, t, w, model, sigma, coils, r2_lo, pn, fn, grid, Eg, Gg, yE, p)
    loglin_out = r2i < r2_lo or r2i > r2_hi
    _clip(model, p, npar, r2_lo, r2_hi)
    n_iter = 0
    converged = True
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
    else:
        converged, n_iter = _levenberg_marquardt(y, t, w, model, uniform, sigma, coils, lg, tab, r2_lo,
                                                 r2_hi, max_iter, xtol, ftol, npar, p, f, J, fn, Jn,
                                                 pn, amp, g, gr, act, A, M, L, dx)
    s0, r2, rss = _maps(y, t, w, model, uniform, sigma, coils, lg, tab, used, p, f, J, amp, out)
    out[O_NITER] = n_iter
    # standard error of the reported R2
    if model == LOGLIN:
        out[O_R2STD] = _r2_std_loglin(y, t, w, fn, log_s0i, r2i, used)
    elif npar == 2:
        out[O_R2STD] = _r2_std_two(w, J, model, sigma, used, rss)
    else:
        out[O_R2STD] = _r2_std_general(y, f, w, J, model, sigma, used, rss, npar, p, s0, r2, A, g, L, dx)
    return _fit_status(model, below, converged, loglin_out, s0, p, npar, r2_lo, r2_hi)


# [D] inlined into the parallel loop of _fit_chunk_voxel: compiled as a function of its
# own it compiled faster but monoexp fitted ~25 % slower (1-thread voxels per CPU second,
# median of 5 alternating runs, 2026-12-02: 2.06 M against 2.76 M inlined).
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
def _fit_chunk_voxel(y, t, cfg, tab, dest, offset, out, status):
    """Every model but ``ncchi``, in parallel over blocks of ``_BLOCK`` voxels (see
    :func:`fit_chunk`)."""
    nvox = y.shape[0]
    nblock = (nvox + _BLOCK - 1) // _BLOCK
    for b in prange(nblock):
        start = b * _BLOCK
        _fit_block(y, t, cfg, tab, start, min(nvox, start + _BLOCK), dest, offset, out, status)
