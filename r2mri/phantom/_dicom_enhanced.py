"""Enhanced MR writer for phantoms: one multi-frame object of every echo and slice.

Split out of :mod:`._dicom` (which keeps the shared header, geometry and quantisation
helpers, and :func:`._dicom.write_dicom`, the one entry point): the object is built in
named steps, one DICOM module or functional group each (DICOM PS3.3 C.8.13 Enhanced MR
Image, C.7.6.17 Multi-frame Dimension, C.7.6.16 functional groups). pydicom writes a
dataset's elements in tag order, so the order of the steps does not change the bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from . import _dicom_phase as ph
from ._describe import fit_long_string
from ._dicom import (ENHANCED_MR_IMAGE_STORAGE, SYNTHETIC_DATE, SYNTHETIC_TIME, _code, _common, _ds_str,
                     _file_meta, _image_pixel_module, _quantise, _slice_positions, _slope, _uid, _write_ds)

__all__ = ["enhanced"]

_FORM = "dicom-enhanced"


def enhanced(phantom, root: Path, *, phase: bool = False) -> None:
    """One Enhanced MR object of every echo and slice: the magnitude, or (``phase``) a
    second series of the same acquisition holding the phase (ComplexImageComponent PHASE,
    Siemens scaling of :mod:`._dicom_phase`)."""
    img = phantom.image
    sp = phantom.spec
    ds = _common(phantom, _FORM)
    slope = str(ph.PHASE_RESCALE_SLOPE) if phase else _slope(img.data)
    _identity(ds, phantom, phase)
    _enhanced_image_module(ds, img, sp.sequence, phase)
    _pulse_sequence_module(ds, sp.sequence)
    _image_pixel_module(ds, sp)
    ds.NumberOfFrames = img.shape[2] * img.n_echoes
    _dimension_module(ds, phantom)
    ds.AcquisitionContextSequence = Sequence([])
    shared = _shared_groups(img, sp, phase, slope, float(ds.ImagingFrequency))
    del ds.ImagingFrequency, ds.ImagedNucleus  # classic-only; in MR Imaging Modifier / ResonantNucleus here
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames, pixels = _frames(phantom, ds, phase, slope)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    if phase:
        ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = pixels.tobytes()
    ds.file_meta = _file_meta(ds.SOPClassUID, ds.SOPInstanceUID)
    _write_ds(ds, root / ("PH0001.dcm" if phase else "IM0001.dcm"))


def _identity(ds: Dataset, phantom, phase: bool) -> None:
    """SOP class and instance, series, instance and acquisition numbers, the synthetic
    content and acquisition date-times and the acquisition duration."""
    sp = phantom.spec
    tag = "-phase" if phase else ""
    ds.SOPClassUID = ENHANCED_MR_IMAGE_STORAGE
    ds.SOPInstanceUID = _uid(phantom, _FORM, "image" + tag)
    ds.SeriesInstanceUID = _uid(phantom, _FORM, "series" + tag)
    ds.SeriesNumber = 2 if phase else 1
    ds.SeriesDescription = fit_long_string(sp.description, f" (enhanced{' phase' if phase else ''})")
    ds.ProtocolName = sp.name[:64]
    ds.InstanceNumber = 1
    ds.ContentDate = SYNTHETIC_DATE
    ds.ContentTime = SYNTHETIC_TIME
    ds.AcquisitionNumber = 1
    ds.AcquisitionDateTime = SYNTHETIC_DATE + SYNTHETIC_TIME
    ne = phantom.image.n_echoes
    ds.AcquisitionDuration = float(sp.repetition_time_ms * sp.matrix[1] / 1000.0 * (1 if sp.sequence != "SE" else ne))


def _flavor(seq: str) -> str:
    return "T2_STAR" if seq == "GRE" else "T2"


def _enhanced_image_module(ds: Dataset, img, seq: str, phase: bool) -> None:
    """Enhanced MR Image module (C.8.13.1)."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", _flavor(seq), "NONE"]
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ComplexImageComponent = "PHASE" if phase else "MAGNITUDE"
    ds.AcquisitionContrast = "T2" if seq != "GRE" else "T2_STAR"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.ContentQualification = "RESEARCH"
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.MagneticFieldStrength = _ds_str(float(img.field_strength_t))
    ds.PresentationLUTShape = "IDENTITY"


def _pulse_sequence_module(ds: Dataset, seq: str) -> None:
    """MR Pulse Sequence module (C.8.13.4)."""
    ds.PulseSequenceName = {"SE": "SE", "SE-CPMG": "MESE", "GRE": "MEGRE"}[seq]
    ds.MRAcquisitionType = "2D"
    ds.EchoPulseSequence = "GRADIENT" if seq == "GRE" else "SPIN"
    if seq != "GRE":  # type 1C: only for spin-echo pulse sequences
        ds.MultipleSpinEcho = "YES" if seq == "SE-CPMG" else "NO"
    ds.MultiPlanarExcitation = "YES"
    ds.PhaseContrast = "NO"
    ds.TimeOfFlightContrast = "NO"
    ds.SteadyStatePulseSequence = "NONE"
    ds.EchoPlanarPulseSequence = "NO"
    ds.SaturationRecovery = "NO"
    ds.SpectrallySelectedSuppression = "NONE"
    ds.OversamplingPhase = "NONE"
    ds.GeometryOfKSpaceTraversal = "RECTILINEAR"
    ds.RectilinearPhaseEncodeReordering = "LINEAR"
    ds.SegmentedKSpaceTraversal = "SINGLE"
    ds.NumberOfKSpaceTrajectories = 1


def _dimension_module(ds: Dataset, phantom) -> None:
    """Multi-frame Dimension module (C.7.6.17): stack position, then effective echo time."""
    dim_uid = _uid(phantom, _FORM, "dimensions")
    ds.DimensionOrganizationSequence = Sequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationType = "3D"
    dims = []
    for pointer, group, label in (
        (0x00209057, 0x00209111, "Stack Position"),  # In-Stack Position Number in Frame Content
        (0x00189082, 0x00189114, "Effective Echo Time"),  # Effective Echo Time in MR Echo
    ):
        d = Dataset()
        d.DimensionOrganizationUID = dim_uid
        d.DimensionIndexPointer = pointer
        d.FunctionalGroupPointer = group
        d.DimensionDescriptionLabel = label
        dims.append(d)
    ds.DimensionIndexSequence = Sequence(dims)


def _item(**elements) -> Sequence:
    """A one-item sequence of a dataset with ``elements``."""
    d = Dataset()
    for keyword, value in elements.items():
        setattr(d, keyword, value)
    return Sequence([d])


def _shared_groups(img, sp, phase: bool, slope: str, imaging_frequency: float) -> Dataset:
    """Shared functional groups: geometry, pixel value transformation and VOI window,
    timing, FOV, modifiers, coils, averages and anatomy."""
    shared = Dataset()
    shared.PixelMeasuresSequence = _item(
        PixelSpacing=[_ds_str(sp.pixel_mm), _ds_str(sp.pixel_mm)], SliceThickness=_ds_str(sp.slice_thickness_mm),
        SpacingBetweenSlices=_ds_str(sp.slice_spacing_mm))
    shared.PlaneOrientationSequence = _item(ImageOrientationPatient=["1", "0", "0", "0", "1", "0"])
    shared.PixelValueTransformationSequence = _item(
        RescaleIntercept=str(ph.PHASE_RESCALE_INTERCEPT) if phase else "0", RescaleSlope=slope, RescaleType="US")
    shared.FrameVOILUTSequence = _item(
        WindowCenter="0" if phase else _ds_str(0.5 * float(np.max(img.data))),
        WindowWidth=str(2 * ph.PHASE_STORED_LEVELS) if phase else _ds_str(max(float(np.max(img.data)), 1.0)))
    shared.MRTimingAndRelatedParametersSequence = Sequence([_timing(sp)])
    shared.MRFOVGeometrySequence = _item(
        InPlanePhaseEncodingDirection="ROW", MRAcquisitionFrequencyEncodingSteps=int(sp.matrix[0]),
        MRAcquisitionPhaseEncodingStepsInPlane=int(sp.matrix[1]), PercentSampling=100.0,
        PercentPhaseFieldOfView=100.0)
    shared.MRModifierSequence = _item(
        InversionRecovery="NO", FlowCompensation="NONE", Spoiling="RF" if sp.sequence == "GRE" else "NONE",
        T2Preparation="NO", SpectrallySelectedExcitation="NONE", SpatialPresaturation="NONE",
        PartialFourier="NO", ParallelAcquisition="NO")
    shared.MRImagingModifierSequence = _item(
        PixelBandwidth=250.0, MagnetizationTransfer="NONE", BloodSignalNulling="NO", Tagging="NONE",
        TransmitterFrequency=imaging_frequency)
    shared.MRReceiveCoilSequence = Sequence([_receive_coil(int(sp.coils))])
    shared.MRTransmitCoilSequence = _item(TransmitCoilName="Body", TransmitCoilManufacturerName="r2mri",
                                          TransmitCoilType="BODY")
    shared.MRAveragesSequence = _item(NumberOfAverages="1")
    shared.FrameAnatomySequence = _item(AnatomicRegionSequence=Sequence([_code("10200004", "SCT", "Liver")]),
                                        FrameLaterality="U")
    return shared


def _timing(sp) -> Dataset:
    """MR Timing and Related Parameters (repetition time, flip angle, echo trains, SAR
    and operating modes of a simulated acquisition)."""
    seq = sp.sequence
    timing = Dataset()
    timing.RepetitionTime = float(sp.repetition_time_ms)
    timing.FlipAngle = float(sp.excitation_flip_deg)
    timing.EchoTrainLength = sp.echo_train_length
    timing.RFEchoTrainLength = sp.echo_train_length if seq != "GRE" else 0
    timing.GradientEchoTrainLength = sp.echo_train_length if seq == "GRE" else 0
    timing.SpecificAbsorptionRateSequence = _item(
        SpecificAbsorptionRateDefinition="IEC_WHOLE_BODY",
        SpecificAbsorptionRateValue=0.0)  # simulated: no RF was deposited
    modes = []
    for kind in ("STATIC FIELD", "RF", "GRADIENT"):
        m = Dataset()
        m.OperatingModeType = kind
        m.OperatingMode = "IEC_NORMAL"
        modes.append(m)
    timing.OperatingModeSequence = Sequence(modes)
    return timing


def _receive_coil(coils: int) -> Dataset:
    """MR Receive Coil: one element per channel, combined by root-sum-of-squares."""
    rc = Dataset()
    rc.ReceiveCoilName = f"R2MRI {coils}CH"[:16]
    rc.ReceiveCoilManufacturerName = "r2mri"
    rc.ReceiveCoilType = "MULTICOIL" if coils > 1 else "SURFACE"
    rc.QuadratureReceiveCoil = "NO"
    el = []
    for c in range(coils) if coils > 1 else []:
        e = Dataset()
        e.MultiCoilElementName = f"C{c + 1}"
        e.MultiCoilElementUsed = "YES"
        el.append(e)
    if el:
        rc.MultiCoilDefinitionSequence = Sequence(el)
        rc.MultiCoilConfiguration = "RSS"
    return rc


def _frames(phantom, ds: Dataset, phase: bool, slope: str) -> tuple[list[Dataset], np.ndarray]:
    """Per-frame functional groups and stored pixels, frames ordered echo-major,
    slice-minor."""
    img = phantom.image
    sp = phantom.spec
    nz, ne = img.shape[2], img.n_echoes
    pos = _slice_positions(phantom)
    values = img.phase_rad if phase else img.data
    frames = []
    pixels = np.empty((ne * nz, int(sp.matrix[1]), int(sp.matrix[0])), dtype=np.uint16)
    for e in range(ne):
        te_ms = float(img.echo_times_ms[e])
        for k in range(nz):
            frames.append(_frame(ds, sp, k, e, te_ms, pos[k], phase))
            plane = values[:, :, k, e].T
            pixels[e * nz + k] = ph.stored_from_phase(plane) if phase else _quantise(plane, slope)
    return frames, pixels


def _frame(ds: Dataset, sp, k: int, e: int, te_ms: float, position, phase: bool) -> Dataset:
    """The functional groups of the frame of slice ``k``, echo ``e``."""
    f = Dataset()
    f.FrameContentSequence = _item(
        StackID="1", InStackPositionNumber=k + 1, DimensionIndexValues=[k + 1, e + 1], FrameAcquisitionNumber=1,
        FrameReferenceDateTime=SYNTHETIC_DATE + SYNTHETIC_TIME,
        FrameAcquisitionDateTime=SYNTHETIC_DATE + SYNTHETIC_TIME,
        FrameAcquisitionDuration=float(sp.repetition_time_ms))
    f.PlanePositionSequence = _item(ImagePositionPatient=[_ds_str(v) for v in position])
    f.MREchoSequence = _item(EffectiveEchoTime=float(te_ms))
    f.MRImageFrameTypeSequence = _item(
        FrameType=["ORIGINAL", "PRIMARY", _flavor(sp.sequence), "NONE"], PixelPresentation="MONOCHROME",
        VolumetricProperties="VOLUME", VolumeBasedCalculationTechnique="NONE",
        ComplexImageComponent="PHASE" if phase else "MAGNITUDE", AcquisitionContrast=ds.AcquisitionContrast)
    return f
