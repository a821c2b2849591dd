"""The air around the body: the voxels :func:`r2mri.analyze` does not fit.

:func:`air_around_body` is public as ``r2mri.analysis.air_around_body`` (re-exported there).
"""

from __future__ import annotations

import numpy as np


#: Tail probability of the air test [D, design choice, the value r2mri.noise uses for its
#: background]: a voxel is noise-only when sum_k M_k^2 / sigma^2 over its m echoes is below
#: the 1 - P_AIR quantile of a chi-square with 2 n m degrees of freedom (n channels).
P_AIR = 1e-3


def air_around_body(data: np.ndarray, sigma: float, coils: int = 1, *, p_air: float = P_AIR) -> np.ndarray:
    """Voxels of the air around the body: noise-only at every echo and connected to the FOV edge.

    A voxel is noise-only when ``Q = sum_k M_k^2`` over its echoes is below
    ``sigma^2 chi2.isf(p_air, 2 n m)`` (non-finite voxels count as noise-only); the air
    is the noise-only voxels 4-connected in-plane to the in-plane border of the volume
    (the background :func:`r2mri.estimate_noise` uses). Dark tissue (organs at the noise
    floor, vessels, bone) lies inside the brighter body wall and is not air.

    :func:`r2mri.analyze` does not fit these voxels (maps NaN, status MASKED): they cannot be
    liver, and noise-only voxels are the slowest case of the noise-corrected fit. The
    automatic ROI no longer sees their noise fits (some reach status OK with a large
    S0), which can move its edge by a few voxels; on the shipped phantoms the headline
    moved by less than a tenth of its 95 % interval (tests/test_analyze.py checks it).

    Parameters
    ----------
    data : ndarray, shape (x, y, z, echo)
        Magnitude images.
    sigma : float
        Noise SD per real/imaginary part of one channel.
    coils : int
        Channels combined by root-sum-of-squares.

    Returns
    -------
    ndarray of bool, shape (x, y, z)
    """
    from scipy import ndimage
    from scipy.special import gammainccinv

    data = np.asarray(data)
    if data.ndim != 4 or not (np.isfinite(sigma) and sigma > 0):
        return np.zeros(data.shape[:3], dtype=bool)
    m = data.shape[-1]
    dof_half = float(max(int(coils), 1) * m)  # chi2.isf(p, 2 h) = 2 gammainccinv(h, p)
    thr = float(sigma) ** 2 * 2.0 * float(gammainccinv(dof_half, p_air))
    q = np.einsum("...k,...k->...", data, data, dtype=np.float64)
    low = ~(q >= thr)  # NaN counts as noise-only (the fit marks it BAD_INPUT anyway)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1, 1, 1] = structure[0, 1, 1] = structure[2, 1, 1] = structure[1, 0, 1] = structure[1, 2, 1] = True
    labels, n = ndimage.label(low, structure)
    if n == 0:
        return np.zeros(low.shape, dtype=bool)
    border = np.concatenate([labels[0].ravel(), labels[-1].ravel(), labels[:, 0].ravel(), labels[:, -1].ravel()])
    keep = np.zeros(n + 1, dtype=bool)
    keep[border] = True
    keep[0] = False
    return keep[labels]
