"""The largest plausible within-tile spread of R2 (``rho``, relative variance) at a liver's own
iron level: the bound above which r2mri/_headline.py calls a measured spread "not identified".

Why (issue 16, branch s0combo): the bound was one number, 0.05, "the largest relative R2
variance inside tiles of the issue-16 grid", read from phantoms at 30 mg/g. The grid's
largest spread is not at 30 mg/g: the St Pierre curve is steepest in log-log terms at
3-10 mg/g, where log-SD 0.4 of LIC from voxel to voxel gives a relative R2 variance of
0.058-0.061 (0.041 at 30 mg/g, 0.050 at 1 mg/g; :func:`lognormal_rho`), and the full-size
phantoms' own within-tile truth (8 x 8 tiles, SD 0.4 over 1 voxel) is 0.050 / 0.051 at 3 / 7
mg/g, already at the old bound. A measured spread of 0.0475 +- 0.0003 (7 mg/g, SNR 20, 8
channels, seed 500) sat 0.0025 below it; fine S0 texture (log-SD 0.1 over 1 voxel), which the
kappa prior does not see, raised it to 0.0554 +- 0.0004: the 8-voxel tiles (97 % of the ROI)
were then left uncorrected and the headline read -11.5 % (-5.2 % with one channel) with a
warning that blamed the noise (benchmarks/s0_combo.py; benchmarks/README.md, "s0combo").

The bound is therefore the curve's own: the relative variance of R2 over a log-normal LIC of
log-SD ``_LOG_SD_MAX`` about the LIC of the tiles' apparent mean R2, never below the old
0.05 (so nothing moves at 30 mg/g, where the bound guards against a runaway spread estimate:
rho 0.10 +- 0.02 at SNR 15, one channel, would have read +340 %).
"""

from __future__ import annotations

import numpy as np

RHO_FLOOR = 0.05  # [D] the bound before branch s0combo (r2mri/_headline.py _RHO_PLAUSIBLE), kept as the floor
_LOG_SD_MAX = 0.4  # [D, issue 16's grid] the largest heterogeneity the estimator is validated for (SD in log LIC)
_LIC_RANGE = (0.3, 42.7)  # [C: St Pierre 2005] the calibrated range; the LIC is clipped to it
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(41)  # probabilists' Gauss-Hermite (standard normal)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def lognormal_rho(lic_mg_per_g: float, log_sd: float = _LOG_SD_MAX) -> float:
    """Relative variance of R2 (St Pierre 2005 forward curve) over LIC = ``lic_mg_per_g`` exp(log_sd z),
    z standard normal.

    Examples
    --------
    >>> round(lognormal_rho(7.0), 3), round(lognormal_rho(30.0), 3), round(lognormal_rho(1.0), 3)
    (0.06, 0.041, 0.05)
    """
    from .calibration import r2_from_lic

    lic = float(np.clip(lic_mg_per_g, *_LIC_RANGE))
    r2 = np.asarray(r2_from_lic(lic * np.exp(log_sd * _NODES)), np.float64)
    m = float(np.sum(_WEIGHTS * r2))
    return float(np.sum(_WEIGHTS * (r2 - m) ** 2) / m**2)


def plausible_rho(mean_r2_per_s: float) -> float:
    """The largest plausible within-tile relative variance of R2 at a liver whose tiles read
    ``mean_r2_per_s`` (apparent, before the spread correction): :func:`lognormal_rho` at the
    St Pierre LIC of that rate, at least ``RHO_FLOOR``.

    Examples
    --------
    >>> plausible_rho(250.0), round(plausible_rho(95.0), 3)
    (0.05, 0.06)
    """
    from .calibration import lic_from_r2

    if not np.isfinite(mean_r2_per_s) or mean_r2_per_s <= 0:
        return RHO_FLOOR
    return max(RHO_FLOOR, lognormal_rho(float(lic_from_r2(float(mean_r2_per_s)))))
