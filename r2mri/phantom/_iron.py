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

# Non-liver tissue properties: relative proton density (apparent, T1 weighting at
# TR ~ 1 s folded in), T2 (ms), R2* (s^-1) and T1 (ms).
# T1 and T2 of fat (subcutaneous), muscle (paravertebral), spleen, bone (L4 marrow),
# other viscera (kidney cortex as stand-in) and the liver's T1 are the in-vivo 3.0 T
# means of de Bazelaire CMJ, Duhamel GD, Rofsky NM, Alsop DC. Radiology
# 2004;230:652-659, doi:10.1148/radiol.2303021331 [C: values as quoted in the
# abstract]. They are used at 1.5 T too, where T2s are somewhat longer: at 1.5 T they
# are ILLUSTRATIVE. Proton densities, all R2* values and blood (T2 250 ms, T1 1400 ms;
# flow effects not modelled) are ILLUSTRATIVE, UNVERIFIED. These tissues only shape
# the anatomy around the liver; the liver truth comes from the LIC map and the
# calibration. The liver T1 is used only by the EPG simulation of CPMG trains;
# iron's shortening of T1 is ignored.
#                                  pd   T2 ms  R2*   T1 ms
_TABLE = {
    LABELS["subcutaneous_fat"]: (1.3, 68.0, 40.0, 382.0),
    LABELS["muscle"]: (0.6, 29.0, 40.0, 898.0),
    LABELS["soft_tissue"]: (0.8, 76.0, 25.0, 1142.0),
    LABELS["liver"]: (1.0, np.nan, np.nan, 809.0),  # R2/R2* from the LIC map
    LABELS["vessel"]: (0.9, 250.0, 10.0, 1400.0),
    LABELS["spleen"]: (1.0, 61.0, 20.0, 1328.0),
    LABELS["bone"]: (0.4, 49.0, 150.0, 586.0),
}
#: label -> (relative proton density, R2 s^-1, R2* s^-1, T1 s); air carries no signal.
TISSUES = {LABELS["air"]: (0.0, 0.0, 0.0, 1.0)}
TISSUES.update({lab: (pd, 1000.0 / t2, r2s, t1 / 1000.0) for lab, (pd, t2, r2s, t1) in _TABLE.items()})


def lic_map(labels: np.ndarray, x_mm, y_mm, z_mm, spec) -> np.ndarray:
    """LIC (mg/g) in liver parenchyma, NaN elsewhere.

    Construction, in this order: the uniform value ``lic_mg_per_g``; times a
    smooth log-normal texture of SD ``lic_log_sd`` in log LIC (or coefficient of
    variation ``lic_cv``) (Gaussian random field: white noise smoothed by a Gaussian of
    SD ``lic_correlation_voxels`` voxels or ``lic_correlation_mm`` mm, drawn from
    ``texture_seed`` and rescaled so its liver mean is exactly 1); times a
    left-right ramp ``1 + lic_lr_gradient * (u - 1/2)`` with u from 0 at the
    liver's right edge to 1 at its left edge; focal spheres then set their own LIC.
    """
    liver = labels == LABELS["liver"]
    lic = np.full(labels.shape, np.nan)
    if not liver.any():
        return lic
    value = np.full(labels.shape, float(spec.lic_mg_per_g))
    s = spec.texture_log_sd
    if s > 0:
        rng = np.random.default_rng(spec.texture_seed)
        white = rng.standard_normal(labels.shape)
        dz = float(z_mm[1] - z_mm[0]) if len(z_mm) > 1 else spec.slice_spacing_mm
        scale_mm = spec.texture_scale_mm
        sig = (scale_mm / spec.pixel_mm, scale_mm / spec.pixel_mm, scale_mm / dz)
        field = gaussian_filter(white, sig, mode="reflect")
        f = field[liver]
        field = (field - f.mean()) / (f.std() if f.std() > 0 else 1.0)
        # s = lic_log_sd, or from lic_cv: a log-normal with CV c has log-sd
        # sqrt(ln(1 + c^2)) (moments of the log-normal distribution) [D].
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
