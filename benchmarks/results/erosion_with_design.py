"""Run a module with r2mri._roi_edge_grade.DESIGN set (branch erosion; the switch is in commit 5c3089f's library).

``EROSION_DESIGN=ring30 python benchmarks/results/erosion_with_design.py benchmarks.roi_organs --lics 0.5,1 ...``
or ``... erosion_with_design.py pytest -q tests/test_roi_evidence.py``."""
import os
import runpy
import sys

import r2mri._roi_edge_grade as grade

grade.DESIGN = os.environ.get("EROSION_DESIGN", grade.DESIGN)
print("DESIGN =", grade.DESIGN, flush=True)
sys.path.insert(0, os.getcwd())  # run from the worktree root
mod = sys.argv[1]
sys.argv = [mod] + sys.argv[2:]
runpy.run_module(mod, run_name="__main__", alter_sys=True)
