"""numba caching never breaks an install: read-only package + unwritable HOME still run.

Each scenario runs in a fresh subprocess on a copy of the ``r2mri`` package.

How "read-only" is produced (stated here because root ignores file permissions):

- as an unprivileged user (CI): the copy is ``chmod -R a-w`` and HOME is a ``0o555``
  directory, so the operating system refuses writes -- the real situation;
- as root (containers), where chmod does not stop writes and no unprivileged user can
  run this Python (e.g. it lives under ``/root``): the subprocess *simulates* read-only
  locations by making ``tempfile.NamedTemporaryFile`` (the write probe of
  ``r2mri._numba_setup._writable``) fail inside them, and afterwards the test checks that
  no numba cache file was written into the package copy or HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SIMULATE = hasattr(os, "geteuid") and os.geteuid() == 0

_BOOT = textwrap.dedent(
    """
    import json, os, sys, tempfile
    ro_roots = json.loads(os.environ["R2MRI_TEST_RO_ROOTS"])
    if os.environ.get("R2MRI_TEST_SIMULATE") == "1":
        _orig = tempfile.NamedTemporaryFile
        def _guarded(*args, dir=None, **kwargs):
            if dir is not None and any(os.path.abspath(dir).startswith(r) for r in ro_roots):
                raise PermissionError(13, "read-only location (simulated)", str(dir))
            return _orig(*args, dir=dir, **kwargs)
        tempfile.NamedTemporaryFile = _guarded
    import numpy as np
    import r2mri
    from r2mri import _numba_setup
    from r2mri.noise import ncchi_mean
    out = {"cache_enabled": _numba_setup.CACHE_ENABLED, "cache_dir": _numba_setup.CACHE_DIR,
           "file": r2mri.__file__, "ncchi0": float(ncchi_mean(0.0, 1.0, 1))}
    if os.environ.get("R2MRI_TEST_FIT") == "1":
        te = np.array([6.0, 9.0, 12.0, 15.0, 18.0]) * 1e-3
        y = 1000.0 * np.exp(-np.outer([40.0, 200.0], te))
        res = r2mri.fit(y, te, model="monoexp")
        out["r2"] = res.r2_per_s.tolist()
    print(json.dumps(out))
    """
)


def _make_readonly_copy(tmp: Path) -> tuple[Path, Path]:
    site = tmp / "site"
    shutil.copytree(REPO / "r2mri", site / "r2mri", ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp / "home"
    home.mkdir()
    for path in [*site.rglob("*"), site, home]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return site, home


def _run(tmp: Path, site: Path, home: Path, tmpdir: Path, *, fit: bool, tmp_readonly: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    roots = [str(site), str(home)] + ([str(tmpdir)] if tmp_readonly else [])
    env.update(
        HOME=str(home),
        TMPDIR=str(tmpdir),
        PYTHONPATH=str(site),
        PYTHONDONTWRITEBYTECODE="1",
        # LLVM optimisation level 0: the kernels compile ~3x faster; this test is about
        # where the cache goes, not about speed
        NUMBA_OPT="0",
        R2MRI_TEST_RO_ROOTS=json.dumps(roots),
        R2MRI_TEST_SIMULATE="1" if SIMULATE else "0",
        R2MRI_TEST_FIT="1" if fit else "0",
    )
    proc = subprocess.run([sys.executable, "-c", _BOOT], env=env, cwd=str(tmp), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cache_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.suffix in (".nbi", ".nbc")]


def _restore_writable(*roots: Path) -> None:
    for root in roots:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_readonly_package_and_home_fall_back_to_temp_cache(tmp_path):
    # Read-only package + unwritable HOME: the cache moves to <TMPDIR>/r2mri-numba-<uid>,
    # r2mri.fit compiles, caches there and gives the exact rates of noise-free curves
    # (1e-6 relative: the fit converges quadratically on zero-residual data).
    site, home = _make_readonly_copy(tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    try:
        out = _run(tmp_path, site, home, tmpdir, fit=True, tmp_readonly=False)
        mode = "simulated read-only (root)" if SIMULATE else "real read-only (chmod)"
        assert out["file"].startswith(str(site)), out
        assert out["cache_enabled"] is True, (mode, out)
        assert out["cache_dir"] == str(tmpdir / f"r2mri-numba-{os.getuid()}"), (mode, out)
        assert out["r2"] == pytest.approx([40.0, 200.0], rel=1e-6)
        assert _cache_files(tmpdir), f"{mode}: no numba cache written to the temp fallback"
        assert not _cache_files(site) and not _cache_files(home), mode
    finally:
        _restore_writable(site, home)


def test_nothing_writable_disables_cache(tmp_path):
    # No writable location at all (TMPDIR too): caching is disabled, import still works.
    # Only a small kernel is compiled here to keep the suite fast; the full fit is
    # exercised with caching relocated in the test above.
    site, home = _make_readonly_copy(tmp_path)
    tmpdir = tmp_path / "tmp-ro"
    tmpdir.mkdir()
    tmpdir.chmod(0o555)
    env_roots = [site, home, tmpdir]
    try:
        out = _run(tmp_path, site, home, tmpdir, fit=False, tmp_readonly=True)
        assert out["cache_enabled"] is False, out
        assert out["ncchi0"] == pytest.approx(1.2533141373155003, rel=1e-6)  # sigma sqrt(pi/2)
        for root in env_roots:
            assert not _cache_files(root)
    finally:
        _restore_writable(*env_roots)


def test_kernel_cache_key_tracks_noise_source():
    # numba keys cached kernels on the hash of their own file; the fit kernels inline the
    # noise functions of r2mri/noise.py, so each kernel file records noise.py's hash to make
    # any change there invalidate the cached kernels (the other guards of the split kernel
    # files: tests/test_kernel_cache_guards.py).
    import hashlib
    import importlib

    digest = hashlib.sha256((REPO / "r2mri" / "noise.py").read_bytes()).hexdigest()
    for name in ("_kernel_shared", "_lm_model", "_lm_kernel", "_ncchi_kernel"):
        mod = importlib.import_module(f"r2mri.fitting.{name}")
        assert mod._NOISE_PY_SHA256 == digest, f"update _NOISE_PY_SHA256 in r2mri/fitting/{name}.py"
