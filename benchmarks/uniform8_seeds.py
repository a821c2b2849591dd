"""Analyze's headline against the estimator on the true liver mask, seed by seed (issue 16, branch uniform8).

Run: ``NUMBA_NUM_THREADS=1 nice -n 5 python -m benchmarks.uniform8_seeds FILE[,FILE..]`` with
results files of ``benchmarks.uniform8`` or ``benchmarks.autogrid`` (their SD-0 1 mg/g SNR 20 8-ch
rows), or ``... uniform8_seeds --fresh K0:N`` for the noise seeds ``2000 + K0 .. 2000 + K0 + N - 1``
with no analyze run (writes ``uniform8_seeds-fresh.json``). For each liver the same phantom (noise seed ``2000 + k``) is re-made and the headline
estimator (``tile-ncchi``, adaptive tiles) run on the phantom's liver mask at the true sigma: the
error the noise of that seed gives without the automatic ROI, the noise estimate or any widening.
Writes ``benchmarks/results/uniform8_seeds.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    from r2mri import _headline, phantom

    args = argv if argv is not None else sys.argv[1:]
    name = "uniform8_seeds.json"
    if args[0] == "--fresh":
        k0, n = (int(v) for v in args[1].split(":"))
        rows = [{"k": k, "automatic": {"headline_error_pct": None}} for k in range(k0, k0 + n)]
        name = "uniform8_seeds-fresh.json"
    else:
        rows = [r for f in args[0].split(",") for r in json.loads(Path(f).read_text())["rows"]
                if r["cell"] == "sd0_w0_lic1_snr20_c8"]
    out = []
    for r in rows:
        k = r["k"]
        ph = phantom.generate(lic=1.0, snr=20.0, coils=8, seed=2000 + k, texture_seed=3000 + k)
        liver = ph.truth.liver_mask
        r2t = float(ph.truth.r2_per_s[liver].mean())
        p, _, _ = _headline.headline_pooled(ph.image, liver, noise_sigma=float(ph.summary["noise_sigma"]), coils=8,
                                            tile="adaptive", seed=0, estimator="tile-ncchi")
        a = r["automatic"]
        e_auto_r2 = r["terms"]["r2_error_pct"] if "terms" in r else None
        out.append({"k": k, "lic_error_auto_pct": a["headline_error_pct"], "r2_error_auto_pct": e_auto_r2,
                    "r2_error_true_mask_pct": 100 * (p.mean_r2_per_s / r2t - 1),
                    "se_true_mask_pct": 100 * p.se_r2_per_s / r2t})
        print(json.dumps(out[-1]), flush=True)
        (RESULTS / name).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
