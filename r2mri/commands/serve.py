"""``r2mri serve``: run the DICOM analysis node (docs/node.md).

A thin shell over :class:`r2mri.node.service.Node`: settings from ``--config``
(TOML), overridden by the flags; ``--check-config`` prints the effective settings
as JSON and exits.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="DICOM node: receive studies, analyse them, send the results back",
        description=(
            "Storage SCP that groups received instances by study, analyses each study once "
            "it is stable (no new instance for --stable-seconds) in worker processes, and "
            "C-STOREs the results (Parametric Maps, SEG, SR, report page) to every destination. "
            "Flags override the --config file."
        ),
    )
    p.add_argument("--config", metavar="TOML", help="node configuration file (see docs/node.md)")
    p.add_argument("--aet", help="AE title of the node (default R2MRI)")
    p.add_argument("--port", type=int, help="listening port (default 11112; 0: any free port)")
    p.add_argument("--host", help="listening address (default 127.0.0.1)")
    p.add_argument("--spool", metavar="DIR", help="spool folder: instances, jobs, queue.sqlite")
    p.add_argument("--destination", dest="destinations", action="append", default=[], metavar="AET@HOST:PORT",
                   help="where results are sent (repeat for several)")
    p.add_argument("--allow", action="append", default=[], metavar="CALLING_AET",
                   help="calling AE title accepted (repeat; default: any)")
    p.add_argument("--stable-seconds", dest="stable_seconds", type=float,
                   help="a study is complete after this many seconds without new instance (default 60)")
    p.add_argument("--workers", type=int, help="analysis processes (default 1)")
    p.add_argument("--max-associations", dest="max_associations", type=int, help="concurrent associations (default 8)")
    p.add_argument("--min-free-mb", dest="min_free_mb", type=float,
                   help="refuse instances (0xA700) when the spool has less free space (default 500)")
    p.add_argument("--retry-backoff", dest="retry_backoff_s", type=float, nargs="+", metavar="S",
                   help="seconds between sending attempts (default 1 5 30)")
    p.add_argument("--log-file", dest="log_file", help="JSON-lines log file (default stderr)")
    p.add_argument("--analyze-option", dest="analyze_options", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword option of r2mri.analyze (VALUE in TOML syntax; repeat)")
    p.add_argument("--check-config", action="store_true", help="validate, print the effective settings, exit")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..node.config import load_config, parse_option

    keys = ("aet", "port", "host", "spool", "destinations", "allow", "stable_seconds", "workers",
            "max_associations", "min_free_mb", "retry_backoff_s", "log_file")
    cfg = load_config(args.config, {k: getattr(args, k) for k in keys},
                      [parse_option(o) for o in args.analyze_options])
    if args.check_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        for note in cfg.notes():  # on stderr: stdout stays the JSON settings
            print(note, file=sys.stderr)
        return 0
    import signal
    import threading

    from ..node.logs import setup_logging
    from ..node.service import Node

    setup_logging(cfg.log_file)
    node = Node(cfg).start()
    stop = threading.Event()

    def _stop(signum, frame):  # noqa: ARG001
        stop.set()

    # this command owns its process: SIGTERM (systemd stop) and Ctrl-C end it cleanly
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        node.stop()
    return 0
