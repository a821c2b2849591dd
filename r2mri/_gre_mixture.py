"""Within-tile spread correction of the fat-water tile fit (GRE / R2* route, issue 16).

Why: the GRE headline (``tile-fw-ncchi``, :func:`r2mri._gre.pooled_mean_r2star`) averages
the magnitudes of the voxels of a 4 x 4 tile before one fat-water fit. When their R2*
differ, the mean signal is a mixture of exponentials, which decays more slowly than the
exponential of the mean rate, and the fitted R2* reads low: on 64 x 64 x 3 GRE phantoms
(1.5 T, 6 echoes TE 1.2-6.2 ms, PDFF 15 %, SNR 50, one channel; log-normal LIC texture of
SD 0.4 from voxel to voxel) -2 % at 1 mg/g, -8.5 % at 7 mg/g and -24 % at 30 mg/g in LIC
(benchmarks/gre_hetero.py). The spin-echo route corrects this (``tile-mixture``,
:mod:`r2mri._headline`); this module carries its design over to the fat-water model.

Assumption about fat (the model the correction inverts): inside a tile every voxel has
the same water/fat composition (PDFF) and one R2* common to water and fat (the model of
the fit itself, Yu et al. MRM 2008;60:1122-1134), only R2* (and the overall amplitude)
varies from voxel to voxel. The mean signal of a tile is then

    E[mean M](t) = sum_q w_q ncchi_mean(|W + F c(t)| exp(-mu g_q t), sigma, coils)

with ``g_q`` the Gauss-Hermite nodes of the spread of R2* (mean 1, relative variance
``rho``) and ``c`` the fat basis. A PDFF that varies inside a tile would add an oscillating
term to the voxels' dispersion that this model reads as spread; not modelled (the
phantoms' liver PDFF is uniform).

What (the same steps as the spin-echo ``tile-mixture``, docs/statistics.md section 2):

1. ``rho``, the relative variance of R2* between the voxels of the tiles, from the
   echo-wise dispersion of ``M_i(TE) / mean_tile M(TE)`` (which the common fat modulation
   leaves alone), pooled over the tiles, by the method of simulated moments with a
   relative amplitude variance ``kappa`` as nuisance: voxels are simulated at the tiles'
   corrected (W, F, R2*) with their fit noise shrunk out (:mod:`r2mri._sim_state`), a
   gamma-shaped spread, the known sigma and channels, common random numbers; Gauss-Newton
   steps until rho moves by less than a quarter of its SE. Echoes with ``mu TE <= 2.5``.
2. Each tile's (W, F, R2*) is replaced by the one whose mixture (its own voxels hold
   ``(k - 1) / k`` of the between-voxel rho) the same fat-water tile fit reads as observed
   (fixed-point iteration; a negative rho from noise gives the mirrored correction).
3. The correction's own error for the interval: rho +- its SE through the correction,
   and the shape (half the gamma - log-normal difference; the interval reaches the
   log-normal estimate), as :func:`r2mri._headline.widen_interval` applies them.
4. Where rho cannot be measured (fewer than 3 echoes with ``mu TE <= 2.5``, or its SE
   above ``_RHO_SE_MAX``) the tiles are left as fitted, the interval's upper end reaches
   the correction at ``_RHO_PLAUSIBLE`` and a warning says so. Where more than 5 % of the
   ROI lies in tiles whose signal is at the noise floor from the second echo on
   (:func:`r2mri._gre.tiles_at_noise_floor`), the upper end reaches that share of the
   fit's R2* cap (those tiles' R2* is not measured at all; the range warning says so).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._mixture import _GH_W, _GH_X, _draw_spread
from ._sim_state import shrunk_state
from ._spread_estimate import _MUT_MAX, _echo_dispersion, _gauss_newton, _ncchi_draw, _pooled_echo

__all__ = ["fw_mixture_signal", "invert_fw_mixture", "gre_mixture_correction"]

_SHAPE, _SHAPE_ALT = "gamma", "lognormal"  # as the spin-echo route (r2mri/_headline.py, item 4)
_DRHO = 0.02  # trial step in rho and kappa (finite differences of the statistic)
_MIN_STEPS, _MAX_STEPS, _STEP_TOL = 2, 6, 0.25  # Gauss-Newton steps (as r2mri/_headline.py)
_RHO_MAX = 0.40  # [D, r2mri's choice] |rho| bound: relative SD 0.63 of R2* inside a tile. GRE R2* is nearly
# proportional to LIC (Hernando 2022), so a log-normal LIC texture of SD 0.4 from voxel to voxel holds
# rho = exp(0.16) - 1 = 0.17 between voxels; the bound is ~2x that
_RHO_SE_MAX = 0.05  # [D, r2mri's choice] SE of rho above which the spread counts as not measured
_RHO_PLAUSIBLE = 0.17  # [D] the interval's reach where rho is not measured: the between-voxel relative
# variance of R2* for SD 0.4 in log LIC (issue 16's largest texture) with R2* proportional to LIC


# --------------------------------------------------------------------------- the mixture model
def _fat_modulus(p: np.ndarray, cr: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """``|W + F c(t)|`` per tile and echo."""
    w, f = p[:, 0:1], p[:, 1:2]
    return np.hypot(w + f * cr[None, :], f * ci[None, :])


def fw_mixture_signal(p: np.ndarray, rho: np.ndarray, te: np.ndarray, cr: np.ndarray, ci: np.ndarray,
                      sigma: float, coils: int, shape: str = _SHAPE) -> np.ndarray:
    """Expected mean magnitude of tiles ``p`` = (W, F, mu) whose voxels' R2* spread with relative
    variance ``rho`` (one per tile, >= 0) about ``mu``; shape (tiles, echoes).

    Examples
    --------
    >>> import numpy as np
    >>> te = 0.0012 + 0.001 * np.arange(6)
    >>> p = np.array([[85.0, 15.0, 275.0]])
    >>> y0 = fw_mixture_signal(p, np.array([0.0]), te, np.ones(6), np.zeros(6), 1e-3, 1)
    >>> bool(np.allclose(y0[0], 100 * np.exp(-275 * te), rtol=1e-4))
    True
    >>> y1 = fw_mixture_signal(p, np.array([0.1]), te, np.ones(6), np.zeros(6), 1e-3, 1)
    >>> bool(np.all(y1 > y0))  # a mixture decays more slowly than the exponential of the mean rate
    True
    """
    from .noise import ncchi_mean_interpolated

    g = _draw_spread(np.asarray(rho, dtype=np.float64)[:, None], _GH_X[None, :], shape)  # (tiles, nodes)
    amp = _fat_modulus(p, cr, ci)[:, None, :] * np.exp(-p[:, 2, None, None] * g[:, :, None] * te[None, None, :])
    m, _d = ncchi_mean_interpolated(amp, sigma, coils)
    return np.tensordot(m, _GH_W, axes=([1], [0]))


def invert_fw_mixture(p_app: np.ndarray, k: np.ndarray, rho: np.ndarray, te, cr, ci, sigma: float, coils: int,
                      shape: str = _SHAPE, fat_floor: float = 0.1, r2_max: float = 5000.0, n_iter: int = 6):
    """(W, F, mu) per tile whose mixture (relative spread ``rho`` of its own voxels, signed: a
    negative value gives the mirrored correction) the fat-water tile fit reads as ``p_app``.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri.fatwater import load_fat_spectrum
    >>> te = 0.0012 + 0.001 * np.arange(6)
    >>> c = load_fat_spectrum().basis(te, 1.5); cr, ci = c.real, c.imag
    >>> true = np.array([[85.0, 15.0, 275.0]])
    >>> y = fw_mixture_signal(true, np.array([0.1]), te, cr, ci, 0.5, 1)
    >>> from r2mri._gre import _fit_tiles
    >>> app = _fit_tiles(y, np.array([16.0]), true, te, cr, ci, 0.5, 1)[0]
    >>> bool(app[0, 2] < 265)  # the tile fit reads the mixture low
    True
    >>> back = invert_fw_mixture(app, np.array([16.0]), np.array([0.1]), te, cr, ci, 0.5, 1)
    >>> bool(abs(back[0, 2] - 275.0) < 0.5)
    True
    """
    from ._gre import _fit_tiles

    p_app = np.asarray(p_app, dtype=np.float64)
    rho = np.broadcast_to(np.asarray(rho, dtype=np.float64), p_app.shape[:1])
    out = p_app.copy()
    idx = np.flatnonzero(rho != 0)
    if idx.size == 0:
        return out
    pa, q, kk = p_app[idx], np.abs(rho[idx]), np.asarray(k, dtype=np.float64)[idx]
    m = pa.copy()
    prev = None  # (model rate, fitted rate) of the last iteration: secant gain of the rate
    for _ in range(n_iter):
        y = fw_mixture_signal(m, q, te, cr, ci, sigma, coils, shape)
        fit = _fit_tiles(y, kk, pa, te, cr, ci, sigma, coils, r2_max=r2_max, fat_floor=fat_floor)[0]
        ok = np.all(np.isfinite(fit), axis=1)
        gain = np.ones(idx.size)
        if prev is not None:  # d(fitted rate) / d(model rate) < 1 at large spreads: unit steps crawl
            dm = m[:, 2] - prev[0]
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = np.where(np.abs(dm) > 1e-9 * np.maximum(m[:, 2], 1.0), (fit[:, 2] - prev[1]) / dm, 1.0)
            gain = np.clip(np.nan_to_num(gain, nan=1.0), 0.3, 1.0)
        prev = (m[:, 2].copy(), fit[:, 2].copy())
        step = pa - fit
        step[:, 2] /= gain
        m = np.where(ok[:, None], m + step, m)
        m[:, 0] = np.maximum(m[:, 0], 0.0)
        m[:, 2] = np.clip(m[:, 2], 0.0, r2_max)
    sg = np.sign(rho[idx])[:, None]
    out[idx] = pa + sg * (m - pa)
    return out


# --------------------------------------------------------------------------- the spread estimate
class _Tiles:
    """The fitted tiles of :func:`r2mri._gre.pooled_mean_r2star` with their voxels' magnitudes."""

    def __init__(self, image: Any, pooled: Any, sigma: float, coils: int):
        t = pooled.fw_tiles
        ii, jj, kk = t["voxels"]
        # voxels of the tiles whose fit was kept, renumbered 0..nt-1 in the order of t["params"]
        renum = np.full(int(t["tile_of"].max()) + 1, -1)
        renum[t["kept"]] = np.arange(t["kept"].size)
        tile_of = renum[t["tile_of"]]
        use = tile_of >= 0
        self.y = np.asarray(image.data)[ii[use], jj[use], kk[use], :].astype(np.float64)
        self.tile_of = tile_of[use]
        self.p = np.asarray(t["params"], dtype=np.float64)
        self.k = np.asarray(t["k"], dtype=np.float64)
        self.se_rel = np.asarray(pooled.tile_se_r2_per_s, dtype=np.float64) / np.maximum(self.p[:, 2], 1e-3)
        self.te, self.cr, self.ci = t["te"], t["cr"], t["ci"]
        self.sigma, self.coils = float(sigma), int(coils)
        self.fat_floor, self.r2_max = float(t["fat_floor"]), float(t["r2_max"])

    @property
    def nt(self) -> int:
        return self.k.size

    def shrunk(self, p: np.ndarray) -> np.ndarray:
        """``p`` with the tile fits' noise shrunk out of R2* (r2mri/_sim_state.py; W and F scaled with the
        amplitude at t_ref)."""
        amp = np.maximum(p[:, 0] + p[:, 1], 1e-12)
        mu, s0 = shrunk_state(p[:, 2], amp, self.se_rel, self.k, [np.ones(self.nt, bool)], self.te)
        out = p.copy()
        out[:, 0] *= s0 / amp
        out[:, 1] *= s0 / amp
        out[:, 2] = mu
        return out

    def correct(self, p_app: np.ndarray, rho: float, shape: str = _SHAPE) -> np.ndarray:
        """Tiles corrected for a between-voxel spread ``rho``: the correction is computed at the shrunk
        apparent state (it is convex in the rate) and added to each tile's own fit."""
        if rho == 0:
            return p_app.copy()
        ref = self.shrunk(p_app)
        f = (np.maximum(self.k, 1.0) - 1.0) / np.maximum(self.k, 1.0)
        done = invert_fw_mixture(ref, self.k, rho * f, self.te, self.cr, self.ci, self.sigma, self.coils, shape,
                                 self.fat_floor, self.r2_max)
        return p_app + (done - ref)

    def simulator(self, seed: int, replicates: int, shape: str):
        """``simulated(p, rho, kappa)``: replicate-averaged echo dispersion of simulated voxels at the
        tiles' shrunk states, with the same draws at every call (common random numbers)."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((replicates, 2, self.y.shape[0]))
        noise_state = rng.bit_generator.state

        def simulated(p, rho, kappa):
            rng.bit_generator.state = noise_state
            ps = self.shrunk(p)
            mod = _fat_modulus(ps, self.cr, self.ci)[self.tile_of]
            q2 = np.log1p(max(kappa, 0.0))
            out = np.zeros((self.nt, self.te.size))
            for r in range(replicates):
                g = _draw_spread(np.full(self.y.shape[0], max(rho, 0.0)), z[r, 0], shape)
                h = np.exp(np.sqrt(q2) * z[r, 1] - q2 / 2)
                amp = (mod * h[:, None]) * np.exp(-(ps[self.tile_of, 2] * g)[:, None] * self.te[None, :])
                out += _echo_dispersion(_ncchi_draw(amp, self.sigma, self.coils, rng), self.tile_of, self.nt)[0]
            return out / replicates

        return simulated


def estimate_spread(t: _Tiles, simulated, shape: str = _SHAPE, start=None, max_steps: int = _MAX_STEPS):
    """Method of simulated moments for (rho, kappa); the tiles are re-corrected after each step.
    Returns ``(rho, rho_se, kappa, p_corrected)``."""
    obs_ss, dof = _echo_dispersion(t.y, t.tile_of, t.nt)
    sel = dof > 0
    rho, kappa, p = (0.0, 0.0, t.p.copy()) if start is None else (start[0], start[2], start[3].copy())
    rho_se = float("inf")
    if not sel.any():
        return 0.0, float("inf"), 0.0, p
    v_obs, se_obs = _pooled_echo(obs_ss, dof, sel)
    for n_done in range(max_steps):
        ra, ka = max(rho, 0.0), max(kappa, 0.0)
        va, se_a = _pooled_echo(simulated(p, ra, ka), dof, sel)
        jr = (_pooled_echo(simulated(p, ra + _DRHO, ka), dof, sel)[0] - va) / _DRHO
        jk = (_pooled_echo(simulated(p, ra, ka + _DRHO), dof, sel)[0] - va) / _DRHO
        step, rho_se = _gauss_newton(v_obs, se_obs, va, se_a, jr, jk, p[:, 2], t.te)
        new_rho = float(np.clip(ra + step[0], -_RHO_MAX, _RHO_MAX))
        moved = not abs(new_rho - rho) <= _STEP_TOL * rho_se
        rho, kappa = new_rho, float(np.clip(ka + step[1], -_RHO_MAX, _RHO_MAX))
        p = t.correct(t.p, rho, shape)
        if n_done + 1 >= _MIN_STEPS and not moved:
            break
    return rho, rho_se, kappa, p


# --------------------------------------------------------------------------- the headline
#: Name of the corrected GRE headline estimator (report.json ``headline.estimator``; <= 16 characters).
ESTIMATOR = "tile-fw-mixture"
_RHO_NEGATIVE_SE = 2.0  # [D, as r2mri/_headline.py] a spread this many SE below zero is a misfit, not noise
_MIN_ECHOES = 3  # [D, r2mri's choice] echoes with median mu t <= _MUT_MAX the spread needs: two echoes fit
# (rho, kappa) exactly, with nothing left to check them (1.5 T, TE 1.2 + 1.0 k ms at 30 mg/g, R2* ~1160 s^-1)


def _weighted_mean(p: np.ndarray, k: np.ndarray) -> float:
    return float(np.sum(k * p[:, 2]) / np.sum(k))


def _error_terms(t: _Tiles, p, rho, rho_se, kappa, edge, mean0, seed, replicates):
    """The correction's own error, or why there is none: ``(p, terms)`` with the tiles to report
    (as corrected, or as fitted when the spread is not measured or misfits) and the interval's
    terms (items 3-4 of the module docstring)."""
    # echoes in the cumulant regime at the apparent and at the corrected median rate (the mixture and the
    # noise floor both read the rate low: at 30 mg/g the apparent rate alone let 3 echoes count)
    r_med = max(float(np.median(t.p[:, 2])), float(np.median(p[:, 2])))
    n_echoes = int(np.count_nonzero(r_med * t.te <= _MUT_MAX))
    warnings: list[str] = []
    extra: dict[str, Any] = {"cumulant_echoes": n_echoes}
    unidentified, upper = [], 0.0
    se_spread = se_shape = shape_diff = 0.0
    if n_echoes < _MIN_ECHOES or not rho_se <= _RHO_SE_MAX:
        # the spread is not measured: the tiles stay as fitted, the interval reaches the plausible spread
        p = t.p.copy()
        unidentified = [edge]
        upper = max(_weighted_mean(t.correct(t.p, _RHO_PLAUSIBLE), t.k) - mean0, 0.0)
        warnings.append(
            f"headline: the spread of R2* inside the {edge}x{edge} tiles cannot be measured with this echo train "
            f"({n_echoes} echoes before the signal falls to 8 % at R2* {r_med:.0f} s^-1; SE of its "
            f"estimate {rho_se:.3f}): the headline is not corrected for it and may read low in a heterogeneous "
            f"liver; the interval's upper end reaches the correction for a log-SD 0.4 texture (+{upper:.0f} s^-1)")
    elif rho < -_RHO_NEGATIVE_SE * rho_se:
        p = t.p.copy()
        extra["misfit_tile_sizes"] = [edge]
        mirrored = _weighted_mean(t.correct(t.p, rho), t.k) - mean0
        extra["misfit_mirrored_correction_r2_per_s"] = mirrored
        se_spread = abs(mirrored)
        if abs(mirrored) > 0.005 * mean0:  # [D] as _headline._MISFIT_MATERIAL: 0.5 % of the mean rate
            warnings.append(f"headline: the voxels inside the tiles vary less than their noise predicts "
                            f"(spread {rho:.3f} +- {rho_se:.3f}): a misfit of the fat-water noise model; the "
                            "headline is not corrected for a spread, the interval is widened by the mirrored "
                            "correction")
    else:
        mean = _weighted_mean(p, t.k)
        lo_hi = [_weighted_mean(t.correct(t.p, float(np.clip(rho + d, -_RHO_MAX, _RHO_MAX))), t.k) - mean
                 for d in (-rho_se, rho_se)]
        se_spread = float(max(abs(v) for v in lo_hi))
        # the shape term: one more Gauss-Newton step with a log-normal spread from this estimate
        rho_alt, _se_alt, _k_alt, p_alt = estimate_spread(
            t, t.simulator(seed, replicates, _SHAPE_ALT), _SHAPE_ALT, start=(rho, rho_se, kappa, p), max_steps=1)
        shape_diff = _weighted_mean(p_alt, t.k) - mean
        se_shape = abs(shape_diff) / 2.0
        extra["rho_lognormal"] = rho_alt
    return p, {"warnings": warnings, "extra": extra, "unidentified": unidentified, "upper": upper,
               "se_spread": se_spread, "se_shape": se_shape, "shape_diff": shape_diff}


def gre_mixture_correction(image: Any, pooled: Any, *, noise_sigma: float, coils: int = 1, seed: int = 0,
                           replicates: "int | None" = None):
    """The fat-water tile-pooled headline corrected for the spread of R2* within its tiles.

    Parameters
    ----------
    image : MultiEchoImage
        Magnitude data of the fit.
    pooled : PooledR2
        The result of :func:`r2mri._gre.pooled_mean_r2star` (with its ``fw_tiles``).
    noise_sigma : float
        Noise SD per real/imaginary part of one channel.
    coils : int, default 1
        Channels combined by root-sum-of-squares.
    seed : int, default 0
        Seed of the simulated voxels (deterministic).
    replicates : int, optional
        Simulated copies of the ROI per evaluation of the statistic; default 2 below
        20,000 ROI voxels, else 1.

    Returns
    -------
    (PooledR2, MixtureCorrection)
        ``pooled`` with corrected tile rates and mean (``se_r2_per_s`` still the measurement
        SE; ``estimator = "tile-fw-mixture"``), and the correction with its own error
        (:class:`r2mri._headline.MixtureCorrection`; one tile edge, :data:`r2mri._gre.GRE_TILE`).

    Examples
    --------
    >>> import numpy as np, r2mri
    >>> from r2mri import _gre
    >>> from r2mri.fatwater import load_fat_spectrum, magnitude_signal
    >>> te = 0.0012 + 0.001 * np.arange(6)
    >>> y = magnitude_signal(load_fat_spectrum().basis(te, 1.5), te, 85.0, 15.0, 275.0)
    >>> img = r2mri.MultiEchoImage(np.broadcast_to(y, (8, 8, 1, 6)).copy(), te, field_strength_t=1.5)
    >>> fit = r2mri.fit(img, model="fatwater")
    >>> p = _gre.pooled_mean_r2star(img, fit, np.ones((8, 8, 1), bool), noise_sigma=0.01)
    >>> q, c = gre_mixture_correction(img, p, noise_sigma=0.01)
    >>> round(q.mean_r2_per_s, 1), q.estimator  # a uniform liver: no spread, nothing moves
    (275.0, 'tile-fw-mixture')
    """
    import copy

    from ._gre import BEYOND_RANGE_WARN_FRACTION, tiles_at_noise_floor
    from ._headline import MixtureCorrection

    t = _Tiles(image, pooled, noise_sigma, coils)
    edge = int(getattr(pooled, "tile", 4))
    if replicates is None:
        replicates = 2 if t.y.shape[0] < 20_000 else 1
    mean0 = _weighted_mean(t.p, t.k)
    rho, rho_se, _kappa, p = estimate_spread(t, t.simulator(seed, replicates, _SHAPE), _SHAPE)
    p, e = _error_terms(t, p, rho, rho_se, _kappa, edge, mean0, seed, replicates)
    warnings, extra, unidentified, upper = e["warnings"], e["extra"], e["unidentified"], e["upper"]
    se_spread, se_shape, shape_diff = e["se_spread"], e["se_shape"], e["shape_diff"]
    # tiles whose signal is at the noise floor from the second echo on (r2mri._gre.tiles_at_noise_floor; the
    # range warning names them): their R2* can be anything up to the fit's cap, so the interval reaches it
    floor_share = tiles_at_noise_floor(pooled)
    extra["fraction_tiles_at_noise_floor"] = floor_share
    if floor_share > BEYOND_RANGE_WARN_FRACTION:
        upper = max(upper, floor_share * max(t.r2_max - mean0, 0.0))
    out = copy.copy(pooled)
    out.tile_r2_per_s = p[:, 2].copy()
    out.mean_r2_per_s = _weighted_mean(p, t.k)
    out.estimator = ESTIMATOR
    corr = MixtureCorrection({edge: rho}, {edge: rho_se}, {}, out.mean_r2_per_s - mean0, se_spread, se_shape,
                             replicates, extra, unidentified, upper, warnings, shape_diff)
    return out, corr
