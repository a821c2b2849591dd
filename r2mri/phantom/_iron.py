"""Iron in the phantom: the LIC map and the per-tissue relaxation properties.

The liver LIC map is mapped to R2 (or R2* for gradient echo) only through
``r2mri.calibration.r2_from_lic``: the forward St Pierre curve at 1.5 T, the
documented field-scaling bridge ``st-pierre-2005-3t-scaled`` at 3 T, or
``wood-2005-r2star`` for R2*. No calibration formula is repeated here.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from ..calibration import r2_from_lic
from ._anatomy import LABELS

__all__ = ["TISSUES", "lic_map", "tissue_maps"]

# Non-liver tissue properties: relative proton density (apparent, including T1
# weighting at TR ~ 1 s), R2 (s^-1), R2* (s^-1) and T1 (s).
# ILLUSTRATIVE, UNVERIFIED: round numbers of the order reported for abdominal
# tissues at 1.5 T (e.g. de Bazelaire et al., Radiology 2004;230:652; Stanisz et
# al., Magn Reson Med 2005;54:507 for 3 T), NOT checked against those texts. They
# only shape the anatomy around the liver; the liver truth comes from the LIC map
# and the calibration. The same values are used at 3 T. The liver's own T1 (used
# only by the EPG simulation of CPMG trains) is illustrative too, and iron's
# shortening of T1 is ignored.
#                      pd    R2     R2*    T1
TISSUES = {
    LABELS["air"]: (0.0, 0.0, 0.0, 1.0),
    LABELS["subcutaneous_fat"]: (1.3, 10.0, 40.0, 0.30),
    LABELS["muscle"]: (0.6, 25.0, 35.0, 1.00),
    LABELS["soft_tissue"]: (0.8, 12.5, 25.0, 1.00),
    LABELS["liver"]: (1.0, np.nan, np.nan, 0.60),  # R2/R2* from the LIC map
    LABELS["vessel"]: (0.9, 4.0, 10.0, 1.40),  # blood; flow effects not modelled
    LABELS["spleen"]: (1.0, 12.5, 20.0, 1.10),
    LABELS["bone"]: (0.4, 20.0, 150.0, 0.50),
}


def lic_map(labels: np.ndarray, x_mm, y_mm, z_mm, spec) -> np.ndarray:
    """LIC (mg/g) in liver parenchyma, NaN elsewhere.

    Construction, in this order: the uniform value ``lic_mg_per_g``; times a
    smooth log-normal texture of coefficient of variation ``lic_cv`` (Gaussian
    random field with correlation length ``lic_correlation_mm``, drawn from
    ``texture_seed`` and rescaled so its liver mean is exactly 1); times a
    left-right ramp ``1 + lic_lr_gradient * (u - 1/2)`` with u from 0 at the
    liver's right edge to 1 at its left edge; focal spheres then set their own LIC.
    """
    liver = labels == LABELS["liver"]
    lic = np.full(labels.shape, np.nan)
    if not liver.any():
        return lic
    value = np.full(labels.shape, float(spec.lic_mg_per_g))
    if spec.lic_cv > 0:
        rng = np.random.default_rng(spec.texture_seed)
        white = rng.standard_normal(labels.shape)
        dz = float(z_mm[1] - z_mm[0]) if len(z_mm) > 1 else spec.slice_spacing_mm
        sig = (spec.lic_correlation_mm / spec.pixel_mm, spec.lic_correlation_mm / spec.pixel_mm,
               spec.lic_correlation_mm / dz)
        field = gaussian_filter(white, sig, mode="reflect")
        f = field[liver]
        field = (field - f.mean()) / (f.std() if f.std() > 0 else 1.0)
        # Log-normal with CV c has log-sd s = sqrt(ln(1 + c^2)) (moments of the
        # log-normal distribution) [D].
        s = np.sqrt(np.log1p(spec.lic_cv**2))
        w = np.exp(s * field)
        w /= w[liver].mean()
        value = value * w
    if spec.lic_lr_gradient != 0:
        X = np.broadcast_to(np.asarray(x_mm)[:, None, None], labels.shape)
        xl = X[liver]
        u = (X - xl.min()) / max(xl.max() - xl.min(), 1e-9)
        value = value * (1.0 + spec.lic_lr_gradient * (u - 0.5))
    if spec.focal:
        X, Y, Z = np.meshgrid(x_mm, y_mm, z_mm, indexing="ij")
        for f in spec.focal:
            c = [float(v) for v in f["center_mm"]]
            inside = (X - c[0]) ** 2 + (Y - c[1]) ** 2 + (Z - c[2]) ** 2 <= float(f["radius_mm"]) ** 2
            value[inside] = float(f["lic_mg_per_g"])
    lic[liver] = value[liver]
    return lic


def tissue_maps(labels: np.ndarray, lic: np.ndarray, spec):
    """Per-voxel relative proton density, relaxation rate (s^-1) and T1 (s).

    The rate is R2 for spin-echo sequences and R2* for gradient echo. In air the
    rate is NaN (no tissue) and the density 0.
    """
    rate_col = 2 if spec.sequence == "GRE" else 1
    pd = np.zeros(labels.shape)
    rate = np.full(labels.shape, np.nan)
    t1 = np.ones(labels.shape)
    for lab, props in TISSUES.items():
        m = labels == lab
        if not m.any():
            continue
        pd[m] = props[0]
        t1[m] = props[3]
        if lab != LABELS["air"]:
            rate[m] = props[rate_col]
    liver = labels == LABELS["liver"]
    if liver.any():
        rate[liver] = np.asarray(r2_from_lic(lic[liver], calibration=spec.calibration_name), dtype=np.float64)
    return pd, rate, t1
