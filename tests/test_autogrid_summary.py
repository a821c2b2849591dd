"""benchmarks.autogrid's bookkeeping: the cell summary and the never-repeated noise seeds."""

import json

import numpy as np
import pytest

autogrid = pytest.importorskip("benchmarks.autogrid")


def _row(k, err_auto, ci_auto, red_auto, err_out=0.0, ci_out=(-1.0, 1.0)):
    def kind(err, ci, red):
        return {"headline_error_pct": err, "ci95_pct": list(ci), "covers": bool(ci[0] <= 0.0 <= ci[1]),
                "pool_truth_error_pct": err / 2, "pool_estimator_error_pct": err / 2, "red_warnings": red,
                "all_warnings": red + ["note"]}
    return {"cell": "sd0.4_w8_lic1_snr20_c1", "k": k, "automatic": kind(err_auto, ci_auto, red_auto), "outline": kind(err_out, ci_out, [])}


def test_summary_counts_misses_and_red_warnings_other_than_heterogeneity():
    het = "heterogeneity: WARNING - the single headline hides clinically different regions"
    roi = "liver ROI: WARNING - voxels too dark to fit"
    rows = [_row(0, 6.0, (3.0, 9.0), [het]), _row(1, 4.0, (1.0, 7.0), [het, roi]),
            _row(2, -1.0, (-3.0, 1.0), []), _row(3, 7.0, (4.0, 10.0), [])]
    (s,) = autogrid.summarize(rows)
    a = s["automatic"]
    e = np.array([6.0, 4.0, -1.0, 7.0])
    assert s["n"] == 4
    assert a["mean_error_pct"] == pytest.approx(e.mean())
    assert a["se_pct"] == pytest.approx(e.std(ddof=1) / 2)
    assert a["covered"] == 1
    assert a["half_width_pct"] == pytest.approx(3.0)
    assert a["sel_pct"] == pytest.approx(e.mean() / 2)
    assert a["red"] == 2 and a["red_not_heterogeneity"] == 1
    assert a["missed_without_red"] == 1  # k 3
    assert a["missed_without_other_red"] == 2  # k 0 (heterogeneity only) and k 3
    assert s["warnings_automatic"] == pytest.approx(1.75)  # 2, 3, 1, 1
    assert s["outline"]["covered"] == 4
    assert "**+4.00 +- 1.78**" in autogrid.table([s])


def test_cells_and_refusal_of_a_used_noise_seed(tmp_path):
    assert len(autogrid.CELLS) == 24 and len(set(autogrid.CELLS)) == 24
    assert all(c[0] == 0.4 for c in autogrid.CELLS[:16]) and all(c[0] == 0.0 for c in autogrid.CELLS[16:])
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"runs": [], "rows": [{"k": 3}]}))
    with pytest.raises(SystemExit, match="--first-index 4"):
        autogrid.main(["--cells", "0,1", "--livers", "2", "--first-index", "1", "--append", "--out", str(out)])
