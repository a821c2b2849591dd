"""Unit tests of the node: configuration, queue state machine, study grouping in the
spool, the storage SCP's handlers (real pynetdicom on 127.0.0.1), the SCU's refusals,
PHI-free JSON logs, TLS."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pydicom
import pytest

from _node_helpers import PHI, SC, echo, free_port, phantom_study, send_files
from r2mri.errors import InputError
from r2mri.node.config import load_config, parse_destination
from r2mri.node.logs import JsonFormatter, log_event, setup_logging
from r2mri.node.queue import JobQueue
from r2mri.node.spool import Spool

pytest.importorskip("pynetdicom")


# -- configuration -------------------------------------------------------------------------
def test_config_file_then_flags(tmp_path):
    toml = tmp_path / "node.toml"
    toml.write_text(
        '[node]\naet = "LIVER"\nport = 4000\nspool = "sp"\nallow = ["PACS"]\n'
        'destinations = ["PACS@10.0.0.1:104"]\nstable_seconds = 30\nretry_backoff_s = [2, 10]\n'
        '[analysis]\nmodel = "ncchi"\nforce = true\n'
    )
    cfg = load_config(toml, {"port": 4001, "workers": 2, "destinations": [], "allow": None},
                      [("calibration", "st-pierre-2005")])
    assert (cfg.aet, cfg.port, cfg.workers, cfg.stable_seconds) == ("LIVER", 4001, 2, 30.0)
    assert cfg.spool == tmp_path / "sp"  # relative to the file
    assert [str(d) for d in cfg.destinations] == ["PACS@10.0.0.1:104"]  # an empty flag list keeps the file's
    assert cfg.allow == ["PACS"] and cfg.retry_backoff_s == [2.0, 10.0]
    assert cfg.analysis == {"model": "ncchi", "force": True, "calibration": "st-pierre-2005"}
    other = load_config(toml, analysis_overrides=[("model", "exp")])
    assert other.options_fingerprint() != cfg.options_fingerprint()


@pytest.mark.parametrize("text, message", [
    ('[node]\nport = "x"\n', "port must be an integer"),
    ('[node]\nport = 70000\n', "port must be 0-65535"),
    ('[node]\naet = "A-TITLE-FAR-TOO-LONG"\n', "AE title"),
    ('[node]\ndestinations = ["PACS:104"]\n', "expected AET@HOST:PORT"),
    ('[node]\nworkers = 0\n', "workers: must be an integer >= 1"),
    ('[node]\nbogus = 1\n', "unknown key node.bogus"),
    ('[nodes]\n', "unknown table"),
    ('[analysis]\nmask = "x"\n', "not an option of r2mri.analyze"),
    ('[tls]\ncert = "missing.pem"\n', "cert and key are both needed"),
    ('[node\n', "not valid TOML"),
])
def test_config_errors_are_one_line(tmp_path, text, message):
    toml = tmp_path / "node.toml"
    toml.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_config(toml)
    assert "\n" not in str(err.value)


def test_check_config_prints_effective_settings(tmp_path, capsys):
    from r2mri.cli import main

    assert main(["serve", "--check-config", "--port", "4100", "--destination", "A@127.0.0.1:1",
                 "--analyze-option", "model=exp", "--spool", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "never sent" not in captured.err
    assert out["port"] == 4100 and out["destinations"] == ["A@127.0.0.1:1"] and out["analysis"] == {"model": "exp"}
    assert main(["serve", "--check-config", "--spool", str(tmp_path)]) == 0  # valid, but sends nothing: said
    captured = capsys.readouterr()
    assert json.loads(captured.out)["destinations"] == []
    assert captured.err.count("\n") == 1 and "no destination configured" in captured.err
    assert "never sent anywhere" in captured.err
    assert main(["serve", "--check-config", "--destination", "nope"]) == 2
    assert "expected AET@HOST:PORT" in capsys.readouterr().err


def test_parse_destination_rejects_bad_port():
    with pytest.raises(InputError, match="0-65535"):
        parse_destination("A@h:99999")


# -- queue state machine ----------------------------------------------------------------------
def test_queue_state_machine(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite")
    a = q.instance_received("1.1", now=100.0)
    b = q.instance_received("2.2", now=101.0)
    assert q.instance_received("1.1", now=103.0) == a != b
    assert [j.id for j in q.stable(5, now=105.9)] == [] and [j.id for j in q.stable(5, now=106.0)] == [b]
    assert [j.id for j in q.stable(5, now=108.0)] == [a, b]
    assert q.get(a).n_instances == 2
    with pytest.raises(ValueError, match="received -> analysing is not a legal"):
        q.set_state(a, "analysing")
    for state in ("queued", "analysing", "sending", "done"):
        q.set_state(a, state)
    with pytest.raises(ValueError, match="done -> queued"):
        q.set_state(a, "queued")
    # a study arriving again after its job left 'received' gets a new job
    assert q.instance_received("1.1") not in (a, b)
    q.set_state(b, "queued")
    q.set_state(b, "analysing", attempts=1)
    q.close()
    q = JobQueue(tmp_path / "q.sqlite")  # after a crash
    assert [j.id for j in q.recover()] == [b] and q.get(b).state == "queued" and q.get(b).attempts == 1
    q.record_sent(a, "X@h:1", "9.9", "stored")
    q.record_sent(a, "X@h:1", "9.8", "refused: status 0xA900")
    assert q.sent(a)[("X@h:1", "9.9")] == "stored"
    assert list(q.refusals(a)) == [("X@h:1", "9.8", "refused: status 0xA900")]
    q.close()


# -- spool: grouping by study across associations, crash recovery ----------------------------
def test_spool_groups_by_study_and_recovers(tmp_path):
    sp = Spool(tmp_path / "spool")
    j1 = sp.store_instance("1.2.3", "1.2.3.1", b"a")
    assert sp.store_instance("1.2.3", "1.2.3.2", b"b") == j1  # another association, same study
    j2 = sp.store_instance("4.5.6", "4.5.6.1", b"c")
    assert j2 != j1
    assert sorted(p.name for p in sp.study_dir("1.2.3").iterdir()) == ["1.2.3.1.dcm", "1.2.3.2.dcm"]
    assert not sp.hand_to_job(j1, stable_seconds=60)  # not stable yet
    time.sleep(0.05)
    assert sp.hand_to_job(j1, stable_seconds=0.01)
    assert sorted(p.name for p in (sp.job_dir(j1) / "input").iterdir()) == ["1.2.3.1.dcm", "1.2.3.2.dcm"]
    assert sp.queue.get(j1).state == "queued" and not sp.study_dir("1.2.3").exists()
    # late instance of the same study: a new job
    j3 = sp.store_instance("1.2.3", "1.2.3.3", b"d")
    assert j3 not in (j1, j2)
    sp.queue.close()


def test_spool_recovers_an_instance_whose_row_was_lost(tmp_path):
    files, _, study_uid = phantom_study(tmp_path / "ph", seed=1, phi=False)
    sp = Spool(tmp_path / "spool")
    folder = sp.study_dir(study_uid)
    folder.mkdir()
    (folder / "x.dcm").write_bytes(files[0].read_bytes())  # renamed in, then killed before the commit
    (sp.root / "tmp" / "half.dcm").write_bytes(b"partial")  # never renamed
    done = sp.recover()
    assert len(done["new"]) == 1 and sp.queue.get(done["new"][0]).study_uid == study_uid
    assert not list((sp.root / "tmp").iterdir())
    sp.queue.close()


# -- the storage SCP -------------------------------------------------------------------------
@pytest.fixture
def scp(tmp_path):
    """A storage SCP (real pynetdicom) on a free port; yields (config, spool)."""
    from r2mri.node.scp import start_scp

    servers = []

    def start(**settings):
        cfg = load_config(None, dict(dict(port=free_port(), spool=tmp_path / "spool", min_free_mb=1), **settings))
        spool = Spool(cfg.spool)
        servers.append((start_scp(cfg, spool), spool))
        return cfg, spool

    yield start
    for server, spool in servers:
        server.shutdown()
        spool.queue.close()


def test_scp_stores_answers_echo_and_rejects_unknown_callers(scp, tmp_path):
    files, _, study_uid = phantom_study(tmp_path / "ph", seed=2)
    cfg, spool = scp(allow=["GOOD"])
    assert echo(cfg.port, calling="GOOD")
    assert not echo(cfg.port, calling="EVIL")
    assert send_files(cfg.port, files[:3], calling="EVIL") is None
    assert send_files(cfg.port, files[:3], calling="GOOD") == [0, 0, 0]
    stored = sorted(spool.study_dir(study_uid).iterdir())
    assert len(stored) == 3
    ds = pydicom.dcmread(stored[0])
    assert ds.StudyInstanceUID == study_uid and ds.file_meta.TransferSyntaxUID  # a complete Part 10 file
    assert [j.n_instances for j in spool.queue.jobs()] == [3]


def test_scp_disk_guard_answers_out_of_resources(scp, tmp_path):
    files, _, study_uid = phantom_study(tmp_path / "ph", seed=3)
    cfg, spool = scp(min_free_mb=1e12)  # a petabyte: never free
    assert send_files(cfg.port, files[:2]) == [0xA700, 0xA700]
    assert not spool.study_dir(study_uid).exists() and not spool.queue.jobs()


def test_scp_refuses_an_undecodable_dataset_and_keeps_serving(scp, tmp_path):
    files, _, study_uid = phantom_study(tmp_path / "ph", seed=4)
    cfg, spool = scp()
    cut = tmp_path / "cut.dcm"
    raw = files[0].read_bytes()
    # cut inside PatientName: SOP class and instance UIDs are there (the sender can
    # send it), StudyInstanceUID and the rest are not
    at = raw.index(b"\x10\x00\x10\x00PN") + 10
    cut.write_bytes(raw[:at])
    statuses = send_files(cfg.port, [cut])
    assert statuses == [0xC210]
    assert not spool.queue.jobs()
    assert send_files(cfg.port, files[:1]) == [0]


def test_logs_are_json_and_free_of_patient_identity(scp, tmp_path):
    files, _, study_uid = phantom_study(tmp_path / "ph", seed=5)  # PHI set in every file
    log = tmp_path / "node.log"
    handler = setup_logging(str(log), level=logging.DEBUG)
    try:
        cfg, spool = scp()
        assert send_files(cfg.port, files[:2]) == [0, 0]
        log_event("state", job=1, study_uid=study_uid, patient_name=PHI["PatientName"],
                  PatientID=PHI["PatientID"], state="queued")
        logging.getLogger("pynetdicom").warning("pynetdicom says hello")
    finally:
        logging.getLogger("r2mri.node").removeHandler(handler)
        logging.getLogger("pynetdicom").removeHandler(handler)
        handler.close()
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert sum(r["event"] == "instance_received" for r in records) == 2
    assert all({"time", "level", "event"} <= set(r) for r in records)
    assert any(r.get("study_uid") == study_uid and r["event"] == "state" for r in records)
    for value in PHI.values():
        assert value not in text


def test_formatter_drops_patient_fields():
    rec = logging.LogRecord("r2mri.node", logging.INFO, __file__, 1, "x", None, None)
    rec.event, rec.fields = "e", {"patient_birth_date": "19700101", "job": 3}
    out = json.loads(JsonFormatter().format(rec))
    assert out["job"] == 3 and out["event"] == "e" and "patient_birth_date" not in out


# -- the storage SCU: refusals are per SOP class -------------------------------------------------
def test_scu_destination_refusing_one_sop_class_gets_the_others(tmp_path):
    from pynetdicom import AE, evt

    from r2mri.node.notice import write_failure_notice
    from r2mri.node.scu import send_files as scu_send

    files, _, _ = phantom_study(tmp_path / "ph", seed=6, phi=False)
    src = pydicom.dcmread(files[0])
    notice = write_failure_notice(src, "test", tmp_path / "n", "seed")  # Comprehensive SR
    got = []
    ae = AE("PICKY")
    ae.add_supported_context("1.2.840.10008.5.1.4.1.1.4")  # MR only: the SR's class is not accepted
    ae.add_supported_context("1.2.840.10008.5.1.4.1.1.88.33")

    def on_store(event):
        got.append(str(event.request.AffectedSOPInstanceUID))
        return 0xA900 if event.request.AffectedSOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33" else 0

    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        dest = parse_destination(f"PICKY@127.0.0.1:{port}")
        sc = tmp_path / "sc.dcm"
        ds = pydicom.dcmread(files[1])
        ds.SOPClassUID = SC
        ds.file_meta.MediaStorageSOPClassUID = SC
        ds.save_as(sc)
        recorded = {}
        out = scu_send(dest, [files[0], notice, sc], calling_aet="R2MRI",
                       on_result=lambda uid, st: recorded.__setitem__(uid, st))
        uid_mr, uid_notice, uid_sc = (str(pydicom.dcmread(f).SOPInstanceUID) for f in (files[0], notice, sc))
        assert out.error is None and out.stored == [uid_mr]
        assert out.refused == {uid_notice: "status 0xA900", uid_sc: f"SOP class {SC} not accepted"}
        assert recorded[uid_mr] == "stored" and recorded[uid_sc].startswith("refused: SOP class")
        # a destination that is down: an association error, nothing raised
        down = parse_destination(f"DOWN@127.0.0.1:{free_port()}")
        assert scu_send(down, [files[0]], calling_aet="R2MRI", timeout_s=2).error
    finally:
        server.shutdown()


# -- instance selection in the worker ----------------------------------------------------------
def test_select_instances_skips_other_classes_truncated_and_our_outputs(tmp_path):
    from r2mri.node.notice import write_failure_notice
    from r2mri.node.worker import select_instances

    files, _, _ = phantom_study(tmp_path / "ph", seed=7, phi=False)
    folder = tmp_path / "in"
    folder.mkdir()
    for f in files[:4]:
        (folder / f"{f.parent.name}-{f.name}").write_bytes(f.read_bytes())
    ds = pydicom.dcmread(files[4])
    ds.PixelData = ds.PixelData[:10]
    ds.save_as(folder / "short.dcm")
    (folder / "junk.dcm").write_bytes(b"not dicom")
    ours = write_failure_notice(pydicom.dcmread(files[0]), "x", tmp_path / "n", "s")
    (folder / "ours.dcm").write_bytes(ours.read_bytes())
    images, notes, any_ds = select_instances(folder)
    assert len(images) == 4 and all(p.name not in ("short.dcm", "junk.dcm", "ours.dcm") for p in images)
    assert any("truncated" in n for n in notes) and any("unreadable" in n for n in notes)
    assert str(any_ds.SOPClassUID) == "1.2.840.10008.5.1.4.1.1.4"
    only = tmp_path / "only"
    only.mkdir()
    (only / "ours.dcm").write_bytes(ours.read_bytes())
    assert select_instances(only)[:2] == ([], ["only r2mri outputs"])


def test_queue_command_lists_jobs_without_phi(tmp_path, capsys):
    from r2mri.cli import main

    sp = Spool(tmp_path / "spool")
    j = sp.store_instance("1.2.3", "1.2.3.4", b"x")
    sp.queue.close()
    assert main(["queue", "--spool", str(tmp_path / "spool"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["job"] == j and row["state"] == "received" and row["study_uid"] == "1.2.3"
    assert main(["queue", "--spool", str(tmp_path / "nothing")]) == 2


# -- TLS ---------------------------------------------------------------------------------------
def _make_pki(folder):
    """A CA, a node certificate and a client certificate (PEM files), made for the test."""
    crypto = pytest.importorskip("cryptography")
    del crypto
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("r2mri test CA")).issuer_name(name("r2mri test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    paths = {"ca": folder / "ca.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for who, serial in (("node", 2), ("client", 3)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(who)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(serial).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        paths[f"{who}_cert"] = folder / f"{who}.pem"
        paths[f"{who}_key"] = folder / f"{who}.key"
        paths[f"{who}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{who}_key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return paths


def test_tls_mutual_authentication(tmp_path):
    import ssl

    from r2mri.node.config import NodeConfig
    from r2mri.node.scp import make_ssl_context, start_scp

    pki = _make_pki(tmp_path)
    toml = tmp_path / "node.toml"
    toml.write_text(f'[node]\nport = {free_port()}\nspool = "spool"\nmin_free_mb = 1\n'
                    f'[tls]\ncert = "node.pem"\nkey = "node.key"\nca = "ca.pem"\n')
    cfg = load_config(toml)
    spool = Spool(cfg.spool)
    server = start_scp(cfg, spool)
    try:
        client = make_ssl_context(NodeConfig(tls_cert=str(pki["client_cert"]), tls_key=str(pki["client_key"]),
                                             tls_ca=str(pki["ca"])).validate(), server=False)
        assert echo(cfg.port, tls=(client, "localhost"))
        assert not echo(cfg.port)  # plain TCP: no association
        stranger = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki["ca"]))
        stranger.check_hostname = False
        assert not echo(cfg.port, tls=(stranger, "localhost"))  # no client certificate
        # the node's SCU side: the context it sends with (its own certificate) stores over TLS
        from r2mri.node.scu import send_files as scu_send

        files, _, study_uid = phantom_study(tmp_path / "ph", seed=10, phi=False)
        out = scu_send(parse_destination(f"R2MRI@127.0.0.1:{cfg.port}"), files[:2], calling_aet="PEER",
                       ssl_context=make_ssl_context(cfg, server=False))
        assert out.error is None and len(out.stored) == 2
        assert len(list(spool.study_dir(study_uid).iterdir())) == 2
    finally:
        server.shutdown()
        spool.queue.close()


def test_failure_notice_is_a_valid_sr_in_the_study(tmp_path):
    from _tools import dciodvfy

    from r2mri.node.notice import write_failure_notice

    files, _, study_uid = phantom_study(tmp_path / "ph", seed=8)
    src = pydicom.dcmread(files[0])
    path = write_failure_notice(src, "ProtocolError: too few echoes", tmp_path / "n", f"{study_uid}|v|x")
    again = write_failure_notice(src, "ProtocolError: too few echoes", tmp_path / "m", f"{study_uid}|v|x")
    ds, ds2 = pydicom.dcmread(path), pydicom.dcmread(again)
    assert ds.StudyInstanceUID == study_uid and ds.PatientID == src.PatientID  # same study, same patient
    assert (ds.SOPInstanceUID, ds.SeriesInstanceUID) == (ds2.SOPInstanceUID, ds2.SeriesInstanceUID)  # from the seed
    assert ds.ContentSequence[0].TextValue.endswith("no liver iron concentration: ProtocolError: too few echoes")
    errors, _ = dciodvfy(path)
    assert errors == []


def test_scp_maximum_associations(scp, tmp_path):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    cfg, _ = scp(max_associations=1)
    ae = AE("SENDER")
    ae.add_requested_context(Verification)
    first = ae.associate("127.0.0.1", cfg.port, ae_title="R2MRI")
    try:
        assert first.is_established
        second = ae.associate("127.0.0.1", cfg.port, ae_title="R2MRI")
        assert second.is_rejected  # 'local limit exceeded'
    finally:
        first.release()
    assert echo(cfg.port)  # the slot is free again


def test_worker_pool_reports_a_dead_worker_and_replaces_it(tmp_path):
    import os
    import signal

    from r2mri.node.worker import WorkerPool

    pool = WorkerPool(1)
    try:
        pid = pool.pids[0]
        empty = tmp_path / "in"
        empty.mkdir()
        task = dict(input_dir=str(empty), out_dir=str(tmp_path / "out"), notice_dir=str(tmp_path / "n"),
                    options={}, uid_seed="s")
        assert pool.submit(7, task) and pool.idle == 0
        os.kill(pid, signal.SIGKILL)
        from _node_helpers import wait_for

        done = wait_for(lambda: pool.poll(), 30, "the pool to notice")
        assert done == [(7, None)] and pool.idle == 1 and pool.pids[0] != pid
        # the replacement works: an empty study fails with a reason (no notice: nothing to reference)
        assert pool.submit(8, task)
        (job, result), = wait_for(lambda: pool.poll(), 120, "the analysis")
        assert job == 8 and result["outcome"] == "failed" and "no usable MR image" in result["error"]
        assert result["files"] == []
    finally:
        pool.stop()


def test_node_records_refusals_and_still_sends_the_other_objects(tmp_path):
    """An in-process node whose destination accepts only SEG and SR: the job ends
    ``done``, the SEG and SR arrive, the two Parametric Maps and the page are recorded as
    refused (and counted by ``r2mri queue``)."""
    from pynetdicom import AE, evt

    from _node_helpers import SEG, SR3D, wait_for
    from r2mri.node.service import Node

    got = []
    ae = AE("PICKY")
    for sop_class in (SEG, SR3D):
        ae.add_supported_context(sop_class)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, lambda e: got.append(str(e.request.AffectedSOPClassUID)) or 0)])
    cfg = load_config(None, dict(port=free_port(), spool=tmp_path / "spool", destinations=[f"PICKY@127.0.0.1:{port}"],
                                 stable_seconds=0.5, min_free_mb=1))
    node = Node(cfg).start()
    try:
        files, truth, study_uid = phantom_study(tmp_path / "ph", seed=9, phi=False)
        assert send_files(node.port, files) == [0] * len(files)
        job = wait_for(lambda: [j for j in node.queue.jobs(("done", "failed"))], 180, "the job to end")[0]
        assert job.state == "done" and abs(job.headline_lic - truth) / truth < 0.03
        assert sorted(got) == sorted([SEG, SR3D])
        refused = list(node.queue.refusals(job.id))
        assert len(refused) == 3 and all("not accepted" in status for _, _, status in refused)
    finally:
        node.stop()
        server.shutdown()


def test_scp_timeouts_close_silent_peers(scp, tmp_path):
    """A peer that connects and says nothing (no A-ASSOCIATE-RQ) and an association left
    idle are both dropped after the configured timeouts, and the node keeps serving."""
    import socket

    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    cfg, _ = scp(acse_timeout_s=1, network_timeout_s=1, dimse_timeout_s=1)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", cfg.port), timeout=15) as sock:
        assert sock.recv(1024) == b""  # closed by the node, not by our 15 s timeout
    silent = time.monotonic() - t0
    assert 0.5 < silent < 10, silent

    ae = AE("SENDER")
    ae.add_requested_context(Verification)
    ae.network_timeout = 30  # the node, not this side, must end the idle association
    assoc = ae.associate("127.0.0.1", cfg.port, ae_title="R2MRI")
    assert assoc.is_established
    t0 = time.monotonic()
    while assoc.is_established and time.monotonic() - t0 < 15:
        time.sleep(0.1)
    idle = time.monotonic() - t0
    assert not assoc.is_established and 0.5 < idle < 10, idle
    assert echo(cfg.port)  # still serving


def test_node_sends_every_dicom_result_of_a_fat_water_study(tmp_path):
    """A complex fat-water result: the node's file list holds the R2*, PDFF, water, fat,
    field-map and LIC Parametric Maps, the SEG, the SR and the page, and nothing else."""
    from _report_fake import fake_gre_dicom_result

    from r2mri.node.worker import result_files
    from r2mri.report import write_outputs

    paths = write_outputs(fake_gre_dicom_result(with_field_map=True), tmp_path / "out", dicom=True)
    files = result_files(paths)
    names = [Path(f).stem for f in files]
    assert names[:6] == ["pm_r2star", "pm_pdff", "pm_water", "pm_fat", "pm_fieldmap", "pm_lic"]
    pm = "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    classes = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPClassUID) for f in files]
    assert classes[:6] == [pm] * 6 and len(files) == 9 and pm not in classes[6:]
    assert sorted(files) == sorted(str(p) for k, p in paths.items() if str(p).endswith(".dcm"))
