"""Is a set of voxels pure noise? The test :func:`r2mri.estimate_noise` applies to its background.

[D] Pure noise has no echo time in it: the echoes of an air voxel are independent draws
of one central chi law (also after the background selection, which cuts on
``sum_k M_k^2``, symmetric in the echoes). Tissue carries a smooth decay. Three statistics
of the selected voxels (``N`` voxels, ``m`` echoes):

- **echo-to-echo independence**: the pooled von Neumann ratio (von Neumann, Ann Math
  Stat 12:367-395, 1941) ``eta = sum_i sum_k (M_i,k+1 - M_ik)^2 / sum_i sum_k (M_ik -
  Mbar_i)^2``, 2 for independent echoes and ``2 f`` when a fraction ``f`` of the
  within-voxel variance is noise and the rest a smooth signal; under independence its
  SD is about ``sqrt(4 (m - 2) / ((m + 1)(m - 1) N))`` (the normal-theory variance of one
  series, pooled over ``N``), giving ``z_serial = (2 - eta) / SD``;
- **decay**: the least-squares trend of the per-echo mean energy ``P_k = mean_i M_ik^2
  / (2 n sigma^2)`` against the echo index, ``z_decay = -b / se(b)`` with ``se(b)^2 =
  s^2 / (N sum_k (k - kbar)^2)`` (``s^2`` the empirical variance of the normalised
  energies), and ``relative_decay``, the drop of the trend line from the first to the
  last echo relative to its first-echo value (at most 1);
- **one law at every echo**: the share of the variance of the normalised energies
  ``p_ik`` that the echo index explains (one-way analysis of variance, echoes as groups),
  ``echo_share = SS_between / (SS_between + SS_within)`` with ``SS_between = N sum_k (P_k
  - Pbar)^2``. For pure noise every echo is a draw of the same chi law, so the echoes
  explain nothing (``echo_share`` about ``(m - 1) / (N m)``) and ``(m - 1) F`` (``F`` the
  variance ratio) is about chi-square with ``m - 1`` degrees of freedom, turned into
  ``z_echo`` by the Wilson-Hilferty cube root (Wilson & Hilferty, PNAS 17:684-688,
  1931). Uniform tissue has it the other way round: every voxel carries the same echo
  curve, so the differences between echoes (decay, and on gradient echo the fat-water
  in/opposed-phase beat) dwarf the noise spread between voxels at one echo. This is the
  statistic that catches an air-free gradient-echo volume, whose oscillating magnitudes
  look like independent echoes to the von Neumann ratio (``eta`` up to 3.6) and whose
  energy may not fall from first to last echo.

The selection is rejected as background when its echoes are serially dependent, both
significantly (``z_serial > Z_REJECT``) and by effect (``eta < ETA_MIN``: less than
75 % of the within-voxel variance is noise), or when its energy decays significantly
(``z_decay > Z_REJECT``) by more than :data:`MIN_DECAY`, or when the chi-law fit put the
channel count at its search limit (near-constant amplitudes that no central chi with a
plausible ``n`` describes). The effect sizes keep real backgrounds, which are never
exactly pure noise (the Siemens 3 T test series: ``eta`` 1.70, energy -31 % over its 32
echoes, both with z ~ 27), from being thrown away for a faint structure that barely
moves sigma. A selection is also rejected when the echo index explains more than
:data:`MAX_ECHO_SHARE` of the energy variance with ``z_echo > Z_REJECT``. Rates measured
on the shipped phantoms, on tissue-only arrays and on air-free gradient-echo volumes are
in docs/fitting.md ("Arrays without air").
"""

from __future__ import annotations

import numpy as np

__all__ = ["background_check", "Z_REJECT", "ETA_MIN", "MIN_DECAY", "MAX_ECHO_SHARE"]

#: One-sided z above which a statistic rejects the selection [D, design choice]: normal
#: tail probability 3e-7 per statistic and image for pure noise.
Z_REJECT = 5.0
#: Von Neumann ratio below which the echoes are too smooth for noise [D, design choice]:
#: less than 75 % of the within-voxel variance is noise. Tissue blocks at SNR >= 10 and
#: LIC <= 30 measure 0.2-1.14, the shipped phantoms' air 1.98-2.02 (docs/fitting.md).
ETA_MIN = 1.5
#: Smallest relative energy decay over the echoes that rejects a background [D, design
#: choice]: above the -31 % of the real Siemens background; liver of R2 30 s^-1 loses 51 %
#: of its energy from 6 to 18 ms.
MIN_DECAY = 0.5
#: Largest share of the energy variance the echo index may explain in a background [D,
#: design choice]: the real Siemens 3 T air measures 0.041 (its 31 % energy decay over 32
#: echoes), pure noise ~(m - 1) / (N m); uniform air-free GRE tissue (SNR 50, PDFF 0-45 %,
#: R2* 30-500 s^-1, 1.5 T 6 echoes and 3 T 12 echoes) measures 0.82-0.99 (docs/fitting.md,
#: "Arrays without air").
MAX_ECHO_SHARE = 0.5


def background_check(vals: np.ndarray, sigma: float, coils: int, max_coils: int) -> dict:
    """Test whether the selected voxels behave like pure noise.

    Parameters
    ----------
    vals : ndarray, shape (voxels, echoes)
        Magnitudes of the selected background voxels (all positive).
    sigma, coils : float, int
        The chi-law fit of those voxels.
    max_coils : int
        Search limit of that fit (a channel count there fails the test).

    Returns
    -------
    dict
        JSON-serialisable: ``passed`` (bool), ``von_neumann_ratio``, ``z_serial``,
        ``z_decay``, ``relative_decay``, ``echo_share``, ``z_echo``, ``n_voxels``,
        ``coils_at_limit`` and ``reason`` (``None`` when passed).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> air = np.hypot(rng.normal(0, 3, (5000, 5)), rng.normal(0, 3, (5000, 5)))
    >>> background_check(air, 3.0, 1, 64)["passed"]
    True
    >>> tissue = 100 * np.exp(-np.arange(5) * 0.2) + air
    >>> background_check(tissue, 30.0, 2, 64)["reason"][:43]
    'the selected voxels vary smoothly from echo'
    """
    v = np.asarray(vals, dtype=np.float64)
    n_vox, m = v.shape
    # echo-to-echo independence: pooled von Neumann ratio
    dev = v - v.mean(axis=1, keepdims=True)
    ss_dev = float(np.sum(dev * dev))
    ss_diff = float(np.sum(np.diff(v, axis=1) ** 2))
    eta = ss_diff / ss_dev if ss_dev > 0 else 0.0
    sd_eta = float(np.sqrt(4.0 * (m - 2) / ((m + 1) * (m - 1) * n_vox))) if m > 2 else np.inf
    z_serial = (2.0 - eta) / sd_eta
    # decay: trend of the per-echo mean energy
    p = v * v / (2.0 * coils * sigma * sigma)
    per_echo = p.mean(axis=0)
    k = np.arange(m) - (m - 1) / 2.0
    kk = float(np.sum(k * k))
    slope = float(np.sum(k * per_echo)) / kk
    se = float(np.sqrt(p.var() / (n_vox * kk)))
    z = -slope / se if se > 0 else (0.0 if slope == 0 else float(np.copysign(np.inf, -slope)))
    first = float(per_echo.mean()) - slope * (m - 1) / 2.0  # the trend line at the first echo
    rel = min(1.0, -slope * (m - 1) / first) if first > 0 else 1.0
    share, z_echo = _echo_share(p, per_echo)
    at_limit = coils >= max_coils
    reason = None
    if z_serial > Z_REJECT and eta < ETA_MIN:
        reason = (f"the selected voxels vary smoothly from echo to echo (von Neumann ratio {eta:.2f}, "
                  f"2 for noise; z {z_serial:.1f})")
    elif z > Z_REJECT and rel > MIN_DECAY:
        reason = (f"the selected voxels decay across echoes (z {z:.1f}; their mean energy falls "
                  f"by {rel:.0%} from the first to the last echo)")
    elif z_echo > Z_REJECT and share > MAX_ECHO_SHARE:
        reason = (f"the selected voxels differ between echoes far more than between voxels (the echo "
                  f"explains {share:.0%} of their energy variance, ~0 for noise; z {z_echo:.1f}): "
                  "one signal curve, not air")
    elif at_limit:
        reason = (f"the chi-law fit needs {coils} channels (search limit): amplitudes too "
                  "uniform for pure noise")
    return {"passed": reason is None, "von_neumann_ratio": round(eta, 4), "z_serial": round(z_serial, 2),
            "z_decay": round(z, 2), "relative_decay": round(rel, 4), "echo_share": round(share, 4),
            "z_echo": round(z_echo, 2), "n_voxels": int(n_vox),
            "coils_at_limit": bool(at_limit), "reason": reason}


def _echo_share(p: np.ndarray, per_echo: np.ndarray) -> tuple[float, float]:
    """Share of the variance of ``p`` (voxels, echoes) explained by the echo, and its z.

    [D] One-way analysis of variance with the echoes as groups: ``F = (SS_between / (m -
    1)) / (SS_within / (m (N - 1)))``; for large ``N`` and the same law at every echo,
    ``x = (m - 1) F`` is about chi-square with ``k = m - 1`` degrees of freedom, and
    ``z = ((x / k)^(1/3) - (1 - 2 / (9 k))) / sqrt(2 / (9 k))`` is about standard normal
    (Wilson & Hilferty, PNAS 17:684-688, 1931).
    """
    n_vox, m = p.shape
    ss_between = float(n_vox * np.sum((per_echo - per_echo.mean()) ** 2))
    ss_within = float(np.sum((p - per_echo) ** 2))
    total = ss_between + ss_within
    if m < 2 or n_vox < 2 or total <= 0:
        return 0.0, 0.0
    if ss_within <= 0:
        return 1.0, float("inf")
    k = m - 1
    f = (ss_between / k) / (ss_within / (m * (n_vox - 1)))
    z = ((f ** (1.0 / 3.0)) - (1.0 - 2.0 / (9.0 * k))) / float(np.sqrt(2.0 / (9.0 * k)))
    return ss_between / total, float(z)
