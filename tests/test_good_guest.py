"""The library is a good guest in its caller's process (issue 12 item 5).

A host that embeds r2mri (a DICOM node, a Dask worker, a web service, a notebook) is
often multi-threaded; forking such a process can deadlock the child (Python 3.12+ warns
about it), and a library that changes process-wide settings (the garbage collector,
numba's thread count, matplotlib's backend, the umask, warning filters, signal handlers)
changes them for the whole host. These tests run the public API in this (multi-threaded)
process and check that nothing of the kind happened.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import r2mri
from r2mri import phantom as P
from r2mri.report import write_outputs

SMALL = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)

_GC_FREEZE, _GC_UNFREEZE = gc.freeze, gc.unfreeze

#: forks seen by the os.register_at_fork hook while a test watches (the hook cannot be
#: removed once registered, so it only records while ``_WATCH`` is set)
_WATCH = threading.Event()
_FORKS: list[str] = []


def _record_fork() -> None:
    if _WATCH.is_set():
        _FORKS.append(threading.current_thread().name)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_record_fork)


def _children() -> set[int]:
    """Live child processes of this process (Linux /proc; empty set elsewhere)."""
    out: set[int] = set()
    task = Path(f"/proc/{os.getpid()}/task")
    for t in task.glob("*/children") if task.is_dir() else ():
        try:
            out.update(int(c) for c in t.read_text().split())
        except OSError:
            pass
    return out


def _process_state() -> dict:
    """What a library call must leave as it found it."""
    import matplotlib
    import numba

    return {
        "gc_enabled": gc.isenabled(),
        "gc_threshold": gc.get_threshold(),
        "threads": sorted(t.ident for t in threading.enumerate()),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "numba_cache_dir": numba.config.CACHE_DIR,
        "warning_filters": list(warnings.filters),
        "signals": {s: signal.getsignal(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)},
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "umask": _umask(),
        "np_err": np.geterr(),
        "mpl_backend": dict.__getitem__(matplotlib.rcParams, "backend"),
        "mpl_rc": {k: repr(dict.__getitem__(matplotlib.rcParams, k)) for k in matplotlib.rcParams},
        "recursion_limit": sys.getrecursionlimit(),
        "switch_interval": sys.getswitchinterval(),
        "children": _children(),
    }


def _umask() -> int:
    from r2mri._atomic import current_umask

    return current_umask()


@pytest.fixture()
def busy_host(monkeypatch):
    """This process with another thread running, and every way to start a process
    (fork, forkpty, posix_spawn, subprocess) or to change the collector, the umask,
    signal handlers or matplotlib's backend refused while the test runs."""
    stop = threading.Event()
    ticks = [0]

    def host_work():  # a host's own thread, e.g. a server loop
        while not stop.wait(0.005):
            ticks[0] += 1

    worker = threading.Thread(target=host_work, name="host-worker", daemon=True)
    worker.start()

    def refused(*args, **kwargs):
        raise AssertionError("the library started a process")

    def changed(*args, **kwargs):
        raise AssertionError("the library changed a process-wide setting")

    import matplotlib

    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "spawnv", "spawnve", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refused)
    monkeypatch.setattr(subprocess.Popen, "__init__", refused)
    # calls that change process-wide state even when they put it back afterwards
    # (another thread sees it in between): refused outright
    for name in ("freeze", "unfreeze", "disable", "enable", "set_threshold", "set_debug"):
        monkeypatch.setattr(gc, name, changed)
    monkeypatch.setattr(os, "umask", changed)
    monkeypatch.setattr(signal, "signal", changed)
    monkeypatch.setattr(matplotlib, "use", changed)
    _FORKS.clear()
    _WATCH.set()
    try:
        yield ticks
    finally:
        _WATCH.clear()
        stop.set()
        worker.join()


def test_the_public_api_never_forks_nor_changes_process_state(busy_host, tmp_path):
    """generate, write, load, estimate_noise, fit, analyze and write_outputs in a
    multi-threaded process: no process started, no fork warning, and the collector,
    threads, numba's thread count, matplotlib's settings, the umask, the warning filters
    and the signal handlers as they were; the numbers are right (LIC within 3 % of the
    phantom's truth, the tolerance of tests/test_cli_analyze.py for this phantom)."""
    import matplotlib

    # the host's own settings, which the library must keep: a non-default backend
    # (a notebook's, say) and a frozen generation of its own objects
    backend = dict.__getitem__(matplotlib.rcParams, "backend")
    dict.__setitem__(matplotlib.rcParams, "backend", "svg")
    host_objects = [[] for _ in range(100)]  # tracked by the collector
    _GC_FREEZE()
    frozen = gc.get_freeze_count()
    try:
        before = _process_state()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            filters_inside = list(warnings.filters)
            ph = P.generate(lic=7.0, seed=2, **SMALL)
            src = P.write(ph, tmp_path / "dicom", format="dicom")
            img = r2mri.load(src)
            noise = r2mri.estimate_noise(img)
            fit = r2mri.fit(img, noise_sigma=noise.sigma, coils=noise.coils, threads=1,
                            mask=ph.truth.labels == P.LABELS["liver"])
            res = r2mri.analyze(src, threads=1)
            paths = write_outputs(res, tmp_path / "out")
            assert list(warnings.filters) == filters_inside, "the library changed the warning filters"
        after = _process_state()
        # the host's frozen objects are still frozen (gc.get_objects() lists only the
        # collected generations), and nothing was frozen on top of them (the count
        # only drops, as frozen objects are freed)
        assert gc.get_freeze_count() <= frozen
        ids = {id(o) for o in host_objects}
        assert not any(id(o) in ids for o in gc.get_objects()), "the library unfroze the host's objects"
    finally:
        _GC_UNFREEZE()
        dict.__setitem__(matplotlib.rcParams, "backend", backend)

    assert not _FORKS, f"forked from threads {_FORKS}"
    forks = [str(w.message) for w in caught if "fork" in str(w.message).lower()]
    assert not forks, forks
    for key in before:
        assert after[key] == before[key], f"{key} changed: {before[key]!r} -> {after[key]!r}"
    assert busy_host[0] > 0  # the host's thread ran meanwhile

    # real values: the fit and the report agree with the phantom's truth
    liver = ph.truth.labels == P.LABELS["liver"]
    assert np.nanmedian(fit.r2_per_s[liver]) == pytest.approx(np.median(ph.truth.r2_per_s[liver]), rel=0.03)
    rep = json.loads(paths["report_json"].read_text())
    truth = ph.summary["lic_of_mean_r2_mg_per_g"]
    assert abs(rep["lic_mg_per_g"]["of_mean_r2"] - truth) / truth < 0.03
    assert (tmp_path / "out" / "dicom").is_dir()  # the DICOM writers ran too


@pytest.fixture(scope="module")
def dicom_input(tmp_path_factory):
    ph = P.generate(lic=7.0, seed=3, **SMALL)
    return ph, P.write(ph, tmp_path_factory.mktemp("guest") / "dicom", format="dicom")


def test_the_command_analyses_and_writes_in_its_own_process(dicom_input, tmp_path, monkeypatch, capsys):
    """``r2mri analyze`` is analyze + write_outputs in one process (no helper process):
    the DICOM outputs are written, the headline is within 3 % of the truth, and the
    collector is frozen by the command (a program's choice), once, before the outputs."""
    from r2mri.cli import main
    from r2mri.commands import analyze as command

    ph, src = dicom_input
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("the command forked"))
    frozen = []
    monkeypatch.setattr(command, "_keep_collector_off_old_objects", lambda: frozen.append(True))
    assert main(["analyze", str(src), "-o", str(tmp_path / "o")]) == 0
    assert frozen == [True]
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    truth = ph.summary["lic_of_mean_r2_mg_per_g"]
    assert abs(rep["lic_mg_per_g"]["of_mean_r2"] - truth) / truth < 0.03
    assert {p.name for p in (tmp_path / "o" / "dicom").iterdir()} >= {"pm_r2.dcm", "sc_report.dcm"}
    assert f"LIC {rep['lic_mg_per_g']['of_mean_r2']:.2f} mg Fe/g" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["unreadable input", "unknown calibration"])
def test_the_command_fails_in_one_line_and_writes_nothing(case, dicom_input, tmp_path, capsys):
    from r2mri.cli import main

    if case == "unreadable input":
        src = tmp_path / "bad"
        src.mkdir()
        (src / "x.dcm").write_bytes(b"not a dicom file")
        argv = ["analyze", str(src)]
    else:
        src = dicom_input[1]
        argv = ["analyze", str(src), "--calibration", "no-such-curve"]
    assert main(argv + ["-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("r2mri: error: "), err
    assert not (tmp_path / "o").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o")]
