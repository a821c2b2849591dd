"""numba kernels of the complex fat-water fit with a field-map term (private).

Per voxel, five real parameters p = (W, F, R2*, phi0, psi) of::

    S_k = (W + F c_k) exp(-R2* t_k) exp(i (phi0 + 2 pi psi t_k))

(``c_k = cr_k + i ci_k`` the fat basis of :meth:`r2mri.fatwater.FatSpectrum.basis`, fat at
negative frequency in exp(+i 2 pi f t); conjugate data are handled by the driver;
W, F >= 0 real: water and fat share the initial phase phi0; psi the off-resonance in Hz).

Start (psi has local minima spaced by the fat shifts and is periodic with 1/dTE for
equally spaced echoes): R2* from a log-linear fit of the magnitude, then a grid over
``psi_center +- psi_halfwidth`` (``n_grid`` points). At each grid psi, W, F and phi0 are
eliminated in closed form (variable projection, Golub & Pereyra 1973, with real W, F
of common phase): with ``B = [b, c b]``, ``b_k = exp((-R2* + i 2 pi psi) t_k)``,
``G = Re(B^H B)`` (independent of psi), ``v = B^H y = u + i w``, the best phase maximises
``(cos phi u + sin phi w)^T G^-1 (cos phi u + sin phi w)``, a 2x2 eigenproblem, and the
cost is ``|y|^2 - lambda_max``. The grid point kept follows the swap rule (``liver``:
lowest cost with F <= W when one exists; ``min_residual``: lowest cost). Then a projected
Levenberg-Marquardt iteration refines all five parameters (W >= 0, F >= -a W with
``a = fat_floor`` as in the magnitude fit, R2* in [lo, hi]).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._numba_setup import njit
from ..fitting._kernel_shared import _chol_solve  # the SE models' SPD solve, factored in place here
from ._kernels import (MIN_SIGNAL_ECHOES, RULE_LIVER, S_BAD, S_BELOW_NOISE, S_BOUND_HIT, S_NOT_CONVERGED, S_OK,
                       _shear, _signal_echoes, _start)

#: sha256 of the files whose numba functions are compiled into these kernels
#: (``_start``, ``_shear``, ``_signal_echoes`` of r2mri/fatwater/_kernels.py; ``_chol_solve``
#: of r2mri/fitting/_kernel_shared.py): numba keys the on-disk cache of this file on this file
#: only, so an edit there must change this file (tests/test_fatwater_below_noise.py checks).
_FATWATER_KERNELS_PY_SHA256 = "e478dbfdff977c2e6f6a61a2fcbe0167fe3a550ee64c5aa37f03ae2208905b3f"
_FITTING_KERNEL_SHARED_PY_SHA256 = "0e0eb90981aa5a1144df9d1783f2a4918e15e8702e87b473d4cf773908d6fb9b"

# output rows
O_W, O_F, O_R2, O_R2STD, O_RMS, O_RSQ, O_PDFF, O_NITER, O_PSI, O_PHI, O_COST = range(11)
NOUT = 11
NP = 5  # parameters

_BLOCK = 128
_LAMBDA0 = 1e-3  # initial Marquardt damping (design choice, as in _kernels)
_LAMBDA_MAX = 1e12
_TWO_PI = 2.0 * math.pi


@njit(error_model="numpy")
def _grid_start(yr, yi, t, cr, ci, r2, psi_c, psi_hw, n_grid, rule, fat_floor, p, tc, ts, zr, zi):
    """Variable-projection grid over psi at fixed R2* (module docstring); fills
    p = (W, F, R2*, phi0, psi). ``tc``, ``ts`` (n_grid, m): cos and sin of
    2 pi d_j t_k for the grid offsets d_j (shared by the block); ``zr``, ``zi``: scratch."""
    m = yr.size
    g00 = g01 = g11 = yy = 0.0
    for k in range(m):
        e = math.exp(-r2 * t[k])
        e2 = e * e
        g00 += e2
        g01 += e2 * cr[k]
        g11 += e2 * (cr[k] * cr[k] + ci[k] * ci[k])
        yy += yr[k] * yr[k] + yi[k] * yi[k]
        # z_k = e_k exp(-i 2 pi psi_c t_k) y_k: the part of conj(b_k) y_k shared by the grid
        ang = _TWO_PI * psi_c * t[k]
        ca, sa = math.cos(ang), math.sin(ang)
        zr[k] = e * (ca * yr[k] + sa * yi[k])
        zi[k] = e * (ca * yi[k] - sa * yr[k])
    det = g00 * g11 - g01 * g01
    if not det > 0.0:
        det = 1e-300
    h00, h01, h11 = g11 / det, -g01 / det, g00 / det
    best = np.inf
    best_l = np.inf
    found_l = False
    for j in range(n_grid):
        psi = psi_c - psi_hw + 2.0 * psi_hw * (j + 0.5) / n_grid
        u0 = w0 = u1 = w1 = 0.0
        for k in range(m):
            # conj(b) y = exp(-i 2 pi d_j t_k) z_k, and conj(c b) y
            pr = tc[j, k] * zr[k] + ts[j, k] * zi[k]
            pi_ = tc[j, k] * zi[k] - ts[j, k] * zr[k]
            u0 += pr
            w0 += pi_
            u1 += cr[k] * pr + ci[k] * pi_
            w1 += cr[k] * pi_ - ci[k] * pr
        q00 = u0 * (h00 * u0 + h01 * u1) + u1 * (h01 * u0 + h11 * u1)
        q11 = w0 * (h00 * w0 + h01 * w1) + w1 * (h01 * w0 + h11 * w1)
        q01 = u0 * (h00 * w0 + h01 * w1) + u1 * (h01 * w0 + h11 * w1)
        half = 0.5 * (q00 - q11)
        lam = 0.5 * (q00 + q11) + math.sqrt(half * half + q01 * q01)
        cost = yy - lam
        phi = 0.5 * math.atan2(2.0 * q01, q00 - q11)
        cs, sn = math.cos(phi), math.sin(phi)
        a0 = cs * u0 + sn * w0
        a1 = cs * u1 + sn * w1
        x0 = h00 * a0 + h01 * a1
        x1 = h01 * a0 + h11 * a1
        if x0 + x1 < 0.0:  # phi + pi: same cost, positive amplitudes
            x0, x1, phi = -x0, -x1, phi + math.pi
        take = cost < best
        if rule == RULE_LIVER:
            low = x1 <= x0
            if low and (not found_l or cost < best_l):
                found_l = True
                best_l = cost
                take = True
            elif found_l:
                take = False
        if take:
            best = cost
            p[0] = max(x0, 0.0)
            p[1] = max(x1, -fat_floor * p[0])
            p[3] = phi
            p[4] = psi
    p[2] = r2


@njit(error_model="numpy")
def _model_jac(yr, yi, t, cr, ci, p, J, res, with_jac):
    """Residuals ``res`` (2m: real parts then imaginary parts) and, with ``with_jac``, the
    Jacobian ``J`` (2m, 5) of the model (not of the residual); returns the cost."""
    m = yr.size
    c = 0.0
    for k in range(m):
        e = math.exp(-p[2] * t[k])
        ang = p[3] + _TWO_PI * p[4] * t[k]
        ca, sa = math.cos(ang), math.sin(ang)
        ar = p[0] + p[1] * cr[k]  # W + F c
        ai = p[1] * ci[k]
        sr = e * (ar * ca - ai * sa)
        si = e * (ar * sa + ai * ca)
        res[k] = yr[k] - sr
        res[m + k] = yi[k] - si
        c += res[k] * res[k] + res[m + k] * res[m + k]
        if with_jac:
            J[k, 0] = e * ca
            J[m + k, 0] = e * sa
            J[k, 1] = e * (cr[k] * ca - ci[k] * sa)
            J[m + k, 1] = e * (cr[k] * sa + ci[k] * ca)
            J[k, 2] = -t[k] * sr
            J[m + k, 2] = -t[k] * si
            J[k, 3] = -si  # d/dphi of (sr + i si) = i S
            J[m + k, 3] = sr
            J[k, 4] = -_TWO_PI * t[k] * si
            J[m + k, 4] = _TWO_PI * t[k] * sr
    return c


@njit(error_model="numpy")
def _normal(J, res, A, g):
    n2 = res.size
    for i in range(NP):
        g[i] = 0.0
        for j in range(NP):
            A[i, j] = 0.0
    for k in range(n2):
        for i in range(NP):
            g[i] += J[k, i] * res[k]
            for j in range(i + 1):
                A[i, j] += J[k, i] * J[k, j]
    for i in range(NP):
        for j in range(i + 1, NP):
            A[i, j] = A[j, i]


@njit(error_model="numpy")
def _lm(yr, yi, t, cr, ci, p, lo, hi, fat_floor, max_iter, xtol, ftol, J, res, A, M, g, d, pt):
    """Projected Levenberg-Marquardt on the five parameters from ``p`` (in place); as
    :func:`r2mri.fatwater._kernels._lm` (active set on W >= 0, F >= -fat_floor W and the
    R2* bounds; on the oblique fat bound the step holds F + fat_floor W)."""
    cost = _model_jac(yr, yi, t, cr, ci, p, J, res, True)
    lam = _LAMBDA0
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        _normal(J, res, A, g)
        fat_on = p[1] <= -fat_floor * p[0] and g[1] <= 0.0
        gw = g[0] - fat_floor * g[1] if fat_on else g[0]
        free0 = not (p[0] <= 0.0 and gw <= 0.0)
        free1 = not fat_on
        free2 = not ((p[2] <= lo and g[2] <= 0.0) or (p[2] >= hi and g[2] >= 0.0))
        accepted = False
        ct = cost
        while lam <= _LAMBDA_MAX:
            for i in range(NP):
                for j in range(NP):
                    M[i, j] = A[i, j]
                d[i] = g[i]
            if fat_on:
                _shear(M, d, fat_floor)
            for i in range(NP):
                M[i, i] = M[i, i] * (1.0 + lam) + 1e-300
            for i, free in ((0, free0), (1, free1), (2, free2)):
                if not free:
                    for j in range(NP):
                        M[i, j] = 0.0
                        M[j, i] = 0.0
                    M[i, i] = 1.0
                    d[i] = 0.0
            if not _chol_solve(M, d, NP, M, pt):
                lam *= 10.0
                continue
            if fat_on:
                pt[1] -= fat_floor * pt[0]
            for i in range(NP):
                pt[i] += p[i]
            pt[0] = max(pt[0], 0.0)
            pt[1] = max(pt[1], -fat_floor * pt[0])
            pt[2] = min(max(pt[2], lo), hi)
            ct = _model_jac(yr, yi, t, cr, ci, pt, J, res, False)
            if ct < cost:
                accepted = True
                break
            lam *= 10.0
        if not accepted:
            _model_jac(yr, yi, t, cr, ci, p, J, res, True)
            return cost, True, n_iter
        amp = abs(pt[0]) + abs(pt[1])
        small = (abs(pt[0] - p[0]) <= xtol * amp and abs(pt[1] - p[1]) <= xtol * amp
                 and abs(pt[2] - p[2]) <= xtol * (abs(pt[2]) + 1e-3)
                 and abs(pt[3] - p[3]) <= xtol and abs(pt[4] - p[4]) <= xtol * (abs(pt[4]) + 1.0))
        flat = cost - ct <= ftol * cost
        for i in range(NP):
            p[i] = pt[i]
        cost = _model_jac(yr, yi, t, cr, ci, p, J, res, True)
        lam = max(lam * 0.1, 1e-12)
        if small or flat:
            return cost, True, n_iter
    return cost, False, n_iter


@njit(error_model="numpy")
def _fit_voxel(yr, yi, t, cr, ci, lo, hi, fat_floor, psi_c, psi_hw, n_grid, max_iter, xtol, ftol,
               rule, robust, floor_thr, mag, J, res, A, M, g, d, pt, p, o, tc, ts, zr, zi):
    """Fit one voxel (grid start, then LM); write the maps to ``o`` (NOUT,). With
    ``robust`` the R2* SE is the heteroscedasticity-consistent (sandwich) one, see below.
    ``floor_thr >= 0``: status BELOW_NOISE when fewer than ``MIN_SIGNAL_ECHOES`` echoes of
    ``|y|`` lie above it (the magnitude fit's rule, :func:`._kernels._signal_echoes`);
    negative: no noise test (sigma unknown)."""
    m = yr.size
    for k in range(m):
        mag[k] = math.sqrt(yr[k] * yr[k] + yi[k] * yi[k])
    _start(mag, t, lo, hi, 0.0, 0.0, p)
    _grid_start(yr, yi, t, cr, ci, p[2], psi_c, psi_hw, n_grid, rule, fat_floor, p, tc, ts, zr, zi)
    cost, conv, n_iter = _lm(yr, yi, t, cr, ci, p, lo, hi, fat_floor, max_iter, xtol, ftol, J, res, A, M, g,
                             d, pt)
    # covariance at the solution: s^2 (J^T J)^-1, s^2 = cost / (2m - 5)
    _normal(J, res, A, g)
    for i in range(NP):
        d[i] = 1.0 if i == 2 else 0.0
        for j in range(NP):
            M[i, j] = A[i, j]
    r2std = np.nan
    if 2 * m > NP and _chol_solve(M, d, NP, M, pt):
        if robust:
            # sandwich covariance (J^T J)^-1 J^T diag(r^2) J (J^T J)^-1 with the factor
            # n / (n - 5) ("HC1"; White, Econometrica 1980;48:817; MacKinnon & White,
            # J Econometrics 1985;29:305): the noise of a floor-corrected RSS magnitude
            # (complex_fit.remove_rss_floor) grows at the late echoes, so the pooled s^2
            # understates the R2* SE. pt = (J^T J)^-1 e_R2*, so var = sum_k r_k^2 (J_k . pt)^2
            var = 0.0
            for k in range(2 * m):
                jv = 0.0
                for i in range(NP):
                    jv += J[k, i] * pt[i]
                var += res[k] * res[k] * jv * jv
            r2std = math.sqrt(var * (2 * m) / (2 * m - NP))
        else:
            r2std = math.sqrt(max(pt[2], 0.0) * cost / (2 * m - NP))
    mr = mi = 0.0
    for k in range(m):
        mr += yr[k]
        mi += yi[k]
    mr /= m
    mi /= m
    ss = 0.0
    for k in range(m):
        ss += (yr[k] - mr) ** 2 + (yi[k] - mi) ** 2
    tot = p[0] + p[1]
    o[O_W] = p[0]
    o[O_F] = p[1]
    o[O_R2] = p[2]
    o[O_R2STD] = r2std
    o[O_RMS] = math.sqrt(cost / (2 * m))
    o[O_RSQ] = 1.0 - cost / ss if ss > 0.0 else np.nan
    o[O_PDFF] = 100.0 * p[1] / tot if tot > 0.0 else np.nan
    o[O_NITER] = n_iter
    o[O_PSI] = p[4]
    o[O_PHI] = math.atan2(math.sin(p[3]), math.cos(p[3]))
    o[O_COST] = cost
    if floor_thr >= 0.0 and _signal_echoes(mag, floor_thr) < MIN_SIGNAL_ECHOES:
        return S_BELOW_NOISE  # checked first, as in the magnitude fit: R2* is a lower bound
    if p[2] <= lo or p[2] >= hi:
        return S_BOUND_HIT
    return S_OK if conv else S_NOT_CONVERGED


@njit(parallel=True, error_model="numpy")
def fit_chunk(yr, yi, t, cr, ci, lo, hi, fat_floor, psi_c, psi_hw, n_grid, max_iter, xtol, ftol, rule,
              robust, floor_thr, dest, offset, out, status):
    """Fit every row ``i`` of ``yr + i yi`` (nvox, m) into column ``j`` of ``out`` (NOUT, n)
    and ``status`` (n,), ``j = dest[i]`` or ``offset + i`` when ``dest`` is empty; the psi
    grid of row ``i`` is centred on ``psi_c[i]``; ``floor_thr``: see :func:`_fit_voxel`."""
    nvox, m = yr.shape
    nblock = (nvox + _BLOCK - 1) // _BLOCK
    for b in prange(nblock):
        J = np.empty((2 * m, NP))
        res = np.empty(2 * m)
        mag = np.empty(m)
        A = np.empty((NP, NP))
        M = np.empty((NP, NP))
        g = np.empty(NP)
        d = np.empty(NP)
        pt = np.empty(NP)
        p = np.empty(NP)
        o = np.empty(NOUT)
        zr = np.empty(m)
        zi = np.empty(m)
        tc = np.empty((n_grid, m))
        ts = np.empty((n_grid, m))
        for j in range(n_grid):
            dj = -psi_hw + 2.0 * psi_hw * (j + 0.5) / n_grid
            for k in range(m):
                tc[j, k] = math.cos(_TWO_PI * dj * t[k])
                ts[j, k] = math.sin(_TWO_PI * dj * t[k])
        for i in range(b * _BLOCK, min(nvox, (b + 1) * _BLOCK)):
            j = dest[i] if dest.size > 0 else offset + i
            bad = not math.isfinite(psi_c[i])
            allzero = True
            for k in range(m):
                if not (math.isfinite(yr[i, k]) and math.isfinite(yi[i, k])):
                    bad = True
                if yr[i, k] != 0.0 or yi[i, k] != 0.0:
                    allzero = False
            if bad or allzero:
                for r in range(NOUT):
                    out[r, j] = np.nan
                status[j] = S_BAD
                continue
            st = _fit_voxel(yr[i], yi[i], t, cr, ci, lo, hi, fat_floor, psi_c[i], psi_hw, n_grid, max_iter,
                            xtol, ftol, rule, robust, floor_thr, mag, J, res, A, M, g, d, pt, p, o, tc, ts, zr, zi)
            for r in range(NOUT):
                out[r, j] = o[r]
            status[j] = st
