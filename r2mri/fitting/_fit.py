"""Public entry point of the voxel-wise fitter: validation, noise, chunking, threads."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._version import __version__
from ..errors import InputError
from ..image import MultiEchoImage
from ..noise import ncchi_table, noise_floor_threshold
from ..status import FitStatus
from . import _kernels as K
from ._threads import run_chunks

__all__ = ["fit", "FitResult", "MODELS"]

#: Model names accepted by :func:`fit` (``"auto"`` resolves to one of the others).
MODELS = ("auto", "loglinear", "monoexp", "monoexp_offset", "biexp", "ncchi", "truncated",
          "fatwater")

_MODEL_ID = {
    "loglinear": K.LOGLIN,
    "monoexp": K.MONO,
    "monoexp_offset": K.OFFSET,
    "biexp": K.BIEXP,
    "ncchi": K.NCCHI,
    "truncated": K.TRUNC,
}

#: Defaults of the ``**options`` of :func:`fit`.
DEFAULT_OPTIONS: dict[str, Any] = {
    # Truncation / noise-floor threshold in units of sigma for one channel. [D] domain.md
    # section 3: "needing k echoes with signal >= 2 sigma"; a design choice, not a published
    # value. With n channels the threshold is the level pure noise exceeds as often as
    # one-channel noise exceeds k_sigma sigma (r2mri.noise.noise_floor_threshold: 4.72
    # sigma at 8 channels, where pure noise alone averages 3.94 sigma).
    "k_sigma": 2.0,
    # Box bounds on every rate (s^-1). A design choice wide enough for liver at 1.5 T
    # and 3 T (domain.md: up to ~300 s^-1 at 1.5 T, x1.5 at 3 T); not a physical limit.
    "r2_bounds_per_s": (0.0, 1000.0),
    "max_iter": None,  # None: 100, or 200 for biexp
    "xtol": 1e-6,  # relative parameter-step tolerance (Levenberg-Marquardt and Newton)
    "ftol": 1e-10,  # relative cost-decrease tolerance of Levenberg-Marquardt (not Newton)
    "chunk_voxels": 65536,  # voxels per kernel call (memory: chunk * echoes * 8 bytes)
    # model="fatwater" only (r2mri.fatwater): main field in tesla (default: the
    # MultiEchoImage's), the name or TOML path of the multi-peak fat spectrum and the
    # water/fat swap rule ("liver": PDFF <= 50 % preferred, or "min_residual").
    "field_strength_t": None,
    "fat_spectrum": "liver-fat-6peak",
    "swap_rule": "liver",
    # model="fatwater" only: phase images (radians, shape of the magnitude) for the
    # complex fit with a field map (default: the MultiEchoImage's phase_rad, if any).
    "phase_rad": None,
}


@dataclass
class FitResult:
    """Maps produced by :func:`fit` (float32, spatial shape of the input, NaN outside the mask).

    Attributes
    ----------
    r2_per_s : ndarray float32
        R2 in s^-1 (for ``biexp``: the amplitude-weighted mean rate, i.e. the initial
        slope ``-d ln S / dt`` at ``t = 0``).
    s0 : ndarray float32
        Signal amplitude at ``TE = 0`` (``biexp``: sum of both amplitudes).
    offset : ndarray float32 or None
        Constant term ``C`` (``monoexp_offset`` only, else ``None``).
    r2_std_per_s : ndarray float32
        Standard error of ``r2_per_s`` from the covariance of the fit (see docs/fitting.md).
    residual_rms : ndarray float32
        Root-mean-square residual over the echoes used.
    r_squared : ndarray float32
        Coefficient of determination over the echoes used.
    status : ndarray uint8
        :class:`r2mri.FitStatus` codes; ``MASKED`` (255) outside the mask.
    model : str
        The model actually used (``"ncchi"`` when ``"auto"`` was asked and sigma known).
    options : dict
        JSON-serialisable settings that reproduce the maps.
    extra : dict of str -> ndarray
        Further maps: ``n_iterations``; for ``biexp`` also ``fast_fraction``,
        ``r2_slow_per_s``, ``r2_fast_per_s``.

    Examples
    --------
    >>> import numpy as np
    >>> import r2mri
    >>> te = np.array([0.006, 0.009, 0.012, 0.015, 0.018])
    >>> res = r2mri.fit(1000.0 * np.exp(-np.outer([40.0, 80.0], te)), te, model="monoexp")
    >>> res.shape, res.r2_per_s.round(3).tolist(), res.status_counts()
    ((2,), [40.0, 80.0], {'ok': 2})
    """

    r2_per_s: np.ndarray
    s0: np.ndarray
    offset: np.ndarray | None
    r2_std_per_s: np.ndarray
    residual_rms: np.ndarray
    r_squared: np.ndarray
    status: np.ndarray
    model: str
    options: dict[str, Any]
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of the maps."""
        return tuple(self.r2_per_s.shape)

    def status_counts(self) -> dict[str, int]:
        """Number of voxels per status name (``{'ok': 120, 'masked': 4, ...}``)."""
        codes, counts = np.unique(self.status, return_counts=True)
        return {FitStatus.describe(int(c)): int(n) for c, n in zip(codes, counts)}


def _check_echo_times(te, n_echoes: int) -> np.ndarray:
    try:
        te = np.asarray(te, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"echo_times_s: not a numeric sequence: {te!r}") from None
    if te.ndim != 1:
        raise InputError(f"echo_times_s: expected a 1-D sequence, got shape {te.shape}")
    if te.size != n_echoes:
        raise InputError(f"echo_times_s: {te.size} echo times for {n_echoes} echoes in the data")
    if not np.all(np.isfinite(te)):
        raise InputError(f"echo_times_s: non-finite echo time in {te.tolist()}")
    if np.any(te < 0):
        raise InputError(f"echo_times_s: negative echo time in {te.tolist()}")
    d = np.diff(te)
    if np.any(d == 0):
        raise InputError(f"echo_times_s: duplicate echo times in {te.tolist()}")
    if np.any(d < 0):
        raise InputError(f"echo_times_s: not sorted ascending: {te.tolist()}")
    if np.max(te) > 10.0:
        warnings.warn(f"echo_times_s: largest echo time {te.max()} s; were milliseconds given?",
                      RuntimeWarning, stacklevel=3)
    return te


def _resolve_input(img_or_array, echo_times_s):
    if isinstance(img_or_array, MultiEchoImage):
        if echo_times_s is not None:
            raise InputError("echo_times_s: must not be given with a MultiEchoImage "
                             "(it carries its own echo times)")
        data, te = img_or_array.data, img_or_array.echo_times_s
    else:
        data = np.asarray(img_or_array)
        if data.dtype.kind not in "fiub" or data.ndim == 0:
            raise InputError(f"img_or_array: expected a real numeric array shaped (..., echo), "
                             f"got dtype {data.dtype} and shape {data.shape}")
        if echo_times_s is None:
            raise InputError("echo_times_s: required when img_or_array is an array")
        te = echo_times_s
    if data.shape[-1] < 2:
        raise InputError(f"img_or_array: at least 2 echoes needed, got {data.shape[-1]} "
                         f"(shape {data.shape})")
    if any(s == 0 for s in data.shape):
        raise InputError(f"img_or_array: empty array of shape {data.shape}")
    return data, _check_echo_times(te, data.shape[-1])


def _resolve_noise(data, te, model, noise_sigma, coils, n_echoes):
    """Decide sigma, coils and the model 'auto' stands for; return (model, sigma, coils, info)."""
    info: dict[str, Any] = {"noise_method": None, "noise_estimate": None, "auto_rule": None,
                            "noise_fallback": None}
    if noise_sigma is not None:
        sigma = float(noise_sigma)
        if not (math.isfinite(sigma) and sigma > 0):
            raise InputError(f"noise_sigma: must be a positive finite number, got {noise_sigma!r}")
        info["noise_method"] = "given"
    else:
        sigma = None
    if coils is not None:
        if isinstance(coils, bool) or int(coils) != coils or coils < 1:
            raise InputError(f"coils: must be an integer >= 1, got {coils!r}")
        coils = int(coils)
    coils_given = coils is not None
    needs_sigma = model in ("ncchi", "truncated", "auto")
    noise_free = False
    if sigma is None and needs_sigma:
        from .._noise_estimate import NoBackgroundError
        from ..noise import estimate_noise

        try:
            est = estimate_noise(data.reshape(1, -1) if data.ndim == 1 else data, echo_times_s=te)
        except NoBackgroundError as exc:
            # no air and the tissue cannot tell the noise: never guess (issue 12)
            raise InputError(f"noise_sigma: not given and {exc}") from None
        except InputError as exc:
            if model != "auto":
                raise InputError(f"noise_sigma: not given and could not be estimated for model "
                                 f"{model!r} ({exc})") from None
            est = None
        if est is not None:
            info["noise_method"] = est.method
            info["noise_estimate"] = est.to_dict()
            noise_free = est.method == "noise-free"
            if noise_free and model != "auto":
                raise InputError(f"model: {model!r} needs a noise sigma > 0, but the data are noise-free "
                                 f"({est.notes[0]}); use model 'monoexp' or give noise_sigma")
            if not noise_free:
                sigma = est.sigma
                if coils is None:
                    coils = est.coils
            if est.method == "tissue":
                info["noise_fallback"] = est.notes[0]
                warnings.warn(f"fit: no background of pure noise; {est.notes[0]} (sigma {sigma:.4g}, "
                              f"coils {est.coils}); pass noise_sigma and coils if known",
                              RuntimeWarning, stacklevel=3)
    coils_unknown = not coils_given and info["noise_method"] == "residual"
    if model == "auto":
        if noise_free:
            model = "monoexp"
            info["noise_fallback"] = info["noise_estimate"]["notes"][0]
            info["auto_rule"] = ("monoexp: the data are noise-free (mono-exponential fits exact to "
                                 "rounding), so no noise correction is needed")
        elif sigma is not None:
            model = "ncchi"
            info["auto_rule"] = ("ncchi: noise-corrected model, sigma "
                                 + ("given" if info["noise_method"] == "given"
                                    else f"estimated ({info['noise_method']})"))
        else:
            model = "monoexp_offset" if n_echoes >= 4 else "monoexp"
            info["auto_rule"] = (f"{model}: sigma could not be estimated, so the noise-corrected "
                                 "model was not possible")
            warnings.warn(f"fit: model 'auto' fell back to {model!r}: {info['auto_rule']}",
                          RuntimeWarning, stacklevel=3)
    if coils is None:
        coils = 1
    if coils_unknown and model == "ncchi":
        # Zero-filled background: sigma comes from tissue residuals, but the channel count,
        # which sets the height of the noise floor (~ sigma sqrt(2n)), cannot be recovered
        # from Gaussian residuals, and n = 1 is assumed (right for single-channel and
        # adaptive-combine images). On root-sum-of-squares multi-channel data this reads
        # part of the floor as signal: measured on the 4-channel FerriScan phantom with a
        # zeroed background, median R2 -9 % at 15 mg/g and -38 % at 40 mg/g (the offset
        # model is no better: +10 % and +41 %). Say so wherever the fit is reported.
        info["coils_assumed"] = True
        info["auto_rule"] = ((info["auto_rule"] or "ncchi") + "; background zero-filled: receiver "
                             "channel count unknown, 1 assumed (pass coils= for root-sum-of-squares "
                             "multi-channel data; R2 is underestimated at high iron otherwise)")
        warnings.warn("fit: background zero-filled, so the receiver channel count is unknown and 1 "
                      "is assumed; pass coils= for root-sum-of-squares multi-channel data",
                      RuntimeWarning, stacklevel=3)
    return model, sigma, coils, info



def voxel_chunks(flat: np.ndarray, mask_flat: np.ndarray | None, chunk: int):
    """Yield ``(start, idx, y)`` per block of ``chunk`` voxels of ``flat`` (voxel, echo):
    ``y`` the block's (masked) curves as contiguous float64, ``idx`` their flat voxel
    indices (empty when there is no mask: the block is ``start .. start + len(y)``);
    blocks without a masked voxel are left out. The kernels write results by these."""
    no_index = np.empty(0, dtype=np.int64)
    for start in range(0, flat.shape[0], chunk):
        stop = min(flat.shape[0], start + chunk)
        if mask_flat is None:
            idx, y = no_index, flat[start:stop]
        else:
            idx = np.flatnonzero(mask_flat[start:stop])
            if idx.size == 0:
                continue
            idx += start
            y = flat[idx]
        yield start, idx, np.ascontiguousarray(y, dtype=np.float64)

def _auto_for_sequence(img: MultiEchoImage, field_strength_t: float | None) -> tuple[str, str | None]:
    """``"auto"`` on a gradient-echo image is the fat-water R2* model when the field is known
    (as in :func:`r2mri.analyze`); without a field it stays the spin-echo choice, with a
    warning that fat is not modelled."""
    from ..calibration import _sequence_kind

    if _sequence_kind(img.sequence) != "GRE":
        return "auto", None
    if (field_strength_t if field_strength_t is not None else img.field_strength_t) is None:
        warnings.warn("fit: gradient-echo image without a field strength: model 'auto' fits R2* without "
                      "fat (biased in a fatty liver); pass field_strength_t= for the fat-water model",
                      UserWarning, stacklevel=3)
        return "auto", None
    return "fatwater", "fatwater: gradient-echo image (R2* with a multi-peak fat model, docs/fatwater.md)"


def fit(img_or_array, echo_times_s=None, model: str = "auto", mask=None, *,
        noise_sigma: float | None = None, coils: int | None = None,
        threads: int | None = None,
        progress: Callable[[int, int], Any] | None = None, **options) -> FitResult:
    """Fit a signal-decay model voxel by voxel and return R2 maps.

    Parameters
    ----------
    img_or_array : MultiEchoImage or array_like, shape (..., echo)
        Magnitude data: a :class:`r2mri.MultiEchoImage`, or a numeric array (a 1-D
        curve, or 2-D/3-D/4-D with echoes last); float32, float64 or integer.
    echo_times_s : array_like, shape (echo,), optional
        Echo times in seconds, strictly ascending (required for arrays; must be omitted
        for a MultiEchoImage).
    model : str
        One of :data:`MODELS`: ``"loglinear"``, ``"monoexp"``, ``"monoexp_offset"``,
        ``"biexp"``, ``"ncchi"``, ``"truncated"`` or ``"auto"`` (``ncchi`` with sigma
        estimated from the background when not given, or from the tissue when the
        array has no air; ``monoexp`` for noise-free data; ``monoexp_offset`` when sigma
        cannot be estimated otherwise). See docs/fitting.md. ``"fatwater"``: R2* of gradient-echo
        data with a multi-peak fat spectrum (W, F, R2*; PDFF, water and fat maps in
        ``FitResult.extra``; needs the field strength), see docs/fatwater.md; ``"auto"``
        on a gradient-echo MultiEchoImage with a known field strength is ``"fatwater"``
        (``options["auto_rule"]`` says so).
    mask : array_like of bool, optional
        Spatial mask of the voxels to fit (others get NaN and status MASKED).
    noise_sigma : float, keyword-only, optional
        Noise standard deviation per channel (signal units). Used by ``ncchi``,
        ``truncated`` and the noise-floor status of every model.
    coils : int, keyword-only, optional
        Effective receiver channels of the magnitude noise (1 = Rician).
    threads : int, keyword-only, optional
        Threads for the numba kernel (default: numba's default, all cores); restored
        afterwards. Results do not depend on it.
    progress : callable, keyword-only, optional
        ``progress(done_voxels, total_voxels)``, called after each chunk.
    **options
        ``k_sigma`` (2.0: the noise-floor threshold in sigma at one channel; at ``coils``
        channels the level of the same pure-noise tail probability,
        :func:`r2mri.noise.noise_floor_threshold`, for every model), ``r2_bounds_per_s`` ((0, 1000); for ``"fatwater"`` from the
        field and the third echo time, docs/fatwater.md "R2* range"), ``max_iter`` (100; 200 for
        biexp), ``xtol`` (1e-6), ``ftol`` (1e-10), ``chunk_voxels`` (65536);
        ``field_strength_t``, ``fat_spectrum``, ``swap_rule`` and ``phase_rad`` (phase
        images in radians, same shape as the magnitude: complex fit with a field map;
        default the MultiEchoImage's ``phase_rad`` if it has one) for ``"fatwater"``,
        which uses ``noise_sigma``/``coils`` (given, or from the air) for its noise floor.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Bad shapes, fewer than 2 echoes, unsorted/duplicate/non-finite echo times, a
        mask of the wrong shape, an unknown model or option; sigma not given for an
        array without air whose tissue cannot pin the noise floor (``noise_sigma``
        needed, docs/fitting.md "Arrays without air").

    Examples
    --------
    >>> import numpy as np
    >>> import r2mri
    >>> te = np.array([0.006, 0.009, 0.012, 0.015, 0.018])
    >>> curve = 1000.0 * np.exp(-50.0 * te)
    >>> res = r2mri.fit(curve, te, model="monoexp")
    >>> round(float(res.r2_per_s), 6), res.model
    (50.0, 'monoexp')
    """
    if model not in MODELS:
        raise InputError(f"model: unknown model {model!r}; choose one of {', '.join(MODELS)}")
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise InputError(f"options: unknown option(s) {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    data, te = _resolve_input(img_or_array, echo_times_s)
    n_echoes = data.shape[-1]
    spatial = data.shape[:-1]
    mask, lo, hi, k_sigma, chunk = _check_arguments(opts, mask, spatial, threads, progress)

    auto_rule = None
    if model == "auto" and isinstance(img_or_array, MultiEchoImage):
        model, auto_rule = _auto_for_sequence(img_or_array, opts["field_strength_t"])
    if model == "fatwater":  # its own kernels and outputs (r2mri.fatwater)
        from ..fatwater.fit import fit_fatwater_maps

        # called from fit itself: its floor warning's stacklevel names fit's caller
        res = fit_fatwater_maps(data, te, mask, **_fatwater_arguments(
            img_or_array, data, te, opts, options, noise_sigma=noise_sigma, coils=coils, lo=lo, hi=hi,
            k_sigma=k_sigma, chunk=chunk, threads=threads, progress=progress))
        if auto_rule:
            res.options["auto_rule"] = auto_rule
        return res
    if opts["phase_rad"] is not None:
        raise InputError(f"phase_rad: phase images are used by model 'fatwater' only, not {model!r}")
    model_used, sigma, coils, info = _resolve_noise(data, te, model, noise_sigma, coils, n_echoes)
    max_iter, xtol, ftol = _solver_settings(opts, model_used, n_echoes)
    out, status, total, floor_sigmas, used_threads = _run_voxels(
        data, te, mask, model_used, sigma, coils, k_sigma=k_sigma, lo=lo, hi=hi, max_iter=max_iter, xtol=xtol,
        ftol=ftol, chunk=chunk, threads=threads, progress=progress)

    settings = _settings(model, model_used, sigma, coils, info, te, k_sigma, floor_sigmas, lo, hi, max_iter, xtol,
                         ftol, chunk, used_threads, total, masked=mask is not None, input_dtype=data.dtype)
    return _fit_result(out, status, spatial, model_used, settings)


def _settings(model: str, model_used: str, sigma, coils, info: dict, te, k_sigma, floor_sigmas, lo, hi, max_iter,
              xtol, ftol, chunk, used_threads, total, *, masked: bool, input_dtype) -> dict:
    """``FitResult.options`` of a decay-model fit: the model asked for and used, the noise,
    echo times, thresholds, bounds, solver settings and what was fitted."""
    return {
        "model_requested": model,
        "model": model_used,
        "noise_sigma": None if sigma is None else float(sigma),
        "coils": int(coils),
        **info,
        "echo_times_s": [float(v) for v in te],
        "k_sigma": k_sigma,
        "noise_threshold_sigma": floor_sigmas if sigma is not None else None,
        "r2_bounds_per_s": [lo, hi],
        "max_iter": max_iter,
        "xtol": xtol,
        "ftol": ftol,
        "chunk_voxels": chunk,
        "threads": int(used_threads),
        "n_voxels_fitted": int(total),
        "masked": masked,
        "input_dtype": str(input_dtype),
        "r2mri_version": __version__,
    }


def _check_arguments(opts: dict, mask, spatial: tuple[int, ...], threads, progress):
    """The checks of :func:`fit`'s mask, threads, progress and options, in that order.

    Returns ``(mask, r2_low, r2_high, k_sigma, chunk_voxels)``: the mask as bool (or
    ``None``), the R2 bounds (s^-1), the noise-floor threshold and the chunk size.
    """
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != spatial:
            raise InputError(f"mask: shape {mask.shape} does not match the spatial shape {spatial}")
        mask = mask.astype(bool, copy=False)
    if threads is not None:
        if isinstance(threads, bool) or int(threads) != threads or threads < 1:
            raise InputError(f"threads: must be an integer >= 1, got {threads!r}")
    if progress is not None and not callable(progress):
        raise InputError(f"progress: must be callable(done, total), got {progress!r}")
    lo, hi = (float(v) for v in opts["r2_bounds_per_s"])
    if not (0.0 <= lo < hi and math.isfinite(hi)):
        raise InputError(f"r2_bounds_per_s: need 0 <= low < high < inf, got {opts['r2_bounds_per_s']!r}")
    k_sigma = float(opts["k_sigma"])
    if not (math.isfinite(k_sigma) and k_sigma >= 0):
        raise InputError(f"k_sigma: must be a finite number >= 0, got {opts['k_sigma']!r}")
    chunk = int(opts["chunk_voxels"])
    if chunk < 1:
        raise InputError(f"chunk_voxels: must be >= 1, got {chunk}")
    return mask, lo, hi, k_sigma, chunk


def _fatwater_arguments(img_or_array, data: np.ndarray, te: np.ndarray, opts: dict, options: dict, *,
                        noise_sigma, coils, lo: float, hi: float, k_sigma: float, chunk: int, threads,
                        progress) -> dict:
    """Keyword arguments of :func:`r2mri.fatwater.fit.fit_fatwater_maps` for :func:`fit`'s ``"fatwater"``.

    The field strength and phase images (from the image unless given), the noise
    (:func:`r2mri.fatwater.fit.resolve_noise`) and the solver options.
    """
    from ..fatwater.fit import resolve_noise

    b0 = opts["field_strength_t"]
    if b0 is None and isinstance(img_or_array, MultiEchoImage):
        b0 = img_or_array.field_strength_t
    phase = options.get("phase_rad")
    if phase is None and isinstance(img_or_array, MultiEchoImage):
        phase = getattr(img_or_array, "phase_rad", None)
    sigma, coils, info = resolve_noise(data, te, noise_sigma, coils)
    # default R2* range of the fat-water fit: from the field and the echo train (fit.py)
    bounds = (lo, hi) if "r2_bounds_per_s" in options else None
    return dict(field_strength_t=b0, r2_bounds_per_s=bounds,
                max_iter=100 if opts["max_iter"] is None else int(opts["max_iter"]),
                xtol=float(opts["xtol"]), ftol=float(opts["ftol"]),
                chunk_voxels=chunk, threads=threads, progress=progress,
                spectrum=opts["fat_spectrum"], swap_rule=opts["swap_rule"],
                noise_sigma=sigma, coils=coils, noise_info=info, k_sigma=k_sigma,
                phase_rad=phase)


def _solver_settings(opts: dict, model_used: str, n_echoes: int) -> tuple[int, float, float]:
    """``(max_iter, xtol, ftol)`` of the solver for ``model_used``, checked (and enough echoes for it)."""
    model_id = _MODEL_ID[model_used]
    npar = K.N_PARAMS[model_id]
    if n_echoes < npar:
        raise InputError(f"model: {model_used!r} has {npar} parameters and needs at least {npar} "
                         f"echoes, the data have {n_echoes}")
    max_iter = opts["max_iter"] if opts["max_iter"] is not None else (200 if model_used == "biexp" else 100)
    max_iter = int(max_iter)
    xtol = float(opts["xtol"])
    ftol = float(opts["ftol"])
    if not (xtol > 0 and ftol >= 0):
        raise InputError(f"xtol/ftol: must be positive, got {xtol!r}, {ftol!r}")
    return max_iter, xtol, ftol


def _run_voxels(data: np.ndarray, te: np.ndarray, mask, model_used: str, sigma, coils, *, k_sigma: float,
                lo: float, hi: float, max_iter: int, xtol: float, ftol: float, chunk: int, threads, progress):
    """Run the numba kernel of ``model_used`` over the (masked) voxels, chunk by chunk.

    Returns ``(out, status, n_fitted, floor_sigmas, used_threads)``: the float32 maps,
    one row per kernel output (``K.NOUT``), the uint8 status per voxel, the voxels
    fitted, the noise-floor threshold in sigma and the threads used.
    """
    n_echoes = data.shape[-1]
    model_id = _MODEL_ID[model_used]
    flat = data.reshape(-1, n_echoes)
    nvox = flat.shape[0]
    mask_flat = None if mask is None else mask.reshape(-1)
    total = nvox if mask_flat is None else int(np.count_nonzero(mask_flat))
    # the kernel writes every fitted voxel's maps in place (float32, one row per map);
    # only voxels outside the mask need their NaN / MASKED fill here
    out = np.empty((K.NOUT, nvox), dtype=np.float32)
    status = np.empty(nvox, dtype=np.uint8)
    if mask_flat is not None:
        out[:, ~mask_flat] = np.nan
        status[~mask_flat] = int(FitStatus.MASKED)
    # E[M] interpolation table of the noise-corrected model (a dummy for other models)
    tab = ncchi_table(int(coils)) if model_used == "ncchi" else np.zeros((1, 4))
    te64 = np.ascontiguousarray(te, dtype=np.float64)
    sigma_k = float(sigma) if sigma is not None else 0.0
    steps = np.diff(te64)
    uniform = bool(np.all(np.abs(steps - steps[0]) <= 1e-9 * steps[0]))
    # the floor test of every model and the truncation: the channel-aware threshold
    floor_sigmas = noise_floor_threshold(k_sigma, int(coils))
    cfg = K.settings(model_id, uniform, sigma_k, coils, floor_sigmas, lo, hi, max_iter, xtol, ftol)

    import numba

    used_threads = numba.get_num_threads()
    if threads is not None:
        used_threads = min(int(threads), numba.config.NUMBA_NUM_THREADS)
    run_chunks(voxel_chunks(flat, mask_flat, chunk), te64, cfg, tab, out, status, used_threads,
               progress, total)
    return out, status, total, floor_sigmas, used_threads


def _fit_result(out: np.ndarray, status: np.ndarray, spatial: tuple[int, ...], model_used: str,
                settings: dict) -> FitResult:
    """The :class:`FitResult` of the kernel's output rows, shaped back to ``spatial``."""
    names = ["s0", "r2", "offset", "r2_std", "rms", "rsq", "frac", "r2slow", "r2fast", "niter"]
    maps = dict(zip(names, out))

    def shaped(a):
        return a.reshape(spatial)

    extra = {"n_iterations": shaped(maps["niter"])}
    if model_used == "biexp":
        extra.update(fast_fraction=shaped(maps["frac"]), r2_slow_per_s=shaped(maps["r2slow"]),
                     r2_fast_per_s=shaped(maps["r2fast"]))
    return FitResult(
        r2_per_s=shaped(maps["r2"]),
        s0=shaped(maps["s0"]),
        offset=shaped(maps["offset"]) if model_used == "monoexp_offset" else None,
        r2_std_per_s=shaped(maps["r2_std"]),
        residual_rms=shaped(maps["rms"]),
        r_squared=shaped(maps["rsq"]),
        status=status.reshape(spatial),
        model=model_used,
        options=settings,
        extra=extra,
    )
