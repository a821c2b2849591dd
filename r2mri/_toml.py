"""Read a TOML data file (calibration curves, phantom specs) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10 (pyproject adds tomli there)
    import tomli as tomllib

from .errors import InputError

__all__ = ["read_toml"]


def read_toml(path: str | Path, *, what: str, error: type[InputError] = InputError) -> dict[str, Any]:
    """Parse ``path``; any failure raises ``error("<what> <path>: <problem>")``."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{what} {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read ({exc.strerror})") from None
