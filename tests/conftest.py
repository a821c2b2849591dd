"""Shared fixtures: the real Siemens MR-BIAS series from ../shared (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("R2MRI_SHARED", REPO.parent / "shared"))
SIEMENS_DIR = SHARED / "testdata" / "mrbias-mse-siemens-3t"


@pytest.fixture(scope="session")
def siemens_dir() -> Path:
    """The MR-BIAS Siemens 3 T multi-echo spin-echo folder (skip if not beside the repo)."""
    if not (SIEMENS_DIR / "dicom").is_dir():
        pytest.skip(f"real test data not found at {SIEMENS_DIR} (../shared absent)")
    return SIEMENS_DIR
