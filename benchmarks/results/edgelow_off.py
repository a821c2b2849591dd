"""Branch edgelow: run any benchmark module with the edge bays on, or off with EDGELOW_OFF=1 (main's ROI).

Run: NUMBA_NUM_THREADS=1 [EDGELOW_OFF=1] .venv/bin/python -m benchmarks.results.edgelow_off MODULE ARGS
(e.g. MODULE = benchmarks.roi_organs)."""

from __future__ import annotations

import importlib
import os
import sys
from unittest import mock

if __name__ == "__main__":
    import r2mri._roi_proposal as prop

    mod = importlib.import_module(sys.argv[1])
    if os.environ.get("EDGELOW_OFF") == "1":
        with mock.patch.object(prop, "with_liver_like_bays", lambda cand, maps, dark_edge, *a, **k: dark_edge):
            raise SystemExit(mod.main(sys.argv[2:]))
    raise SystemExit(mod.main(sys.argv[2:]))
