"""report.json from a hand-built analysis whose statistics are known in closed form."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _report_fake import fake_result, lic_from_r2_st_pierre  # noqa: E402

from r2mri.report import SCHEMA_VERSION, report_dict, write_outputs  # noqa: E402
from r2mri.report._json import dumps  # noqa: E402


@pytest.fixture(scope="module")
def fake():
    return fake_result()


@pytest.fixture(scope="module")
def written(fake, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "out"
    paths = write_outputs(fake, out)
    return out, paths


REQUIRED = [
    "software.version", "input", "acquisition", "model", "calibration.name", "calibration.citation",
    "calibration.verified", "calibration.range", "roi.n_voxels", "roi.volume_ml", "r2_per_s.mean",
    "r2_per_s.median", "r2_per_s.sd", "lic_mg_per_g.of_mean_r2", "lic_mg_per_g.mean", "lic_mg_per_g.median",
    "lic_mg_per_g.ci95", "lic_umol_per_g.of_mean_r2", "category", "qc.protocol_findings", "qc.noise_sigma",
    "qc.fraction_at_noise_floor", "qc.fit_failures", "qc.extrapolated_fraction", "warnings", "schema_version",
]


def _at(d, path):
    for part in path.split("."):
        assert part in d, f"report.json lacks {path!r} (stops at {part!r})"
        d = d[part]
    return d


def test_required_keys_and_values_match_the_statistics(written, fake):
    out, _ = written
    rep = json.loads((out / "report.json").read_text())
    for key in REQUIRED:
        _at(rep, key)
    assert rep["schema_version"] == SCHEMA_VERSION
    liver = fake.roi.mask
    r2 = fake.fit.r2_per_s[liver].astype(float)
    assert rep["roi"]["n_voxels"] == int(liver.sum())
    assert rep["roi"]["volume_ml"] == pytest.approx(liver.sum() * 1.5 * 1.5 * 5.0 / 1000)
    assert rep["r2_per_s"]["mean"] == pytest.approx(r2.mean(), rel=1e-12)
    assert rep["lic_mg_per_g"]["of_mean_r2"] == pytest.approx(float(lic_from_r2_st_pierre(r2.mean())), rel=1e-9)
    # 1 mg Fe/g = 1000/55.845 umol/g (domain.md section 4)
    assert rep["lic_umol_per_g"]["of_mean_r2"] == pytest.approx(rep["lic_mg_per_g"]["of_mean_r2"] * 17.9067, rel=1e-4)
    assert rep["acquisition"]["echo_times_ms"] == pytest.approx([6, 9, 12, 15, 18])
    assert rep["acquisition"]["repetition_time_ms"] == pytest.approx(1000.0)
    assert rep["acquisition"]["field_strength_t"] == 1.5
    assert rep["calibration"]["name"] == "st-pierre-2005"
    assert rep["calibration"]["range"]["lic_max_mg_per_g"] == pytest.approx(42.7)
    assert rep["qc"]["noise_sigma"] == 3.0
    assert rep["warnings"] == ["a test warning"]


def test_never_nan_and_nulls_explained(written):
    out, _ = written
    text = (out / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    rep = json.loads(text)
    # the fake's statistics carry a NaN under "bad": it must come out as null with a reason
    assert rep["bad"] is None
    assert "bad" in rep["null_reasons"]


def test_dumps_refuses_nan():
    with pytest.raises(ValueError):
        dumps({"x": float("nan")})


def test_report_dict_without_headline_says_why():
    res = fake_result()
    res.statistics["lic_mg_per_g"]["of_mean_r2"] = float("nan")
    rep = report_dict(res)
    assert rep["lic_mg_per_g"]["of_mean_r2"] is None
    assert "lic_mg_per_g.of_mean_r2" in rep["null_reasons"]


def test_outputs_listed_exist_and_are_readable(written):
    out, paths = written
    for key, path in paths.items():
        assert path.is_file(), key
        assert path.stat().st_mode & 0o044, f"{path} not readable by group/others"
    assert not any(p.name.startswith(".") for p in out.parent.iterdir()), "temporary folder left behind"
    assert not (out / "dicom").exists()  # input was not DICOM


def test_existing_out_is_not_overwritten(written, fake):
    from r2mri import InputError

    out, _ = written
    before = (out / "report.json").read_text()
    with pytest.raises(InputError, match="exists"):
        write_outputs(fake, out)
    assert (out / "report.json").read_text() == before


def test_dicom_requested_for_non_dicom_input_fails_without_folder(fake, tmp_path):
    from r2mri import InputError

    with pytest.raises(InputError, match="--dicom"):
        write_outputs(fake, tmp_path / "o", dicom=True)
    assert not (tmp_path / "o").exists()


def test_failed_write_leaves_no_folder(fake, tmp_path, monkeypatch):
    import r2mri.report._nifti as nifti

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(nifti, "write_nifti_maps", boom)
    with pytest.raises(RuntimeError):
        write_outputs(fake, tmp_path / "o")
    assert list(tmp_path.iterdir()) == []


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(max_size=5))
_tree = st.recursive(_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                   st.dictionaries(st.text(min_size=1, max_size=4), kids, max_size=4)),
                     max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(extra=st.dictionaries(st.sampled_from(["percentiles", "headline", "more", "x"]), _tree, max_size=3))
def test_any_statistics_block_serialises_without_nan(extra):
    """Whatever the statistics add (NaN, inf, nesting), report.json stays strict JSON with reasons for nulls."""
    res = fake_result(shape=(12, 10, 2))
    res.statistics = {**res.statistics, **extra}
    rep = report_dict(res)
    text = dumps(rep)  # allow_nan=False: raises on any NaN/inf left
    back = json.loads(text)
    for path in back["null_reasons"]:
        assert isinstance(path, str) and path


def test_overwrite_replaces_the_folder(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "stale.txt").write_text("old run")
    res = fake_result(shape=(12, 10, 2))
    write_outputs(res, out, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "report.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_qc_nulls_without_a_qc_block_say_why():
    """Statistics without a qc block (no ROI voxels): qc.extrapolated_fraction is null with
    a reason (docs/report.md: every null has one); the noise-floor fraction comes from the
    fit's status map instead."""
    res = fake_result(shape=(12, 10, 2))
    del res.statistics["qc"]
    rep = report_dict(res)
    assert rep["qc"]["extrapolated_fraction"] is None
    assert "qc.extrapolated_fraction" in rep["null_reasons"]
    assert rep["qc"]["fraction_at_noise_floor"] is not None
    assert "qc.fraction_at_noise_floor" not in rep["null_reasons"]
