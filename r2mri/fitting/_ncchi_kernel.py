"""The ``ncchi`` solver (private): a damped Newton iteration on ``_LANES`` voxels in
lock-step.

The noise-corrected model ``ncchi`` (S0, R2 with f = E[M](S0 e^{-R2 t})) has its own
block solver, :func:`_ncchi_block`: a damped Newton iteration with the full 2x2 Hessian
that runs ``_LANES`` voxels side by side. Each lane is a small state machine that stops
at every cost evaluation; one :func:`_ncchi_pass` then evaluates all lanes' points, with
the echo loop outside and a branch-free loop over the lanes inside, which LLVM
vectorises (one voxel alone is a chain of dependent exponentials, table look-ups and
sums, bound by latency), and :func:`_ncchi_control` takes every lane's accept / reject
/ stopping decision and next trial point in one branch-free loop. Exponentials and
logarithms there come from :func:`_vexp` and :func:`_vlog` (vectorisable, within 2 ulp
of the library functions), the log-linear starts of a block from one batch. A lane that
has finished writes its maps and takes the next voxel of the block. Only the scalar
sums of a pass are kept (cost, normal equations, second-order term and the sums of the
sandwich covariance), no per-echo arrays. The arithmetic of each voxel is its own, so
results do not depend on its lane-mates (nor on threads or chunks).

:func:`r2mri.fitting._kernels.fit_chunk` dispatches to :func:`_ncchi_block`;
:mod:`r2mri.fitting._threads` spreads it over Python threads. Moved unchanged from
``_kernels.py`` (branch kernsplit); the numba cache guards below are explained in
:mod:`r2mri.fitting._kernels`.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba_setup import njit
from ..noise import _ASYM1_D, _ASYM1_M, _FM, TABLE_STEPS_PER_UNIT, _ncchi_mean_deriv
from ._kernel_shared import (NOUT, O_NITER, O_R2, O_R2STD, O_RMS, O_RSQ, O_S0, S_BAD,
                             S_BELOW_NOISE, S_BOUND_HIT, S_NOT_CONVERGED, S_OK, S_TOO_FEW,
                             _BLOCK, _flat_start, _loglin, _settings)

#: sha256 of r2mri/noise.py, whose numba functions or fast-math flags (``_FM``) are compiled
#: into these kernels. numba keys its on-disk cache on the content of *this* file only, so
#: this line must change whenever noise.py changes, or a cached kernel would keep the old
#: noise code (tests/test_numba_cache.py checks it; update with ``sha256sum r2mri/noise.py``).
_NOISE_PY_SHA256 = "2380f3ebe3ec584c01f2bd8527b481b9412788565786ec1d6f807edcee656287"
#: sha256 of r2mri/fitting/_kernel_shared.py, whose numba helpers and constants are compiled
#: into these kernels (same reason as above; tests/test_kernel_cache_guards.py checks it;
#: update with ``sha256sum r2mri/fitting/_kernel_shared.py``).
_KERNEL_SHARED_PY_SHA256 = "0e0eb90981aa5a1144df9d1783f2a4918e15e8702e87b473d4cf773908d6fb9b"


# --- ncchi: damped Newton on _LANES voxels in lock-step -------------------------------
# [D] The solver's helpers (_ncchi_pass, _ncchi_control, _ncchi_starts, _vlog,
# _ncchi_propose, _ncchi_finish) are numba functions of their own, not numba-inlined
# (inline="always") into _ncchi_block: numba's IR inlining and typing of the one large
# function cost ~2.3 s more of a first run's compile (10.2 -> 7.9 CPU s), and LLVM
# inlines them after linking anyway (1-thread speed unchanged: ratio 0.98, 15 alternated
# in-process runs at load 9; identical maps). Issue 14, benchmarks/README.md.

#: Voxels fitted side by side by the ``ncchi`` solver. [D] Two 8-double AVX-512 vectors
#: per operation; one pass cost 27 ns per lane with 16 lanes, 34 ns with 8 (Zen 4,
#: benchmark echo times, micro-benchmark of _ncchi_pass).
_LANES = 16
# Rows of the flat lane work array Z of _ncchi_pass (Z[row * _LANES + lane]; constant
# row offsets let LLVM prove the rows independent and vectorise over the lanes):
# point (S0, R2), e^{-R2 t_k}, e^{-R2 dt}, datum y_k, table position u and cubic
# coefficients c0..c3, E and E' above the table (n > 1), scratch bits of _vexp, then
# the _NSUM sums.
_R_N0, _R_N1, _R_E, _R_Q, _R_Y, _R_U, _R_C0, _R_C1, _R_C2, _R_C3, _R_F, _R_D, _R_X, _R_S = range(14)
_NSUM = 12
# then each lane's state (_ncchi_control): the sums at its current point, the point
# (S0, R2), damping, previous relative step, iterations, phase (0 idle, 1 start point
# pending, 2 trial point pending), the damped matrix q00, q01, q11 and its largest
# diagonal, the fixed-parameter flags, and the done / converged / slow flags (0 or 1)
_R_CS = _R_S + _NSUM
(_R_S0, _R_R2, _R_LAM, _R_PREV, _R_NIT, _R_PH, _R_Q00, _R_Q01, _R_Q11, _R_DMAX, _R_FX0,
 _R_FX1, _R_DONE, _R_CONV, _R_SLOW) = range(_R_CS + _NSUM, _R_CS + _NSUM + 15)
_NROW = _R_CS + _NSUM + 15
# the 9-term asymptotic sums of noise._ncchi_mean_deriv for n = 1, as named constants
_AM0, _AM1, _AM2, _AM3, _AM4, _AM5, _AM6, _AM7, _AM8 = _ASYM1_M
_AD0, _AD1, _AD2, _AD3, _AD4, _AD5, _AD6, _AD7, _AD8 = _ASYM1_D


# fdlibm's split of ln 2 (e_log.c): ln2_hi has 32 trailing zero bits, so e * ln2_hi is
# exact for every double exponent e
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 (fdlibm's split of ln 2 above),
# |r| <= ln 2 / 2; exp(r) by its Taylor series to r^13 / 13! (A&S 4.2.1): the first term
# left out is < 0.347^14 / 14! = 4e-18 [D] (double precision).
_INV_LN2 = 1.0 / math.log(2.0)
_EC = tuple(1.0 / math.factorial(_j) for _j in range(14))
(_EC0, _EC1, _EC2, _EC3, _EC4, _EC5, _EC6, _EC7, _EC8, _EC9, _EC10, _EC11, _EC12,
 _EC13) = _EC


# [D] its own function with contraction as the only fast-math flag: reassociation would
# merge the two-part reduction x - k ln2_hi - k ln2_lo (25 ulp errors at x = -100).
@njit(error_model="numpy", fastmath={"contract"})
def _vexp(Z, tk, dst):
    """``Z`` row ``dst`` = exp(-R2 tk) for every lane (R2 in row ``_R_N1``, >= 0) in a loop
    LLVM vectorises (``math.exp`` is a scalar library call); 2^k is built in the bits of
    row ``_R_X``. Arguments below -708 are raised to -708 (exp = 3e-308: the amplitude
    is then 0 to the table's resolution). Within 2 ulp of the library exponential
    (tests/test_fit_accuracy.py)."""
    nl = _LANES
    Zi = Z.view(np.int64)
    for l in range(nl):
        x = -Z[_R_N1 * nl + l] * tk
        x = x if x > -708.0 else -708.0
        k = math.floor(x * _INV_LN2 + 0.5)
        kf = float(k)
        r = (x - kf * _LN2_HI) - kf * _LN2_LO
        p = (((((((((((((_EC13 * r + _EC12) * r + _EC11) * r + _EC10) * r + _EC9) * r + _EC8)
                     * r + _EC7) * r + _EC6) * r + _EC5) * r + _EC4) * r + _EC3) * r + _EC2)
              * r + _EC1) * r + _EC0)
        Zi[_R_X * nl + l] = (k + 1023) << 52
        Z[dst * nl + l] = p * Z[_R_X * nl + l]


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_pass(Y, t, uniform, Z, sigma, coils, lg, tab, s2n):
    """One pass over the echoes for every lane ``l`` of the ``ncchi`` solver at the point
    (S0, R2) = ``Z`` rows ``_R_N0``, ``_R_N1``, data ``Y[:, l]``: into rows ``_R_S + j``
    the sums (j =) 0 cost sum r_k^2 (r = y - f); 1-3 J^T J (00, 01, 11); 4-5 J^T r;
    6-8 sum_k r_k Hess(f_k) (00, 01, 11); 9-11 J^T V J (00, 01, 11), V_k = Var M_k.

    With f = E(A), A = S0 e, e = exp(-R2 t): J = (E' e, -t A E'), d2f/dS0^2 = E'' e^2,
    d2f/dS0 dR2 = -t e (E' + A E''), d2f/dR2^2 = t^2 A (E' + A E''); V_k = A^2 + 2 n
    sigma^2 - E^2 (E[M^2] = A^2 + 2 n sigma^2), clipped at 0. ncchi weights every echo
    (weights 1). E[M] is the interpolant of :func:`r2mri.noise._ncchi_eval`: the table
    below ``TABLE_NU_MAX``, above it ``_ncchi_mean_deriv`` with E'' = 0 (for n = 1 its
    9-term sum, inlined). Per echo, scalar loops over the lanes do the exponentials and
    the table look-up; the arithmetic loop is branch-free (table and asymptotic values
    both computed, then selected) and only touches ``Z``, so LLVM vectorises it."""
    m = Y.shape[0]
    nl = _LANES
    ntab = tab.shape[0]
    scale = TABLE_STEPS_PER_UNIT / sigma
    scale2 = TABLE_STEPS_PER_UNIT * TABLE_STEPS_PER_UNIT / sigma
    h2 = 2.0 * sigma * sigma
    one = coils == 1
    for j in range(_R_S * nl, (_R_S + _NSUM) * nl):
        Z[j] = 0.0
    for k in range(m):
        tk = t[k]
        if k == 0 or not uniform:
            if k == 0 and uniform and m > 1:
                # e^{-R2 dt} into row _R_Q through row _R_E: [D] one literal destination,
                # so _vexp compiles once (a second literal cost ~0.25 s of a first run)
                _vexp(Z, t[1] - t[0], _R_E)
                for l in range(nl):
                    Z[_R_Q * nl + l] = Z[_R_E * nl + l]
            _vexp(Z, tk, _R_E)
        else:
            for l in range(nl):
                Z[_R_E * nl + l] *= Z[_R_Q * nl + l]
        for l in range(nl):
            Z[_R_Y * nl + l] = Y[k, l]
            a = math.fabs(Z[_R_N0 * nl + l] * Z[_R_E * nl + l])
            s = a * scale
            inr = s < ntab
            sc = s if inr else 0.0
            i = int(sc)
            Z[_R_U * nl + l] = sc - i
            Z[_R_C0 * nl + l] = tab[i, 0]
            Z[_R_C1 * nl + l] = tab[i, 1]
            Z[_R_C2 * nl + l] = tab[i, 2]
            Z[_R_C3 * nl + l] = tab[i, 3]
            if not (inr or one):
                Z[_R_F * nl + l], Z[_R_D * nl + l] = _ncchi_mean_deriv(a, sigma, coils, lg)
        for l in range(nl):
            e = Z[_R_E * nl + l]
            a = math.fabs(Z[_R_N0 * nl + l] * e)
            inr = a * scale < ntab
            u = Z[_R_U * nl + l]
            c0 = Z[_R_C0 * nl + l]
            c1 = Z[_R_C1 * nl + l]
            c2 = Z[_R_C2 * nl + l]
            c3 = Z[_R_C3 * nl + l]
            ux = h2 / (a * a)
            sm = ((((((((_AM8 * ux + _AM7) * ux + _AM6) * ux + _AM5) * ux + _AM4) * ux + _AM3)
                     * ux + _AM2) * ux + _AM1) * ux + _AM0)
            sd = ((((((((_AD8 * ux + _AD7) * ux + _AD6) * ux + _AD5) * ux + _AD4) * ux + _AD3)
                     * ux + _AD2) * ux + _AD1) * ux + _AD0)
            fa = a * sm if one else Z[_R_F * nl + l]
            da = sd if one else Z[_R_D * nl + l]
            fm = sigma * (c0 + u * (c1 + u * (c2 + u * c3))) if inr else fa
            d = (c1 + u * (2.0 * c2 + u * 3.0 * c3)) * TABLE_STEPS_PER_UNIT if inr else da
            d2 = (2.0 * c2 + 6.0 * u * c3) * scale2 if inr else 0.0
            j0 = d * e
            j1 = -tk * a * d
            r = Z[_R_Y * nl + l] - fm
            Z[(_R_S + 0) * nl + l] += r * r
            Z[(_R_S + 1) * nl + l] += j0 * j0
            Z[(_R_S + 2) * nl + l] += j0 * j1
            Z[(_R_S + 3) * nl + l] += j1 * j1
            Z[(_R_S + 4) * nl + l] += j0 * r
            Z[(_R_S + 5) * nl + l] += j1 * r
            c = r * (d + a * d2)
            Z[(_R_S + 6) * nl + l] += r * d2 * e * e
            Z[(_R_S + 7) * nl + l] -= tk * e * c
            Z[(_R_S + 8) * nl + l] += tk * tk * a * c
            vk = a * a + s2n - fm * fm
            vk = vk if vk > 0.0 else 0.0
            Z[(_R_S + 9) * nl + l] += vk * j0 * j0
            Z[(_R_S + 10) * nl + l] += vk * j0 * j1
            Z[(_R_S + 11) * nl + l] += vk * j1 * j1


_SQRT2_D = math.sqrt(2.0)
# 2 / (2j + 1): ln m = 2 atanh(s) = sum_j 2 s^(2j+1) / (2j + 1), s = (m - 1) / (m + 1)
# (A&S 4.1.27); |s| <= (sqrt 2 - 1) / (sqrt 2 + 1) = 0.172, s^2 <= 0.0295, so the 12th
# term is below 0.0295^12 / 25 = 2e-20 of the sum (12 terms: [D] double precision).
_LC0, _LC1, _LC2, _LC3, _LC4, _LC5, _LC6, _LC7, _LC8, _LC9, _LC10, _LC11 = (
    2.0 / (2 * _j + 1) for _j in range(12))


@njit(error_model="numpy", fastmath=_FM)
def _vlog(X, W, n):
    """``W[i] = ln X[i]`` for ``i < n``, ``X[i]`` positive and normal, in a loop LLVM
    vectorises (``math.log`` is a scalar library call): X = 2^e m with m in [1, 2) from
    the bits, m halved (e + 1) above sqrt 2, then ln X = e ln 2 + 2 atanh((m-1)/(m+1)),
    within 1 ulp of the library logarithm (tests/test_fit_accuracy.py)."""
    Xi = X.view(np.int64)
    Wi = W.view(np.int64)
    for i in range(n):
        b = Xi[i]
        e = (b >> 52) - 1023
        Wi[i] = (b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000  # 2^0 m
        mm = W[i]
        big = mm > _SQRT2_D
        mm = 0.5 * mm if big else mm
        ef = float(e + 1) if big else float(e)
        s = (mm - 1.0) / (mm + 1.0)
        z = s * s
        p = (((((((((((_LC11 * z + _LC10) * z + _LC9) * z + _LC8) * z + _LC7) * z + _LC6) * z
                   + _LC5) * z + _LC4) * z + _LC3) * z + _LC2) * z + _LC1) * z + _LC0)
        W[i] = ef * _LN2_HI + (ef * _LN2_LO + s * p)


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_starts(y, t, start, nb, sigma, floor_sigmas, s2n, r2_lo, r2_hi, code, below, P, Q, X, L,
                  W, w, yv, ly, p3):
    """Screening and start of the ``ncchi`` voxels ``start .. start + nb - 1`` (nb <=
    ``_BLOCK``), as in :func:`_fit_voxel`: ``code[v]`` -1 (fit) or the status ``S_BAD`` /
    ``S_TOO_FEW``, ``below[v]``, and the clipped start (S0, R2) in ``P[0, v]``, ``P[1, v]``:
    the weighted log-linear fit of :func:`_loglin` on the second-moment corrected
    amplitudes (echoes with y^2 <= 2 n sigma^2 left out), for the whole block at once:
    logarithms by :func:`_vlog`, sums in loops over the voxels (flat work arrays ``Q``,
    ``X``, ``L``, ``W`` with rows of ``_BLOCK``). Voxels with fewer than 2 usable echoes
    take :func:`_loglin` and its fallbacks (``w``: ones; ``yv``, ``ly``, ``p3``: work)."""
    m = y.shape[1]
    nv = _BLOCK
    for v in range(nv):
        code[v] = S_BAD
        below[v] = False
        for k in range(m):
            Q[k * nv + v] = 0.0
            X[k * nv + v] = 1.0
    for v in range(nb):
        i = start + v
        bad = False
        allzero = True
        for k in range(m):
            x = y[i, k]
            if not math.isfinite(x) or x < 0.0:
                bad = True
            if x != 0.0:
                allzero = False
        if bad or allzero:
            continue
        if sigma > 0.0:
            thr = floor_sigmas * sigma
            nabove = 0
            for k in range(m):
                if y[i, k] > thr:
                    nabove += 1
                else:
                    break  # leading run of echoes above k sigma
            below[v] = nabove < 2
        if m < 2:
            code[v] = S_TOO_FEW
            continue
        code[v] = -1
        for k in range(m):
            qk = y[i, k] * y[i, k] - s2n
            Q[k * nv + v] = qk
            X[k * nv + v] = qk if qk > 0.0 else 1.0
    _vlog(X, L, m * nv)
    for j in range(6 * nv):
        W[j] = 0.0
    for k in range(m):
        tk = t[k]
        for v in range(nv):
            qk = Q[k * nv + v]
            pos = qk > 0.0
            q = qk if pos else 0.0
            l = 0.5 * L[k * nv + v]
            W[v] += q
            W[nv + v] += q * tk
            W[2 * nv + v] += q * tk * tk
            W[3 * nv + v] += q * l
            W[4 * nv + v] += q * tk * l
            W[5 * nv + v] += 1.0 if pos else 0.0
    for v in range(nb):
        if code[v] != -1:
            continue
        sw = W[v]
        st = W[nv + v]
        stt = W[2 * nv + v]
        sl = W[3 * nv + v]
        stl = W[4 * nv + v]
        det = sw * stt - st * st
        if W[5 * nv + v] >= 2.0 and det > 0.0:
            P[0, v] = math.exp(min((stt * sl - st * stl) / det, 700.0))
            P[1, v] = -((sw * stl - st * sl) / det)
        else:
            i = start + v
            for k in range(m):
                yv[k] = y[i, k]
            ok = _loglin(yv, t, w, 0.0, p3, ly)
            if ok < 2:
                _flat_start(yv, m, r2_lo, p3)
            P[0, v] = p3[0]
            P[1, v] = p3[1]
        if P[0, v] < 0.0:
            P[0, v] = 0.0
        if P[1, v] < r2_lo:
            P[1, v] = r2_lo
        elif P[1, v] > r2_hi:
            P[1, v] = r2_hi


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_propose(s0, r2, g0, g1, q00, q01, q11, dmax, fix0, fix1, lam, r2_lo, r2_hi):
    """The inner loop of the damped Newton step of one lane, up to the next cost
    evaluation: from damping ``lam`` on, the first step that is defined and finite
    (else the damping grows x10), projected onto the bounds. Returns (found, n0, n1,
    lam); not found (both parameters fixed, or the damping above 1e16): no reduction
    possible."""
    n0 = s0
    n1 = r2
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
        return True, n0, n1, lam
    return False, n0, n1, lam


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_finish(Y, l, s0, r2, n_iter, converged, below, sigma, coils, r2_lo, r2_hi, Z, out):
    """Maps of one finished ``ncchi`` lane (as in :func:`_fit_voxel`) from the sums at
    its solution (``Z`` rows ``_R_CS + j``); returns the status. The sandwich variance of R2,
    z^T J^T V J z with z = (J^T J)^-1 e_R2 = (-a01, a00) / det, from the sums of J^T V J."""
    m = Y.shape[0]
    for c in range(NOUT):
        out[c] = np.nan
    out[O_S0] = s0
    out[O_R2] = r2
    out[O_NITER] = n_iter
    rss = Z[_R_CS * _LANES + l]
    used = float(m)
    sy = 0.0
    for k in range(m):
        sy += Y[k, l]
    ybar = sy / used
    tss = 0.0
    for k in range(m):
        d = Y[k, l] - ybar
        tss += d * d
    out[O_RMS] = math.sqrt(rss / used)
    out[O_RSQ] = 1.0 - rss / tss if tss > 0.0 else np.nan
    a00 = Z[(_R_CS + 1) * _LANES + l]
    a01 = Z[(_R_CS + 2) * _LANES + l]
    a11 = Z[(_R_CS + 3) * _LANES + l]
    det = a00 * a11 - a01 * a01
    if det > 0.0:
        z0 = -a01 / det
        z1 = a00 / det
        var = (z0 * z0 * Z[(_R_CS + 9) * _LANES + l] + 2.0 * z0 * z1 * Z[(_R_CS + 10) * _LANES + l]
               + z1 * z1 * Z[(_R_CS + 11) * _LANES + l])
        if var >= 0.0:
            out[O_R2STD] = math.sqrt(var)
    if below:
        return S_BELOW_NOISE
    if not converged:
        return S_NOT_CONVERGED
    if s0 <= 0.0:
        return S_BOUND_HIT
    rtol = 1e-9
    if r2 <= r2_lo + rtol * (abs(r2_lo) + 1.0) or r2 >= r2_hi * (1.0 - rtol):
        return S_BOUND_HIT
    return S_OK


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_control(Z, max_iter, xtol, ftol, r2_lo, r2_hi):
    """Advance every busy lane to its next cost evaluation, after :func:`_ncchi_pass`, in
    one branch-free loop over the lanes (LLVM vectorises it; every case is computed and
    selected). The damped Newton logic of :func:`_ncchi_block`: a start point is taken;
    a trial point is accepted if it lowers the cost (damping x0.1, at least 1e-12, and
    the stopping tests), ends the fit if it leaves the cost unchanged, else the damping
    grows x10; a new iteration (unless ``max_iter`` is reached) takes the damped matrix
    (Hessian if positive definite, else J^T J) and the fixed-parameter flags; then the
    next trial point, first try of :func:`_ncchi_propose`. Lanes whose first try fails
    (singular or non-finite step, damping above 1e16) are flagged slow and finished by
    :func:`_ncchi_propose` itself. Sets the done / converged flags."""
    nl = _LANES
    for l in range(nl):
        ph = Z[_R_PH * nl + l]
        busy = ph != 0.0
        isinit = ph == 1.0
        c_n = Z[_R_S * nl + l]
        cost = Z[_R_CS * nl + l]
        acc = ph == 2.0 and c_n < cost
        same = ph == 2.0 and c_n == cost
        rej = ph == 2.0 and not (c_n < cost) and not (c_n == cost)
        n0 = Z[_R_N0 * nl + l]
        n1 = Z[_R_N1 * nl + l]
        s0 = Z[_R_S0 * nl + l]
        r2 = Z[_R_R2 * nl + l]
        prev = Z[_R_PREV * nl + l]
        lam = Z[_R_LAM * nl + l]
        nit = Z[_R_NIT * nl + l]
        # accepted step: stopping tests (relative step, its predicted remainder, cost)
        rel0 = math.fabs(n0 - s0) / (math.fabs(s0) + 1e-12)
        rel1 = math.fabs(n1 - r2) / (math.fabs(r2) + 1e-12)
        rel = rel0 if rel0 > rel1 else rel1
        rho = rel / (prev if prev > 0.0 else 1.0)
        small = rel <= xtol or (prev > 0.0 and rho < 0.5 and rel * rho / (1.0 - rho) <= xtol)
        tiny = cost - c_n <= ftol * cost
        take = isinit or acc
        for j in range(_NSUM):
            Z[(_R_CS + j) * nl + l] = Z[(_R_S + j) * nl + l] if take else Z[(_R_CS + j) * nl + l]
        s0 = n0 if take else s0
        r2 = n1 if take else r2
        lam_acc = lam * 0.1
        lam_acc = lam_acc if lam_acc > 1e-12 else 1e-12
        lam = 1e-3 if isinit else (lam_acc if acc else (lam * 10.0 if rej else lam))
        prev = 0.0 if isinit else (rel if acc else prev)
        nit = 0.0 if isinit else nit
        done = same or (acc and (small or tiny or c_n == 0.0))
        step = take and not done
        out_of_iter = step and nit >= max_iter
        step = step and not out_of_iter
        # a new iteration: damped matrix and fixed parameters at the (new) current point
        nit = nit + 1.0 if step else nit
        a00 = Z[(_R_CS + 1) * nl + l]
        a01 = Z[(_R_CS + 2) * nl + l]
        a11 = Z[(_R_CS + 3) * nl + l]
        g0 = Z[(_R_CS + 4) * nl + l]
        g1 = Z[(_R_CS + 5) * nl + l]
        h00 = a00 - Z[(_R_CS + 6) * nl + l]
        h01 = a01 - Z[(_R_CS + 7) * nl + l]
        h11 = a11 - Z[(_R_CS + 8) * nl + l]
        pd = h00 > 0.0 and h11 > 0.0 and h00 * h11 - h01 * h01 > 0.0
        q00 = (h00 if pd else a00) if step else Z[_R_Q00 * nl + l]
        q01 = (h01 if pd else a01) if step else Z[_R_Q01 * nl + l]
        q11 = (h11 if pd else a11) if step else Z[_R_Q11 * nl + l]
        dmax = (q00 if q00 > q11 else q11) if step else Z[_R_DMAX * nl + l]
        fx0 = s0 <= 0.0 and g0 <= 0.0
        fx1 = (r2 <= r2_lo and g1 <= 0.0) or (r2 >= r2_hi and g1 >= 0.0)
        fix0 = fx0 if step else Z[_R_FX0 * nl + l] != 0.0
        fix1 = fx1 if step else Z[_R_FX1 * nl + l] != 0.0
        # first try of the next trial point (_ncchi_propose)
        e00 = q00 if q00 > 1e-15 * dmax else 1e-15 * dmax
        e11 = q11 if q11 > 1e-15 * dmax else 1e-15 * dmax
        m00 = q00 + lam * e00
        m11 = q11 + lam * e11
        det = m00 * m11 - q01 * q01
        free = not fix0 and not fix1
        t0 = s0 + (m11 * g0 - q01 * g1) / det if free else (s0 + g0 / m00 if fix1 else s0)
        t1 = r2 + (m00 * g1 - q01 * g0) / det if free else (r2 if fix1 else r2 + g1 / m11)
        ok = lam <= 1e16 and not (fix0 and fix1) and (det > 0.0 or not free) and \
            math.isfinite(t0) and math.isfinite(t1)
        nodir = lam <= 1e16 and fix0 and fix1  # no free parameter: at the minimum
        t0 = t0 if t0 > 0.0 else 0.0
        t1 = t1 if t1 > r2_lo else r2_lo
        t1 = t1 if t1 < r2_hi else r2_hi
        done = busy and (done or out_of_iter or nodir)
        slow = busy and not done and not ok
        Z[_R_N0 * nl + l] = t0
        Z[_R_N1 * nl + l] = t1
        Z[_R_S0 * nl + l] = s0
        Z[_R_R2 * nl + l] = r2
        Z[_R_LAM * nl + l] = lam
        Z[_R_PREV * nl + l] = prev
        Z[_R_NIT * nl + l] = nit
        Z[_R_Q00 * nl + l] = q00
        Z[_R_Q01 * nl + l] = q01
        Z[_R_Q11 * nl + l] = q11
        Z[_R_DMAX * nl + l] = dmax
        Z[_R_FX0 * nl + l] = 1.0 if fix0 else 0.0
        Z[_R_FX1 * nl + l] = 1.0 if fix1 else 0.0
        Z[_R_PH * nl + l] = 2.0 if busy else 0.0
        Z[_R_DONE * nl + l] = 1.0 if done else 0.0
        Z[_R_CONV * nl + l] = 0.0 if out_of_iter else 1.0
        Z[_R_SLOW * nl + l] = 1.0 if slow else 0.0


@njit(error_model="numpy", fastmath=_FM)
def _ncchi_block(y, t, cfg, tab, start, stop, dest, offset, out, status):
    """Fit rows ``start:stop`` with the ``ncchi`` model, ``_LANES`` voxels at a time (see
    the module docstring); same arguments as :func:`_fit_block`.

    Each lane runs the damped Newton iteration of one voxel: the full Hessian of the
    cost, J^T J - sum_k r_k Hess(f_k), when it is positive definite, else J^T J
    (Gauss-Newton alone converges only linearly where residuals are not small against
    the model's curvature, the noise floor at high R2); Levenberg-Marquardt damping
    (diagonal scaling), a step is kept only if it lowers the cost (else the damping
    grows x10, after success it shrinks x0.1, at least 1e-12); parameters on a bound
    with the gradient pointing outwards stay fixed. It stops when no step lowers the
    cost, when the step is below ``xtol`` relative, when the cost decreases by at most
    ``ftol`` relative, or when the step sequence predicts the remaining error: with a
    contraction rate rho = step_k / step_(k-1) < 0.5, the distance to the limit is at
    most step_k rho / (1 - rho) (<= ``xtol``). A lane's state machine stops at each cost
    evaluation; all lanes then evaluate their points in one :func:`_ncchi_pass`, and
    :func:`_ncchi_control` advances all of them in one branch-free loop (the rare
    singular or non-finite steps by :func:`_ncchi_propose`). A finished lane writes its
    maps and takes the next voxel of the block, so lanes finish at different times
    without waiting for each other; each voxel's arithmetic is its own, so results do
    not depend on its lane-mates. Starts: :func:`_ncchi_starts`, per ``_BLOCK`` voxels."""
    m = y.shape[1]
    uniform, sigma, coils, lg, floor_sigmas, r2_lo, r2_hi, max_iter, xtol, ftol = _settings(cfg)
    s2n = 2.0 * coils * sigma * sigma
    nl = _LANES
    Y = np.zeros((m, nl))
    Z = np.zeros(_NROW * nl)  # trial point, its sums and the pass's work rows
    below = np.zeros(nl, dtype=np.bool_)
    col = np.zeros(nl, dtype=np.int64)
    yv = np.zeros(m)
    w = np.ones(m)
    ly = np.zeros(m)
    p3 = np.zeros(3)
    ov = np.zeros(NOUT)
    code = np.zeros(_BLOCK, dtype=np.int64)
    bel = np.zeros(_BLOCK, dtype=np.bool_)
    P = np.zeros((2, _BLOCK))
    Q = np.zeros(m * _BLOCK)
    X = np.zeros(m * _BLOCK)
    L = np.zeros(m * _BLOCK)
    W = np.zeros(6 * _BLOCK)
    nxt = start
    while True:
        busy = 0
        for l in range(nl):
            while Z[_R_PH * nl + l] == 0.0 and nxt < stop:
                if (nxt - start) % _BLOCK == 0:  # screen and start the next _BLOCK voxels
                    _ncchi_starts(y, t, nxt, min(_BLOCK, stop - nxt), sigma, floor_sigmas, s2n,
                                  r2_lo, r2_hi, code, bel, P, Q, X, L, W, w, yv, ly, p3)
                i = nxt
                v = (nxt - start) % _BLOCK
                nxt += 1
                j = dest[i] if dest.size > 0 else offset + i
                if code[v] >= 0:
                    status[j] = code[v]
                    for c in range(NOUT):
                        out[c, j] = np.nan
                    continue
                for k in range(m):
                    Y[k, l] = y[i, k]
                Z[_R_N0 * nl + l] = P[0, v]
                Z[_R_N1 * nl + l] = P[1, v]
                below[l] = bel[v]
                col[l] = j
                Z[_R_PH * nl + l] = 1.0
            if Z[_R_PH * nl + l] != 0.0:
                busy += 1
        if busy == 0:
            break
        _ncchi_pass(Y, t, uniform, Z, sigma, coils, lg, tab, s2n)
        _ncchi_control(Z, max_iter, xtol, ftol, r2_lo, r2_hi)
        for l in range(nl):
            done = Z[_R_DONE * nl + l] != 0.0
            if Z[_R_SLOW * nl + l] != 0.0:
                found, Z[_R_N0 * nl + l], Z[_R_N1 * nl + l], Z[_R_LAM * nl + l] = _ncchi_propose(
                    Z[_R_S0 * nl + l], Z[_R_R2 * nl + l], Z[(_R_CS + 4) * nl + l],
                    Z[(_R_CS + 5) * nl + l], Z[_R_Q00 * nl + l], Z[_R_Q01 * nl + l],
                    Z[_R_Q11 * nl + l], Z[_R_DMAX * nl + l], Z[_R_FX0 * nl + l] != 0.0,
                    Z[_R_FX1 * nl + l] != 0.0, Z[_R_LAM * nl + l], r2_lo, r2_hi)
                done = not found  # no reduction possible: at the minimum to precision
            if done:
                j = col[l]
                status[j] = _ncchi_finish(Y, l, Z[_R_S0 * nl + l], Z[_R_R2 * nl + l],
                                          Z[_R_NIT * nl + l], Z[_R_CONV * nl + l] != 0.0,
                                          below[l], sigma, coils, r2_lo, r2_hi, Z, ov)
                for c in range(NOUT):
                    out[c, j] = ov[c]
                Z[_R_PH * nl + l] = 0.0
