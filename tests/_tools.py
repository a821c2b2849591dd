"""System tools some tests run for real: dciodvfy (dicom3tools), pdftoppm / pdftotext
(poppler-utils).

Without the tool a test is skipped on a developer's machine, but FAILS under
``R2MRI_REQUIRE_TOOLS=1`` (``.ci/run`` sets it after installing them), so that CI
never passes a conformance or PDF check by skipping it.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

PACKAGES = {"dciodvfy": "dicom3tools", "pdftoppm": "poppler-utils", "pdftotext": "poppler-utils"}


def need_tool(name: str) -> str:
    """Path of ``name``; skip (or fail under ``R2MRI_REQUIRE_TOOLS``) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} ({PACKAGES.get(name, 'system package')}) not installed"
        if os.environ.get("R2MRI_REQUIRE_TOOLS") == "1":
            pytest.fail(msg + " but R2MRI_REQUIRE_TOOLS=1")
        pytest.skip(msg)
    return path


def dciodvfy(path) -> tuple[list[str], list[str]]:
    """(errors, warnings): dciodvfy's lines starting with "Error" / "Warning" for one file."""
    proc = subprocess.run([need_tool("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    return [ln for ln in lines if ln.startswith("Error")], [ln for ln in lines if ln.startswith("Warning")]
