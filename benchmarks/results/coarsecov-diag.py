"""Diagnostic (branch coarsecov): where the ROI-sampling SE falls short on autogrid's coarse livers.

For a few livers of the cell sd 0.4, width 8, 1 mg/g, SNR 100: analyze once (its ROI and
candidate), then redraw the phantom's own texture (lic_map, other texture seeds) on the same
masks and compare Var(mean_Ltrue - mean_ROI), Var(mean_Lcand - mean_ROI) with the estimator
run on the noise-free true R2 (L = candidate without non-parenchyma).
"""
import dataclasses, json, sys
import numpy as np


def main(ks, draws, coils):
    import r2mri
    from r2mri import phantom
    from r2mri.phantom._iron import lic_map
    from r2mri.phantom._anatomy import grid_mm
    from r2mri.calibration import r2_from_lic
    from r2mri._roi_sampling import roi_sampling_se_r2
    for k in ks:
        ph = phantom.generate(lic=1.0, snr=100.0, coils=coils, seed=2000 + k, texture_seed=3000 + k,
                              lic_log_sd=0.4, lic_correlation_voxels=8.0)
        res = r2mri.analyze(ph.image)
        roi = res.roi.mask
        lc = res.roi.candidate & ~res.roi.non_parenchyma
        labels = ph.truth.labels
        lt = ph.truth.liver_mask
        sp = ph.spec
        x, y, z = grid_mm(sp.matrix, sp.pixel_mm, sp.n_slices, sp.slice_spacing_mm)
        blk = res.statistics.blocks["headline"].get("roi_sampling", {})
        rows = []
        for j in range(draws):
            s2 = dataclasses.replace(sp, texture_seed=900000 + 1000 * k + j)
            lic = lic_map(labels, x, y, z, s2)
            r2 = np.full(labels.shape, np.nan)
            r2[lt] = r2_from_lic(lic[lt], calibration=sp.calibration_name)
            r2[~lt] = np.nanmean(r2)  # vessels etc. never used
            d_full = r2[lt].mean() - r2[roi & lt].mean()
            d_cand = r2[lc & lt].mean() - r2[roi & lt].mean()
            e = roi_sampling_se_r2(r2, np.zeros(r2.shape), roi, lc)["se_r2_per_s"]
            rows.append((d_full, d_cand, e, r2[lt].mean()))
        a = np.array(rows)
        out = {"k": k, "coils": coils, "draws": draws, "roi_n": int(roi.sum()), "lcand_n": int(lc.sum()), "ltrue_n": int(lt.sum()),
               "mean_r2": float(a[:, 3].mean()),
               "sd_d_full": float(a[:, 0].std()), "mean_d_full": float(a[:, 0].mean()),
               "sd_d_cand": float(a[:, 1].std()), "mean_d_cand": float(a[:, 1].mean()),
               "rms_est": float(np.sqrt(np.mean(a[:, 2] ** 2))), "median_est": float(np.median(a[:, 2])),
               "cov_full": float(np.mean(np.abs(a[:, 0]) <= 1.96 * a[:, 2])),
               "cov_cand": float(np.mean(np.abs(a[:, 1]) <= 1.96 * a[:, 2])),
               "analyze_se": blk.get("se_r2_per_s"), "analyze_radius": blk.get("correlation_radius_voxels")}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main([int(v) for v in sys.argv[1].split(",")], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
