"""Liver ROI: erosion in millimetres, fit-failure and vessel rules, semi-/automatic candidates."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from r2mri import MultiEchoImage
from r2mri.errors import InputError
from r2mri.roi import liver_roi
from r2mri.status import FitStatus

sys.path.insert(0, str(Path(__file__).parent))
from _liver_phantoms import LABEL_LIVER, LABEL_VESSEL, fitted_phantom, liver_with_vessels  # noqa: E402

TE = np.array([6, 9, 12, 15, 18]) / 1e3


def _image(shape, voxel=(2.0, 2.0, 5.0), thickness=None):
    meta = {} if thickness is None else {"slice_thickness_mm": thickness}
    return MultiEchoImage(np.ones(shape + (5,)), TE, np.diag(list(voxel) + [1.0]), metadata=meta)


def _fit(r2, s0=None, status=None, r2_std=None):
    return SimpleNamespace(
        r2_per_s=np.asarray(r2, float),
        s0=np.ones(np.shape(r2)) if s0 is None else np.asarray(s0, float),
        status=np.zeros(np.shape(r2), np.uint8) if status is None else status,
        r2_std_per_s=None if r2_std is None else np.broadcast_to(r2_std, np.shape(r2)),
    )


def test_erosion_counts_in_millimetres_anisotropic():
    # 20 x 20 square of voxels 1 mm (x) by 3 mm (y): a 3 mm margin removes the columns
    # whose centres are 0.5, 1.5, 2.5 mm from the edge (3 each side; 3.5 mm is kept) and
    # the row at 1.5 mm (1 each side; the next, 4.5 mm, is kept). Kept: (20-6) x (20-2).
    shape = (30, 30, 1)
    m = np.zeros(shape, bool)
    m[5:25, 5:25] = True
    roi = liver_roi(_image(shape, (1.0, 3.0, 5.0)), _fit(np.full(shape, 80.0)), mask=m, erode_mm=3.0)
    assert roi.n_voxels == 14 * 18
    assert roi.removed == {"edge_erosion": 400 - 14 * 18, "fit_failed": 0, "vessels": 0}
    assert roi.method == "user mask" and not roi.automatic


def test_volume_uses_slice_thickness_not_spacing():
    shape = (10, 10, 2)
    m = np.ones(shape, bool)
    roi = liver_roi(_image(shape, (2.0, 2.0, 7.5), thickness=5.0), _fit(np.full(shape, 50.0)), mask=m, erode_mm=0)
    # 200 voxels of 2 x 2 x 5 mm = 4.0 ml (the 2.5 mm gap is not tissue we measured)
    assert roi.volume_ml == pytest.approx(4.0, rel=1e-12)
    assert roi.to_dict()["n_voxels"] == 200


def test_failed_fits_removed_noise_floor_kept():
    shape = (12, 12, 1)
    status = np.zeros(shape, np.uint8)
    status[0, 0] = FitStatus.NOT_CONVERGED
    status[0, 1] = FitStatus.TOO_FEW_ECHOES
    status[0, 2] = FitStatus.BAD_INPUT
    status[1, 0] = FitStatus.BELOW_NOISE  # kept: dropping it would select on noise
    status[1, 1] = FitStatus.BOUND_HIT  # kept
    r2 = np.full(shape, 80.0)
    r2[2, 2] = np.nan
    roi = liver_roi(_image(shape), _fit(r2, status=status), mask=np.ones(shape, bool), erode_mm=0)
    assert roi.removed["fit_failed"] == 4
    assert roi.mask[1, 0, 0] and roi.mask[1, 1, 0] and not roi.mask[0, 0, 0] and not roi.mask[2, 2, 0]


def test_voxel_without_finite_se_is_not_called_a_vessel():
    # a noise-floor voxel reports no finite SE: its low R2 is no evidence of blood
    rng = np.random.default_rng(1)
    shape = (20, 20, 1)
    r2 = 200 * np.exp(0.05 * rng.standard_normal(shape))
    std = np.full(shape, 10.0)
    r2[10, 10] = 20.0
    std[10, 10] = np.inf
    roi = liver_roi(_image(shape), _fit(r2, r2_std=std), mask=np.ones(shape, bool), erode_mm=0)
    assert roi.mask[10, 10, 0]


@pytest.mark.parametrize("r2_liver, rel_noise", [(25.0, 0.03), (280.0, 0.25)])
def test_vessel_rule_removes_thin_and_wide_vessels(r2_liver, rel_noise):
    """A 1-voxel and a 4-voxel wide vessel (R2 4 /s, blood) inside a noisy parenchyma."""
    rng = np.random.default_rng(3)
    shape = (60, 60, 3)
    r2 = r2_liver * np.exp(rel_noise * rng.standard_normal(shape))  # per-voxel fit noise
    s0 = 1000 * (1 + 0.02 * rng.standard_normal(shape))
    vessel = np.zeros(shape, bool)
    vessel[30, 5:55, :] = True  # thin, vanishes in a 3x3 median
    vessel[8:12, 5:55, :] = True  # wide
    r2[vessel] = 4.0 * (1 + 0.05 * rng.standard_normal(int(vessel.sum())))
    r2_std = np.where(vessel, 0.2, rel_noise * r2_liver)  # what the fit reports as its SE
    roi = liver_roi(_image(shape), _fit(r2, s0, r2_std=r2_std), mask=np.ones(shape, bool), erode_mm=0)
    assert not (roi.mask & vessel).any()
    # parenchyma away from vessels (> 1 voxel, the dilation margin): R2 is tested at
    # 4 SDs of its own noise, one-sided (normal tail 3.2e-5), S0 at 4 robust SDs of 3x3
    # medians, two-sided (6e-5): expected false removals, each dilated to a 3x3 patch,
    # ~ 9e-5 * 9 * 9000 ~ 7 voxels; allow 0.5 % = 45.
    far = ~np.isin(np.arange(60), [7, 8, 9, 10, 11, 12, 29, 30, 31])[:, None, None] & np.ones(shape, bool)
    lost = np.count_nonzero(far & ~roi.mask)
    assert lost <= 0.005 * np.count_nonzero(far), lost
    assert roi.removed["vessels"] == np.count_nonzero(~roi.mask)


def test_bad_arguments():
    shape = (8, 8, 2)
    img, fit = _image(shape), _fit(np.full(shape, 50.0))
    with pytest.raises(InputError, match="mask: shape"):
        liver_roi(img, fit, mask=np.ones((8, 8, 3), bool))
    with pytest.raises(InputError, match="seed"):
        liver_roi(img, fit, seed=(9, 0, 0))
    with pytest.raises(InputError, match="bbox"):
        liver_roi(img, fit, bbox=((0, 9), (0, 8), (0, 2)))
    with pytest.raises(InputError, match="erode_mm"):
        liver_roi(img, fit, mask=np.ones(shape, bool), erode_mm=-1)
    with pytest.raises(InputError, match="empty"):
        liver_roi(img, fit, mask=np.zeros(shape, bool))
    with pytest.raises(InputError, match="fit.r2_per_s"):
        liver_roi(img, _fit(np.ones((8, 8, 1))))


# --------------------------------------------------------------------------- phantoms
@pytest.mark.parametrize("lic", [0.5, 3.2, 40.0])
def test_user_mask_on_phantom_drops_all_vessels(lic):
    ph, fit = fitted_phantom(lic)
    lab = ph.truth.labels
    roi = liver_roi(ph.image, fit, mask=liver_with_vessels(ph))
    # every kept voxel is liver parenchyma: no vessel survives the rule
    assert np.count_nonzero(roi.mask & (lab == LABEL_VESSEL)) == 0
    assert np.all(lab[roi.mask] == LABEL_LIVER)
    # and most of the liver is kept: 5 mm erosion of 6 mm voxels removes the outer ring
    # (~15 %), vessels plus a one-voxel rim ~10 %; keep at least 60 %.
    assert roi.n_voxels >= 0.6 * np.count_nonzero(lab == LABEL_LIVER)


@pytest.mark.parametrize("lic", [0.5, 3.2, 15.0, 40.0])
def test_automatic_proposal_recovers_liver(lic):
    ph, fit = fitted_phantom(lic)
    lab = ph.truth.labels
    roi = liver_roi(ph.image, fit)
    assert roi.automatic and roi.method == "automatic" and roi.warnings
    truth = liver_with_vessels(ph)
    cand = roi.candidate
    dice = 2 * np.count_nonzero(cand & truth) / (np.count_nonzero(cand) + np.count_nonzero(truth))
    # measured Dice of the candidate vs liver+vessels: 0.937-0.982 over 0.5-40 mg/g and
    # noise seeds 0-9 (edge voxels and a few neighbouring soft-tissue voxels differ);
    # the final ROI was >= 99.9 % liver in all. 0.9 leaves room for other noise draws.
    # It used to fail intermittently at 0.5 (Dice 0.886): a seed on the liver's
    # partial-volume rim grew liver + a one-voxel rim of its neighbours, scoring within
    # 1 % of the liver alone; such re-growths of an organ are now duplicates (roi.py).
    assert dice >= 0.9, dice
    purity = np.count_nonzero(roi.mask & (lab == LABEL_LIVER)) / roi.n_voxels
    assert purity >= 0.995, purity
    assert roi.n_voxels >= 0.5 * np.count_nonzero(lab == LABEL_LIVER)


def test_seed_and_bbox_on_phantom():
    ph, fit = fitted_phantom(3.2)
    lab = ph.truth.labels
    liver = lab == LABEL_LIVER
    ii, jj, kk = np.nonzero(liver[:, :, 5:6])
    seed = (int(np.median(ii)), int(np.median(jj)), 5)
    assert liver[seed]
    roi = liver_roi(ph.image, fit, seed=seed)
    assert roi.method == "seed" and not roi.automatic
    assert np.count_nonzero(roi.mask & liver) / roi.n_voxels >= 0.995
    idx = np.argwhere(liver_with_vessels(ph))
    box = [(int(lo), int(hi) + 1) for lo, hi in zip(idx.min(0), idx.max(0))]
    roi_b = liver_roi(ph.image, fit, bbox=box)
    assert roi_b.method == "bounding box"
    assert np.count_nonzero(roi_b.mask & liver) / roi_b.n_voxels >= 0.99


# ------------------------------------------------------- shipped specs, automatic ROI
_SHIPPED = ["ferriscan-1.5t-lic0.5", "ferriscan-1.5t-lic1.8", "ferriscan-1.5t-lic3.2", "ferriscan-1.5t-lic7",
            "ferriscan-1.5t-lic15", "ferriscan-1.5t-lic40", "heterogeneous-1.5t"]


@pytest.mark.parametrize("name", _SHIPPED)
def test_automatic_proposal_on_shipped_specs(name):
    """The shipped phantoms (4 coils, shading, vessels) at half resolution, same field of view.

    Regression: at 40 mg/g the liver was never seeded (a noisy liver is the least
    homogeneous tissue and seeds near fat blocked it) and soft tissue + spleen was
    returned (Dice 0.23, LIC 2.99 instead of 40) without a warning. Measured at
    128 x 128 (3 mm): candidate Dice vs liver + vessels 0.970 (heterogeneous) to 0.990,
    final ROI 100 % liver; at full size (256, 1.5 mm) 0.971-0.996 and 100 %.
    0.93 leaves room for other noise draws and is far above any wrong organ (<= 0.6).
    """
    from r2mri.fitting import fit
    from r2mri.phantom import generate

    ph = generate(name, matrix=(128, 128), pixel_mm=3.0, seed=3)
    s = ph.truth.summary
    res = fit(ph.image, model="auto", noise_sigma=s["noise_sigma"], coils=s["coils"])
    roi = liver_roi(ph.image, res)
    lab = ph.truth.labels
    truth = liver_with_vessels(ph)
    cand = roi.candidate
    dice = 2 * np.count_nonzero(cand & truth) / (np.count_nonzero(cand) + np.count_nonzero(truth))
    assert dice >= 0.93, dice
    assert np.count_nonzero(roi.mask & (lab == LABEL_LIVER)) / roi.n_voxels >= 0.95
    # a plausible liver: no self-check warning, only the "automatic proposal" note
    assert len(roi.warnings) == 1, roi.warnings
    checks = roi.options["automatic_checks"]
    assert checks["right_fraction"] > 0.75 and 0.2 < checks["body_fraction"] < 0.35


def test_automatic_proposal_warns_when_the_liver_is_not_found():
    """Self-check: with the liver removed from the fit (or the image mirrored) the
    proposal must say loudly that its region is implausible, not return it silently."""
    ph, fit = fitted_phantom(3.2)
    liver = liver_with_vessels(ph)
    status = np.where(liver, FitStatus.MASKED, fit.status).astype(np.uint8)
    no_liver = SimpleNamespace(r2_per_s=np.where(liver, np.nan, fit.r2_per_s),
                               s0=np.where(liver, np.nan, fit.s0), status=status,
                               r2_std_per_s=fit.r2_std_per_s)
    roi = liver_roi(ph.image, no_liver)
    # the right abdominal wall is proposed: before r2mri/_roi_evidence.py with 58 % on the
    # right (warned, barely), after with 84 %: the thin-structure check warns (erosion 71 %)
    assert any("WARNING" in w and ("right-sided" in w or "thin structure" in w) for w in roi.warnings), roi.warnings
    # mirrored left-right (RAS x flipped): the liver is now on the patient's left
    ph5, fit5 = fitted_phantom(0.5)
    affine = ph5.image.affine.copy()
    affine[0, :] *= -1
    img = MultiEchoImage(ph5.image.data, ph5.image.echo_times_s, affine, metadata=ph5.image.metadata)
    roi = liver_roi(img, fit5)
    assert any("WARNING" in w and "right-sided" in w for w in roi.warnings), roi.warnings


# ----------------------------------------------- boxes: the same ROI as on the whole grid
def _whole_grid(mask, margin=1):
    return tuple(slice(0, n) for n in mask.shape)


def _assert_same_roi(a, b):
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.candidate, b.candidate)
    assert a.to_dict() == b.to_dict()


def _edge_case():
    """The lic 3.2 phantom cut so that its liver touches three sides of the grid."""
    ph, fit = fitted_phantom(3.2)
    ii, jj, _ = np.nonzero(liver_with_vessels(ph))
    cut = (slice(int(ii.min()), None), slice(None, int(jj.max()) + 1), slice(0, 6))
    img = MultiEchoImage(ph.image.data[cut], ph.image.echo_times_s, ph.image.affine, metadata=ph.image.metadata)
    maps = SimpleNamespace(r2_per_s=fit.r2_per_s[cut], s0=fit.s0[cut], status=fit.status[cut],
                           r2_std_per_s=fit.r2_std_per_s[cut])
    return img, maps, liver_with_vessels(ph)[cut]


@pytest.mark.parametrize("case", ["lic0.5", "lic40", "edge"])
def test_boxed_rules_give_the_whole_grid_roi(case, monkeypatch):
    """liver_roi runs its growing and rules on bounding boxes (r2mri._roi_grow._box); with the
    box forced to the whole grid every mode must give exactly the same ROI, including a
    liver that touches the grid's edges (where the box is clipped)."""
    from r2mri import _roi_proposal, _roi_rules

    if case == "edge":
        img, fit, outline = _edge_case()
        assert outline[0].any() and outline[:, -1].any() and outline[..., -1].any()
    else:
        ph, fit = fitted_phantom(0.5 if case == "lic0.5" else 40.0)
        img, outline = ph.image, liver_with_vessels(ph)
    ii, jj, kk = np.nonzero(outline)
    mid = len(ii) // 2
    modes = [{}, {"mask": outline}, {"mask": outline, "erode_mm": 0.0, "vessel_margin_mm": 8.0},
             {"bbox": [(int(ii.min()), int(ii.max()) + 1), (int(jj.min()), int(jj.max()) + 1),
                       (int(kk.min()), int(kk.max()) + 1)]}]
    boxed = [liver_roi(img, fit, **kw) for kw in modes]
    seed = next((int(i), int(j), int(k)) for i, j, k in zip(ii[mid:], jj[mid:], kk[mid:])
                if boxed[0].candidate[i, j, k] and fit.status[i, j, k] == FitStatus.OK)
    boxed.append(liver_roi(img, fit, seed=seed))
    for module in (_roi_proposal, _roi_rules):  # every user of _box
        monkeypatch.setattr(module, "_box", _whole_grid)
    whole = [liver_roi(img, fit, **kw) for kw in modes] + [liver_roi(img, fit, seed=seed)]
    for a, b in zip(boxed, whole):
        _assert_same_roi(a, b)


@pytest.mark.parametrize("seed", [0, 1])
def test_low_snr_vessels_leave_the_automatic_roi(seed):
    # The shipped low-SNR phantom (SNR 10, 8 coils, LIC 7): voxel R2 SE ~57 s^-1 in the
    # liver and ~13 s^-1 in the vessels (true R2 4 s^-1), so the voxel-wise vessel test
    # (4 SE + spread) misses most vessel voxels; the 3x3-median test (rule 3 a2) must
    # catch them. Before it, 2,490 vessel voxels (3.3 %) stayed in the ROI and the
    # headline read 6.42 mg/g with a 95 % interval of 6.30-6.55 (truth 7.00 outside).
    import r2mri
    from r2mri import phantom

    ph = phantom.generate("low-snr-1.5t-lic7", seed=seed)
    res = r2mri.analyze(ph.image)
    vessel = ph.truth.labels == phantom.LABELS["vessel"]
    assert np.count_nonzero(res.roi.mask & vessel) <= 1e-3 * np.count_nonzero(res.roi.mask)
    lo, hi = res.statistics.ci95_lic_mg_per_g
    truth = ph.summary["lic_of_mean_r2_mg_per_g"]
    # a 95 % interval on one seed misses 1 time in 20 by design: the truth must lie within
    # the 99.9 % interval (3.29 / 1.96 of the half-width); the vessel bias above missed by ~8 half-widths
    half = (hi - lo) / 2 * 3.2905 / 1.959964
    head = res.statistics.headline_lic_mg_per_g
    assert abs(head - truth) <= half, (lo, head, hi)


@pytest.mark.parametrize("shape", [(1, 5, 2), (5, 1, 3), (2, 2, 1), (7, 9, 1), (64, 48, 3)])
def test_inplane_median_matches_scipy_exactly(shape):
    """The numba 3x3 in-plane median (a sorting network) returns exactly what
    scipy.ndimage.median_filter(size=(3, 3, 1), mode="nearest") returns, ties included."""
    from scipy import ndimage

    from r2mri._roi_grow import _median3x3_inplane

    rng = np.random.default_rng(len(shape) * 100 + shape[0])
    a = rng.standard_normal(shape)
    a[rng.random(shape) < 0.3] = 0.25  # ties
    a[rng.random(shape) < 0.1] = -1e300  # extremes
    ref = ndimage.median_filter(a, size=(3, 3, 1), mode="nearest")
    assert np.array_equal(_median3x3_inplane(a), ref)


def _grow_reference(seed_region, allowed, logr, logs, k, steps, max_iter=100):
    """The region growing as first written (np.median, ndimage.label): the numba
    kernel must give the same region, voxel for voxel."""
    from scipy import ndimage

    from r2mri import _roi_grow as R

    def robust(v):
        med = float(np.median(v))
        return med, R._MAD_TO_SD * float(np.median(np.abs(v - med)))

    structure = ndimage.generate_binary_structure(3, 1)
    region = seed_region & allowed
    if not region.any():
        return region
    for _ in range(max_iter):
        med, sd = robust(steps[region])
        ok = allowed & (steps <= max(R._EDGE_FLOOR, med + 2 * k * sd))
        for f, floor, cap in ((logr, R._BAND_FLOOR_R2, R._BAND_CAP_R2), (logs, R._BAND_FLOOR_S0, R._BAND_CAP_S0)):
            med, sd = robust(f[region])
            ok &= np.abs(f - med) <= min(max(k * sd, floor), cap)
        labels, n_labels = ndimage.label(ok, structure=structure)
        hit = np.zeros(n_labels + 1, dtype=bool)
        hit[labels[region & ok]] = True
        hit[0] = False
        if not hit.any():
            return region
        new = hit[labels]
        if np.array_equal(new, region):
            break
        region = new
    return region


@pytest.mark.parametrize("case", range(8))
def test_grow_kernel_matches_the_numpy_reference(case):
    """Random blobby tissue with two 'organs', odd and even region sizes, seeds that
    touch nothing, the round limit: the numba growth returns the reference region."""
    from scipy import ndimage

    from r2mri._roi_grow import _grow, _inplane_steps

    rng = np.random.default_rng(case)
    shape = [(40, 36, 5), (17, 23, 1), (30, 30, 3), (1, 12, 4)][case % 4]
    organ = ndimage.gaussian_filter(rng.standard_normal(shape), 3) > 0
    allowed = ndimage.gaussian_filter(rng.standard_normal(shape), 2) > -0.3
    logr = np.where(organ, 4.0, 3.4) + 0.05 * rng.standard_normal(shape)
    logs = np.where(organ, 0.0, 0.6) + 0.08 * rng.standard_normal(shape)
    steps = _inplane_steps(logs)
    seed = np.zeros(shape, bool)
    seed[tuple(rng.integers(0, s) for s in shape)] = True
    if case == 5:
        seed[:] = False  # nothing to grow from
    k = (3.0, 1.0, 6.0, 0.5)[case % 4]
    max_iter = 2 if case == 6 else 100
    ref = _grow_reference(seed, allowed, logr, logs, k, steps, max_iter)
    got = _grow(seed, allowed, logr, logs, k, steps, max_iter)
    assert got.dtype == bool and got.shape == shape
    assert np.array_equal(got, ref)


def test_selection_median_is_numpy_median():
    """The quickselect median of the growth kernel equals np.median exactly: sizes 1..60
    and a few thousand, normal values, heavy ties, sorted and reversed input."""
    from r2mri._roi_grow import _median_of

    rng = np.random.default_rng(7)
    for trial in range(800):
        n = int(rng.integers(1, 61)) if trial < 600 else int(rng.integers(61, 4000))
        kind = trial % 4
        v = rng.standard_normal(n) if kind != 1 else rng.integers(0, 3, n).astype(float)
        if kind == 2:
            v = np.sort(v)
        elif kind == 3:
            v = np.sort(v)[::-1].copy()
        assert _median_of(v.copy(), n) == np.median(v), (trial, n)
