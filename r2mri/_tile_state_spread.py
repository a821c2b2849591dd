"""Experimental reference-state designs for the simulated tile-fit bias (branch est30).

Why: on full-size coarsely patchy livers at 30 mg/g, SNR 20, 8 channels the headline's
estimator part reads +1.2 % in LIC (branch floor30b): the tiles too noisy for the Box term
are mostly the iron-rich ones, their shrunk states (:mod:`r2mri._sim_state`) are pulled to
the tile edge's mean, and the indirect inference of :func:`r2mri._tile_bias_sim.simulated_fit_bias`
fixes only the group's mean state with one factor; the fit bias is convex in R2, so the
compressed states under-state it (floor30's split: tiles of true R2 300-500 s^-1 carry
+5.5 s^-1 of fit bias, +3.5 taken off).

What (two designs compared in benchmarks/README.md, section est30):

- ``classes``: the group's skipped tiles split into R2 classes by their shrunk state, one
  factor each (floor30b's suggestion);
- ``spread``: a second indirect-inference parameter per group, a factor ``g >= 1`` on the
  states' log deviations from the group's mean, chosen so that the simulated fits' spread
  (weighted inter-quartile range of log R2 over replicates and tiles) equals the observed
  fits' spread over the group's tiles.
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_groups", "log_deviation", "spread_step"]


def _wquantile(v, w, q):
    o = np.argsort(v)
    cw = np.cumsum(w[o])
    return np.interp(np.asarray(q) * cw[-1], cw, v[o])


def _wiqr(v, w):
    q25, q75 = _wquantile(v, w, [0.25, 0.75])
    return float(q75 - q25)


def class_groups(gid: np.ndarray, r_ref: np.ndarray, kw: np.ndarray, n_classes: int) -> np.ndarray:
    """Split each group of ``gid`` into ``n_classes`` classes by the voxel-weighted quantiles of ``r_ref``."""
    out = np.zeros(gid.size, dtype=np.int64)
    for g in np.unique(gid):
        sel = np.flatnonzero(gid == g)
        if sel.size < 2 * n_classes:
            out[sel] = g * n_classes
            continue
        cuts = _wquantile(r_ref[sel], kw[sel], np.arange(1, n_classes) / n_classes)
        out[sel] = g * n_classes + np.searchsorted(cuts, r_ref[sel], side="right")
    return np.unique(out, return_inverse=True)[1]


def log_deviation(r_ref: np.ndarray, gid: np.ndarray, kw: np.ndarray, ng: int) -> np.ndarray:
    """Each state's ``log R2`` less its group's voxel-weighted mean ``log R2``."""
    lg = np.log(np.maximum(r_ref, 1e-3))
    m = np.bincount(gid, weights=kw * lg, minlength=ng) / np.bincount(gid, weights=kw, minlength=ng)
    return lg - m[gid]


def spread_step(g: np.ndarray, r2_obs: np.ndarray, fits, gid: np.ndarray, ng: int, kw: np.ndarray,
                dev: np.ndarray, g_max: float, min_tiles: int = 20) -> np.ndarray:
    """One moment step of the spread factor ``g`` per group: ``g^2 += (iqr_obs^2 - iqr_sim^2) / iqr_dev^2``
    (inter-quartile ranges of log R2: of the observed tile fits, of the simulated fits at the current states
    over replicates and tiles, of the states' log deviations at ``g = 1``), clipped to ``[1, g_max]``."""
    f, ok = fits
    out = g.copy()
    for j in range(ng):
        sel = gid == j
        if np.count_nonzero(sel) < min_tiles or np.any(r2_obs[sel] <= 0):
            continue
        s_dev = _wiqr(dev[sel], kw[sel])
        fs, oks = f[:, sel], ok[:, sel]
        ws = np.broadcast_to(kw[sel], fs.shape)[oks]
        fs = fs[oks]
        if s_dev <= 1e-6 or fs.size < 2 * min_tiles or np.any(fs <= 0):
            continue
        i_obs, i_sim = _wiqr(np.log(r2_obs[sel]), kw[sel]), _wiqr(np.log(fs), ws)
        out[j] = np.clip(np.sqrt(max(g[j] ** 2 + (i_obs**2 - i_sim**2) / s_dev**2, 0.0)), 1.0, g_max)
    return out


def local_state(mu: np.ndarray, s0: np.ndarray, se_rel: np.ndarray, k: np.ndarray, groups, te: np.ndarray,
                centres: np.ndarray, sizes, max_rel_se: float = 0.3, radius_tiles: float = 1.5) -> tuple:
    """``(mu, s0)`` per tile: ``log mu`` shrunk towards a local prior mean, the amplitude at ``t_ref`` kept.

    The prior of a tile is the voxel-weighted mean ``log R2`` of its group's precise tiles (relative SE
    up to ``max_rel_se``) whose centres lie within ``radius_tiles`` tile edges in-plane and one slice
    (itself left out); its variance ``v_loc`` the precise tiles' mean squared deviation from their own
    local means less their mean ``se^2`` (and less the local mean's own variance). The state is the
    posterior mean ``(lm / se^2 + prior / v_loc) / (1 / se^2 + 1 / v_loc)``. Where the texture is
    coarser than a tile the neighbours carry the tile's level (the noisy tiles at the floor are the
    iron-rich ones of an iron-rich patch); where it is finer, or the liver uniform, the local means are
    the group's mean and this is the usual shrinkage. Tiles with no precise neighbour: the group's mean.
    """
    from scipy.spatial import cKDTree

    lm = np.log(np.maximum(mu, 1e-3))
    e2 = np.where(np.isfinite(se_rel), se_rel, 1.0) ** 2
    out = lm.copy()
    for sel, size in zip(groups, sizes):
        ii = np.flatnonzero(sel)
        if ii.size == 0:
            continue
        prec = ii[e2[ii] <= max_rel_se**2]
        cm = np.sum(k[ii] * lm[ii]) / k[ii].sum()
        if prec.size < 20:
            out[ii] = cm
            continue
        scale = np.array([1.0 / size, 1.0 / size, 1.0])
        tree = cKDTree(centres[prec] * scale)
        nb = tree.query_ball_point(centres[ii] * scale, r=radius_tiles + 1e-9)
        prior, pvar = np.full(ii.size, cm), np.zeros(ii.size)
        for j, lst in enumerate(nb):
            lst = [q for q in lst if prec[q] != ii[j]]
            if not lst:
                continue
            q = prec[lst]
            w = k[q] / k[q].sum()
            prior[j] = np.sum(w * lm[q])
            pvar[j] = np.sum(w * w * e2[q])
        isprec = np.isin(ii, prec)
        dev2 = (lm[ii] - prior) ** 2 - e2[ii] - pvar
        v_loc = max(float(np.sum(k[ii][isprec] * dev2[isprec]) / k[ii][isprec].sum()), 1e-6)
        wt = (1.0 / np.maximum(e2[ii], 1e-12)) / (1.0 / np.maximum(e2[ii], 1e-12) + 1.0 / (v_loc + pvar))
        out[ii] = prior + wt * (lm[ii] - prior)
    new_mu = np.exp(out)
    w_te = np.exp(-2.0 * np.maximum(mu, 0.0)[:, None] * te[None, :])
    t_ref = (w_te @ te) / w_te.sum(axis=1)
    return new_mu, np.exp(np.log(np.maximum(s0, 1e-12)) - (np.maximum(mu, 1e-3) - new_mu) * t_ref)
