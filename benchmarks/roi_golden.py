"""Golden record of the liver ROI, to check that a refactor of r2mri/roi.py changes no number.

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.roi_golden [--write | --check] [--only NAME,...]``
from the repository root. ``--write`` stores ``benchmarks/results/roi_golden.json``;
``--check`` (the default) recomputes every case and prints each field that differs
from the stored record (exit status 1 if any does).

Cases (chosen to pass through every path of :func:`r2mri.roi.liver_roi`): the
automatic proposal through :func:`r2mri.analyze` on the shipped phantoms
``ferriscan-1.5t-lic7``, ``heterogeneous-focal-1.5t``, ``heterogeneous-coarse-1.5t``
(parenchyma extension, patches), ``gre-1.5t-fat15-lic3.2`` (fat-water fit, R2* floor,
low-iron check), ``low-snr-1.5t-lic7`` (rule 3 a2), ``ferriscan-1.5t-lic40`` and
``ferriscan-1.5t-lic7`` at 30 mg/g, SNR 20, 8 channels, seed 1 (the high-iron
fallback), ``heterogeneous-coarse-1.5t`` at 30 mg/g, SNR 20 (dark rim, iron patches) and
``gre-1.5t-fat15-lic3.2`` at 1 mg/g (R2* floor at low iron); then, on the fit of ``ferriscan-1.5t-lic7``, :func:`r2mri.roi.liver_roi`
with the true liver + vessel outline as a user mask (default rules, and with
``erode_mm=0, vessel_margin_mm=8``), a seed, the same fit with the liver's voxels set
to MASKED (automatic proposal that fails its checks, fallback tried), and a bounding
box (via ``analyze``).

Each case records the SHA-256 of the ROI's mask, candidate, non-parenchyma and
not-converged masks, ``removed``, ``n_candidate``, the warnings, the options (JSON)
and, for the ``analyze`` cases, the headline LIC, its 95 % interval and the analysis'
warnings. Equality is bit for bit (floats by ``repr``). Not timed; not part of
``python -m benchmarks`` (about 3-6 min of CPU for all cases).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "roi_golden.json"

# name -> (phantom spec, generate overrides)
_AUTO = {
    "ferriscan-lic7": ("ferriscan-1.5t-lic7", {"seed": 0}),
    "hetero-focal": ("heterogeneous-focal-1.5t", {"seed": 0}),
    "hetero-coarse": ("heterogeneous-coarse-1.5t", {"seed": 0}),
    "gre-fat15-lic3.2": ("gre-1.5t-fat15-lic3.2", {"seed": 0}),
    "low-snr-lic7": ("low-snr-1.5t-lic7", {"seed": 0}),
    "ferriscan-lic40": ("ferriscan-1.5t-lic40", {"seed": 0}),
    "lic30-snr20-8ch": ("ferriscan-1.5t-lic7", {"seed": 1, "lic": 30.0, "snr": 20.0, "coils": 8}),
    "hetero-coarse-30-snr20": ("heterogeneous-coarse-1.5t", {"seed": 1, "lic": 30.0, "snr": 20.0}),
    "gre-fat15-lic1": ("gre-1.5t-fat15-lic3.2", {"seed": 1, "lic": 1.0}),
}


def _sha(a) -> str | None:
    if a is None:
        return None
    a = np.ascontiguousarray(np.asarray(a, dtype=bool))
    return hashlib.sha256(a.tobytes() + repr(a.shape).encode()).hexdigest()


def _jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else repr(o)))


def _roi_record(roi) -> dict:
    return {
        "method": roi.method, "automatic": roi.automatic, "n_candidate": roi.n_candidate,
        "mask": _sha(roi.mask), "candidate": _sha(roi.candidate), "non_parenchyma": _sha(roi.non_parenchyma),
        "not_converged": _sha(roi.not_converged), "removed": dict(roi.removed),
        "warnings": list(roi.warnings), "options": _jsonable(roi.options),
        "voxel_volume_ml": repr(roi.voxel_volume_ml),
    }


def _analysis_record(res) -> dict:
    st = res.statistics
    rec = _roi_record(res.roi)
    rec.update(headline=repr(st.headline_lic_mg_per_g), ci95=[repr(v) for v in st.ci95_lic_mg_per_g],
               analysis_warnings=list(res.warnings))
    return rec


def run(only: set[str] | None = None) -> dict:
    import r2mri
    from r2mri.phantom import LABELS, generate
    from r2mri.roi import liver_roi
    from r2mri.status import FitStatus

    out: dict[str, dict] = {}
    keep = None
    for name, (spec, kw) in _AUTO.items():
        need_keep = name == "ferriscan-lic7" and (only is None or only & {"mask", "mask-noerode", "seed", "no-liver", "bbox"})
        if only is not None and name not in only and not need_keep:
            continue
        kw = dict(kw)
        ph = generate(spec, **kw)
        res = r2mri.analyze(ph.image, threads=1)
        if only is None or name in only:
            out[name] = _analysis_record(res)
            print(name, out[name]["headline"], out[name]["removed"], flush=True)
        if name == "ferriscan-lic7":
            keep = (ph, res)
    if keep is None:  # --only without the cases on the ferriscan-lic7 fit
        return out
    ph, res = keep
    outline = ph.truth.liver_mask | (ph.truth.labels == LABELS["vessel"])
    extra = {
        "mask": dict(mask=outline),
        "mask-noerode": dict(mask=outline, erode_mm=0.0, vessel_margin_mm=8.0),
    }
    ii, jj, kk = np.nonzero(res.roi.mask)
    mid = len(ii) // 2
    extra["seed"] = dict(seed=(int(ii[mid]), int(jj[mid]), int(kk[mid])))
    # the liver masked out of the fit: the automatic proposal fails its checks, the fallback too
    no_liver = copy.copy(res.fit)
    no_liver.status = np.where(ph.truth.liver_mask, FitStatus.MASKED, res.fit.status).astype(res.fit.status.dtype)
    extra["no-liver"] = dict(fit=no_liver)
    for name, kw in extra.items():
        if only is None or name in only:
            kw = {"fit": res.fit, **kw}
            roi = liver_roi(res.image, calibration=res.calibration, **kw)
            out[name] = _roi_record(roi)
            print(name, out[name]["removed"], flush=True)
    if only is None or "bbox" in only:
        box = [[int(ii.min()), int(ii.max()) + 1], [int(jj.min()), int(jj.max()) + 1],
               [int(kk.min()), int(kk.max()) + 1]]
        res_b = r2mri.analyze(ph.image, threads=1, roi_options={"bbox": box})
        out["bbox"] = _analysis_record(res_b)
        print("bbox", out["bbox"]["headline"], out["bbox"]["removed"], flush=True)
    return out


def _diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
    elif a != b:
        yield f"{path}: stored {a!r} now {b!r}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="store the record instead of checking it")
    p.add_argument("--only", default=None, help="comma-separated case names")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    now = run(only)
    if args.write:
        RESULTS.parent.mkdir(exist_ok=True)
        old = json.loads(RESULTS.read_text()) if RESULTS.exists() and only else {}
        old.update(now)
        RESULTS.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
        print(f"wrote {RESULTS}")
        return 0
    stored = json.loads(RESULTS.read_text())
    bad = 0
    for name, rec in now.items():
        lines = list(_diff(stored.get(name, {}), rec, name))
        bad += len(lines)
        print(f"{name}: {'identical' if not lines else 'DIFFERS'}")
        for line in lines:
            print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
