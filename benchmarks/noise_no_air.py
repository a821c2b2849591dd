"""Rates of the pure-noise background check and accuracy of ``auto`` on arrays without air.

Run: ``python -m benchmarks.noise_no_air [--quick]``. Prints the numbers quoted in
docs/fitting.md ("Arrays without air"): (1) false positives of the check (real
backgrounds rejected) on the air of every shipped phantom, on simulated pure noise and
(when ../shared is present) on the real Siemens 3 T series; (2) false negatives
(tissue accepted as background) and the outcome of ``r2mri.fit`` with ``model="auto"``
on interior liver blocks over LIC x SNR x block size, on air-free uniform GRE volumes
(the grid of benchmarks/gre_headline.py) with ``model="fatwater"`` and on air-free
uniform spin-echo volumes (sigma of ``estimate_noise``); (3) the noise-free ramp.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import r2mri
from r2mri import InputError
from r2mri._noise_check import background_check
from r2mri.phantom import generate, list_specs

LABEL_LIVER = 4


def false_positives(seeds) -> None:
    print("## background check on the air of the shipped phantoms (96 x 96 x 3, 4 mm)")
    n = rejected = 0
    etas, zs, zd, shares, ze = [], [], [], [], []
    for spec in list_specs():
        for seed in seeds:
            est = r2mri.estimate_noise(generate(spec, matrix=(96, 96), pixel_mm=4.0, n_slices=3, seed=seed).image)
            c = est.background_check
            n += 1
            rejected += est.method != "background"
            etas.append(c["von_neumann_ratio"])
            zs.append(c["z_serial"])
            zd.append(c["z_decay"])
            shares.append(c["echo_share"])
            ze.append(c["z_echo"])
    print(f"{rejected} of {n} rejected; von Neumann ratio {min(etas):.3f}..{max(etas):.3f}, "
          f"z_serial {min(zs):.2f}..{max(zs):.2f}, z_decay {min(zd):.2f}..{max(zd):.2f}, "
          f"echo_share {min(shares):.4f}..{max(shares):.4f}, z_echo {min(ze):.2f}..{max(ze):.2f}")
    for spec in list_specs():
        est = r2mri.estimate_noise(generate(spec, seed=0).image)
        c = est.background_check
        print(f"  full size {spec}: {est.method}, sigma {est.sigma:.3f}, eta {c['von_neumann_ratio']}, "
              f"z_serial {c['z_serial']}, z_decay {c['z_decay']}, echo_share {c['echo_share']}, "
              f"z_echo {c['z_echo']}")
    rng = np.random.default_rng(1)
    trials = 20000
    bad = 0
    ze = []
    for i in range(trials):
        coils = (1, 2, 4, 8)[i % 4]
        x = rng.normal(0, 1.0, (200 + 50 * (i % 7), 5, 2 * coils))
        c = background_check(np.sqrt((x * x).sum(-1)), 1.0, coils, 64)
        bad += not c["passed"]
        ze.append(c["z_echo"])
    print(f"simulated pure noise (200-500 voxels x 5 echoes, 1-8 coils): {bad} of {trials} rejected; "
          f"z_echo mean {np.mean(ze):.3f} SD {np.std(ze):.3f} max {np.max(ze):.2f}")
    siemens = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "mrbias-mse-siemens-3t" / "dicom"
    if siemens.is_dir():
        est = r2mri.estimate_noise(r2mri.load(siemens))
        c = est.background_check
        print(f"  real Siemens 3 T air: {est.method}, sigma {est.sigma:.3f}, eta {c['von_neumann_ratio']}, "
              f"relative_decay {c['relative_decay']}, echo_share {c['echo_share']}, z_echo {c['z_echo']}")


def gre_no_air() -> None:
    """Air-free uniform GRE volumes (the grid of benchmarks/gre_headline.py): is tissue taken
    for air, and what does the fat-water fit make of it."""
    from r2mri.fatwater import load_fat_spectrum, magnitude_signal

    print("## air-free uniform GRE volumes (24 x 24 x 2, SNR 50, 1 coil; grid of gre_headline)")
    cases = {1.5: 0.0012 + 0.001 * np.arange(6), 3.0: 0.00115 + 0.00115 * np.arange(12)}
    accepted = total = 0
    shares, pdff_err = [], []
    for b0, te in cases.items():
        basis = load_fat_spectrum().basis(te, b0)
        for i, pdff in enumerate((0, 5, 15, 30, 45)):
            for j, r2 in enumerate((30, 100, 200, 350, 500)):
                rng = np.random.default_rng(1000 * i + j)
                m = np.broadcast_to(magnitude_signal(basis, te, 100 - pdff, pdff, r2), (24, 24, 2, te.size))
                data = np.hypot(m + 2.0 * rng.standard_normal(m.shape), 2.0 * rng.standard_normal(m.shape))
                img = r2mri.MultiEchoImage(data, te, field_strength_t=b0, sequence="GRE")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fit = r2mri.fit(img, model="fatwater", threads=1)
                total += 1
                accepted += fit.options["noise_method"] == "background"
                shares.append(_candidate_check(data)["echo_share"])
                pdff_err.append(abs(float(np.nanmean(fit.extra["pdff_percent"])) - pdff))
    print(f"tissue accepted as background: {accepted} of {total}; echo_share of the candidates "
          f"{min(shares):.3f}..{max(shares):.3f}; worst |voxel-mean PDFF error| {max(pdff_err):.2f} points")


def decaying_air() -> None:
    """Simulated air whose noise energy falls 31 % over 32 echoes (as the real Siemens air)
    with n channels: where do the check's effect sizes stand as n grows."""
    print("## simulated decaying air (2000 voxels x 32 echoes, energy -31 % linearly)")
    rng = np.random.default_rng(0)
    level = np.sqrt(np.linspace(1.0, 0.69, 32))
    for n in (2, 8, 16, 24, 32, 48):
        x = rng.normal(0, 1.0, (2000, 32, 2 * n)) * level[None, :, None]
        v = np.sqrt((x * x).sum(-1))
        c = background_check(v, float(np.sqrt((v * v).mean() / (2 * n))), n, 64)
        print(f"  n {n}: {'passed' if c['passed'] else 'rejected'}, echo_share {c['echo_share']}, "
              f"eta {c['von_neumann_ratio']}, relative_decay {c['relative_decay']}")


def se_no_air() -> None:
    """Air-free uniform spin-echo volumes: which are taken for air, and how far off is sigma."""
    print("## air-free uniform spin-echo volumes (24 x 24 x 2, S0 100; 5 echoes 6-18 ms, 32 echoes 10-320 ms)")
    trains = {"5 echoes": np.array([6.0, 9.0, 12.0, 15.0, 18.0]) * 1e-3, "32 echoes": 0.01 * np.arange(1, 33)}
    accepted = total = 0
    ratios = []
    for name, te in trains.items():
        for r2 in (20, 50, 100, 200, 400, 800):
            for snr in (10, 20, 50, 100):
                for coils in (1, 4):
                    rng = np.random.default_rng(int(r2 * 10 + snr + coils))
                    sigma = 100.0 / snr
                    x = rng.normal(0, sigma, (24, 24, 2, te.size, 2 * coils))
                    x[..., 0] += 100.0 * np.exp(-r2 * te)
                    total += 1
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            est = r2mri.estimate_noise(np.sqrt((x * x).sum(-1)), echo_times_s=te)
                    except InputError:
                        continue
                    if est.method == "background":
                        accepted += 1
                        ratios.append(est.sigma / sigma)
                        print(f"  {name}, R2 {r2} s^-1, SNR {snr}, {coils} coil(s): background, "
                              f"sigma/true {est.sigma / sigma:.3f}")
    print(f"taken for background: {accepted} of {total}"
          + (f"; sigma/true {min(ratios):.3f}..{max(ratios):.3f}" if ratios else ""))


def _candidate_check(data):
    """The pure-noise check of the background candidate ``estimate_noise`` finds in ``data``."""
    from r2mri import _noise_estimate as ne

    sigma, n, _, _, _, _, sel = ne._background_estimate(data, 200)
    flat = data.reshape(-1, data.shape[-1])
    return background_check(flat[ne._even_subset(np.flatnonzero(sel), ne.CHECK_MAX_VOXELS)], sigma, n,
                            ne.MAX_COILS)


@functools.lru_cache(maxsize=4)
def _phantom(lic, snr, seed):
    return generate("ferriscan-1.5t-lic7", lic=lic, snr=snr, seed=seed)


def _block(ph, half):
    from scipy import ndimage

    z = ph.image.shape[2] // 2
    liver = ndimage.binary_erosion(ph.truth.labels == LABEL_LIVER, iterations=2)[:, :, z]
    xs, ys = np.nonzero(liver)
    cx, cy = int(np.median(xs)), int(np.median(ys))
    return (slice(cx - half, cx + half + 1), slice(cy - half, cy + half + 1), slice(z - 1, z + 2))


def tissue_blocks(lics, snrs, halves, seeds) -> None:
    print("## r2mri.fit(model='auto') on interior liver blocks (ferriscan 1.5 T, 4 coils)")
    print("| LIC | SNR | block | seed | check | method | sigma/true | coils | median R2/true | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    accepted = total = 0
    for lic in lics:
        for snr in snrs:
            for seed in seeds:
                ph = _phantom(lic, snr, seed)
                for half in halves:
                    blk = _block(ph, half)
                    arr = ph.image.data[blk]
                    truth = float(np.median(ph.truth.r2_per_s[blk]))
                    t0 = time.perf_counter()
                    total += 1
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            res = r2mri.fit(arr, ph.image.echo_times_s)
                    except InputError as exc:
                        dt = time.perf_counter() - t0
                        print(f"| {lic} | {snr} | {arr.shape[0]}^2x3 | {seed} | rejected | InputError "
                              f"({str(exc)[-60:]}) | | | | {dt:.1f} |")
                        continue
                    dt = time.perf_counter() - t0
                    est = res.options["noise_estimate"]
                    check = est.get("background_check") or {}
                    accepted += est["method"] == "background"
                    print(f"| {lic} | {snr} | {arr.shape[0]}^2x3 | {seed} | "
                          f"{'passed' if check.get('passed') else 'rejected'} | {est['method']} | "
                          f"{est['sigma'] / ph.summary['noise_sigma']:.3f} | {est['coils']} | "
                          f"{np.median(res.r2_per_s) / truth:.3f} | {dt:.1f} |")
    print(f"tissue accepted as background: {accepted} of {total}")


def noise_free() -> None:
    te = np.array([6.0, 9.0, 12.0, 15.0, 18.0]) * 1e-3
    r2 = np.linspace(5.0, 400.0, 1000)
    arr = (1000.0 * np.exp(-np.outer(r2, te))).astype(np.float32)
    res = r2mri.fit(arr, te)
    err = np.max(np.abs(res.r2_per_s / r2 - 1))
    print(f"## noise-free ramp R2 5-400 s^-1 (1000 voxels, float32): model {res.model}, "
          f"max relative R2 error {err:.1e}, {res.status_counts()}")


def main(argv=None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    noise_free()
    gre_no_air()
    se_no_air()
    decaying_air()
    false_positives(range(2) if quick else range(5))
    if quick:
        tissue_blocks((7.0, 30.0), (50.0,), (10,), (3,))
    else:
        tissue_blocks((0.5, 1.8, 3.2, 7.0, 15.0, 30.0, 40.0), (10.0, 20.0, 50.0, 100.0), (6, 10), (0, 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
