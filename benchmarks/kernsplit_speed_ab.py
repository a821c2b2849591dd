"""In-process A/B of the fit kernels, ``ncchi`` included (branch kernsplit).

    cp -r OLD_TREE/r2mri DIR/r2mri_old          # the older package under another name
    NUMBA_NUM_THREADS=1 python -m benchmarks.kernsplit_speed_ab DIR [ROUNDS] [OUT.json]

:mod:`benchmarks.split_speed_ab` (same method: both packages in one process, each model's
fit of the FerriScan-size volume 256 x 256 x 11 x 5 at SNR 50 timed in CPU seconds, one
thread, before and after alternated, order swapped every round) with the ``ncchi`` lane
solver added (sigma given, 1 channel, as for ``truncated``). Reported per model: best
voxels per CPU second of each and the median over rounds of the per-round ratio
after / before (> 1: the newer tree is faster).
"""

from __future__ import annotations

import sys

from . import split_speed_ab

MODELS = ("ncchi",) + split_speed_ab.MODELS


def main(argv: list[str]) -> int:
    return split_speed_ab.main(argv, MODELS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
