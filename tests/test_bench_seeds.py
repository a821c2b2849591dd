"""benchmarks/_seeds.py and hetero_grid's unpaired / coupling summaries (no phantoms, < 1 s)."""

import numpy as np
import pytest

from benchmarks._seeds import Seeds, cell_seeds, substream
from benchmarks.hetero_grid import coupling, unpaired


def test_cell_seeds_reproducible_distinct_and_legacy():
    cell = (0.4, 4.0, 30.0, 20.0, 8)
    s = cell_seeds("hetero", cell, 0)
    assert s == cell_seeds("hetero", cell, 0)  # same on every call (no global state)
    # frozen values: a change of scheme would silently re-draw every stored run
    assert s == Seeds(2067507069, 2406107939, 1235496914)
    grid = [(sd, w, lic, snr, ch) for sd in (0.0, 0.2, 0.4) for w in (1.0, 4.0, 8.0) for lic in (1.0, 7.0, 30.0)
            for snr in (20.0, 50.0, 100.0) for ch in (1, 8)]
    every = [x for c in grid for r in range(8) for x in cell_seeds("hetero", c, r)]
    assert len(set(every)) == len(every)  # 486 cells x 8 replicates x 3 streams, no repeat
    assert cell_seeds("hetero_full", cell, 0) != s  # each benchmark its own livers
    assert cell_seeds("hetero", cell, 5, legacy=True) == Seeds(5, 5, 5)
    assert substream(s.stats, 1) != substream(s.stats, 2)


def test_independent_seeds_decouple_cells():
    # the phantom's noise draw: standard normals of replicate r in two cells
    a = [np.random.default_rng(cell_seeds("hetero", (0, 1, 30, 50, 8), r).noise).standard_normal() for r in range(400)]
    b = [np.random.default_rng(cell_seeds("hetero", (0, 1, 30, 100, 8), r).noise).standard_normal() for r in range(400)]
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(400)  # 4 SE of r under independence


def _cell(errs, hits):
    return {"err": list(errs), "covered": [True] * hits + [False] * (len(errs) - hits), "src": "small"}


def test_coupling_and_unpaired():
    e = np.linspace(-1.0, 1.0, 8)
    shared = {(0.0, 1.0, x, 50.0, 8): _cell(e, 8) for x in (1.0, 7.0, 30.0)}
    assert coupling(shared).startswith("3 cells x 8 replicates, 3 pairs: mean r +1.00, |r| > 0.7 in 100 %")
    before = {k: _cell(np.asarray(v["err"]) + 0.0, 8) for k, v in shared.items()}
    after = {k: _cell(np.asarray(v["err"]) + 2.0, 7) for k, v in shared.items()}
    text = unpaired(before, after)
    # SE of a cell mean: SD 0.68 / sqrt 8 = 0.24; shift 2 % = 5.9 SE of the difference in every cell
    assert "beyond 2 SE of the difference: 3" in text and "covered 24/24 before, 21/24 after" in text
    assert pytest.approx(2.0 / np.hypot(np.std(e, ddof=1) / np.sqrt(8), np.std(e, ddof=1) / np.sqrt(8)),
                         rel=0.02) == float(text.split("z = difference / SE: mean ")[1].split(",")[0])
