"""Receive coils and noise: complex Gaussian noise per channel, root-sum-of-squares.

Each of ``n`` channels sees ``S(x) c_k(x)`` plus complex white Gaussian noise with
standard deviation ``sigma`` in the real and in the imaginary part, independent
between channels, voxels and echoes. The magnitude image is the root-sum-of-squares
``M = sqrt(sum_k |S c_k + n_k|^2)``, which is non-central chi distributed with 2n
degrees of freedom, scale ``sigma`` and non-centrality ``A = S sqrt(sum_k |c_k|^2)``
[1]_ [2]_.

The sensitivities are normalised to ``sqrt(sum_k |c_k|^2) = 1`` and the receive
shading (the raw RSS profile to the power ``coil_shading``) is folded into the
truth S0 instead: the noise-free RSS image is therefore exactly ``S0 x decay`` and
the truth S0 is the non-centrality at TE = 0.

For the phase image the same noisy channels are combined with the known
sensitivities (Roemer PB, Edelstein WA, Hayes CE, Souza SP, Mueller OM. The NMR phased
array. Magn Reson Med 1990;16:192-225): ``sum_k conj(c_k) y_k / sum_k |c_k|^2``, which
for unit-RSS sensitivities is ``S + n`` with complex Gaussian noise of the same sigma per
real/imaginary part and no coil phase left. Magnitude stays the RSS above (the
existing magnitude model); the phase image is the argument of the combined channel signal.

References
----------
.. [1] Constantinides CD, Atalar E, McVeigh ER. Signal-to-noise measurements in
   magnitude images from NMR phased arrays. Magn Reson Med 1997;38:852-857.
.. [2] Feng Y, He T, Gatehouse PD, et al. Improved MRI R2* relaxometry of iron-loaded
   liver with noise correction. Magn Reson Med 2013;70:1765-1774.
"""

from __future__ import annotations

import numpy as np

__all__ = ["coil_maps", "rss_noisy", "rss_and_combined"]

# Illustrative coil geometry: loops on an ellipse 40 mm outside the body outline,
# Gaussian sensitivity fall-off of 120 mm, phase turning with the viewing angle.
_COIL_RING_MM = (205.0, 160.0)
_COIL_WIDTH_MM = 120.0


def coil_maps(x_mm, y_mm, n_coils: int, shading_exponent: float, body: np.ndarray):
    """Complex sensitivities (n, x, y) of unit RSS, and the receive shading map (x, y).

    ``shading = rss_raw ** shading_exponent``, scaled to mean 1 over ``body``
    (a boolean (x, y) map); 0 gives a flat receive profile.
    """
    X, Y = np.meshgrid(np.asarray(x_mm), np.asarray(y_mm), indexing="ij")
    raw = np.empty((n_coils,) + X.shape, dtype=np.complex128)
    for k in range(n_coils):
        phi = 2.0 * np.pi * (k + 0.5) / n_coils
        cx, cy = _COIL_RING_MM[0] * np.cos(phi), _COIL_RING_MM[1] * np.sin(phi)
        d2 = (X - cx) ** 2 + (Y - cy) ** 2
        phase = np.arctan2(Y - cy, X - cx) + phi
        raw[k] = np.exp(-d2 / (2.0 * _COIL_WIDTH_MM**2)) * np.exp(1j * phase)
    rss_raw = np.sqrt(np.sum(np.abs(raw) ** 2, axis=0))
    shading = rss_raw**shading_exponent
    ref = shading[body].mean() if body.any() else shading.mean()
    shading = shading / ref
    sens = raw / rss_raw  # unit root-sum-of-squares: the shading lives in the truth S0
    return sens, shading


def rss_noisy(signal: np.ndarray, sens: np.ndarray, sigma: float, rng: np.random.Generator,
              shape=None) -> np.ndarray:
    """RSS magnitude of ``signal`` (x, y, z, echo) seen by coils ``sens`` (n, x, y) plus noise.

    Noise is drawn coil by coil, real part then imaginary part, each as one float32
    ``standard_normal`` block of the image's shape, so a given generator state always
    gives the same image. ``shape``: optional in-place shaping of each block (spatially
    correlated noise, :func:`r2mri.phantom._noise_shape.noise_shaper`). Returns float32.
    """
    shaper, shape = shape, signal.shape
    sig = signal.astype(np.float32)
    acc = np.zeros(shape, dtype=np.float32)
    buf = np.empty(shape, dtype=np.float32)
    s32 = np.float32(sigma)
    for c in sens:
        for part in (c.real, c.imag):
            rng.standard_normal(shape, dtype=np.float32, out=buf)
            if shaper is not None:
                shaper(buf)
            buf *= s32
            buf += sig * part.astype(np.float32)[:, :, None, None]
            buf *= buf
            acc += buf
    np.sqrt(acc, out=acc)
    return acc


def rss_and_combined(signal: np.ndarray, sens: np.ndarray, sigma: float, rng: np.random.Generator, shape=None):
    """RSS magnitude and sensitivity-weighted complex combination of a complex ``signal``.

    ``signal`` (x, y, z, echo) complex; ``sens`` (n, x, y) of unit RSS. Noise is drawn in
    the order of :func:`rss_noisy` (coil, real part then imaginary part, float32 blocks),
    so a real ``signal`` gives the same RSS magnitude as :func:`rss_noisy` with the same
    generator state; ``shape`` as there. Returns ``(magnitude float32, combined complex64)``.
    """
    shaper, shape = shape, signal.shape
    sr = np.ascontiguousarray(signal.real, dtype=np.float32)
    si = np.ascontiguousarray(signal.imag, dtype=np.float32)
    acc = np.zeros(shape, dtype=np.float32)
    comb_r = np.zeros(shape, dtype=np.float32)
    comb_i = np.zeros(shape, dtype=np.float32)
    yr = np.empty(shape, dtype=np.float32)
    yi = np.empty(shape, dtype=np.float32)
    s32 = np.float32(sigma)
    for c in sens:
        cr = c.real.astype(np.float32)[:, :, None, None]
        ci = c.imag.astype(np.float32)[:, :, None, None]
        rng.standard_normal(shape, dtype=np.float32, out=yr)
        if shaper is not None:
            shaper(yr)
        yr *= s32
        yr += sr * cr - si * ci
        rng.standard_normal(shape, dtype=np.float32, out=yi)
        if shaper is not None:
            shaper(yi)
        yi *= s32
        yi += sr * ci + si * cr
        acc += yr * yr + yi * yi
        comb_r += cr * yr + ci * yi  # conj(c) y
        comb_i += cr * yi - ci * yr
    np.sqrt(acc, out=acc)
    return acc, (comb_r + 1j * comb_i).astype(np.complex64)
