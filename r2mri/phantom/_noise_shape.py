"""Spatially correlated noise for phantoms (off by default): what an interpolated reconstruction does.

Scanners often reconstruct on a finer grid than they acquire: k-space zero-filled before
the Fourier transform (Siemens "interpolation", GE "ZIP"), or the image filtered. The
noise of each channel is then no longer independent between neighbouring voxels, while
its variance per voxel is unchanged (the real 1.5 T liver series of benchmarks/real_liver.py,
ISMRM 2012 case 12: lag-1 / 2 / 3 correlation of the air's real part 0.79 / 0.43 / 0.17,
benchmarks/corr_noise.py). r2mri's estimators assume independent voxels; these options let
the phantoms test that assumption.

Two shapes, applied in-plane (axes 0 and 1), slice by slice and echo by echo, to each
real-valued standard-normal block that :mod:`r2mri.phantom._noise` draws (the real and
imaginary parts of every channel alike), then renormalised so the per-voxel SD stays 1
exactly:

``noise_interpolation = f`` (integer >= 2)
    k-space zero-filling by ``f`` per in-plane axis: only the central ``1/f`` of the
    frequencies is kept (``|k| < N / (2 f)``, symmetric, so the block stays real),
    periodic. The correlation at lag ``L`` along an axis is the Dirichlet kernel
    ``sum_k cos(2 pi k L / N) / n_kept`` (~ ``sinc(L / f)``; 64 voxels, ``f = 2``: 0.66 /
    0.03 / -0.22 at lags 1-3).
``noise_smoothing_voxels = c`` (> 0)
    a Gaussian kernel of SD ``c`` voxels (``scipy.ndimage.gaussian_filter``, periodic):
    correlation ``~exp(-L^2 / (4 c^2))`` (exact: the discrete kernel's autocorrelation).
    ``c = 1.03`` gives 0.79 / 0.39 / 0.12, close to the 1.5 T series.

:func:`lag_correlation` gives the exact correlation of either shape (tests, benchmarks).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["noise_shaper", "lag_correlation"]


def _gauss_kernel(c: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    half = int(4.0 * c + 0.5)  # scipy's default truncate = 4.0
    delta = np.zeros(2 * half + 1)
    delta[half] = 1.0
    return gaussian_filter1d(delta, c, mode="constant")


def _kept(n: int, factor: int) -> np.ndarray:
    return np.abs(np.fft.fftfreq(n)) < 0.5 / factor


def lag_correlation(shape_xy: tuple[int, int], *, interpolation: int = 1, smoothing_voxels: float = 0.0,
                    lags=(1, 2, 3)) -> dict[int, tuple[float, float]]:
    """Exact correlation of the shaped noise at in-plane ``lags``: ``{lag: (along x, along y)}``.

    Examples
    --------
    >>> r = lag_correlation((64, 64), interpolation=2)
    >>> round(r[1][0], 3), round(r[2][0], 3)
    (0.657, 0.032)
    """
    out = {}
    for lag in lags:
        pair = []
        for n in shape_xy:
            r = 1.0
            if interpolation > 1:
                k = np.fft.fftfreq(n)[_kept(n, interpolation)]
                r *= float(np.mean(np.cos(2 * np.pi * k * lag)))
            if smoothing_voxels > 0:
                w = _gauss_kernel(smoothing_voxels)
                r *= float(np.sum(w[lag:] * w[:-lag]) / np.sum(w * w)) if lag < w.size else 0.0
            pair.append(r)
        out[int(lag)] = (pair[0], pair[1])
    return out


def noise_shaper(spec) -> "Callable[[np.ndarray], None] | None":
    """In-place shaping of a float32 standard-normal block (x, y, z, echo) for ``spec``'s
    ``noise_interpolation`` / ``noise_smoothing_voxels``; ``None`` when both are off."""
    factor = int(getattr(spec, "noise_interpolation", 1))
    c = float(getattr(spec, "noise_smoothing_voxels", 0.0))
    if factor <= 1 and c <= 0:
        return None

    def shape(buf: np.ndarray) -> None:
        x = buf.astype(np.float64)
        if factor > 1:
            nx, ny = x.shape[:2]
            keep = _kept(nx, factor)[:, None] & _kept(ny, factor)[None, :]
            f = np.fft.fft2(x, axes=(0, 1))
            f *= keep.reshape(keep.shape + (1,) * (x.ndim - 2))
            x = np.fft.ifft2(f, axes=(0, 1)).real
            x /= np.sqrt(keep.mean())  # variance of the kept share of white noise
        if c > 0:
            from scipy.ndimage import gaussian_filter

            x = gaussian_filter(x, (c, c) + (0,) * (x.ndim - 2), mode="wrap")
            x /= np.sum(_gauss_kernel(c) ** 2)  # (sum w^2)^2 in 2-D: SD factor sum w^2
        buf[...] = x

    return shape
