"""Headline mean liver R2 corrected for the within-tile spread of R2 (``"tile-mixture"``).

Why: the tile-pooled estimator (:func:`r2mri.stats.pooled_mean_r2`) averages the
magnitude of the voxels of a tile before one fit. When the voxels' R2 differ, the
average is a *mixture* of exponentials, which decays more slowly than the exponential
of the mean rate: for a tile whose R2 has mean ``mu`` and variance ``s^2`` the mean
signal is ``S0 exp(-mu t + s^2 t^2 / 2 - ...)`` (cumulant expansion), so the fitted rate
is ``mu - s^2 tau`` with ``tau`` of the order of the early echo times. On a log-normal
texture with SD 0.4 in log LIC varying from voxel to voxel the headline read -3 % at
7 mg/g and -11 to -16 % at 30 mg/g (benchmarks/hetero.py).

What (docs/statistics.md, section 2, "Heterogeneous livers"):

1. Tiles and their apparent ``(S0_t, R2_t)``: the adaptive quadtree of ``pooled_mean_r2``,
   less the tile fit's own first-order bias (Box 1971, :mod:`r2mri._tile_bias`): at 30 mg/g
   and SNR 20 an 8 x 8 tile reads +0.3 % (1 channel) to +0.8 % (8 channels) high. Both
   the term and the choice of the tiles too noisy for it (relative SE of R2 > 15 % at the
   tile's shrunk state: the liver's partial edge tiles, dark coil regions) are evaluated at
   the shrunk states; those tiles get their bias simulated instead, at states matched to
   their mean fit (:mod:`r2mri._tile_bias_sim`; left as fitted they read small livers +5 %
   high in LIC at 30 mg/g, SNR 20).
2. The relative variance inside the tiles of R2, ``rho``, and of S0, ``kappa``, for each
   tile edge, from the echo-wise dispersion of the voxels: per tile and echo the
   variance of ``M_i(TE) / mean_tile M(TE)``, pooled over the tiles of one edge, which
   grows as ``kappa + rho mu^2 TE^2`` plus the noise. The noise, the magnitude floor and
   the non-linearities come from simulated voxels (the tiles' corrected S0 and R2, a
   gamma-like spread, the known sigma and channels, common random numbers): Gauss-Newton
   steps of the method of simulated moments in ``(rho, kappa)``, at least two and then
   until rho moves by less than a quarter of its SE. The tiles' states are simulated with
   their fit noise shrunk out (:mod:`r2mri._sim_state`; the noisy states read rho 40 % high
   at 30 mg/g, SNR 20, 8 channels), and item 3's correction is computed at the shrunk
   apparent rates and added to each tile's own (it is convex in the rate). Only the echoes with median
   ``mu TE <= 2.5`` are used (later ones weigh the slow tail's shape).
3. Each tile's rate is corrected by inverting the mixture bias exactly as the tile
   fit sees it: ``E[mean M](t) = sum_q w_q ncchi_mean(S0 exp(-mu g_q t))`` with
   ``g_q`` the Gauss-Hermite nodes of the spread (mean 1), fitted with the same tile
   fit; ``mu`` and ``S0`` are iterated until the fit of the model mixture returns the
   observed tile. This carries the noise floor and the higher cumulants; a negative
   ``rho`` (noise) gives the mirrored correction, so a homogeneous liver is not biased by
   clipping. A tile of k voxels holds its own k voxels' spread, on average ``(k - 1) / k``
   of the between-voxel ``rho`` (2 x 2 tiles: 3/4; using the full rho over-corrected
   them by a third).
4. The shape of the spread: 5 echoes identify its variance, not its skewness. The
   estimate assumes a gamma (Wilson-Hilferty cube of a normal: positive, skewness about
   2 CV, between a normal's 0 and a log-normal's 3 CV; the R2 of a log-normal LIC through
   the St Pierre curve has 1.2 CV at 30 mg/g, 2.9 CV at 7, 3.8 CV at 1 mg/g for SD 0.4).
   A log-normal spread made the statistic read rho 25 % high at 30 mg/g with 8 channels
   (headline +4.5 %); a normal one is closer there but its left tail (rates near 0) makes
   the inversion run away at low SNR. The log-normal estimate is kept inside the interval.
5. The correction's own error for the interval: the sampling error of ``rho`` (tiles of
   the ROI and of the simulation) propagated through the correction (rho +- its SE, the
   larger change); a shape term, half the difference between the gamma and log-normal
   estimates (one more Gauss-Newton step with the log-normal simulation), and the
   interval always reaches the log-normal estimate.

6. A spread that varies between tiles (:mod:`r2mri._spread_map`): at the pooled estimate
   each tile's own spread is read from its own dispersion (one linearised step, its SE
   calibrated on a simulated copy of the ROI) and shrunk towards the edge's by empirical
   Bayes; an edge whose tiles are mostly noise (median reliability < 0.5) keeps the pooled
   value alone. Tiles whose own spread is far beyond a texture's (the edge of a spared or
   focal region) leave the pooled statistic and are fitted as two groups of voxels (unless
   the groups' fit SE exceeds the tile's rate: noise, not two populations). The
   pooled spread is then estimated again around that map. One pooled value over-corrected
   both: ``heterogeneous-focal-1.5t`` at 30 mg/g, 8 channels read +11.8 % (SNR 20) and
   +3.0 % (SNR 50).

A first version measured the spread from the dispersion of the voxel-wise fitted R2:
at 30 mg/g and SNR 50 their noise variance is five times the spread and skewed, and
``rho`` came out twice the truth (headline +11 to +21 %); the first echo's amplitude
has an SNR of 12 there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _s0_leak, _s0_texture, _s0_unseen
from ._mixture import _SHAPE, _SHAPE_ALT, _correct
from ._rho_bound import plausible_rho
from ._s0_texture import apply_correction, exam_texture, prior_shift, step_se
from ._spread_estimate import _RHO_MAX, _TileSet, _estimate_spread, _simulator, _tile_set
from ._spread_map import split_outlier_rates, tile_spread_map
from ._tile_bias_sim import fit_bias_warning
from .errors import InputError

__all__ = ["MixtureCorrection", "mixture_corrected_mean_r2"]

_Z95 = 1.959963984540054  # Phi^-1(0.975)
_RHO_SE_MAX = 0.025  # [D] SE of rho above which a tile edge's spread counts as not measured: its 95 %
# interval would be wider than +-0.05, the whole plausible range below
_RHO_PLAUSIBLE = 0.05  # [D] largest relative R2 variance inside tiles of the issue-16 grid (SD 0.4 in log
# LIC from voxel to voxel at 30 mg/g: 0.03-0.05 measured from the phantom truth); used as a bound only
_RHO_BOUND = "curve"  # the bound of a measured spread: "curve", the St Pierre curve's at the liver's own LIC, at
# least _RHO_PLAUSIBLE (r2mri/_rho_bound.py, branch s0combo); "fixed": _RHO_PLAUSIBLE everywhere (before). Full size,
# 7 mg/g, SNR 20, LIC SD 0.4 over 1 voxel, S0 log-SD 0.1 over 1 voxel: fixed -11.1 / -5.1 % (8 / 1 ch), curve +1.3 %
# (the S0 texture's over-read, taken by r2mri/_s0_leak.py); benchmarks/README.md "Fine LIC texture with fine S0 texture"
_RHO_NEGATIVE_SE = 2.0  # [D, r2mri's choice] a spread estimate this many SE below zero is a misfit, not
# noise (2.3 % of homogeneous livers by chance): those tiles are left uncorrected, the interval widened
_MC_SHARE = 0.1  # [D, issue 16's suggestion] largest Monte-Carlo SD of the spread term, as a share of the
# interval's SE, that the copies of the ROI below aim at
# Simulated copies of the ROI per evaluation of the spread statistic: a first pass with 2 below 20,000 ROI voxels,
# 1 above (as before branch mcseed), then, where the spread term's Monte-Carlo SD would exceed _MC_SHARE of the
# interval's SE (_replicates_needed), a second pass with more, up to _REPLICATES_MAX. One copy's sampling error
# equals the data's (the same voxels), so with one copy the headline moved with the statistics seed by about the
# spread term's own SE: full-size liver at 30 mg/g, SNR 20, 8 channels (benchmarks/mc_seed.py, liver 6, 6 seeds)
# mean R2 MC SD 0.73 / 0.35 s^-1 with 1 / 4 copies (1 / sqrt(copies)) against the interval's SE of ~1.6 s^-1.
# The simulation's error is inside rho's SE (r2mri/_spread_estimate.py, se_a), so inside the interval, either way.
# 8 copies in every liver cost 3.5x on heterogeneous-focal-1.5t, whose MC SD was already 0.03 of the SE
_REPLICATES_MAX = 8  # [D, r2mri's choice] at most: CPU of liver_statistics on that liver 2.5 / 4.3 / 7.1 / 11.6 s
# with 1 / 4 / 8 / 16 copies in every pass (load ~10), against 6.4 s before the measurement SE became lazy
# (r2mri/stats.py); with 8 the Monte-Carlo SD there is ~0.15 of the SE, not 0.1 (16 would double the CPU)
_SPLIT_SE_REL_MAX = 1.0  # [D, r2mri's choice] largest fit SE of a split tile's rate (its groups' Fisher SEs
# combined) relative to the rate for the split to stand. Beyond it the groups' fits ran off on noise: partial
# 18-20-voxel edge tiles of a 30 mg/g, SNR 20, 8-channel liver split into groups of 6-13 voxels read R2 ~1,000 s^-1
# with Fisher SEs of 2,500-29,000 s^-1 (plug-in artefacts, r2mri/_measurement_se.py), and 0.02 % of the ROI
# widened the interval's half-width from 2.6 to 10.9 % in LIC (benchmarks/mc_seed.py: liver 7 of that cell, at 2
# of 10 statistics seeds; liver 6 6.7 %, liver 2 5.8 % at one). Genuine splits (heterogeneous-focal-1.5t, 7 mg/g SNR 50 and 30 mg/g SNR 20): 0.02-0.32
_MISFIT_MATERIAL = 0.005  # [D, r2mri's choice] misfit tiles are reported as a warning only when the correction
# they were spared moves the mean R2 by more than 0.5 % (issue 16's bias bound for uniform livers): on a large
# uniform liver a spread of -8e-5 +- 2.5e-5 is "significant" yet moves the headline by 0.01 % (ferriscan-1.5t-lic7)


@dataclass
class MixtureCorrection:
    """What the within-tile spread correction did (report block ``headline.mixture``)."""

    rho: dict[int, float]
    rho_se: dict[int, float]
    gain: dict[int, float]
    correction_r2_per_s: float
    se_spread_r2_per_s: float
    se_shape_r2_per_s: float
    replicates: int
    extra: dict[str, Any] = field(default_factory=dict)
    #: tile edges whose spread could not be measured (SE of rho > _RHO_SE_MAX): not corrected
    unidentified: list[int] = field(default_factory=list)
    #: how far the interval's upper end must reach for those tiles (R2, s^-1)
    upper_r2_per_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    #: the headline with the other shape of the spread (log-normal) minus this one (R2, s^-1)
    shape_difference_r2_per_s: float = 0.0
    #: the tiles fitted as two groups (r2mri/_spread_map.py): their groups' fit noise and misassignment (s^-1)
    se_split_r2_per_s: float = 0.0

    @property
    def se_r2_per_s(self) -> float:
        """Standard error of the correction (spread, shape and split-tile terms in quadrature)."""
        return float(np.sqrt(self.se_spread_r2_per_s**2 + self.se_shape_r2_per_s**2 + self.se_split_r2_per_s**2))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rho_by_tile_size": {str(k): v for k, v in self.rho.items()},
            "rho_se_by_tile_size": {str(k): v for k, v in self.rho_se.items()},
            "correction_r2_per_s": self.correction_r2_per_s,
            "se_spread_r2_per_s": self.se_spread_r2_per_s,
            "se_shape_r2_per_s": self.se_shape_r2_per_s,
            "se_split_r2_per_s": self.se_split_r2_per_s,
            "replicates": self.replicates,
            "unidentified_tile_sizes": list(self.unidentified),
            "upper_extension_r2_per_s": self.upper_r2_per_s,
            "misfit_tile_sizes": list(self.extra.get("misfit_tile_sizes", [])),
            "misfit_mirrored_correction_r2_per_s": self.extra.get("misfit_mirrored_correction_r2_per_s", 0.0),
            "tile_fit_bias_r2_per_s": self.extra.get("tile_fit_bias_r2_per_s", 0.0),
            "tile_fit_bias_skipped_fraction": self.extra.get("tile_fit_bias_skipped_fraction", 0.0),
            "tile_fit_bias_simulated_r2_per_s": self.extra.get("tile_fit_bias_simulated_r2_per_s", 0.0),
            "shape_difference_r2_per_s": self.shape_difference_r2_per_s,
            "spread_map": self.extra.get("spread_map"),
            "s0_texture": self.extra.get("s0_texture"),
        }

def mixture_corrected_mean_r2(image: Any, mask: np.ndarray, *, noise_sigma: float, coils: int = 1,
                              tile: "int | str" = "adaptive", seed: int = 0, replicates: "int | None" = None,
                              n_steps: int = 6, noise_rho: "dict | None" = None):
    """Tile-pooled mean R2 corrected for the spread of R2 within the tiles.

    Parameters
    ----------
    image : MultiEchoImage
        Magnitude data (x, y, z, echo) and echo times.
    mask : ndarray of bool, shape (x, y, z)
        The liver ROI.
    noise_sigma : float
        Noise SD per real/imaginary part of one channel.
    coils : int, default 1
        Channels combined by root-sum-of-squares.
    tile : int or "adaptive", default "adaptive"
        Tiles of :func:`r2mri.stats.pooled_mean_r2`.
    seed : int, default 0
        Seed of the simulated voxels (results are deterministic).
    replicates : int, optional
        Simulated copies of the ROI per evaluation of the spread statistic; default: 2 below
        20,000 voxels, 1 above, then up to 8 where the spread term's Monte-Carlo SD would exceed a tenth of the interval's
        SE (``_replicates_needed``; the estimate is then made again with them).
    noise_rho : dict, optional
        In-plane noise correlation by lag (r2mri/_corr_tiles.py); None: independent voxels.

    Returns
    -------
    (PooledR2, MixtureCorrection)
        The pooled result with corrected tile rates and mean (``se_r2_per_s`` is the
        measurement SE only), and the correction with its standard error.

    Examples
    --------
    >>> import numpy as np
    >>> from r2mri import MultiEchoImage
    >>> te = np.array([6, 9, 12, 15, 18]) / 1e3
    >>> data = 1000 * np.exp(-100.0 * te) * np.ones((8, 8, 1, 5))
    >>> p, c = mixture_corrected_mean_r2(MultiEchoImage(data, te), np.ones((8, 8, 1), bool), noise_sigma=1.0)
    >>> abs(p.mean_r2_per_s - 100.0) < 0.5
    True
    """
    from .stats import pooled_mean_r2

    sigma, coils = float(noise_sigma), int(coils)
    pooled = pooled_mean_r2(image, mask, noise_sigma=sigma, coils=coils, tile=tile, noise_rho=noise_rho)
    t = _tile_set(image, pooled, sigma, coils, seed)
    if replicates is None:  # a first pass with few copies of the ROI; more where its Monte-Carlo error matters
        first = 2 if t.y.shape[0] < 20_000 else 1  # as before branch mcseed
        res = _spread_pass(t, seed, first, n_steps)
        # the interval's other terms: the larger of the measurement SE and the spread of the corrected tile
        # rates (what the bootstrap over tiles estimates), and the shape and split-tile terms
        w, r = t.k / t.k.sum(), res[4]
        se_tiles = float(np.sqrt(np.sum((w * (r - np.sum(w * r))) ** 2)))
        replicates = _replicates_needed(res[5], float(np.hypot(max(se_tiles, pooled.se_r2_per_s),
                                                               np.hypot(res[6] / 2, res[10]))), first)
        if replicates > first:
            res = _spread_pass(t, seed, replicates, n_steps)
    else:
        replicates = max(int(replicates), 1)
        res = _spread_pass(t, seed, replicates, n_steps)
    rho, rho_se, gain, mu, corrected, se_spread, shape_diff, upper, unidentified, misfit, se_split = res
    se_shape = abs(shape_diff) / 2
    se_spread = float(np.hypot(se_spread, t.fit_bias_sim_se))  # and the simulated fit bias's Monte Carlo SE
    # fine S0 texture the prior on kappa does not see (issue 16; r2mri/_s0_texture.py): measured in the tiles and,
    # where material, the headline moved as if the prior's mean held it, that step's SE in the interval
    # edges measured above the plausible bound stay in the check (branch s0combo): texture the prior missed is what
    # drives rho there (1 mg/g, 8 channels, S0 log-SD 0.1 over 1 voxel: rho 0.083 against 0.041 in the truth)
    skip = {s for s in unidentified if rho_se[s] > _RHO_SE_MAX} | set(misfit)
    s0_tex = _s0_texture_block(t, rho, skip, seed)
    delta = s0_tex.pop("_tile_delta", None) if s0_tex else None
    if delta is not None and apply_correction(s0_tex, float(np.sum(t.k * corrected) / t.k.sum())):
        if _s0_texture._REFIT:  # the measured texture in kappa's prior (mean and SD), the estimate made again
            for s in t.sizes:
                m = s0_tex["by_tile_size"].get(str(s))
                if m is not None and m.get("usable", True) and s in t.kappa_prior:
                    t.kappa_prior[s] += m["s0_var"]
                    t.kappa_se[s] = float(np.hypot(t.kappa_se[s], m["s0_var_se"]))
            res = _spread_pass(t, seed, replicates, n_steps)
            rho, rho_se, gain, mu, corrected, se_spread, shape_diff, upper, unidentified, misfit, se_split = res
            se_shape = abs(shape_diff) / 2
            se_spread = float(np.hypot(np.hypot(se_spread, t.fit_bias_sim_se), step_se(s0_tex)))
            s0_tex["refit"] = True
        else:
            corrected = corrected + delta
            se_spread = float(np.hypot(se_spread, step_se(s0_tex)))
            rho = {s: s0_tex["rho_moved_by_tile_size"].get(str(s), r) for s, r in rho.items()}
        s0_tex["applied"] = True
    elif s0_tex and s0_tex.get("measurable"):  # calibrated edges' texture not taken: the interval reaches it (s0combo)
        s0_tex["lower_extension_r2_per_s"] = _s0_leak.lower_extension(t, rho, skip | set(unidentified), _SHAPE, s0_tex)
    elif s0_tex and _s0_unseen._MODE != "off":  # not measurable: the data's kappa above the prior (s0fine30)
        s0_tex["lower_extension_r2_per_s"] = _s0_unseen.lower_extension(t, rho, skip | set(unidentified), _SHAPE, s0_tex)
    wsum = t.k.sum()
    mean = float(np.sum(t.k * corrected) / wsum)
    mean_app = float(np.sum(t.k * t.r2_app) / wsum) + t.fit_bias_r2  # the tiles as fitted
    if not np.isfinite(mean):
        raise InputError("mask: the within-tile spread correction failed (non-finite mean R2)")
    pooled.tile_r2_per_s = corrected
    pooled.mean_r2_per_s = mean
    warn = _s0_unseen.warning(s0_tex, mean) if s0_tex and not s0_tex.get("measurable") else []  # branch s0fine30
    if unidentified:
        frac = float(sum(t.k[t.sel_of[s]].sum() for s in unidentified) / wsum)
        noisy = any(rho_se[s] > _RHO_SE_MAX for s in unidentified)  # else measured, above the bound
        why = "could not be measured at this noise level" if noisy else "was measured above the largest plausible for this iron level"
        warn.append(f"headline: the spread of R2 inside the {'/'.join(str(s) for s in unidentified)}-voxel tiles "
                    f"({100 * frac:.0f} % of the ROI) {why}; those tiles are "
                    f"not corrected (a patchy liver reads low) and the interval's upper end includes the "
                    f"correction of a relative spread of {rho_bound(t):.3g} (or of the estimate, if larger)")
    # the mirrored correction the misfit tiles were spared (the interval covers it either way)
    misfit_r2 = float(sum(np.sum(t.k[t.sel_of[s]] * (mu[t.sel_of[s]] - t.r2_app[t.sel_of[s]])) for s in misfit)
                      / wsum)
    if misfit and abs(misfit_r2) > _MISFIT_MATERIAL * abs(mean):
        warn.append(f"headline: the spread of R2 inside the {'/'.join(str(s) for s in misfit)}-voxel tiles came "
                    f"out below zero by more than {_RHO_NEGATIVE_SE:g} standard errors (the mixture model does not "
                    "describe these data); those tiles are not corrected and the interval includes the difference")
    fb_warn = fit_bias_warning(t.fit_bias_r2, t.fit_bias_sim_r2, t.fit_bias_skipped, mean)  # r2mri/_tile_bias_sim.py
    warn += [fb_warn] if fb_warn else []
    corr = MixtureCorrection(rho, rho_se, gain, mean - mean_app, se_spread, se_shape, replicates,
                             {"mean_r2_uncorrected_per_s": mean_app, "mean_r2_shape_alternative_per_s": mean + shape_diff,
                              "misfit_tile_sizes": list(misfit), "misfit_mirrored_correction_r2_per_s": misfit_r2,
                              "tile_fit_bias_r2_per_s": t.fit_bias_r2,
                              "tile_fit_bias_skipped_fraction": t.fit_bias_skipped,
                              "tile_fit_bias_simulated_r2_per_s": t.fit_bias_sim_r2,
                              "spread_map": t.spread.to_dict() if t.spread is not None else None,
                              "s0_texture": s0_tex},
                             unidentified, max(upper, 0.0), warn, shape_difference_r2_per_s=shape_diff,
                             se_split_r2_per_s=se_split)
    return pooled, corr


def _s0_texture_block(t: _TileSet, rho: dict, skip: set, seed: int) -> "dict | None":
    """The liver's fine S0 texture in the estimator's tiles and the headline's shift were kappa's
    prior to see it (r2mri/_s0_texture.py); None where kappa had no prior (``_KAPPA_FROM``)."""
    if t.kappa_prior is None or t.xyz is None:
        return None
    tex = exam_texture(t.y, t.xyz, t.tile_of, t.sel_of, t.te, t.sigma, t.coils, seed=seed)
    tex = _s0_leak.calibrate(tex, t, rho, skip, _SHAPE, seed)  # edges with wide R2 t spread (branch s0combo)
    if tex["measurable"]:
        tex.update(prior_shift(t, rho, skip, _SHAPE, tex))
        v = [m["s0_var"] for m in tex["by_tile_size"].values() if m.get("usable", True)]
        tex["s0_log_sd"] = float(np.sqrt(max(float(np.max(v)), 0.0))) if v else 0.0
    return tex


def _spread_pass(t: _TileSet, seed: int, replicates: int, n_steps: int) -> tuple:
    """Items 2, 3, 5 and 6 of the module docstring with ``replicates`` simulated copies of the ROI:
    ``(rho, rho_se, gain, mu)`` and the outputs of :func:`_correction_and_errors`."""
    t.spread = None
    simulated = _simulator(t, seed, replicates, _SHAPE)
    rho, rho_se, gain, mu, state = _estimate_spread(t, simulated, n_steps, _SHAPE)
    # the spread's tile-to-tile part (r2mri/_spread_map.py); with it, the pooled spread again
    t.spread = tile_spread_map(t, simulated, state, replicates, seed)
    if t.spread is not None:
        rho, rho_se, gain, mu, state = _estimate_spread(t, simulated, n_steps, _SHAPE, start=state)
    # the shape is not identified by the data: one step of the same estimation with the other
    # shape (log-normal) from this estimate; half the difference is the shape term
    gain_k = dict(t.rho_per_kappa_mean)  # the main shape's sensitivity to kappa's prior (r2mri/_s0_texture.py)
    kappa_data = dict(t.kappa_data)  # the main shape's data kappa (r2mri/_s0_unseen.py)
    mu_alt = _estimate_spread(t, _simulator(t, seed, replicates, _SHAPE_ALT), 1, _SHAPE_ALT, start=state)[3]
    t.rho_per_kappa_mean, t.kappa_data = gain_k, kappa_data
    return (rho, rho_se, gain, mu) + _correction_and_errors(t, rho, rho_se, mu, mu_alt)


def _replicates_needed(se_spread: float, se_other: float, replicates: int) -> int:
    """Copies of the ROI for which the spread term's Monte-Carlo SD is at most ``_MC_SHARE`` of the
    interval's SE, within ``[replicates, _REPLICATES_MAX]``.

    With ``R`` copies the simulated statistic's sampling variance is ``1/R`` of the observed
    one's (the same voxels), and rho's SE holds both (r2mri/_spread_estimate.py), so the
    Monte-Carlo part of the spread term ``se_spread`` is ``se_spread / sqrt(R + 1)``.
    ``se_other``: the interval's other terms (the larger of the measurement SE and the SE of
    the voxel-weighted mean of the tile rates, as the bootstrap over tiles would read it;
    shape; split tiles).

    Examples
    --------
    >>> _replicates_needed(0.05, 1.0, 2), _replicates_needed(0.75, 0.85, 2)
    (2, 8)
    """
    se_ref = float(np.hypot(se_spread, se_other))
    if not (np.isfinite(se_ref) and se_ref > 0 and np.isfinite(se_spread)):
        return replicates
    need = (se_spread / (_MC_SHARE * se_ref)) ** 2 - 1.0
    return int(np.clip(np.ceil(need), replicates, max(_REPLICATES_MAX, replicates)))


def rho_bound(t: _TileSet) -> float:
    """The largest plausible within-tile spread of R2 for this liver (``_RHO_BOUND``)."""
    if _RHO_BOUND != "curve":
        return _RHO_PLAUSIBLE
    return plausible_rho(float(np.sum(t.k * t.r2_app) / t.k.sum()))


def _correction_and_errors(t: _TileSet, rho, rho_se, mu, mu_alt):
    """Corrected tile rates, the correction's SE (spread, shape), the upper extension for
    tile edges whose spread was not measurable, and those edges."""
    corrected = mu.copy()  # the last step's rates: the correction at the final rho
    shape_alt, hi, lo, up = (t.r2_app.copy() for _ in range(4))
    # not measured: too noisy, or more than 2 SE above the largest plausible spread (at 30
    # mg/g, SNR 15, one channel, outside the grid: rho 0.10 +- 0.02 would have read +340 %)
    bound = rho_bound(t)  # at the liver's own iron level (r2mri/_rho_bound.py, branch s0combo)
    unidentified = [s for s in t.sizes
                    if not (rho_se[s] <= _RHO_SE_MAX and rho[s] - _RHO_NEGATIVE_SE * rho_se[s] <= bound)]
    misfit: list[int] = []
    for s in t.sizes:
        sel = t.sel_of[s]
        r, e = rho[s], rho_se[s]
        r_ref, s_ref = t.ref_state()
        args = (r_ref[sel], s_ref[sel], t.k[sel], t.te, t.sigma, t.coils)
        off = t.r2_app[sel] - r_ref[sel]  # corrections at the shrunk rates, added to each tile's own
        if s in unidentified:
            # the spread is not measurable here: no correction, and the interval reaches up
            # to the correction of the largest plausible spread
            corrected[sel] = t.r2_app[sel]
            # measured but implausibly large: the interval reaches the estimate's correction
            r_up = max(bound, min(r, _RHO_MAX)) if e <= _RHO_SE_MAX else bound
            up[sel] = _correct(*args, r_up, _SHAPE)[0] + off
            continue
        if r + _RHO_NEGATIVE_SE * e < 0:
            # a spread (a variance) cannot be negative: this far below zero the mixture model
            # does not describe the data (seen at SNR 10, 8 channels, outside the validated
            # grid: -0.9 % with the mirrored correction). No correction, and the interval
            # reaches to the mirrored one on both sides.
            corrected[sel] = up[sel] = shape_alt[sel] = t.r2_app[sel]
            lo[sel] = mu[sel]
            hi[sel] = 2 * t.r2_app[sel] - mu[sel]
            misfit.append(s)
            continue
        up[sel] = corrected[sel]
        shape_alt[sel] = mu_alt[sel]
        r_hi, r_lo = (float(np.clip(r + e, -_RHO_MAX, _RHO_MAX)), float(np.clip(r - e, -_RHO_MAX, _RHO_MAX)))
        if t.spread is not None:  # a spread per tile: the edge's pooled part moved by its SE
            hi[sel] = _correct(*args, t.rho_tiles({**rho, s: r_hi}, s), _SHAPE)[0] + off
            lo[sel] = _correct(*args, t.rho_tiles({**rho, s: r_lo}, s), _SHAPE)[0] + off
        elif abs(r) > 2 * e:
            # the correction is nearly proportional to rho: scaled (saves two inversions per
            # edge; the SE is a first-order quantity anyway)
            d = corrected[sel] - t.r2_app[sel]
            hi[sel], lo[sel] = t.r2_app[sel] + d * r_hi / r, t.r2_app[sel] + d * r_lo / r
        else:
            hi[sel] = _correct(*args, r_hi, _SHAPE)[0] + off
            lo[sel] = _correct(*args, r_lo, _SHAPE)[0] + off
    unchanged = np.zeros(t.nt, bool)
    for s in unidentified:
        unchanged |= t.sel_of[s]
    shape_alt[unchanged] = hi[unchanged] = lo[unchanged] = t.r2_app[unchanged]
    se_split = 0.0
    if t.spread is not None and np.any(t.spread.outlier_w > 0):
        # tiles across a focal edge: fitted as two groups of voxels (r2mri/_spread_map.py), with their
        # own error terms: the spread moved by its SE, the other shape, the groups' fit noise and the
        # 2-means misassignment (docs/statistics.md, "Split tiles")
        out = np.flatnonzero(t.spread.outlier_w > 0)
        used = {s: not (s in unidentified or s in misfit) for s in t.sizes}
        rho_at = {s: (max(rho[s], 0.0) if used[s] else 0.0) for s in t.sizes}
        rho_pm = [{s: (float(np.clip(rho[s] + sg * rho_se[s], 0.0, _RHO_MAX)) if used[s] else 0.0)
                   for s in t.sizes} for sg in (1.0, -1.0)]
        v = split_outlier_rates(t, out, rho_at, *rho_pm)
        # a tile that could not be refitted keeps its own, and so does one whose groups' fit noise is larger
        # than its rate: the split carries no information on the tile's rate there (module docstring, item 6)
        ok = np.isfinite(v["rate"]) & (v["se_fit"] <= _SPLIT_SE_REL_MAX * np.abs(v["rate"]))
        # a tile near the outlier test is split in the share of its outlier weight (r2mri/_spread_map.py,
        # outlier_weight; a switch before branch mcout), fitted whole in the rest
        wo = t.spread.outlier_w[out]
        for arr, key in ((corrected, "rate"), (hi, "hi"), (lo, "lo"), (shape_alt, "alt"), (up, "rate")):
            arr[out] = np.where(ok, arr[out] + wo * (v[key] - arr[out]), arr[out])
        kk = (t.k[out] * wo)[ok]
        # fit noise: tiles independent (quadrature); misassignment: one sign at worst (added linearly)
        se_split = float(np.hypot(np.sqrt(np.sum((kk * v["se_fit"][ok]) ** 2)), np.sum(kk * v["mis"][ok]))
                         / t.k.sum())
    wsum = t.k.sum()

    def mean_of(v):
        return float(np.sum(t.k * v) / wsum)

    mean = mean_of(corrected)
    # both sides (one may sit on the rho bound): the larger change is the SE
    se_spread = max(abs(mean_of(hi) - mean), abs(mean_of(lo) - mean))
    return corrected, se_spread, mean_of(shape_alt) - mean, mean_of(up) - mean, unidentified, misfit, se_split


#: Estimators of the mean liver R2 that pool tiles (``liver_statistics(estimator=...)``).
POOLED_ESTIMATORS = ("tile-mixture", "tile-ncchi")


def headline_pooled(image: Any, mask: np.ndarray, *, noise_sigma: float, coils: int, tile: "int | str",
                    seed: int, estimator: str, noise_rho: "dict | None" = None):
    """The pooled headline of ``liver_statistics``: ``(PooledR2, MixtureCorrection or None, name)``.

    ``estimator="auto"`` or ``"tile-mixture"``: tiles corrected for their within-tile
    spread (:func:`mixture_corrected_mean_r2`); ``"tile-ncchi"``: the tiles as fitted.
    """
    from .stats import pooled_mean_r2

    if estimator == "tile-ncchi":
        pooled, corr, name = pooled_mean_r2(image, mask, noise_sigma=noise_sigma, coils=coils, tile=tile,
                                            noise_rho=noise_rho), None, "tile-ncchi"
    else:
        pooled, corr = mixture_corrected_mean_r2(image, mask, noise_sigma=noise_sigma, coils=coils, tile=tile,
                                                 seed=seed, noise_rho=noise_rho)
        name = "tile-mixture"
    pooled.estimator = name  # type: ignore[attr-defined]  # as r2mri/_gre.py names its pooled result
    return pooled, corr, name


def widen_interval(lo: float, hi: float, mean: float, corr: "MixtureCorrection | None") -> tuple[float, float]:
    """Add the correction's own standard error to each side of a 95 % interval, in quadrature,
    and the bound of the tiles whose spread was not measurable to the upper side."""
    if corr is None:
        return lo, hi
    if np.isfinite(corr.se_r2_per_s) and corr.se_r2_per_s > 0:
        extra = _Z95 * corr.se_r2_per_s
        lo, hi = mean - float(np.hypot(mean - lo, extra)), mean + float(np.hypot(hi - mean, extra))
    # the other shape's headline lies inside the interval (its difference is not a random error)
    d = corr.shape_difference_r2_per_s
    if np.isfinite(d):
        lo, hi = min(lo, mean + d), max(hi, mean + d)
    # fine S0 texture the check measured but did not take (r2mri/_s0_leak.py): its 95 % reach, lower side, in quadrature
    lo = mean - float(np.hypot(mean - lo, (corr.extra.get("s0_texture") or {}).get("lower_extension_r2_per_s", 0.0)))
    # tiles whose spread was not measurable: a bound, added in full to the upper side
    return lo, hi + corr.upper_r2_per_s
