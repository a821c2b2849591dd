"""Until r2mri.roi.liver_roi passes the evidence to the low-iron check (issue 16, branch
r2starroi), emulate that 1-line hook in the benchmarks:

    options["low_iron"], low_iron = low_iron_warning(
        kept, r2, np.exp(logr), extension_min_median_per_s(calibration, image), floor_ext,
        candidate=cand, logs=logs, pdff=pdff_map(fit, shape), tissue=tissue, voxel_mm=(dx, dy))

The wrapper reads those from the caller's frame (liver_roi's locals) when the call
lacks them. Benchmark use only: library code never looks at its caller's frame.
"""

from __future__ import annotations

import contextlib
import sys


#: the arguments of the last call (for figures)
LAST: dict = {}


@contextlib.contextmanager
def emulated_hook():
    import r2mri.roi as roi_mod
    from r2mri._roi_patches import pdff_map

    real = roi_mod.low_iron_warning

    def wrapper(*args, **kw):
        if "candidate" not in kw:
            loc = sys._getframe(1).f_locals
            if all(k in loc for k in ("cand", "logs", "tissue", "fit", "shape", "dx", "dy")):
                kw.update(candidate=loc["cand"], logs=loc["logs"], tissue=loc["tissue"],
                          pdff=pdff_map(loc["fit"], loc["shape"]), voxel_mm=(loc["dx"], loc["dy"]))
        LAST.clear()
        LAST.update(kw, args=args)
        return real(*args, **kw)

    roi_mod.low_iron_warning = wrapper
    try:
        yield
    finally:
        roi_mod.low_iron_warning = real
