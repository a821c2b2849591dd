"""Rule 2 and the floor fits with S0 = 0 (branch floor30): they leave the ROI's mask but not the
headline's sample (LiverROI.not_converged), since dropping them selects on noise."""

import numpy as np
import pytest

from r2mri._roi_rules import failed_fits
from r2mri.status import FitStatus


def test_failed_fits_pools_floor_fits_without_signal():
    shape = (4, 1, 1)
    kept = np.ones(shape, bool)
    r2 = np.full(shape, 300.0)
    s0 = np.array([20.0, 0.0, 20.0, 0.0]).reshape(shape)
    status = np.array([FitStatus.BELOW_NOISE, FitStatus.BELOW_NOISE, FitStatus.NOT_CONVERGED,
                       FitStatus.BAD_INPUT], np.uint8).reshape(shape)
    mask, good, pooled = failed_fits(kept, r2, s0, status)
    # a floor fit with signal stays in the mask; one without (S0 = 0) and a non-converged fit
    # leave it for the pooled sample; bad input leaves both
    assert mask.ravel().tolist() == [True, False, False, False]
    assert pooled.ravel().tolist() == [False, True, True, False]


@pytest.fixture(scope="module")
def floor_patch():
    """A uniform patch at R2 330 s^-1 (about 40 mg/g), S0 = 20 sigma, 8 channels, TE 6-18 ms: the
    first echo's amplitude (2.7 sigma) is below the 8-channel floor (~3.9 sigma)."""
    import r2mri
    from r2mri.roi import liver_roi

    te = np.array([6, 9, 12, 15, 18]) / 1e3
    sigma, coils, s0, r2 = 1.0, 8, 20.0, 330.0
    rng = np.random.default_rng(0)
    shape = (48, 48, 2)
    amp = s0 * np.exp(-r2 * te) * np.ones(shape + (te.size,))
    re = amp + sigma * rng.standard_normal(amp.shape)
    # RSS magnitude of 8 channels, the whole amplitude on one (exact in law)
    data = np.sqrt(re**2 + sigma**2 * rng.chisquare(2 * coils - 1, amp.shape))
    img = r2mri.MultiEchoImage(data, te, affine=np.diag([1.5, 1.5, 5.0, 1.0]))
    fit = r2mri.fit(img, noise_sigma=sigma, coils=coils, threads=1)
    roi = liver_roi(img, fit, mask=np.ones(shape, bool), erode_mm=0)
    return img, fit, roi, float(amp[0, 0, 0, 0]), sigma, coils


def test_dropping_floor_fits_would_select_on_noise(floor_patch):
    """The pooled sample's first-echo mean magnitude is the expected one (no selection); the mask's
    alone reads high by many standard errors (the voxels whose noise happened to be low left)."""
    from r2mri.noise import ncchi_mean

    img, fit, roi, a1, sigma, coils = floor_patch
    floor = (np.asarray(fit.s0) <= 0) & (np.asarray(fit.status) == FitStatus.BELOW_NOISE)
    assert np.count_nonzero(floor) > 0.05 * floor.size  # ~13 % of the voxels at this SNR
    # all leave the mask; rule 3 (vessels, S0 outliers) may still take a few out of the pooled sample
    assert not np.any(roi.mask[floor]) and np.mean(roi.not_converged[floor]) > 0.95
    m1 = np.asarray(img.data)[..., 0]
    expected = float(ncchi_mean(a1, sigma, coils))
    pool = roi.mask | roi.not_converged
    se_pool = m1[pool].std(ddof=1) / np.sqrt(np.count_nonzero(pool))
    assert abs(m1[pool].mean() - expected) < 3 * se_pool, (m1[pool].mean(), expected, se_pool)
    se_mask = m1[roi.mask].std(ddof=1) / np.sqrt(np.count_nonzero(roi.mask))
    assert m1[roi.mask].mean() - expected > 5 * se_mask, (m1[roi.mask].mean(), expected, se_mask)


def test_headline_pools_the_floor_fits(floor_patch):
    from r2mri.stats import liver_statistics

    img, fit, roi, _, _, _ = floor_patch
    with_floor = liver_statistics(fit, roi, image=img, n_bootstrap=0).to_dict()["headline"]["n_voxels_used"]
    without = liver_statistics(fit, roi.mask, image=img, n_bootstrap=0).to_dict()["headline"]["n_voxels_used"]
    nc = int(np.count_nonzero(roi.not_converged))
    # the tiles change with them (a tile whose fit fails at the last level leaves the headline): within 5 %
    assert abs((with_floor - without) - nc) <= 0.05 * nc, (with_floor - without, nc)
