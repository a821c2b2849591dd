"""The lowest R2* of normal liver parenchyma, for the ROI rules on the GRE route (issue 16).

The parenchyma rules of :mod:`r2mri._roi_parenchyma` (spared parenchyma stays, fluid
goes, the extension of the automatic region into patches the growing band left out)
need a floor: an R2 below every normal liver and above blood, bile and cysts. For
spin-echo R2 curves it is the calibration's lowest calibrated rate (St Pierre 2005:
18.0 s^-1). An R2* curve's calibrated range does not give one: Wood 2005's starts at
1.33 mg/g (R2* 44 s^-1), above normal livers, and Hernando 2022 states none. The floor
here is instead the lowest liver R2* measured in healthy volunteers:

- **1.5 T: 23.67 s^-1**, the lowest of 100 healthy volunteers (20-32 years; mean 28.72,
  SD 2.69, range 23.67-37.77 s^-1; IDEAL-IQ, i.e. a fat-water R2*, 1.5 T)
  [C: Obrzut M, Atamaniuk V, Glaser KJ, Chen J, Ehman RL, Obrzut B, Cholewa M,
  Gutkowski K. Value of liver iron concentration in healthy volunteers assessed by MRI.
  Sci Rep 2020;10:17887, doi 10.1038/s41598-020-74968-z, abstract].
- Blood lies far below it: T2* 199 +- 8 ms (R2* 5.0 s^-1) arterial and 108 +- 6 ms
  (9.3 s^-1) venous in 10 volunteers [C: Li D, et al. Blood oxygen saturation
  assessment in vivo using T2* estimation. Magn Reson Med 1998;39(5):685-690, doi
  10.1002/mrm.1910390503, abstract; the field strength is not in the part read].
  Bile and cysts (long T2, long T2*): no R2* value was read; like blood they relax
  far slower than parenchyma.
- **3 T**: no healthy-volunteer 3 T liver R2* was found in r2mri's sources. A 3 T curve
  that maps its rates to 1.5 T (``[field_scaling]``, e.g. ``hernando-2022-r2star-3t-scaled``:
  Storey et al., JMRI 2007, R2*_3T = 2.00 R2*_1.5T - 11 s^-1) gets the 1.5 T floor
  through its own relation: 2.00 x 23.67 - 11 = 36.3 s^-1 [D]. Whether 3 T venous blood
  lies below that was not confirmed (its R2* grows with the field; Zhao et al., MRM
  2007;58:592 measured it in vitro at 3 T, values not in the part read): a 3 T R2*
  curve without such a relation gets no floor (rules off, as before).

A floor at the lowest of 100 normal livers, not below it with a margin as the spin-echo
floor is (18 against 25-45 s^-1): a normal liver near it keeps its own median as the
limit of the fluid tests (:func:`r2mri._roi_parenchyma.below_parenchyma`), and the
automatic proposal's "median below the floor" check then warns (a false alarm, never a
wrong number).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NORMAL_LIVER_R2STAR_MIN_1P5T_PER_S", "NORMAL_LIVER_R2STAR_MAX_1P5T_PER_S", "r2star_floor_per_s",
           "r2star_normal_max_per_s", "mapping_sd_per_s", "r2star_extension_min_per_s", "MAPPED_TOP_MARGIN_SD"]

#: Lowest liver R2* (s^-1) of 100 healthy volunteers at 1.5 T (IDEAL-IQ) [C: Obrzut M,
#: et al. Sci Rep 2020;10:17887, doi 10.1038/s41598-020-74968-z, abstract: whole group
#: mean 28.72, SD 2.69, range 23.67-37.77 s^-1].
NORMAL_LIVER_R2STAR_MIN_1P5T_PER_S = 23.67
#: Highest liver R2* (s^-1) of the same 100 healthy volunteers [C: Obrzut 2020, abstract:
#: range 23.67-37.77 s^-1]. A grown region whose median R2* is at or below it is a liver of
#: normal iron, whose R2* reaches the floor: the extension then cannot tell the liver's
#: low side from other tissue by R2*, and :func:`r2mri.roi.liver_roi` does not run it.
NORMAL_LIVER_R2STAR_MAX_1P5T_PER_S = 37.77
#: The field relation of Storey 2007 (R2*_3T = 2.00 (+-0.06) R2*_1.5T - 11 (+-4) s^-1, 20 controls and
#: 14 transfusion-dependent patients) [C: Storey P, et al. R2* imaging of transfusional iron burden at
#: 3T and comparison with 1.5T. J Magn Reson Imaging 2007;25(3):540-547, doi 10.1002/jmri.20816,
#: abstract, as recorded in calibration/hernando-2022-r2star-3t-scaled.toml; whether the +- are
#: standard errors or another spread, and the slope-offset covariance, are not in the part read:
#: they are used as independent SDs, which overstates the spread near the data's centre].
STOREY_2007_DOI = "10.1002/jmri.20816"
STOREY_2007_SLOPE_SD = 0.06
STOREY_2007_OFFSET_SD_PER_S = 4.0
#: SDs of the mapping's uncertainty by which a grown region's median R2* must exceed the
#: mapped top of the normal range before the extension runs [D: r2mri's own, one-sided 2.3 %].
MAPPED_TOP_MARGIN_SD = 2.0
#: Field strengths (T) taken as 1.5 T [D: the calibrations' own field_strength_t].
_FIELD_TOL_T = 0.05


def r2star_floor_per_s(cal: Any) -> tuple[float | None, str]:
    """The lowest R2* (s^-1) of normal liver at the field of R2* (or T2*) curve ``cal``.

    Returns ``(floor, source)`` or ``(None, reason)``: 23.67 s^-1 at 1.5 T (Obrzut
    2020); at another field only through the curve's own mapping of its rates to 1.5 T
    (``rate = rate_1.5T x rate_divisor + rate_offset_per_s``), else ``None``.

    Examples
    --------
    >>> from r2mri.calibration import get_calibration
    >>> r2star_floor_per_s(get_calibration("hernando-2022-r2star-1.5t"))
    (23.67, 'normal liver R2* at 1.5 T (Obrzut 2020)')
    >>> f, src = r2star_floor_per_s(get_calibration("hernando-2022-r2star-3t-scaled"))
    >>> round(f, 2), src
    (36.34, "normal liver R2* at 1.5 T (Obrzut 2020) through the curve's field relation")
    """
    base = NORMAL_LIVER_R2STAR_MIN_1P5T_PER_S
    src = "normal liver R2* at 1.5 T (Obrzut 2020)"
    if abs(float(cal.field_strength_t) - 1.5) <= _FIELD_TOL_T:
        return base, src
    scaling = getattr(cal, "field_scaling", None) or {}
    from_t = scaling.get("from_field_strength_t")
    if from_t is not None and abs(float(from_t) - 1.5) <= _FIELD_TOL_T:
        return base * float(cal.rate_divisor) + float(cal.rate_offset_per_s), src + " through the curve's field relation"
    return None, (f"{cal.name}: no normal-liver R2* known at {cal.field_strength_t:g} T (only 1.5 T, or a curve "
                  "mapped to 1.5 T)")


def r2star_normal_max_per_s(cal: Any) -> float | None:
    """The highest normal-liver R2* (s^-1) at the field of ``cal``, mapped as the floor is
    (:func:`r2star_floor_per_s`), or None.

    Examples
    --------
    >>> from r2mri.calibration import get_calibration
    >>> r2star_normal_max_per_s(get_calibration("hernando-2022-r2star-1.5t"))
    37.77
    """
    if r2star_floor_per_s(cal)[0] is None:
        return None
    if abs(float(cal.field_strength_t) - 1.5) <= _FIELD_TOL_T:
        return NORMAL_LIVER_R2STAR_MAX_1P5T_PER_S
    return NORMAL_LIVER_R2STAR_MAX_1P5T_PER_S * float(cal.rate_divisor) + float(cal.rate_offset_per_s)


def mapping_sd_per_s(cal: Any, rate_1p5t_per_s: float) -> float | None:
    """SD (s^-1) of a 1.5 T rate mapped to the field of ``cal`` by its ``[field_scaling]``:
    0 at 1.5 T, from the relation's published uncertainty where r2mri has it (Storey 2007:
    ``sqrt((0.06 rate)^2 + 4^2)``, 4.6 s^-1 at the top of the normal range), else None
    (unknown).

    Examples
    --------
    >>> from r2mri.calibration import get_calibration
    >>> round(mapping_sd_per_s(get_calibration("hernando-2022-r2star-3t-scaled"), 37.77), 2)
    4.6
    >>> mapping_sd_per_s(get_calibration("hernando-2022-r2star-1.5t"), 37.77)
    0.0
    """
    if abs(float(cal.field_strength_t) - 1.5) <= _FIELD_TOL_T:
        return 0.0
    scaling = getattr(cal, "field_scaling", None) or {}
    if str(scaling.get("doi", "")).strip().lower() != STOREY_2007_DOI:
        return None
    return float(np.hypot(STOREY_2007_SLOPE_SD * float(rate_1p5t_per_s), STOREY_2007_OFFSET_SD_PER_S))


def r2star_extension_min_per_s(cal: Any) -> float | None:
    """The median R2* (s^-1) a grown region must exceed before the ROI extension runs on
    an R2* curve: the top of the normal range (:func:`r2star_normal_max_per_s`) plus
    :data:`MAPPED_TOP_MARGIN_SD` SDs of the field mapping's uncertainty
    (:func:`mapping_sd_per_s`); the top alone when that uncertainty is unknown (a
    site curve's own relation: as before, no evidence for a margin); None without a
    normal range. The value is also the top the low-iron check of :func:`r2mri.roi.liver_roi`
    uses (:mod:`r2mri._roi_low_iron`): at 3 T "possibly within the normal range".

    At 1.5 T the top is the measured 37.77 s^-1 (no mapping). At 3 T the mapped top,
    64.5 s^-1, is uncertain by 4.6 s^-1 (Storey 2007's +-0.06 and +-4 s^-1): a normal
    liver's median can lie above it by that much. The real 3 T liver of a normal volunteer
    (Bydder, benchmarks/real_liver.py) grew a region of median R2* ~67 s^-1; the
    extension then ran and took in spleen, stomach and retroperitoneum as "iron-rich"
    pieces (503 % of the region; docs/statistics.md): its headline moved 0.86 -> 1.36
    mg/g. With the margin (73.7 s^-1) it does not run. The region's own median SE (0.3-1
    s^-1 for the >= 1,000 voxels of a grown region) is small beside the mapping's and is
    not added. The margin sits at 0.94 mg/g on that curve (1 mg/g: 78 s^-1).

    Examples
    --------
    >>> from r2mri.calibration import get_calibration
    >>> round(r2star_extension_min_per_s(get_calibration("hernando-2022-r2star-3t-scaled")), 1)
    73.7
    >>> r2star_extension_min_per_s(get_calibration("hernando-2022-r2star-1.5t"))
    37.77
    """
    top = r2star_normal_max_per_s(cal)
    if top is None:
        return None
    sd = mapping_sd_per_s(cal, NORMAL_LIVER_R2STAR_MAX_1P5T_PER_S)
    return top if sd is None else top + MAPPED_TOP_MARGIN_SD * sd
