"""Branch coarsecov: autogrid livers (benchmarks.autogrid's phantoms and indices) with the inputs of the
ROI-sampling SE dumped to npz, so SE designs can be compared offline on the same fits.

Run: NUMBA_NUM_THREADS=1 python benchmarks/results/coarsecov-dump.py CELLS LIVERS FIRST_INDEX OUTDIR
(CELLS as autogrid's indices, comma-separated). One json line per liver (autogrid's automatic row
plus the analyze roi_sampling block and the R2 interval before its widening).
"""
import json, os, sys, time
import numpy as np


def main(cells, livers, first, outdir):
    import r2mri
    from r2mri import phantom
    from benchmarks.autogrid import CELLS, NOISE_SEED0, TEXTURE_SEED0, cell_name, _automatic
    import r2mri._roi_sampling as rs
    todo = [CELLS[i] for i in cells]
    plan = [(cell, first + j * len(todo) + i) for j in range(livers) for i, cell in enumerate(todo)]
    captured = {}
    orig = rs.roi_sampling_se_r2

    def spy(r2, se, roi, liver):  # keep the inputs of analyze's own call
        captured.update(r2=np.asarray(r2, np.float32), se=None if se is None else np.asarray(se, np.float32),
                        roi=np.asarray(roi, bool), liver=np.asarray(liver, bool))
        return orig(r2, se, roi, liver)

    rs.roi_sampling_se_r2 = spy
    os.makedirs(outdir, exist_ok=True)
    for cell, k in plan:
        sd, w, lic, snr, coils = cell
        t0 = time.time()
        captured.clear()
        ph = phantom.generate(lic=lic, snr=snr, coils=coils, seed=NOISE_SEED0 + k, texture_seed=TEXTURE_SEED0 + k,
                              lic_log_sd=sd, lic_correlation_voxels=w if sd > 0 else 0.0)
        res = r2mri.analyze(ph.image)
        liver, r2t = ph.truth.liver_mask, ph.truth.r2_per_s
        truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
        row = {"cell": cell_name(cell), "k": k, "truth": truth, "automatic": _automatic(res, liver, r2t, truth)}
        head = res.statistics.blocks.get("headline", {})
        row["roi_sampling"] = head.get("roi_sampling")
        row["dark_liver"] = head.get("dark_liver") if "dark_liver" in head else None
        row["headline_keys"] = sorted(head.keys())
        row["r2_headline"] = res.statistics.blocks["r2_per_s"].get("headline_mean")
        row["r2_ci_after"] = res.statistics.blocks["r2_per_s"].get("headline_ci95")
        row["calibration"] = getattr(res.calibration, "name", str(res.calibration))
        row["wall_s"] = time.time() - t0
        np.savez_compressed(os.path.join(outdir, f"{row['cell']}_k{k}.npz"),
                            r2=captured["r2"], se=captured["se"] if captured.get("se") is not None else np.zeros(0),
                            roi=captured["roi"], liver=captured["liver"], liver_true=liver,
                            r2_true=r2t.astype(np.float32))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main([int(c) for c in sys.argv[1].split(",")], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
