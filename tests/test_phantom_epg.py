"""Extended phase graph (r2mri.phantom.epg): reductions and an independent Bloch check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r2mri import InputError
from r2mri.phantom.epg import epg_cpmg


def _isochromat_cpmg(r2, t1, esp, n_echoes, alpha_deg, excitation_deg=90.0, n_spins=720):
    """Brute-force Bloch simulation of a CPMG train, independent of the EPG code.

    ``n_spins`` isochromats dephase by 2 pi j / n_spins per half echo spacing (the
    crusher); excitation about y, refocusing about x, relaxation in between. The spin
    average reproduces the EPG exactly while the highest configuration order reached
    (2 n_echoes) is below n_spins (no aliasing of the discrete phase average).
    """
    theta = 2.0 * np.pi * np.arange(n_spins) / n_spins
    a = np.deg2rad(alpha_deg)
    ex = np.deg2rad(excitation_deg)
    m = np.zeros((n_spins, 3))
    m[:, 0] = np.sin(ex)
    m[:, 2] = np.cos(ex)
    e2 = np.exp(-r2 * esp / 2.0)
    e1 = np.exp(-esp / 2.0 / t1)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    c, s = np.cos(theta), np.sin(theta)

    def relax_precess(m):
        m = m.copy()
        m[:, :2] *= e2
        m[:, 2] = m[:, 2] * e1 + (1.0 - e1)
        x, y = m[:, 0].copy(), m[:, 1].copy()
        m[:, 0] = c * x - s * y
        m[:, 1] = s * x + c * y
        return m

    out = []
    for _ in range(n_echoes):
        m = relax_precess(m)
        m = m @ rx.T
        m = relax_precess(m)
        out.append(abs(np.mean(m[:, 0] + 1j * m[:, 1])))
    return np.array(out)


def test_180_degrees_is_mono_exponential_to_float_precision():
    r2 = np.array([0.0, 5.0, 25.0, 63.6, 161.7, 300.0, 1000.0])
    esp = 0.006
    got = epg_cpmg(r2, esp, 12, refocusing_flip_deg=180.0, t1_s=0.6)
    want = np.exp(-r2[:, None] * esp * np.arange(1, 13)[None, :])
    # Only rounding of ~30 complex multiply-adds per echo separates the two:
    # a few ulp of 1.0 (2.2e-16 each), so 1e-13 absolute is generous.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    r2=st.floats(0.0, 400.0),
    t1=st.floats(0.1, 3.0),
    esp_ms=st.floats(2.0, 20.0),
    n=st.integers(1, 16),
)
def test_180_degrees_property(r2, t1, esp_ms, n):
    got = epg_cpmg([r2], esp_ms / 1000.0, n, t1_s=t1)[0]
    want = np.exp(-r2 * esp_ms / 1000.0 * np.arange(1, n + 1))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_150_degrees_without_relaxation_first_echo_and_even_odd_pattern():
    # Without relaxation the first CPMG echo is sin^2(alpha/2) (only the F+ part of
    # the refocused state returns; Hennig 1988), and the second echo recovers signal
    # through the stimulated echo: the odd/even oscillation of low-angle CPMG trains.
    amp = epg_cpmg([0.0], 0.01, 8, refocusing_flip_deg=150.0, t1_s=np.inf)[0]
    assert amp[0] == pytest.approx(np.sin(np.deg2rad(75.0)) ** 2, abs=1e-14)
    assert np.all(amp[1::2][:3] > amp[0::2][:3]), amp  # even echoes above odd ones
    assert np.all(amp <= 1.0 + 1e-14)
    mono = epg_cpmg([40.0], 0.01, 8)[0]
    low = epg_cpmg([40.0], 0.01, 8, refocusing_flip_deg=150.0, t1_s=0.6)[0]
    # 150 degrees visibly differs from the mono-exponential (by >1 % of S0 at echo 1: 1 - sin^2(75) = 6.7 %).
    assert np.max(np.abs(low - mono)) > 0.01


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    r2=st.floats(0.0, 200.0),
    t1=st.floats(0.2, 2.0),
    alpha=st.floats(60.0, 180.0),
    n=st.integers(1, 10),
)
def test_matches_independent_isochromat_simulation(r2, t1, alpha, n):
    esp = 0.008
    got = epg_cpmg([r2], esp, n, refocusing_flip_deg=alpha, t1_s=t1)[0]
    want = _isochromat_cpmg(r2, t1, esp, n, alpha)
    # Same physics computed two ways; differences are float rounding accumulated
    # over 720 spins x n echoes (~1e-15 each): 1e-10 absolute is far above that.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_bad_input():
    with pytest.raises(InputError, match="r2_per_s"):
        epg_cpmg([-1.0], 0.01, 3)
    with pytest.raises(InputError, match="echo_spacing_s"):
        epg_cpmg([1.0], 0.0, 3)
    with pytest.raises(InputError, match="n_echoes"):
        epg_cpmg([1.0], 0.01, 0)
