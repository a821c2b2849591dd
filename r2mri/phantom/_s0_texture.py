"""Fine S0 texture in the liver: within-tile variation of the signal at TE = 0.

Real liver S0 varies from voxel to voxel (proton density, T1 weighting, partial volume)
on scales the smooth receive shading (r2mri/phantom/_noise.py) does not have. This adds
it, as an option (``s0_log_sd`` > 0; off by default), to test estimators that read the
within-tile S0 spread from a smooth surface (r2mri/_s0_shading.py). The size of such
texture in two real (normal) livers was measured afterwards (benchmarks/s0_texture_real.py,
docs/statistics.md "*Fine S0 texture of real livers*"): about 0.01-0.02 in this parameter at
the 1-voxel scale; iron-overloaded and cirrhotic livers were not available. ``s0_log_sd`` is a
test parameter, not a tissue property [D].

Construction: white noise drawn from ``texture_seed`` through its own stream (independent
of the LIC texture of the same seed), smoothed by a Gaussian of SD
``s0_correlation_voxels`` voxels in-plane (the same physical length through-plane),
standardised over the liver, exponentiated with log-SD ``s0_log_sd``, and rescaled to a
liver mean of exactly 1, so the SNR (defined on the mean liver S0) is unchanged. Only
liver voxels are textured. The truth (R2, LIC) does not depend on it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from ._anatomy import LABELS

__all__ = ["s0_texture"]

_STREAM = 0x5030  # [D] a fixed second entropy word: the S0 texture's stream differs from the LIC texture's


def s0_texture(labels: np.ndarray, z_mm, spec) -> np.ndarray:
    """Multiplicative S0 factor, shape ``labels.shape``: log-normal in the liver, 1 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> lab = np.full((32, 32, 2), LABELS["liver"], np.uint8)
    >>> sp = SimpleNamespace(s0_log_sd=0.1, s0_correlation_voxels=1.0, texture_seed=0, pixel_mm=2.0,
    ...                      slice_spacing_mm=2.0)
    >>> f = s0_texture(lab, np.array([0.0, 2.0]), sp)
    >>> round(float(f.mean()), 6), bool(0.08 < np.log(f).std() < 0.12)
    (1.0, True)
    """
    out = np.ones(labels.shape)
    liver = labels == LABELS["liver"]
    s = float(spec.s0_log_sd)
    if s <= 0 or not liver.any():
        return out
    rng = np.random.default_rng([int(spec.texture_seed), _STREAM])
    white = rng.standard_normal(labels.shape)
    dz = float(z_mm[1] - z_mm[0]) if len(z_mm) > 1 else spec.slice_spacing_mm
    scale_mm = float(spec.s0_correlation_voxels) * spec.pixel_mm
    field = gaussian_filter(white, (scale_mm / spec.pixel_mm, scale_mm / spec.pixel_mm, scale_mm / dz), mode="reflect")
    f = field[liver]
    field = (field - f.mean()) / (f.std() if f.std() > 0 else 1.0)
    w = np.exp(s * field)
    out[liver] = w[liver] / w[liver].mean()
    return out
