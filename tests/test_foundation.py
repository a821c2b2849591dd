"""Foundation: MultiEchoImage validation, atomic writes, CLI shell behaviour."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import r2mri
from r2mri._atomic import atomic_directory, atomic_write_text
from r2mri.errors import InputError


def test_image_stores_float32_and_seconds():
    img = r2mri.MultiEchoImage(np.arange(24, dtype=np.uint16).reshape(2, 2, 2, 3), [0.006, 0.009, 0.012])
    assert img.data.dtype == np.float32
    assert img.shape == (2, 2, 2)
    np.testing.assert_allclose(img.echo_times_ms, [6.0, 9.0, 12.0])
    # uint16 -> float32 is exact for these values
    assert img.data[1, 1, 1, 2] == 23.0


@pytest.mark.parametrize(
    "te, match",
    [
        ([0.01, 0.006, 0.012], "strictly ascending"),
        ([0.006, 0.006, 0.012], "strictly ascending"),
        ([0.006, np.nan, 0.012], "non-finite"),
        ([0.006, 0.009], "2 echo times for 3 echoes"),
    ],
)
def test_image_rejects_bad_echo_times(te, match):
    with pytest.raises(InputError, match=match):
        r2mri.MultiEchoImage(np.ones((2, 2, 1, 3)), te)


def test_image_rejects_wrong_rank():
    with pytest.raises(InputError, match="4-D"):
        r2mri.MultiEchoImage(np.ones((2, 2, 3)), [0.006, 0.009, 0.012])


def test_select_echoes_keeps_order_and_files():
    data = np.random.default_rng(0).random((2, 2, 1, 4))
    img = r2mri.MultiEchoImage(data, [0.006, 0.009, 0.012, 0.015], metadata={"echo_files": ["a", "b", "c", "d"]})
    sub = img.select_echoes([3, 1])
    np.testing.assert_array_equal(sub.echo_times_s, [0.009, 0.015])
    np.testing.assert_array_equal(sub.data[..., 0], img.data[..., 1])
    assert sub.metadata["echo_files"] == ["b", "d"]
    assert img.metadata["echo_files"] == ["a", "b", "c", "d"]  # the original is untouched


def test_voxel_size_from_affine():
    aff = np.diag([1.5, 1.5, 7.5, 1.0])
    img = r2mri.MultiEchoImage(np.ones((2, 2, 1, 2)), [0.006, 0.009], affine=aff)
    assert img.voxel_size_mm == pytest.approx((1.5, 1.5, 7.5))


def test_atomic_directory_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_directory(out) as tmp:
            (tmp / "half.json").write_text("{")
            raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_refuses_existing_without_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(InputError, match="exists"):
        with atomic_directory(out):
            pass
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_write_text_replaces_whole_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_cli_version_and_error_line(tmp_path):
    env = dict(os.environ)
    res = subprocess.run([sys.executable, "-m", "r2mri", "--version"], capture_output=True, text=True, env=env)
    assert res.returncode == 0
    assert res.stdout.strip() == f"r2mri {r2mri.__version__}"


def test_cli_imports_only_the_command_it_runs():
    """`r2mri analyze ...` builds the analyze parser only: the other commands' modules (and
    what they import, e.g. r2mri.phantom) stay out of the process; `r2mri --help` lists all."""
    code = ("import sys\nfrom r2mri.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('r2mri.commands.', 'r2mri.phantom'))))")
    one = subprocess.run([sys.executable, "-c", code, "analyze", "--help"], capture_output=True, text=True)
    assert one.returncode == 0 and "--roi-seed" in one.stdout, one.stderr
    assert one.stdout.strip().splitlines()[-1] == "['r2mri.commands.analyze']"
    every = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True)
    for name in ("demo", "analyze", "load", "fit", "phantom"):
        assert f"r2mri.commands.{name}" in every.stdout.splitlines()[-1]


def test_cli_entry_point_exit_status(tmp_path):
    """python -m r2mri exits with main()'s status (2 and one error line for bad input)."""
    res = subprocess.run([sys.executable, "-m", "r2mri", "analyze", str(tmp_path / "missing"), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.startswith("r2mri: error: ") and len(res.stderr.strip().splitlines()) == 1


def test_lazy_attributes_unknown_name():
    with pytest.raises(AttributeError):
        r2mri.does_not_exist  # noqa: B018


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    # mkdtemp/mkstemp create 0700/0600; finished outputs must look like mkdir/open made them.
    umask = os.umask(0)
    os.umask(umask)
    with atomic_directory(tmp_path / "out") as tmp:
        atomic_write_text(tmp / "a.txt", "x")
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "out" / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
