"""Same input, same outputs: report.json and the NIfTI maps are byte-identical run to run,
with 1 and with 2 numba threads.

report.json may differ only in the keys listed in docs/report.md ("Reproducibility"):
``created_utc`` (when), ``timings_s`` (how long) and ``model.options.threads`` (the
thread count asked for). Everything else, including every float's last digit, is compared
as written.
"""

from __future__ import annotations

import json

import pytest

import r2mri
from r2mri import phantom as P
from r2mri.report import write_outputs

#: report.json keys (dotted paths) that may differ between two runs on the same input.
EXCLUDED = ("created_utc", "timings_s", "model.options.threads")


def _pruned(path) -> str:
    rep = json.loads(path.read_text(encoding="utf-8"))
    for key in EXCLUDED:
        *parents, leaf = key.split(".")
        d = rep
        for p in parents:
            d = d[p]
        assert leaf in d, f"report.json has no {key}: update EXCLUDED and docs/report.md"
        del d[leaf]
    return json.dumps(rep, indent=1)  # same key order and float text as the file


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("det")
    ph = P.generate(lic=7.0, seed=2, matrix=(48, 48), pixel_mm=8.0, n_slices=2)
    src = P.write(ph, base / "in", format="dicom") / "dicom"
    outs = {}
    # automatic noise estimate and automatic liver ROI: the paths with the most room for drift
    for name, threads in (("t1a", 1), ("t1b", 1), ("t2a", 2), ("t2b", 2)):
        write_outputs(r2mri.analyze(src, threads=threads), base / name, dicom=False)
        outs[name] = base / name
    return outs


@pytest.mark.parametrize("other", ["t1b", "t2a", "t2b"])
def test_report_json_identical_but_for_the_excluded_keys(runs, other):
    ref, cur = runs["t1a"] / "report.json", runs[other] / "report.json"
    assert _pruned(cur) == _pruned(ref)
    rep = json.loads(cur.read_text())
    assert rep["model"]["options"]["threads"] == (1 if other.startswith("t1") else 2)
    assert rep["lic_mg_per_g"]["of_mean_r2"] > 0


@pytest.mark.parametrize("other", ["t1b", "t2a", "t2b"])
def test_nifti_maps_byte_identical(runs, other):
    maps = sorted(p.name for p in runs["t1a"].glob("*.nii.gz"))
    assert len(maps) >= 5 and "R2map.nii.gz" in maps and "desc-LIC_map.nii.gz" in maps
    assert sorted(p.name for p in runs[other].glob("*.nii.gz")) == maps
    for name in maps:
        assert (runs[other] / name).read_bytes() == (runs["t1a"] / name).read_bytes(), name
