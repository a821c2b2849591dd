"""A first run on a cold numba cache compiles its kernels in two processes at once, with
the signatures the analysis uses (issue 14). ~15 s CPU at idle (a cold compile).

One subprocess with an empty ``NUMBA_CACHE_DIR`` runs the commands' cold-start step
(r2mri/commands/_cold_start.py: the fit kernel here, the other groups in a child),
then an automatic-ROI analysis of a small phantom: every kernel the analysis needs
must then come from the cache (a signature list out of step with the code would show
as a compilation here), and the step must do nothing on the now warm cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = textwrap.dedent(
    """
    import json, os
    from r2mri import _numba_setup, phantom
    from r2mri.analysis import analyze
    from r2mri.commands._cold_start import first_run_kernels
    os.cpu_count = lambda: 2  # the step runs on machines with 2 or more cores
    groups = ("fit_starts", "noise", "smooth", "grow", "stats")
    with first_run_kernels(groups, before=groups) as first:  # all of them, for the check
        before = {d.py_func.__qualname__: sum(d.stats.cache_misses.values())
                  for d in _numba_setup.kernels()}
    ph = phantom.generate(matrix=(48, 48), pixel_mm=8.0, n_slices=2)
    res = analyze(ph.image)  # noise from the background, automatic liver ROI, ncchi
    grew = {d.py_func.__qualname__: sum(d.stats.cache_misses.values()) - before.get(d.py_func.__qualname__, 0)
            for d in _numba_setup.kernels()}
    loaded = {d.py_func.__qualname__: sum(d.stats.cache_hits.values()) for d in _numba_setup.kernels()}
    with first_run_kernels(("noise",), before=("noise",)) as again:
        pass
    # cache entries per kernel: a child's signature that the analysis does not use
    # would be a second entry beside the one compiled later
    entries = {d.py_func.__qualname__: len(d._cache._cache_file._load_index())
               for d in _numba_setup.kernels() if d.signatures}
    print(json.dumps({"first": first, "again": again, "model": res.fit.model,
                      "compiled_before": {k: v for k, v in before.items() if v},
                      "compiled_in_analysis": {k: v for k, v in grew.items() if v},
                      "loaded": {k: v for k, v in loaded.items() if v}, "entries": entries}))
    """
)


def test_cold_start_compiles_what_the_analysis_loads(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(REPO), NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                          text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["first"] is True and out["again"] is False, out
    assert out["model"] == "ncchi", out
    assert out["compiled_in_analysis"] == {}, out
    assert set(out["entries"].values()) == {1}, out  # one signature per kernel
    # the fit kernel (and its helpers) compiled in this process, the others in the child
    assert out["compiled_before"].get("_ncchi_block") == 1, out
    for name in ("_voxel_sums", "_median3x3_inplane", "_grow_kernel", "_resampled_ratios",
                 "_ncchi_eval_array"):
        assert name not in out["compiled_before"], (name, out)
        assert out["loaded"].get(name, 0) >= 1, (name, out)
