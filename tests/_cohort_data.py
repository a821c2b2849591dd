"""A small phantom cohort on disk for the batch, trend and de-identification tests.

Subject ``PAT-A`` (DICOM, FerriScan protocol): four studies, LIC 15 -> 11 -> 7 -> 7.1 mg/g;
subject ``B`` (BIDS-like NIfTI, 4-D and per-echo): three sessions; subject ``C``: one
NIfTI without a sidecar (no echo times: the broken exam). Every exam carries made-up
identifiers (name, ID, birth date, accession number) so de-identification can be checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: (study date, LIC mg/g) of subject PAT-A's DICOM studies.
DICOM_EXAMS = (("20230110", 15.0), ("20230710", 11.0), ("20240110", 7.0), ("20250108", 7.1))
#: (session, date, LIC, format) of subject B's NIfTI exams.
NIFTI_EXAMS = (("01", "2023-02-01", 3.0, "nifti"), ("02", "2023-08-01", 2.5, "nifti-per-echo"),
               ("03", "2024-02-01", 2.0, "nifti"))
IDENTIFIERS = {
    "PAT-A": {"name": "Quixotewell^Annabel", "id": "PAT-A", "birth": "19710304", "accession": "ACCQX7731"},
    "B": {"name": "Zephyrine^Bartholo", "id": "MRN88412", "birth": "19650917", "accession": "ACCZB5521"},
}
SMALL = dict(matrix=(48, 48), pixel_mm=8.0, n_slices=2)


def _dicom_study(root: Path, k: int, date: str, lic: float) -> None:
    import pydicom
    from pydicom.uid import generate_uid

    from r2mri import phantom

    ph = phantom.generate(lic=lic, seed=10 + k, **SMALL)
    tmp = root / f"_tmp{k}"
    phantom.write(ph, tmp, format="dicom")
    ids = IDENTIFIERS["PAT-A"]
    dest = root / "dicom" / f"study{k}"
    study_uid = generate_uid(entropy_srcs=["cohort", "study", str(k)])
    for f in sorted((tmp / "dicom").rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = ids["name"], ids["id"], ids["birth"]
        ds.AccessionNumber, ds.StudyDate, ds.StudyInstanceUID = ids["accession"], date, study_uid
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=["cohort", str(k), str(ds.SeriesNumber)])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["cohort", str(k), str(ds.SeriesNumber), str(ds.InstanceNumber)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        # any file name, any depth: one flat folder of numbered files per study
        out = dest / f"{ds.SeriesNumber:02d}" / f"x{ds.InstanceNumber:03d}"
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out)
    import shutil

    shutil.rmtree(tmp)


def _nifti_exam(root: Path, ses: str, date: str, lic: float, fmt: str, seed: int) -> None:
    from r2mri import phantom

    ph = phantom.generate(lic=lic, seed=seed, **SMALL)
    tmp = root / f"_tmp_ses{ses}"
    phantom.write(ph, tmp, format=fmt)
    anat = root / "bids" / "sub-B" / f"ses-{ses}" / "anat"
    anat.mkdir(parents=True)
    ids = IDENTIFIERS["B"]
    for f in sorted(tmp.glob("phantom*_MESE.nii.gz")):
        stem = f.name[:-len(".nii.gz")].replace("phantom", f"sub-B_ses-{ses}")
        f.rename(anat / f"{stem}.nii.gz")
        side = json.loads(f.with_name(f.name.replace(".nii.gz", ".json")).read_text())
        side.update(AcquisitionDateTime=f"{date}T10:00:00", PatientName=ids["name"], PatientID=ids["id"],
                    PatientBirthDate=ids["birth"], AccessionNumber=ids["accession"])
        (anat / f"{stem}.json").write_text(json.dumps(side))
    import shutil

    shutil.rmtree(tmp)


def make_cohort(root: Path) -> dict:
    """Write the cohort under ``root``; returns the truth: exam_id -> LIC of the mean R2 (None: broken)."""
    from r2mri import phantom

    truth = {}
    for k, (date, lic) in enumerate(DICOM_EXAMS):
        _dicom_study(root, k, date, lic)
        truth[f"PAT-A/{date[:4]}-{date[4:6]}-{date[6:]}"] = lic
    for j, (ses, date, lic, fmt) in enumerate(NIFTI_EXAMS):
        _nifti_exam(root, ses, date, lic, fmt, seed=30 + j)
        truth[f"B/{ses}"] = lic
    # the broken exam: a 4-D NIfTI without its sidecar, so without echo times
    ph = phantom.generate(lic=5.0, seed=50, **SMALL)
    tmp = root / "_tmp_c"
    phantom.write(ph, tmp, format="nifti")
    anat = root / "bids" / "sub-C" / "ses-01" / "anat"
    anat.mkdir(parents=True)
    (tmp / "phantom_MESE.nii.gz").rename(anat / "sub-C_ses-01_MESE.nii.gz")
    import shutil

    shutil.rmtree(tmp)
    truth["C/01"] = None
    return truth


def as_array(values) -> np.ndarray:
    return np.asarray([np.nan if v is None else float(v) for v in values])
