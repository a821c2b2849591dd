"""The opt-in texture-free interval basis (r2mri/_texture_free_ci.py, issue 16, branch widetex)."""

from types import SimpleNamespace

import numpy as np
import pytest

from r2mri import _texture_free_ci
from r2mri.errors import InputError

_Z95 = 1.959963984540054


def test_default_and_bad_mode():
    assert _texture_free_ci.apply("bootstrap", 9.0, 11.0, 10.0, 0.1, object(), None, None) == (9.0, 11.0, None)
    with pytest.raises(InputError, match="interval"):
        _texture_free_ci.apply("tight", 9.0, 11.0, 10.0, 0.1, None, None, None)


@pytest.fixture(scope="module")
def textured():
    """A small textured liver (SD 0.4 in log LIC over 4 voxels, 7 mg/g, SNR 50), both bases."""
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    ph = generate(lic=7.0, snr=50.0, coils=1, seed=11, texture_seed=12, lic_log_sd=0.4, lic_correlation_voxels=4.0,
                  matrix=(48, 48), pixel_mm=6.0, n_slices=2)
    mask = ph.truth.liver_mask
    sigma = float(ph.summary["noise_sigma"])
    r2 = np.where(mask, ph.truth.r2_per_s, np.nan)  # voxel maps only feed the left-out term's covariance here
    fit = SimpleNamespace(r2_per_s=r2, status=np.zeros(mask.shape, np.uint8), options={"noise_sigma": sigma, "coils": 1})
    out = {m: liver_statistics(fit, mask, image=ph.image, n_bootstrap=200, seed=3, interval=m)
           for m in ("bootstrap", "texture-free")}
    return ph, out


def test_texture_free_basis_is_measurement_plus_left_out(textured):
    ph, out = textured
    a, b = out["bootstrap"], out["texture-free"]
    # only the interval changes (the sigma check may re-run the headline when the shift is large against
    # the narrower half-width, r2mri/_sigma_check.py RERUN_SHARE: full size 30 mg/g SNR 20 moved by 0.004 %)
    assert b.headline_r2_per_s == pytest.approx(a.headline_r2_per_s, rel=1e-3)
    assert a.blocks["headline"]["interval_basis"] is None
    assert any("experimental" in w for w in b.warnings) and not any("experimental" in w for w in a.warnings)
    blk = b.blocks["headline"]["interval_basis"]
    se = np.hypot(blk["se_measurement_r2_per_s"], blk["se_left_out_voxels_r2_per_s"])
    lo, hi = b.blocks["r2_per_s"]["headline_ci95"]
    # the widening steps after the basis only add: the half-width is at least 1.96 x the basis SE
    assert (hi - lo) / 2 >= _Z95 * se * (1 - 1e-9)
    # on a textured liver the tile bootstrap is several times the measurement SE
    # (benchmarks/interval_terms.py: 1.6 % against 0.2 % of R2 at this texture), so the basis is narrower
    alo, ahi = a.blocks["r2_per_s"]["headline_ci95"]
    assert (hi - lo) < 0.6 * (ahi - alo)
    assert 0 < blk["left_out_fraction"] < 0.1
