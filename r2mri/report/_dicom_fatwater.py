"""DICOM Parametric Maps of the fat-water fit's water and fat signal maps and its field map.

=====================  =====================================================================
file                   content
=====================  =====================================================================
``pm_water.dcm``       water signal at TE 0 (``fit.extra["water"]``), float32, unit UCUM
                       ``[arb'U]`` "arbitrary unit"; quantity SCT 11713004 "Water"
``pm_fat.dcm``         fat signal at TE 0 (``fit.extra["fat"]``), same unit, signed (the fit
                       bounds F >= -0.1 W); quantity SCT 256674009 "Fat"
``pm_fieldmap.dcm``    complex fits only: off-resonance (``fit.extra["field_map_hz"]``),
                       UCUM ``Hz`` "Hertz"; quantity DCM 110807 "Field Map MR Signal
                       Intensity"
=====================  =====================================================================

Codes: every one was looked up in the DICOM PS3.16 tables shipped with pydicom 3.0
(``pydicom.sr.codedict.codes``): ``SCT.Water`` and ``SCT.Fat`` are members of CID 7180
"Abstract Multi-dimensional Image Model Component Semantics" (as DCM 129100 "Fat fraction"
of ``pm_pdff.dcm`` is); ``DCM.FieldMapMRSignalIntensity`` too, the only field-map concept
in that CID (PS3.16 has no "off-resonance frequency" concept in pydicom's tables: the LUT
explanation says the values are the B0 off-resonance in Hz). ``[arb'U]`` and ``Hz`` are
members of CID 7181 "Abstract Multi-dimensional Image Model Component Unit". The water and
fat maps are signal amplitudes in the scanner's arbitrary units, not proton densities.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fatwater_parametric_maps"]


def _codes() -> dict:
    from pydicom.sr.coding import Code

    return {
        "water": Code("11713004", "SCT", "Water"),
        "fat": Code("256674009", "SCT", "Fat"),
        "field_map": Code("110807", "DCM", "Field Map MR Signal Intensity"),
        "arbitrary_unit": Code("[arb'U]", "UCUM", "arbitrary unit"),
        "hz": Code("Hz", "UCUM", "Hertz"),
    }


def fatwater_parametric_maps(result: Any, src: list, base: int, uid_seed: str | None, equipment) -> dict:
    """``{"pm_water": ds, "pm_fat": ds[, "pm_fieldmap": ds]}`` of a fat-water result ({} otherwise).

    Series numbers ``base + 7``, ``+ 8``, ``+ 9`` (after the PDFF map's ``base + 6``).
    """
    from ._dicom import _parametric_map, _roles

    extra = getattr(result.fit, "extra", None) or {}
    if getattr(result.fit, "model", None) != "fatwater" or "water" not in extra or "fat" not in extra:
        return {}
    c = _codes()
    specs = [("pm_water", "water", "Water", "Water signal at TE 0 (arbitrary units)", c["arbitrary_unit"],
              c["water"], "Water signal map, fat-water model"),
             ("pm_fat", "fat", "Fat", "Fat signal at TE 0 (arbitrary units, signed)", c["arbitrary_unit"], c["fat"],
              "Fat signal map, fat-water model")]
    if "field_map_hz" in extra:
        specs.append(("pm_fieldmap", "field_map_hz", "B0 field map", "B0 off-resonance (Hz), complex fat-water fit",
                      c["hz"], c["field_map"], "Field map (Hz), complex fat-water fit"))
    out = {}
    for k, (key, name, label, explanation, unit, quantity, description) in enumerate(specs):
        out[key] = _parametric_map(src, extra[name], result.image, label=label, explanation=explanation, unit=unit,
                                   quantity=quantity, series_number=base + 7 + k, description=description,
                                   uids=_roles(uid_seed, key), equipment=equipment)
    return out
