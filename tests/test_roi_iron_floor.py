"""The liver ROI keeps iron-rich parenchyma whose signal is near the noise floor (issue 16,
``heterogeneous-coarse-1.5t`` at 30 mg/g): its S0 is an extrapolation as noisy as its R2,
and its fits may hit the noise floor, but it is liver."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from r2mri import MultiEchoImage
from r2mri.roi import liver_roi
from r2mri.status import FitStatus

TE = np.array([6, 9, 12, 15, 18]) / 1e3
SIGMA = 20.0


def _liver(seed, iron_rows):
    """96 x 96 x 3: soft tissue (R2 14 /s, S0 600) around a liver disk (radius 36, S0 1000,
    R2 230 /s, SE 35 /s as at 30 mg/g, SNR 50) and an iron-rich part (rows >= iron_rows:
    R2 380 /s, SE 250 /s, a third of its fits at the noise floor). Each voxel's log-S0
    noise is its R2 SE times the Cramer-Rao lever arm ``sqrt(sum t^2 S^2 / sum S^2)``:
    S0 and R2 come from the same echoes. The image holds the echoes (Rician, sigma 20, one channel)."""
    rng = np.random.default_rng(seed)
    shape = (96, 96, 3)
    ii, jj = np.mgrid[:96, :96]
    r_sq = ((ii - 48) ** 2 + (jj - 48) ** 2)[:, :, None] * np.ones(3)
    body, liver = r_sq <= 46**2, r_sq <= 36**2
    iron = liver & (ii >= iron_rows)[:, :, None]
    r2_true = np.where(liver, np.where(iron, 380.0, 230.0), 14.0)
    s0_true = np.where(liver, 1000.0, 600.0)
    se = np.where(iron, 250.0, np.where(liver, 35.0, 1.0))
    r2 = np.clip(r2_true + se * rng.standard_normal(shape), 1.0, 1000.0)
    w = np.exp(-2.0 * r2_true[..., None] * TE)
    lever = np.sqrt((w * TE**2).sum(-1) / w.sum(-1))
    s0 = s0_true * np.exp(lever * se * rng.standard_normal(shape))
    status = np.where(body, FitStatus.OK, FitStatus.MASKED).astype(np.uint8)
    status[iron & (rng.random(shape) < 1 / 3)] = FitStatus.BELOW_NOISE
    clean = s0_true[..., None] * np.exp(-r2_true[..., None] * TE) * body[..., None]
    data = np.hypot(clean + SIGMA * rng.standard_normal(clean.shape), SIGMA * rng.standard_normal(clean.shape))
    nan = np.where(body, 1.0, np.nan)
    fit = SimpleNamespace(r2_per_s=r2 * nan, s0=s0 * nan, status=status, r2_std_per_s=se * nan,
                          options={"noise_sigma": SIGMA, "coils": 1})
    img = MultiEchoImage(data, TE, np.diag([2.0, 2.0, 5.0, 1.0]), field_strength_t=1.5, sequence="SE")
    return img, fit, liver, iron, r2_true


@pytest.mark.parametrize("seed", [1, 2])
def test_s0_rule_keeps_iron_rich_parenchyma(seed):
    """With the true outline, rule 3b (S0 outliers) cut 1,012 liver voxels of true R2 348
    /s (liver 231) on heterogeneous-coarse-1.5t at 30 mg/g, texture 1, and the headline
    read -2.7 %: the S0 test used one SD for all voxels. Here (an iron-rich cap of 560
    voxels per slice) it kept 19-24 % of the cap before (seeds 1-2); with each voxel's own
    S0 noise nearly all of it, and the ROI's mean R2 is the liver's."""
    img, fit, liver, iron, r2_true = _liver(seed, 70)
    roi = liver_roi(img, fit, mask=liver, calibration="st-pierre-2005", erode_mm=0)
    # false flags: 4 SDs two-sided (6e-5) and their one-voxel margins; allow 2 %
    assert np.count_nonzero(roi.mask & iron) >= 0.98 * np.count_nonzero(iron)
    # the ROI's mean true R2 is the liver's within 0.3 % (a 2 % loss of the cap moves it 0.1 %)
    assert r2_true[roi.mask].mean() == pytest.approx(r2_true[liver].mean(), rel=3e-3)


@pytest.mark.parametrize("seed", [1, 2])
def test_automatic_roi_takes_an_iron_rich_part_at_the_noise_floor(seed):
    """At 30 mg/g and SNR 20 the growing (R2 band capped at +-0.3 in log) kept 59-70 %
    of heterogeneous-coarse-1.5t's liver: its iron-rich part (R2 above the liver's median,
    S0 unmeasurable, fits at the noise floor) was not "tissue", failed the S0 band, and
    joined as a piece larger than the leak limit. It is liver: its R2 lies above the
    liver's median and its first echo above the noise. Here that part is 40 % of the
    liver (rows >= 60); before, under 2 % of it joined (63 of 3,645 voxels, seed 1)."""
    img, fit, liver, iron, _ = _liver(seed, 60)
    roi = liver_roi(img, fit, seed=(40, 48, 1), calibration="st-pierre-2005", erode_mm=0)
    cand = roi.candidate
    assert not (cand & ~liver).any()  # the soft tissue (R2 14 /s) stays out
    # the part's rim touches soft tissue: 3x3 medians there mix the two; allow 5 %
    assert np.count_nonzero(cand & iron) >= 0.95 * np.count_nonzero(iron), roi.options["parenchyma_extension"]
    assert roi.options["parenchyma_extension"]["refused_fractions"] == []
    assert any("iron-rich tissue" in w for w in roi.warnings)  # taken in one piece beyond the leak limit: said


def test_liver_too_dark_to_fit_is_warned():
    """Where the iron-rich part's fits sit at the noise floor with no usable R2 (here all
    of them, R2 read as 1 /s) the candidate cannot take it; the ROI must say that liver
    may be left out (heterogeneous-coarse-1.5t at 30 mg/g, SNR 20: 1.6-2.7 % of the
    candidate in its rim, against 0.06-0.17 % at SNR 50). Its decay reaches the floor
    with a first echo at ~5 sigma: the candidate takes its first 3 voxels
    (:func:`r2mri._roi_iron.join_decayed_rim`), no more, and warns about the rest."""
    img, fit, liver, iron, _ = _liver(1, 60)
    fit.status[iron] = FitStatus.BELOW_NOISE
    fit.r2_per_s[iron] = 1.0
    roi = liver_roi(img, fit, seed=(40, 48, 1), calibration="st-pierre-2005", erode_mm=0)
    rows = np.mgrid[:96, :96][0][:, :, None]
    assert not (roi.candidate & iron & (rows >= 63)).any()
    assert np.count_nonzero(roi.candidate & iron & (rows < 63)) >= 0.9 * np.count_nonzero(iron & (rows < 63))
    assert roi.options["dark_rim"]["fraction"] > 0.01
    assert any("too dark to fit" in w for w in roi.warnings)
    # the same liver without the dark part: no warning
    img, fit, liver, iron, _ = _liver(1, 60)
    roi = liver_roi(img, fit, seed=(40, 48, 1), calibration="st-pierre-2005", erode_mm=0)
    assert not any("too dark to fit" in w for w in roi.warnings)
