"""Voxel-wise magnitude fat-water fit: validation-free driver over the numba kernel.

Called by :func:`r2mri.fit` with ``model="fatwater"`` (which validates the input, the
mask and the options); see docs/fatwater.md.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np

from .._version import __version__
from ..errors import InputError
from ..fitting._fit import voxel_chunks
from ..noise import ncchi_table, noise_floor_threshold
from ..status import FitStatus
from . import _kernels as K
from .spectrum import DEFAULT_SPECTRUM, load_fat_spectrum

__all__ = ["fit_fatwater_maps", "default_r2star_bounds", "N_PARAMS"]

#: Parameters of the magnitude fat-water model (W, F, R2*).
N_PARAMS = 3

#: Water/fat swap rules of the magnitude fit (docs/fatwater.md): both fit from a water-
#: and a fat-dominant start; "min_residual" keeps the lower residual, "liver" keeps the
#: solution with PDFF <= 50 % when exactly one start gives it (else the lower residual).
SWAP_RULES = {"min_residual": K.RULE_MIN_RESIDUAL, "liver": K.RULE_LIVER}


#: Lower bound of the fat amplitude in the magnitude fit, as a fraction a of the water
#: amplitude: F >= -a W (signed fat; PDFF >= -100 a / (1 - a) %). Design choice, measured
#: (docs/fatwater.md "Fat bound and PDFF rule"): with F >= 0 the estimator of F is
#: truncated where the truth is at or near 0, and R2*, correlated with F at high R2*, is
#: biased with it.
FAT_FLOOR_FRACTION = 0.1

#: Default R2* range of the fat-water fit (docs/fatwater.md "R2* range"), used when
#: ``r2_bounds_per_s`` is not given: upper bound = min(R2STAR_MARGIN x R2*_ceiling(B0),
#: ECHO_EFOLDS / TE3), TE3 the third echo time (N_PARAMS echoes must hold signal).
#: R2*_ceiling(B0) = R2* of LIC_CEILING_MG_PER_G on the Hernando 2022 1.5 T line (LIC =
#: -0.16 + 0.02603 R2*, calibration/hernando-2022-r2star-1.5t.toml [C: Hernando et al.,
#: Radiology 2022, doi 10.1148/radiol.213256, abstract]) = 1543 s^-1, scaled linearly with
#: B0 (liver R2*_3T = 2.00 R2*_1.5T - 11 s^-1 [C: Storey et al., J Magn Reson Imaging
#: 2007;25:540, doi 10.1002/jmri.20816, abstract]).
#: LIC_CEILING_MG_PER_G = 40: [D] design choice, the upper end of the LIC the range must
#: hold (severe transfusional overload); not a published limit.
LIC_CEILING_MG_PER_G = 40.0
#: [D] design choice: the bound sits this factor above the ceiling so that noisy estimates
#: of voxels at the ceiling are not truncated (per-voxel R2* CRB there is tens of %).
R2STAR_MARGIN = 2.0
#: [D] design choice: beyond R2* = 8 / TE3 the third echo holds < exp(-8) = 3.4e-4 of the
#: signal (below the noise at any clinical SNR), so fewer than the 3 echoes the 3 parameters
#: need carry signal: nothing the echo train can measure.
ECHO_EFOLDS = 8.0


#: R2* range rule recorded in ``FitResult.options["r2_bounds_rule"]`` (docs/fatwater.md).
R2STAR_RANGE_RULE = ("default: 0 to min(2 x R2* of LIC 40 mg/g on the Hernando 2022 1.5 T line, scaled "
                     "by B0 / 1.5 T; 8 / TE3, TE3 the third echo time)")


def default_r2star_bounds(te_s, field_strength_t: float) -> tuple[float, float]:
    """Default ``r2_bounds_per_s`` of the fat-water fit for echo times ``te_s`` at
    ``field_strength_t`` (rule and sources: module constants above, docs/fatwater.md).

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = default_r2star_bounds(0.0012 + 0.001 * np.arange(6), 1.5)  # 8 / 3.2 ms
    >>> lo, round(hi)
    (0.0, 2500)
    >>> round(default_r2star_bounds(0.0006 + 0.0006 * np.arange(12), 3.0)[1])  # 8 / 1.8 ms
    4444
    >>> round(default_r2star_bounds(0.0004 + 0.0004 * np.arange(12), 3.0)[1])  # 2 x 1543 x 3 / 1.5
    6171
    """
    from ..calibration import r2_from_lic

    ceiling = float(r2_from_lic(LIC_CEILING_MG_PER_G, "hernando-2022-r2star-1.5t")) * float(field_strength_t) / 1.5
    te = np.sort(np.asarray(te_s, dtype=np.float64).ravel())
    te3 = float(te[min(N_PARAMS, te.size) - 1])
    hi = R2STAR_MARGIN * ceiling
    if te3 > 0:
        hi = min(hi, ECHO_EFOLDS / te3)
    return 0.0, float(hi)


#: PDFF reporting rule recorded in ``FitResult.options["pdff_rule"]`` (docs/fatwater.md).
PDFF_RULE = ("signed: PDFF = 100 F / (W + F) with F >= -a W (a = fat_floor_fraction), so voxel "
             "PDFF >= -100 a / (1 - a) %; not clipped at 0 (a clipped voxel map biases ROI means "
             "high at low fat); water, fat and s0 = W + F are the fitted values")


#: Noise-floor rule recorded in ``FitResult.options["noise_floor_handling"]``.
NOISE_RULE = ("non-central chi expected magnitude E[M](|W + F c| exp(-R2* t); sigma, coils) "
              "fitted to all echoes (r2mri.noise); BELOW_NOISE when < 3 echoes of the leading run "
              "(a single echo below does not end it, two do) exceed the noise threshold (k_sigma sigma "
              "at one channel, r2mri.noise.noise_floor_threshold at n)")
#: The complex fit's noise-floor status rule, recorded in ``options["noise_status_rule"]``.
COMPLEX_NOISE_STATUS_RULE = ("BELOW_NOISE as in the magnitude fit: < 3 echoes of the leading run (a single echo "
                             "below does not end it) of the magnitude as read exceed the noise threshold "
                             "(noise_threshold_sigma x sigma); the fitted values are kept, R2* is a lower bound")


#: Complex-fit rule recorded in ``FitResult.options["fit_method"]`` (docs/fatwater.md).
COMPLEX_RULE = ("complex, common R2*, field map psi: variable-projection grid over one period "
                "1/dTE of psi, Levenberg-Marquardt on (W, F, R2*, phi0, psi), then an in-plane "
                "median-filter step refits voxels more than |f_fat|/2 off the filtered field map")


def fit_fatwater_maps(data: np.ndarray, te: np.ndarray, mask: np.ndarray | None, *,
                      field_strength_t: float | None, r2_bounds_per_s: tuple[float, float] | None,
                      max_iter: int, xtol: float, ftol: float, chunk_voxels: int,
                      threads: int | None, progress: Callable[[int, int], Any] | None,
                      spectrum: str = DEFAULT_SPECTRUM, swap_rule: str = "liver",
                      noise_sigma: float | None = None, coils: int | None = None,
                      noise_info: dict | None = None, k_sigma: float = 2.0, phase_rad=None):
    """Fit W, F and R2* in every voxel of ``data`` (..., echo); returns a ``FitResult``.

    ``FitResult.r2_per_s`` holds R2*, ``s0`` holds W + F, ``r2_std_per_s`` the R2*
    standard error; ``extra`` holds ``pdff_percent``, ``water``, ``fat`` (the fat
    amplitude is signed, F >= -FAT_FLOOR_FRACTION W, and PDFF is not clipped at 0:
    ``options["pdff_rule"]``, docs/fatwater.md "Fat bound and PDFF rule"),
    ``fat_start_chosen`` (1 where the fat-dominant start won the swap rule) and
    ``n_iterations`` (both starts together).

    With ``phase_rad`` (radians, shape of ``data``) the fit is complex with a field-map
    term (:mod:`r2mri.fatwater.complex_fit`): ``extra`` then holds ``field_map_hz`` and
    ``phase0_rad`` instead of ``fat_start_chosen``; ``options["fit"]`` is ``"complex"``
    (else ``"magnitude"``).

    Noise floor (docs/fatwater.md): with ``noise_sigma`` (given, or estimated from the
    air by the caller) the fitted function is the expected magnitude of a non-central
    chi with ``coils`` channels, ``E[M](|W + F c| e^{-R2* t})`` (:mod:`r2mri.noise`), so
    echoes on the noise floor do not bias R2*; a voxel with fewer than 3 echoes above
    the noise threshold (``k_sigma * sigma`` at one channel; at ``coils`` channels the
    level of equal pure-noise tail probability, :func:`r2mri.noise.noise_floor_threshold`)
    gets status ``BELOW_NOISE`` (the echoes counted: the leading run, in which one echo at
    or below the threshold, an opposed-phase dip, does not end the run and two do; docs/fatwater.md
    "Which echoes count"); the start of the fit uses the echoes above it. Without sigma the fit is
    Gaussian and a warning names the voxels whose last echo is near the floor. The complex fit
    (``phase_rad``) has the same status on the magnitude as read, with sigma known
    (``options["noise_status_rule"]``).

    Examples
    --------
    >>> import numpy as np
    >>> import r2mri
    >>> from r2mri.fatwater import load_fat_spectrum, magnitude_signal
    >>> te = 0.0012 + 0.001 * np.arange(6)  # 6 echoes, 1.5 T
    >>> y = magnitude_signal(load_fat_spectrum().basis(te, 1.5), te, 80.0, 20.0, 150.0)
    >>> res = r2mri.fit(y, te, model="fatwater", field_strength_t=1.5)
    >>> round(float(res.r2_per_s), 3), round(float(res.extra["pdff_percent"]), 3)
    (150.0, 20.0)
    """
    spec, phase = _checked_inputs(data, field_strength_t, swap_rule, spectrum, phase_rad)
    n_echoes = data.shape[-1]
    basis = spec.basis(te, field_strength_t)
    te64 = np.ascontiguousarray(te, dtype=np.float64)
    if r2_bounds_per_s is None:  # the default range: field and third echo time (R2* range rule)
        r2_bounds_per_s = default_r2star_bounds(te, field_strength_t)
        bounds_rule = R2STAR_RANGE_RULE
    else:
        bounds_rule = "given"
    lo, hi = (float(v) for v in r2_bounds_per_s)
    spatial = data.shape[:-1]
    flat = data.reshape(-1, n_echoes)
    mask_flat = None if mask is None else mask.reshape(-1)
    total = flat.shape[0] if mask_flat is None else int(np.count_nonzero(mask_flat))
    sigma = 0.0 if noise_sigma is None else float(noise_sigma)
    n_coils = 1 if coils is None else int(coils)
    # the floor test and the start's echo choice: the channel-aware threshold (4.72 sigma
    # at 8 channels for k_sigma = 2), as in the spin-echo fit (r2mri.fitting._fit)
    floor_sigmas = noise_floor_threshold(k_sigma, n_coils)
    common = dict(lo=lo, hi=hi, max_iter=int(max_iter), xtol=float(xtol), ftol=float(ftol),
                  chunk=int(chunk_voxels), rule=SWAP_RULES[swap_rule], progress=progress,
                  total=total, fat_floor=float(FAT_FLOOR_FRACTION))
    out, status, cinfo, used_threads = _fit_flat(
        flat, te64, basis, mask_flat, sigma, n_coils, floor_sigmas, phase, spec, field_strength_t, spatial,
        threads, common)
    if mask_flat is not None:
        out[:, ~mask_flat] = np.nan
        status[~mask_flat] = int(FitStatus.MASKED)
    settings = _settings(data, te, mask, spec, swap_rule, field_strength_t, noise_sigma, n_coils, noise_info,
                         k_sigma, floor_sigmas, lo, hi, bounds_rule, max_iter, xtol, ftol, chunk_voxels,
                         used_threads, total, complex_fit=phase is not None)
    if phase is None and sigma == 0.0:
        _warn_floor(out, status, te64[-1], k_sigma)
    return _fit_result(out, status.reshape(spatial), spatial, settings, phase is not None, sigma, cinfo)


def _settings(data, te, mask, spec, swap_rule, field_strength_t, noise_sigma, n_coils, noise_info, k_sigma,
              floor_sigmas, lo, hi, bounds_rule, max_iter, xtol, ftol, chunk_voxels, used_threads, total, *,
              complex_fit: bool) -> dict:
    """The fit's options (``FitResult.options``) before the method entries."""
    return {
        "model_requested": "fatwater",
        "model": "fatwater",
        "fit": "complex" if complex_fit else "magnitude",
        "swap_rule": swap_rule,
        "field_strength_t": float(field_strength_t),
        "fat_spectrum": spec.name,
        "fat_spectrum_verified": spec.verified,
        "fat_spectrum_doi": spec.citation.get("doi"),
        "noise_sigma": None if noise_sigma is None else float(noise_sigma),
        "coils": int(n_coils),
        **(noise_info or {"noise_method": None if noise_sigma is None else "given"}),
        "k_sigma": float(k_sigma),
        "noise_threshold_sigma": floor_sigmas if noise_sigma is not None else None,
        "fat_floor_fraction": float(FAT_FLOOR_FRACTION),
        "pdff_rule": PDFF_RULE,
        "echo_times_s": [float(v) for v in te],
        "r2_bounds_per_s": [lo, hi],
        "r2_bounds_rule": bounds_rule,
        "max_iter": int(max_iter),
        "xtol": float(xtol),
        "ftol": float(ftol),
        "chunk_voxels": int(chunk_voxels),
        "threads": int(used_threads),
        "n_voxels_fitted": int(total),
        "masked": mask is not None,
        "input_dtype": str(data.dtype),
        "r2mri_version": __version__,
    }


def _checked_inputs(data, field_strength_t, swap_rule: str, spectrum: str, phase_rad):
    """``(fat spectrum, phase or None)``; InputError without the field strength, for an
    unknown swap rule, fewer echoes than parameters or a phase of another shape."""
    if field_strength_t is None:
        raise InputError("field_strength_t: the fat-water model needs the main field in tesla "
                         "(pass field_strength_t=1.5 or 3.0, or a MultiEchoImage that carries it)")
    if swap_rule not in SWAP_RULES:
        raise InputError(f"swap_rule: unknown rule {swap_rule!r}; choose one of {', '.join(SWAP_RULES)}")
    spec = load_fat_spectrum(spectrum)
    n_echoes = data.shape[-1]
    if n_echoes < N_PARAMS:
        raise InputError(f"model: 'fatwater' has {N_PARAMS} parameters and needs at least "
                         f"{N_PARAMS} echoes, the data have {n_echoes}")
    return spec, _check_phase(phase_rad, data.shape)


def _fit_flat(flat, te64, basis, mask_flat, sigma, n_coils, floor_sigmas, phase, spec, field_strength_t,
              spatial, threads, common):
    """Run the magnitude or (``phase``) the complex fit on the (voxel, echo) rows with the
    thread count asked for (restored after). Returns ``(out, status, complex-fit options
    or None, threads used)``."""
    import numba

    n_echoes = flat.shape[1]
    cinfo = None
    prev_threads = numba.get_num_threads()
    used_threads = prev_threads if threads is None else min(int(threads), numba.config.NUMBA_NUM_THREADS)
    try:
        numba.set_num_threads(used_threads)
        if phase is None:
            out, status = _fit_magnitude(flat, te64, basis, mask_flat, sigma, n_coils, floor_sigmas,
                                         **common)
        else:
            from .complex_fit import RSS_FLOOR_RULE, fit_complex, remove_rss_floor

            main_hz = float(spec.frequencies_hz(field_strength_t)[np.argmax(spec.relative_amplitudes)])
            mag = remove_rss_floor(flat, sigma, n_coils)
            from .complex_fit import floor_threshold

            out, status, cinfo = fit_complex(mag, phase.reshape(-1, n_echoes), spatial, te64, basis,
                                             mask_flat, main_fat_hz=main_hz, convention_mag=flat,
                                             robust_se=mag is not flat,
                                             floor_thr=floor_threshold(sigma, n_coils, floor_sigmas), **common)
            cinfo["complex_floor"] = RSS_FLOOR_RULE if mag is not flat else "none (one channel or sigma unknown)"
    finally:
        numba.set_num_threads(prev_threads)
    return out, status, cinfo, used_threads


def _fit_result(out, status, spatial, settings: dict, complex_fit: bool, sigma: float, cinfo):
    """The ``FitResult`` of the fat-water maps in ``out``: the method and noise-floor
    entries of ``settings`` (the complex fit's options added), the maps shaped to
    ``spatial``."""
    from ..fitting._fit import FitResult

    def shaped(row):
        return out[row].reshape(spatial).astype(np.float32, copy=False)

    if not complex_fit:
        from . import _kernels as R
        settings["fit_method"] = "magnitude, common R2*, projected Levenberg-Marquardt on (W, F, R2*)"
        settings["noise_floor_handling"] = (NOISE_RULE if sigma > 0 else
                                            "none: noise sigma unknown, Gaussian magnitude residuals")
        extra = {"fat_start_chosen": shaped(R.O_FATSTART)}
    else:
        from . import _complex_kernels as R
        settings["fit_method"] = COMPLEX_RULE
        settings.update(cinfo)
        settings["noise_floor_handling"] = (
            "not needed: complex data (Gaussian noise, no floor)"
            if cinfo.get("complex_floor", "").startswith("none") else
            "multi-channel magnitude: RSS floor removed before the complex fit (options['complex_floor'])")
        settings["noise_status_rule"] = (COMPLEX_NOISE_STATUS_RULE if sigma > 0 else
                                         "none: noise sigma unknown, no BELOW_NOISE status")
        extra = {"field_map_hz": shaped(R.O_PSI), "phase0_rad": shaped(R.O_PHI)}
    water, fat = shaped(R.O_W), shaped(R.O_F)
    extra = {"pdff_percent": shaped(R.O_PDFF), "water": water, "fat": fat, **extra,
             "n_iterations": shaped(R.O_NITER)}
    return FitResult(r2_per_s=shaped(R.O_R2), s0=water + fat, offset=None,
                     r2_std_per_s=shaped(R.O_R2STD), residual_rms=shaped(R.O_RMS),
                     r_squared=shaped(R.O_RSQ), status=status, model="fatwater",
                     options=settings, extra=extra)


#: Stand-in for the E[M] table without sigma: read-only like ``ncchi_table``, so both
#: calls share one compiled specialisation of the kernel (issue 14: first-run time).
_NO_TABLE = np.zeros((1, 4))
_NO_TABLE.setflags(write=False)


def _fit_magnitude(flat, te64, basis, mask_flat, sigma, n_coils, floor_sigmas, *, lo, hi, max_iter,
                   xtol, ftol, chunk, rule, progress, total, fat_floor):
    """Magnitude fit of every (masked) voxel; returns ``(out (NOUT, n) float32, status)``.
    ``floor_sigmas``: the noise threshold in units of sigma (``noise_floor_threshold``)."""
    nvox = flat.shape[0]
    out = np.empty((K.NOUT, nvox), dtype=np.float32)
    status = np.empty(nvox, dtype=np.uint8)
    cr = np.ascontiguousarray(basis.real)
    ci = np.ascontiguousarray(basis.imag)
    steps = np.diff(te64)
    uniform = bool(np.all(np.abs(steps - steps[0]) <= 1e-9 * steps[0]))
    nz = (sigma, np.int64(n_coils), math.lgamma(n_coils + 0.5) - math.lgamma(n_coils),
          ncchi_table(n_coils) if sigma > 0 else _NO_TABLE)
    done = 0
    for start, idx, y in voxel_chunks(flat, mask_flat, chunk):
        K.fit_chunk(y, te64, cr, ci, uniform, nz, float(floor_sigmas), lo, hi, fat_floor, np.int64(max_iter),
                    float(xtol), float(ftol), np.int64(rule), idx, np.int64(start), out, status)
        done += y.shape[0]
        if progress is not None:
            progress(done, total)
    return out, status


def _check_phase(phase_rad, shape):
    """Phase images (radians) of the complex fit, or None; same shape as the magnitude."""
    if phase_rad is None:
        return None
    phase = np.asarray(phase_rad)
    if phase.dtype.kind not in "fiu":
        raise InputError(f"phase_rad: expected a real numeric array in radians, got dtype {phase.dtype}")
    if phase.shape != tuple(shape):
        raise InputError(f"phase_rad: shape {phase.shape} does not match the magnitude {tuple(shape)}")
    phase = phase.astype(np.float64, copy=False)
    finite = np.isfinite(phase)
    if finite.any() and np.max(np.abs(phase[finite])) > 4 * math.pi:
        raise InputError(f"phase_rad: values up to {np.max(np.abs(phase[finite])):.4g}; expected "
                         "radians (|phase| <= 2 pi; raw DICOM phase must be scaled first)")
    return phase


def _warn_floor(out, status, te_last_s, k_sigma):
    """Without sigma: warn when fitted voxels have their last echo within ``k_sigma``
    residual RMS of zero (the residual RMS of a Gaussian fit is close to sigma), i.e.
    where the noise floor biases R2* low (docs/fatwater.md)."""
    ok = status == 0
    n_ok = int(np.count_nonzero(ok))
    if not n_ok:
        return
    # whole rows, in place (no gathers: this pass is serial, ~4 % of a 2-thread fit before)
    last = np.exp(out[K.O_R2] * np.float32(-te_last_s))
    last *= out[K.O_W] + out[K.O_F]
    near = last < np.float32(k_sigma) * out[K.O_RMS]
    near &= ok
    near = int(np.count_nonzero(near))
    if near:
        warnings.warn(f"fit: fatwater without noise_sigma: in {near} of {n_ok} voxels the "
                      f"last echo is within {k_sigma:g} x the residual RMS of zero, where the noise "
                      "floor biases R2* low; pass noise_sigma (and coils) for the noise-corrected "
                      "fit", RuntimeWarning, stacklevel=4)


def resolve_noise(data: np.ndarray, te: np.ndarray, noise_sigma, coils):
    """Sigma and coils of the fat-water fit: given, else estimated from the air of an image
    (``r2mri.estimate_noise``, method ``"background"`` only), else none.

    The tissue and residual fallbacks of :func:`r2mri.estimate_noise` fit mono-exponentials,
    whose residuals on fatty liver hold the fat-water beat as well as noise (an
    overestimate of sigma), so they are not used here. Returns ``(sigma or None,
    coils or None, info)`` with ``info`` the ``noise_*`` option keys.
    """
    info = {"noise_method": None, "noise_estimate": None, "noise_fallback": None}
    if coils is not None and (isinstance(coils, bool) or int(coils) != coils or coils < 1):
        raise InputError(f"coils: must be an integer >= 1, got {coils!r}")
    if noise_sigma is not None:
        sigma = float(noise_sigma)
        if not (math.isfinite(sigma) and sigma > 0):
            raise InputError(f"noise_sigma: must be a positive finite number, got {noise_sigma!r}")
        info["noise_method"] = "given"
        return sigma, coils, info
    if data.ndim < 3:  # a list of curves: no image plane, no air to find
        info["noise_method"] = "none"
        info["noise_fallback"] = "a list of curves: no image plane to find air in"
        return None, coils, info
    from ..noise import estimate_noise

    try:  # without echo times only the background (air) method can succeed, and cheaply
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = estimate_noise(data)
    except InputError as exc:
        info["noise_method"] = "none"
        info["noise_fallback"] = str(exc)
        return None, coils, info
    if est.method != "background":
        info["noise_method"] = "none"
        info["noise_fallback"] = f"no air of pure noise; the {est.method!r} estimate is not used"
        return None, coils, info
    info["noise_method"] = "background"
    info["noise_estimate"] = est.to_dict()
    return est.sigma, est.coils if coils is None else coils, info
