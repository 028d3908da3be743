"""Audit records of the command line's changes and runs: `obscura grant
add|revoke`, `tenant create|shred` and `share` (with --config) and `deid`/
`scan` (with --audit-config) post their events to the audit log's inbox;
the running `obscura serve` appends them (an admin-event alert each), and
one started later appends what came while it was down. Read back with
`obscura audit export --format json`; `obscura audit verify` says OK."""
import getpass
import json
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from audit_fixtures import records, subject_hash
from conftest import BINARY, DEVSET, make_key, obscura
from gateway_fixtures import Gateway, storescu
from test_audit import audited_archive, needles, pick_files

pytestmark = pytest.mark.skipif(not Path("/usr/bin/storescu").is_file(),
                                reason="DCMTK storescu not installed (apt-get install dcmtk)")

ADMIN = {"grant-change", "tenant-change", "deid-run", "scan-run"}


def ok(*args):
    p = obscura(*args)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def exported(root):
    """The log's records through `obscura audit export --format json`."""
    p = ok("audit", "export", root / "audit", "--format", "json")
    return [json.loads(line) for line in p.stdout.splitlines()]


def admin_records(root):
    return [r for r in records(root / "audit") if r["kind"] in ADMIN]


def wait_records(root, n, timeout=30):
    """Wait until the log holds N admin records and the inbox is drained
    (a file leaves the inbox only after its record is durable); return the
    records."""
    end = time.time() + timeout
    while time.time() < end and (len(admin_records(root)) < n or inbox(root)):
        time.sleep(0.1)
    return admin_records(root)


def inbox(root):
    return sorted(p.name for p in (root / "audit" / "inbox").glob("*.json"))


def test_admin_changes_and_runs_reach_the_log(tmp_path):
    root = tmp_path
    config, port, _web_port, _token = audited_archive(root)
    config.write_text(config.read_text() + "\n[alerts]\n")
    site_key = (root / "audit-site.key").read_text()
    actor = f"os:{getpass.getuser()}"
    # `tenant create "Site A"` ran before any serve: waiting in the inbox
    assert len(inbox(root)) == 1 and not (root / "audit" / "segments").exists()

    gw = Gateway(config, port).start()
    try:
        dimse, _ = pick_files(n_dimse=1, n_stow=0)
        sent = storescu(port, dimse)
        assert sent.returncode == 0, sent.stderr
        gw.wait_idle(["out", "archive-a"])
        study = str(pydicom.dcmread(dimse[0], stop_before_pixels=True).StudyInstanceUID)

        whole = ok("grant", "add", "--principal", "vendor", "--tenant", "Site A", "--whole-tenant",
                   "--actions", "search,read", "--view", "deidentified", "--expires", "30d",
                   "--config", config).stdout.strip()
        one = ok("grant", "add", "--principal", "reader", "--tenant", "Site A", "--study", study,
                 "--actions", "search,read", "--config", config).stdout.strip()
        link = ok("share", study, "--tenant", "Site A", "--expires", "2d", "--base-url",
                  "https://pacs.example", "--config", config)
        link_id = link.stderr.split("share link ")[1].split()[0]
        ok("grant", "revoke", whole, "--config", config)
        ok("grant", "revoke", link_id, "--config", config)
        site_b = ok("tenant", "create", "Site B", "--config", config).stdout.strip()
        ok("tenant", "shred", "Site B", "--yes", "--config", config)
        got = wait_records(root, 8)
        assert inbox(root) == []
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    log = gw.log_text()

    routes = [r["route"] for r in got]
    assert routes == ["admin:tenant-create", "admin:grant-add", "admin:grant-add", "admin:share-add",
                      "admin:grant-revoke", "admin:grant-revoke", "admin:tenant-create",
                      "admin:tenant-shred"], routes
    assert all(r["actor"] == {"principal": actor} and r["outcome"] == "success" for r in got)
    site_a = got[0]["detail"]["tenant"]
    assert got[0]["kind"] == "tenant-change" and got[0]["detail"]["name"] == "Site A"
    g1, g2, share, r1, r2 = got[1:6]
    assert all(r["kind"] == "grant-change" for r in (g1, g2, share, r1, r2))
    assert g1["detail"] == {"grant": whole, "principal": "vendor", "tenant": site_a,
                            "actions": "search,read", "view": "deidentified:basic",
                            "expires": g1["detail"]["expires"], "scope": "whole-tenant",
                            "command_time": g1["detail"]["command_time"]}, g1
    assert "subjects" not in g1
    keyed = [{"kind": "study", "hash": subject_hash(site_key, "study", study)}]
    assert g2["detail"]["grant"] == one and g2["detail"]["scope"] == "1 studies"
    assert g2["subjects"] == keyed
    assert share["detail"]["grant"] == link_id and share["detail"]["principal"] == f"share:{link_id}"
    assert share["subjects"] == keyed
    assert (r1["detail"]["grant"], r2["detail"]["grant"]) == (whole, link_id)
    assert [r["detail"]["tenant"] for r in got[6:]] == [site_b, site_b]
    assert [r["kind"] for r in got[6:]] == ["tenant-change", "tenant-change"]

    # the always-alert rule: one admin-event alert per change appended live
    # (the first, appended at start, came before the detector learnt the log)
    assert log.count("ALERT admin-event") >= 7, log[-3000:]
    assert f"principal={actor}" in log

    # serve stopped: a revocation, a deid run and a scan run wait in the inbox
    ok("grant", "revoke", one, "--config", config)
    make_key(root / "deid.key")
    src = root / "in"
    src.mkdir()
    for f in pick_files(n_dimse=3, n_stow=0)[0]:
        (src / f.name).write_bytes(f.read_bytes())
    deid = obscura("deid", src, root / "deid-out", "--key-file", root / "deid.key",
                   "--option", "retain-uids", "--audit-config", config)
    assert deid.returncode in (0, 1), deid.stderr
    ok("scan", src, "--audit-config", config)
    assert len(inbox(root)) == 3
    n_before = len(admin_records(root))

    gw = Gateway(config, port).start()
    try:
        got = wait_records(root, n_before + 3)
        assert inbox(root) == []
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    revoke, deid_run, scan_run = got[n_before:]
    assert revoke["route"] == "admin:grant-revoke" and revoke["detail"]["grant"] == one
    assert deid_run["kind"] == "deid-run" and deid_run["count"] == 3
    assert deid_run["detail"]["output"] == str(root / "deid-out")
    assert deid_run["detail"]["options"] == "retain-uids"
    assert int(deid_run["detail"]["written"]) + int(deid_run["detail"]["quarantined"]) == 3
    assert scan_run["kind"] == "scan-run" and scan_run["count"] == 3
    assert int(scan_run["detail"]["scanned"]) == 3
    assert [r for r in exported(root) if r["kind"] in ADMIN] == admin_records(root)
    # posted while serve was down: appended at the next start, at that time
    # (the log's times stay in order), the command's own time kept in detail
    every = records(root / "audit")
    assert [r["time"] for r in every] == sorted(r["time"] for r in every)
    assert all(r["detail"]["command_time"] < r["time"] for r in (revoke, deid_run, scan_run))
    assert revoke["detail"]["command_time"] < deid_run["detail"]["command_time"]

    witness = sorted((root / "witness").glob("*.note"))[-1]
    v = subprocess.run([str(BINARY), "audit", "verify", str(root / "audit"), "--checkpoint",
                        str(witness), "--public-key", str(root / "audit.pub")],
                       capture_output=True, text=True)
    assert v.returncode == 0 and "OK" in v.stdout, v.stdout + v.stderr

    # no study UID, file name or planted value in clear in the log
    text = "".join(p.read_text() for p in (root / "audit").rglob("*") if p.is_file())
    leaked = [n for n in needles() | {study} | {f.name for f in src.iterdir()} if n in text]
    assert leaked == []


def test_without_audit_nothing_is_posted(tmp_path):
    """No [audit]: `deid --audit-config` refuses; `tenant create` writes no inbox."""
    make_key(tmp_path / "master.key")
    config = tmp_path / "serve.toml"
    config.write_text('[server]\nae_title = "OBSCURA"\nlisten = "127.0.0.1:0"\ndata_dir = "data"\n'
                      '[archive]\ndata_dir = "archive"\nmaster_key_file = "master.key"\n')
    ok("tenant", "create", "Site A", "--config", config)
    assert not any(tmp_path.rglob("inbox"))
    make_key(tmp_path / "deid.key")
    f = next(iter(sorted((DEVSET / "data").rglob("*.dcm"))))
    p = obscura("deid", f, tmp_path / "out", "--key-file", tmp_path / "deid.key",
                "--audit-config", config)
    assert p.returncode == 2 and "no [audit] section" in p.stderr, p.stderr
    assert not (tmp_path / "out").exists()


def wait_kinds(root, kinds, n, timeout=30):
    """Wait until the log holds N records of KINDS; return them."""
    end = time.time() + timeout
    while True:
        got = [r for r in records(root / "audit") if r["kind"] in kinds]
        if len(got) >= n or time.time() > end:
            return got
        time.sleep(0.1)


def test_keys_config_labels_data_dir_and_failures_reach_the_log(tmp_path):
    """`keygen --audit-config`, `label add`, admin commands given --data-dir,
    refused commands (outcome failure, a reason code) and the config's hash
    at each `serve` start when it changed."""
    import hashlib
    import hmac
    root = tmp_path
    config, port, _web_port, _token = audited_archive(root)
    site_key = (root / "audit-site.key").read_text()
    archive = ["--data-dir", root / "archive", "--master-key-file", root / "master.key"]
    config_hash = lambda: hashlib.sha256(config.read_bytes()).hexdigest()  # noqa: E731
    first_hash = config_hash()

    gw = Gateway(config, port).start()
    try:
        dimse, _ = pick_files(n_dimse=1, n_stow=0)
        assert storescu(port, dimse).returncode == 0
        gw.wait_idle(["out", "archive-a"])
        study = str(pydicom.dcmread(dimse[0], stop_before_pixels=True).StudyInstanceUID)
        # serve named its log in the archive folder, for --data-dir commands
        assert (root / "archive" / "audit-log.json").stat().st_mode & 0o777 == 0o600
        ok("keygen", root / "new.key", "--audit-config", config)
        ok("label", "add", "cohort", "--tenant", "Site A", "--study", study, "--config", config)
        site_c = ok("tenant", "create", "Site C", *archive).stdout.strip()
        bad = obscura("grant", "add", "--principal", "x", "--tenant", "Nowhere", "--whole-tenant",
                      "--actions", "search", "--config", config)
        assert bad.returncode == 2 and "no tenant" in bad.stderr, bad.stderr
        bad = obscura("grant", "revoke", "g-0000000000000000", *archive)
        assert bad.returncode == 2 and "no grant" in bad.stderr, bad.stderr
        bad = obscura("keygen", root / "new.key", "--audit-config", config)
        assert bad.returncode == 2, bad.stderr
        got = wait_kinds(root, {"key-change", "grant-change", "tenant-change"}, 8)
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    actor = {"principal": f"os:{getpass.getuser()}"}
    genesis, site_a_created, key, label, site_c_created, no_tenant, no_grant, key_exists = got
    assert genesis["route"] == "serve:start"  # the log's signing key, at its first start
    assert site_a_created["detail"]["name"] == "Site A"
    new_key = bytes.fromhex((root / "new.key").read_text().strip())
    key_id = hmac.new(new_key, b"obscura-key-id\0", hashlib.sha256).hexdigest()[:16]
    assert key["kind"] == "key-change" and key["route"] == "admin:keygen" and key["actor"] == actor
    assert key["detail"]["key_id"] == key_id and key["detail"]["key_file"] == str(root / "new.key")
    assert label["route"] == "admin:label-add" and label["outcome"] == "success"
    assert label["detail"]["label"] == "cohort" and label["detail"]["studies"] == "1"
    assert label["subjects"] == [{"kind": "study", "hash": subject_hash(site_key, "study", study)}]
    assert site_c_created["route"] == "admin:tenant-create"
    assert site_c_created["detail"]["tenant"] == site_c
    for r, route, reason, asked in [
            (no_tenant, "admin:grant-add", "unknown-tenant", ("tenant", "Nowhere")),
            (no_grant, "admin:grant-revoke", "unknown-grant", ("grant", "g-0000000000000000")),
            (key_exists, "admin:keygen", "key-exists", ("key_file", str(root / "new.key")))]:
        assert (r["route"], r["outcome"], r["reason"]) == (route, "failure", reason), r
        assert r["detail"][asked[0]] == asked[1] and r["actor"] == actor

    # the config's hash: recorded at the first start; not again unchanged;
    # again, with the previous one, once the file changed
    def config_records():
        return [r for r in records(root / "audit") if r["kind"] == "config-change"]
    first = config_records()
    assert len(first) == 1 and first[0]["route"] == "serve:start"
    assert first[0]["detail"] == {"config_sha256": first_hash, "previous_sha256": "none",
                                  "in_effect": "true"}
    for edit in [False, True]:
        if edit:
            config.write_text(config.read_text() + "\n# checkpoint more often\n")
        gw = Gateway(config, port).start()
        assert gw.stop() == 0, gw.log_text()[-3000:]
    again = config_records()
    assert len(again) == 2, again
    assert again[1]["detail"] == {"config_sha256": config_hash(), "previous_sha256": first_hash,
                                  "in_effect": "true"}

    text = "".join(p.read_text() for p in (root / "audit").rglob("*") if p.is_file())
    assert new_key.hex() not in text and study not in text


def public_key_facts(pub):
    """(key id, SHA-256 of the public key text) of a signing key's public file."""
    import hashlib
    text = pub.read_text().strip()
    return text.split("+")[1], hashlib.sha256(text.encode()).hexdigest()


def test_signing_keys_and_config_edits_while_serving_are_recorded(tmp_path):
    """The log's first record names its signing key (genesis); `audit keygen
    --audit-config` posts a key-change (id and fingerprint, never the key);
    a config edited while `serve` runs gives a config-change (in_effect
    false) once per new content, with an admin-event alert, and the next
    start records it in effect."""
    import hashlib
    root = tmp_path
    config, port, _web_port, _token = audited_archive(root)
    config.write_text(config.read_text() + "\n[alerts]\n")
    original = config.read_bytes()
    running = hashlib.sha256(original).hexdigest()
    # before the log exists: posted to its inbox, appended at the first start
    ok("audit", "keygen", "test.example/next", root / "next.key", root / "next.pub",
       "--audit-config", config)
    bad = obscura("audit", "keygen", "test.example/next", root / "next.key", root / "other.pub",
                  "--audit-config", config)
    assert bad.returncode == 2 and not (root / "other.pub").exists(), bad.stderr

    def watched():
        return [r for r in records(root / "audit")
                if r["kind"] == "config-change" and r["route"] == "serve:watch"]

    def wait_watched(n, timeout=20):
        end = time.time() + timeout
        while len(watched()) < n and time.time() < end:
            time.sleep(0.2)
        return watched()

    gw = Gateway(config, port).start()
    try:
        keys = wait_kinds(root, {"key-change"}, 3)
        edits = [original + b"\n# more often\n", original, original + b"\n# more often\n",
                 original + b"\n# other\n"]
        for edit in edits:  # new; back to the running one; seen already; new
            config.write_bytes(edit)
            time.sleep(2.6)  # the watch looks every 2 s
        seen = wait_watched(2)
        time.sleep(2.5)
        seen = watched()
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    log = gw.log_text()
    genesis, made, refused = keys
    every = records(root / "audit")
    assert every[0] == genesis and genesis["route"] == "serve:start", every[:2]
    key_id, fingerprint = public_key_facts(root / "audit.pub")
    assert genesis["detail"] == {"key_id": key_id, "previous_key_id": "none",
                                 "key_name": "test.example/audit",
                                 "public_key_sha256": fingerprint}, genesis
    assert genesis["actor"] == {"principal": "obscura-serve"}
    key_id, fingerprint = public_key_facts(root / "next.pub")
    assert (made["route"], made["outcome"]) == ("admin:audit-keygen", "success")
    assert made["detail"]["key_id"] == key_id and made["detail"]["public_key_sha256"] == fingerprint
    assert made["detail"]["key_file"] == str(root / "next.key")
    assert (refused["route"], refused["outcome"], refused["reason"]) == (
        "admin:audit-keygen", "failure", "key-exists")

    assert [r["detail"]["config_sha256"] for r in seen] == [
        hashlib.sha256(edits[0]).hexdigest(), hashlib.sha256(edits[3]).hexdigest()], seen
    for r in seen:
        assert r["detail"]["previous_sha256"] == running and r["detail"]["in_effect"] == "false"
        assert f"record={r['seq']}" in log and "ALERT admin-event" in log, log[-3000:]
    alerted = [line for line in log.splitlines() if "ALERT admin-event" in line]
    assert not any(f"record={genesis['seq']}" in line for line in alerted), "a baseline"

    # the next start puts the file on disk in effect, and the key is the same
    gw = Gateway(config, port).start()
    assert gw.stop() == 0, gw.log_text()[-3000:]
    started = [r for r in records(root / "audit") if r["route"] == "serve:start"]
    assert [r["kind"] for r in started] == ["key-change", "config-change", "config-change"]
    assert started[-1]["detail"] == {"config_sha256": hashlib.sha256(edits[3]).hexdigest(),
                                     "previous_sha256": running, "in_effect": "true"}

    # PRIVATE+KEY+<name>+<key id>+<base64 seed>: the base64 may hold "+" too
    secret = (root / "next.key").read_text().strip().split("+", 4)[4]
    assert len(secret) > 40, "the seed's base64"
    text = "".join(p.read_text() for p in (root / "audit").rglob("*") if p.is_file())
    assert secret not in text
