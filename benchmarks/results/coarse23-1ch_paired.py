"""Branch coarse23: the hole fill after the rim join at SNR 20, ONE channel (coarse 30 mg/g
liver), paired in one process: each liver fitted once (benchmarks.coarse30._fit), then
benchmarks.coarse30._row with fill_joined_holes replaced by a no-op (before) and as shipped.
Run from the repository root: NUMBA_NUM_THREADS=1 PYTHONPATH=. python <this> TEXTURES NOISE_SEED
"""
import sys

import r2mri._roi_extend as E
from benchmarks import coarse30

_real = E.fill_joined_holes
for t in [int(v) for v in sys.argv[1].split(",")]:
    d = coarse30._fit(20.0, 1, t, int(sys.argv[2]), None, False)
    E.fill_joined_holes = lambda before, joined: (joined, 0)
    a = coarse30._row(d, None)
    E.fill_joined_holes = _real
    b = coarse30._row(d, None)
    print(f"SNR 20 x1 tex {t} noise {sys.argv[2]}: {a['headline_error_pct']:+.2f} -> {b['headline_error_pct']:+.2f} % "
          f"(paired {b['headline_error_pct'] - a['headline_error_pct']:+.2f}), cover {a['covers']:d} -> {b['covers']:d}, "
          f"sel {a['pool_truth_error_pct']:+.2f} -> {b['pool_truth_error_pct']:+.2f}, non-liver "
          f"{a['non_liver_voxels_in_roi']} -> {b['non_liver_voxels_in_roi']}, vessels {a['vessel_voxels_in_roi']} -> "
          f"{b['vessel_voxels_in_roi']}", flush=True)
