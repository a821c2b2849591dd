"""``--phase FILE...`` / ``--no-phase`` for the commands that load NIfTI input (load, fit,
analyze): passed unchanged to ``r2mri.load(..., phase=)`` (docs/loading.md, "Phase from NIfTI").
Outside ``r2mri.commands``: a command imports only its own module there.
"""

from __future__ import annotations

import argparse

__all__ = ["add_phase_options", "phase_argument"]


def add_phase_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--phase", nargs="+", metavar="FILE",
                   help="NIfTI phase image(s) of the magnitude input (radians or the Siemens integer range); "
                        "default: BIDS part-phase files beside the magnitude")
    g.add_argument("--no-phase", action="store_true",
                   help="NIfTI: load the magnitude alone, without its BIDS part-phase files")


def phase_argument(args):
    """The ``phase=`` value of :func:`r2mri.load` for parsed ``args``."""
    if getattr(args, "no_phase", False):
        return False
    return list(args.phase) if getattr(args, "phase", None) else None
