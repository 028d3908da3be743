"""The audit log in `obscura serve`: DCMTK storescu sends devset files to the
gateway (a folder destination and the archive), an unknown AE is refused,
DICOMweb STOW, QIDO and WADO run with a token and one request without it;
then `obscura audit verify` with the witness's checkpoint says OK, the
expected events are there (QIDO with one keyed patient subject per patient
returned, BALP), no planted value or original UID is in any audit file, and
one flipped byte makes verify exit 1."""
import hashlib
import json
import re
import secrets
import subprocess
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from audit_fixtures import records, subject_hash
from conftest import BINARY, DEVSET, make_key, obscura
from gateway_fixtures import ECHOSCU, Gateway, folder_destination, free_port, storescu
from test_web import stow_raw

pytestmark = pytest.mark.skipif(not Path("/usr/bin/storescu").is_file(),
                                reason="DCMTK storescu/echoscu not installed (apt-get install dcmtk)")

SENDABLE_TS = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
SENDABLE_SOP = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"}


def answer_key():
    return json.loads((DEVSET / "answer_key.json").read_text())


def pick_files(n_dimse=4, n_stow=3):
    """Devset files storescu sends as they are (CT/MR, uncompressed)."""
    key = answer_key()["files"]
    good = [DEVSET / "data" / name for name, e in sorted(key.items())
            if e.get("sop_class") in SENDABLE_SOP and e.get("transfer_syntax") in SENDABLE_TS
            and e.get("part10_in", True)]
    assert len(good) >= n_dimse + n_stow, len(good)
    return good[:n_dimse], good[n_dimse:n_dimse + n_stow]


def patient_hash(site_key_hex, patient_id):
    """SubjectRef::patient."""
    return subject_hash(site_key_hex, "patient", patient_id)


def needles():
    """The devset's planted values and every original UID."""
    found = set()
    for entry in answer_key()["files"].values():
        for n in entry["needles"]:
            if n["kind"] in ("name", "id", "date") and len(n["n"]) >= 6:
                found.add(n["n"])
        for u in entry.get("uids", []):
            found.add(u["uid"])
    for f in sorted((DEVSET / "data").rglob("*.dcm")):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                   "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            v = str(ds.get(kw, "") or "")
            if len(v) >= 6:
                found.add(v)
    return found


def audit_keys(root, origin="test.example/audit"):
    """The site audit key, and the checkpoint signing key with its public key, in ROOT."""
    make_key(root / "audit-site.key")
    p = obscura("audit", "keygen", origin, root / "audit-signing.key", root / "audit.pub")
    assert p.returncode == 0, p.stderr


AUDIT = """
[audit]
dir = "audit"
signing_key = "audit-signing.key"
key_file = "audit-site.key"
witness = "witness"
checkpoint_secs = 1
"""


def audited_archive(root, audit_extra=""):
    """A `serve` config in ROOT with [audit] (and AUDIT_EXTRA, e.g.
    [[audit.syslog]] tables): PACS (plain, loopback) routed to a folder
    `out` and the archive's tenant Site A (created), DICOMweb on loopback
    with a bearer token for `viewer`. (config, port, web_port, token)."""
    audit_keys(root)
    make_key(root / "master.key")
    token = secrets.token_urlsafe(32)
    (root / "web-tokens").write_text(f"{hashlib.sha256(token.encode()).hexdigest()} viewer\n")
    (root / "web-tokens").chmod(0o600)
    (root / "web-spool").mkdir()
    port, web_port = free_port(), free_port()
    config = root / "serve.toml"
    config.write_text(f"""
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:{port}"
data_dir = "data"
retry_initial_ms = 200
{AUDIT}{audit_extra}
[archive]
data_dir = "archive"
master_key_file = "master.key"

[web]
listen = "127.0.0.1:{web_port}"
plain = true
tokens_file = "web-tokens"
temp_dir = "web-spool"

[[web.principal]]
name = "viewer"
tenant = "Site A"

[[peer]]
name = "pacs"
calling_ae = "PACS"
addresses = ["127.0.0.1"]
plain = true
{folder_destination(root, "out")}
[[destination]]
name = "archive-a"
archive_tenant = "Site A"

[[route]]
from = ["pacs"]
to = ["out", "archive-a"]
""")
    p = obscura("tenant", "create", "Site A", "--config", config)
    assert p.returncode == 0, p.stderr
    return config, port, web_port, token


def test_serve_with_audit_log(tmp_path):
    root = tmp_path
    config, port, web_port, token = audited_archive(root)
    gw = Gateway(config, port).start()
    try:
        assert "audit log on" in gw.log_text()
        dimse_files, stow_files = pick_files()
        sent = storescu(port, dimse_files)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        refused = subprocess.run([ECHOSCU, "-aet", "NOBODY", "-aec", "OBSCURA", "127.0.0.1", str(port)],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
        gw.wait_idle(["out", "archive-a"])

        url = f"http://127.0.0.1:{web_port}"
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {token}"
        client = DICOMwebClient(url, session=s)
        result = stow_raw(client, [f.read_bytes() for f in stow_files])
        assert "FailedSOPSequence" not in result
        studies = client.search_for_studies()
        one = pydicom.dcmread(stow_files[0], stop_before_pixels=True)
        got = client.retrieve_instance(one.StudyInstanceUID, one.SeriesInstanceUID, one.SOPInstanceUID)
        assert got.SOPInstanceUID == one.SOPInstanceUID
        anon = requests.Session()
        anon.trust_env = False
        assert anon.get(f"{url}/studies").status_code == 401
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    log = gw.log_text()
    assert "audit log closed" in log, log[-2000:]

    audit, witness = root / "audit", root / "witness"
    latest = sorted(witness.glob("*.note"))[-1]
    verify = [BINARY, "audit", "verify", audit, "--checkpoint", latest, "--public-key", root / "audit.pub"]
    v = subprocess.run(list(map(str, verify)), capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    assert v.stdout.startswith("OK"), v.stdout

    recs = records(audit)
    kinds = {r["kind"] for r in recs}
    for k in ("association-accepted", "association-rejected", "instance-received",
              "instance-forwarded", "web-request", "auth-failure"):
        assert k in kinds, (k, kinds)
    site_key = (root / "audit-site.key").read_text()
    sent_ids = [str(pydicom.dcmread(f, stop_before_pixels=True).PatientID) for f in dimse_files]
    stow_ids = [str(pydicom.dcmread(f, stop_before_pixels=True).PatientID) for f in stow_files]
    received = [r for r in recs if r["kind"] == "instance-received"]
    assert len(received) == len(dimse_files)
    got_patients = {s["hash"] for r in received for s in r.get("subjects", []) if s["kind"] == "patient"}
    assert got_patients == {patient_hash(site_key, i) for i in sent_ids if i}
    # the folder forwards (or quarantines); the archive stores
    delivered = [r for r in recs if r["kind"] in ("instance-forwarded", "instance-quarantined",
                                                  "instance-stored")
                 and r["route"].startswith("dest:")]
    assert {(r["route"], r["kind"]) for r in delivered} <= {
        ("dest:out", "instance-forwarded"), ("dest:out", "instance-quarantined"),
        ("dest:archive-a", "instance-stored"), ("dest:archive-a", "instance-quarantined")}
    assert len([r for r in delivered if r["route"] == "dest:archive-a"]) == len(dimse_files)
    assert len(delivered) == 2 * len(dimse_files)
    assert any(r["kind"] == "instance-stored" for r in delivered)
    rejected = [r for r in recs if r["kind"] == "association-rejected"]
    assert rejected[0]["actor"]["ae_title"] == "NOBODY" and rejected[0]["reason"] == "unknown-ae"
    web = [r for r in recs if r["kind"] == "web-request"]
    routes = {r["route"] for r in web}
    assert {"web:POST /studies", "web:GET /studies",
            "web:GET /studies/{study}/series/{series}/instances/{instance}"} <= routes, routes
    # STOW: one instance-stored record per instance (patient, study,
    # instance keyed), and the request's record names each patient stored once
    stored = [r for r in recs if r["kind"] == "instance-stored" and r["route"] == "web:stow"]
    assert len(stored) == len(stow_files)
    stow_uids = [pydicom.dcmread(f, stop_before_pixels=True) for f in stow_files]
    assert sorted(s["hash"] for r in stored for s in r["subjects"] if s["kind"] == "instance") == \
        sorted(subject_hash(site_key, "instance", str(d.SOPInstanceUID)) for d in stow_uids)
    assert all(r["actor"]["principal"].startswith("viewer@") for r in stored)
    stow = next(r for r in web if r["route"] == "web:POST /studies")
    assert stow["count"] == len(stow_files)
    stow_patients = [s["hash"] for s in stow["subjects"] if s["kind"] == "patient"]
    assert sorted(stow_patients) == sorted({patient_hash(site_key, i) for i in stow_ids if i})
    # the grants it acted under: viewer is bound to its tenant by the config
    assert all(r["detail"]["grants"] == "owner" for r in web)
    # BALP: the study search returned every patient of the tenant, one subject each
    qido = next(r for r in web if r["route"] == "web:GET /studies")
    assert qido["outcome"] == "success" and qido["count"] == len(studies)
    every = {patient_hash(site_key, i) for i in sent_ids + stow_ids if i}
    assert {s["hash"] for s in qido["subjects"] if s["kind"] == "patient"} == every
    wado = next(r for r in web if r["route"].endswith("{instance}"))
    assert [(s["kind"], s["hash"]) for s in wado["subjects"]] == [
        ("patient", patient_hash(site_key, str(one.PatientID))),
        ("study", subject_hash(site_key, "study", str(one.StudyInstanceUID)))]
    assert all(r["actor"]["principal"].startswith("viewer@") for r in web)
    failure = next(r for r in recs if r["kind"] == "auth-failure")
    assert failure["reason"] == "no-credentials" and failure["outcome"] == "denied"

    # no planted value and no original UID anywhere in the audit files (hashes
    # and base64 roots/signatures set aside: random hex/base64 may hold digits)
    files = [p for d in (audit, witness) for p in d.rglob("*") if p.is_file()]
    assert len(files) >= 3
    text = "\n".join(re.sub(r"[A-Za-z0-9+/=]{40,}", "", p.read_text(errors="replace")) for p in files)
    hits = sorted(n for n in needles() if n in text)
    assert not hits, hits[:10]
    for r in recs:
        for s in r.get("subjects", []):
            assert re.fullmatch(r"[0-9a-f]{64}", s["hash"])

    # one flipped byte in one record: TAMPERED, exit 1
    seg = sorted((audit / "segments").glob("*.jsonl"))[0]
    data = bytearray(seg.read_bytes())
    at = data.index(b'"outcome":"success"') + len(b'"outcome":"')
    data[at] = ord("S")
    seg.write_bytes(bytes(data))
    v = subprocess.run(list(map(str, verify)), capture_output=True, text=True)
    assert v.returncode == 1, v.stdout + v.stderr
    assert "TAMPERED" in v.stdout
