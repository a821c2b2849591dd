"""benchmarks.hetero's tile-mixture design, paired in one process: the simulated tile-fit bias matched on the
mean fit (main) and on the mean log fit (branch floor30), on the small livers of the grid (true liver mask).
Run: python benchmarks/results/floor30/hetero_paired.py LIC SNR COILS SEEDS [SD:SCALE,...] > log"""
import sys, time
import numpy as np
import r2mri._tile_bias_sim as tbs
from benchmarks.hetero import GEOMETRY
from r2mri.calibration import lic_from_r2

def main():
    lic, snr, coils, seeds = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    combos = [tuple(map(float, c.split(":"))) for c in (sys.argv[5] if len(sys.argv) > 5 else
              "0:1,0.2:1,0.2:4,0.2:8,0.4:1,0.4:4,0.4:8").split(",")]
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics
    from types import SimpleNamespace
    for sd, scale in combos:
        res = {m: [] for m in ("mean", "log")}
        cov = {m: 0 for m in res}
        for seed in range(seeds):
            ph = generate(lic=lic, snr=snr, coils=coils, seed=seed, texture_seed=seed, lic_log_sd=sd,
                          lic_correlation_voxels=scale, **GEOMETRY)
            mask = ph.truth.liver_mask
            sigma = float(ph.summary["noise_sigma"])
            fit = SimpleNamespace(r2_per_s=np.where(mask, 1.0, np.nan), status=np.zeros(mask.shape, np.uint8),
                                  options={"noise_sigma": sigma, "coils": coils})
            tr = ph.summary["lic_of_mean_r2_mg_per_g"]
            for m in res:
                tbs._II_MATCH = m
                st = liver_statistics(fit, mask, image=ph.image, estimator="tile-mixture", n_bootstrap=500, seed=seed)
                lo, hi = st.ci95_lic_mg_per_g
                res[m].append(100 * (st.headline_lic_mg_per_g / tr - 1))
                cov[m] += int(lo <= tr <= hi)
        d = np.array(res["log"]) - np.array(res["mean"])
        print(f"LIC {lic:g} SNR {snr:g} x{coils} SD {sd:g} scale {scale:g}: " + "; ".join(
            f"{m} {np.mean(v):+.2f} +- {np.std(v, ddof=1) / np.sqrt(len(v)):.2f} % cov {cov[m]}/{seeds}" for m, v in res.items())
            + f"; paired {d.mean():+.3f} +- {d.std(ddof=1) / np.sqrt(d.size):.3f} (max |d| {np.abs(d).max():.3f})", flush=True)

if __name__ == "__main__":
    main()
