"""benchmarks.coarse30's bookkeeping: the ROI-selection split and the per-condition summary."""

from types import SimpleNamespace

import numpy as np
import pytest

from r2mri.status import FitStatus

coarse30 = pytest.importorskip("benchmarks.coarse30")


def test_left_out_shares_add_up_to_the_sample_error():
    rng = np.random.default_rng(0)
    shape = (20, 20, 2)
    r2t = rng.uniform(100.0, 400.0, shape)
    liver = np.zeros(shape, bool); liver[2:18, 2:18] = True
    cand = np.zeros(shape, bool); cand[2:16, 2:18] = True  # rows 16-17: not in the candidate
    mask = cand.copy(); mask[2:4] = False  # rows 2-3: removed (eroded, or failed below)
    nc = np.zeros(shape, bool); nc[4, 4:8] = True; mask[4, 4:8] = False  # pooled, not in the mask
    status = np.zeros(shape, np.uint8); status[2, 2:10] = FitStatus.TOO_FEW_ECHOES  # a failed fit
    npar = np.zeros(shape, bool); npar[10, 10] = True; mask[9:12, 9:12] = False
    fit = SimpleNamespace(r2_per_s=np.full(shape, 200.0), s0=np.full(shape, 1000.0), status=status)
    roi = SimpleNamespace(mask=mask, candidate=cand, not_converged=nc, non_parenchyma=npar)
    res = coarse30.left_out(roi, fit, liver, r2t)
    pool = (mask | nc) & liver
    assert res["pool_voxels"] == int(pool.sum())
    assert res["pool_r2_error_pct"] == pytest.approx(100 * (r2t[pool].mean() / r2t[liver].mean() - 1), rel=1e-12)
    parts = res["parts"]
    assert parts["not_in_candidate"]["voxels"] == 2 * 16 * 2
    assert parts["failed_fit"]["voxels"] == 8 * 2
    assert parts["next_to_non_parenchyma"]["voxels"] == 9 * 2
    assert sum(p["voxels"] for p in parts.values()) + res["pool_voxels"] == int(liver.sum())
    # exact: mean(liver) = f_pool mean(pool) + sum f_part mean(part)
    assert sum(p["share_pct"] for p in parts.values()) == pytest.approx(res["pool_r2_error_pct"], abs=1e-10)


def test_summary_se_over_textures_and_silent_misses():
    rows = []
    for t, base in ((1, 1.0), (2, 3.0)):
        for n, e in enumerate((base - 0.1, base + 0.1)):
            miss = t == 2 and n == 1
            kind = {"headline_error_pct": e, "ci95_pct": [e - 5, e + 5] if not miss else [e - 5, e - 1],
                    "covers": not miss, "red_warnings": []}
            rows.append({"texture_seed": t, "noise_seed": n, "automatic": kind, "outline": kind})
    line = coarse30.summarize(rows)[0]
    # mean 2.0; SE over 4 livers sqrt(var/4), over the 2 texture means |3-1|/2 = 1.0
    se = np.std([0.9, 1.1, 2.9, 3.1], ddof=1) / 2
    assert f"+2.00 +- {se:.2f} % (livers, n=4; +- 1.00 over 2 textures)" in line
    assert "coverage 3/4" in line and "missed without red warning 1" in line
    assert "per texture 1:+1.00 2:+3.00" in line
