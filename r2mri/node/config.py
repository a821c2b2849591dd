"""Settings of ``r2mri serve``: a TOML file, overridden by command-line flags.

The file has up to four tables (all optional; see docs/node.md)::

    [node]
    aet = "R2MRI"
    host = "127.0.0.1"
    port = 11112
    spool = "/var/spool/r2mri"
    allow = ["ORTHANC"]              # calling AE titles accepted; empty: any
    destinations = ["ORTHANC@127.0.0.1:4242"]
    stable_seconds = 60
    workers = 1
    max_associations = 8
    acse_timeout_s = 30
    dimse_timeout_s = 60
    network_timeout_s = 60
    min_free_mb = 500                # C-STORE answers 0xA700 below this
    retry_backoff_s = [1, 5, 30]     # waits between sending attempts
    log_file = ""                    # empty: JSON lines on stderr

    [analysis]                       # keyword options of r2mri.analyze
    model = "auto"

    [tls]                            # optional: all three files, PEM
    cert = "node.crt"
    key = "node.key"
    ca = "ca.crt"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Sequence

from .._toml import read_toml, tomllib
from ..errors import InputError

__all__ = ["Destination", "NodeConfig", "load_config", "parse_destination", "parse_option"]

#: ``r2mri.analyze`` keywords the node may not be given (it owns the inputs, and a
#: mask or progress bar has no meaning for a study arriving over the network).
_NOT_OPTIONS = {"inputs", "mask", "progress"}

_AET = re.compile(r"^[ -~]{1,16}$")


@dataclasses.dataclass(frozen=True)
class Destination:
    """A DICOM peer that receives the results: ``AET@HOST:PORT``."""

    aet: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.aet}@{self.host}:{self.port}"


def _check_aet(aet: str, what: str) -> str:
    if not isinstance(aet, str) or not _AET.match(aet) or "\\" in aet or not aet.strip():
        raise InputError(f"{what}: AE title must be 1-16 printable ASCII characters, got {aet!r}")
    return aet.strip()


def _check_port(port: Any, what: str) -> int:
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise InputError(f"{what}: port must be an integer, got {port!r}") from None
    if not 0 <= value <= 65535 or isinstance(port, bool):
        raise InputError(f"{what}: port must be 0-65535, got {port!r}")
    return value


def parse_destination(text: str) -> Destination:
    """``"AET@HOST:PORT"`` -> :class:`Destination`.

    Examples
    --------
    >>> parse_destination("ORTHANC@127.0.0.1:4242")
    Destination(aet='ORTHANC', host='127.0.0.1', port=4242)
    """
    m = re.match(r"^(?P<aet>[^@]+)@(?P<host>[^:@]+):(?P<port>\d+)$", str(text).strip())
    if not m:
        raise InputError(f"destination {text!r}: expected AET@HOST:PORT")
    what = f"destination {text!r}"
    return Destination(_check_aet(m["aet"], what), m["host"], _check_port(m["port"], what))


def parse_option(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` (VALUE a TOML value, else a string) -> ``(key, value)``.

    Examples
    --------
    >>> parse_option("model=ncchi"), parse_option("force=true"), parse_option("coils=4")
    (('model', 'ncchi'), ('force', True), ('coils', 4))
    """
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise InputError(f"--analyze-option {text!r}: expected KEY=VALUE")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


@dataclasses.dataclass
class NodeConfig:
    """Effective settings of one node (defaults, then the TOML file, then flags)."""

    aet: str = "R2MRI"
    host: str = "127.0.0.1"
    port: int = 11112
    spool: Path = Path("r2mri-spool")
    allow: list[str] = dataclasses.field(default_factory=list)
    destinations: list[Destination] = dataclasses.field(default_factory=list)
    stable_seconds: float = 60.0
    workers: int = 1
    max_associations: int = 8
    acse_timeout_s: float = 30.0
    dimse_timeout_s: float = 60.0
    network_timeout_s: float = 60.0
    min_free_mb: float = 500.0
    retry_backoff_s: list[float] = dataclasses.field(default_factory=lambda: [1.0, 5.0, 30.0])
    log_file: str = ""
    analysis: dict[str, Any] = dataclasses.field(default_factory=dict)
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""

    def options_fingerprint(self) -> str:
        """Short hash of the analysis options (part of the result UIDs' seed)."""
        text = json.dumps(self.analysis, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable settings (what ``--check-config`` prints)."""
        out = dataclasses.asdict(self)
        out["spool"] = str(self.spool)
        out["destinations"] = [str(d) for d in self.destinations]
        return out

    def notes(self) -> list[str]:
        """Plain one-line notes on settings that are valid but likely not what was meant
        (printed by ``--check-config`` beside the settings).

        Examples
        --------
        >>> NodeConfig().notes()  # doctest: +ELLIPSIS
        ['note: no destination configured: results stay in r2mri-spool/jobs/<id>/out and are never sent anywhere...']
        """
        out = []
        if not self.destinations:
            out.append(f"note: no destination configured: results stay in {Path(self.spool) / 'jobs'}/<id>/out "
                       "and are never sent anywhere (add --destination AET@HOST:PORT or [node] destinations)")
        return out

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert or self.tls_key or self.tls_ca)

    def validate(self) -> "NodeConfig":
        """Check every value; raise :class:`InputError` naming the first bad one."""
        self.aet = _check_aet(self.aet, "aet")
        self.port = _check_port(self.port, "port")
        self.allow = [_check_aet(a, "allow") for a in self.allow]
        self.spool = Path(self.spool)
        for name in ("stable_seconds", "acse_timeout_s", "dimse_timeout_s", "network_timeout_s", "min_free_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"{name}: must be a number >= 0, got {value!r}")
            setattr(self, name, float(value))
        for name in ("workers", "max_associations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: must be an integer >= 1, got {value!r}")
        if not self.retry_backoff_s or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in self.retry_backoff_s
        ):
            raise InputError(f"retry_backoff_s: must be a non-empty list of seconds >= 0, got {self.retry_backoff_s!r}")
        self.retry_backoff_s = [float(v) for v in self.retry_backoff_s]
        _check_analysis_options(self.analysis)
        if self.tls and not (self.tls_cert and self.tls_key):
            raise InputError("tls: cert and key are both needed (ca to verify peers)")
        for name in ("tls_cert", "tls_key", "tls_ca"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise InputError(f"tls {name[4:]} {path}: not found")
        return self


def _check_analysis_options(options: dict[str, Any]) -> None:
    import inspect

    from ..analysis import analyze

    known = set(inspect.signature(analyze).parameters) - _NOT_OPTIONS
    for key in options:
        if key not in known:
            raise InputError(f"analysis option {key!r}: not an option of r2mri.analyze (known: {', '.join(sorted(known))})")


_NODE_KEYS = {f.name for f in dataclasses.fields(NodeConfig)} - {"analysis", "tls_cert", "tls_key", "tls_ca"}


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                analysis_overrides: Sequence[tuple[str, Any]] = ()) -> NodeConfig:
    """Defaults <- TOML file ``path`` <- ``overrides`` (flag values; ``None`` = not given).

    Examples
    --------
    >>> cfg = load_config(None, {"port": 4243, "destinations": ["PACS@127.0.0.1:4242"]})
    >>> cfg.port, str(cfg.destinations[0]), cfg.stable_seconds
    (4243, 'PACS@127.0.0.1:4242', 60.0)
    """
    cfg = NodeConfig()
    if path is not None:
        data = read_toml(path, what="node configuration")
        unknown = set(data) - {"node", "analysis", "tls"}
        if unknown:
            raise InputError(f"node configuration {path}: unknown table(s) {', '.join(sorted(unknown))}")
        node = dict(data.get("node", {}))
        for key, value in node.items():
            if key not in _NODE_KEYS:
                raise InputError(f"node configuration {path}: unknown key node.{key}")
            setattr(cfg, key, value)
        cfg.analysis = dict(data.get("analysis", {}))
        tls = dict(data.get("tls", {}))
        for key, value in tls.items():
            if key not in ("cert", "key", "ca"):
                raise InputError(f"node configuration {path}: unknown key tls.{key}")
            # relative paths are relative to the configuration file
            setattr(cfg, f"tls_{key}", str(Path(path).parent / value) if value else "")
        if "spool" in node:
            cfg.spool = Path(path).parent / node["spool"]
    for key, value in (overrides or {}).items():
        if value is None or (isinstance(value, list) and not value):
            continue
        if key not in _NODE_KEYS:
            raise InputError(f"unknown setting {key!r}")
        setattr(cfg, key, value)
    for key, value in analysis_overrides:
        cfg.analysis[key] = value
    cfg.destinations = [d if isinstance(d, Destination) else parse_destination(d) for d in cfg.destinations]
    return cfg.validate()
