"""numba's on-disk cache across files: the hash guards of the fit kernels.

numba keys a cached kernel on the content of the file that defines it only; numba
functions and constants of other files compiled into it are not seen. So each kernel
file records the sha256 of every r2mri file it imports from (r2mri/fitting/_kernels.py,
"numba's on-disk cache across files"): an edit of a callee must change the caller, or
a user's cache would keep the old callee's code after an upgrade.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
from pathlib import Path

import pytest

import r2mri

ROOT = Path(r2mri.__file__).resolve().parent

#: (module, guard, file it hashes): every cross-file import of the fit kernels
#: (``python -m benchmarks.kernsplit_guards --fix`` rewrites the stale ones, chain included)
GUARDS = [
    ("r2mri.fitting._kernel_shared", "_NOISE_PY_SHA256", "noise.py"),
    ("r2mri.fitting._lm_model", "_NOISE_PY_SHA256", "noise.py"),
    ("r2mri.fitting._lm_model", "_KERNEL_SHARED_PY_SHA256", "fitting/_kernel_shared.py"),
    ("r2mri.fitting._lm_kernel", "_NOISE_PY_SHA256", "noise.py"),
    ("r2mri.fitting._lm_kernel", "_KERNEL_SHARED_PY_SHA256", "fitting/_kernel_shared.py"),
    ("r2mri.fitting._lm_kernel", "_LM_MODEL_PY_SHA256", "fitting/_lm_model.py"),
    ("r2mri.fitting._ncchi_kernel", "_NOISE_PY_SHA256", "noise.py"),
    ("r2mri.fitting._ncchi_kernel", "_KERNEL_SHARED_PY_SHA256", "fitting/_kernel_shared.py"),
    ("r2mri.fatwater._complex_kernels", "_FITTING_KERNEL_SHARED_PY_SHA256",
     "fitting/_kernel_shared.py"),
    # the fat-water kernels' own (also checked by test_fatwater.py, test_fatwater_below_noise.py)
    ("r2mri.fatwater._kernels", "_NOISE_PY_SHA256", "noise.py"),
    ("r2mri.fatwater._complex_kernels", "_FATWATER_KERNELS_PY_SHA256", "fatwater/_kernels.py"),
]
#: the kernel modules whose imports must all be guarded
KERNEL_MODULES = sorted({m for m, _, _ in GUARDS})


def _sha256(rel: str) -> str:
    return hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()


@pytest.mark.parametrize("module, guard, rel", GUARDS)
def test_guard_matches_the_file_it_hashes(module, guard, rel):
    mod = importlib.import_module(module)
    assert getattr(mod, guard) == _sha256(rel), \
        f"update {guard} in {mod.__file__} to the output of `sha256sum r2mri/{rel}`"


def _r2mri_imports(module: str) -> set[str]:
    """The r2mri modules ``module`` imports names from (``from .x import ...``)."""
    mod = importlib.import_module(module)
    tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            name = importlib.util.resolve_name("." * node.level + (node.module or ""), mod.__package__)
            if name != "r2mri._numba_setup":  # the njit decorator only: no compiled code
                out.add(name)
    return out


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_every_cross_file_import_of_a_kernel_module_is_guarded(module):
    # a new import of another r2mri file into a kernel file needs a guard of its own
    mod = importlib.import_module(module)
    recorded = {v for k, v in vars(mod).items() if k.endswith("_SHA256") and isinstance(v, str)}
    for dep in _r2mri_imports(module):
        path = Path(importlib.import_module(dep).__file__).resolve()
        assert hashlib.sha256(path.read_bytes()).hexdigest() in recorded, \
            f"{module} imports from {dep} but records no sha256 of {path.relative_to(ROOT)}"


def test_the_kernels_facade_defines_no_numba_function():
    # r2mri/fitting/_kernels.py only re-exports and dispatches, so it needs no guard: a
    # numba function defined there would compile the split modules in unguarded
    from r2mri import _numba_setup
    from r2mri.fitting import _kernels as K

    own = [d.py_func.__name__ for d in _numba_setup.kernels() if d.py_func.__module__ == K.__name__]
    assert own == [], f"numba functions in r2mri/fitting/_kernels.py need a cache guard: {own}"
