"""Goodness of fit over the liver ROI: do the voxel fits leave residuals of the noise's size?

Hooked from :func:`r2mri.analyze` after the ROI. Each voxel fit reports its residual RMS
(``FitResult.residual_rms``: per echo for magnitude fits, per real/imaginary component
for the complex fat-water fit). Scaled to the degrees of freedom,

    s_i = rms_i * sqrt(m / (m - p))      (m residuals, p fitted parameters)

estimates the voxel's noise SD when the model describes the data. At the SNR of a liver
the magnitude noise SD is the channel sigma (Gudbjartsson & Patz, MRM 1995; smaller, not
larger, near the noise floor), so ``median(s_i) / sigma`` over the ROI is about 1 for a
right model and a right sigma. When it exceeds :data:`RESIDUAL_RATIO_WARN` the report
warns in one line: the decay model does not describe the data (e.g. the complex fit of a
bipolar-readout series, whose odd/even echo phase errors it does not model; stimulated
echoes; motion) or the given noise sigma is too small. Measured on real in-vivo data
(``benchmarks/real_liver.py``): magnitude fat-water fits 1.28 (1.5 T, ISMRM 2012 case 12,
sigma from the background) and 1.5 (3 T, sigma 0.5 assumed); the complex fit of the 3 T
bipolar series 5.2, with an R2* 7 % above the magnitude fit's and no warning before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .status import FitStatus

__all__ = ["residual_check", "RESIDUAL_RATIO_WARN"]

#: Warn when the ROI's median df-scaled residual SD exceeds this many noise sigmas [D:
#: r2mri's choice, between the 1.0-1.5 of right models on phantoms and real data and the
#: 5.2 of the misfit seen (module docstring)].
RESIDUAL_RATIO_WARN = 2.0
#: Fewest usable ROI voxels for the check [D].
MIN_VOXELS = 20
#: Only voxels whose fitted signal at the last echo is above this many noise-floor units
#: ``sigma sqrt(2 n)`` (n channels) are judged [D]: there every echo is in the Gaussian
#: regime. Below it the complex model, which has no noise-floor term (its driver removes
#: the RSS floor's mean power first, ``fatwater.complex_fit.remove_rss_floor``, but the
#: noise left there is not Gaussian), leaves large residuals on right answers (8-channel
#: phantoms at 15-25 mg/g, measured before the floor removal: ratio 2.4-2.7 over all ROI
#: voxels, LIC within 3-11 %).
FLOOR_MARGIN = 3.0

#: Fitted parameters per model (complex fat-water: W, F, R2*, field, phase).
_N_PARAMS = {"monoexp": 2, "ncchi": 2, "truncated": 2, "monoexp_offset": 3, "fatwater": 3}


def _dof(fit: Any, n_echoes: int) -> tuple[int, int]:
    """(residual count m, parameter count p) of one voxel fit."""
    if fit.model == "fatwater" and str(fit.options.get("fit", "")) == "complex":
        return 2 * n_echoes, 5
    return n_echoes, _N_PARAMS.get(str(fit.model), 2)


def residual_check(fit: Any, roi_mask: Any, noise_sigma: float | None, echo_times_s: Any,
                   coils: int | None = 1) -> tuple[dict, str | None]:
    """The ROI's residual-to-noise ratio and, when it is too large, a warning line.

    Parameters
    ----------
    fit : r2mri.FitResult
    roi_mask : ndarray of bool, spatial shape of the fit
    noise_sigma : float or None
        Noise SD per channel (``None``: nothing to compare with; no check).
    echo_times_s : array_like
        Echo times of the fit (seconds; the truncated model's residuals are over fewer
        echoes, its ratio then conservative).
    coils : int or None
        Channels combined by root-sum-of-squares (sets the noise floor; ``None``: 1).

    Returns
    -------
    (details, warning) : dict, str or None
        ``details`` holds ``residual_sd_median``, ``ratio_to_sigma``, ``n_voxels`` (the
        ROI voxels above the noise floor at the last echo that were judged).

    Examples
    --------
    >>> import numpy as np, r2mri
    >>> te = np.linspace(0.002, 0.02, 8)
    >>> rng = np.random.default_rng(0)
    >>> y = 100 * np.exp(-50 * te) + rng.normal(0, 1.0, (400, 8))
    >>> f = r2mri.fit(y.reshape(20, 20, 1, 8), te, model="monoexp")
    >>> d, w = residual_check(f, np.ones((20, 20, 1), bool), 1.0, te)
    >>> 0.8 < d["ratio_to_sigma"] < 1.2, w is None
    (True, True)
    """
    details: dict[str, Any] = {"rule": f"median over the ROI of rms * sqrt(m / (m - p)) above "
                                       f"{RESIDUAL_RATIO_WARN:g} x the noise sigma [D]"}
    if noise_sigma is None or not np.isfinite(noise_sigma) or noise_sigma <= 0:
        return details, None
    te = np.asarray(echo_times_s, dtype=np.float64).ravel()
    n_echoes = te.size
    m, p = _dof(fit, n_echoes)
    if m <= p:
        return details, None
    mask = np.asarray(roi_mask, dtype=bool)
    rms = np.asarray(fit.residual_rms, dtype=np.float64)[mask]
    ok = np.isfinite(rms)
    if fit.status is not None:
        ok &= np.asarray(fit.status)[mask] == FitStatus.OK
    with np.errstate(invalid="ignore", over="ignore"):
        last = (np.asarray(fit.s0, dtype=np.float64)[mask]
                * np.exp(-np.asarray(fit.r2_per_s, dtype=np.float64)[mask] * te.max()))
    ok &= last > FLOOR_MARGIN * float(noise_sigma) * np.sqrt(2.0 * max(int(coils or 1), 1))
    if int(ok.sum()) < MIN_VOXELS:
        return details, None
    s = float(np.median(rms[ok]) * np.sqrt(m / (m - p)))
    ratio = float(s / noise_sigma)
    details.update(residual_sd_median=s, ratio_to_sigma=ratio, n_voxels=int(ok.sum()))
    if ratio <= RESIDUAL_RATIO_WARN:
        return details, None
    kind = "complex " if m == 2 * n_echoes else ""
    return details, (f"fit quality: WARNING - the {kind}{fit.model} fits leave residuals {ratio:.1f} x the noise "
                     f"sigma in the liver ROI (median SD {s:.3g} against {noise_sigma:.3g}): the decay model does "
                     "not describe these data (e.g. bipolar-readout phase errors in a complex fit, stimulated "
                     "echoes, motion) or the noise sigma is too small; the R2 and its interval may be biased")
