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

What: per tile edge, ``log R2`` of each tile is shrunk towards the edge's voxel-weighted
mean by ``lambda_t = sqrt(v_b / (v_b + se_t^2))``, ``v_b = max(var_between - mean se^2, 0)``
the between-tile variance of ``log R2`` that is not the tiles' own fit noise
(``se(R2) / R2`` from the tile fit). The square root is the "constrained" empirical Bayes
of Louis (JASA 79:393-398, 1984; citations from memory, not checked against
the papers here): the shrunk states keep the variance ``v_b`` (the
posterior means' ``v_b^2 / (v_b + se^2)`` would under-state a real tile-to-tile texture,
and the statistic is a non-linear function of the states' distribution, not of their
mean). On the issue-16 grid at SNR >= 50 the two differ by <= 0.05 % in the headline.

S0 is not shrunk itself: each tile's decay is pivoted about the amplitude at ``t_ref``,
the echo time where a weighted log-linear fit's amplitude and slope errors are uncorrelated (``t_ref = sum te A^2 / sum A^2``, ``A = exp(-R2 te)``),
so the amplitude there (well measured, and carrying the real S0 shading between tiles)
is kept. Shrinking S0 with R2's factor flattened the coil shading of uniform livers and
read them +0.3 to +1.0 % high at 30-40 mg/g, SNR 50. A texture that really differs from
tile to tile keeps its spread (``lambda`` near 1).
"""

from __future__ import annotations

import numpy as np


def shrunk_state(mu: np.ndarray, s0: np.ndarray, se_rel: np.ndarray, k: np.ndarray, groups,
                 te: np.ndarray, vb_max_rel_se: "float | None" = None) -> tuple:
    """``(mu, s0)`` per tile: ``log mu`` shrunk towards each group's voxel-weighted mean, the
    amplitude at ``t_ref`` kept (module docstring).

    ``te``: echo times (s); ``se_rel``: relative SE of each tile's fitted R2 (non-finite: treated as 1); ``k``:
    voxels per tile; ``groups``: boolean selections of tiles (one per tile edge); ``vb_max_rel_se``: estimate
    each group's ``v_b`` from its tiles of relative SE up to this only (:func:`_between_variance`).

    Examples
    --------
    >>> import numpy as np
    >>> mu = np.array([90.0, 110.0]); s0 = np.array([1000.0, 1000.0])
    >>> m, s = shrunk_state(mu, s0, np.array([0.2, 0.2]), np.ones(2), [np.ones(2, bool)], np.array([0.01, 0.02]))
    >>> bool(np.allclose(m, np.sqrt(90.0 * 110.0)))  # spread 0.1 in log, noise 0.2: all noise
    True
    """
    lm, ls = np.log(np.maximum(mu, 1e-3)), np.log(np.maximum(s0, 1e-12))
    w_te = np.exp(-2.0 * np.maximum(mu, 0.0)[:, None] * te[None, :])
    t_ref = (w_te @ te) / w_te.sum(axis=1)
    e2 = np.where(np.isfinite(se_rel), se_rel, 1.0) ** 2
    out_m = lm.copy()
    for sel in groups:
        if not np.any(sel):
            continue
        w = k[sel] / k[sel].sum()
        cm = np.sum(w * lm[sel])
        vb = max(float(np.sum(w * (lm[sel] - cm) ** 2) - np.sum(w * e2[sel])), 0.0)
        if vb_max_rel_se is not None:
            vb = _between_variance(lm[sel], e2[sel], k[sel], vb_max_rel_se, vb)
        lam = np.sqrt(vb / (vb + np.maximum(e2[sel], 1e-12)))
        out_m[sel] = cm + lam * (lm[sel] - cm)
    new_mu = np.exp(out_m)
    # the same amplitude at t_ref: log s0' = log s0 - (mu - mu') t_ref
    return new_mu, np.exp(ls - (np.maximum(mu, 1e-3) - new_mu) * t_ref)


_VB_MIN_TILES = 20  # [D, r2mri's choice] tiles below the SE cap needed for their between-tile variance


def _between_variance(lm: np.ndarray, e2: np.ndarray, k: np.ndarray, max_rel_se: float, vb_all: float) -> float:
    """Between-tile variance of ``log R2`` from the tiles of relative SE up to ``max_rel_se`` (branch est30).

    Why: the moment estimate over all tiles subtracts the voxel-weighted mean ``se^2``; at the noise
    floor a few tiles carry relative SEs of 1-10 (partial tiles of 2-6 voxels, tiles of R2 >= 400 s^-1
    at 30 mg/g, SNR 20, 8 channels), their ``se^2`` outweighs the texture and ``v_b`` reads 0 on a
    coarsely patchy liver (SD 0.4 in log LIC over 8 voxels: all-tile variance 0.079 against mean se^2
    1.87; the true tile-to-tile variance 0.042). Below 0.5 the tiles' SEs are calibrated (the SD of
    the fit's z-score against the true tile R2 0.99-1.03 there, 0.68 above; benchmarks/README.md, est30).
    The larger of this and ``vb_all``; ``vb_all`` when fewer than ``_VB_MIN_TILES`` tiles qualify.
    """
    sel = e2 <= max_rel_se**2
    if np.count_nonzero(sel) < _VB_MIN_TILES:
        return vb_all
    w = k[sel] / k[sel].sum()
    cm = np.sum(w * lm[sel])
    return max(float(np.sum(w * (lm[sel] - cm) ** 2) - np.sum(w * e2[sel])), vb_all)
