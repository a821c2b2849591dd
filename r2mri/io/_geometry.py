"""Voxel grids: DICOM patient coordinates to the RAS+ affine, and grid matching.

Array convention: the one dcm2niix writes (NIfTI ``i`` runs along a DICOM row, i.e.
indexes columns), so a NIfTI written from ``img.data`` with ``img.affine`` lands where
the DICOM was and an axial slice shows with x = left-right in every NIfTI viewer:

- ``data[i, j, k]`` is column ``i``, row ``j`` of slice ``k``; i.e. the 2-D DICOM
  ``pixel_array`` (rows, columns) is **transposed** into (x, y). (dcm2niix also
  reverses the row order by default; we do not, the affine carries it either way.
  ``nibabel.nicom`` keeps (row, column) order instead; the tests check that its
  affine and ours put every voxel at the same world position after swapping i/j.)
- In DICOM LPS millimetres the voxel centre of ``(i, j, k)`` is
  ``IPP_0 + i * dc * F_row + j * dr * F_col + k * s`` where ``F_row`` is
  ImageOrientationPatient[:3] (direction of increasing column index), ``F_col`` is
  ImageOrientationPatient[3:], ``dr, dc`` = PixelSpacing (row spacing, column
  spacing; DICOM PS3.3 C.7.6.2.1.1), ``IPP_0`` the ImagePositionPatient of the
  first slice along the slice normal and ``s`` the step between slice positions.
- RAS+ = diag(-1, -1, 1) applied to LPS (DICOM PS3.3 C.7.6.2.1.1 defines LPS;
  NIfTI-1 ``sform`` is RAS+).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: LPS -> RAS (flip x and y), DICOM PS3.3 C.7.6.2.1.1 vs NIfTI-1 sform convention.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Tolerances for "same geometry" (our choice, not a published value): direction
#: cosines within 1e-4, lengths within 1e-3 mm relative + 0.01 mm absolute.
ORIENTATION_ATOL = 1e-4
MM_ATOL = 0.01
MM_RTOL = 1e-3


def slice_normal(row_cos: np.ndarray, col_cos: np.ndarray) -> np.ndarray:
    """Unit normal ``F_row x F_col`` (the direction slices are sorted along)."""
    n = np.cross(row_cos, col_cos)
    norm = np.linalg.norm(n)
    if not np.isfinite(norm) or norm < 1e-6:
        raise InputError("ImageOrientationPatient: row and column directions are parallel")
    return n / norm


def affine_from_dicom(
    row_cos: np.ndarray,
    col_cos: np.ndarray,
    pixel_spacing: tuple[float, float],
    first_position: np.ndarray,
    slice_step: np.ndarray,
) -> np.ndarray:
    """RAS+ affine for ``data[col, row, slice]`` (see module docstring)."""
    dr, dc = float(pixel_spacing[0]), float(pixel_spacing[1])
    lps = np.eye(4)
    lps[:3, 0] = np.asarray(row_cos, float) * dc
    lps[:3, 1] = np.asarray(col_cos, float) * dr
    lps[:3, 2] = np.asarray(slice_step, float)
    lps[:3, 3] = np.asarray(first_position, float)
    return LPS_TO_RAS @ lps


def close_mm(a, b) -> bool:
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=MM_RTOL, atol=MM_ATOL))


def _as_3d(mask: np.ndarray, name: str) -> np.ndarray:
    """``mask`` as a 3-D array (a trailing axis of 1 dropped, a 2-D mask given one slice)."""
    mask = np.asarray(mask)
    if mask.ndim == 4 and mask.shape[3] == 1:
        mask = mask[..., 0]
    if mask.ndim == 2:
        mask = mask[..., None]
    if mask.ndim != 3:
        raise InputError(f"{name}: expected a 3-D mask, got shape {mask.shape}")
    return mask


def _axis_map(mask_shape: tuple, ma: np.ndarray, shape: tuple, ia: np.ndarray, name: str):
    """``(perm, sign)``: mask axis ``j`` is image axis ``perm[j]``, reversed where ``sign[j] < 0``.

    Refuses a degenerate affine, a rotation that is not a flip/permutation, and a voxel
    size that differs (axes of length 1 in both grids excepted).
    """
    mcols = ma[:3, :3]
    icols = ia[:3, :3]
    mlen = np.linalg.norm(mcols, axis=0)
    ilen = np.linalg.norm(icols, axis=0)
    if np.any(mlen <= 0) or np.any(ilen <= 0) or not np.all(np.isfinite(ma)):
        raise InputError(f"{name}: degenerate affine {ma.tolist()}")
    mdir = mcols / mlen
    idir = icols / ilen
    # cosines between every mask axis (columns) and every image axis (rows)
    cos = idir.T @ mdir
    perm = np.full(3, -1)
    sign = np.zeros(3)
    for j in range(3):
        i = int(np.argmax(np.abs(cos[:, j])))
        if abs(abs(cos[i, j]) - 1.0) > 1e-3:
            raise InputError(
                f"{name}: grid is rotated relative to the image (axis {j} direction "
                f"{np.round(mdir[:, j], 4).tolist()}), not a flip/permutation of it"
            )
        perm[j] = i
        sign[j] = np.sign(cos[i, j])
    if sorted(perm.tolist()) != [0, 1, 2]:
        raise InputError(f"{name}: axes do not map one-to-one onto the image axes")
    for j in range(3):
        i = perm[j]
        if mask_shape[j] > 1 or shape[i] > 1:
            if not np.isclose(mlen[j], ilen[i], rtol=MM_RTOL, atol=MM_ATOL):
                raise InputError(
                    f"{name}: voxel size {mlen[j]:.4g} mm along its axis {j} differs from the "
                    f"image's {ilen[i]:.4g} mm"
                )
    return perm, sign


def _voxel_offset(ma: np.ndarray, ia: np.ndarray, name: str) -> np.ndarray:
    """Image voxel index (integers) of the mask's voxel (0, 0, 0); refused between voxel centres."""
    icols = ia[:3, :3]
    # image index of mask voxel (0,0,0)
    origin = np.linalg.solve(icols, ma[:3, 3] - ia[:3, 3])
    # size-1 image axes: offset measured in units of that axis length may be arbitrary
    # fraction only if mask is also size 1 there; require |offset| < 0.5 voxel then.
    off = np.rint(origin)
    if np.any(np.abs(origin - off) > 0.05):
        raise InputError(
            f"{name}: voxel centres fall between image voxels (offset {np.round(origin, 3).tolist()})"
        )
    off = off.astype(int)
    return off


def _reoriented(mask: np.ndarray, perm: np.ndarray, sign: np.ndarray, off: np.ndarray):
    """``(arr, lo)``: the mask in image axis order and direction, and its first voxel's image index."""
    # reorder mask axes into image axis order, flipping where needed
    out_shape = [0, 0, 0]
    for j in range(3):
        out_shape[perm[j]] = mask.shape[j]
    arr = np.transpose(mask, np.argsort(perm))
    # after transpose, axis i of arr is mask axis j with perm[j] == i
    lo = off.copy()
    for i in range(3):
        j = int(np.where(perm == i)[0][0])
        if sign[j] < 0:
            arr = np.flip(arr, axis=i)
            lo[i] = off[i] - (mask.shape[j] - 1)
    return arr, lo


def match_grid(
    mask: np.ndarray,
    mask_affine: np.ndarray,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    *,
    allow_subset: bool = False,
    name: str = "mask",
) -> np.ndarray:
    """Put ``mask`` onto the grid ``(shape, affine)`` if it differs only by axis flips,
    permutations or (``allow_subset``) an integer voxel offset; otherwise InputError.

    Axes of length 1 only need to agree in direction (their spacing is arbitrary:
    a single slice has no slice step, and writers fill it with the thickness).
    """
    mask = _as_3d(mask, name)
    ma = np.asarray(mask_affine, float)
    ia = np.asarray(affine, float)
    perm, sign = _axis_map(mask.shape, ma, shape, ia, name)
    off = _voxel_offset(ma, ia, name)
    arr, lo = _reoriented(mask, perm, sign, off)
    hi = lo + np.array(arr.shape)
    full = (np.all(lo == 0) and tuple(arr.shape) == tuple(shape))
    if full:
        return arr
    if not allow_subset:
        raise InputError(
            f"{name}: grid of shape {tuple(mask.shape)} does not cover the image grid "
            f"{tuple(shape)} (voxel offset {lo.tolist()})"
        )
    if np.any(lo < 0) or np.any(hi > np.array(shape)):
        raise InputError(
            f"{name}: extends outside the image grid {tuple(shape)} (voxels {lo.tolist()} to "
            f"{(hi - 1).tolist()})"
        )
    out = np.zeros(shape, dtype=arr.dtype)
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = arr
    return out
