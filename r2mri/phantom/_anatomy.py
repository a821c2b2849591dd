"""Anatomy of the digital phantom: a label map of an axial abdominal slab.

All shapes are defined in patient millimetres (DICOM LPS: +x patient left, +y
posterior, +z superior, origin at the slab centre), so changing the matrix, pixel
size or slice count samples the same anatomy more or less finely. Labels are
assigned voxel by voxel at the voxel centre: there is no partial-volume mixing, so
the truth inside each label is exact.

The shapes are plausible, not anatomical measurements: ellipses and tubes sized
like an adult abdomen at the level of the liver and spleen (illustrative).
"""

from __future__ import annotations

import numpy as np

__all__ = ["LABELS", "grid_mm", "affine_ras", "label_map"]

#: Label ids of ``truth.labels`` (documented in docs/phantoms.md).
LABELS = {
    "air": 0,
    "subcutaneous_fat": 1,
    "muscle": 2,
    "soft_tissue": 3,  # other viscera (bowel, kidney, stomach...), one tissue class
    "liver": 4,  # liver parenchyma: the truth liver mask
    "vessel": 5,  # hepatic/portal vessels and IVC inside the liver (blood)
    "spleen": 6,
    "bone": 7,  # vertebral body
}

# Illustrative shapes (mm, LPS). Body: outer ellipse semi-axes; fat and muscle rings.
_BODY_AXES = (165.0, 120.0)
_BODY_CENTER = (0.0, 5.0)
_FAT_MM = 15.0
_MUSCLE_MM = 10.0
# Liver: right lobe ellipse + left lobe ellipse (centre x, y; semi-axes a, b), z half-extent.
_LIVER_LOBES = (((-60.0, 0.0), (80.0, 75.0)), ((5.0, -45.0), (55.0, 30.0)))
_LIVER_Z_HALF = 110.0
_LIVER_Z_CENTER = 20.0
_SPLEEN = ((100.0, 45.0), (32.0, 55.0))
_SPLEEN_Z_HALF = 70.0
_SPINE = ((0.0, 80.0), 20.0)
_PARASPINAL = (((-38.0, 92.0), (20.0, 22.0)), ((38.0, 92.0), (20.0, 22.0)))
# Vessels: (start xyz, end xyz, radius) in mm; IVC along z, portal and hepatic branches.
_VESSELS = (
    ((-25.0, 40.0, -200.0), (-25.0, 40.0, 200.0), 10.0),  # inferior vena cava
    ((-20.0, 15.0, -25.0), (-100.0, -5.0, -10.0), 6.0),  # right portal vein
    ((-20.0, 15.0, -20.0), (25.0, -40.0, -5.0), 4.0),  # left portal vein
    ((-30.0, 35.0, 25.0), (-115.0, -15.0, 35.0), 4.0),  # right hepatic vein
    ((-28.0, 35.0, 22.0), (-45.0, -60.0, 30.0), 3.5),  # middle hepatic vein
)


def grid_mm(matrix: tuple[int, int], pixel_mm: float, n_slices: int, spacing_mm: float):
    """Voxel-centre coordinates (LPS mm) along each axis: ``x (i), y (j), z (k)``."""
    nx, ny = matrix
    x = (np.arange(nx) - (nx - 1) / 2.0) * pixel_mm
    y = (np.arange(ny) - (ny - 1) / 2.0) * pixel_mm
    z = (np.arange(n_slices) - (n_slices - 1) / 2.0) * spacing_mm
    return x, y, z


def affine_ras(matrix: tuple[int, int], pixel_mm: float, n_slices: int, spacing_mm: float) -> np.ndarray:
    """Voxel (i, j, k) -> RAS+ mm affine for the grid of :func:`grid_mm`.

    Index i runs along LPS +x (to patient left), j along LPS +y (posterior), k along
    +z (superior): the DICOM row/column directions (1,0,0) and (0,1,0).
    """
    x, y, z = grid_mm(matrix, pixel_mm, n_slices, spacing_mm)
    aff = np.diag([-pixel_mm, -pixel_mm, spacing_mm, 1.0])
    aff[:3, 3] = [-x[0], -y[0], z[0]]
    return aff


def _ellipse(X, Y, center, axes, scale=1.0):
    a, b = axes[0] * scale, axes[1] * scale
    return ((X - center[0]) / a) ** 2 + ((Y - center[1]) / b) ** 2 <= 1.0


def _segment_distance(P: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((P - a) @ ab) / float(ab @ ab), 0.0, 1.0)
    closest = a + t[..., None] * ab
    return np.linalg.norm(P - closest, axis=-1)


def label_map(matrix, pixel_mm, n_slices, spacing_mm, *, vessels: bool = True) -> np.ndarray:
    """Label volume (x, y, z) uint8 with the ids of :data:`LABELS`."""
    x, y, z = grid_mm(matrix, pixel_mm, n_slices, spacing_mm)
    X, Y = np.meshgrid(x, y, indexing="ij")
    labels = np.zeros((len(x), len(y), len(z)), dtype=np.uint8)
    L = LABELS
    body = _ellipse(X, Y, _BODY_CENTER, _BODY_AXES)
    inner_fat = _ellipse(X, Y, _BODY_CENTER, (_BODY_AXES[0] - _FAT_MM, _BODY_AXES[1] - _FAT_MM))
    inner_muscle = _ellipse(
        X, Y, _BODY_CENTER, (_BODY_AXES[0] - _FAT_MM - _MUSCLE_MM, _BODY_AXES[1] - _FAT_MM - _MUSCLE_MM)
    )
    for k, zk in enumerate(z):
        sl = np.zeros(X.shape, dtype=np.uint8)
        sl[body] = L["subcutaneous_fat"]
        sl[inner_fat] = L["muscle"]
        sl[inner_muscle] = L["soft_tissue"]
        for center, axes in _PARASPINAL:
            sl[_ellipse(X, Y, center, axes) & inner_fat] = L["muscle"]
        sl[_ellipse(X, Y, _SPINE[0], (_SPINE[1], _SPINE[1]))] = L["bone"]
        # Liver and spleen shrink towards their upper/lower tips (ellipsoidal in z).
        u = (zk - _LIVER_Z_CENTER) / _LIVER_Z_HALF
        if abs(u) < 1:
            s = np.sqrt(1.0 - u * u)
            liver = np.zeros(X.shape, dtype=bool)
            for center, axes in _LIVER_LOBES:
                liver |= _ellipse(X, Y, center, axes, s)
            sl[liver & inner_muscle] = L["liver"]
        u = zk / _SPLEEN_Z_HALF
        if abs(u) < 1:
            sl[_ellipse(X, Y, _SPLEEN[0], _SPLEEN[1], np.sqrt(1.0 - u * u)) & inner_muscle] = L["spleen"]
        labels[:, :, k] = sl
    if vessels:
        liver = labels == L["liver"]
        if liver.any():
            idx = np.nonzero(liver)
            P = np.stack([x[idx[0]], y[idx[1]], z[idx[2]]], axis=-1)
            inside = np.zeros(P.shape[0], dtype=bool)
            for a, b, r in _VESSELS:
                inside |= _segment_distance(P, np.asarray(a), np.asarray(b)) <= r
            labels[tuple(i[inside] for i in idx)] = L["vessel"]
    return labels
