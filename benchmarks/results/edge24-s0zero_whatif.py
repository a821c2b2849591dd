"""Branch edge24, a what-if (not shipped): rule 2 (r2mri/_roi_rules.py::failed_fits) drops
BELOW_NOISE fits with S0 = 0 (1,500-1,900 liver voxels of true mean R2 ~313 s^-1 per coarse
30 mg/g liver at SNR 20, 8 channels: the selection share -0.5 to -0.7 % with the true
outline). Here they join ``LiverROI.not_converged`` (the headline pools their magnitudes,
as it does for fits that did not converge). Run from the repository root as
benchmarks.coarse30 with the same arguments:
NUMBA_NUM_THREADS=1 PYTHONPATH=. python benchmarks/results/edge24-s0zero_whatif.py --conditions 20x8 ...
"""
import sys

import numpy as np

import r2mri._roi_rules as R
from r2mri.status import FitStatus

_real = R.failed_fits


def failed_fits(kept, r2, s0, status):
    k, good, nc = _real(kept, r2, s0, status)
    return k, good, nc | (kept & ~good & (status == FitStatus.BELOW_NOISE) & ~(s0 > 0))


R.failed_fits = failed_fits
from benchmarks.coarse30 import main  # noqa: E402

raise SystemExit(main(sys.argv[1:]))
