"""Rewrite the numba cache guards of the fit kernels after an edit (branch kernsplit).

    python -m benchmarks.kernsplit_guards          # list the stale guards
    python -m benchmarks.kernsplit_guards --fix    # rewrite them

The guards are those of tests/test_kernel_cache_guards.py (``GUARDS``: module, constant,
file it hashes). They chain (an edit of r2mri/noise.py changes ``_kernel_shared.py``'s
``_NOISE_PY_SHA256``, hence that file's hash that three other files record), so ``--fix``
repeats until every guard holds (the imports form no cycle, so this ends). Only the
``NAME = "<64 hex digits>"`` line of each guard is rewritten.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "r2mri"


def _guards() -> list[tuple[str, str, str]]:
    spec = importlib.util.spec_from_file_location("_guard_table", REPO / "tests" / "test_kernel_cache_guards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.GUARDS


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pass(guards, fix: bool) -> int:
    stale = 0
    for module, name, rel in guards:
        path = PKG.joinpath(*module.split(".")[1:]).with_suffix(".py")
        text = path.read_text(encoding="utf-8")
        want = _sha(PKG / rel)
        pattern = re.compile(rf'^{name} = "([0-9a-f]{{64}})"$', re.M)
        match = pattern.search(text)
        if match is None:
            raise SystemExit(f"no line {name} = \"...\" in {path}")
        if match.group(1) != want:
            stale += 1
            print(f"{'fixed' if fix else 'stale'}: {name} in {path.relative_to(REPO)} (r2mri/{rel})")
            if fix:
                path.write_text(pattern.sub(f'{name} = "{want}"', text), encoding="utf-8")
    return stale


def main(argv: list[str]) -> int:
    fix = "--fix" in argv
    guards = _guards()
    for _ in range(len(guards) + 1):
        if _pass(guards, fix) == 0 or not fix:
            break
    stale = _pass(guards, False)
    print(f"{len(guards)} guards, {stale} stale")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
