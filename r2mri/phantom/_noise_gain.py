"""Noise that is larger (or smaller) in the body than in the air (off by default).

r2mri measures the noise ``sigma`` in the air around the body (:func:`r2mri.estimate_noise`)
and every noise-corrected R2 assumes the liver has the same ``sigma``. On a scanner it
need not: parallel imaging (SENSE, GRAPPA) amplifies the noise by the geometry factor
``g(x) >= 1``, which varies smoothly in space and is largest where aliased copies of the
object overlap (Pruessmann KP, Weiger M, Scheidegger MB, Boesiger P. SENSE: sensitivity
encoding for fast MRI. Magn Reson Med 1999;42:952-962); coil combination with
non-uniform weights and vendor image filters change the noise level inside and outside
the body differently too. At high iron with 8 channels the headline R2 moves ~5.6 % per
1 % of ``sigma`` (benchmarks/README.md, "sigmaci"), so such a mismatch matters.

``body_noise_ratio = r`` (default 1: off) scales the per-channel noise SD by

    g(x, y) = 1 + (r - 1) * B(x, y),

with ``B`` the in-plane body outline (any slice) smoothed by a Gaussian of SD
:data:`EDGE_VOXELS` voxels: ``r`` inside the body, 1 in the air far from it, a smooth
step at the skin. It is a stand-in for the *mismatch* between the air and the liver, not
a model of a real g-factor map (which depends on the coil geometry and the acceleration);
``r < 1`` stands for a background whose noise is higher than the tissue's. The liver's
mean noise SD is written to the phantom's summary (``noise_sigma_liver_mean``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["body_noise_gain", "with_gain", "EDGE_VOXELS"]

#: SD (voxels) of the Gaussian that smooths the body outline into the gain map (a design
#: choice: a smooth step a few voxels wide, so the gain is ``r`` a few voxels inside the skin).
EDGE_VOXELS = 2.0


def body_noise_gain(body2d: np.ndarray, ratio: float) -> "np.ndarray | None":
    """Gain map (x, y) of the noise SD for ``ratio`` (body over air); ``None`` when ``ratio == 1``.

    Examples
    --------
    >>> import numpy as np
    >>> body = np.zeros((32, 32), bool); body[8:24, 8:24] = True
    >>> g = body_noise_gain(body, 1.03)
    >>> round(float(g[16, 16]), 4), round(float(g[0, 0]), 4)
    (1.03, 1.0)
    """
    if float(ratio) == 1.0:
        return None
    from scipy.ndimage import gaussian_filter

    b = gaussian_filter(np.asarray(body2d, dtype=np.float64), EDGE_VOXELS, mode="constant")
    return 1.0 + (float(ratio) - 1.0) * b


def with_gain(shaper: "Callable[[np.ndarray], None] | None",
              gain: "np.ndarray | None") -> "Callable[[np.ndarray], None] | None":
    """The noise shaper (:func:`r2mri.phantom._noise_shape.noise_shaper`) followed by the
    gain map: each standard-normal block (x, y, z, echo) is shaped, then multiplied by
    ``gain[:, :, None, None]``; ``shaper`` unchanged when ``gain`` is None."""
    if gain is None:
        return shaper
    g32 = gain.astype(np.float32)[:, :, None, None]

    def shape(buf: np.ndarray) -> None:
        if shaper is not None:
            shaper(buf)
        buf *= g32

    return shape
