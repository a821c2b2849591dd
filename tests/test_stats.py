"""Liver statistics: report blocks, the tile-pooled headline estimator, its bias and CI coverage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from r2mri import MultiEchoImage
from r2mri.calibration import UMOL_PER_MG, lic_from_r2, r2_from_lic
from r2mri.errors import InputError
from r2mri.stats import liver_statistics, pooled_mean_r2
from r2mri.status import FitStatus

sys.path.insert(0, str(Path(__file__).parent))
from _liver_phantoms import fitted_phantom, liver_with_vessels  # noqa: E402

TE = np.array([6, 9, 12, 15, 18]) / 1e3  # FerriScan echo times


def _fake_fit(r2, status=None, **options):
    r2 = np.asarray(r2, float)
    return SimpleNamespace(
        r2_per_s=r2, status=np.zeros(r2.shape, np.uint8) if status is None else status,
        r2_std_per_s=np.full(r2.shape, 1.0), options=options,
    )


def _rician_image(r2_map, s0, sigma, rng, coils=1):
    """Magnitude of S0 exp(-R2 TE) + complex Gaussian noise, RSS over coils (signal on coil 1)."""
    amp = s0 * np.exp(-np.asarray(r2_map)[..., None] * TE)
    total = np.zeros(amp.shape)
    for c in range(coils):
        re = (amp if c == 0 else 0.0) + sigma * rng.standard_normal(amp.shape)
        im = sigma * rng.standard_normal(amp.shape)
        total += re**2 + im**2
    return MultiEchoImage(np.sqrt(total), TE, np.diag([2.0, 2.0, 5.0, 1.0]))


# --------------------------------------------------------------------------- blocks
def test_blocks_on_a_known_map_voxel_mean_fallback():
    # two slices: LIC exactly 1.0 and 9.0 mg/g through the forward curve
    r2 = np.empty((10, 10, 2))
    r2[..., 0] = r2_from_lic(1.0)
    r2[..., 1] = r2_from_lic(9.0)
    status = np.zeros(r2.shape, np.uint8)
    status[0, :3, 0] = FitStatus.BELOW_NOISE
    s = liver_statistics(_fake_fit(r2, status), np.ones(r2.shape, bool))
    d = s.to_dict()
    mean_r2 = (r2_from_lic(1.0) + r2_from_lic(9.0)) / 2
    assert s.estimator == "voxel-mean" and any("no magnitude images" in w for w in s.warnings)
    # exact arithmetic on 200 values: float64 rounding only (1e-12 relative)
    assert d["r2_per_s"]["mean"] == pytest.approx(mean_r2, rel=1e-12)
    assert d["lic_mg_per_g"]["of_mean_r2"] == pytest.approx(lic_from_r2(mean_r2), rel=1e-12)
    assert d["lic_mg_per_g"]["mean"] == pytest.approx(5.0, rel=1e-12)  # mean voxel LIC
    # Jensen: the curve is convex, so mean voxel LIC >= LIC of mean R2 (domain.md section 4)
    assert d["lic_mg_per_g"]["mean"] >= d["lic_mg_per_g"]["of_mean_r2"]
    assert d["lic_umol_per_g"]["of_mean_r2"] == pytest.approx(d["lic_mg_per_g"]["of_mean_r2"] * UMOL_PER_MG)
    assert d["fraction_above"] == {"1.8": 0.5, "3.2": 0.5, "7": 0.5, "15": 0.0}
    assert d["lic_mg_per_g"]["iqr"] == pytest.approx([1.0, 9.0], rel=1e-12)
    assert set(d["lic_mg_per_g"]["percentiles"]) == {"5", "10", "25", "50", "75", "90", "95"}
    assert [p["lic_mean_voxel"] for p in d["per_slice"]] == pytest.approx([1.0, 9.0], rel=1e-12)
    assert d["qc"]["fraction_at_noise_floor"] == pytest.approx(3 / 200)
    assert d["qc"]["extrapolated_fraction"] == 0.0
    assert d["qc"]["fit_failures"] == 0 and d["umol_per_mg"] == UMOL_PER_MG
    assert d["category"]["name"] == s.category.name == "target-range"  # LIC(mean R2) ~ 4.2
    assert d["category"]["thresholds_mg_per_g"] == [1.8, 3.2, 7.0, 15.0] and "St Pierre" in d["category"]["source"]
    # the CI holds the headline and is monotone-mapped
    lo, hi = d["lic_mg_per_g"]["ci95"]
    assert lo <= d["lic_mg_per_g"]["of_mean_r2"] <= hi
    json.dumps(d, allow_nan=False)  # report.json must never hold NaN


def test_extrapolation_and_noise_floor_flags():
    r2 = np.full((6, 6, 1), 350.0)  # LIC ~ 73 mg/g: beyond St Pierre's 42.7 mg/g
    s = liver_statistics(_fake_fit(r2), np.ones(r2.shape, bool))
    d = s.to_dict()
    assert d["qc"]["extrapolated_fraction"] == 1.0 and d["qc"]["headline_extrapolated"]
    assert any("outside the calibrated range" in w for w in s.warnings)


def test_bootstrap_is_deterministic():
    rng = np.random.default_rng(0)
    r2 = 100 + 10 * rng.standard_normal((20, 20, 2))
    fit = _fake_fit(r2)
    m = np.ones(r2.shape, bool)
    a = liver_statistics(fit, m, seed=5).ci95_lic_mg_per_g
    b = liver_statistics(fit, m, seed=5).ci95_lic_mg_per_g
    assert a == b


def test_bad_input():
    fit = _fake_fit(np.full((4, 4, 1), 50.0))
    with pytest.raises(InputError, match="roi: shape"):
        liver_statistics(fit, np.ones((4, 4, 2), bool))
    with pytest.raises(InputError, match="no voxel"):
        liver_statistics(fit, np.zeros((4, 4, 1), bool))
    with pytest.raises(InputError, match="estimator: 'tile-ncchi' needs"):
        liver_statistics(fit, np.ones((4, 4, 1), bool), estimator="tile-ncchi")
    with pytest.raises(InputError, match="estimator"):
        liver_statistics(fit, np.ones((4, 4, 1), bool), estimator="mode")
    img = MultiEchoImage(np.ones((4, 4, 1, 5)), TE)
    with pytest.raises(InputError, match="noise_sigma"):
        pooled_mean_r2(img, np.ones((4, 4, 1), bool), noise_sigma=0.0)
    with pytest.raises(InputError, match="tile"):
        pooled_mean_r2(img, np.ones((4, 4, 1), bool), noise_sigma=1.0, tile=0)


# --------------------------------------------------------------------------- estimator
@pytest.mark.parametrize("r2_true, coils", [(25.0, 1), (160.0, 1), (280.0, 1), (160.0, 4)])
def test_pooled_estimator_exact_without_noise(r2_true, coils):
    # noise-free magnitudes equal to the non-central chi mean of each amplitude: the model
    # is exact, so the fit recovers R2 to the LM step tolerance (1e-7 relative)
    from r2mri.noise import ncchi_mean

    amp = 1000 * np.exp(-r2_true * TE) * np.ones((8, 8, 1, 5))
    img = MultiEchoImage(ncchi_mean(amp, 10.0, coils), TE)
    p = pooled_mean_r2(img, np.ones((8, 8, 1), bool), noise_sigma=10.0, coils=coils)
    assert p.mean_r2_per_s == pytest.approx(r2_true, rel=1e-6)


def test_ci_coverage_on_synthetic_rician_data():
    """95 % interval coverage over 40 noise draws of a uniform liver at 15 mg/g, SNR 50.

    Binomial SD of the coverage of 40 draws at p = 0.95 is 0.034; 0.85 is 3 SD below.
    """
    r2_true = r2_from_lic(15.0)
    rng = np.random.default_rng(2024)
    shape = (30, 30, 3)
    hits, biases = 0, []
    for _ in range(40):
        img = _rician_image(np.full(shape, r2_true), 1000.0, 20.0, rng)
        fit = _fake_fit(np.full(shape, r2_true), noise_sigma=20.0, coils=1)
        s = liver_statistics(fit, np.ones(shape, bool), image=img, n_bootstrap=500)
        lo, hi = s.ci95_lic_mg_per_g
        hits += lo <= 15.0 <= hi
        biases.append(s.headline_lic_mg_per_g / 15.0 - 1)
    assert s.estimator == "tile-mixture"
    assert hits / 40 >= 0.85, hits
    # mean relative bias over 40 draws: its SE is ~0.5 %/sqrt(40) ~ 0.08 %; 0.5 % bounds it
    assert abs(np.mean(biases)) < 0.005, np.mean(biases)


# --------------------------------------------------------------------------- phantoms
@pytest.mark.parametrize("lic, spec", [(0.5, 0.03), (3.2, 0.03), (15.0, 0.03), (30.0, 0.03), (40.0, 0.05)])
def test_headline_bias_on_phantoms(lic, spec):
    """Issue 5: |bias| <= 3 % (0.5-30 mg/g) and 5 % (40 mg/g) at SNR 50, one channel.

    Measured (docs/statistics.md, 20 seeds): mean bias <= 0.1 % up to 15 mg/g and +0.5 %
    at 40 mg/g, where the mean of the voxel R2 is +15 %. A second, statistical check:
    the truth lies within 4/1.96 half-widths of the 95 % interval (a 4-SD band).
    """
    ph, fit = fitted_phantom(lic)
    from r2mri.roi import liver_roi

    roi = liver_roi(ph.image, fit, mask=liver_with_vessels(ph))
    s = liver_statistics(fit, roi, image=ph.image)
    truth = ph.truth.summary["lic_of_mean_r2_mg_per_g"]
    assert s.estimator == "tile-mixture"
    assert abs(s.headline_lic_mg_per_g / truth - 1) <= spec
    lo, hi = s.ci95_lic_mg_per_g
    half = (hi - lo) / 2
    assert abs(s.headline_lic_mg_per_g - truth) <= 4 / 1.96 * half
    d = s.to_dict()
    assert d["lic_mg_per_g"]["of_mean_r2"] == s.headline_lic_mg_per_g
    json.dumps(d, allow_nan=False)
