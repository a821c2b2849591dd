"""r2mri.fit: input handling, shapes, dtypes, masks, status codes, threads, progress."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import r2mri
from r2mri import FitStatus, InputError, MultiEchoImage

TE = np.array([6.0, 9.0, 12.0, 15.0, 18.0]) * 1e-3


def _volume(shape=(6, 5, 3), r2=80.0, s0=1000.0, sigma=10.0, seed=0):
    rng = np.random.default_rng(seed)
    a = s0 * np.exp(-r2 * TE) * np.ones(shape + (1,))
    return np.hypot(a + rng.normal(0, sigma, a.shape), rng.normal(0, sigma, a.shape))


# --- bad input: ValueError (InputError) naming the argument ---------------------------


@pytest.mark.parametrize(
    "te, match",
    [
        (TE[::-1], "echo_times_s: not sorted"),
        (np.array([6, 9, 9, 15, 18]) * 1e-3, "echo_times_s: duplicate"),
        (np.array([6, 9, np.nan, 15, 18]) * 1e-3, "echo_times_s: non-finite"),
        (np.array([6, 9, np.inf, 15, 18]) * 1e-3, "echo_times_s: non-finite"),
        (TE[:4], "echo_times_s: 4 echo times for 5 echoes"),
        (TE.reshape(5, 1), "echo_times_s: expected a 1-D"),
        (-TE[::-1], "echo_times_s: negative"),
    ],
)
def test_bad_echo_times(te, match):
    with pytest.raises(ValueError, match=match):
        r2mri.fit(np.ones((2, 5)), te)


def test_bad_inputs_name_the_argument():
    y = _volume()
    with pytest.raises(InputError, match="echo_times_s: required"):
        r2mri.fit(y)
    with pytest.raises(InputError, match="at least 2 echoes"):
        r2mri.fit(np.ones((3, 1)), [0.01])
    with pytest.raises(InputError, match="mask: shape"):
        r2mri.fit(y, TE, mask=np.ones((6, 5), bool))
    with pytest.raises(InputError, match="model: unknown"):
        r2mri.fit(y, TE, model="gaussian")
    with pytest.raises(InputError, match="model: 'biexp' has 4 parameters"):
        r2mri.fit(y[..., :3], TE[:3], model="biexp")
    with pytest.raises(InputError, match="options: unknown"):
        r2mri.fit(y, TE, model="monoexp", tolerance=3)
    with pytest.raises(InputError, match="noise_sigma"):
        r2mri.fit(y, TE, model="ncchi", noise_sigma=-1.0)
    with pytest.raises(InputError, match="coils"):
        r2mri.fit(y, TE, model="ncchi", noise_sigma=1.0, coils=0)
    with pytest.raises(InputError, match="threads"):
        r2mri.fit(y, TE, model="monoexp", threads=0)
    with pytest.raises(InputError, match="img_or_array"):
        r2mri.fit(np.ones((2, 5), complex), TE)
    with pytest.raises(InputError, match="echo_times_s: must not be given"):
        r2mri.fit(MultiEchoImage(y.astype(np.float32), TE), TE)


# --- per-voxel bad data give status codes, never a crash -------------------------------


def test_bad_voxels_get_status_codes():
    y = np.tile(1000.0 * np.exp(-50.0 * TE), (7, 1))
    y[1, 2] = np.nan
    y[2, 0] = np.inf
    y[3, 4] = -1.0
    y[4] = 0.0
    y[5, 1:] = 0.0  # a single non-zero echo: log-linear has < 2 usable echoes
    res = r2mri.fit(y, TE, model="loglinear")
    assert res.status.tolist() == [0, 5, 5, 5, 5, 4, 0]
    assert np.isnan(res.r2_per_s[1:6]).all()
    assert np.allclose(res.r2_per_s[[0, 6]], 50.0, rtol=1e-6)


def test_below_noise_and_truncation():
    sigma = 10.0
    # R2 = 600 s^-1: S0 e^{-R2 TE} is 27, 4.5, 0.7 ... for S0 = 1000: one echo above 2 sigma
    y = 1000.0 * np.exp(-np.outer([600.0, 50.0], TE))
    res = r2mri.fit(y, TE, model="truncated", noise_sigma=sigma)
    assert res.status.tolist() == [FitStatus.BELOW_NOISE, FitStatus.OK]
    # below noise: fitted on the first two echoes, an exact two-point rate
    assert res.r2_per_s[0] == pytest.approx(600.0, rel=1e-5)
    assert res.r2_per_s[1] == pytest.approx(50.0, rel=1e-6)


def test_bound_hit_is_flagged():
    y = 1000.0 * np.exp(-np.outer([50.0, 1500.0], TE))
    res = r2mri.fit(y, TE, model="monoexp", r2_bounds_per_s=(0.0, 1000.0))
    assert res.status.tolist() == [FitStatus.OK, FitStatus.BOUND_HIT]
    assert res.r2_per_s[1] == pytest.approx(1000.0)


# --- shapes, dtypes, masks --------------------------------------------------------------


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    spatial=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    n_echoes=st.integers(2, 8),
    dtype=st.sampled_from([np.float32, np.float64, np.uint16, np.int32]),
    model=st.sampled_from(["loglinear", "monoexp", "ncchi", "truncated"]),
)
def test_shapes_and_dtypes(spatial, n_echoes, dtype, model):
    te = np.linspace(5e-3, 40e-3, n_echoes)
    y = (2000.0 * np.exp(-40.0 * te) * np.ones(tuple(spatial) + (1,))).astype(dtype)
    kw = dict(noise_sigma=5.0) if model in ("ncchi", "truncated") else {}
    res = r2mri.fit(y, te, model=model, **kw)
    assert res.r2_per_s.shape == tuple(spatial)
    for m in (res.r2_per_s, res.s0, res.r2_std_per_s, res.residual_rms, res.r_squared):
        assert m.dtype == np.float32 and m.shape == tuple(spatial)
    assert res.status.dtype == np.uint8
    assert res.offset is None
    # integer input is rounded to 1 unit in ~2000 * e^{-40*0.04} = 400: R2 within 1 %
    # (rounding error 0.5/400 over a TE span of >= 5 ms gives < 0.25/0.005/40 ~ 1 %)
    tol = 1e-4 if np.dtype(dtype).kind == "f" else 0.02
    if model != "ncchi":
        np.testing.assert_allclose(res.r2_per_s, 40.0, rtol=tol)


def test_mask_and_multi_echo_image():
    y = _volume().astype(np.float32)
    mask = np.zeros(y.shape[:3], bool)
    mask[1:4, 2:, 1] = True
    img = MultiEchoImage(y, TE)
    res = r2mri.fit(img, model="monoexp", mask=mask)
    assert np.all(res.status[~mask] == FitStatus.MASKED)
    assert np.all(np.isnan(res.r2_per_s[~mask]))
    assert np.all(np.isfinite(res.r2_per_s[mask]))
    full = r2mri.fit(y, TE, model="monoexp")
    np.testing.assert_array_equal(full.r2_per_s[mask], res.r2_per_s[mask])


def test_chunking_threads_and_progress_do_not_change_results():
    y = _volume(shape=(20, 17, 3), seed=3)
    calls = []
    one = r2mri.fit(y, TE, model="ncchi", noise_sigma=10.0, threads=1, chunk_voxels=97,
                    progress=lambda d, t: calls.append((d, t)))
    two = r2mri.fit(y, TE, model="ncchi", noise_sigma=10.0, threads=2)
    for a, b in [(one.r2_per_s, two.r2_per_s), (one.s0, two.s0), (one.r2_std_per_s, two.r2_std_per_s)]:
        np.testing.assert_array_equal(a, b)  # bitwise
    np.testing.assert_array_equal(one.status, two.status)
    total = 20 * 17 * 3
    assert calls[-1] == (total, total) and len(calls) == -(-total // 97)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_options_are_json_and_complete():
    y = _volume()
    res = r2mri.fit(y, TE, model="monoexp_offset")
    opts = json.loads(json.dumps(res.options))
    assert opts["model"] == "monoexp_offset" and opts["model_requested"] == "monoexp_offset"
    assert opts["echo_times_s"] == pytest.approx(TE.tolist())
    for key in ("noise_sigma", "coils", "noise_method", "k_sigma", "r2_bounds_per_s", "xtol",
                "ftol", "max_iter", "threads"):
        assert key in opts
    assert res.offset is not None and res.offset.shape == y.shape[:3]


def test_auto_uses_ncchi_with_estimated_sigma_and_falls_back():
    rng = np.random.default_rng(11)
    sigma = 8.0
    y = _volume(shape=(30, 30, 2), sigma=sigma, seed=4)
    y[:15] = np.hypot(rng.normal(0, sigma, y[:15].shape), rng.normal(0, sigma, y[:15].shape))
    res = r2mri.fit(y, TE)
    assert res.model == "ncchi" and res.options["noise_method"] == "background"
    # sigma from 15*30*2*5 = 4500 noise values: relative SE ~ 1/sqrt(2*4500) = 1 %; 5 % = 5 SE
    assert res.options["noise_sigma"] == pytest.approx(sigma, rel=0.05)
    # a single noise-free curve: no noise to correct, the plain model is exact (issue 12)
    single = r2mri.fit(1000.0 * np.exp(-50.0 * TE), TE)
    assert single.model == "monoexp" and single.options["noise_method"] == "noise-free"
    assert single.r2_per_s == pytest.approx(50.0, rel=1e-6)
    # a single noisy curve: no background, too few voxels for the tissue estimate: ask
    with pytest.raises(InputError, match="noise_sigma"):
        r2mri.fit(1000.0 * np.exp(-50.0 * TE) + rng.normal(0, 5, TE.size), TE)
    # zero-filled background and too few bright voxels: documented fallback with a warning
    few = np.zeros((10, 10, 1, TE.size))
    few[0, 0, 0] = 1000.0 * np.exp(-50.0 * TE) + rng.normal(0, 5, TE.size)
    with pytest.warns(RuntimeWarning, match="fell back"):
        fallback = r2mri.fit(few, TE, mask=few[..., 0] > 0)
    assert fallback.model == "monoexp_offset"


def test_biexp_extra_maps():
    te = np.linspace(2e-3, 40e-3, 16)
    y = 600.0 * np.exp(-20.0 * te) + 400.0 * np.exp(-150.0 * te)
    res = r2mri.fit(np.stack([y, y]), te, model="biexp")
    assert set(res.extra) >= {"fast_fraction", "r2_slow_per_s", "r2_fast_per_s", "n_iterations"}
    assert res.extra["fast_fraction"][0] == pytest.approx(0.4, rel=1e-4)
    assert res.s0[0] == pytest.approx(1000.0, rel=1e-4)


def test_zeroed_background_says_the_channel_count_was_assumed():
    # A scanner-zeroed background leaves sigma to the tissue residuals, and the channel
    # count cannot be recovered from them: the fit must say that n = 1 was assumed.
    import warnings

    import r2mri

    ph = r2mri.phantom.generate("ferriscan-1.5t-lic3.2", zero_background=True, matrix=(96, 96),
                                pixel_mm=4.0, n_slices=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = r2mri.fit(ph.image, mask=ph.truth.liver_mask)
    assert res.model == "ncchi"
    assert res.options.get("coils_assumed") is True
    assert "channel count unknown" in res.options["auto_rule"]
    assert any("channel count is unknown" in str(w.message) for w in caught)
    with pytest.warns(RuntimeWarning, match="background unusable"):  # sigma still estimated
        given = r2mri.fit(ph.image, mask=ph.truth.liver_mask, coils=4)
    assert not given.options.get("coils_assumed")
