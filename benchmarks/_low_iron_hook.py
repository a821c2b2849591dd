"""Record the arguments of the low-iron check (r2mri._roi_low_iron.low_iron_warning) as
r2mri.roi.liver_roi calls it, for the figures of benchmarks/real_liver.py. (Branch r2starroi
emulated the evidence hook here by reading liver_roi's locals; the hook is now in roi.py.)
"""

from __future__ import annotations

import contextlib


#: the arguments of the last call (for figures)
LAST: dict = {}


@contextlib.contextmanager
def emulated_hook():
    """Record each call's arguments in :data:`LAST` (the name is kept for the callers)."""
    import r2mri.roi as roi_mod

    real = roi_mod.low_iron_warning

    def wrapper(*args, **kw):
        LAST.clear()
        LAST.update(kw, args=args)
        return real(*args, **kw)

    roi_mod.low_iron_warning = wrapper
    try:
        yield
    finally:
        roi_mod.low_iron_warning = real
