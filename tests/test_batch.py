"""`r2mri batch`: discovery, one folder per exam, failure isolation, reuse, pool == Dask.

The cohort (tests/_cohort_data.py): subject PAT-A with four DICOM studies, subject B with
three BIDS-like NIfTI sessions (4-D and per-echo), subject C with a NIfTI that has no
echo times (the broken exam).
"""

from __future__ import annotations

import json
import os

import pytest

import r2mri
import r2mri.batch as batch
from r2mri.batch._cohort import COLUMNS
from r2mri.cli import main

from _cohort_data import make_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    truth = make_cohort(root)
    (root / "dicom" / "notes.dat").write_bytes(b"not an image")
    return root, truth


def _cli(*args):
    """`python -m r2mri ...` in a child process: worker pools and Dask clusters (and
    multiprocessing's resource tracker) live and end with it, not in the test process."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "r2mri", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def pool_run(cohort):
    root, _ = cohort
    out = root.parent / (root.name + "_out_pool")
    # no DICOM outputs here (the slow part of writing; the de-identification test writes them)
    proc = _cli("batch", root, "-o", out, "--jobs", "2", "--no-dicom")
    return out, proc, batch.run([root], out, dry_run=True)


def _table(out):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in batch.read_cohort(out / "cohort.csv")]


def test_dry_run_lists_exams_and_why_files_were_skipped(cohort, capsys):
    root, truth = cohort
    res = batch.run([root], root / "unused", dry_run=True)
    assert [e.exam_id for e in res.exams] == sorted(truth, key=lambda k: (k.split("/")[0], k))
    kinds = {e.exam_id: (e.kind, len(e.inputs)) for e in res.exams}
    assert kinds["PAT-A/2023-01-10"] == ("dicom", 10)  # 5 series x 2 slices, grouped by StudyInstanceUID
    assert kinds["B/02"] == ("nifti", 5)  # one file per echo
    assert {s.reason for s in res.skipped} == {"not a DICOM file"}
    assert not (root / "unused").exists()
    assert main(["batch", str(root), "-o", str(root / "unused"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "8 exam(s) found" in text and "notes.dat: not a DICOM file" in text


def test_bad_invocation_exits_2_and_writes_nothing(cohort, tmp_path, capsys):
    root, _ = cohort
    assert main(["batch", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert main(["batch", str(root), "-o", str(tmp_path / "o"), "--model", "x", "--shift-dates"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cohort_rows_match_single_analyses_and_the_truth(cohort, pool_run):
    root, truth = cohort
    out, proc, res = pool_run
    assert proc.returncode == 1, proc.stderr  # some exam failed
    assert "8 exam(s): 7 analysed, 0 up to date (reused), 1 failed" in proc.stdout
    assert sum(ln.startswith("[") for ln in proc.stderr.splitlines()) == 8  # a progress line per exam (no TTY)
    header = (out / "cohort.csv").read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)
    rows = {r["exam_id"]: r for r in batch.read_cohort(out / "cohort.csv")}
    assert set(rows) == set(truth)
    for exam in res.exams:
        row = rows[exam.exam_id]
        if truth[exam.exam_id] is None:
            assert row["status"] == "failed"
            assert "no echo times" in row["error"] and "\n" not in row["error"]
            assert not (out / exam.subject / exam.session).exists()
            continue
        assert row["status"] == "ok" and row["error"] is None
        single = r2mri.analyze(list(exam.inputs) if len(exam.inputs) > 1 else exam.inputs[0])
        assert row["lic_mg_per_g"] == pytest.approx(single.headline_lic_mg_per_g, rel=1e-12)
        ci = single.statistics.to_dict()["lic_mg_per_g"]["ci95"]
        assert (row["lic_ci_low"], row["lic_ci_high"]) == pytest.approx(ci, rel=1e-12)
        # automatic liver ROI on a noisy phantom: within 3 % of the truth, as tests/test_analyze.py
        assert abs(row["lic_mg_per_g"] / truth[exam.exam_id] - 1) < 0.03
        assert (row["field_strength_t"], row["sequence"], row["calibration"]) == (1.5, "SE", "st-pierre-2005")
        assert row["category"] == r2mri.calibration.lic_category(row["lic_mg_per_g"]).name
        folder = out / exam.subject / exam.session
        assert {"report.json", "report.pdf", "R2map.nii.gz", "settings.json", "batch.json"} <= {
            p.name for p in folder.iterdir()}
    assert rows["PAT-A/2023-01-10"]["study_date"] == "2023-01-10"
    assert rows["B/02"]["study_date"] == "2023-08-01"


def test_rerun_reuses_every_finished_exam_and_gives_the_same_table(cohort, pool_run):
    root, _ = cohort
    out, _, _ = pool_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("report.json")}
    table = (out / "cohort.csv").read_text()
    res = batch.run([root], out, jobs=2, dicom=False, progress=False)
    assert (res.n_ran, res.n_reused, res.n_failed) == (0, 7, 1)  # only the failed exam is tried again
    assert {p: p.stat().st_mtime_ns for p in out.rglob("report.json")} == before
    # byte for byte: reused rows keep the seconds of the analysis that wrote them; only the
    # failed exam's seconds (it was tried again) may differ
    strip = lambda text: [ln.rsplit(",", 2)[0] if ",failed," in ln else ln for ln in text.splitlines()]
    assert strip((out / "cohort.csv").read_text()) == strip(table)
    assert json.loads((out / "cohort.json").read_text())["columns"] == list(COLUMNS)


def test_changed_settings_rerun_the_exam(cohort, tmp_path):
    root, _ = cohort
    bids = root / "bids" / "sub-B" / "ses-01"
    res = batch.run([bids], tmp_path / "o", jobs=1, dicom=False, progress=False)
    assert res.n_ran == 1
    again = batch.run([bids], tmp_path / "o", jobs=1, dicom=False, progress=False, roi_options={"erode_mm": 0.0})
    assert again.n_ran == 1 and again.rows[0]["lic_mg_per_g"] != res.rows[0]["lic_mg_per_g"]
    forced = batch.run([bids], tmp_path / "o", jobs=1, dicom=False, progress=False, roi_options={"erode_mm": 0.0},
                       force_rerun=True)
    assert forced.n_ran == 1 and forced.rows[0]["lic_mg_per_g"] == again.rows[0]["lic_mg_per_g"]


def test_manifest_rows_carry_their_own_options(cohort, tmp_path):
    root, _ = cohort
    manifest = tmp_path / "cohort.csv"
    c = root / "bids" / "sub-C" / "ses-01" / "anat" / "sub-C_ses-01_MESE.nii.gz"
    manifest.write_text(
        "path,subject,session,date,echo_times_ms\n"
        f"{os.path.relpath(c, tmp_path)},C,baseline,2024-05-06,6 9 12 15 18\n"
    )
    res = batch.run([], tmp_path / "o", manifest=manifest, jobs=1, progress=False)
    (row,) = res.rows
    assert (row["exam_id"], row["study_date"], row["status"]) == ("C/baseline", "2024-05-06", "ok")
    assert abs(row["lic_mg_per_g"] / 5.0 - 1) < 0.03  # the phantom's truth (tests/_cohort_data.py)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,colour\nx,red\n")
    with pytest.raises(r2mri.InputError, match="unknown manifest column"):
        batch.run([], tmp_path / "o2", manifest=bad)


def test_dask_local_cluster_gives_the_same_table_as_the_pool(cohort, pool_run):
    pytest.importorskip("distributed")
    root, _ = cohort
    out = pool_run[0]
    dask_out = root.parent / (root.name + "_out_dask")
    proc = _cli("batch", root, "-o", dask_out, "--dask-local", "2", "--no-dicom")
    assert proc.returncode == 1 and "7 analysed, 0 up to date (reused), 1 failed" in proc.stdout, proc.stderr
    assert _table(dask_out) == _table(out)


def test_cli_exit_1_when_an_exam_failed(cohort, tmp_path, capsys):
    root, _ = cohort
    out = tmp_path / "o"
    assert main(["batch", str(root / "bids" / "sub-C"), "-o", str(out), "--jobs", "1"]) == 1
    (row,) = batch.read_cohort(out / "cohort.csv")
    assert row["status"] == "failed" and "no echo times" in row["error"]
    assert "0 analysed, 0 up to date (reused), 1 failed" in capsys.readouterr().out


def test_dask_worker_plugin_sets_numba_threads_and_a_node_local_cache_before_numba(tmp_path):
    import subprocess
    import sys

    code = ("import os, sys; from r2mri.batch._dask import NumbaSetup; NumbaSetup(3).setup(None); "
            "import numba; print(os.environ['NUMBA_NUM_THREADS'], numba.config.NUMBA_NUM_THREADS, "
            "os.environ['NUMBA_CACHE_DIR'])")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_NUM_THREADS", "NUMBA_CACHE_DIR")}
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    threads, numba_threads, cache = out.split()
    assert (threads, numba_threads) == ("3", "3")
    assert cache.startswith(str(tmp_path)) and "r2mri-numba-" in cache
