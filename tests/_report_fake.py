"""A hand-built AnalysisResult for testing the report writers without the fitter.

The maps are exact (no noise, no fit): R2 per voxel from a known LIC map through the
St Pierre 2005 forward curve quoted in ../shared/domain.md section 4, so every
statistic in the fake is known in closed form.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from r2mri.analysis import AnalysisResult
from r2mri.image import MultiEchoImage
from r2mri.status import FitStatus

TE_S = np.array([6, 9, 12, 15, 18], dtype=float) / 1e3


def r2_from_lic_st_pierre(lic):
    """Forward St Pierre 2005 curve (domain.md section 4, exact inverse of the canonical form)."""
    return (900.7 - (29.75 - np.asarray(lic, float) ** (1 / 1.424)) ** 2) / 2.283


def lic_from_r2_st_pierre(r2):
    return (29.75 - np.sqrt(900.7 - 2.283 * np.asarray(r2, float))) ** 1.424


def fake_result(shape=(32, 28, 3), lic_value=5.0, *, metadata=None, source_datasets=None):
    nx, ny, nz = shape
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    body = ((x - nx / 2) / (0.45 * nx)) ** 2 + ((y - ny / 2) / (0.45 * ny)) ** 2 < 1
    liver2d = ((x - nx * 0.38) / (0.22 * nx)) ** 2 + ((y - ny * 0.5) / (0.25 * ny)) ** 2 < 1
    body = np.repeat(body[..., None], nz, axis=2)
    liver = np.repeat(liver2d[..., None], nz, axis=2)
    liver[..., 0] = False  # first slice has no liver
    lic = np.where(liver, lic_value * (1 + 0.2 * (x[..., None] - nx * 0.38) / nx), 1.0)
    r2 = np.where(body, r2_from_lic_st_pierre(lic), np.nan).astype(np.float32)
    s0 = np.where(body, 1000.0, np.nan).astype(np.float32)
    data = np.where(body[..., None], 1000.0 * np.exp(-np.nan_to_num(r2)[..., None] * TE_S), 3.0)
    affine = np.diag([1.5, 1.5, 5.0, 1.0])
    affine[:3, 3] = [-20, -15, 10]
    img = MultiEchoImage(
        data.astype(np.float32), TE_S, affine, field_strength_t=1.5, manufacturer="TESTCO",
        sequence="SE", echo_train_length=1,
        metadata=dict(metadata or {"repetition_time_s": 1.0}), source_datasets=source_datasets,
    )
    status = np.where(body, FitStatus.OK, FitStatus.MASKED).astype(np.uint8)
    fit = SimpleNamespace(
        r2_per_s=r2, s0=s0, offset=None, r2_std_per_s=np.where(body, 1.0, np.nan).astype(np.float32),
        residual_rms=np.where(body, 0.0, np.nan).astype(np.float32),
        r_squared=np.where(body, 1.0, np.nan).astype(np.float32), status=status, model="monoexp",
        options={"model": "auto", "echo_times_s": TE_S.tolist()}, extra={},
    )
    lic_map = np.where(body, lic_from_r2_st_pierre(r2), np.nan).astype(np.float32)
    vals = lic_map[liver]
    r2v = r2[liver].astype(float)
    stats = {
        "r2_per_s": {"mean": float(r2v.mean()), "median": float(np.median(r2v)), "sd": float(r2v.std(ddof=1))},
        "lic_mg_per_g": {
            "of_mean_r2": float(lic_from_r2_st_pierre(r2v.mean())),
            "mean": float(vals.mean()), "median": float(np.median(vals)), "sd": float(vals.std(ddof=1)),
            "ci95": [float(lic_from_r2_st_pierre(r2v.mean())) * 0.97, float(lic_from_r2_st_pierre(r2v.mean())) * 1.03],
            "fraction_above": {"1.8": 1.0, "3.2": 1.0, "7": 0.0, "15": 0.0},
        },
        "category": {"label": "3.2-7 mg/g: target range in chelated patients",
                     "thresholds_mg_per_g": [1.8, 3.2, 7.0, 15.0], "source": "St Pierre 2005"},
        "qc": {"extrapolated_fraction": 0.0, "fraction_at_noise_floor": 0.0},
        "bad": float("nan"),
    }
    from r2mri.calibration import get_calibration

    cal = get_calibration("st-pierre-2005")
    roi = SimpleNamespace(mask=liver, method="user mask", automatic=False, removed={})
    return AnalysisResult(
        image=img, fit=fit, lic_mg_per_g=lic_map, roi=roi, statistics=stats, calibration=cal,
        findings=[], noise=SimpleNamespace(sigma=3.0, coils=1, method="background"),
        warnings=["a test warning"], settings={"inputs": [], "options": {"model": "auto"}},
        inputs=[], input_format="memory", timings_s={"total": 0.1},
    )


def fake_source_datasets(img, *, study_uid=None):
    """Minimal single-frame MR Image Storage headers (one series per echo, FerriScan-like).

    Geometry follows the image's affine with the frame = ``data[:, :, k].T`` convention.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    study_uid = study_uid or generate_uid()
    for_uid = generate_uid()
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
    dx, dy = (float(np.linalg.norm(lps[:3, i])) for i in (0, 1))
    out = []
    for e, te in enumerate(img.echo_times_ms):
        series_uid = generate_uid()
        for k in range(img.shape[2]):
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = for_uid
            ds.PatientName = "Phantom^Liver"
            ds.PatientID = "R2MRI-TEST"
            ds.PatientBirthDate = ""
            ds.PatientSex = "O"
            ds.StudyDate = "20260101"
            ds.StudyTime = "120000"
            ds.StudyID = "1"
            ds.AccessionNumber = "ACC1"
            ds.ReferringPhysicianName = ""
            ds.Modality = "MR"
            ds.Manufacturer = "TESTCO"
            ds.SeriesNumber = 10 + e
            ds.InstanceNumber = k + 1
            ds.EchoTime = float(te)
            ds.RepetitionTime = 1000.0
            ds.ImageOrientationPatient = [float(v) for v in (*(lps[:3, 0] / dx), *(lps[:3, 1] / dy))]
            ds.ImagePositionPatient = [float(v) for v in (lps @ [0, 0, k, 1])[:3]]
            ds.PixelSpacing = [dy, dx]
            ds.SliceThickness = float(np.linalg.norm(lps[:3, 2]))
            ds.Rows, ds.Columns = img.shape[1], img.shape[0]
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated = 16
            ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 0
            ds.PositionReferenceIndicator = ""
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
            ds.PixelData = np.ascontiguousarray(img.data[:, :, k, e].T).astype(np.uint16).tobytes()
            out.append(ds)
    return out


def fake_dicom_result(**kw):
    res = fake_result(**kw)
    res.image.source_datasets = fake_source_datasets(res.image)
    res.input_format = "dicom"
    return res


# ----------------------------------------------------------------------------- GRE
#: 6 echoes, TE1 1.2 ms, spacing 1 ms (the 1.5 T train of tests/test_fatwater.py)
TE_GRE_S = 0.0012 + 0.001 * np.arange(6)


def fake_gre_result(shape=(32, 28, 3), lic_value=5.0, pdff_percent=12.0, *, field_strength_t=1.5,
                    with_field_map=False):
    """A fat-water (R2*) AnalysisResult as ``analyze`` will give for GRE input (issue 15).

    Exact maps: R2* from the LIC through the Hernando 2022 1.5 T line (LIC = -0.16 +
    0.02603 R2*, calibration/hernando-2022-r2star-1.5t.toml), PDFF varying across the
    liver about ``pdff_percent``, the magnitude data from
    :func:`r2mri.fatwater.magnitude_signal` with W + F = 1000, so the fit is the truth.
    """
    from r2mri.calibration import get_calibration
    from r2mri.fatwater import load_fat_spectrum, magnitude_signal

    res = fake_result(shape, lic_value)
    nx, ny, nz = shape
    liver = np.asarray(res.roi.mask)
    body = np.asarray(res.fit.status) != FitStatus.MASKED
    cal = get_calibration("hernando-2022-r2star-1.5t")
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    lic = np.where(liver, lic_value * (1 + 0.2 * (x[..., None] - nx * 0.38) / nx), 1.0)
    r2s = np.where(body, (lic + 0.16) / 0.02603, np.nan).astype(np.float32)
    pdff = np.where(body, np.where(liver, pdff_percent * (1 + 0.3 * (y[..., None] - ny / 2) / ny), 2.0),
                    np.nan).astype(np.float32)
    water = np.where(body, 1000.0 * (1 - pdff / 100), np.nan).astype(np.float32)
    fat = np.where(body, 1000.0 * pdff / 100, np.nan).astype(np.float32)
    basis = load_fat_spectrum().basis(TE_GRE_S, field_strength_t)
    sig = magnitude_signal(basis, TE_GRE_S, np.nan_to_num(water), np.nan_to_num(fat), np.nan_to_num(r2s))
    data = np.where(body[..., None], sig, 3.0).astype(np.float32)
    img = MultiEchoImage(data, TE_GRE_S, res.image.affine, field_strength_t=field_strength_t,
                         manufacturer="TESTCO", sequence="GRE", echo_train_length=6,
                         metadata={"repetition_time_s": 0.012, "flip_angle_deg": 5.0})
    extra = {"pdff_percent": pdff, "water": water, "fat": fat,
             "fat_start_chosen": np.zeros(shape, np.uint8)}
    if with_field_map:
        extra["field_map_hz"] = np.where(body, 10.0 * (x[..., None] / nx - 0.5), np.nan).astype(np.float32)
    fit = SimpleNamespace(
        r2_per_s=r2s, s0=(water + fat).astype(np.float32), offset=None,
        r2_std_per_s=np.where(body, 2.0, np.nan).astype(np.float32),
        residual_rms=np.where(body, 0.0, np.nan).astype(np.float32),
        r_squared=np.where(body, 1.0, np.nan).astype(np.float32), status=res.fit.status, model="fatwater",
        options={"model": "fatwater", "field_strength_t": field_strength_t, "fat_spectrum": "liver-fat-6peak",
                 "swap_rule": "liver", "echo_times_s": TE_GRE_S.tolist()},
        extra=extra,
    )
    lic_map = cal.lic(r2s).lic_mg_per_g.astype(np.float32)
    r2v, licv, pdv = r2s[liver].astype(float), lic_map[liver].astype(float), pdff[liver].astype(float)
    head = float(cal.lic(r2v.mean() * 1.001).lic_mg_per_g)
    stats = {
        "r2_per_s": {"mean": float(r2v.mean()), "median": float(np.median(r2v)), "sd": float(r2v.std(ddof=1)),
                     # the GRE headline estimator of analyze (r2mri/_gre.py, issue 15)
                     "estimator": "tile-fw-ncchi", "headline_mean": float(r2v.mean()) * 1.001},
        "lic_mg_per_g": {"of_mean_r2": head, "mean": float(licv.mean()), "median": float(np.median(licv)),
                         "sd": float(licv.std(ddof=1)), "ci95": [head * 0.97, head * 1.03],
                         "fraction_above": {"1.8": 1.0, "3.2": 1.0, "7": 0.0, "15": 0.0}},
        # as analyze fills it: the ROI mean of the tile-pooled fit beside the voxel statistics
        "pdff_percent": {"mean": float(pdv.mean()) + 0.2, "se": 0.1, "median": float(np.median(pdv)),
                         "sd": float(pdv.std(ddof=1)), "voxel_mean": float(pdv.mean()),
                         "n_voxels": int(liver.sum()), "mean_method": "tile-fw-ncchi", "n_tiles": 40},
        "category": {"label": "3.2-7 mg/g: target range in chelated patients",
                     "thresholds_mg_per_g": [1.8, 3.2, 7.0, 15.0], "source": "St Pierre 2005"},
        "qc": {"extrapolated_fraction": 0.0, "fraction_at_noise_floor": 0.0},
    }
    res.image, res.fit, res.lic_mg_per_g, res.statistics, res.calibration = img, fit, lic_map, stats, cal
    res.settings = {"inputs": [], "options": {"model": "auto"}}
    return res


def fake_gre_dicom_result(**kw):
    res = fake_gre_result(**kw)
    res.image.source_datasets = fake_source_datasets(res.image)
    res.input_format = "dicom"
    return res
