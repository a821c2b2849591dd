"""numba kernels of the voxel-wise decay fitter (private): the entry point and the names
the rest of the package uses.

Two kernels fit the models: :func:`_ncchi_block` the noise-corrected ``ncchi`` (a
serial kernel that releases the GIL; :mod:`r2mri.fitting._threads` runs it on Python
threads: a numba parallel wrapper cost ~3.5 s more compile time for nothing) and the
parallel :func:`_fit_chunk_voxel` all the others (the model is a run-time value in the
settings array). Each has exactly one specialisation (all arrays float64, the settings
packed by :func:`settings`), compiled on first use and cached, so a run compiles only
the solver it uses (``r2mri warmup`` compiles both ahead of time). :func:`fit_chunk`
dispatches between them.

The code lives in modules of one job each (moved unchanged from this file, branch
kernsplit; maps bit-identical, benchmarks/README.md "kernsplit"), re-exported here:

- :mod:`r2mri.fitting._kernel_shared`: model ids, output columns, status codes, the
  packed settings (:func:`settings`, :func:`_settings`) and the helpers both solvers
  (and the fat-water complex fit) compile in: the log-linear start, the Cholesky solve;
- :mod:`r2mri.fitting._lm_model`: model values and Jacobian, cost, normal equations,
  bounds, the variable-projection mono-exponential solver;
- :mod:`r2mri.fitting._lm_kernel`: the per-voxel Levenberg-Marquardt kernel
  (:func:`_fit_voxel`, :func:`_fit_chunk_voxel`);
- :mod:`r2mri.fitting._ncchi_kernel`: the ``ncchi`` lock-step damped-Newton solver.

This module defines no numba function, so it needs no cache guard of its own.

**numba's on-disk cache across files.** numba (0.68) keeps a cached kernel under an
index named after the file, function and line that defines it, stamped with the sha256
of *that file's* content (earlier numba: its modification time and size). A kernel that
calls numba functions, or reads module constants, of another file has their code
compiled into its own cached machine code, yet its stamp does not see that file. So each
kernel file records the sha256 of every r2mri file it compiles in (``_NOISE_PY_SHA256``,
``_KERNEL_SHARED_PY_SHA256``, ``_LM_MODEL_PY_SHA256``; and
``_FITTING_KERNEL_SHARED_PY_SHA256`` in :mod:`r2mri.fatwater._complex_kernels`), and
tests/test_kernel_cache_guards.py fails until that line is updated after an edit of the
callee. The guard thus *forces recompilation*: an edited callee changes the caller's
content, hence its stamp, and numba discards the caller's stale index on the first
load after an upgrade, whatever cache directory the user keeps (``__pycache__``,
``NUMBA_CACHE_DIR``, ``~/.cache/r2mri/numba``). The chain is transitive (a file whose
callee records another file's hash changes when that file does). For this split
itself, stale caches are impossible: the new modules' index names are new (numba names
them after the defining file), and the index files of the old single ``_kernels.py``
are never read again (no function is defined here any more; were one added at the same
line, the changed content stamp would discard the old index).
"""

from __future__ import annotations

from ._kernel_shared import (BIEXP, LOGLIN, MONO, N_PARAMS, NCCHI, NOUT, O_FRAC, O_NITER, O_OFFSET,
                             O_R2, O_R2FAST, O_R2SLOW, O_R2STD, O_RMS, O_RSQ, O_S0, OFFSET, S_BAD,
                             S_BELOW_NOISE, S_BOUND_HIT, S_NOT_CONVERGED, S_OK, S_TOO_FEW, TRUNC,
                             _BLOCK, _chol_solve, _flat_start, _loglin, _settings, settings)
from ._lm_kernel import _fit_block, _fit_chunk_voxel, _fit_voxel
from ._lm_model import _model, _vp_mono
from ._ncchi_kernel import (_LANES, _NROW, _R_E, _R_N0, _R_N1, _ncchi_block, _ncchi_control,
                            _ncchi_finish, _ncchi_pass, _ncchi_propose, _ncchi_starts, _vexp, _vlog)

#: What the package and its tests use from here (re-exported from the modules above).
__all__ = ["fit_chunk", "settings", "LOGLIN", "MONO", "OFFSET", "BIEXP", "NCCHI", "TRUNC",
           "N_PARAMS", "NOUT", "O_S0", "O_R2", "O_OFFSET", "O_R2STD", "O_RMS", "O_RSQ", "O_FRAC",
           "O_R2SLOW", "O_R2FAST", "O_NITER", "S_OK", "S_NOT_CONVERGED", "S_BOUND_HIT",
           "S_BELOW_NOISE", "S_TOO_FEW", "S_BAD", "_BLOCK", "_settings", "_flat_start", "_loglin",
           "_chol_solve", "_model", "_vp_mono", "_fit_voxel", "_fit_block", "_fit_chunk_voxel",
           "_LANES", "_NROW", "_R_N0", "_R_N1", "_R_E", "_vexp", "_vlog", "_ncchi_pass",
           "_ncchi_starts", "_ncchi_propose", "_ncchi_finish", "_ncchi_control", "_ncchi_block"]


def fit_chunk(y, t, cfg, tab, dest, offset, out, status):
    """Fit every row ``i`` of ``y`` (nvox, m) float64 into column ``j`` of the float32 maps
    ``out`` (NOUT, n_total) and of ``status`` (n_total,) uint8, with ``j = dest[i]`` (int64
    voxel indices), or ``j = offset + i`` (int64) when ``dest`` is empty. Writing the
    caller's maps in place saves a scatter per map and chunk. ``cfg`` comes from
    :func:`settings`; ``tab`` is ``noise.ncchi_table(coils)`` for ``ncchi`` (any (k, 4)
    float64 array otherwise). The models but ``ncchi`` run on numba's threads; ``ncchi``
    runs in the calling thread (:mod:`r2mri.fitting._threads` spreads it over threads)."""
    if int(cfg[0]) == NCCHI:
        _ncchi_block(y, t, cfg, tab, 0, y.shape[0], dest, offset, out, status)
    else:
        _fit_chunk_voxel(y, t, cfg, tab, dest, offset, out, status)
