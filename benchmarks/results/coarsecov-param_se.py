"""Branch coarsecov, scratch (not shipped): the parametric covariance-fit SE compared in docs/statistics.md
("The left-out liver's own R2", SE designs table). Used by monkeypatching
r2mri._roi_sampling.roi_sampling_se_r2 = param_se before running benchmarks.roi_sampling_se's _condition."""
import numpy as np
from scipy import fft as _fft
from r2mri._roi_sampling import _box_of, _MIN_PAIRS

_ELLS = np.geomspace(0.5, 64.0, 40)
_ELLZ = np.concatenate([[0.0], np.geomspace(0.15, 8.0, 14)])
_ALPHAS = (1.0, 2.0)


def _rho(r, k, ell, ellz, alpha):
    ri = np.exp(-0.5 * (r / ell) ** 2) if alpha == 2.0 else np.exp(-r / ell)
    if ellz == 0.0:
        rz = (k == 0).astype(float)
    else:
        rz = np.exp(-0.5 * (k / ellz) ** 2) if alpha == 2.0 else np.exp(-k / ellz)
    return ri * rz


def param_se(r2, se, roi_mask, liver_mask, alphas=_ALPHAS, wmode="cnt"):
    liver = np.asarray(liver_mask, bool) | np.asarray(roi_mask, bool)
    roi = np.asarray(roi_mask, bool)
    n_l, n_s = int(liver.sum()), int(roi.sum())
    out = {"se_r2_per_s": 0.0}
    if n_s < 10 or n_l == n_s:
        return out
    bx, by = _box_of(liver)
    r2b = np.asarray(r2, np.float64)[bx, by]
    seb = np.full(r2b.shape, np.nan) if se is None else np.asarray(se, np.float64)[bx, by]
    sb, lb = roi[bx, by], liver[bx, by]
    use = sb & np.isfinite(r2b) & (np.isfinite(seb) if se is not None else True)
    nx, ny, nz = r2b.shape
    shape = tuple(_fft.next_fast_len(2 * n, real=True) for n in (nx, ny, nz))
    f = np.where(use, r2b - float(np.mean(r2b[use])), 0.0)
    m = use.astype(np.float64)
    w = lb / n_l - sb / n_s
    corr = lambda a: _fft.irfftn(np.abs(_fft.rfftn(a, shape)) ** 2, shape)
    n_use = float(m.sum())
    cnt = np.rint(corr(m))
    est = cnt >= _MIN_PAIRS
    csum = corr(f)
    xw = corr(w)
    xu = cnt / n_use**2
    hx = _fft.fftfreq(shape[0], 1.0 / shape[0])[:, None, None]
    hy = _fft.fftfreq(shape[1], 1.0 / shape[1])[None, :, None]
    hz = np.abs(_fft.fftfreq(shape[2], 1.0 / shape[2]))[None, None, :]
    r = np.broadcast_to(np.hypot(hx, hy), shape)
    kz = np.broadcast_to(hz, shape)
    # bins: integer radius x slice lag
    rb = np.rint(r).astype(int)
    nb = rb.max() + 1
    idx = (rb + nb * kz.astype(int)).ravel()
    nbin = nb * int(kz.max() + 1)
    B = lambda v: np.bincount(idx, weights=np.asarray(v, float).ravel(), minlength=nbin)
    lag0 = (rb == 0) & (kz == 0)
    fit = est & ~lag0
    c_cnt = B(np.where(fit, cnt, 0.0))         # pairs per bin used in the fit
    c_sum = B(np.where(fit, csum, 0.0))        # sum of products per bin
    xu_b = B(xu)
    r_b = B(r * np.where(fit, cnt, 0.0)) / np.maximum(c_cnt, 1)  # pair-weighted mean radius
    r_all = B(r) / np.maximum(B(np.ones(shape)), 1)
    r_b = np.where(c_cnt > 0, r_b, r_all)
    k_b = np.arange(nbin) // nb
    ok = c_cnt > 0
    chat = np.where(ok, c_sum / np.maximum(c_cnt, 1), 0.0)
    wt = c_cnt if wmode == "cnt" else np.sqrt(c_cnt)
    best = None
    for a in alphas:
        for lz in _ELLZ:
            if nz == 1 and lz > 0:
                continue
            for ell in _ELLS:
                rho = _rho(r_b, k_b, ell, lz, a)
                v = float(np.sum(xu_b * rho))     # Var(mean_S) / s^2
                g = rho - v                        # E[c_hat] / s^2
                den = float(np.sum(wt[ok] * g[ok] ** 2))
                if den <= 0:
                    continue
                s2 = max(float(np.sum(wt[ok] * g[ok] * chat[ok])) / den, 0.0)
                sse = float(np.sum(wt[ok] * (chat[ok] - s2 * g[ok]) ** 2))
                if best is None or sse < best[0]:
                    best = (sse, s2, ell, lz, a)
    _, s2, ell, lz, a = best
    var = s2 * float(np.sum(xw * _rho(r, kz, ell, lz, a)))
    out.update(se_r2_per_s=float(np.sqrt(max(var, 0.0))), ell=ell, ellz=lz, alpha=a, s2=s2)
    return out
