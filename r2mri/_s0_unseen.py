"""Fine S0 texture where the per-exam check cannot see it: the interval's lower side reaches the
headline's shift were kappa's prior to hold the excess of the data's own kappa over it.

Why (issue 16, branch s0fine30): at 30 mg/g, SNR 20 only one echo is above the noise floor, so
r2mri/_s0_texture.py cannot measure fine S0 texture (three echoes needed) and the headline rests
on kappa's prior from the smooth S0 field (r2mri/_s0_shading.py), which a texture at the voxel
scale does not reach: rho then takes the missing S0 variance and the headline reads high. A full-
size liver with LIC log-SD 0.4 and S0 log-SD 0.1, both over 1 voxel (8 channels), read +3.25 %
with its 95 % interval missing the truth (benchmarks/s0_combo.py; benchmarks/README.md,
"s0fine30"). The data's own kappa (the prior-free joint Gauss-Newton solution one step from the
estimate's state, r2mri/_kappa_guard.py ``data_kappa``) sees the texture, but on livers with
textured LIC it also reads the joint fit's ridge bias (rho low, kappa high): as a correction of
the headline it was measured and not shipped (branch s0guard). Here it only widens the
interval's lower side, where the truth lies if the excess is texture, and the headline stays.

Designs (``_MODE``): ``"off"`` (before branch s0fine30), ``"record"`` (the block computed, the
interval as before: benchmarks/s0fine30.py), ``"conflict"`` (an edge whose data kappa
lies more than ``_Z`` combined SEs above the prior, with the data's SE at most
``_kappa_guard._SE_MAX``, reaches the shift at that excess), ``"reach"`` (every edge reaches the
shift at ``max(excess, 0) + 1.96 SE``: what the data cannot rule out).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _kappa_guard

_MODE = "reach"  # [r2mri's choice] full size, 30 mg/g, SNR 20, LIC log-SD 0.4 and S0 log-SD 0.1 over 1 voxel, 1 and
# 8 ch: 8/8 intervals held the truth (off 1/8, conflict 3/8, the excess alone 6/8, + 1 SE 7/8); cost: the lower side
# ~1.4 -> ~2.7 % of LIC on the same livers without S0 texture (benchmarks/README.md "s0fine30")
_Z = 3.0  # [D, r2mri's choice] as r2mri/_kappa_guard.py's one-sided conflict test (_GUARD_Z)
_Z95 = 1.959963984540054


def excess_by_edge(t: Any, skip: set) -> dict:
    """Per tile edge (str) not in ``skip``: the data's kappa, the prior's, their SEs, the excess
    (data minus prior) and its z (combined SE)."""
    out: dict = {}
    if not t.kappa_prior:
        return out
    for s in t.sizes:
        if s in skip or s not in t.kappa_data or s not in t.kappa_prior:
            continue
        kd, kd_se = t.kappa_data[s]
        pm, pse = float(t.kappa_prior[s]), float(t.kappa_se[s])
        se = float(np.hypot(pse, kd_se))
        if not (np.isfinite(kd) and np.isfinite(se) and se > 0):
            continue
        out[str(int(s))] = {"kappa_data": float(kd), "kappa_data_se": float(kd_se), "kappa_prior": pm,
                            "kappa_prior_se": pse, "excess": float(kd - pm), "z": float((kd - pm) / se), "se": se}
    return out


def _texture(by: dict, mode: str) -> dict:
    """The hypothetical texture per edge for :func:`r2mri._s0_texture.prior_shift` under ``mode``."""
    tex = {}
    for k, m in by.items():
        if mode == "conflict" and m["z"] > _Z and m["kappa_data_se"] <= _kappa_guard._SE_MAX:
            v = m["excess"]
        elif mode == "reach":
            v = max(m["excess"], 0.0) + _Z95 * m["se"]
        else:
            continue
        tex[k] = {"s0_var": v, "s0_var_se": m["se"]}
    return {"by_tile_size": tex}


def lower_extension(t: Any, rho: dict, skip: set, shape: str, block: dict, mode: "str | None" = None) -> float:
    """The headline's shift (R2, s^-1, >= 0) were kappa's prior mean raised by the data's excess
    (``_MODE``), for r2mri/_headline.py ``widen_interval``'s lower side (in quadrature). ``block``
    (the texture check's, not measurable) gets ``unseen``: the per-edge excess and each design's
    extension."""
    from ._s0_texture import prior_shift

    mode = _MODE if mode is None else mode
    by = excess_by_edge(t, skip)
    ext, per = {}, {}
    for m in ("conflict", "reach"):
        tex = _texture(by, m)
        if tex["by_tile_size"]:
            sh = prior_shift(t, rho, skip, shape, tex)
            per.update(sh["r2_per_kappa_by_tile_size"])
        ext[m] = float(max(-sh["shift_r2_per_s"], 0.0)) if tex["by_tile_size"] else 0.0
    block["unseen"] = {"by_tile_size": by, "extension_r2_per_s": ext, "mode": mode, "r2_per_kappa_by_tile_size": per}
    return ext.get(mode, 0.0)


def warning(block: "dict | None", mean_r2_per_s: float) -> list:
    """The report's line (a list of 0 or 1) where the data's kappa lies more than ``_Z`` combined SEs
    above the prior on an edge the check could not measure: the texture is then likely, not only
    possible, and the headline may read high by the shift at the excess (R2 percent).

    Examples
    --------
    >>> b = {"echoes_above_floor": 1, "unseen": {"by_tile_size": {"8": {"z": 4.0}},
    ...      "extension_r2_per_s": {"conflict": 3.0, "reach": 5.0}}}
    >>> warning(b, 240.0)[0][:44]
    'headline: the liver signal may be more textu'
    >>> warning({**b, "unseen": {**b["unseen"], "by_tile_size": {"8": {"z": 2.0}}}}, 240.0)
    []
    """
    un = (block or {}).get("unseen") or {}
    if not any(m["z"] > _Z for m in un.get("by_tile_size", {}).values()) or not mean_r2_per_s > 0:
        return []
    pct = 100.0 * un.get("extension_r2_per_s", {}).get("conflict", 0.0) / mean_r2_per_s
    return [f"headline: the liver signal may be more textured at fine scale than the iron-spread correction assumes "
            f"(not measurable here: {block.get('echoes_above_floor', 0)} echo(es) above the noise floor); the mean R2 "
            f"may read ~{pct:.1f} % high, and the interval's lower end reaches further (r2mri/_s0_unseen.py)"]
