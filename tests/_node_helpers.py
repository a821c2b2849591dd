"""Helpers of the node tests: free ports, a real Orthanc, an ``r2mri serve`` process,
phantom studies, a pynetdicom sender. Everything on 127.0.0.1, always stopped."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc") else None)

#: SOP classes of the results (PS3.4 Annex B).
PM, SEG, SR3D, SC, CSR = ("1.2.840.10008.5.1.4.1.1.30", "1.2.840.10008.5.1.4.1.1.66.4",
                          "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7",
                          "1.2.840.10008.5.1.4.1.1.88.33")  # CSR: the failure notice
MR = "1.2.840.10008.5.1.4.1.1.4"
PHI = {"PatientName": "DOE^JANE^Q", "PatientID": "PID-98765-XYZ", "PatientBirthDate": "19700101"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


# -- phantom studies -----------------------------------------------------------------
def phantom_study(folder: Path, *, seed: int, lic: float = 7.0, phi: bool = True):
    """A small FerriScan phantom written as DICOM (one file per slice and echo);
    returns ``(files, truth_lic_of_mean_r2, study_uid)``. With ``phi`` the patient
    attributes are set to recognisable fake identity (for the PHI-free log checks)."""
    import pydicom

    from r2mri import phantom as P

    ph = P.generate(lic=lic, seed=seed, matrix=(48, 48), pixel_mm=8.0, n_slices=2)
    src = P.write(ph, folder, format="dicom")
    files = sorted(src.rglob("*.dcm"))
    study = None
    for f in files:
        ds = pydicom.dcmread(f)
        study = str(ds.StudyInstanceUID)
        if phi:
            for k, v in PHI.items():
                setattr(ds, k, v)
            ds.save_as(f)
    return files, ph.summary["lic_of_mean_r2_mg_per_g"], study


def send_files(port: int, files, *, called: str = "R2MRI", calling: str = "SENDER", stop_after: int | None = None):
    """C-STORE files (Dataset or path) to the node over one association; statuses."""
    import pydicom
    from pynetdicom import AE

    ae = AE(calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    classes = set()
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        classes.add(str(ds.get("SOPClassUID") or ds.file_meta.MediaStorageSOPClassUID))
    for c in sorted(classes):
        ae.add_requested_context(c)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return None
    out = []
    try:
        for i, f in enumerate(files):
            if stop_after is not None and i >= stop_after:
                break
            st = assoc.send_c_store(f)
            out.append(int(st.Status) if st else None)
    finally:
        if assoc.is_established:
            assoc.release()
    return out


def echo(port: int, called: str = "R2MRI", calling: str = "SENDER", tls=None) -> bool:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.add_requested_context(Verification)
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title=called, tls_args=tls)
    except OSError:
        return False
    if not assoc.is_established:
        return False
    st = assoc.send_c_echo()
    assoc.release()
    return bool(st) and int(st.Status) == 0


# -- r2mri serve as a process ------------------------------------------------------------
class NodeProcess:
    """``python -m r2mri serve`` in its own process group (killed with it)."""

    def __init__(self, spool: Path, port: int, destinations: list[str], *, workers: int = 1,
                 stable_s: float = 1.0, extra: list[str] | None = None) -> None:
        self.spool, self.port = Path(spool), port
        self.log = self.spool.parent / f"{self.spool.name}-node.log"
        self.args = [sys.executable, "-m", "r2mri", "serve", "--port", str(port), "--spool", str(spool),
                     "--stable-seconds", str(stable_s), "--workers", str(workers), "--min-free-mb", "1",
                     "--retry-backoff", "0.5", "1", "2", "--log-file", str(self.log)]
        for d in destinations:
            self.args += ["--destination", d]
        self.args += extra or []
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> "NodeProcess":
        start_lines = self.lines_count("listening")
        self.proc = subprocess.Popen(self.args, start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=open(self.spool.parent / f"{self.spool.name}-node.err", "ab"))
        wait_for(lambda: self.lines_count("listening") > start_lines or self.proc.poll() is not None,
                 timeout_s, "the node to listen")
        assert self.proc.poll() is None, f"node exited: {(self.spool.parent / f'{self.spool.name}-node.err').read_text()[-2000:]}"
        return self

    def records(self) -> list[dict]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    def lines_count(self, event: str) -> int:
        return sum(r.get("event") == event for r in self.records())

    def jobs(self) -> list[dict]:
        from r2mri.node.queue import JobQueue

        db = self.spool / "queue.sqlite"
        if not db.exists():
            return []
        q = JobQueue(db, readonly=True)
        try:
            return [dict(j) for j in q.jobs()]
        finally:
            q.close()

    def kill9(self) -> None:
        """SIGKILL the node and its workers (its process group), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers (workers) too
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)


# -- a real Orthanc ------------------------------------------------------------------------
class Orthanc:
    """Orthanc started from a configuration in ``folder`` (DICOM and HTTP on 127.0.0.1)."""

    def __init__(self, folder: Path, node_port: int, aet: str = "ORTHANC") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.aet, self.dicom_port, self.http_port = aet, free_port(), free_port()
        self.config = {
            "Name": "r2mri-test", "StorageDirectory": str(self.folder / "db"), "IndexDirectory": str(self.folder / "db"),
            "DicomAet": aet, "DicomPort": self.dicom_port, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "StableAge": 1,
            "DicomModalities": {"r2mri": ["R2MRI", "127.0.0.1", node_port]},
            "Plugins": [], "DicomScuTimeout": 10, "DicomAssociationCloseDelay": 0, "SaveJobs": False,
            # Orthanc 1.10 listens on every interface and cannot be bound to 127.0.0.1:
            # HTTP answers only local clients (RemoteAccessAllowed false), and DICOM
            # accepts only the node (AE R2MRI from 127.0.0.1, the modality entry)
            "DicomAlwaysAllowStore": False, "DicomAlwaysAllowEcho": False, "DicomCheckModalityHost": True,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Orthanc":
        lua = Path(__file__).resolve().parents[1] / "docs" / "node.md"
        script = lua.read_text().split("```lua\n", 1)[1].split("```", 1)[0]  # the documented script
        (self.folder / "r2mri.lua").write_text(script)
        self.config["LuaScripts"] = [str(self.folder / "r2mri.lua")]
        cfg = self.folder / "orthanc.json"
        cfg.write_text(json.dumps(self.config, indent=1))
        self.proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.folder / "orthanc.log", "ab"), start_new_session=True)
        wait_for(lambda: self._alive(), 30, "Orthanc to answer HTTP")
        return self

    def _alive(self) -> bool:
        assert self.proc.poll() is None, (self.folder / "orthanc.log").read_text()[-2000:]
        try:
            return bool(self.get("/system"))
        except OSError:
            return False

    @property
    def destination(self) -> str:
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    def _req(self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=body, method=method,
                                     headers={"Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
        return data

    def get(self, path: str):
        return json.loads(self._req("GET", path))

    def file(self, instance_id: str) -> bytes:
        return self._req("GET", f"/instances/{instance_id}/file")

    def upload(self, files) -> list[str]:
        return [json.loads(self._req("POST", "/instances", Path(f).read_bytes(), "application/dicom"))["ParentStudy"]
                for f in files]

    def send_to_node(self, study_id: str) -> dict:
        body = json.dumps({"Resources": [study_id], "Synchronous": True}).encode()
        return json.loads(self._req("POST", "/modalities/r2mri/store", body))

    def study_id(self, study_uid: str) -> str | None:
        found = json.loads(self._req("POST", "/tools/lookup", study_uid.encode(), "text/plain"))
        return next((f["ID"] for f in found if f["Type"] == "Study"), None)

    def instances(self, study_uid: str) -> list[dict]:
        """Every instance of the study: SOP class and instance UIDs, Orthanc id."""
        sid = self.study_id(study_uid)
        if sid is None:
            return []
        out = []
        for inst in self.get(f"/studies/{sid}/instances"):
            tags = self.get(f"/instances/{inst['ID']}/simplified-tags")
            out.append({"id": inst["ID"], "sop_class": tags.get("SOPClassUID"), "sop_uid": tags.get("SOPInstanceUID"),
                        "manufacturer": tags.get("Manufacturer")})
        return out

    def results(self, study_uid: str) -> list[dict]:
        return [i for i in self.instances(study_uid) if i["manufacturer"] == "r2mri"]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def sr_headline_lic(ds) -> float | None:
    """The "LIC of the mean liver R2" numeric value of an r2mri SR (mg/g)."""
    def walk(items):
        for item in items:
            name = getattr(item, "ConceptNameCodeSequence", [None])[0]
            if name is not None and name.CodeValue == "LIC-MEANR2" and "MeasuredValueSequence" in item:
                value = item.MeasuredValueSequence[0]
                if value.MeasurementUnitsCodeSequence[0].CodeValue == "mg/g":
                    return float(value.NumericValue)
            if "ContentSequence" in item:
                found = walk(item.ContentSequence)
                if found is not None:
                    return found
        return None

    return walk(ds.ContentSequence)
