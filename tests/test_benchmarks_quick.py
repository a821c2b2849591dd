"""The benchmark harness runs end to end in quick mode and writes its tables.

Not a timing test: it asserts only that every section ran (or recorded why it
could not) and that the JSON and Markdown outputs carry the expected keys.
"""

from __future__ import annotations

import json
import time

import pytest

run = pytest.importorskip("benchmarks.run")

SECTIONS = ["speed", "scaling", "end_to_end", "accuracy", "mrbias"]


def test_quick_mode_writes_tables(tmp_path):
    t0 = time.perf_counter()
    assert run.main(["--quick", "--out", str(tmp_path)]) == 0
    elapsed = time.perf_counter() - t0

    md = (tmp_path / "tables.md").read_text()
    assert "Mode: quick" in md
    assert "table error" not in md
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "quick"
    assert set(summary["sections"]) == set(SECTIONS)
    for name in SECTIONS:
        payload = json.loads((tmp_path / f"{name}.json").read_text())
        assert payload["section"] == name
        m = payload["machine"]
        assert m["nproc"] >= 1 and m["cpu_model"] and m["date_utc"] and m["versions"]["numpy"]
        res = payload["result"]
        assert "section_time_s" in res
        assert "traceback" not in res, f"{name} crashed:\n{res.get('traceback')}"
        assert f"## {run.TITLES[name]}" in md

    speed = json.loads((tmp_path / "speed.json").read_text())["result"]
    assert speed["data"]["n_voxels"] > 0
    base = speed["baselines"]
    assert base["curve_fit_loop"]["voxels_per_s"] > 0
    assert base["curve_fit_loop"]["sampled_and_scaled"] is True
    assert base["numpy_loglinear"]["voxels_per_s"] > 0
    if "r2mri_error" not in speed:
        assert speed["r2mri"]["monoexp"]["voxels_per_s"] > 0
        assert speed["ratios"]["monoexp"]["curve_fit_loop"] > 0

    mrb = json.loads((tmp_path / "mrbias.json").read_text())["result"]
    assert "skipped" in mrb or len(mrb["rois"]) == 14

    acc = json.loads((tmp_path / "accuracy.json").read_text())["result"]
    assert "error" in acc or acc["r2"]["cells"]
    # sized for < 60 s with a warm numba cache; no timing assertion (a cold cache adds
    # the kernel compile, a loaded machine anything), only a record for the log
    print(f"benchmarks quick mode: {elapsed:.0f} s")


def test_only_one_section_keeps_the_others_in_the_tables(tmp_path):
    # a section measured earlier stays in tables.md/summary.json when another is re-run
    # with --only; each section says when and on which commit it was measured
    assert run.main(["--quick", "--out", str(tmp_path), "--only", "mrbias"]) == 0
    first = json.loads((tmp_path / "mrbias.json").read_text())["machine"]["date_utc"]
    assert run.main(["--quick", "--out", str(tmp_path), "--only", "accuracy"]) == 0
    md = (tmp_path / "tables.md").read_text()
    assert "table error" not in md  # sections rebuilt from their JSON (int keys become strings)
    assert f"## {run.TITLES['mrbias']}" in md and f"## {run.TITLES['accuracy']}" in md
    assert f"Measured {first}" in md
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["sections"]) == {"mrbias", "accuracy"}
    assert summary["last_run_sections"] == ["accuracy"]
