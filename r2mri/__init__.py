"""r2mri: open liver iron concentration (LIC) from multi-echo spin-echo MRI.

Data flow, one module each::

    r2mri.load (DICOM/NIfTI) -> MultiEchoImage -> r2mri.fit -> R2 map
      -> r2mri.lic_from_r2 -> LIC map -> r2mri.roi / r2mri.stats -> r2mri.report

Public API (imported lazily so ``import r2mri`` stays fast):

- :class:`MultiEchoImage`, :class:`InputError`, :class:`FitStatus`
- :func:`load`, :func:`load_mask` (``r2mri.io``)
- :func:`fit`, :func:`estimate_noise` (``r2mri.fitting``, ``r2mri.noise``)
- :func:`lic_from_r2`, :func:`r2_from_lic` (``r2mri.calibration``)
- :func:`analyze` (``r2mri.analysis``), :mod:`r2mri.phantom`
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .errors import CalibrationError, InputError, ProtocolError
from .image import MultiEchoImage
from .status import FitStatus

__all__ = [
    "__version__",
    "MultiEchoImage",
    "InputError",
    "ProtocolError",
    "CalibrationError",
    "FitStatus",
    "load",
    "load_mask",
    "fit",
    "FitResult",
    "estimate_noise",
    "lic_from_r2",
    "r2_from_lic",
    "analyze",
    "AnalysisResult",
    "NoiseEstimate",
    "phantom",
    "report",
    "calibration",
]

# name -> (module, attribute); attribute None means the module itself.
_LAZY = {
    "load": ("r2mri.io", "load"),
    "load_mask": ("r2mri.io", "load_mask"),
    "fit": ("r2mri.fitting", "fit"),
    "FitResult": ("r2mri.fitting", "FitResult"),
    "estimate_noise": ("r2mri.noise", "estimate_noise"),
    "lic_from_r2": ("r2mri.calibration", "lic_from_r2"),
    "r2_from_lic": ("r2mri.calibration", "r2_from_lic"),
    "analyze": ("r2mri.analysis", "analyze"),
    "AnalysisResult": ("r2mri.analysis", "AnalysisResult"),
    "NoiseEstimate": ("r2mri.noise", "NoiseEstimate"),
    "phantom": ("r2mri.phantom", None),
    "report": ("r2mri.report", None),
    "calibration": ("r2mri.calibration", None),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'r2mri' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
