"""Noise-free signal models of the phantom.

* ``SE`` (single-echo spin-echo series, one excitation per TE) and ``GRE``:
  ``S(TE) = S0 exp(-R TE)`` with R = R2 (SE) or R2* (GRE); optionally
  bi-exponential in the liver: ``S0 [(1 - f) exp(-R2 TE) + f exp(-R2_slow TE)]``.
* ``SE-CPMG`` (multi-echo spin-echo train): the extended phase graph echo
  amplitudes of :func:`r2mri.phantom.epg.epg_cpmg` (stimulated echoes included),
  with the refocusing angle ``refocusing_flip_deg * b1_scale``.
"""

from __future__ import annotations

import numpy as np

from ._anatomy import LABELS
from .epg import epg_cpmg

__all__ = ["decay"]


def decay(rate: np.ndarray, t1_s: np.ndarray, labels: np.ndarray, spec) -> np.ndarray:
    """Relative echo amplitudes, shape ``labels.shape + (n_echoes,)`` (0 in air)."""
    te = np.asarray(spec.echo_times_s, dtype=np.float64)
    tissue = labels != LABELS["air"]
    out = np.zeros(labels.shape + (te.size,), dtype=np.float64)
    r = rate[tissue]
    if spec.sequence == "SE-CPMG":
        # EPG once per distinct (R2, T1) pair: a uniform phantom has only a handful.
        pairs, inverse = np.unique(np.stack([r, t1_s[tissue]], axis=1), axis=0, return_inverse=True)
        amp = epg_cpmg(
            pairs[:, 0],
            te[0],
            te.size,
            refocusing_flip_deg=min(spec.refocusing_flip_deg * spec.b1_scale, 180.0),
            t1_s=pairs[:, 1],
            excitation_flip_deg=spec.excitation_flip_deg,
        )[inverse.reshape(-1)]
    else:
        amp = np.exp(-r[:, None] * te[None, :])
    if spec.decay == "biexp" and spec.biexp_slow_fraction > 0:
        f = spec.biexp_slow_fraction
        liver = (labels == LABELS["liver"])[tissue]
        slow = np.exp(-spec.biexp_slow_r2_per_s * te)
        if spec.sequence == "SE-CPMG":
            slow = epg_cpmg(
                [spec.biexp_slow_r2_per_s], te[0], te.size,
                refocusing_flip_deg=min(spec.refocusing_flip_deg * spec.b1_scale, 180.0),
                t1_s=float(np.median(t1_s[labels == LABELS["liver"]])) if liver.any() else 1.0,
                excitation_flip_deg=spec.excitation_flip_deg,
            )[0]
        amp[liver] = (1.0 - f) * amp[liver] + f * slow[None, :]
    out[tissue] = amp
    return out
