"""The automatic ROI on a coarse-textured GRE (R2*) liver (issue 16).

Phantom: ``gre-1.5t-fat15-lic3.2`` at 5 mg/g, texture SD 0.4 in log LIC over 8 voxels
(texture seed 16), 128 x 128 x 5 voxels of 3 mm, SNR 50, 8 channels, noise seed 0. Before
the R2* floor (r2mri/_r2star_floor.py) the automatic ROI held 51 % of the liver (the
high-iron half) and the headline read 6.42 mg/g against 5.00 (+28 %), with no warning
but "automatic proposal". Now the parenchyma extension takes the low-iron patches back
(81 % of the liver, headline 5.26, 95 % interval 5.00-5.52) and says so.
"""

from __future__ import annotations

import numpy as np
import pytest

from r2mri.phantom import LABELS

GEOMETRY = dict(matrix=(128, 128), pixel_mm=3.0, n_slices=5)


@pytest.fixture(scope="module")
def coarse():
    import r2mri
    from r2mri.phantom import generate

    ph = generate("gre-1.5t-fat15-lic3.2", lic=5.0, snr=50.0, coils=8, seed=0, texture_seed=16, lic_log_sd=0.4,
                  lic_correlation_voxels=8.0, **GEOMETRY)
    return ph, r2mri.analyze(ph.image)


def _red(warnings):
    return [w for w in warnings if w.startswith("liver ROI: WARNING")]


def test_coarse_gre_liver_roi_holds_the_liver_and_reads_within_its_interval(coarse):
    ph, res = coarse
    liver, lab = ph.truth.liver_mask, ph.truth.labels
    m = res.roi.mask
    # the 5 mm edge erosion and the vessel margins take ~15-20 % of a liver at 3 mm
    # (uniform GRE phantoms: 9,000 of 11,200 voxels); the patches must come back
    assert np.count_nonzero(m & liver) >= 0.75 * liver.sum()
    other = m & ~liver & (lab != LABELS["vessel"])
    assert np.count_nonzero(other) <= 0.005 * m.sum()
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    st = res.statistics
    lo, hi = st.ci95_lic_mg_per_g
    head = st.headline_lic_mg_per_g
    # the interval's own width is the tolerance: inside it, or at most one more half-width
    # away with a reading-changing ROI warning (the ROI is still a subset of a patchy liver)
    assert abs(head - truth) <= (hi - lo), (head, lo, hi, truth)
    assert lo <= truth <= hi or _red(res.roi.warnings), (head, lo, hi, res.roi.warnings)
    # the extension says what it did: patches of the region's S0 and fat fraction
    ext = res.roi.options["parenchyma_extension"]
    assert ext["large_patch_fractions"] and max(ext["large_patch_fractions"]) > 0.25
    assert any("patchy liver" in w for w in _red(res.roi.warnings))


def test_left_out_patches_are_warned_in_red_never_only_automatic_proposal(coarse, monkeypatch):
    """If the patches are refused (here: the S0-spread test made impossible), the ROI is
    the high-iron half again and the headline reads high: a red ROI warning must say
    that tissue like the liver was left out."""
    import r2mri._roi_patches as patches
    from r2mri.roi import liver_roi

    ph, res = coarse
    monkeypatch.setattr(patches, "S0_SPREAD_RATIO", 0.0)
    monkeypatch.setattr(patches, "PDFF_TOLERANCE_POINTS", -1.0)
    roi = liver_roi(res.image, res.fit, calibration=res.calibration)
    liver = ph.truth.liver_mask
    assert np.count_nonzero(roi.mask & liver) < 0.6 * liver.sum()
    red = _red(roi.warnings)
    assert any("left out" in w for w in red), roi.warnings
