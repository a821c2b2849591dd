"""benchmarks/hetero_grid.py: the issue-16 grid table's assembly and verdicts (no phantoms, < 1 s)."""

import math

import pytest
from scipy.stats import binom

from benchmarks.hetero_grid import binom_cdf, block_text, compose, failing


def _cell(errs, hits=None, src="small"):
    n = len(errs)
    return {"err": list(errs), "covered": None if hits is None else [True] * hits + [False] * (n - hits), "src": src}


def test_binomial_tail_matches_scipy():
    for k, n in [(5, 8), (6, 8), (36, 40), (3, 4)]:
        assert binom_cdf(k, n, 0.9) == pytest.approx(binom.cdf(k, n, 0.9), rel=1e-12)


def test_compose_takes_30_mg_per_g_snr20_from_full_size_only():
    small = {(0.0, 1.0, 30.0, 20.0, 8): _cell([9.0] * 8, 8), (0.0, 1.0, 7.0, 20.0, 8): _cell([0.1] * 8, 8)}
    full = {(0.0, 1.0, 30.0, 20.0, 8): _cell([0.2] * 4, 4, "full"),
            (0.0, 1.0, 30.0, 50.0, 8): _cell([5.0] * 4, 4, "full")}
    grid = compose(small, full)
    assert grid[(0.0, 1.0, 30.0, 20.0, 8)]["src"] == "full"
    assert (0.0, 1.0, 30.0, 50.0, 8) not in grid  # SNR 50 at 30 mg/g stays with the small livers
    assert grid[(0.0, 1.0, 7.0, 20.0, 8)]["src"] == "small"


def test_failing_verdicts():
    # mean +3 %, seed SD 1 % over 8 seeds: SE 0.354 %, excess 1 % = 2.8 SE -> real
    errs = [3.0 + d for d in (-1.5, -1, -0.5, 0, 0, 0.5, 1, 1.5)]
    sd = math.sqrt(sum((e - 3.0) ** 2 for e in errs) / 7)
    cells = {(0.4, 8.0, 30.0, 50.0, 8): _cell(errs, 8), (0.0, 1.0, 7.0, 50.0, 8): _cell([0.0] * 7 + [0.1], 5),
             (0.0, 1.0, 1.0, 50.0, 1): _cell([0.0] * 8, 7), (0.2, 4.0, 1.0, 50.0, 1): _cell([0.5] * 8, 8)}
    out = {f["key"]: f for f in failing(cells)}
    assert set(out) == {(0.4, 8.0, 30.0, 50.0, 8), (0.0, 1.0, 7.0, 50.0, 8), (0.0, 1.0, 1.0, 50.0, 1)}
    f = out[(0.4, 8.0, 30.0, 50.0, 8)]
    assert f["se"] == pytest.approx(sd / math.sqrt(8))
    assert f["bias_verdict"].endswith("real") and f["cov_verdict"] == "-"
    assert out[(0.0, 1.0, 7.0, 50.0, 8)]["cov_verdict"] == "P = 0.04: real"  # 5/8: P = 0.038
    assert out[(0.0, 1.0, 1.0, 50.0, 1)]["cov_verdict"] == "P = 0.57: chance"  # 7/8
    assert block_text(cells, lambda k: True) == "+3.0 / 3/4 / 88 %"  # 28/32 seeds covered
