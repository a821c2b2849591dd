"""Phantom definitions: the :class:`PhantomSpec` dataclass and the TOML specs in ``phantoms/``.

Every key of a ``phantoms/*.toml`` file is a field of :class:`PhantomSpec`
(documented in ``phantoms/README.md``); unknown keys are an error, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .._resources import phantom_specs_dir
from .._toml import read_toml
from ..errors import InputError

__all__ = ["PhantomSpec", "list_specs", "resolve_spec"]

_SEQUENCES = ("SE", "SE-CPMG", "GRE")
_DECAYS = ("mono", "biexp")


@dataclass(frozen=True)
class PhantomSpec:
    """Everything that defines a digital liver phantom (see ``phantoms/README.md``).

    Defaults are the FerriScan 1.5 T protocol (five single-echo spin-echo series,
    TE 6/9/12/15/18 ms, TR 1000 ms, 11 axial slices of 5 mm with a 2.5 mm gap) on a
    256 x 256 matrix of 1.5 mm pixels, with a uniform liver at 3.2 mg/g.

    Examples
    --------
    >>> spec = PhantomSpec(lic_mg_per_g=7.0, matrix=(64, 64), pixel_mm=6.0)
    >>> spec.slice_spacing_mm
    7.5
    """

    name: str = "ferriscan-1.5t"
    description: str = "FerriScan-like 1.5 T single-echo spin-echo protocol"
    # acquisition
    field_strength_t: float = 1.5
    sequence: str = "SE"
    echo_times_ms: tuple[float, ...] = (6.0, 9.0, 12.0, 15.0, 18.0)
    repetition_time_ms: float = 1000.0
    excitation_flip_deg: float = 90.0
    refocusing_flip_deg: float = 180.0
    b1_scale: float = 1.0
    # geometry
    matrix: tuple[int, int] = (256, 256)
    pixel_mm: float = 1.5
    n_slices: int = 11
    slice_thickness_mm: float = 5.0
    slice_gap_mm: float = 2.5
    vessels: bool = True
    # iron
    lic_mg_per_g: float = 3.2
    lic_cv: float = 0.0
    lic_log_sd: float = 0.0
    lic_correlation_mm: float = 20.0
    lic_correlation_voxels: float = 0.0
    lic_lr_gradient: float = 0.0
    focal: tuple[dict, ...] = ()
    texture_seed: int = 0
    # fine S0 texture in the liver (proton density / T1 / partial volume within a tile; r2mri/phantom/_s0_texture.py)
    s0_log_sd: float = 0.0
    s0_correlation_voxels: float = 1.0
    calibration: str | None = None
    # decay
    decay: str = "mono"
    biexp_slow_fraction: float = 0.0
    biexp_slow_r2_per_s: float = 20.0
    # gradient echo: water and fat, B0 field (docs/phantoms.md, "Gradient echo with fat")
    fat_water: bool = False
    pdff_percent: float = 0.0
    fat_spectrum: str = "liver-fat-6peak"
    b0_peak_hz: float = 0.0
    # coils and noise
    snr: float = 50.0
    coils: int = 4
    coil_shading: float = 0.5
    # spatially correlated noise, in-plane (r2mri/phantom/_noise_shape.py; off by default)
    noise_interpolation: int = 1
    noise_smoothing_voxels: float = 0.0
    # noise SD in the body over the air's (parallel-imaging g-factor and the like; r2mri/phantom/_noise_gain.py; 1: off)
    body_noise_ratio: float = 1.0
    intensity_scale: float = 1000.0
    zero_background: bool = False

    def __post_init__(self) -> None:
        # Normalise sequences coming from TOML (lists) to tuples so the spec is hashable.
        object.__setattr__(self, "echo_times_ms", tuple(float(t) for t in self.echo_times_ms))
        object.__setattr__(self, "matrix", tuple(int(n) for n in self.matrix))
        object.__setattr__(self, "focal", tuple(dict(f) for f in self.focal))
        self._validate()

    # ------------------------------------------------------------------ derived
    @property
    def slice_spacing_mm(self) -> float:
        """Centre-to-centre slice distance: thickness plus gap."""
        return float(self.slice_thickness_mm + self.slice_gap_mm)

    @property
    def texture_log_sd(self) -> float:
        """SD of the texture in log LIC: ``lic_log_sd``, or ``sqrt(ln(1 + lic_cv^2))`` (log-normal moments)."""
        import math as _m

        return float(self.lic_log_sd) if self.lic_log_sd > 0 else _m.sqrt(_m.log1p(self.lic_cv**2))

    @property
    def texture_scale_mm(self) -> float:
        """SD of the texture's Gaussian smoothing kernel, mm (in-plane): ``lic_correlation_voxels``
        x ``pixel_mm`` when set, else ``lic_correlation_mm``."""
        return float(self.lic_correlation_voxels * self.pixel_mm) if self.lic_correlation_voxels > 0 \
            else float(self.lic_correlation_mm)

    @property
    def echo_times_s(self) -> tuple[float, ...]:
        """Echo times in seconds."""
        return tuple(round(t * 1e-3, 12) for t in self.echo_times_ms)

    @property
    def echo_train_length(self) -> int:
        """Echoes per excitation: 1 for single-echo SE series, else the number of echoes."""
        return 1 if self.sequence == "SE" else len(self.echo_times_ms)

    @property
    def complex_signal(self) -> bool:
        """Whether the GRE signal is simulated complex (water + fat, field map) with a phase image."""
        return self.sequence == "GRE" and (bool(self.fat_water) or self.b0_peak_hz != 0.0)

    @property
    def calibration_name(self) -> str:
        """The calibration that maps LIC to the simulated rate (explicit or by field/sequence)."""
        if self.calibration:
            return self.calibration
        if self.sequence == "GRE":
            return "wood-2005-r2star"
        if abs(self.field_strength_t - 3.0) < 0.25:
            return "st-pierre-2005-3t-scaled"
        return "st-pierre-2005"

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-friendly dict of every field."""
        out = asdict(self)
        out["echo_times_ms"] = list(self.echo_times_ms)
        out["matrix"] = list(self.matrix)
        out["focal"] = [dict(f) for f in self.focal]
        if math.isinf(self.snr):
            out["snr"] = "inf"
        return out

    # --------------------------------------------------------------- validation
    def _validate(self) -> None:
        def bad(key: str, why: str) -> InputError:
            return InputError(f"phantom spec {self.name!r}: {key} {why}")

        if self.sequence not in _SEQUENCES:
            raise bad("sequence", f"must be one of {_SEQUENCES}, got {self.sequence!r}")
        if self.decay not in _DECAYS:
            raise bad("decay", f"must be one of {_DECAYS}, got {self.decay!r}")
        te = self.echo_times_ms
        if len(te) < 1 or any(not math.isfinite(t) or t <= 0 for t in te):
            raise bad("echo_times_ms", f"must be positive finite values, got {list(te)}")
        if any(b <= a for a, b in zip(te, te[1:])):
            raise bad("echo_times_ms", f"must be strictly ascending, got {list(te)}")
        if self.sequence == "SE-CPMG":
            esp = te[0]
            if any(abs(t - (k + 1) * esp) > 1e-6 * esp for k, t in enumerate(te)):
                raise bad("echo_times_ms", f"must be multiples 1..n of the echo spacing for SE-CPMG, got {list(te)}")
        if len(self.matrix) != 2 or min(self.matrix) < 8:
            raise bad("matrix", f"must be two sizes >= 8, got {list(self.matrix)}")
        for key in ("pixel_mm", "slice_thickness_mm", "repetition_time_ms", "field_strength_t",
                    "intensity_scale", "lic_correlation_mm"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v > 0):
                raise bad(key, f"must be a positive number, got {v!r}")
        if self.slice_gap_mm < 0:
            raise bad("slice_gap_mm", f"must be >= 0, got {self.slice_gap_mm!r}")
        if self.n_slices < 1:
            raise bad("n_slices", f"must be >= 1, got {self.n_slices!r}")
        if not (self.lic_mg_per_g > 0 and math.isfinite(self.lic_mg_per_g)):
            raise bad("lic_mg_per_g", f"must be a positive number, got {self.lic_mg_per_g!r}")
        if not (0 <= self.lic_cv < 2):
            raise bad("lic_cv", f"must be in [0, 2), got {self.lic_cv!r}")
        if not (0 <= self.lic_log_sd <= 1.5):
            raise bad("lic_log_sd", f"must be in [0, 1.5], got {self.lic_log_sd!r}")
        if self.lic_log_sd > 0 and self.lic_cv > 0:
            raise bad("lic_log_sd", "and lic_cv both set: give the texture's spread one way")
        if not (0 <= self.lic_correlation_voxels <= 64):
            raise bad("lic_correlation_voxels", f"must be in [0, 64] (0: use lic_correlation_mm), got {self.lic_correlation_voxels!r}")
        if not (0 <= self.s0_log_sd <= 1):
            raise bad("s0_log_sd", f"must be in [0, 1], got {self.s0_log_sd!r}")
        if not (0 < self.s0_correlation_voxels <= 64):
            raise bad("s0_correlation_voxels", f"must be in (0, 64], got {self.s0_correlation_voxels!r}")
        if not (-1.9 < self.lic_lr_gradient < 1.9):
            raise bad("lic_lr_gradient", f"must be in (-1.9, 1.9), got {self.lic_lr_gradient!r}")
        if not (self.snr > 0):
            raise bad("snr", f"must be > 0 (inf for no noise), got {self.snr!r}")
        if int(self.coils) != self.coils or self.coils < 1:
            raise bad("coils", f"must be an integer >= 1, got {self.coils!r}")
        if int(self.noise_interpolation) != self.noise_interpolation or not (1 <= self.noise_interpolation <= 8):
            raise bad("noise_interpolation", f"must be an integer in [1, 8] (1: off), got {self.noise_interpolation!r}")
        if not (0 <= self.noise_smoothing_voxels <= 8):
            raise bad("noise_smoothing_voxels", f"must be in [0, 8] (0: off), got {self.noise_smoothing_voxels!r}")
        if not (0.5 <= self.body_noise_ratio <= 2):
            raise bad("body_noise_ratio", f"must be in [0.5, 2] (1: off), got {self.body_noise_ratio!r}")
        if not (0 <= self.coil_shading <= 2):
            raise bad("coil_shading", f"must be in [0, 2], got {self.coil_shading!r}")
        if not (0 <= self.biexp_slow_fraction < 1):
            raise bad("biexp_slow_fraction", f"must be in [0, 1), got {self.biexp_slow_fraction!r}")
        if not (0 < self.refocusing_flip_deg <= 180 and 0 < self.excitation_flip_deg <= 90):
            raise bad("refocusing_flip_deg/excitation_flip_deg", "must be in (0, 180] / (0, 90] degrees")
        if not (0 < self.b1_scale <= 2):
            raise bad("b1_scale", f"must be in (0, 2], got {self.b1_scale!r}")
        self._validate_gre()
        for i, f in enumerate(self.focal):
            missing = {"center_mm", "radius_mm", "lic_mg_per_g"} - set(f)
            extra = set(f) - {"center_mm", "radius_mm", "lic_mg_per_g"}
            if missing or extra:
                raise bad(f"focal[{i}]", f"needs exactly center_mm, radius_mm, lic_mg_per_g (missing {sorted(missing)}, unknown {sorted(extra)})")
            if len(f["center_mm"]) != 3 or not f["radius_mm"] > 0 or not f["lic_mg_per_g"] > 0:
                raise bad(f"focal[{i}]", "center_mm needs 3 numbers, radius_mm and lic_mg_per_g must be > 0")

    def _validate_gre(self) -> None:
        def bad(key: str, why: str) -> InputError:
            return InputError(f"phantom spec {self.name!r}: {key} {why}")

        if not isinstance(self.fat_water, bool):
            raise bad("fat_water", f"must be true or false, got {self.fat_water!r}")
        if not (math.isfinite(self.pdff_percent) and 0.0 <= self.pdff_percent < 100.0):
            raise bad("pdff_percent", f"must be in [0, 100), got {self.pdff_percent!r}")
        if not math.isfinite(self.b0_peak_hz) or abs(self.b0_peak_hz) > 1000.0:
            raise bad("b0_peak_hz", f"must be a finite off-resonance within +-1000 Hz, got {self.b0_peak_hz!r}")
        if self.sequence != "GRE" and (self.fat_water or self.pdff_percent or self.b0_peak_hz):
            raise bad("fat_water/pdff_percent/b0_peak_hz", f"apply to sequence 'GRE' only, not {self.sequence!r}")
        if self.pdff_percent and not self.fat_water:
            raise bad("pdff_percent", "needs fat_water = true (the water-only GRE model has no fat)")
        if self.complex_signal and self.decay != "mono":
            raise bad("decay", "must be 'mono' with fat_water = true or a field map (the complex GRE model "
                               "has one R2* for water and fat)")
        if self.sequence == "GRE" and not self.calibration and abs(self.field_strength_t - 1.5) > 0.25:
            raise bad("calibration", f"must name an R2* calibration for GRE at {self.field_strength_t:g} T "
                                     "(the default wood-2005-r2star is a 1.5 T curve)")
        if self.fat_water:
            from ..fatwater import load_fat_spectrum

            load_fat_spectrum(self.fat_spectrum)  # InputError naming the spectrum if unknown


_FIELDS = {f.name for f in fields(PhantomSpec)}
#: Short aliases accepted as overrides (CLI flags, ``generate(lic=...)``).
_ALIASES = {"lic": "lic_mg_per_g"}


def _coerce(key: str, value: Any) -> Any:
    if key == "snr" and isinstance(value, str) and value.lower() in ("inf", "infinity", "none"):
        return math.inf
    return value


def spec_from_dict(data: dict[str, Any], *, source: str) -> PhantomSpec:
    """Build a spec from a TOML-like dict, rejecting unknown keys (``source`` names the file)."""
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise InputError(f"{source}: unknown phantom spec key(s) {unknown} (see phantoms/README.md)")
    try:
        return PhantomSpec(**{k: _coerce(k, v) for k, v in data.items()})
    except TypeError as exc:
        raise InputError(f"{source}: {exc}") from None


def load_spec_file(path: str | Path) -> PhantomSpec:
    """Read one phantom TOML file."""
    path = Path(path)
    data = read_toml(path, what="phantom spec file")
    data.setdefault("name", path.stem)
    return spec_from_dict(data, source=str(path))


def list_specs() -> list[str]:
    """Names of the phantom definitions shipped in ``phantoms/``.

    Returns
    -------
    list of str
        Sorted spec names, usable as ``generate(name)`` or ``r2mri phantom NAME``.

    Examples
    --------
    >>> from r2mri.phantom import list_specs
    >>> "ferriscan-1.5t-lic3.2" in list_specs()
    True
    """
    return sorted(p.stem for p in phantom_specs_dir().glob("*.toml"))


def resolve_spec(spec: "str | Path | PhantomSpec | None", overrides: dict[str, Any]) -> PhantomSpec:
    """Turn a name / path / spec / None plus keyword overrides into a validated spec."""
    if spec is None:
        base = PhantomSpec()
    elif isinstance(spec, PhantomSpec):
        base = spec
    elif isinstance(spec, (str, Path)):
        text = str(spec)
        named = phantom_specs_dir() / f"{text}.toml"
        if text == PhantomSpec.name:  # the built-in default, as the demo and reports name it
            base = PhantomSpec()
        elif named.is_file():
            base = load_spec_file(named)
        elif Path(text).is_file():
            base = load_spec_file(text)
        else:
            raise InputError(
                f"spec: {text!r} is neither a shipped phantom name nor a TOML file "
                f"(names: {PhantomSpec.name} (the default), {', '.join(list_specs())})"
            )
    else:
        raise InputError(f"spec: expected a name, a path, a PhantomSpec or None, got {type(spec).__name__}")
    if not overrides:
        return base
    clean: dict[str, Any] = {}
    for key, value in overrides.items():
        key = _ALIASES.get(key, key)
        if key not in _FIELDS:
            raise InputError(f"{key}: unknown phantom option (see phantoms/README.md)")
        clean[key] = _coerce(key, value)
    changed = {k: v for k, v in clean.items() if k not in ("name", "description") and v != getattr(base, k)}
    if changed and "description" not in clean:  # the shipped text would describe another phantom
        from ._describe import override_description

        clean["description"] = override_description(base.name, changed)  # the actual parameters first
    try:
        return replace(base, **clean)
    except TypeError as exc:
        raise InputError(f"phantom options: {exc}") from None
