"""CPU of ``liver_statistics`` before / after branch mcseed (or mcout), in one process (issue 16).

Run: ``NUMBA_NUM_THREADS=1 python -m benchmarks.mc_seed_cpu [--livers focal,cell:0] [--n 3] [--branch mcout]`` from
the repository root. Prints the mean CPU time per call of each variant, interleaved, and the
ratio to the baseline, with the load average.

``before``: the code as it was in the costly parts, rebuilt here by wrapping: one simulated
copy of the ROI for the spread statistic above 20,000 voxels (2 below), and the measurement
SE of every tiling computed at once (the heterogeneity block's 2 x 2 and 3 x 3 tilings
included). ``after``: the library as it is (8 copies; the SE computed on first use). The
split-tile and bounded-SE rules of the branch cost nothing measurable and are in both. Livers
as in :mod:`benchmarks.mc_seed`. ``--branch mcout``: ``before`` is the outlier test as a step at 3 SE
without the near tiles' 32 copies (:func:`before_mcout`).
Speed, not accuracy; not part of ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import numpy as np

from .mc_seed import make_liver


@contextlib.contextmanager
def before():
    import r2mri._headline as hl
    import r2mri.stats as st

    orig_mix, orig_pool = hl.mixture_corrected_mean_r2, st.pooled_mean_r2

    def mix(image, mask, **k):
        n = int(np.count_nonzero(mask))  # the old rule counted the tiles' voxels; the ROI's is the same side of 20,000 here
        k.setdefault("replicates", 2 if n < 20_000 else 1)
        return orig_mix(image, mask, **k)

    def pool(*a, **k):
        p = orig_pool(*a, **k)
        _ = p.se_r2_per_s  # eager, as before
        return p

    hl.mixture_corrected_mean_r2, st.pooled_mean_r2 = mix, pool
    try:
        yield
    finally:
        hl.mixture_corrected_mean_r2, st.pooled_mean_r2 = orig_mix, orig_pool


@contextlib.contextmanager
def before_mcout():
    """The outlier test as before branch mcout: a step at 3 SE, no near tiles measured again."""
    import r2mri._spread_map as sm

    saved = sm._OUTLIER_RAMP, sm._NEAR_MARGIN
    sm._OUTLIER_RAMP, sm._NEAR_MARGIN = 1e-12, -1.0
    try:
        yield
    finally:
        sm._OUTLIER_RAMP, sm._NEAR_MARGIN = saved


def main(argv=None) -> int:
    from r2mri.stats import liver_statistics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--livers", default="focal,cell:0")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--branch", default="mcseed", choices=("mcseed", "mcout"),
                    help="the branch whose change is measured (its 'before' rebuilt by wrapping)")
    a = ap.parse_args(argv)
    base = before if a.branch == "mcseed" else before_mcout
    for name in a.livers.split(","):
        image, mask, fit, _truth, _c = make_liver(name)
        liver_statistics(fit, mask, image=image)  # warm-up (imports, numba caches)
        cpu = {"before": [], "after": []}
        load0 = os.getloadavg()[0]
        for i in range(a.n):
            for variant in ("before", "after"):
                ctx = base() if variant == "before" else contextlib.nullcontext()
                with ctx:
                    t = time.process_time()
                    liver_statistics(fit, mask, image=image, seed=i + 1)
                    cpu[variant].append(time.process_time() - t)
        b, f = np.mean(cpu["before"]), np.mean(cpu["after"])
        print(f"{name}: CPU per call before {b:.2f} s, after {f:.2f} s, after / before {f / b:.2f} "
              f"(n = {a.n} each, interleaved; load average {load0:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
