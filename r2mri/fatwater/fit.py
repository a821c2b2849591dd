"""Voxel-wise magnitude fat-water fit: validation-free driver over the numba kernel.

Called by :func:`r2mri.fit` with ``model="fatwater"`` (which validates the input, the
mask and the options); see docs/fatwater.md.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._version import __version__
from ..errors import InputError
from ..fitting._fit import voxel_chunks
from ..status import FitStatus
from . import _kernels as K
from .spectrum import DEFAULT_SPECTRUM, load_fat_spectrum

__all__ = ["fit_fatwater_maps", "N_PARAMS"]

#: Parameters of the magnitude fat-water model (W, F, R2*).
N_PARAMS = 3

#: Water/fat swap rules of the magnitude fit (docs/fatwater.md): both fit from a water-
#: and a fat-dominant start; "min_residual" keeps the lower residual, "liver" keeps the
#: solution with PDFF <= 50 % when exactly one start gives it (else the lower residual).
SWAP_RULES = {"min_residual": K.RULE_MIN_RESIDUAL, "liver": K.RULE_LIVER}


def fit_fatwater_maps(data: np.ndarray, te: np.ndarray, mask: np.ndarray | None, *,
                      field_strength_t: float | None, r2_bounds_per_s: tuple[float, float],
                      max_iter: int, xtol: float, ftol: float, chunk_voxels: int,
                      threads: int | None, progress: Callable[[int, int], Any] | None,
                      spectrum: str = DEFAULT_SPECTRUM, swap_rule: str = "liver",
                      noise_sigma: float | None = None):
    """Fit W, F and R2* in every voxel of ``data`` (..., echo); returns a ``FitResult``.

    ``FitResult.r2_per_s`` holds R2*, ``s0`` holds W + F, ``r2_std_per_s`` the R2*
    standard error; ``extra`` holds ``pdff_percent``, ``water``, ``fat``,
    ``fat_start_chosen`` (1 where the fat-dominant start won the swap rule) and
    ``n_iterations`` (both starts together).

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
    from ..fitting._fit import FitResult

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
    basis = spec.basis(te, field_strength_t)
    cr = np.ascontiguousarray(basis.real)
    ci = np.ascontiguousarray(basis.imag)
    te64 = np.ascontiguousarray(te, dtype=np.float64)
    lo, hi = (float(v) for v in r2_bounds_per_s)
    steps = np.diff(te64)
    uniform = bool(np.all(np.abs(steps - steps[0]) <= 1e-9 * steps[0]))
    spatial = data.shape[:-1]
    flat = data.reshape(-1, n_echoes)
    nvox = flat.shape[0]
    mask_flat = None if mask is None else mask.reshape(-1)
    total = nvox if mask_flat is None else int(np.count_nonzero(mask_flat))
    out = np.empty((K.NOUT, nvox), dtype=np.float32)
    status = np.empty(nvox, dtype=np.uint8)
    if mask_flat is not None:
        out[:, ~mask_flat] = np.nan
        status[~mask_flat] = int(FitStatus.MASKED)

    import numba

    prev_threads = numba.get_num_threads()
    used_threads = prev_threads if threads is None else min(int(threads), numba.config.NUMBA_NUM_THREADS)
    done = 0
    try:
        numba.set_num_threads(used_threads)
        for start, idx, y in voxel_chunks(flat, mask_flat, chunk_voxels):
            K.fit_chunk(y, te64, cr, ci, uniform, lo, hi, np.int64(max_iter), float(xtol), float(ftol),
                        np.int64(SWAP_RULES[swap_rule]), idx,
                        np.int64(start), out, status)
            done += y.shape[0]
            if progress is not None:
                progress(done, total)
    finally:
        numba.set_num_threads(prev_threads)

    def shaped(row):
        return out[row].reshape(spatial)

    water, fat = shaped(K.O_W), shaped(K.O_F)
    settings = {
        "model_requested": "fatwater",
        "model": "fatwater",
        "fit": "magnitude, common R2*, projected Levenberg-Marquardt on (W, F, R2*)",
        "swap_rule": swap_rule,
        "field_strength_t": float(field_strength_t),
        "fat_spectrum": spec.name,
        "fat_spectrum_verified": spec.verified,
        "fat_spectrum_doi": spec.citation.get("doi"),
        "noise_floor_handling": None,
        # same keys as the other models (callers read them); sigma is recorded, not used yet
        "noise_sigma": None if noise_sigma is None else float(noise_sigma),
        "noise_method": None if noise_sigma is None else "given (not used by this model yet)",
        "coils": None,
        "echo_times_s": [float(v) for v in te],
        "r2_bounds_per_s": [lo, hi],
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
    extra = {
        "pdff_percent": shaped(K.O_PDFF),
        "water": water,
        "fat": fat,
        "fat_start_chosen": shaped(K.O_FATSTART),
        "n_iterations": shaped(K.O_NITER),
    }
    return FitResult(r2_per_s=shaped(K.O_R2), s0=water + fat, offset=None,
                     r2_std_per_s=shaped(K.O_R2STD), residual_rms=shaped(K.O_RMS),
                     r_squared=shaped(K.O_RSQ), status=status.reshape(spatial), model="fatwater",
                     options=settings, extra=extra)
