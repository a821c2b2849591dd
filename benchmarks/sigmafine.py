"""The liver's own noise-sigma reading on finely textured livers (branch sigmafine; r2mri/_sigma_check.py).

Run: ``python -m benchmarks.sigmafine --part diag|grid|mismatch [--seeds N] [--out NAME]``
(repository root, ``NUMBA_NUM_THREADS=1``). Writes ``benchmarks/results/sigmafine-PART.jsonl``,
one line per liver, as it goes.

Each liver: :func:`r2mri.phantom.generate` with its own noise and texture seed
(:func:`benchmarks._seeds.cell_seeds`, tag "sigmafine"), the true liver mask, the TRUE sigma and
coils (the check's reading is compared with the truth, so the z here is the reading's own:
``(sigma_liver - sigma_true) / sigma_liver_se``, no air SE), the headline's tiles
(:func:`r2mri.stats.pooled_mean_r2`) and :func:`r2mri._sigma_check.sigma_check`.

``diag`` also reads sigma on the check's own samples (same tiles, echoes and outlier drop, at the
true sigma, no fixed point) with the subtracted ``A^2`` taken as (a) the tiles' fitted ``A_t^2``
(what the check does), (b) ``(mean_i A_i)^2`` over each tile's true noise-free voxel amplitudes,
(c) ``mean_i A_i^2`` (the exact ``E[M^2] - 2 n sigma^2``), (d) the per-voxel true ``A_i^2``:
(c) and (d) are unbiased, the gap (a) - (c) is the check's bias and (b) - (c) the part of it a
perfect tile fit would still leave (the within-tile variance of the amplitude).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SMALL = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)


def _seeds(cell, rep):
    from benchmarks._seeds import cell_seeds

    return cell_seeds("sigmafine", cell, rep)


def _liver(lic, snr, coils, rep, sd, width, ratio=1.0, size="full"):
    from r2mri.phantom import generate

    geom = {"full": {}, "small": SMALL, "big": dict(n_slices=17)}[size]
    s = _seeds((sd, width, lic, snr, coils, ratio), rep)
    ph = generate(lic=float(lic), snr=float(snr), coils=int(coils), seed=int(s.noise), texture_seed=int(s.texture),
                  lic_log_sd=float(sd), lic_correlation_voxels=float(width), body_noise_ratio=float(ratio), **geom)
    return ph, s


def _readings(ph, pooled, sigma, coils):
    """sigma read on the check's samples with four choices of the subtracted A^2 (module doc)."""
    from r2mri._sigma_check import _tile_signals, _liver_sigma, FLOOR_FRACTION, MIN_TILE_VOXELS, outlier_limit
    from r2mri.stats import _tile_fit

    y, t, ymean = _tile_signals(ph.image, pooled)
    te = np.asarray(ph.image.echo_times_s, float)
    nt = int(pooled.n_tiles)
    k = np.bincount(t, minlength=nt).astype(float)
    r2, s0, _, ok = _tile_fit(ymean, te, k, sigma, coils)
    a2 = (s0[:, None] * np.exp(-r2[:, None] * te[None, :])) ** 2
    inside = np.asarray(pooled.voxel_tile) >= 0
    a_true = np.asarray(ph.noise_free, float).reshape(-1, te.size)[np.asarray(pooled.voxel_index)[inside]]
    two_n = 2.0 * coils
    use = ok & (k > 0) & (k >= MIN_TILE_VOXELS)
    floor_echo = np.median(a2[use], axis=0) <= FLOOR_FRACTION * two_n * sigma * sigma
    vsel = (use[:, None] & floor_echo[None, :])[t]
    bad = vsel & (y > outlier_limit(np.sqrt(a2)[t], sigma, coils))
    if bad.any():
        vsel &= ~np.isin(t, np.unique(t[bad.any(axis=1)]))[:, None]
    ta = np.stack([np.bincount(t, weights=a_true[:, e], minlength=nt) for e in range(te.size)], 1) / np.maximum(
        k, 1)[:, None]
    ta2 = np.stack([np.bincount(t, weights=a_true[:, e] ** 2, minlength=nt) for e in range(te.size)], 1) / np.maximum(
        k, 1)[:, None]
    m2 = y * y
    out = {}
    for name, sub in (("fitted", a2[t]), ("tile_mean_A_sq", (ta ** 2)[t]), ("tile_mean_A2", ta2[t]),
                      ("voxel_A2", a_true ** 2)):
        out[name] = float(np.sqrt(np.mean((m2 - sub)[vsel]) / two_n) / sigma - 1.0)
    out["floor_echoes"] = [int(i) for i in np.flatnonzero(floor_echo)]
    out["n_samples"] = int(vsel.sum())
    out["a2_fitted_over_floor"] = float(np.mean(a2[t][vsel]) / (two_n * sigma ** 2))
    out["a2_true_over_floor"] = float(np.mean((a_true ** 2)[vsel]) / (two_n * sigma ** 2))
    # the check's own function at the true sigma, one step (no fixed point)
    s1 = _liver_sigma(y, t, a2, k, ok & (k > 0), sigma, coils)
    out["check_one_step"] = float(s1[0] / sigma - 1.0) if s1[0] else None
    return out


DESIGNS = {"mean": dict(FLOOR_ESTIMATOR="mean"), "regress": dict(FLOOR_ESTIMATOR="regress"),
           "deep": dict(FLOOR_ESTIMATOR="mean", FLOOR_FRACTION=0.02),
           "deep_regress": dict(FLOOR_ESTIMATOR="regress", FLOOR_FRACTION=0.02),
           "mean_noallow": dict(FLOOR_ESTIMATOR="mean", A2_UNCERTAINTY=0.0)}


class _design:
    """Set the check module's design constants for one call (a benchmark's own switch)."""

    def __init__(self, name):
        self.new = DESIGNS[name]

    def __enter__(self):
        from r2mri import _sigma_check as m

        self.old = {k: getattr(m, k) for k in self.new}
        for k, v in self.new.items():
            setattr(m, k, v)

    def __exit__(self, *exc):
        from r2mri import _sigma_check as m

        for k, v in self.old.items():
            setattr(m, k, v)


def run_liver(lic, snr, coils, sd, width, ratio=1.0, size="full", *, rep, diag=False, designs=()):
    from r2mri.stats import pooled_mean_r2
    from r2mri._sigma_check import sigma_check

    t0 = time.time()
    ph, s = _liver(lic, snr, coils, rep, sd, width, ratio, size)
    sig_air = float(ph.summary["noise_sigma"])
    sig_liv = float(ph.summary.get("noise_sigma_liver_mean", sig_air))
    pooled = pooled_mean_r2(ph.image, ph.truth.liver_mask, noise_sigma=sig_air, coils=coils)
    if designs:
        row_d = {}
        for name in designs:
            with _design(name):
                cd = sigma_check(ph.image, pooled, sig_air, coils, None)
            row_d[name] = (dict(read_rel=cd.sigma_liver / sig_liv - 1.0, se_rel=cd.sigma_liver_se / sig_liv,
                                z_true=(cd.sigma_liver - sig_liv) / cd.sigma_liver_se, z_air=cd.z, status=cd.status,
                                gain=cd.feedback_gain)
                           if cd.sigma_liver else dict(status=cd.status, n_floor=cd.n_floor_samples))
    c = sigma_check(ph.image, pooled, sig_air, coils, None)
    row = dict(lic=lic, snr=snr, coils=coils, sd=sd, width=width, ratio=ratio, size=size, rep=rep,
               noise_seed=int(s.noise), texture_seed=int(s.texture), n_voxels=int(ph.truth.liver_mask.sum()),
               sigma_true_liver=sig_liv, sigma_air=sig_air, status=c.status,
               read_rel=(c.sigma_liver / sig_liv - 1.0) if c.sigma_liver else None,
               se_rel=(c.sigma_liver_se / sig_liv) if c.sigma_liver_se else None,
               z_true=((c.sigma_liver - sig_liv) / c.sigma_liver_se) if c.sigma_liver else None,
               z_air=c.z, n_floor=c.n_floor_samples, gain=c.feedback_gain, sens=c.sensitivity,
               shift=c.r2_shift_relative)
    if designs:
        row["designs"] = row_d
    if diag and c.sigma_liver:
        row["diag"] = _readings(ph, pooled, sig_air, coils)
    row["wall_s"] = time.time() - t0
    return row


def _cells(part):
    if part == "diag":
        return [(30, 20, 8, 0.4, 1, 1.0, "full"), (30, 20, 8, 0.0, 1, 1.0, "full"), (30, 20, 8, 0.4, 4, 1.0, "full"),
                (30, 20, 8, 0.2, 1, 1.0, "full"), (40, 20, 8, 0.4, 1, 1.0, "full"), (30, 20, 1, 0.4, 1, 1.0, "full"),
                (30, 50, 8, 0.4, 1, 1.0, "full"), (15, 20, 8, 0.4, 1, 1.0, "full"), (30, 20, 8, 0.4, 8, 1.0, "full")]
    if part == "grid":
        cells = []
        for lic in (7, 15, 30, 40):
            for snr in (20, 50):
                for coils in (1, 8):
                    for sd, w in ((0.0, 1), (0.2, 1), (0.4, 1), (0.4, 4), (0.4, 8)):
                        cells.append((lic, snr, coils, sd, w, 1.0, "full"))
        return cells
    if part == "designs":
        return [(30, 20, 8, 0.4, 1, 1.0, "full"), (30, 20, 8, 0.0, 1, 1.0, "full"), (40, 20, 8, 0.4, 1, 1.0, "full"),
                (30, 20, 8, 0.4, 4, 1.0, "full"), (30, 20, 8, 0.4, 1, 1.01, "full"), (30, 20, 8, 0.0, 1, 1.01, "full"),
                (40, 50, 8, 0.4, 1, 1.0, "full"), (40, 20, 1, 0.4, 1, 1.0, "full"), (30, 20, 8, 0.4, 1, 1.03, "full")]
    if part == "big":
        return [(30, 20, 8, sd, w, 1.0, "big") for sd, w in ((0.4, 1), (0.0, 1), (0.4, 4))]
    if part == "mismatch":
        return [(30, 20, 8, sd, w, r, "full") for sd, w in ((0.4, 1), (0.0, 1), (0.4, 4)) for r in (1.01, 1.03, 0.97)]
    raise ValueError(part)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="diag", choices=["diag", "designs", "grid", "big", "mismatch"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="results file stem (default sigmafine-PART)")
    ap.add_argument("--designs", default=None, help="comma-separated DESIGNS to compare on each liver")
    ap.add_argument("--cells", default=None, help="comma-separated indices of the part's cells")
    a = ap.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{a.out or 'sigmafine-' + a.part}.jsonl"
    cells = _cells(a.part)
    if a.cells:
        cells = [cells[int(i)] for i in a.cells.split(",")]
    with path.open("a") as fh:
        fh.write(json.dumps(dict(meta=dict(part=a.part, utc=time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                                           load=os.getloadavg()[0]))) + "\n")
        for cell in cells:
            for rep in range(a.first_seed, a.first_seed + a.seeds):
                row = run_liver(*cell, rep=rep, diag=a.part == "diag", designs=a.designs.split(",") if a.designs else ())
                line = json.dumps(row)
                print(line, flush=True)
                fh.write(line + "\n")
                fh.flush()


if __name__ == "__main__":
    main()
