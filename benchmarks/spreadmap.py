"""Issue 16: the within-tile spread that varies between tiles (r2mri/_spread_map.py), diagnosis.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.spreadmap [--spec NAME] [--lic 30] [--snr 20 50]
[--coils 8] [--seeds 1 2]`` (from the repository root; full-size livers, ~5-10 s each).

For each liver (``r2mri.phantom.generate(spec, ...)``, true liver mask) it prints the LIC
error of the headline (``mixture_corrected_mean_r2``) and of two oracles on the same tiles:
the phantom's true within-tile spread pooled per tile edge ("global", what the estimator
models) and each tile's own voxels' true spread ("per tile"); the tiles as fitted; the
outlier tiles and the empirical-Bayes ``tau^2`` the spread map used. If the per-tile oracle
is right and the global one is not, one pooled spread per edge is the culprit
(docs/statistics.md, "A spread that varies between tiles").
"""

from __future__ import annotations

import argparse


def one(spec, lic, snr, coils, seed):
    import r2mri._headline as H
    from r2mri.calibration import lic_from_r2
    from r2mri.phantom import generate
    from r2mri.stats import pooled_mean_r2

    from ._oracle import true_spread_oracle

    ph = generate(spec, lic=lic, snr=snr, coils=coils, seed=seed)
    sigma, mask = float(ph.summary["noise_sigma"]), ph.truth.liver_mask
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    pm, corr = H.mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils, seed=seed)
    o = true_spread_oracle(ph, pooled_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils), sigma, coils, seed)
    t, rho_true, mu_g, mu_p, mean = o.t, o.rho_true, o.mu_edge, o.mu_tile, o.mean

    def err(v):
        return 100 * (float(lic_from_r2(v)) / truth - 1)

    row = dict(spec=spec, lic=lic, snr=snr, coils=coils, seed=seed, estimate=err(pm.mean_r2_per_s),
               oracle_global=err(mean(mu_g)), oracle_per_tile=err(mean(mu_p)), as_fitted=err(mean(t.r2_app)),
               rho=corr.rho, rho_true=rho_true, spread_map=corr.extra.get("spread_map"))
    print(f"{spec} lic {lic:g} snr {snr:g} coils {coils} seed {seed}: estimate {row['estimate']:+.2f} % "
          f"oracle global {row['oracle_global']:+.2f} % per tile {row['oracle_per_tile']:+.2f} % "
          f"as fitted {row['as_fitted']:+.2f} % rho {({s: round(v, 4) for s, v in corr.rho.items()})} "
          f"true {({s: round(v, 4) for s, v in rho_true.items()})} map {row['spread_map']}", flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="heterogeneous-focal-1.5t")
    ap.add_argument("--lic", type=float, default=30.0)
    ap.add_argument("--snr", type=float, nargs="+", default=[20.0, 50.0])
    ap.add_argument("--coils", type=int, nargs="+", default=[8])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args(argv)
    return [one(a.spec, a.lic, snr, c, s) for snr in a.snr for c in a.coils for s in a.seeds]


if __name__ == "__main__":
    main()
