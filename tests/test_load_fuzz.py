"""Fuzzing the DICOM path: any malformed header or file gives InputError, never another exception.

A valid small series is written once; each hypothesis example copies it, damages one
file (delete or alter a tag, truncate or corrupt the bytes) and loads the folder.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import r2mri
from r2mri import InputError

import dicom_fixtures as fx

TAGS = ["Rows", "Columns", "PixelData", "ImagePositionPatient", "ImageOrientationPatient", "EchoTime",
        "PixelSpacing", "BitsAllocated", "BitsStored", "HighBit", "SeriesInstanceUID", "SamplesPerPixel",
        "PixelRepresentation", "EchoNumbers", "RescaleSlope", "SliceThickness", "FrameOfReferenceUID",
        "PhotometricInterpretation", "StudyInstanceUID", "MagneticFieldStrength", "SOPClassUID"]

BAD_VALUES = {
    "Rows": [0, 1, 3, 65535],
    "Columns": [0, 2, 65535],
    "PixelSpacing": [[0, 0], [-1, 1], ["nan", 1], [1], ["abc", "1"], [1, 2, 3]],
    "ImagePositionPatient": [[1, 2], ["inf", 0, 0], [1e308, 1e308, 1e308], ["x", 1, 2], [0, 0, 0]],
    "ImageOrientationPatient": [[0] * 6, [1, 0, 0, 1, 0, 0], [1, 0, 0], ["nan"] * 6, [2, 0, 0, 0, 2, 0]],
    "EchoTime": [-5, "abc", "nan", 1e308, 9],
    "BitsAllocated": [0, 1, 8, 12, 32, 64],
    "BitsStored": [0, 1, 16, 40],
    "HighBit": [0, 40],
    "PixelRepresentation": [1, 7],
    "SamplesPerPixel": [0, 3],
    "RescaleSlope": [0, "nan", 1e308, "abc"],
    "RescaleIntercept": ["inf", -1e308],
    "EchoNumbers": [-1, "x"],
    "SeriesInstanceUID": ["", "1.2.3"],
    "FrameOfReferenceUID": ["9.9.9"],
    "PhotometricInterpretation": ["RGB", "YBR_FULL", "PALETTE COLOR"],
    "NumberOfFrames": [0, 3, -1],
    "PixelData": [b"", b"\x00" * 7, b"\x00" * 100000],
}


@pytest.fixture(scope="module")
def valid_series():
    root = Path(tempfile.mkdtemp(prefix="r2mri-fuzz-"))
    paths, truth = fx.write_multiecho_series(root / "me", echo_times_ms=(10.0, 20.0, 30.0), rows=4, cols=3,
                                            n_slices=2)
    enh, _ = fx.write_enhanced(root / "enh" / "e.dcm", echo_times_ms=(6.0, 9.0, 12.0), rows=3, cols=4,
                               n_slices=2)
    yield root, sorted(p.name for p in paths), truth
    shutil.rmtree(root, ignore_errors=True)


def _mutate_dataset(path: Path, action: str, tag: str, value_index: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        if action == "delete":
            if tag in ds:
                delattr(ds, tag)
        else:
            values = BAD_VALUES.get(tag)
            if not values:
                return
            v = values[value_index % len(values)]
            try:
                setattr(ds, tag, v)
            except ValueError:  # e.g. "abc" for a DS: store it as text under the same tag
                text = [str(x) for x in v] if isinstance(v, list) else str(v)
                ds.add_new(pydicom.datadict.tag_for_keyword(tag), "LO", text)
        ds.save_as(path)


def _load_expect_input_error_or_image(folder: Path):
    try:
        img = r2mri.load(folder)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    assert np.all(np.isfinite(img.data))
    assert img.n_echoes >= 2
    # both valid inputs hold 3 echoes of 2 slices of 12 voxels: fewer is a subset, which
    # only an error finding may excuse (never a silent subset)
    if img.n_echoes < 3 or img.data[..., 0].size < 24:
        from r2mri.io.protocol import check_protocol

        assert any(f.severity == "error" for f in check_protocol(img)), img.data.shape
    return img


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.integers(0, 5),
    action=st.sampled_from(["delete", "alter", "truncate", "flip"]),
    tag=st.sampled_from(sorted(set(TAGS) | set(BAD_VALUES))),
    value_index=st.integers(0, 10),
    cut=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_fuzz_classic_series(valid_series, which, action, tag, value_index, cut, seed):
    root, names, _ = valid_series
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "me"
        shutil.copytree(root / "me", work)
        target = work / names[which]
        if action in ("delete", "alter"):
            try:
                _mutate_dataset(target, action, tag, value_index)
            except Exception:  # pragma: no cover - the mutation could not be written
                return
        elif action == "truncate":
            raw = target.read_bytes()
            target.write_bytes(raw[: int(len(raw) * cut)])
        else:
            raw = bytearray(target.read_bytes())
            rng = np.random.default_rng(seed)
            for pos in rng.integers(132, len(raw), size=8):  # keep the DICM preamble
                raw[pos] = int(rng.integers(0, 256))
            target.write_bytes(bytes(raw))
        _load_expect_input_error_or_image(work)


ENH_MUTATIONS = ["drop-position", "drop-orientation", "drop-measures", "frames-count", "bad-te", "drop-echo",
                 "truncate", "bad-position"]


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(ENH_MUTATIONS), frame=st.integers(0, 5), cut=st.floats(0.0, 1.0))
def test_fuzz_enhanced(valid_series, kind, frame, cut):
    root, _, _ = valid_series
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "enh"
        shutil.copytree(root / "enh", work)
        target = work / "e.dcm"
        if kind == "truncate":
            raw = target.read_bytes()
            target.write_bytes(raw[: int(len(raw) * cut)])
        else:
            ds = pydicom.dcmread(target)
            pf = ds.PerFrameFunctionalGroupsSequence[frame]
            sh = ds.SharedFunctionalGroupsSequence[0]
            if kind == "drop-position":
                del pf.PlanePositionSequence
            elif kind == "drop-orientation":
                del sh.PlaneOrientationSequence
            elif kind == "drop-measures":
                del sh.PixelMeasuresSequence
            elif kind == "frames-count":
                ds.NumberOfFrames = 2 + frame
            elif kind == "bad-te":
                pf.MREchoSequence[0].EffectiveEchoTime = -1.0
            elif kind == "drop-echo":
                del pf.MREchoSequence
            elif kind == "bad-position":
                pf.PlanePositionSequence[0].ImagePositionPatient = [0.0, 0.0]
            ds.save_as(target)
        _load_expect_input_error_or_image(work)


def test_known_mutations_give_input_error(valid_series, tmp_path):
    """A few hand-picked mutations must fail (not silently load)."""
    root, names, _ = valid_series
    cases = [("alter", "Rows", 3), ("alter", "PixelData", 1), ("delete", "PixelSpacing", 0),
             ("alter", "ImagePositionPatient", 0), ("alter", "BitsAllocated", 3),
             ("alter", "PixelSpacing", 4), ("alter", "RescaleSlope", 0), ("alter", "RescaleIntercept", 0),
             ("alter", "HighBit", 0), ("alter", "PhotometricInterpretation", 0), ("alter", "EchoTime", 1)]
    for i, (action, tag, vi) in enumerate(cases):
        work = tmp_path / f"c{i}"
        shutil.copytree(root / "me", work)
        _mutate_dataset(work / names[0], action, tag, vi)
        with pytest.raises(InputError):
            r2mri.load(work)


# --------------------------------------------------------------------- the benchmark's cases
fuzz_cases = pytest.importorskip("benchmarks._fuzz_cases")

#: The first cases of ``python -m benchmarks.fuzz`` (seed 0), run here in process; the
#: benchmark runs 100,000 in memory-limited worker processes (benchmarks/README.md).
N_BENCHMARK_CASES = 300


@pytest.fixture(scope="module")
def fuzz_seeds():
    return fuzz_cases.make_seeds()


def test_benchmark_fuzz_cases_load_or_raise_input_error(fuzz_seeds, tmp_path):
    outcomes = {"loaded": 0, "input_error": 0}
    for index in range(N_BENCHMARK_CASES):
        folder = tmp_path / str(index)
        folder.mkdir()
        paths, desc = fuzz_cases.write_case(fuzz_seeds, 0, index, folder)
        try:
            img = r2mri.load(paths[0] if len(paths) == 1 else paths)
        except InputError as exc:
            msg = str(exc)
            assert msg and "\n" not in msg, f"case {desc}: {msg!r}"
            assert not any(v.lower() in msg.lower() for v in fuzz_cases.PHI_STRINGS), f"case {desc}: PHI in {msg!r}"
            outcomes["input_error"] += 1
        except Exception as exc:  # noqa: BLE001 - reported with the case that raised it
            pytest.fail(f"case {desc}: {type(exc).__name__}: {exc}")
        else:
            assert img.n_echoes >= 2 and np.all(np.isfinite(img.data)), desc
            outcomes["loaded"] += 1
        shutil.rmtree(folder)
    # both outcomes are common: the mutations neither always break nor never break the input
    assert outcomes["loaded"] > N_BENCHMARK_CASES // 10 and outcomes["input_error"] > N_BENCHMARK_CASES // 3, outcomes


def test_huge_matrix_claim_is_input_error_not_memory_error(valid_series, tmp_path):
    """Rows = Columns = 65535 on every file with 24 bytes of pixels: 96 GiB claimed (fuzz run)."""
    root, names, _ = valid_series
    work = tmp_path / "me"
    shutil.copytree(root / "me", work)
    for name in names:
        ds = pydicom.dcmread(work / name)
        ds.Rows = ds.Columns = 65535
        ds.save_as(work / name)
    with pytest.raises(InputError, match="cannot read pixel data"):
        r2mri.load(work)


def test_nifti_dims_larger_than_the_file(tmp_path):
    """A damaged dim[] claiming 1 GB in an 864-byte .nii.gz: InputError before any allocation."""
    import gzip
    import struct

    (path,), _ = fx.write_nifti_4d(tmp_path, shape=(4, 4, 2))
    raw = bytearray(gzip.decompress(path.read_bytes()))
    struct.pack_into("<h", raw, 42, 32767)  # dim[1]
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(InputError, match=r"header describes 32767x4x2x5 voxels .* but the file holds \d+ bytes"):
        r2mri.load(path)
    struct.pack_into("<h", raw, 42, 4)  # the right header, 7 bytes of data cut off
    path.write_bytes(gzip.compress(bytes(raw[:-7])))
    with pytest.raises(InputError) as info:
        r2mri.load(path)
    assert "\n" not in str(info.value) and "truncated or damaged" in str(info.value)
