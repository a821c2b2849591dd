"""Branch recordhook: benchmarks.floorpiece's per-voxel intake verdicts, old copy of the loop
(main 9ec388e, without the second look) vs the library's record, on the same recorded inputs.

``python -m benchmarks.results.recordhook_compare OLD_FLOORPIECE_PY K...`` (cells 8, 9 as
``benchmarks.floorpiece decompose --cells 8,9 --first-index 5000``: even k cell 8, odd k cell 9).
Three verdict maps per liver: ``old`` (the copy as it was), ``old+second_look`` (the copy with
the library's second look of a refused piece added: the one line the copy left out) and ``new``
(``intake_verdicts`` from the library's record). Prints the voxels per code and where they differ.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np


def _old_module(path):
    spec = importlib.util.spec_from_file_location("floorpiece_old", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = open(path).read()
    a, b = src.index("def intake_verdicts("), src.index("class Recorder:")
    fn = src[a:b].replace("from r2mri._roi_low_intake import (", "from r2mri._roi_floor_piece import second_look\n"
                          "    from r2mri._roi_low_intake import (")
    old = "                code[piece] = 3 if not ok else 4\n"
    assert old in fn
    fn = fn.replace(old, old + "                sl = second_look(piece, region, _near(region, piece), maps, r2, white_valid,"
                    " floor_r2, INTAKE_K, MIN_WHITE_VOXELS, pdff)[0] & (maps.logr >= log_floor)\n"
                    "                take |= sl\n                code[sl] = 1\n")
    ns = dict(vars(mod))
    exec(fn, ns)
    return mod.intake_verdicts, ns["intake_verdicts"]


def main(argv):
    from benchmarks import floorpiece as fp
    from benchmarks.autogrid import _select, analyzed_liver

    old_fn, old_sl_fn = _old_module(argv[0])
    cells = _select("8,9")
    for k in map(int, argv[1:]):
        r = fp.Recorder()
        with r.patched() as rec:
            ph, res = analyzed_liver(cells[(k - 5000) % 2], k)
        args = (rec["before_intake"], rec["maps"], rec["r2"], rec["floor_r2"], rec["grow_k"], rec["pdff"])
        codes = {"old": old_fn(*args)[0], "old+second_look": old_sl_fn(*args)[0], "new": fp.intake_verdicts(*args)[0]}
        liver_out = ph.truth.liver_mask & ~res.roi.candidate
        row = {"k": k}
        for name, c in codes.items():
            row[name] = {fp.INTAKE_LABELS.get(v, "other"): int(np.count_nonzero((c == v) & liver_out))
                         for v in range(0, 10) if np.any((c == v) & liver_out)}
        row["differ_old_vs_new_all_voxels"] = int(np.count_nonzero(codes["old"] != codes["new"]))
        row["differ_old+second_look_vs_new_all_voxels"] = int(np.count_nonzero(codes["old+second_look"] != codes["new"]))
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
