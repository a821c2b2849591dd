"""The automatic ROI on uniform livers: which organs it takes, by phantom label (issue 16).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.roi_organs [--lics 0.5,1,3,7,15,30,40]
[--seeds 1,2] [--snr 20,50] [--coils 1,8] [--check-unchanged] [--outline]`` from the repository root. Writes
``benchmarks/results/roi_organs.json`` and prints one line per run.

Each run: the full-size ``ferriscan-1.5t-lic7`` spec (256 x 256 x 11, 1.5 mm, FerriScan
TEs) with ``lic_mg_per_g``, ``snr`` and ``coils`` overridden, through
:func:`r2mri.analyze` (automatic ROI), as ``r2mri analyze`` runs it. Reported: the ROI's
voxels by phantom label (liver, vessel, spleen, viscera = ``soft_tissue``, muscle, fat,
bone), Dice of the ROI against the liver, headline vs truth (LIC of the mean liver R2)
and whether its 95 % interval holds it, and the ROI's self-check warnings. The labels
measure the ROI; the library never sees them. ``high_iron_fallback``: what the
fallback of :mod:`r2mri._roi_high_iron` did (absent: the first proposal passed its
checks). ``--check-unchanged`` runs :func:`r2mri.roi.liver_roi` a second time on the
same fit with the fallback switched off and records whether the ROI is identical
(``unchanged_without_fallback``); ``--outline`` adds the headline of the same fit
with the true liver + vessel outline as the mask (``outline``: the estimator's own
reading, to tell an ROI error from the estimator's). Accuracy, not speed (CPU seconds of
``analyze`` are recorded, under the load printed at the start); not part of
``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
_NAMES = ("liver", "vessel", "spleen", "soft_tissue", "muscle", "subcutaneous_fat", "bone", "air")


def _without_fallback(res) -> bool:
    """True when the ROI of ``res`` is identical with the high-iron fallback switched off."""
    from unittest import mock

    import r2mri._roi_proposal as proposal_mod
    import r2mri.roi as roi_mod
    from r2mri._roi_high_iron import HighIronProposal

    with mock.patch.object(proposal_mod, "high_iron_proposal", lambda *a, **k: HighIronProposal(None, [], {})):
        off = roi_mod.liver_roi(res.image, res.fit, calibration=res.calibration)
    return bool(np.array_equal(off.mask, res.roi.mask) and np.array_equal(off.candidate, res.roi.candidate))


def _outline(res, ph) -> dict:
    """Headline on the same fit with the true liver + vessel outline as a user mask: the
    estimator's own reading, to tell an ROI error from the estimator's."""
    import r2mri.roi as roi_mod
    from r2mri._roi_sampling import widen_for_roi_sampling
    from r2mri.phantom import LABELS
    from r2mri.stats import liver_statistics

    outline = ph.truth.liver_mask | (ph.truth.labels == LABELS["vessel"])
    roi = roi_mod.liver_roi(res.image, res.fit, mask=outline, calibration=res.calibration)
    st = liver_statistics(res.fit, roi, res.calibration, image=res.image)
    widen_for_roi_sampling(st, roi, res.fit, res.calibration)
    lo, hi = st.ci95_lic_mg_per_g
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    return {"headline": st.headline_lic_mg_per_g, "ci95": [lo, hi], "covers": bool(lo <= truth <= hi)}


def one(lic: float, snr: float, coils: int, seed: int, check_unchanged: bool = False, outline: bool = False) -> dict:
    import r2mri
    from r2mri.phantom import LABELS, generate

    ph = generate("ferriscan-1.5t-lic7", seed=seed, snr=snr, coils=coils, lic_mg_per_g=lic)
    t0 = time.process_time()
    res = r2mri.analyze(ph.image, threads=1)
    cpu = time.process_time() - t0
    lab, liver, m = ph.truth.labels, ph.truth.liver_mask, res.roi.mask
    st = res.statistics
    lo, hi = st.ci95_lic_mg_per_g
    truth = float(ph.summary["lic_of_mean_r2_mg_per_g"])
    return {"lic": lic, "snr": snr, "coils": coils, "seed": seed, "truth": truth,
            "headline": st.headline_lic_mg_per_g, "ci95": [lo, hi], "covers": bool(lo <= truth <= hi),
            "dice": 2 * float(np.count_nonzero(m & liver)) / float(m.sum() + liver.sum()),
            "roi_labels": {n: int(np.count_nonzero(m & (lab == LABELS[n]))) for n in _NAMES
                           if np.count_nonzero(m & (lab == LABELS[n]))},
            "roi_warnings": [w for w in res.roi.warnings if "WARNING" in w],
            "below_floor_pieces": res.roi.options.get("below_floor_pieces"), "cpu_s": cpu,
            "high_iron_fallback": {k: v for k, v in (res.roi.options.get("high_iron_fallback") or {}).items()
                                   if k != "first_proposal_warnings"} or None,
            **({"unchanged_without_fallback": _without_fallback(res)} if check_unchanged else {}),
            **({"outline": _outline(res, ph)} if outline else {})}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lics", default="0.5,1,3,7,15,30,40")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--snr", default="20,50")
    ap.add_argument("--coils", default="1,8")
    ap.add_argument("--check-unchanged", action="store_true")
    ap.add_argument("--outline", action="store_true", help="also the headline with the true outline as the mask")
    ap.add_argument("--out", default=str(RESULTS / "roi_organs.json"))
    a = ap.parse_args(argv)
    rows = []
    load = list(os.getloadavg())
    print(f"load average at start {load}", flush=True)
    for lic in (float(v) for v in a.lics.split(",")):
        for snr in (float(v) for v in a.snr.split(",")):
            for coils in (int(v) for v in a.coils.split(",")):
                for seed in (int(v) for v in a.seeds.split(",")):
                    r = one(lic, snr, coils, seed, a.check_unchanged, a.outline)
                    rows.append(r)
                    other = {k: v for k, v in r["roi_labels"].items() if k != "liver"}
                    print(f"LIC {lic:g} SNR {snr:g} {coils} ch seed {seed}: headline {r['headline']:.3f} "
                          f"[{r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}] covers {r['covers']} Dice {r['dice']:.3f} "
                          f"not liver {other} warnings {len(r['roi_warnings'])} fallback "
                          f"{(r['high_iron_fallback'] or {}).get('accepted')} "
                          f"unchanged {r.get('unchanged_without_fallback')}", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"load_avg_start": load, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
