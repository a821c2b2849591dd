"""The fine S0 texture measurement (r2mri/_s0_texture.py) calibrated against its own leak of
iron texture, by the estimator's simulator: where the within-tile spread of R2 t is large.

Why (issue 16, branch s0combo): the per-exam measurement of fine S0 texture leaves out a tile
edge whose within-tile variance of R2 t at the last echo used exceeds 0.04
(``_s0_texture._R2T_VAR_MAX``): near the noise floor the log magnitude's response to the
amplitude is not linear, so a wide spread of voxel amplitudes in a tile reads as S0 texture.
That is the edge that carries the headline in a liver with fine iron texture (log-SD 0.4 over
1 voxel: R2 t variance 0.07-0.08 in the 8 x 8 tiles), so there the prior on kappa
(r2mri/_s0_shading.py) never learnt of fine S0 texture, rho took it and the headline read
high (+1.2 to +1.4 % at 7 mg/g, SNR 20, 8 channels, S0 log-SD 0.1 over 1 voxel, intervals
missed; benchmarks/s0_combo.py). At full size the leak was ~0.010 of var log S0 with 8
channels (no S0 texture: 0.0100 / 0.0096 +- 0.0013) and none with one (0.0017 / 0.0027 +-
0.0025), the texture on top of it (log-SD 0.1: 0.0088 in the truth) as measured: 0.020 / 8
channels, 0.010 / 0.009 one channel (benchmarks/results/s0_warn.jsonl, tag full4).

Method: simulated voxels in the same tiles, at the spread estimate's own state (tile rates
and S0 corrected for rho, R2 multipliers of relative variance rho in the estimator's shape,
S0 constant inside a tile, the known noise and channels), measured by the same
:func:`r2mri._s0_texture.exam_texture`; the simulated reading is the leak (and the
measurement's other biases) at this liver's state. The edge's reading minus it is the fine S0
texture, with both SEs; the edge then counts as measured (``usable``) and the check
(``prior_shift``, ``apply_correction``, the refit) proceeds as for any other edge.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CALIBRATE = True  # False: edges above the R2 t limit are left out, as before branch s0combo
_COPIES = 2  # [D, r2mri's choice] simulated copies of the ROI averaged (one copy's SE equals the data's)
_MODEL_ERROR = 0.3  # [D, r2mri's choice, branch s0fine30] the simulated leak's own model error (1 SE, fraction of the
# leak) in the calibrated reading's SE: full size, 7 mg/g, SNR 20, 8 ch, LIC log-SD 0.4 over 1 voxel, NO S0 texture, 6
# livers: calibrated reading +0.0026 +- 0.0004 (leak 0.0064-0.0083, residual/leak 0.16-0.59, mean 0.38); with S0
# log-SD 0.1, 2 livers: +0.0005 / +0.0016 over the truth (0.05 / 0.17); RMS over the 8 of 0.36, 0.30 once the
# readings' own SE (~0.2 of the leak) is taken out. Without it the check took ~1 % off such a liver with P ~0.1
# (z of the reading 1.8 +- 0.7). benchmarks/README.md "s0fine30"


def simulated_reading(t: Any, rho: dict, shape: str, seed: int, copies: int = _COPIES) -> dict:
    """The texture measurement on ``copies`` simulated copies of the ROI at the spread estimate's
    state: ``{edge (str): (s0_var, s0_var_se)}`` averaged over the copies (SE of the mean)."""
    from ._mixture import _draw_spread
    from ._s0_texture import exam_texture
    from ._spread_estimate import _ncchi_draw, _recorrect

    mu, s0 = t.r2_app.copy(), t.s0_app.copy()
    _recorrect(t, rho, mu, s0, shape)
    rt = np.maximum(t.rho_tiles({s: max(rho[s], 0.0) for s in t.sizes}), 0.0)[t.tile_of]
    rng = np.random.default_rng([int(seed), 0x5C0])
    got: dict = {}
    for _ in range(copies):
        g = _draw_spread(rt, rng.standard_normal(rt.size), shape)
        amp = s0[t.tile_of][:, None] * np.exp(-(mu[t.tile_of] * g)[:, None] * t.te[None, :])
        e = exam_texture(_ncchi_draw(amp, t.sigma, t.coils, rng), t.xyz, t.tile_of, t.sel_of, t.te, t.sigma, t.coils,
                         seed=seed)
        for k, m in e["by_tile_size"].items():
            got.setdefault(k, []).append((m["s0_var"], m["s0_var_se"]))
    return {k: (float(np.mean([a for a, _ in v])), float(np.sqrt(np.mean([b * b for _, b in v]) / len(v))))
            for k, v in got.items() if len(v) == copies}


def calibrate(tex: dict, t: Any, rho: dict, skip: set, shape: str, seed: int) -> dict:
    """``tex`` (:func:`r2mri._s0_texture.exam_texture`'s block) with each edge left out for its R2 t
    variance re-read as its reading minus the simulated one (``leak_s0_var``), SE in quadrature,
    and ``usable``; other edges as they were. Edges in ``skip`` (not corrected) are left alone."""
    if not (_CALIBRATE and tex.get("measurable")):
        return tex
    todo = [k for k, m in tex["by_tile_size"].items() if not m.get("usable", True) and int(k) not in skip]
    if not todo:
        return tex
    sim = simulated_reading(t, rho, shape, seed)
    for k in todo:
        m = tex["by_tile_size"][k]
        if k not in sim or not np.isfinite(m["s0_var_se"]):
            continue
        leak, leak_se = sim[k]
        m.update(s0_var_measured=m["s0_var"], leak_s0_var=leak, leak_s0_var_se=leak_se, s0_var=m["s0_var"] - leak,
                 s0_var_se=float(np.sqrt(m["s0_var_se"] ** 2 + leak_se**2 + (_MODEL_ERROR * leak) ** 2)), usable=True,
                 leak_calibrated=True)
    return tex


def lower_extension(t: Any, rho: dict, skip: set, shape: str, tex: dict, z: float = 1.959963984540054) -> float:
    """Where the calibrated edges' texture was not taken by the headline (below the check's 3 SE), the
    headline's shift (R2, s^-1, >= 0; r2mri/_headline.py ``widen_interval`` adds it to the interval's
    lower side in quadrature) were kappa's prior to hold their texture at ``max(s0_var, 0) + z SE``: the
    measurement cannot rule that out, and the prior without it reads high by as much (7 mg/g, SNR 20, one channel, S0 log-SD 0.1 over 1 voxel:
    calibrated 0.0032 +- 0.0038, not taken, headline +1.30 %, interval missed; benchmarks/s0_combo.py).
    Edges not calibrated add nothing (their texture check is as before branch s0combo)."""
    from ._s0_texture import prior_shift

    by = {k: {**m, "s0_var": max(m["s0_var"], 0.0) + z * m["s0_var_se"]}
          for k, m in tex.get("by_tile_size", {}).items() if m.get("leak_calibrated") and int(k) not in skip}
    if not by:
        return 0.0
    sh = prior_shift(t, rho, skip, shape, {"by_tile_size": by})
    return float(max(-sh["shift_r2_per_s"], 0.0))
