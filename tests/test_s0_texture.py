"""The per-exam fine S0 texture check (r2mri/_s0_texture.py): the cross-echo measurement in tiles,
its response to the noise floor, and the report's decision (issue 16, branch s0warn)."""

import numpy as np
import pytest

from r2mri import _s0_texture as T

TE_S = np.array([6.0, 12.0, 18.0, 24.0, 30.0]) / 1e3


def _tiles(n=96, edge=4):
    ij = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    xyz = np.c_[ij, np.zeros(len(ij), int)]
    tile = ij[:, 0] // edge * (n // edge) + ij[:, 1] // edge
    return xyz, tile, {edge: np.ones((n // edge) ** 2, bool)}


def _liver(s0_log_sd, r2_sd, seed, coils=1, sigma=1.0, s0=60.0, r2=40.0):
    """Voxel-independent log-normal S0 and normal R2 textures, Rician / RSS noise."""
    rng = np.random.default_rng(seed)
    xyz, tile, sel = _tiles()
    n = len(tile)
    amp = s0 * np.exp(s0_log_sd * rng.standard_normal(n))[:, None] * np.exp(
        -(r2 + r2_sd * rng.standard_normal(n))[:, None] * TE_S)
    p = (amp + sigma * rng.standard_normal(amp.shape)) ** 2 + sigma**2 * rng.chisquare(2 * coils - 1, amp.shape)
    return np.sqrt(p), xyz, tile, sel


def test_log_response_matches_brute_force():
    # d E[log M] / d log A by brute force (2e6 draws, +-5 % in A): 1 ch 0.864 at 2 sigma; 8 ch 0.516 at 4 sigma
    assert T.log_response(np.array([2.0]), 1)[0] == pytest.approx(0.864, abs=0.01)
    assert T.log_response(np.array([4.0]), 8)[0] == pytest.approx(0.516, abs=0.01)


@pytest.mark.parametrize("s0_log_sd", [0.0, 0.1])
def test_reads_s0_texture_not_r2_texture(s0_log_sd):
    # 9,216 voxels in 4 x 4 tiles; R2 SD 10 s^-1 inside the tiles (R2 t up to 0.3: much larger than the S0 term)
    y, xyz, tile, sel = _liver(s0_log_sd, 10.0, seed=3)
    e = T.exam_texture(y, xyz, tile, sel, TE_S, 1.0, 1)
    assert e["measurable"] and e["echoes_used"] == 3
    m = e["by_tile_size"]["4"]
    truth = s0_log_sd**2 * 15 / 16  # white texture: within-tile variance (n - 1) / n of its variance
    assert abs(m["s0_var"] - truth) < 3.5 * m["s0_var_se"]
    assert m["s0_var_se"] < 0.003  # resolves 0.1 (var 0.0094) at > 3 SE


def test_not_measurable_near_the_floor():
    # 30 mg/g-like decay at SNR 20 with 8 channels: only the first echo above the floor
    y, xyz, tile, sel = _liver(0.1, 0.0, seed=4, coils=8, s0=20.0, r2=240.0)
    e = T.exam_texture(y, xyz, tile, sel, TE_S, 1.0, 8)
    assert not e["measurable"] and e["echoes_above_floor"] < 3 and e["by_tile_size"] == {}
    assert T.report_warning(type("M", (), {"extra": {"s0_texture": e}})(), 240.0, None) == []


def test_correction_needs_a_material_and_measured_shift():
    b = {"measurable": True, "shift_r2_per_s": -1.0, "shift_se_r2_per_s": 0.2}
    assert T.apply_correction(b, 100.0)  # 1 % of R2, 5 SE
    assert not T.apply_correction({**b, "shift_se_r2_per_s": 0.4}, 100.0)  # 2.5 SE
    assert not T.apply_correction({**b, "shift_r2_per_s": -0.2, "shift_se_r2_per_s": 0.05}, 100.0)  # 0.2 % of R2
    assert not T.apply_correction({**b, "shift_r2_per_s": +1.0}, 100.0)  # texture only adds variance: one-sided


@pytest.fixture(scope="module")
def full_size_pair():
    """A full-size uniform liver (256 x 256 x 11), 7 mg/g, SNR 20, 8 channels, with and without fine
    S0 texture (log-SD 0.1 over 1 voxel); ~5 s of CPU each at idle."""
    from types import SimpleNamespace

    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    out = {}
    for s0 in (0.0, 0.1):
        kw = dict(s0_log_sd=s0, s0_correlation_voxels=1.0) if s0 else {}
        ph = generate(lic=7.0, snr=20.0, coils=8, seed=500, texture_seed=500, **kw)
        mask = ph.truth.liver_mask
        sigma = float(ph.summary["noise_sigma"])
        fit = SimpleNamespace(r2_per_s=np.where(mask, ph.truth.r2_per_s, np.nan), status=np.zeros(mask.shape, np.uint8),
                              options={"noise_sigma": sigma, "coils": 8})
        st = liver_statistics(fit, mask, image=ph.image, seed=500)
        out[s0] = (st, float(ph.summary["lic_of_mean_r2_mg_per_g"]))
    return out


def test_full_size_texture_corrected_and_said(full_size_pair):
    # before the check: +1.71 % against the same liver without texture (benchmarks/s0_warn.py, seed 500); the
    # headline's seed SD there is ~0.3 %
    (st0, truth), (st1, _) = full_size_pair[0.0], full_size_pair[0.1]
    b0 = st0.blocks["headline"]["mixture"]["s0_texture"]
    b1 = st1.blocks["headline"]["mixture"]["s0_texture"]
    assert b0["measurable"] and not b0.get("applied")
    assert not any("more textured at fine scale" in w for w in st0.warnings)
    assert b1.get("applied") and any("was lowered by" in w for w in st1.warnings)
    assert b1["by_tile_size"]["8"]["s0_var"] == pytest.approx(0.0086, abs=3 * b1["by_tile_size"]["8"]["s0_var_se"])
    paired = 100 * (st1.headline_lic_mg_per_g - st0.headline_lic_mg_per_g) / truth
    assert abs(paired) < 1.0
    lo, hi = st1.ci95_lic_mg_per_g
    assert lo <= truth <= hi
