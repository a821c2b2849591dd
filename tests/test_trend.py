"""`r2mri trend`: a synthetic patient at 15 -> 11 -> 7 -> 7.1 mg/g over two years."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess

import pytest

from r2mri.calibration import CATEGORIES, THRESHOLDS_MG_PER_G
from r2mri.cli import main
from r2mri.trend import build_trends, read_exams

#: (date, LIC mg/g); each exam's 95 % CI is LIC +- 0.3 mg/g (se = 0.3 / 1.96 = 0.153 mg/g)
EXAMS = (("2023-01-15", 15.0), ("2023-07-15", 11.0), ("2024-01-15", 7.0), ("2025-01-15", 7.1))
HALF = 0.3


def _rows(field_last=1.5, calibration_last="st-pierre-2005"):
    rows = []
    for k, (date, lic) in enumerate(EXAMS):
        last = k == len(EXAMS) - 1
        rows.append({"exam_id": f"P1/{date}", "subject": "P1", "session": date, "study_date": date, "status": "ok",
                     "lic_mg_per_g": lic, "lic_ci_low": lic - HALF, "lic_ci_high": lic + HALF,
                     "field_strength_t": field_last if last else 1.5, "sequence": "SE",
                     "calibration": calibration_last if last else "st-pierre-2005", "model": "ncchi"})
    rows.append({"exam_id": "P2/x", "subject": "P2", "study_date": "2024-02-02", "status": "failed",
                 "error": "no echo times", "lic_mg_per_g": None})
    return rows


def _write_csv(path, rows):
    keys = sorted({k for r in rows for k in r})
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r.get(k) is None else r[k] for k in keys})


def test_changes_flags_and_categories_of_the_synthetic_patient():
    (p1, p2) = build_trends(_rows())
    assert [e.lic_mg_per_g for e in p1.exams] == [15.0, 11.0, 7.0, 7.1]
    # upper-inclusive bands (r2mri.calibration.CATEGORIES): 15 and 11 increased risk, 7.0 target range
    assert [e.category for e in p1.exams] == ["increased-risk", "increased-risk", "target-range", "increased-risk"]
    se_d = math.hypot(HALF / 1.959964, HALF / 1.959964)  # two exams' standard errors combined
    deltas = [c.delta_mg_per_g for c in p1.changes]
    assert deltas == pytest.approx([-4.0, -4.0, 0.1], abs=1e-12)
    assert [c.days for c in p1.changes] == [181, 184, 366]
    assert [c.exceeds_variability for c in p1.changes] == [True, True, False]  # 0.1 < 1.96 x 0.217
    for c, d in zip(p1.changes, deltas):
        assert c.delta_ci95 == pytest.approx([d - 1.959964 * se_d, d + 1.959964 * se_d], rel=1e-6)
    assert p1.changes[0].rate_mg_per_g_per_year == pytest.approx(-4.0 / (181 / 365.25))
    assert all(c.comparable for c in p1.changes) and p1.warnings == []
    assert p2.exams == [] and p2.left_out == [{"exam_id": "P2/x", "reason": "no echo times"}]


def test_field_or_calibration_change_is_flagged_not_comparable():
    (p1, _) = build_trends(_rows(field_last=3.0, calibration_last="st-pierre-2005-3t-scaled"))
    last = p1.changes[-1]
    assert not last.comparable and all(c.comparable for c in p1.changes[:-1])
    assert len(p1.warnings) == 2
    assert "field strength changed (1.5 -> 3.0)" in p1.warnings[0]
    assert "calibration changed" in p1.warnings[1] and "not directly comparable" in p1.warnings[1]


def test_a_site_reproducibility_widens_the_change_interval():
    plain = build_trends(_rows(), subject="P1")[0].changes[0]
    wide = build_trends(_rows(), subject="P1", reproducibility_cv=0.1)[0].changes[0]
    se = math.hypot(math.hypot(HALF / 1.959964, 1.5), math.hypot(HALF / 1.959964, 1.1))
    assert wide.delta_ci95[1] - wide.delta_ci95[0] == pytest.approx(2 * 1.959964 * se, rel=1e-6)
    assert wide.delta_ci95[1] - wide.delta_ci95[0] > 5 * (plain.delta_ci95[1] - plain.delta_ci95[0])


def test_trend_command_writes_json_and_one_page_per_patient(tmp_path, capsys):
    table = tmp_path / "cohort.csv"
    _write_csv(table, _rows())
    out = tmp_path / "trend"
    assert main(["trend", str(table), "-o", str(out), "--subject", "P1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["P1.pdf", "P1.png", "trend.json"]
    doc = json.loads((out / "trend.json").read_text())
    (patient,) = doc["patients"]
    plot = patient["plot"]
    assert plot["dates"] == [d for d, _ in EXAMS]
    assert plot["lic_mg_per_g"] == [v for _, v in EXAMS]
    assert plot["ci_low"] == pytest.approx([v - HALF for _, v in EXAMS])
    assert [(b["lower_mg_per_g"], b["upper_mg_per_g"]) for b in plot["bands"]] == [
        (c.lower_mg_per_g, c.upper_mg_per_g) for c in CATEGORIES]
    assert doc["thresholds_mg_per_g"] == list(THRESHOLDS_MG_PER_G)
    assert doc["variability"]["reproducibility_cv"] is None and "No published" in doc["variability"]["note"]
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(out / "P1.pdf"), "-"], capture_output=True, text=True).stdout
        assert "Liver iron over time: P1" in text and "+0.10 mg/g in 366 days" in text
    assert main(["trend", str(table), "-o", str(out)]) == 2  # exists: no overwrite
    assert main(["trend", str(table), "-o", str(tmp_path / "t2"), "--subject", "nobody"]) == 2
    assert "nobody: no exam" in capsys.readouterr().err


def test_report_json_files_are_read_like_table_rows(tmp_path):
    paths = []
    for k, (date, lic) in enumerate(EXAMS[:2]):
        rep = {"input": {"patient_id": "P1", "study_date": date.replace("-", "")},
               "lic_mg_per_g": {"of_mean_r2": lic, "ci95": [lic - HALF, lic + HALF]},
               "acquisition": {"field_strength_t": 1.5, "sequence": "SE"},
               "calibration": {"name": "st-pierre-2005"}, "model": {"name": "ncchi"}}
        (tmp_path / f"e{k}").mkdir()
        paths.append(tmp_path / f"e{k}" / "report.json")
        paths[-1].write_text(json.dumps(rep))
    (p1,) = build_trends(read_exams(paths))
    assert [e.date for e in p1.exams] == ["2023-01-15", "2023-07-15"]
    assert p1.changes[0].delta_mg_per_g == -4.0 and p1.changes[0].exceeds_variability
