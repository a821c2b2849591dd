"""A guard on kappa's prior from the smooth S0 field (r2mri/_s0_shading.py): where the data
say the within-tile S0 spread is larger than the field's, the prior gives way.

Why: the S0 field is a smooth surface across the tiles, so S0 texture at the scale of a
tile or finer (proton density, partial volume) is not in it. Where two echoes carry the
spread statistic (30 mg/g, SNR 20) the prior then holds kappa low and rho reads high: the
phantom's fine S0 texture of log-SD 0.1 over 1 voxel moved the headline +1.9 to +2.6 %
(docs/statistics.md, "Measured with fine S0 texture"). Texture only adds variance, so
the guard is one-sided: it acts only when the data's own kappa (the joint, prior-free
Gauss-Newton solution one step from the current state) lies above the prior's mean.

Designs (``_GUARD``): ``"none"`` (the default: the prior as before branch s0guard; the
guard is not shipped, see ``_GUARD``), ``"fallback"`` (the prior is dropped for that tile
edge, for the rest of the estimate, when the data's kappa exceeds the prior's by more than
``_GUARD_Z`` combined SEs; rho and kappa are then fitted jointly and rho's SE is the joint
fit's), ``"widen"`` (above ``_GUARD_Z`` SEs the
prior's SD grows to cover the excess, ``se' = hypot(se, excess)``, its mean unchanged).
Either acts only where the data's kappa has an SE <= ``_SE_MAX``.

What it cannot do: on small livers (64 x 64 x 3 of 6 mm, ~1,700 voxels) the data's kappa
has an SE of 0.007-0.037, not below the texture's within-tile variance (0.009 at log-SD
0.1), so the guard does not act there and their over-read of +1.6 to +2.6 % stays (inside
intervals of 8-18 % half-width). On a full-size liver (~95,000 voxels) the SE is ~0.002,
but there a one-sided conflict test also fires on the joint fit's own ridge bias in
textured-LIC livers (rho low, kappa high): hence off.
"""

from __future__ import annotations

import numpy as np

_GUARD = "none"  # [D] off: measured, not shipped (docs/statistics.md, "A guard on kappa's prior"). "fallback" at 3
# SE with _SE_MAX took the full-size over-read at S0 log-SD 0.1 over 1 voxel off (uniform 8 ch, seeds 500-503: +2.19 ->
# -0.35 %, 0/4 -> 3/4 intervals) but on a full-size SD 0.4 width 4, 8-channel liver WITHOUT S0 texture (seed 501) it
# read the joint fit's own ridge bias (rho low, kappa high) as texture: -1.74 -> -3.25 %, interval lost; with the
# texture that cell went +1.18 -> -2.50 % (1/2 covered). The conflict test cannot tell S0 texture from that bias
_GUARD_Z = 3.0  # [D, r2mri's choice] the one-sided threshold, in combined SEs of the data's and the prior's kappa: at
# 2 it dropped the prior on 1 of 72 small livers without S0 texture at 30 mg/g, SNR 20 (that cell -0.58 +- 0.58 %),
# 1 of 32 at 1 and 7 mg/g, SNR 50, and 2 of 16 simulated full-size tile sets (tests/test_kappa_guard.py); at 3 on none
_SE_MAX = 0.005  # [D, r2mri's choice] the guard acts only where the data's kappa has an SE below this, i.e. where
# a within-tile S0 variance of 0.01 (log-SD 0.1 over 1 voxel) stands >= 2 SE above the prior (full-size livers: SE
# 0.0016-0.0020 on 94,795 voxels; small 64 x 64 x 3 livers 0.0071-0.037). Above it a 3-SE excess is mostly livers
# whose joint kappa reads high by noise, and on those the joint rho reads low by as much (they correlate -0.985):
# without the bound, on small livers at 30 mg/g, SNR 20, 7 of the 8 livers the guard acted on (at 2 or 3 SE; 5 of
# them seed 509 of the SD 0.4 cells) moved away from the truth, by 5 to 11 % (docs/statistics.md)

RECORD: "list | None" = None  # benchmarks only: a list to append (edge, prior, data) per step to; None: off


def data_kappa(w, jr, jk, resid, kappa_cur):
    """kappa from the data alone: the prior-free Gauss-Newton solution in (rho, kappa) one step
    from the current state, and its SE. ``w``: the echo weights, ``jr``, ``jk``: the statistic's
    response to rho and kappa, ``resid``: observed minus simulated statistic.

    Examples
    --------
    >>> import numpy as np
    >>> jr, jk = np.array([2.0, 4.0, 9.0]), np.ones(3)
    >>> k, se = data_kappa(np.ones(3), jr, jk, 0.01 * jr + 0.003 * jk, 0.002)
    >>> round(k, 6), se > 0
    (0.005, True)
    """
    jac = np.stack([jr, jk], axis=1)
    info = jac.T @ (w[:, None] * jac)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return float("nan"), float("inf")
    step = cov @ (jac.T @ (w * resid))
    se = float(np.sqrt(cov[1, 1])) if cov[1, 1] > 0 else float("inf")
    return float(kappa_cur + step[1]), se


def guarded_prior(prior, k_data, se_data, mode: "str | None" = None, z: "float | None" = None):
    """The prior ``(current, mean, se)`` after the guard, or None (dropped).

    Examples
    --------
    >>> guarded_prior((0.0, 0.005, 0.002), 0.02, 0.004, "fallback") is None
    True
    >>> guarded_prior((0.0, 0.005, 0.002), 0.05, 0.01, "fallback") is None  # the data's SE above _SE_MAX
    False
    >>> p = guarded_prior((0.0, 0.005, 0.002), 0.015, 0.004, "widen", 0.0)
    >>> round(p[2], 5)
    0.0102
    >>> guarded_prior((0.0, 0.005, 0.002), 0.004, 0.004, "widen", 0.0) == (0.0, 0.005, 0.002)
    True
    """
    mode = _GUARD if mode is None else mode
    z = _GUARD_Z if z is None else z
    cur, mean, se = prior
    if mode == "none" or not np.isfinite(k_data) or not np.isfinite(se_data) or se_data > _SE_MAX:
        return prior
    gap = k_data - mean
    if mode == "fallback":
        return None if gap > z * float(np.hypot(se, se_data)) else prior
    if mode == "widen":
        return (cur, mean, float(np.hypot(se, gap))) if gap > 0 and gap > z * float(np.hypot(se, se_data)) else prior
    raise ValueError(f"unknown kappa guard {mode!r}")
