"""Compile every numba kernel of r2mri into the on-disk cache ahead of time.

A fresh install compiles a kernel the first time a run needs it (a run compiles only
what it uses: an ``ncchi`` analysis does not compile the other models' solvers).
:func:`warm_up` runs every code path once on tiny synthetic data -- each fit model,
noise estimation, ``analyze`` with a given liver mask and with the automatic ROI -- so
that later processes load every kernel from the cache (``r2mri warmup``: for container
image builds and new cluster nodes). The cache location is chosen by
``r2mri._numba_setup`` (``NUMBA_CACHE_DIR`` wins); run the warm-up with the same
location and the same CPU as the later runs (numba keys cached code on the CPU model).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["warm_up", "KernelState", "WarmupReport"]


@dataclass
class KernelState:
    """One numba kernel after :func:`warm_up`."""

    name: str  #: ``module.function``
    signatures: int  #: specialisations in this process (compiled or loaded)
    compiled: int  #: specialisations compiled (not found in the cache)
    loaded: int  #: specialisations loaded from the cache
    cache_path: str | None  #: directory of its cache files (None: caching disabled)


@dataclass
class WarmupReport:
    """Result of :func:`warm_up`."""

    kernels: list[KernelState]
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)  #: seconds per warm-up step
    cache_enabled: bool = True

    @property
    def compiled(self) -> int:
        """Specialisations compiled (written to the cache) by this warm-up."""
        return sum(k.compiled for k in self.kernels)

    @property
    def loaded(self) -> int:
        """Specialisations that were already in the cache."""
        return sum(k.loaded for k in self.kernels)

    @property
    def cache_paths(self) -> list[str]:
        """The cache directories used (one per source folder)."""
        return sorted({k.cache_path for k in self.kernels if k.cache_path})


_TE_S = np.array([0.006, 0.009, 0.012, 0.015, 0.018])


def _fit_every_model() -> None:
    from .fitting import MODELS, fit

    r2 = np.linspace(20.0, 300.0, 16).reshape(4, 4, 1, 1)
    data = (1000.0 * np.exp(-r2 * _TE_S) + 5.0).astype(np.float32) * np.ones((1, 1, 2, 1), np.float32)
    for model in MODELS:
        if model == "fatwater":  # gradient-echo R2* with fat: needs the field strength
            fit(data, _TE_S, model=model, field_strength_t=1.5)  # magnitude (with or without sigma)
            fit(data, _TE_S, model=model, field_strength_t=1.5, phase_rad=np.zeros(data.shape))  # complex
        elif model != "auto":
            fit(data, _TE_S, model=model, noise_sigma=5.0, coils=1)


def _analyze_phantom() -> None:
    from . import phantom
    from .analysis import analyze

    ph = phantom.generate(matrix=(48, 48), pixel_mm=8.0, n_slices=2)
    labels = ph.truth.labels
    outline = (labels == phantom.LABELS["liver"]) | (labels == phantom.LABELS["vessel"])
    analyze(ph.image, mask=outline)  # the demo's path: a given liver mask
    analyze(ph.image)  # sigma from the background, automatic liver ROI


def _estimate_noise_arrays() -> None:
    from .noise import estimate_noise

    rng = np.random.default_rng(0)
    vol = np.abs(rng.normal(0.0, 5.0, (24, 24, 2, 5)))
    vol[6:18, 6:18] += 500.0 * np.exp(-40.0 * _TE_S)
    for dtype in (np.float64, np.float32):  # arrays given to r2mri.fit keep their dtype here
        try:
            estimate_noise(vol.astype(dtype), echo_times_s=_TE_S)
        except Exception:  # noqa: BLE001 - only the compilation matters here
            pass


#: The warm-up steps, in order: (name, function).
STEPS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("fit: every model", _fit_every_model),
    ("noise: estimate on arrays", _estimate_noise_arrays),
    ("analyze: phantom with a mask and with the automatic ROI", _analyze_phantom),
)


def _states() -> list[KernelState]:
    from . import _numba_setup

    out = []
    for disp in _numba_setup.kernels():
        sigs = list(disp.signatures)
        if not sigs:
            continue
        stats = disp.stats
        func = disp.py_func
        out.append(KernelState(
            name=f"{func.__module__}.{func.__qualname__}", signatures=len(sigs),
            compiled=int(sum(stats.cache_misses.values())), loaded=int(sum(stats.cache_hits.values())),
            cache_path=stats.cache_path if _numba_setup.CACHE_ENABLED else None))
    return out


def warm_up(progress: Callable[[str, float], None] | None = None) -> WarmupReport:
    """Run every r2mri code path that uses numba once, so its kernels are cached.

    Parameters
    ----------
    progress : callable, optional
        ``progress(step_name, seconds)`` after each step.

    Returns
    -------
    WarmupReport
        Per kernel: specialisations compiled now or loaded from the cache, and where
        the cache is.

    Examples
    --------
    >>> from r2mri.warmup import warm_up
    >>> report = warm_up()  # doctest: +SKIP
    >>> report.compiled, report.cache_paths  # doctest: +SKIP
    (31, ['/usr/lib/python3/site-packages/r2mri/__pycache__', ...])
    """
    from . import _numba_setup

    t0 = time.perf_counter()
    steps = {}
    for name, func in STEPS:
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tiny synthetic inputs: warnings are expected
            func()
        steps[name] = time.perf_counter() - t1
        if progress is not None:
            progress(name, steps[name])
    return WarmupReport(kernels=_states(), seconds=time.perf_counter() - t0, steps=steps,
                        cache_enabled=_numba_setup.CACHE_ENABLED)
