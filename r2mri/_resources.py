"""Locate the data shipped with r2mri: calibration curves and phantom specs.

In a wheel they are the resource packages ``r2mri._calibration_data`` and
``r2mri._phantom_specs`` (mapped from the repository's top-level ``calibration/``
and ``phantoms/`` folders by pyproject.toml). In a source checkout that is
imported directly, they are those folders themselves.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["calibration_dir", "phantom_specs_dir"]

_REPO = Path(__file__).resolve().parent.parent


def _data_dir(package: str, folder: str) -> Path:
    try:
        path = Path(str(importlib.resources.files(package)))
        if path.is_dir():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    local = _REPO / folder
    if local.is_dir():
        return local
    raise FileNotFoundError(f"r2mri data folder {folder!r} not found (broken install?)")


def calibration_dir() -> Path:
    """Folder holding the shipped calibration curves (``*.toml``)."""
    return _data_dir("r2mri._calibration_data", "calibration")


def phantom_specs_dir() -> Path:
    """Folder holding the shipped phantom definitions (``*.toml``)."""
    return _data_dir("r2mri._phantom_specs", "phantoms")
