"""Phase images of the phantom as DICOM, in the Siemens convention.

A phase series is a second MR Image Storage series of the same study, frame of
reference and geometry as its magnitude series, with ImageType
``ORIGINAL\\PRIMARY\\P\\ND``. Pixels follow the convention Siemens scanners use:
12-bit unsigned stored values 0..4095 with RescaleSlope 2 and RescaleIntercept -4096,
so the rescaled value ``v`` runs over -4096..4094 and the phase is
``v * pi / 4096`` radians [C: medi-users forum thread "on obtaining phase image from
rescaled DICOM file", A. Ozcan, 2024-08-11, groups.google.com/g/medi-users/c/0zg6c-UQrf0,
which reports Siemens slope 2 and intercept 4096 (the sign lost in the text: the mapping
it states, stored 0..4095 to [-4096, 4094], needs -4096); no vendor document was read].
The quantisation step is ``2 pi / 4096`` (1.53 mrad): the read-back error is at most
half a step, 0.77 mrad. The sign of the phase (which way it turns with frequency) is
the phantom's (docs/phantoms.md), not a vendor's.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["PHASE_STORED_LEVELS", "PHASE_RESCALE_SLOPE", "PHASE_RESCALE_INTERCEPT", "set_phase_pixels",
           "check_phase", "stored_from_phase"]

#: 12-bit stored phase values 0..4095 (Siemens convention, see the module docstring).
PHASE_STORED_LEVELS = 4096
PHASE_RESCALE_SLOPE = 2
PHASE_RESCALE_INTERCEPT = -4096


def check_phase(image) -> None:
    """Refuse to write phase series for an image that has no phase."""
    if getattr(image, "phase_rad", None) is None:
        raise InputError("phase: this phantom has no phase image (GRE with fat_water = true or b0_peak_hz != 0 has)")


def stored_from_phase(phase_rad: np.ndarray) -> np.ndarray:
    """Stored uint16 values 0..4095 for phases in radians (pi and -pi both give 0)."""
    half = PHASE_STORED_LEVELS // 2
    q = np.rint(np.asarray(phase_rad, dtype=np.float64) * (half / np.pi)).astype(np.int64) + half
    return np.mod(q, PHASE_STORED_LEVELS).astype(np.uint16)


def set_phase_pixels(ds, phase_rad_2d: np.ndarray) -> None:
    """Image type, pixel module, rescale and window of one phase image (rows x columns)."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "P", "ND"]
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.RescaleSlope = str(PHASE_RESCALE_SLOPE)
    ds.RescaleIntercept = str(PHASE_RESCALE_INTERCEPT)
    stored = stored_from_phase(phase_rad_2d)
    ds.SmallestImagePixelValue = int(stored.min())
    ds.LargestImagePixelValue = int(stored.max())
    ds.WindowCenter = "0"
    ds.WindowWidth = str(2 * PHASE_STORED_LEVELS)
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
