"""De-identification of a cohort: keyed pseudonyms, keyed date shifts, DICOM basic profile.

Everything an exam's outputs say about the patient comes from the loaded image's
``metadata`` and ``source_datasets``; :meth:`Deidentifier.image` replaces both *before*
the analysis, so report.json, the report page, the NIfTI sidecars, settings.json and the
DICOM objects are all derived from de-identified headers.

- Subject labels become ``sub-<12 hex>``: HMAC-SHA256 (RFC 2104, FIPS 198-1) of the
  original label with the user's key. The same key gives the same pseudonym in every
  run, so follow-up exams join their patient; without the key it cannot be reversed
  or recomputed from a guessed patient ID.
- Dates are kept (PS3.15 Annex E "Retain Longitudinal Temporal Information with Full
  Dates Option") or, with ``shift_dates``, moved back by a keyed number of days (1 to
  :data:`MAX_SHIFT_DAYS`) that is the same for every exam of a subject ("... with
  Modified Dates Option"): intervals between a patient's exams are preserved.
- DICOM source headers get the Basic Application Level Confidentiality Profile
  (PS3.15 Annex E, Table E.1-1) for the attributes in MR image headers and the ones
  r2mri's DICOM outputs copy: identifying names, IDs and dates emptied or removed,
  UIDs replaced by keyed ``2.25.`` UIDs (consistent within and across exams),
  private attributes removed, and PatientIdentityRemoved / DeidentificationMethod /
  DeidentificationMethodCodeSequence set.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["Deidentifier", "MAX_SHIFT_DAYS", "MIN_KEY_BYTES"]

#: Largest keyed date shift, days [D, design choice: a year blurs birthdays and visit
#: dates while keeping seasons and the order of a patient's exams].
MAX_SHIFT_DAYS = 365
#: Shortest accepted key: 16 bytes = 128 bits, the security level HMAC-SHA256 keys
#: should reach (NIST SP 800-107r1 section 5.3.4: key at least the security strength).
MIN_KEY_BYTES = 16

# PS3.15 Table E.1-1, Basic Profile column, for the attributes of MR image headers and of
# the patient/study modules r2mri's DICOM outputs copy. Z: zero length; X: remove;
# U: keyed UID. Dates (DA/DT) follow the longitudinal option chosen (kept or shifted).
_EMPTY = ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "ReferringPhysicianName",
          "StudyTime", "ContentTime")
_REMOVE = (
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName", "PatientAge",
    "PatientSize", "PatientWeight", "PatientAddress", "PatientMotherBirthName", "PatientTelephoneNumbers",
    "PatientBirthTime", "EthnicGroup", "PatientComments", "MedicalRecordLocator", "MilitaryRank",
    "Occupation", "AdditionalPatientHistory", "PregnancyStatus", "PatientReligiousPreference",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "DeviceSerialNumber", "OperatorsName", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord", "RequestingPhysician", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "StudyDescription", "SeriesDescription", "ProtocolName",
    "RequestedProcedureDescription", "RequestedProcedureID", "PerformedProcedureStepDescription",
    "PerformedProcedureStepID", "ScheduledProcedureStepDescription", "ImageComments",
    "RequestAttributesSequence", "ReferencedPatientSequence", "ReferencedStudySequence",
    "ReferencedPerformedProcedureStepSequence", "AdmittingDiagnosesDescription",
    "DerivationDescription", "StudyComments", "SeriesTime", "AcquisitionTime",
    "PerformedProcedureStepStartTime", "IssuerOfPatientID", "CurrentPatientLocation",
)
_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
         "ReferencedSOPInstanceUID", "MediaStorageSOPInstanceUID", "IrradiationEventUID",
         "SynchronizationFrameOfReferenceUID", "DimensionOrganizationUID", "ConcatenationUID",
         "ReferencedFrameOfReferenceUID")
#: DCM codes of PS3.16 CID 7050 "De-identification Method".
_CODE_BASIC = ("113100", "Basic Application Confidentiality Profile")
_CODE_FULL_DATES = ("113106", "Retain Longitudinal Temporal Information Full Dates Option")
_CODE_MODIFIED_DATES = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")

# Image metadata kept as is: acquisition and geometry facts, nothing about the person.
_META_KEEP = (
    "format", "dataset_kind", "echo_times_ms", "echo_times_overridden", "repetition_time_s",
    "flip_angle_deg", "pixel_spacing_mm", "slice_thickness_mm", "slice_spacing_mm", "slice_gap_mm",
    "matrix", "n_slices", "clipped_voxels_per_echo", "max_stored_value_per_echo",
    "philips_floating_point_values", "manufacturer_model_name", "software_versions", "series_numbers",
)
_SERIES_DROP = ("files", "series_description")


@dataclass(frozen=True)
class Deidentifier:
    """Keyed pseudonyms, date shifts and header de-identification for one cohort.

    Parameters
    ----------
    key : bytes
        Secret key (at least :data:`MIN_KEY_BYTES` bytes); keep it to re-identify
        nothing, but to give the next run the same pseudonyms.
    shift_dates : bool
        Move every date of a subject back by a keyed 1-365 days.

    Examples
    --------
    >>> d = Deidentifier(b"0123456789abcdef-a-secret-key")
    >>> d.pseudonym("PAT001") == d.pseudonym("PAT001"), d.pseudonym("PAT001") == d.pseudonym("PAT002")
    (True, False)
    >>> d.pseudonym("PAT001")[:4], len(d.pseudonym("PAT001"))
    ('sub-', 16)
    >>> shifted = Deidentifier(b"0123456789abcdef-a-secret-key", shift_dates=True)
    >>> shifted.shift_date("2024-03-01", "PAT001") < "2024-03-01"
    True
    """

    key: bytes
    shift_dates: bool = False

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise InputError(f"deidentify key: {len(self.key)} bytes; use at least {MIN_KEY_BYTES} random bytes")

    def __repr__(self) -> str:  # never print the key
        return f"Deidentifier(key=<{len(self.key)} bytes>, shift_dates={self.shift_dates})"

    @classmethod
    def from_keyfile(cls, path: str | os.PathLike, *, shift_dates: bool = False) -> "Deidentifier":
        """Read the key from a file (its bytes, surrounding whitespace stripped)."""
        try:
            key = Path(path).read_bytes().strip()
        except OSError as exc:
            raise InputError(f"{path}: cannot read the de-identification key ({exc.strerror})") from None
        if len(key) < MIN_KEY_BYTES:
            raise InputError(f"{path}: key has {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
                             "(e.g. `python -c \"import secrets; print(secrets.token_hex(32))\" > KEYFILE`)")
        return cls(key, shift_dates)

    # ------------------------------------------------------------------ keyed values
    def _mac(self, purpose: str, text: str) -> bytes:
        return hmac.new(self.key, f"r2mri/{purpose}\x00{text}".encode("utf-8"), hashlib.sha256).digest()

    def key_id(self) -> str:
        """A short keyed fingerprint of the key (changes when the key changes; reveals nothing)."""
        return self._mac("key-id", "").hex()[:16]

    def pseudonym(self, subject: str) -> str:
        """``sub-`` + 12 hex digits of HMAC-SHA256(key, subject)."""
        return "sub-" + self._mac("subject", str(subject)).hex()[:12]

    def offset_days(self, subject: str) -> int:
        """Days every date of ``subject`` moves back (0 without ``shift_dates``)."""
        if not self.shift_dates:
            return 0
        return 1 + int.from_bytes(self._mac("date-shift", str(subject))[:4], "big") % MAX_SHIFT_DAYS

    def uid(self, uid: str) -> str:
        """A keyed replacement UID under the ``2.25`` (UUID-derived) root, PS3.5 B.2."""
        return "2.25." + str(int.from_bytes(self._mac("uid", str(uid))[:16], "big"))

    def shift_date(self, text: Any, subject: str) -> Any:
        """Shift a DA ``YYYYMMDD``, ISO ``YYYY-MM-DD`` or DT/ISO date-time by the subject's offset."""
        days = self.offset_days(subject)
        if not days or text in (None, ""):
            return text
        m = re.match(r"^(\d{4})(-?)(\d{2})-?(\d{2})(.*)$", str(text))
        if not m:
            return None  # not a date we can shift: drop it rather than keep it
        try:
            day = _dt.date(int(m.group(1)), int(m.group(3)), int(m.group(4))) - _dt.timedelta(days=days)
        except ValueError:
            return None
        sep = m.group(2)
        return f"{day.year:04d}{sep}{day.month:02d}{sep}{day.day:02d}{m.group(5)}"

    def describe(self) -> dict:
        """What was done (for settings and fingerprints): no key, no identifiers."""
        return {"key_id": self.key_id(), "shift_dates": self.shift_dates,
                "profile": "PS3.15 Annex E basic profile, retain longitudinal "
                           + ("modified dates" if self.shift_dates else "full dates")}

    # ------------------------------------------------------------------ exams and images
    def exam(self, exam: Any) -> Any:
        """The exam with its subject pseudonymised and its dates shifted."""
        date = self.shift_date(exam.study_date, exam.subject)
        session = exam.session
        if exam.study_date and session.startswith(exam.study_date):
            session = (date or "nodate") + session[len(exam.study_date):]
        return replace(exam, subject=self.pseudonym(exam.subject), session=session, study_date=date)

    def image(self, img: Any, subject: str) -> Any:
        """A copy of ``img`` whose metadata and DICOM headers are de-identified.

        ``subject`` is the exam's original subject label (it keys pseudonym and shift).
        """
        meta = img.metadata or {}
        new: dict[str, Any] = {k: copy.deepcopy(meta[k]) for k in _META_KEEP if k in meta}
        new["patient_id"] = new["patient_name"] = self.pseudonym(subject)
        new["study_date"] = self.shift_date(meta.get("study_date"), subject)
        for key in ("study_instance_uid", "frame_of_reference_uid"):
            if meta.get(key):
                new[key] = self.uid(meta[key])
        if meta.get("series_instance_uids"):
            new["series_instance_uids"] = [self.uid(u) if u else u for u in meta["series_instance_uids"]]
        series = []
        for s in meta.get("series") or []:
            if isinstance(s, dict):
                s = {k: copy.deepcopy(v) for k, v in s.items() if k not in _SERIES_DROP}
                if s.get("series_instance_uid"):
                    s["series_instance_uid"] = self.uid(s["series_instance_uid"])
                series.append(s)
        new["series"] = series
        new["deidentified"] = self.describe()
        datasets = img.source_datasets
        if datasets:
            datasets = [self.dataset(ds, subject) for ds in datasets]
        return replace(img, metadata=new, source_datasets=datasets)

    def dataset(self, ds: Any, subject: str) -> Any:
        """A de-identified copy of a pydicom dataset (basic profile, see the module notes)."""
        ds = copy.deepcopy(ds)
        self._clean(ds, subject)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.uid(meta.MediaStorageSOPInstanceUID)
        pseudonym = self.pseudonym(subject)
        ds.PatientName = pseudonym + "^"  # PN: the pseudonym as the family name component
        ds.PatientID = pseudonym
        self.mark(ds)
        return ds

    def _clean(self, ds: Any, subject: str) -> None:
        ds.remove_private_tags()
        for elem in list(ds):
            kw = elem.keyword
            if elem.VR == "SQ":
                if kw in _REMOVE:
                    del ds[elem.tag]
                    continue
                for item in elem.value:
                    self._clean(item, subject)
            elif kw in _REMOVE:
                del ds[elem.tag]
            elif kw in _EMPTY:
                elem.value = ""
            elif kw in _UIDS and elem.value:
                elem.value = ([self.uid(v) for v in elem.value] if elem.VM > 1 else self.uid(str(elem.value)))
            elif elem.VR == "PN" and kw != "PatientName":
                elem.value = ""
            elif elem.VR in ("DA", "DT") and elem.value:
                shifted = self.shift_date(str(elem.value), subject)
                if shifted is None:
                    del ds[elem.tag]
                else:
                    elem.value = shifted

    def mark(self, ds: Any) -> None:
        """Set PatientIdentityRemoved, DeidentificationMethod and its code sequence (PS3.3 C.7.1.1)."""
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        ds.PatientIdentityRemoved = "YES"
        # LO: at most 64 characters
        dates = "modified dates" if self.shift_dates else "full dates"
        ds.DeidentificationMethod = f"r2mri: PS3.15 basic profile, {dates}"
        items = []
        for value, meaning in (_CODE_BASIC, _CODE_MODIFIED_DATES if self.shift_dates else _CODE_FULL_DATES):
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        ds.LongitudinalTemporalInformationModified = "MODIFIED" if self.shift_dates else "UNMODIFIED"

    def scrub_text(self, text: str, exam: Any) -> str:
        """An error message without the exam's input paths or original subject label."""
        out = str(text)
        for p in sorted({*exam.inputs, *(os.path.dirname(p) for p in exam.inputs), exam.mask or ""},
                        key=len, reverse=True):
            if p:
                out = out.replace(p, "<input>")
        if exam.subject:
            out = out.replace(exam.subject, self.pseudonym(exam.subject))
        return out
