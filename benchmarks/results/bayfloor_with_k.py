"""Run a benchmark module with r2mri._roi_edge_bays.BAY_FLOOR_K set (branch bayfloor).

``BAYFLOOR_K=none python benchmarks/results/bayfloor_with_k.py benchmarks.roi_organs --lics 0.5,1 ...``
runs main's per-bay floor test (median below the floor refuses a bay); a number is the
pooled test's k (standard errors of the median below the floor)."""
import os
import runpy
import sys

import r2mri._roi_edge_bays as bays

k = os.environ.get("BAYFLOOR_K", "2")
bays.BAY_FLOOR_K = None if k.lower() == "none" else float(k)
print("BAY_FLOOR_K =", bays.BAY_FLOOR_K, flush=True)
sys.path.insert(0, os.getcwd())  # run from the worktree root
mod = sys.argv[1]
sys.argv = [mod] + sys.argv[2:]
runpy.run_module(mod, run_name="__main__", alter_sys=True)
