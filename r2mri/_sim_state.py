"""The tile state at which the spread statistic is simulated, with the tile fits' noise taken out.

Why: the method of simulated moments in :mod:`r2mri._headline` simulates each tile's
voxels at that tile's corrected ``(R2, S0)``. Those are noisy fits (at 30 mg/g, SNR 20,
8 channels the 8 x 8 tiles' R2 scatters 0.85-1.2x the truth, 10th-90th percentile), and
the echo-wise dispersion is a strongly non-linear function of the amplitude near the
magnitude floor (8 channels: about 4 sigma). Simulating at the noisy states (Jensen)
raised the first echo's dispersion against the second's and the spread ``rho`` came out
high: on the full-size ``heterogeneous-fine-1.5t`` at 30 mg/g, SNR 20, 8 channels
0.051 / 0.040 (noise seeds 1 / 2) against 0.037 in the truth, headline +13 % / +4 %;
with the phantom's true tile states the simulation matched the observed dispersion
within 2 SE at the true ``rho`` (docs/statistics.md, "Heterogeneous livers").

What: per tile edge, an empirical-Bayes shrinkage of ``log R2`` and ``log S0`` of each
tile towards the edge's voxel-weighted mean, by the share of the between-tile variance
of ``log R2`` that is not the tiles' own fit noise (``se(R2) / R2`` from the tile fit):
``lambda_t = v_b / (v_b + se_t^2)``, ``v_b = max(var_between - mean se^2, 0)``
(James & Stein, Proc. 4th Berkeley Symp. 1:361-379, 1961; Efron & Morris, JASA
70:311-319, 1975). S0 takes the same factor as R2 (their fit errors are correlated;
a separate S0 variance is not estimated: an assumption). A texture that really differs
from tile to tile keeps its spread (``lambda`` near 1).
"""

from __future__ import annotations

import numpy as np


def shrunk_state(mu: np.ndarray, s0: np.ndarray, se_rel: np.ndarray, k: np.ndarray, groups) -> tuple:
    """``(mu, s0)`` per tile shrunk towards each group's voxel-weighted mean (in logs).

    ``se_rel``: relative SE of each tile's fitted R2 (non-finite: treated as 1); ``k``:
    voxels per tile; ``groups``: boolean selections of tiles (one per tile edge).

    Examples
    --------
    >>> import numpy as np
    >>> mu = np.array([90.0, 110.0]); s0 = np.array([1000.0, 1000.0])
    >>> m, s = shrunk_state(mu, s0, np.array([0.2, 0.2]), np.ones(2), [np.ones(2, bool)])
    >>> bool(np.allclose(m, np.sqrt(90.0 * 110.0)))  # spread 0.1 in log, noise 0.2: all noise
    True
    """
    lm, ls = np.log(np.maximum(mu, 1e-3)), np.log(np.maximum(s0, 1e-12))
    e2 = np.where(np.isfinite(se_rel), se_rel, 1.0) ** 2
    out_m, out_s = lm.copy(), ls.copy()
    for sel in groups:
        if not np.any(sel):
            continue
        w = k[sel] / k[sel].sum()
        cm, cs = np.sum(w * lm[sel]), np.sum(w * ls[sel])
        vb = max(float(np.sum(w * (lm[sel] - cm) ** 2) - np.sum(w * e2[sel])), 0.0)
        lam = vb / (vb + np.maximum(e2[sel], 1e-12))
        out_m[sel], out_s[sel] = cm + lam * (lm[sel] - cm), cs + lam * (ls[sel] - cs)
    return np.exp(out_m), np.exp(out_s)
