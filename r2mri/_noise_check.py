"""Is a set of voxels pure noise? The test :func:`r2mri.estimate_noise` applies to its background.

[D] Pure noise has no echo time in it: every echo of an air voxel follows the same
central chi law, so the echoes are exchangeable (also after the background selection,
which cuts on ``sum_k M_k^2``, symmetric in the echoes). Tissue decays. The test is a
least-squares trend of the per-echo mean energy ``P_k = mean_i M_ik^2 / (2 n sigma^2)``
against the echo index ``k``:

    b = sum_k (k - kbar) P_k / sum_k (k - kbar)^2,   z = -b / se(b),
    se(b)^2 = s^2 / (N sum_k (k - kbar)^2)

(``s^2`` the empirical variance of the ``M_ik^2 / (2 n sigma^2)`` values, ``N`` voxels;
for pure noise ``s^2 = 1 / n``). The selection is rejected as background when the
energy falls across the echoes both significantly (``z > Z_DECAY``) and by more than
:data:`MIN_DECAY` of its mean over the echo span (an effect size, so that a faint
trend in a huge real background, e.g. ghosts of the body, does not reject it; the
decay is the drop of the trend line from the first to the last echo, relative to its
first-echo value, at most 1), or
when the chi-law fit put the channel count at its search limit (a narrow
distribution of near-constant amplitudes that no central chi law with a plausible
``n`` describes). Rates measured on the shipped phantoms and on tissue-only arrays are
in docs/fitting.md ("Arrays without air").
"""

from __future__ import annotations

import numpy as np

__all__ = ["background_check", "Z_DECAY", "MIN_DECAY"]

#: One-sided z of the energy decay above which the selection is not pure noise
#: [D, design choice]: normal tail probability 3e-7 per image for pure noise.
Z_DECAY = 5.0
#: Smallest relative energy decay over the echo span that rejects a background
#: [D, design choice]: a tissue of R2 = 5 s^-1 over 12 ms loses 11 % of its energy.
MIN_DECAY = 0.02


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
        JSON-serialisable: ``passed`` (bool), ``z_decay``, ``relative_decay``,
        ``n_voxels``, ``coils_at_limit`` and ``reason`` (``None`` when passed).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> air = np.hypot(rng.normal(0, 3, (5000, 5)), rng.normal(0, 3, (5000, 5)))
    >>> background_check(air, 3.0, 1, 64)["passed"]
    True
    >>> tissue = 100 * np.exp(-np.arange(5) * 0.2) + air
    >>> background_check(tissue, 30.0, 2, 64)["reason"]
    'the selected voxels decay across echoes (z 153.4; their mean energy falls by 83% from the first to the last echo)'
    """
    v = np.asarray(vals, dtype=np.float64)
    n_vox, m = v.shape
    p = v * v / (2.0 * coils * sigma * sigma)
    per_echo = p.mean(axis=0)
    k = np.arange(m) - (m - 1) / 2.0
    kk = float(np.sum(k * k))
    slope = float(np.sum(k * per_echo)) / kk
    se = float(np.sqrt(p.var() / (n_vox * kk)))
    z = -slope / se if se > 0 else (0.0 if slope == 0 else float(np.copysign(np.inf, -slope)))
    first = float(per_echo.mean()) - slope * (m - 1) / 2.0  # the trend line at the first echo
    rel = min(1.0, -slope * (m - 1) / first) if first > 0 else 1.0
    at_limit = coils >= max_coils
    reason = None
    if z > Z_DECAY and rel > MIN_DECAY:
        reason = (f"the selected voxels decay across echoes (z {z:.1f}; their mean energy falls "
                  f"by {rel:.0%} from the first to the last echo)")
    elif at_limit:
        reason = (f"the chi-law fit needs {coils} channels (search limit): amplitudes too "
                  "uniform for pure noise")
    return {"passed": reason is None, "z_decay": round(z, 2), "relative_decay": round(rel, 4),
            "n_voxels": int(n_vox), "coils_at_limit": bool(at_limit), "reason": reason}
