"""Locate the data shipped with r2mri: calibration curves and phantom specs.

In a wheel they are the folders ``r2mri._calibration_data`` and
``r2mri._phantom_specs`` (mapped from the repository's top-level ``calibration/``
and ``phantoms/`` folders by pyproject.toml). In a source checkout that is
imported directly, they are those folders themselves.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["calibration_dir", "phantom_specs_dir"]

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parent


def _data_dir(installed: str, folder: str) -> Path:
    # In a wheel the folder is installed inside the package (pyproject.toml maps
    # it); importlib.resources is not used because these are namespace packages,
    # for which files() gives no plain path on Python 3.10/3.11.
    for path in (_PACKAGE / installed, _REPO / folder):
        if path.is_dir():
            return path
    raise FileNotFoundError(f"r2mri data folder {folder!r} not found (broken install?)")


def calibration_dir() -> Path:
    """Folder holding the shipped calibration curves (``*.toml``)."""
    return _data_dir("_calibration_data", "calibration")


def phantom_specs_dir() -> Path:
    """Folder holding the shipped phantom definitions (``*.toml``)."""
    return _data_dir("_phantom_specs", "phantoms")
