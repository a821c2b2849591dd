"""``r2mri warmup``: compile every numba kernel into the cache (image builds, cluster nodes).

A thin shell over :func:`r2mri.warmup.warm_up`: prints each step's time, every kernel
compiled or found in the cache, and where the cache is.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "warmup",
        help="compile every numba kernel into the cache (for image builds and cluster nodes)",
        description=(
            "Run every code path that uses numba once on tiny synthetic data, so later runs "
            "load the compiled kernels from the cache instead of compiling them. The cache "
            "is NUMBA_CACHE_DIR if set, else the package's __pycache__ if writable, else "
            "~/.cache/r2mri/numba or a temporary folder; run warmup with the same setting "
            "and on the same CPU model as the later runs."
        ),
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..warmup import warm_up

    def step(name: str, seconds: float) -> None:
        if not args.quiet:
            print(f"  {name}: {seconds:.1f} s", flush=True)

    if not args.quiet:
        print("r2mri warmup: compiling the numba kernels (a minute or two on 2 cores) ...", flush=True)
    report = warm_up(progress=step)
    if not args.quiet:
        for k in report.kernels:
            what = ", ".join(s for s in (f"{k.compiled} compiled" if k.compiled else "",
                                         f"{k.loaded} from cache" if k.loaded else "") if s)
            print(f"  {k.name}: {k.signatures} signature(s) ({what or 'no cache'})")
    if not report.cache_enabled:
        where = "caching DISABLED (no writable cache location): kernels compile in every process"
    else:
        where = "cache: " + ", ".join(report.cache_paths)
    print(f"r2mri warmup: {report.compiled} kernel signature(s) compiled, {report.loaded} already "
          f"cached, in {report.seconds:.1f} s; {where}")
    return 0
