"""Independent seeds for every (cell, replicate) of a benchmark grid (issue 16, branch seedmix).

Before this module the heterogeneous-liver benchmarks (``hetero``, ``hetero_full``,
``small20``) passed the replicate number ``r`` as the phantom's noise seed *and* as its
texture seed in every cell: replicate ``r`` drew the same standard-normal numbers at every
SNR, LIC and channel count, and the same texture at every LIC and SNR. Cells were then not
independent experiments (README "narrow8": per-seed errors of three cells correlated 0.98).

:func:`cell_seeds` derives three 32-bit seeds per (benchmark, cell, replicate) from
``numpy.random.SeedSequence`` with the entropy ``[ROOT, benchmark tag, cell parameters,
replicate]``: one for the phantom's noise (``generate(seed=...)``), one for its texture
(``texture_seed=...``) and one for the estimator's own randomness (bootstrap and spread
simulator, ``liver_statistics(seed=...)``). The cell parameters enter as integers (SD and
width x 1000, LIC and SNR x 1000, channels), so the seeds are the same on every machine and
Python version. ``legacy=True`` gives the old scheme (all three = ``r``), to re-make stored
runs.

>>> s = cell_seeds("hetero", (0.4, 4.0, 30.0, 20.0, 8), 0)
>>> s == cell_seeds("hetero", (0.4, 4.0, 30.0, 20.0, 8), 0), s.noise != s.texture
(True, True)
>>> cell_seeds("hetero", (0.4, 4.0, 30.0, 20.0, 8), 3, legacy=True)
Seeds(noise=3, texture=3, stats=3)
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

#: Fixed root entropy of the scheme (arbitrary; changing it re-draws every benchmark).
ROOT = 20261203
#: Benchmark tags: a replicate of the same cell in two benchmarks gets different seeds.
TAGS = {"hetero": 1, "hetero_full": 2, "small20": 3, "sigmafine": 606}
SCHEME = ("numpy SeedSequence([ROOT=20261203, tag, round(1000*param) for each cell param, replicate])"
          ".generate_state(3, uint32) -> (noise, texture, stats)")


class Seeds(NamedTuple):
    noise: int
    texture: int
    stats: int


def cell_seeds(bench: str, cell: Sequence[float], replicate: int, legacy: bool = False) -> Seeds:
    """Seeds of one replicate of one cell (module docstring).

    ``cell`` is the cell's parameters in the benchmark's own order, e.g.
    ``(sd_log_lic, width_voxels, lic, snr, coils)``; ``replicate`` counts from 0.
    """
    r = int(replicate)
    if legacy:
        return Seeds(r, r, r)
    ent = [ROOT, TAGS[bench]] + [int(round(1000 * float(x))) for x in cell] + [r]
    a, b, c = np.random.SeedSequence(ent).generate_state(3, dtype=np.uint32)
    return Seeds(int(a), int(b), int(c))


def scheme(legacy: bool) -> str:
    """The seeding recorded in result files and printed under tables."""
    return "legacy (noise = texture = stats seed = replicate number)" if legacy else SCHEME


def substream(seed: int, k: int) -> int:
    """A further 32-bit seed ``k`` derived from ``seed`` (e.g. a simulator's own draws)."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1, dtype=np.uint32)[0])
