"""The in-memory multi-echo image every r2mri stage consumes.

Loading (``r2mri.io``) and the phantom generator (``r2mri.phantom``) produce a
:class:`MultiEchoImage`; the fitter (``r2mri.fit``) consumes one. No maths here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from .errors import InputError

__all__ = ["MultiEchoImage"]


@dataclass
class MultiEchoImage:
    """A multi-echo magnitude series on one spatial grid.

    Parameters
    ----------
    data : ndarray, shape (x, y, z, echo)
        Magnitude signal in real-world units (scanner rescale already applied),
        stored as ``float32``.
    echo_times_s : ndarray, shape (echo,)
        Echo times in **seconds**, strictly ascending; ``data[..., k]`` was
        acquired at ``echo_times_s[k]``.
    affine : ndarray, shape (4, 4)
        Voxel index to RAS+ world coordinates in millimetres (nibabel convention).
    field_strength_t : float or None
        Main field in tesla (``None`` when the source does not say).
    manufacturer : str or None
        Scanner manufacturer as written by the source (``"SIEMENS"``...).
    sequence : str or None
        ``"SE"`` (spin echo), ``"GRE"`` (gradient echo), ``"SE-CPMG"`` ... or ``None``.
    echo_train_length : int or None
        Echoes per excitation; 1 for the FerriScan single-echo protocol, > 1 for a
        multi-echo spin-echo (CPMG) train.
    metadata : dict
        Study/series identifiers, TR (``repetition_time_s``), flip angle, per-echo
        source files and anything else a report should show.
    source_datasets : list or None
        pydicom headers kept to write derived DICOM objects (``None`` for NIfTI).
    phase_rad : ndarray or None
        Phase of the same acquisition in **radians**, wrapped to [-pi, pi], ``float32``,
        same shape as ``data`` (``None`` when only magnitude was given). Filled by the DICOM loader
        when a phase (or real/imaginary) series pairs with the magnitude series, and
        by GRE phantoms; used by complex fat-water fits.

    Examples
    --------
    >>> import numpy as np
    >>> img = MultiEchoImage(np.ones((2, 2, 1, 3)), np.array([0.006, 0.009, 0.012]))
    >>> img.shape, img.n_echoes
    ((2, 2, 1), 3)
    >>> img.select_echoes([1, 2]).echo_times_s.tolist()
    [0.009, 0.012]
    """

    data: np.ndarray
    echo_times_s: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    field_strength_t: float | None = None
    manufacturer: str | None = None
    sequence: str | None = None
    echo_train_length: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source_datasets: list | None = None
    phase_rad: np.ndarray | None = None

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 4:
            raise InputError(f"data: expected a 4-D array (x, y, z, echo), got shape {data.shape}")
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        te = np.asarray(self.echo_times_s, dtype=np.float64).reshape(-1)
        if te.size != data.shape[-1]:
            raise InputError(
                f"echo_times_s: {te.size} echo times for {data.shape[-1]} echoes in data"
            )
        if not np.all(np.isfinite(te)):
            raise InputError(f"echo_times_s: non-finite echo time in {te.tolist()}")
        if te.size > 1 and np.any(np.diff(te) <= 0):
            raise InputError(f"echo_times_s: must be strictly ascending, got {te.tolist()}")
        if np.any(te < 0):
            raise InputError(f"echo_times_s: negative echo time in {te.tolist()}")
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise InputError(f"affine: expected shape (4, 4), got {affine.shape}")
        if self.phase_rad is not None:
            phase = np.asarray(self.phase_rad)
            if phase.shape != data.shape:
                raise InputError(f"phase_rad: shape {phase.shape} differs from data shape {data.shape}")
            if phase.dtype != np.float32:
                phase = phase.astype(np.float32)
            if not np.all(np.isfinite(phase)):
                raise InputError("phase_rad: non-finite phase values")
            if np.any(np.abs(phase) > np.float32(np.pi * (1.0 + 1e-6))):
                raise InputError("phase_rad: values outside [-pi, pi]; expected wrapped phase in radians")
            self.phase_rad = phase
        self.data = data
        self.echo_times_s = te
        self.affine = affine

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape ``(x, y, z)``."""
        return tuple(int(n) for n in self.data.shape[:3])  # type: ignore[return-value]

    @property
    def n_echoes(self) -> int:
        """Number of echoes."""
        return int(self.data.shape[-1])

    @property
    def echo_times_ms(self) -> np.ndarray:
        """Echo times in milliseconds (for display and DICOM)."""
        return self.echo_times_s * 1e3

    @property
    def voxel_size_mm(self) -> tuple[float, float, float]:
        """Voxel edge lengths in millimetres, from the affine's column norms."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    def select_echoes(self, indices: Sequence[int] | np.ndarray) -> "MultiEchoImage":
        """Return a new image holding only the echoes at ``indices`` (kept in TE order).

        Parameters
        ----------
        indices : sequence of int or boolean mask
            Echo indices to keep.
        """
        idx = np.arange(self.n_echoes)[np.asarray(indices)]
        idx = np.unique(idx)
        if idx.size == 0:
            raise InputError("indices: no echoes selected")
        meta = dict(self.metadata)
        files = meta.get("echo_files")
        if isinstance(files, list) and len(files) == self.n_echoes:
            meta["echo_files"] = [files[i] for i in idx]
        return replace(
            self,
            data=self.data[..., idx],
            echo_times_s=self.echo_times_s[idx],
            metadata=meta,
            phase_rad=None if self.phase_rad is None else self.phase_rad[..., idx],
        )

    def protocol_report(self) -> list:
        """Protocol findings (severity error/warning/info) for this acquisition.

        See :func:`r2mri.io.protocol.check_protocol`.
        """
        from .io.protocol import check_protocol

        return check_protocol(self)
