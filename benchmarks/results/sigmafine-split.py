"""Third design (branch sigmafine, 15:40 UTC): tiles fitted on 2 or 3 disjoint parts of their voxels, the product
of two parts' amplitudes subtracted (unbiased for A^2 where one fit's square over-subtracts its own noise),
against the full-tile fit and the true voxel amplitudes (oracle); one step at the true sigma, replicate 0.
Run from the repository root: PYTHONPATH=. python benchmarks/results/sigmafine-split.py"""
import numpy as np
from benchmarks.sigmafine import _liver
from r2mri.stats import pooled_mean_r2, _tile_fit
from r2mri._sigma_check import _tile_signals, MIN_TILE_VOXELS, FLOOR_FRACTION, outlier_limit
from r2mri._sigma_floor import regressed_floor
import r2mri._sigma_floor
r2mri._sigma_floor.MODEL_SE_REL = 0.0  # the run of 15:40 UTC was before this allowance existed


def split_amplitudes(y, t, te, n_tiles, sigma, coils, parts=2):
    """Each tile's fitted amplitudes (parts, tiles, echo) from disjoint parts of its voxels, and the part of each voxel.

    The voxels of a tile are dealt to ``parts`` groups in turn (their order in ``y``); each
    group's mean signal is fitted like the headline's tiles (:func:`r2mri.stats._tile_fit`).
    Fits from disjoint voxels have independent noise, so the product of two of them is an
    unbiased estimate of the squared amplitude where one fit's square is not (``E[A_t^2] =
    A^2 + var(A_t)``: the fitted floor amplitude's own noise, which over-subtracts).
    """
    from .stats import _tile_fit

    order = np.argsort(t, kind="stable")
    ts = t[order]
    first = np.searchsorted(ts, ts, side="left")
    part = np.empty(t.size, dtype=np.int64)
    part[order] = (np.arange(t.size) - first) % parts
    amps, oks = [], []
    for j in range(parts):
        sel = part == j
        kj = np.bincount(t[sel], minlength=n_tiles).astype(np.float64)
        mj = np.stack([np.bincount(t[sel], weights=y[sel, e], minlength=n_tiles) for e in range(y.shape[1])], 1)
        mj = mj / np.maximum(kj, 1.0)[:, None]
        r2, s0, _, ok = _tile_fit(mj, te, np.maximum(kj, 1.0), sigma, coils)
        amps.append(s0[:, None] * np.exp(-r2[:, None] * te[None, :]))
        oks.append(ok & (kj > 0))
    return np.stack(amps), np.logical_and.reduce(oks), part

cells = [(40,20,8,0.0,1),(40,20,8,0.4,8),(30,20,8,0.4,1),(40,50,8,0.4,1),(40,50,8,0.4,4),(30,20,8,0.0,1),(40,20,1,0.4,1),(30,20,1,0.2,1)]
for cell in cells:
  for rep in (0,):
    ph, s = _liver(cell[0], cell[1], cell[2], rep, cell[3], cell[4])
    sigma = float(ph.summary['noise_sigma']); coils = cell[2]
    pooled = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=sigma, coils=coils)
    y, t, ymean = _tile_signals(ph.image, pooled)
    te = np.asarray(ph.image.echo_times_s, float); nt = int(pooled.n_tiles)
    k = np.bincount(t, minlength=nt).astype(float)
    r2, s0, _, ok = _tile_fit(ymean, te, k, sigma, coils)
    a2 = (s0[:, None]*np.exp(-r2[:, None]*te[None, :]))**2
    two_n = 2.0*coils
    use = ok & (k >= MIN_TILE_VOXELS)
    floor_echo = np.median(a2[use], axis=0) <= FLOOR_FRACTION*two_n*sigma*sigma
    vsel0 = (use[:, None] & floor_echo[None, :])[t]
    bad = vsel0 & (y > outlier_limit(np.sqrt(a2)[t], sigma, coils))
    if bad.any(): vsel0 &= ~np.isin(t, np.unique(t[bad.any(axis=1)]))[:, None]
    out = {}
    m2 = y*y
    ev = np.broadcast_to(np.arange(te.size)[None,:], y.shape)
    tv = np.broadcast_to(t[:,None], y.shape)
    for parts in (2, 3):
        A, okp, part = split_amplitudes(y, t, te, nt, sigma, coils, parts)
        if parts == 2:
            sub = (A[0]*A[1])[t]
        else:
            o = [(1,2),(0,2),(0,1)]
            P = np.stack([A[a]*A[b] for a,b in o])  # (3, tiles, echo)
            sub = P[part, t]
        vsel = vsel0 & okp[t][:, None]
        x = a2[t]
        out[f'p{parts}_mean'] = float(np.sqrt(np.mean((m2-sub)[vsel])/two_n)/sigma-1)
        # regression: y = m2 - sub on x = full-tile a2; implemented via regressed_floor with (m2 - sub + x) so excess = m2 - sub
        v, se, b = regressed_floor((m2-sub+x)[vsel], x[vsel], tv[vsel], ev[vsel], nt, te.size, coils)
        out[f'p{parts}_reg'] = float(np.sqrt(v)/sigma-1); out[f'p{parts}_reg_se'] = float(0.5*se/v); out[f'p{parts}_beta']=b
    vsel = vsel0
    out['full_mean'] = float(np.sqrt(np.mean((m2-a2[t])[vsel])/two_n)/sigma-1)
    v, se, b = regressed_floor(m2[vsel], a2[t][vsel], tv[vsel], ev[vsel], nt, te.size, coils)
    out['full_reg'] = float(np.sqrt(v)/sigma-1); out['full_reg_se']=float(0.5*se/v); out['full_beta']=b
    a_true = np.asarray(ph.noise_free, float).reshape(-1, te.size)[np.asarray(pooled.voxel_index)[np.asarray(pooled.voxel_tile)>=0]]
    out['oracle'] = float(np.sqrt(np.mean((m2-a_true**2)[vsel])/two_n)/sigma-1)
    print(cell, rep, ' '.join('%s %+.3f'%(k_, 100*v_ if 'beta' not in k_ else v_) for k_, v_ in out.items()), flush=True)
