"""``generate``: spec -> anatomy -> iron -> signal -> coils and noise, in memory."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._heterogeneity import category_fractions
from .._version import __version__
from ..calibration import lic_from_r2
from ..image import MultiEchoImage
from ._anatomy import LABELS, affine_ras, grid_mm, label_map
from ._iron import lic_map, tissue_maps
from ._gre import complex_signal, fat_fraction_map, field_map_hz
from ._noise import coil_maps, rss_and_combined, rss_noisy
from ._noise_gain import body_noise_gain, with_gain
from ._noise_shape import noise_shaper
from ._s0_texture import s0_texture
from ._signal import decay
from ._spec import PhantomSpec, resolve_spec

__all__ = ["Phantom", "Truth", "generate", "SNR_DEFINITION", "MANUFACTURER"]

MANUFACTURER = "r2mri-phantom"
SNR_DEFINITION = (
    "mean over the liver mask (vessels excluded) of the noise-free S0 (signal at TE = 0, "
    "receive shading included) divided by the per-channel noise standard deviation sigma "
    "(of the real, and of the imaginary, part of each coil channel)"
)
NOISE_MODEL = (
    "complex white Gaussian noise, sigma per real/imaginary part, independent per coil "
    "channel, voxel and echo; root-sum-of-squares over the coils (non-central chi with "
    "2 x coils degrees of freedom)"
)


@dataclass
class Truth:
    """Exact ground truth of a phantom (all arrays have the image's spatial shape).

    Attributes
    ----------
    r2_per_s : ndarray float64
        The simulated relaxation rate (R2 for spin echo, R2* for gradient echo);
        NaN in air.
    lic_mg_per_g : ndarray float64
        LIC in liver parenchyma, NaN elsewhere.
    s0 : ndarray float64
        Noise-free RSS signal at TE = 0 (proton density x receive shading x scale).
    labels : ndarray uint8
        Tissue labels (:data:`r2mri.phantom.LABELS`).
    liver_mask : ndarray bool
        Liver parenchyma, vessels excluded (``labels == LABELS["liver"]``).
    summary : dict
        The contents of ``truth.json``.
    pdff_percent, water, fat, field_hz : ndarray float64 or None
        Gradient echo with ``fat_water`` or a field map only (else None): signal fat
        fraction ``100 F / (W + F)`` (NaN in air), water and fat signal at TE = 0 (RSS
        scale, their sum is ``s0``), and the off-resonance in Hz (NaN in air).
    """

    r2_per_s: np.ndarray
    lic_mg_per_g: np.ndarray
    s0: np.ndarray
    labels: np.ndarray
    liver_mask: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)
    pdff_percent: np.ndarray | None = None
    water: np.ndarray | None = None
    fat: np.ndarray | None = None
    field_hz: np.ndarray | None = None


@dataclass(repr=False)
class Phantom:
    """A generated phantom: the image, its exact truth, the noise-free signal and the spec."""

    image: MultiEchoImage
    truth: Truth
    noise_free: np.ndarray
    spec: PhantomSpec
    seed: int

    def __repr__(self) -> str:
        s = self.truth.summary
        lic = s.get("lic_of_mean_r2_mg_per_g")
        lic_txt = f"{lic:.3g}" if lic is not None else "n/a"
        return (
            f"Phantom({self.spec.name!r}, shape={self.image.shape}, echoes={self.image.n_echoes}, "
            f"{self.spec.field_strength_t:g} T {self.spec.sequence}, lic_of_mean_r2={lic_txt} mg/g, "
            f"snr={self.spec.snr:g}, coils={self.spec.coils}, seed={self.seed}"
            + (f", pdff={s['mean_liver_pdff_percent']:.3g}%" if s.get("fat_water") and _has_pdff(s) else "")
            + (", phase" if self.image.phase_rad is not None else "") + ")"
        )

    @property
    def summary(self) -> dict[str, Any]:
        """``truth.json`` contents (same object as ``truth.summary``)."""
        return self.truth.summary


def _has_pdff(summary: dict) -> bool:
    """Whether the summary carries a liver PDFF (a liver exists)."""
    return summary.get("mean_liver_pdff_percent") is not None


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def generate(spec: "str | Path | PhantomSpec | None" = None, *, seed: int = 0, **overrides: Any) -> Phantom:
    """Generate a digital liver phantom with exact ground truth, in memory.

    Parameters
    ----------
    spec : str, path, PhantomSpec or None
        A shipped phantom name (:func:`list_specs`), a path to a phantom TOML file,
        a :class:`PhantomSpec`, or ``None`` for the FerriScan 1.5 T default.
    seed : int, default 0
        Seed of the noise. The same seed gives the same image bit for bit; the
        anatomy and iron texture depend only on the spec (``texture_seed``).
    **overrides
        Any :class:`PhantomSpec` field (``snr=20``, ``lic_mg_per_g=7``, ``matrix=(64, 64)``...);
        ``lic`` is accepted for ``lic_mg_per_g``.

    Returns
    -------
    Phantom
        ``.image`` (:class:`~r2mri.MultiEchoImage`), ``.truth`` (:class:`Truth`),
        ``.summary`` (truth.json dict), ``.noise_free`` (float32 image without noise).

    Raises
    ------
    r2mri.InputError
        Unknown spec name or key, or an invalid value.

    Examples
    --------
    >>> from r2mri.phantom import generate
    >>> ph = generate(lic=7.0, matrix=(48, 48), pixel_mm=8.0, n_slices=3, seed=1)
    >>> ph.image.shape, ph.image.n_echoes
    ((48, 48, 3), 5)
    >>> round(ph.summary["lic_of_mean_r2_mg_per_g"], 3)
    7.0
    >>> g = generate("gre-1.5t-fat15-lic3.2", matrix=(32, 32), pixel_mm=12.0, n_slices=2, pdff_percent=30)
    >>> g.image.phase_rad.shape == g.image.data.shape, g.summary["mean_liver_pdff_percent"]
    (True, 30.0)
    """
    seed = _checked_seed(seed)
    sp = resolve_spec(spec, overrides)
    spacing = sp.slice_spacing_mm
    x, y, z = grid_mm(sp.matrix, sp.pixel_mm, sp.n_slices, spacing)
    labels = label_map(sp.matrix, sp.pixel_mm, sp.n_slices, spacing, vessels=sp.vessels)
    liver = labels == LABELS["liver"]
    lic = lic_map(labels, x, y, z, sp)
    pd, rate, t1 = tissue_maps(labels, lic, sp)
    if sp.s0_log_sd > 0:
        pd = pd * s0_texture(labels, z, sp)
    body2d, sens, s0, mean_s0, sigma = _receive(sp, labels, liver, x, y, pd)
    gre = _gre_truth(labels, x, y, z, s0, sp) if sp.complex_signal else None
    gain = body_noise_gain(body2d, sp.body_noise_ratio)  # noise in the body vs the air (default off)
    signal, data, phase = _acquire(sp, labels, rate, t1, s0, gre, sens, sigma, seed, gain)
    if sp.zero_background:
        data[labels == LABELS["air"]] = 0.0
        if phase is not None:
            phase[labels == LABELS["air"]] = 0.0

    te_s = np.asarray(sp.echo_times_s)
    affine = affine_ras(sp.matrix, sp.pixel_mm, sp.n_slices, spacing)
    summary: dict[str, Any] = {
        **_acquisition_summary(sp, seed, te_s),
        **_liver_summary(sp, rate, lic, liver),
        **_noise_summary(sp, mean_s0, sigma, gain, liver),
        "labels": dict(LABELS),
        "geometry": {"matrix": list(sp.matrix), "n_slices": int(sp.n_slices), "pixel_mm": float(sp.pixel_mm),
                     "slice_thickness_mm": float(sp.slice_thickness_mm), "slice_gap_mm": float(sp.slice_gap_mm),
                     "slice_spacing_mm": float(spacing), "affine_ras_mm": affine.tolist()},
        "spec": sp.to_dict(),
    }
    if gre is not None:
        summary.update(_gre_summary(gre, liver, sp))
    image = MultiEchoImage(
        data=data.astype(np.float32),
        echo_times_s=te_s,
        affine=affine,
        field_strength_t=float(sp.field_strength_t),
        manufacturer=MANUFACTURER,
        sequence=sp.sequence,
        echo_train_length=sp.echo_train_length,
        metadata=_image_metadata(sp, seed, sigma),
        phase_rad=phase,
    )
    truth = Truth(r2_per_s=rate, lic_mg_per_g=lic, s0=s0, labels=labels, liver_mask=liver, summary=summary,
                  **({k: gre[k] for k in ("pdff_percent", "water", "fat", "field_hz")} if gre is not None else {}))
    return Phantom(image=image, truth=truth, noise_free=signal.astype(np.float32), spec=sp, seed=seed)


def _checked_seed(seed) -> int:
    """The noise seed as an int; InputError unless an integer >= 0."""
    if int(seed) != seed or seed < 0:
        from ..errors import InputError

        raise InputError(f"seed: must be an integer >= 0, got {seed!r}")
    return int(seed)


def _receive(sp, labels, liver, x, y, pd):
    """Receive chain: ``(body2d, coil sensitivities, S0 with the shading, mean liver S0,
    channel noise sigma)``; sigma is the mean liver S0 (the body's when there is no
    liver) over the SNR, 0 for an infinite SNR."""
    body2d = (labels != LABELS["air"]).any(axis=2)
    sens, shading = coil_maps(x, y, int(sp.coils), sp.coil_shading, body2d)
    s0 = sp.intensity_scale * pd * shading[:, :, None]
    ref = s0[liver] if liver.any() else s0[labels != LABELS["air"]]
    mean_s0 = float(ref.mean()) if ref.size else float(sp.intensity_scale)
    sigma = 0.0 if math.isinf(sp.snr) else mean_s0 / sp.snr
    return body2d, sens, s0, mean_s0, sigma


def _acquisition_summary(sp, seed: int, te_s: np.ndarray) -> dict[str, Any]:
    """truth.json: generator, spec, field, sequence, echo times, decay and calibration."""
    return {
        "generator": "r2mri.phantom",
        "generator_version": __version__,
        "spec_name": sp.name,
        "description": sp.description,
        "seed": seed,
        "texture_seed": int(sp.texture_seed),
        "field_strength_t": float(sp.field_strength_t),
        "sequence": sp.sequence,
        "rate_quantity": "R2*" if sp.sequence == "GRE" else "R2",
        "echo_times_s": [float(t) for t in te_s],
        "echo_times_ms": [float(t) for t in sp.echo_times_ms],
        "repetition_time_s": sp.repetition_time_ms / 1000.0,
        "echo_train_length": sp.echo_train_length,
        "refocusing_flip_deg": float(sp.refocusing_flip_deg * sp.b1_scale) if sp.sequence == "SE-CPMG" else None,
        "decay": sp.decay,
        "calibration": sp.calibration_name,
        "lic_nominal_mg_per_g": float(sp.lic_mg_per_g),
    }


def _liver_summary(sp, rate, lic, liver) -> dict[str, Any]:
    """truth.json: the liver's volume, rate and LIC statistics and heterogeneity truth."""
    r2_liver = rate[liver]
    lic_liver = lic[liver]
    n_liver = int(liver.sum())
    voxel_ml = sp.pixel_mm * sp.pixel_mm * sp.slice_thickness_mm / 1000.0
    mean_r2 = float(r2_liver.mean()) if n_liver else float("nan")
    cal = sp.calibration_name
    return {
        "liver_voxels": n_liver,
        "liver_volume_ml": n_liver * voxel_ml,
        "mean_liver_r2_per_s": _finite_or_none(mean_r2),
        "median_liver_r2_per_s": _finite_or_none(float(np.median(r2_liver))) if n_liver else None,
        "sd_liver_r2_per_s": _finite_or_none(float(r2_liver.std(ddof=1))) if n_liver > 1 else None,
        "lic_of_mean_r2_mg_per_g": _finite_or_none(float(lic_from_r2(mean_r2, calibration=cal))) if n_liver else None,
        "texture_log_sd": float(sp.texture_log_sd),
        "texture_scale_voxels": float(sp.texture_scale_mm / sp.pixel_mm),
        "mean_voxel_lic_mg_per_g": _finite_or_none(float(lic_liver.mean())) if n_liver else None,
        "median_voxel_lic_mg_per_g": _finite_or_none(float(np.median(lic_liver))) if n_liver else None,
        "sd_voxel_lic_mg_per_g": _finite_or_none(float(lic_liver.std(ddof=1))) if n_liver > 1 else None,
        # heterogeneity truth (what r2mri._heterogeneity estimates): population CV of the
        # rate and the share of liver voxels per clinical LIC category
        "cv_liver_r2": _finite_or_none(float(r2_liver.std() / mean_r2)) if n_liver else None,
        "liver_category_fractions": category_fractions(lic_liver) if n_liver else None,
    }


def _noise_summary(sp, mean_s0: float, sigma: float, gain, liver) -> dict[str, Any]:
    """truth.json: S0, noise sigma and its shaping, coils, SNR and the noise model."""
    n_liver = int(liver.sum())
    return {
        "mean_liver_s0": mean_s0,
        **({"s0_texture_log_sd": float(sp.s0_log_sd), "s0_texture_scale_voxels": float(sp.s0_correlation_voxels)}
           if sp.s0_log_sd > 0 else {}),
        "noise_sigma": sigma,
        **({"noise_interpolation": int(sp.noise_interpolation), "noise_smoothing_voxels": float(sp.noise_smoothing_voxels)}
           if sp.noise_interpolation > 1 or sp.noise_smoothing_voxels > 0 else {}),
        **({"body_noise_ratio": float(sp.body_noise_ratio),
            "noise_sigma_liver_mean": float(sigma * np.broadcast_to(gain[:, :, None], liver.shape)[liver].mean())
            if n_liver else None} if gain is not None else {}),
        "coils": int(sp.coils),
        "snr": _finite_or_none(sp.snr),
        "snr_definition": SNR_DEFINITION,
        "noise_model": NOISE_MODEL if sigma > 0 else "none (noise-free)",
        "zero_background": bool(sp.zero_background),
    }


def _image_metadata(sp, seed: int, sigma: float) -> dict[str, Any]:
    """The image's metadata: timing, flip angles, noise, coils, slices and the spec."""
    return {
        "repetition_time_s": sp.repetition_time_ms / 1000.0,
        "flip_angle_deg": float(sp.excitation_flip_deg),
        "refocusing_flip_deg": float(sp.refocusing_flip_deg * sp.b1_scale),
        "noise_sigma": sigma,
        "coils": int(sp.coils),
        "snr": _finite_or_none(sp.snr),
        "slice_thickness_mm": float(sp.slice_thickness_mm),
        "slice_gap_mm": float(sp.slice_gap_mm),
        "phantom_spec": sp.name,
        "phantom_seed": seed,
        "series_description": sp.description,
    }


def _acquire(sp, labels, rate, t1, s0, gre, sens, sigma: float, seed: int, gain=None):
    """(noise-free RSS signal, noisy RSS magnitude, phase or None): the real decay model
    with RSS noise, or for complex GRE phantoms the complex water-fat signal with RSS
    magnitude and the phase of the Roemer-combined channels."""
    if gre is None:
        signal = s0[..., None] * decay(rate, t1, labels, sp)
        if sigma > 0:
            return signal, rss_noisy(signal, sens, sigma, np.random.default_rng(seed), with_gain(noise_shaper(sp), gain)), None
        return signal, signal.copy(), None
    csig = complex_signal(gre["water"], gre["fat"], rate, gre["field_hz"], sp)
    signal = np.abs(csig)
    if sigma > 0:
        data, comb = rss_and_combined(csig, sens, sigma, np.random.default_rng(seed), with_gain(noise_shaper(sp), gain))
    else:
        data, comb = signal.astype(np.float32), csig
    return signal, data, np.angle(comb).astype(np.float32)


PHASE_CONVENTION = (
    "phase = arg of the sensitivity-weighted complex coil combination (Roemer 1990) of the "
    "noisy channels, radians in [-pi, pi]; the noise-free phase is arg[(W + F c(t)) "
    "exp(i 2 pi psi t)], advancing as +2 pi f t for a frequency f (fat peaks negative), no "
    "initial phase"
)


def _gre_truth(labels, x, y, z, s0, sp) -> dict[str, np.ndarray]:
    """Water, fat, PDFF and field-map truth of a complex GRE phantom."""
    ff = fat_fraction_map(labels, sp)
    air = labels == LABELS["air"]
    pdff = 100.0 * ff
    pdff[air] = np.nan
    return {"water": s0 * (1.0 - ff), "fat": s0 * ff, "pdff_percent": pdff,
            "field_hz": field_map_hz(labels, x, y, z, sp)}


def _gre_summary(gre: dict, liver: np.ndarray, sp) -> dict[str, Any]:
    """truth.json entries of a complex GRE phantom (liver PDFF, fat spectrum, field, phase)."""
    from ..fatwater import load_fat_spectrum

    n = int(liver.sum())
    p = gre["pdff_percent"][liver]
    f = gre["field_hz"][liver]
    out: dict[str, Any] = {
        "fat_water": bool(sp.fat_water),
        "pdff_nominal_percent": float(sp.pdff_percent),
        "mean_liver_pdff_percent": float(p.mean()) if n else None,
        "median_liver_pdff_percent": float(np.median(p)) if n else None,
        "b0_peak_hz": float(sp.b0_peak_hz),
        "mean_liver_field_hz": float(f.mean()) if n else None,
        "min_liver_field_hz": float(f.min()) if n else None,
        "max_liver_field_hz": float(f.max()) if n else None,
        "phase_convention": PHASE_CONVENTION,
    }
    if sp.fat_water:
        fs = load_fat_spectrum(sp.fat_spectrum)
        out["fat_spectrum"] = {"name": fs.name, "frequencies_ppm": list(fs.frequencies_ppm),
                               "relative_amplitudes": list(fs.relative_amplitudes),
                               "doi": fs.citation.get("doi"), "verified": fs.verified}
    return out
