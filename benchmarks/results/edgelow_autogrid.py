"""Branch edgelow: benchmarks.autogrid with the edge bays (r2mri/_roi_edge_bays.py) on, or off with
EDGELOW_OFF=1 (the hook returns rule 1's inside unchanged: main's ROI), for paired before/after runs.

Run: NUMBA_NUM_THREADS=1 [EDGELOW_OFF=1] nice -n 5 .venv/bin/python -m benchmarks.results.edgelow_autogrid ARGS
(ARGS as benchmarks.autogrid's)."""

from __future__ import annotations

import os
import sys
from unittest import mock

if __name__ == "__main__":
    from benchmarks import autogrid
    import r2mri._roi_proposal as prop

    if os.environ.get("EDGELOW_OFF") == "1":
        with mock.patch.object(prop, "with_liver_like_bays", lambda cand, maps, dark_edge, *a, **k: dark_edge):
            raise SystemExit(autogrid.main(sys.argv[1:]))
    raise SystemExit(autogrid.main(sys.argv[1:]))
