"""What users would otherwise run: the baselines r2mri is timed and compared against.

Each baseline takes ``signal`` shaped (n_voxels, n_echoes) and echo times in seconds
and returns R2 in s^-1 per voxel (NaN where it fails). ``SETTINGS`` states the model,
start values, iteration limits and tolerances of each, as the README reports them.

- ``curve_fit_loop``: :func:`scipy.optimize.curve_fit` called once per voxel, the
  pattern of ukat, qMRLab-style scripts and most lab code (Levenberg-Marquardt,
  default tolerances).
- ``curve_fit_ncchi_loop``: the same loop fitting the noise-corrected (Rician mean)
  model with ``scipy.special.i0e``/``i1e``, what a lab script would write to fit what
  r2mri's ``ncchi`` fits (single-channel data, sigma known).
- ``lmfit_loop``: :class:`lmfit.Model` fitted once per voxel (what MR-BIAS uses).
- ``numpy_loglinear``: vectorised unweighted log-linear least squares (closed form).
- ``qmrpy_loop``: the peer package qmrpy's ``T2Mono.fit_image`` (scipy
  ``least_squares`` per voxel, serial).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

__all__ = [
    "SETTINGS",
    "curve_fit_loop",
    "curve_fit_ncchi_loop",
    "curve_fit_offset_loop",
    "curve_fit_biexp_loop",
    "lmfit_loop",
    "numpy_loglinear",
    "qmrpy_loop",
    "qmrpy_status",
    "BASELINES",
]

SETTINGS = {
    "curve_fit_loop": (
        "scipy.optimize.curve_fit per voxel, model S0*exp(-R2*t), method 'lm' (default, "
        "unbounded), ftol=xtol=1.49e-8 (defaults), maxfev=600 (default 200*(n+1)), "
        "p0 = (S(TE1)*exp(R2_0*TE1), R2_0) with R2_0 from the first and last echo"
    ),
    "curve_fit_ncchi_loop": (
        "as curve_fit_loop with the Rician mean of S0*exp(-R2*t) (1 channel, sigma known): "
        "sigma*sqrt(pi/2)*[(1+2v)*i0e(v)+2v*i1e(v)], v = A^2/(4 sigma^2) (scipy.special), "
        "analytic Jacobian not given (finite differences, curve_fit's default)"
    ),
    "curve_fit_offset_loop": (
        "as curve_fit_loop with model S0*exp(-R2*t)+C, p0 C=0, maxfev=800"
    ),
    "curve_fit_biexp_loop": (
        "curve_fit per voxel, model A*exp(-R_fast*t)+B*exp(-R_slow*t), method 'trf', "
        "bounds >= 0, p0 (0.5 S0, 2 R2_0, 0.5 S0, 0.5 R2_0), default tolerances"
    ),
    "lmfit_loop": (
        "lmfit.Model(S0*exp(-R2*t)).fit per voxel, leastsq (MINPACK LM), default "
        "tolerances, same start values as curve_fit_loop"
    ),
    "numpy_loglinear": (
        "vectorised unweighted least squares of log S on t over the whole volume "
        "(closed form, no iterations); non-positive samples set to a tiny value"
    ),
    "qmrpy_loop": (
        "qmrpy.models.t2.mono_t2.T2Mono.fit_image(fit_type='exponential', n_jobs=1): "
        "scipy.optimize.least_squares (trf) per voxel, qMRLab-like start values, "
        "default tolerances; te in ms, converted to R2 = 1000/T2_ms"
    ),
}


def _start_values(y: np.ndarray, te: np.ndarray) -> tuple[float, float]:
    first, last = float(y[0]), float(y[-1])
    if first > 0 and last > 0 and first > last:
        r0 = np.log(first / last) / (te[-1] - te[0])
    else:
        r0 = 50.0
    return first * np.exp(r0 * te[0]), r0


def _mono(t, s0, r2):
    return s0 * np.exp(-r2 * t)


def _mono_offset(t, s0, r2, c):
    return s0 * np.exp(-r2 * t) + c


def _biexp(t, a, ra, b, rb):
    return a * np.exp(-ra * t) + b * np.exp(-rb * t)


def _per_voxel(signal: np.ndarray, fit_one) -> np.ndarray:
    """Loop ``fit_one(y) -> R2`` over voxels as lab scripts do; a failed voxel is NaN."""
    out = np.full(signal.shape[0], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, y in enumerate(np.asarray(signal, dtype=np.float64)):
            try:
                out[i] = fit_one(y)
            except Exception:  # noqa: BLE001 - a failed voxel is NaN, as in lab scripts
                pass
    return out


def curve_fit_loop(signal: np.ndarray, te: np.ndarray) -> np.ndarray:
    """R2 per voxel from :func:`scipy.optimize.curve_fit` (mono-exponential)."""
    from scipy.optimize import curve_fit

    def one(y):
        return curve_fit(_mono, te, y, p0=_start_values(y, te), maxfev=600)[0][1]

    return _per_voxel(signal, one)


def curve_fit_ncchi_loop(signal: np.ndarray, te: np.ndarray, sigma: float) -> np.ndarray:
    """R2 per voxel from curve_fit on the Rician mean of ``S0 exp(-R2 t)`` (1 channel).

    ``E[M] = sigma sqrt(pi/2) [(1 + 2v) I0(v) + 2v I1(v)] exp(-v)``, ``v = A^2/(4 sigma^2)``
    (Gudbjartsson & Patz 1995, MRM 34:910, eq. 6, written with ``L_1/2``), evaluated
    with the exponentially scaled Bessel functions of scipy.special.
    """
    from scipy.optimize import curve_fit
    from scipy.special import i0e, i1e

    c = sigma * np.sqrt(np.pi / 2.0)

    def rician_mean(t, s0, r2):
        a = s0 * np.exp(-r2 * t)
        v = a * a / (4.0 * sigma * sigma)
        return c * ((1.0 + 2.0 * v) * i0e(v) + 2.0 * v * i1e(v))

    def one(y):
        return curve_fit(rician_mean, te, y, p0=_start_values(y, te), maxfev=600)[0][1]

    return _per_voxel(signal, one)


def curve_fit_offset_loop(signal: np.ndarray, te: np.ndarray) -> np.ndarray:
    """R2 per voxel from curve_fit on S0 exp(-R2 t) + C."""
    from scipy.optimize import curve_fit

    def one(y):
        s0, r0 = _start_values(y, te)
        return curve_fit(_mono_offset, te, y, p0=(s0, r0, 0.0), maxfev=800)[0][1]

    return _per_voxel(signal, one)


def curve_fit_biexp_loop(signal: np.ndarray, te: np.ndarray) -> np.ndarray:
    """Amplitude-weighted mean rate per voxel from a bounded bi-exponential curve_fit."""
    from scipy.optimize import curve_fit

    def one(y):
        s0, r0 = _start_values(y, te)
        p, _ = curve_fit(_biexp, te, y, p0=(0.5 * s0, 2 * r0, 0.5 * s0, 0.5 * r0),
                         bounds=(0, np.inf), method="trf")
        return (p[0] * p[1] + p[2] * p[3]) / max(p[0] + p[2], 1e-30)

    return _per_voxel(signal, one)


def lmfit_loop(signal: np.ndarray, te: np.ndarray) -> np.ndarray:
    """R2 per voxel from :class:`lmfit.Model` (mono-exponential)."""
    import lmfit

    model = lmfit.Model(_mono, independent_vars=["t"])

    def one(y):
        s0, r0 = _start_values(y, te)
        return model.fit(y, t=te, s0=s0, r2=r0).params["r2"].value

    return _per_voxel(signal, one)


def numpy_loglinear(signal: np.ndarray, te: np.ndarray) -> np.ndarray:
    """Vectorised unweighted log-linear R2 (closed-form least squares)."""
    y = np.log(np.maximum(np.asarray(signal, dtype=np.float64), 1e-12))
    t = np.asarray(te, dtype=np.float64)
    tc = t - t.mean()
    slope = (y @ tc) / (tc @ tc)
    return -slope


def qmrpy_status() -> tuple[bool, str]:
    """Whether qmrpy imports and offers the mono-exponential T2 fit used here."""
    try:
        import qmrpy
        from qmrpy.models.t2.mono_t2 import T2Mono  # noqa: F401
        return True, f"qmrpy {getattr(qmrpy, '__version__', '?')}"
    except Exception as exc:  # noqa: BLE001
        return False, f"{type(exc).__name__}: {exc}"


def qmrpy_loop(signal: np.ndarray, te: np.ndarray) -> np.ndarray:
    """R2 per voxel from qmrpy's ``T2Mono.fit_image`` (serial)."""
    from qmrpy.models.t2.mono_t2 import T2Mono

    model = T2Mono(te_ms=np.asarray(te, dtype=np.float64) * 1000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit_image(np.asarray(signal, dtype=np.float64), n_jobs=1,
                              fit_type="exponential")
    t2_ms = np.asarray(res["t2_ms"], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1000.0 / t2_ms


#: name -> (function, is_slow: run on a random voxel sample and scale); functions with a
#: ``sigma`` parameter are given the data's noise level
BASELINES: dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], bool]] = {
    "curve_fit_loop": (curve_fit_loop, True),
    "curve_fit_ncchi_loop": (curve_fit_ncchi_loop, True),
    "curve_fit_offset_loop": (curve_fit_offset_loop, True),
    "curve_fit_biexp_loop": (curve_fit_biexp_loop, True),
    "lmfit_loop": (lmfit_loop, True),
    "qmrpy_loop": (qmrpy_loop, True),
    "numpy_loglinear": (numpy_loglinear, False),
}
