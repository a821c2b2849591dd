"""Liver masks: NIfTI (same grid, or flipped/permuted) and DICOM SEG (highdicom)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..image import MultiEchoImage
from ._geometry import LPS_TO_RAS, match_grid


def load_mask(path, like: MultiEchoImage, *, segment: int | None = None) -> np.ndarray:
    """Load a binary mask onto the voxel grid of ``like``.

    Parameters
    ----------
    path : path
        NIfTI (``.nii``/``.nii.gz``; nonzero = inside) or DICOM Segmentation.
    like : MultiEchoImage
        The image whose grid (shape and affine) the mask must match.
    segment : int, optional
        DICOM SEG only: segment number to use (default: union of all segments).

    Returns
    -------
    ndarray of bool, shape ``like.shape``

    Raises
    ------
    InputError
        Unreadable file, or a grid that is not the image grid up to axis flips and
        permutations (DICOM SEG may also cover only some of the image's slices).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, nibabel as nib
    >>> from r2mri import MultiEchoImage
    >>> img = MultiEchoImage(np.ones((3, 2, 1, 2)), [0.006, 0.009])
    >>> m = np.zeros((3, 2, 1)); m[0, 1, 0] = 1
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "mask.nii.gz"
    >>> nib.save(nib.Nifti1Image(m[::-1], np.diag([-1., 1, 1, 1]) @ np.array(
    ...     [[1, 0, 0, -2], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], float)), f)
    >>> load_mask(f, img)[..., 0].astype(int).tolist()
    [[0, 1], [0, 0], [0, 0]]
    """
    if not isinstance(like, MultiEchoImage):
        raise InputError(f"like: expected a MultiEchoImage, got {type(like).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path: expected a file path, got {path!r}")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such mask file")
    name = p.name.lower()
    if name.endswith(".nii") or name.endswith(".nii.gz"):
        if segment is not None:
            raise InputError("segment: only applies to DICOM SEG masks")
        return _nifti_mask(p, like)
    return _seg_mask(p, like, segment)


def _nifti_mask(p: Path, like: MultiEchoImage) -> np.ndarray:
    import nibabel as nib

    try:
        img = nib.load(str(p))
        arr = np.asanyarray(img.dataobj)
        aff = img.affine
    except Exception as exc:
        raise InputError(f"{p}: unreadable NIfTI mask ({type(exc).__name__}: {exc})") from None
    if aff is None:
        raise InputError(f"{p}: NIfTI mask has no affine")
    if arr.ndim > 3 and all(n == 1 for n in arr.shape[3:]):
        arr = arr.reshape(arr.shape[:3])
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{p}: mask contains NaN or inf")
    out = match_grid(arr != 0, aff, like.shape, like.affine, name=str(p))
    return np.ascontiguousarray(out, dtype=bool)


def _seg_mask(p: Path, like: MultiEchoImage, segment: int | None) -> np.ndarray:
    import highdicom as hd
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(p))
    except InvalidDicomError:
        raise InputError(f"{p}: mask is neither NIfTI (.nii/.nii.gz) nor DICOM") from None
    except Exception as exc:
        raise InputError(f"{p}: unreadable DICOM mask ({type(exc).__name__}: {exc})") from None
    if str(ds.get("Modality", "")) != "SEG":
        raise InputError(f"{p}: DICOM mask must be a Segmentation (Modality SEG), got {ds.get('Modality')!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
            nums = [segment] if segment is not None else None
            vol = seg.get_volume(segment_numbers=nums, combine_segments=True, relabel=False)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{p}: cannot read the segmentation as a volume ({type(exc).__name__}: {exc})") from None
    fuid = getattr(vol, "frame_of_reference_uid", None)
    img_fuid = like.metadata.get("frame_of_reference_uid")
    if fuid and img_fuid and str(fuid) != str(img_fuid):
        raise InputError(f"{p}: frame of reference {fuid} differs from the image's {img_fuid}")
    arr = np.asarray(vol.array)
    if arr.ndim == 4:
        arr = arr.any(axis=-1)
    # highdicom Volume: array axes (slice, row, column), affine in LPS
    # (highdicom.Volume docs). Ours: (column, row, slice), RAS.
    arr = np.transpose(arr, (2, 1, 0)) != 0
    lps = np.asarray(vol.affine, float)[:, [2, 1, 0, 3]]
    out = match_grid(arr, LPS_TO_RAS @ lps, like.shape, like.affine, allow_subset=True, name=str(p))
    return np.ascontiguousarray(out, dtype=bool)
