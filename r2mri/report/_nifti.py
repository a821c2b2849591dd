"""NIfTI maps with BIDS-style names, their JSON sidecars, and settings.json.

File names (BIDS derivatives style; LIC has no BIDS suffix, so it is a ``desc-``):

===========================  =========  =====================================
file                         unit       content
===========================  =========  =====================================
``R2map.nii.gz``             1/s        fitted R2
``T2map.nii.gz``             s          1 / R2
``S0map.nii.gz``             a.u.       fitted signal at TE = 0
``desc-R2std_R2map.nii.gz``  1/s        standard error of R2 (fit covariance)
``desc-LIC_map.nii.gz``      mg/g       LIC, mg Fe per g dry tissue
``desc-fitstatus_dseg``      code       r2mri.FitStatus per voxel (uint8)
``desc-liver_mask.nii.gz``   0/1        the liver ROI the statistics used
===========================  =========  =====================================

Gradient-echo data (R2*, see ``_labels.quantity_of``): ``R2starmap``, ``T2starmap``,
``desc-R2starstd_R2starmap`` instead of the R2 names (BIDS has the ``R2starmap`` and
``T2starmap`` suffixes); with a fat-water fit also

=================================  =====  ==============================================
``desc-PDFF_map.nii.gz``           %      proton density fat fraction 100 F / (W + F)
``desc-water_S0map.nii.gz``        a.u.   water signal at TE = 0 (W)
``desc-fat_S0map.nii.gz``          a.u.   fat signal at TE = 0 (F; all peaks)
``desc-fatwater_fieldmap.nii.gz``  Hz     B0 off-resonance, only when the fit made one
=================================  =====  ==============================================

``S0map`` is then W + F. BIDS has no suffix for PDFF, so it is a ``desc-`` like LIC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path, atomic_write_text
from ._labels import Labels, labels_of

__all__ = ["write_nifti_maps", "MAP_FILES", "map_files"]

#: name -> (unit, description)
MAP_FILES = {
    "R2map": ("1/s", "Transverse relaxation rate R2 from the voxel-wise fit"),
    "T2map": ("s", "Transverse relaxation time T2 = 1/R2"),
    "S0map": ("arbitrary", "Fitted signal at echo time 0"),
    "desc-R2std_R2map": ("1/s", "Standard error of R2 from the fit covariance"),
    "desc-LIC_map": ("mg/g", "Liver iron concentration, mg Fe per g dry tissue"),
    "desc-fitstatus_dseg": ("", "Fit status code per voxel (r2mri.FitStatus: 0 ok, 1 not converged, "
                            "2 bound hit, 3 below noise, 4 too few echoes, 5 bad input, 255 masked)"),
    "desc-liver_mask": ("", "Liver ROI used for the statistics (1 inside)"),
}

#: The fat-water maps: name -> (``fit.extra`` key, unit, description).
FATWATER_FILES = {
    "desc-PDFF_map": ("pdff_percent", "%", "Proton density fat fraction 100 F / (W + F), percent, "
                      "from the magnitude fat-water fit (multi-peak fat spectrum); signed, not clipped "
                      "at 0 (fit option pdff_rule)"),
    "desc-water_S0map": ("water", "arbitrary", "Water signal at echo time 0 (W) from the fat-water fit"),
    "desc-fat_S0map": ("fat", "arbitrary", "Fat signal at echo time 0 (F, all spectral peaks) from the "
                       "fat-water fit"),
    "desc-fatwater_fieldmap": ("field_map_hz", "Hz", "B0 off-resonance frequency from the fat-water fit"),
}


def map_files(labels: Labels) -> dict[str, tuple[str, str]]:
    """name -> (unit, description) of the rate maps for ``labels`` (R2 names are :data:`MAP_FILES`)."""
    if labels.quantity == "R2":
        return dict(MAP_FILES)
    q, t = labels.quantity, labels.time
    out = {
        labels.rate_map: ("1/s", f"Transverse relaxation rate {q} from the voxel-wise fit"
                          + (" (fat-water model: common R2* of water and fat)" if labels.fatwater else "")),
        labels.time_map: ("s", f"Transverse relaxation time {t} = 1/{q}"),
        "S0map": ("arbitrary", "Fitted signal at echo time 0" + (" (water + fat)" if labels.fatwater else "")),
        labels.std_map: ("1/s", f"Standard error of {q} from the fit covariance"),
    }
    out.update({k: v for k, v in MAP_FILES.items() if k not in ("R2map", "T2map", "S0map", "desc-R2std_R2map")})
    return out


def _save(arr: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(arr, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp) if str(tmp).endswith(".nii.gz") else tmp)


def write_nifti_maps(result: Any, folder: Path, rep: dict) -> list[Path]:
    """Write the maps of ``result`` into ``folder``; return the paths written."""
    fit = result.fit
    affine = result.image.affine
    labels = labels_of(result)
    files = map_files(labels)
    r2 = np.asarray(fit.r2_per_s, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t2 = np.where(r2 > 0, 1.0 / r2, np.nan).astype(np.float32)
    arrays = {
        labels.rate_map: r2,
        labels.time_map: t2,
        "S0map": np.asarray(fit.s0, dtype=np.float32),
        labels.std_map: np.asarray(fit.r2_std_per_s, dtype=np.float32),
        "desc-LIC_map": np.asarray(result.lic_mg_per_g, dtype=np.float32),
        "desc-fitstatus_dseg": np.asarray(fit.status, dtype=np.uint8),
        "desc-liver_mask": np.asarray(result.roi.mask, dtype=np.uint8),
    }
    extra = getattr(fit, "extra", None) or {}
    if labels.fatwater:
        for name, (key, unit, desc) in FATWATER_FILES.items():
            if extra.get(key) is not None:
                arrays[name] = np.asarray(extra[key], dtype=np.float32)
                files[name] = (unit, desc)
    written = []
    for name, arr in arrays.items():
        path = folder / f"{name}.nii.gz"
        _save(arr, affine, path)
        unit, desc = files[name]
        side = {"Description": desc, "Units": unit, "Model": rep.get("model", {}).get("name"),
                "Calibration": rep.get("calibration", {}).get("name") if name == "desc-LIC_map" else None,
                "Sources": [str(f) for f in rep.get("input", {}).get("files", [])],
                "SoftwareVersion": rep.get("software", {}).get("version")}
        atomic_write_text(folder / f"{name}.json",
                          json.dumps({k: v for k, v in side.items() if v not in (None, "")}, indent=2) + "\n")
        written.append(path)
    return written


def write_settings(result: Any, folder: Path, rep: dict) -> Path:
    """settings.json: the arguments that reproduce the run, and the resolved values.

    A mask given as an array is saved as ``desc-inputmask_mask.nii.gz`` and named in
    ``options.mask`` (a path relative to the output folder).
    """
    settings = json.loads(json.dumps(result.settings or {}))
    options = settings.setdefault("options", {})
    user_mask = getattr(result, "input_mask", None)
    if options.get("mask") == "<array>" and user_mask is not None:
        _save(np.asarray(user_mask, dtype=np.uint8), result.image.affine, folder / "desc-inputmask_mask.nii.gz")
        options["mask"] = "desc-inputmask_mask.nii.gz"
        settings["mask_note"] = "options.mask is relative to this folder (the mask was given as an array)"
    if not settings.get("inputs"):
        settings["inputs_note"] = ("the image was given in memory: settings.json reproduces the options, "
                                   "not the image")
    settings = {
        "r2mri_version": rep.get("software", {}).get("version"),
        "schema_version": rep.get("schema_version"),
        "how_to_rerun": "r2mri.analyze(settings['inputs'], **settings['options'])",
        **settings,
    }
    return atomic_write_text(folder / "settings.json", json.dumps(settings, indent=2, allow_nan=False) + "\n")
