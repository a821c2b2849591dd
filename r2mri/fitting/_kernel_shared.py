"""Shared pieces of the decay-fit kernels (private): model ids, output columns, status
codes, the packed settings, and the small numba helpers both solvers call.

:mod:`r2mri.fitting._lm_kernel` (every model but ``ncchi``) and
:mod:`r2mri.fitting._ncchi_kernel` (the ``ncchi`` lane solver) compile these helpers in,
and :mod:`r2mri.fatwater._complex_kernels` compiles :func:`_chol_solve` in. numba keys
each file's on-disk cache on that file's own content only, so each of those files
records the sha256 of this one (``_KERNEL_SHARED_PY_SHA256``; tests check it): an edit
here must change them, or a cached kernel would keep the old helper or constant
(:mod:`r2mri.fitting._kernels` explains the guards). Moved unchanged from
``_kernels.py`` (branch kernsplit).
"""

from __future__ import annotations

import math

import numpy as np

from .._numba_setup import njit
from ..noise import _FM

#: sha256 of r2mri/noise.py, whose numba functions or fast-math flags (``_FM``) are compiled
#: into these kernels. numba keys its on-disk cache on the content of *this* file only, so
#: this line must change whenever noise.py changes, or a cached kernel would keep the old
#: noise code (tests/test_numba_cache.py checks it; update with ``sha256sum r2mri/noise.py``).
_NOISE_PY_SHA256 = "2380f3ebe3ec584c01f2bd8527b481b9412788565786ec1d6f807edcee656287"

# model ids (run-time switch inside the one kernel)
LOGLIN, MONO, OFFSET, BIEXP, NCCHI, TRUNC = 0, 1, 2, 3, 4, 5
N_PARAMS = (2, 2, 3, 4, 2, 2)

# output columns
O_S0, O_R2, O_OFFSET, O_R2STD, O_RMS, O_RSQ, O_FRAC, O_R2SLOW, O_R2FAST, O_NITER = range(10)
NOUT = 10

# status codes (r2mri.status.FitStatus; duplicated as ints for numba)
S_OK, S_NOT_CONVERGED, S_BOUND_HIT, S_BELOW_NOISE, S_TOO_FEW, S_BAD = 0, 1, 2, 3, 4, 5

_BLOCK = 128


@njit(error_model="numpy", fastmath=_FM)
def _flat_start(y, m, r2_lo, p):
    """Start values when fewer than 2 echoes are positive (no log-linear fit): flat at
    the largest of ``y[:m]``, R2 at its lower bound."""
    ymax = 0.0
    for k in range(m):
        ymax = max(ymax, y[k])
    p[0] = ymax
    p[1] = r2_lo


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
def _chol_solve(M, b, npar, L, x):
    """Solve M x = b for symmetric positive definite M (lower triangle read); False if not SPD.

    The Cholesky factor goes to ``L``, which may be ``M`` itself (each entry is read before it
    is overwritten): the fat-water complex fit (5 parameters) solves in place."""
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


@njit(error_model="numpy", fastmath=_FM, inline="always")
def _settings(cfg):
    """The scalar settings :func:`settings` packs into ``cfg`` (after the model id in
    ``cfg[0]``): uniform echo spacing, sigma, coils, lgamma(n + 1/2) - lgamma(n), floor_sigmas
    (the noise-floor threshold in units of sigma, :func:`r2mri.noise.noise_floor_threshold`
    for the channel count: an echo above ``floor_sigmas * sigma`` counts as signal), the
    rate bounds, max_iter, xtol, ftol."""
    return (cfg[1] > 0.0, cfg[2], int(cfg[3]), cfg[4], cfg[5], cfg[6], cfg[7], int(cfg[8]),
            cfg[9], cfg[10])


def settings(model, uniform, sigma, coils, floor_sigmas, r2_lo, r2_hi, max_iter, xtol, ftol):
    """Pack the scalar settings of a fit into the float64 array the chunk kernels take
    (``cfg``; read back by :func:`_settings`)."""
    return np.array([model, 1.0 if uniform else 0.0, sigma, coils,
                     math.lgamma(coils + 0.5) - math.lgamma(coils), floor_sigmas, r2_lo, r2_hi,
                     max_iter, xtol, ftol], dtype=np.float64)
