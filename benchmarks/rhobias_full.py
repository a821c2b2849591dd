"""Issue 16, branches rhobias / kappa: kappa's prior from the S0 field against the joint (rho, kappa) fit on full-size livers.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.rhobias_full`` (from the repository root; printed).

``r2mri.phantom.generate`` defaults (256 x 256 x 11 at 1.5 mm), seed 1 (texture = noise =
simulator seed), true liver mask; uniform livers at SNR 50 from 0.5 to 40 mg/g with 1 and 8
channels (issue 16: bias < 0.5 %), and the 30 mg/g SD 0.4 width 4 livers at SNR 20 and 50.
Each liver's headline (``mixture_corrected_mean_r2``) with ``_KAPPA_FROM`` "joint" and "prior"
(branch kappa; on branch rhobias this compared the two-stage option, since removed), paired,
LIC error against ``lic_of_mean_r2_mg_per_g``, and the process time of each.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> int:
    import r2mri._headline as H
    import r2mri._spread_estimate as E
    from r2mri.calibration import lic_from_r2
    from r2mri.phantom import generate

    conds = [(lic, 50.0, c, 0.0, 1.0) for c in (1, 8) for lic in (0.5, 3.0, 7.0, 15.0, 30.0, 40.0)]
    conds += [(30.0, snr, c, 0.4, 4.0) for snr in (20.0, 50.0) for c in (1, 8)]
    for lic, snr, coils, sd, width in conds:
        ph = generate(lic=lic, snr=snr, coils=coils, seed=1, texture_seed=1, lic_log_sd=sd, lic_correlation_voxels=width)
        sigma, mask, tr = float(ph.summary["noise_sigma"]), ph.truth.liver_mask, ph.summary["lic_of_mean_r2_mg_per_g"]
        out = {}
        for two in (False, True):  # False: joint, True: prior
            E._KAPPA_FROM = "prior" if two else "joint"
            t0 = time.process_time()
            p, c = H.mixture_corrected_mean_r2(ph.image, mask, noise_sigma=sigma, coils=coils, seed=1)
            out[two] = (100 * (float(lic_from_r2(p.mean_r2_per_s)) / tr - 1), time.process_time() - t0,
                        {k: round(v, 5) for k, v in c.rho.items()})
        E._KAPPA_FROM = "prior"
        print(f"LIC {lic:g} SNR {snr:g} coils {coils} SD {sd:g} w {width:g}: joint {out[False][0]:+.3f} % "
              f"({out[False][1]:.1f} s, rho {out[False][2]}), two-stage {out[True][0]:+.3f} % ({out[True][1]:.1f} s, "
              f"rho {out[True][2]}), load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
