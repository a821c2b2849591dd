"""Check that the split of r2mri/fitting/_kernels.py moved code only (branch kernsplit).

    python -m benchmarks.kernsplit_moved [REV]      # REV: the commit before the split (9ec388e)

Every top-level function (with its decorators) and assignment of ``_kernels.py`` at ``REV``
must appear character for character in exactly one of the split files (``_NOISE_PY_SHA256``,
now one per file, excepted); prints what does not and exits 1 if anything does not.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILES = ("_kernel_shared.py", "_lm_model.py", "_lm_kernel.py", "_ncchi_kernel.py", "_kernels.py")


def _segments(src: str) -> dict[str, str]:
    lines = src.splitlines(keepends=True)
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, (ast.FunctionDef, ast.Assign)):
            start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
            key = node.name if isinstance(node, ast.FunctionDef) else ast.unparse(node.targets[0])
            out[key] = "".join(lines[start - 1:node.end_lineno])
    return out


def main(argv: list[str]) -> int:
    rev = argv[0] if argv else "9ec388e"
    old = subprocess.run(["git", "show", f"{rev}:r2mri/fitting/_kernels.py"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout
    orig = _segments(old)
    new = [_segments((REPO / "r2mri" / "fitting" / f).read_text(encoding="utf-8")) for f in FILES]
    bad = 0
    for key, text in orig.items():
        if key == "_NOISE_PY_SHA256":
            continue
        hits = [f for f, seg in zip(FILES, new) if seg.get(key) == text]
        if len(hits) != 1:
            bad += 1
            print(f"NOT MOVED VERBATIM EXACTLY ONCE: {key} (found in {hits})")
    print(f"{len(orig)} top-level definitions of _kernels.py at {rev}: {bad} not moved verbatim")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
