"""Bit-identity of the split3 refactor on the paths ``split_golden`` does not reach.

    PYTHONPATH=TREE python -m benchmarks.split3_ab OUT.json     # once per tree
    python -m benchmarks.split3_ab --compare A.json B.json       # list what differs

``split_golden`` runs the commands with their defaults. This runs
:func:`r2mri.stats.liver_statistics` on four small phantoms (uniform 7 mg/g, heterogeneous
focal, 30 mg/g at SNR 20 with voxels at the noise floor, 7 mg/g 8 channels with noise smoothed
so that its correlation is material) and on a liver whose noise is 3 % above the air's (the
sigma check's rerun of the headline) under every estimator, every ``sigma_check`` mode, the
texture-free interval, fixed tiles, no bootstrap, the voxel-mean fallbacks (no image, no
sigma), plus :func:`r2mri.stats.pooled_mean_r2` (fixed, adaptive, correlated noise,
custom levels and its refusals), :func:`r2mri._heterogeneity.liver_heterogeneity` on its
not-measurable and SE-outlier branches, and ``analyze`` with ``roi_options``. Each result
is written as JSON with every float in ``repr`` (17 digits), arrays hashed as bytes;
exceptions are recorded by type and message.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from types import SimpleNamespace

import numpy as np


def _plain(obj, depth: int = 0):
    """A JSON-able, exact image of ``obj`` (floats as repr, arrays as a hash of their bytes)."""
    if depth > 6:
        return repr(type(obj))
    if isinstance(obj, np.ndarray):
        return f"array{obj.shape}{obj.dtype}:" + hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()[:16]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return repr(float(obj))
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, depth + 1) for v in obj]
    if obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "to_dict"):
        return _plain(obj.to_dict(), depth + 1)
    if hasattr(obj, "__dict__"):
        return {k: _plain(v, depth + 1) for k, v in vars(obj).items() if not callable(v)}
    return re.sub(r" at 0x[0-9a-f]+", "", repr(obj))


def _run(out: dict, key: str, func, *args, **kwargs) -> None:
    try:
        res = func(*args, **kwargs)
        if hasattr(res, "blocks"):
            res = {"blocks": res.to_dict(), "head": [res.headline_lic_mg_per_g, res.headline_r2_per_s,
                                                     res.ci95_lic_mg_per_g, res.estimator, res.category.name]}
        elif hasattr(res, "mean_r2_per_s"):
            res = {"mean": res.mean_r2_per_s, "se": res.se_r2_per_s, "fields": vars(res)}
        out[key] = _plain(res)
    except Exception as exc:  # noqa: BLE001  (the refusals are part of the behaviour)
        out[key] = f"raised {type(exc).__name__}: {exc}"


def _livers() -> dict:
    import r2mri
    from r2mri.noise import estimate_noise
    from r2mri.phantom import generate
    from r2mri.roi import liver_roi

    geo = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=2)
    made = {
        "uniform7": generate(lic=7.0, seed=3, **geo),
        "focal": generate("heterogeneous-focal-1.5t", seed=4, **geo),
        "lic30_snr20": generate(lic=30.0, snr=20.0, seed=5, **geo),
        "corr8ch": generate(lic=7.0, coils=8, snr=50.0, seed=6, noise_smoothing_voxels=1.03, **geo),
    }
    livers = {}
    for name, ph in made.items():
        noise = estimate_noise(ph.image)
        fit = r2mri.fit(ph.image, noise_sigma=noise.sigma, coils=noise.coils, threads=1)
        roi = liver_roi(ph.image, fit)
        livers[name] = (ph, fit, roi, noise)
    return livers


def _stats_cases(out: dict, livers: dict) -> None:
    from r2mri.stats import liver_statistics

    variants = {
        "default": {}, "tile-ncchi": {"estimator": "tile-ncchi"}, "tile-mixture": {"estimator": "tile-mixture"},
        "voxel-mean": {"estimator": "voxel-mean"}, "widen": {"sigma_check": "widen"},
        "liver": {"sigma_check": "liver"}, "off": {"sigma_check": "off"}, "texture-free": {"interval": "texture-free"},
        "tile3": {"tile": 3}, "noboot": {"n_bootstrap": 0}, "seed7": {"seed": 7, "n_bootstrap": 300},
        "bad-estimator": {"estimator": "nope"}, "bad-check": {"sigma_check": "nope"},
    }
    for name, (ph, fit, roi, noise) in livers.items():
        corr = noise.spatial_correlation
        for v, kw in variants.items():
            _run(out, f"stats/{name}/{v}", liver_statistics, fit, roi, image=ph.image, noise_correlation=corr, **kw)
        _run(out, f"stats/{name}/no-image", liver_statistics, fit, roi)
        _run(out, f"stats/{name}/mask-only", liver_statistics, fit, roi.mask, image=ph.image)
        nosig = SimpleNamespace(r2_per_s=fit.r2_per_s, status=fit.status, r2_std_per_s=fit.r2_std_per_s, options={})
        _run(out, f"stats/{name}/no-sigma", liver_statistics, nosig, roi, image=ph.image)
        nostd = SimpleNamespace(r2_per_s=fit.r2_per_s, status=fit.status, options={})
        _run(out, f"stats/{name}/no-std", liver_statistics, nostd, roi)
    ph, fit, roi, noise = livers["lic30_snr20"]
    for mode in ("correct", "liver", "widen"):  # sigma 20 % low: the liver's sigma differs, the headline is rerun
        _run(out, f"stats/lic30_snr20/sigma-low/{mode}", liver_statistics, fit, roi, image=ph.image,
             noise_sigma=0.8 * noise.sigma, sigma_check=mode)
    ph, fit, roi, noise = livers["uniform7"]
    _run(out, "stats/empty-roi", liver_statistics, fit, np.zeros(roi.mask.shape, bool))
    _run(out, "stats/bad-shape", liver_statistics, fit, np.ones((3, 3, 3), bool))


def _rerun_cases(out: dict) -> None:
    """The sigma check's rerun of the headline at the liver's sigma: liver noise 3 % above the
    air's (tests/test_sigma_check.py's g-factor liver, 30 mg/g SNR 20 8 channels)."""
    import r2mri
    from r2mri.phantom import generate
    from r2mri.stats import liver_statistics

    ph = generate(seed=3, body_noise_ratio=1.03, matrix=(64, 64), pixel_mm=6.0, n_slices=3, lic=30.0, snr=20.0,
                  coils=8, texture_seed=3)
    noise = r2mri.estimate_noise(ph.image)
    fit = r2mri.fit(ph.image, mask=ph.truth.liver_mask, noise_sigma=noise.sigma, coils=noise.coils, threads=1)
    for mode in ("correct", "liver", "widen", "off"):
        _run(out, f"stats/gfactor/{mode}", liver_statistics, fit, ph.truth.liver_mask, image=ph.image,
             n_bootstrap=300, sigma_check=mode)


def _pooled_cases(out: dict, livers: dict) -> None:
    from r2mri._corr_tiles import material_rho
    from r2mri.stats import pooled_mean_r2

    for name, (ph, fit, roi, noise) in livers.items():
        rho = material_rho(noise.spatial_correlation)
        for tile in ("adaptive", 2, 3, 5):
            _run(out, f"pooled/{name}/{tile}", pooled_mean_r2, ph.image, roi.mask, noise_sigma=noise.sigma,
                 coils=noise.coils, tile=tile, noise_rho=rho)
        _run(out, f"pooled/{name}/levels-3-6", pooled_mean_r2, ph.image, roi.mask, noise_sigma=noise.sigma,
             coils=noise.coils, levels=(3, 6), target_rel_se=0.02)
        _run(out, f"pooled/{name}/single-level", pooled_mean_r2, ph.image, roi.mask, noise_sigma=noise.sigma,
             coils=noise.coils, levels=(4,))
    ph, fit, roi, noise = livers["uniform7"]
    for bad in ({"tile": 0}, {"tile": True}, {"levels": (2, 3)}, {"noise_sigma": -1.0}):
        kw = {"noise_sigma": noise.sigma, **bad}
        _run(out, f"pooled/bad/{bad}", pooled_mean_r2, ph.image, roi.mask, **kw)
    one = np.zeros(roi.mask.shape, bool)
    one[10, 10, 0] = True
    _run(out, "pooled/bad/one-voxel", pooled_mean_r2, ph.image, one, noise_sigma=noise.sigma, tile=3)


def _heterogeneity_cases(out: dict) -> None:
    from r2mri._heterogeneity import deconvolved_r2_distribution, liver_heterogeneity

    rng = np.random.default_rng(11)
    t = 100.0 * np.exp(rng.normal(0, 0.2, 5000))
    r = t + rng.normal(0, 10, t.size)
    se = np.full(t.size, 10.0)
    _run(out, "het/lognormal", liver_heterogeneity, r, se, headline_lic_mg_per_g=7.0)
    _run(out, "het/no-se", liver_heterogeneity, r, None, headline_lic_mg_per_g=7.0)
    _run(out, "het/few", liver_heterogeneity, r[:30], se[:30], headline_lic_mg_per_g=7.0)
    se_out = se.copy()
    se_out[:40] = 200.0  # 0.8 % SE outliers: measured, interval widened
    r_out = r.copy()
    r_out[:40] = 400.0
    _run(out, "het/outliers", liver_heterogeneity, r_out, se_out, headline_lic_mg_per_g=7.0)
    se_many = se.copy()
    se_many[:400] = 200.0  # 8 %: not measurable
    _run(out, "het/many-outliers", liver_heterogeneity, r, se_many, headline_lic_mg_per_g=7.0,
         tiles=(r[::9], se[::9] / 3, np.full(r[::9].size, 9.0)))
    _run(out, "het/contradiction", liver_heterogeneity, np.full(500, 100.0) + rng.normal(0, 1, 500),
         np.full(500, 10.0), headline_lic_mg_per_g=7.0)
    _run(out, "het/npmle", deconvolved_r2_distribution, r, se, n_grid=50, n_iter=60)


def _analyze_cases(out: dict, livers: dict) -> None:
    import r2mri

    ph = livers["focal"][0]
    for name, opts in {"default": None, "erode": {"erode_mm": 12.0}, "bad": {"nope": 1}}.items():
        try:
            res = r2mri.analyze(ph.image, roi_options=opts, threads=1)
            out[f"analyze/{name}"] = _plain({"settings": res.settings, "stats": res.statistics.to_dict(),
                                             "warnings": res.warnings})
        except Exception as exc:  # noqa: BLE001
            out[f"analyze/{name}"] = f"raised {type(exc).__name__}: {exc}"
    from r2mri.phantom import generate

    gre = generate("gre-1.5t-fat15-lic3.2", seed=8, matrix=(64, 64), pixel_mm=6.0, n_slices=2)
    res = r2mri.analyze(gre.image, threads=1)  # fat-water: the R2* tiles, range and PDFF blocks
    out["analyze/gre-fat"] = _plain({"stats": res.statistics.to_dict(), "warnings": res.warnings})


def compare(a: dict, b: dict) -> int:
    """Print the cases that differ; 0 when every case is identical."""
    keys = sorted(set(a) | set(b))
    bad = [k for k in keys if a.get(k) != b.get(k)]
    for k in bad:
        print(f"DIFFERS {k}")
    print(f"{len(keys) - len(bad)}/{len(keys)} cases identical")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--compare"]:
        with open(argv[1]) as fa, open(argv[2]) as fb:
            return compare(json.load(fa), json.load(fb))
    import r2mri

    out: dict = {}
    livers = _livers()
    _stats_cases(out, livers)
    _pooled_cases(out, livers)
    _rerun_cases(out)
    _heterogeneity_cases(out)
    _analyze_cases(out, livers)
    with open(argv[0], "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
    n_raised = sum(isinstance(v, str) and v.startswith("raised") for v in out.values())
    print(f"{len(out)} cases ({n_raised} raised) from {r2mri.__file__} into {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
