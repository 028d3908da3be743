"""Audit records exported over syslog with TLS (RFC 5424 messages, RFC 5425
octet-counting framing) to Debian's rsyslog with its GnuTLS driver, started
here with a config of its own on a loopback port and certificates made with
openssl (mutual TLS: rsyslog requires the gateway's client certificate).
`obscura serve` sends every record twice, as DICOM PS3.15 A.5 audit messages
(XML) and as JSON lines, and every checkpoint. Then: every record arrived;
one A.5 message per patient (IHE BALP); every XML message is valid against
the standard's schema (`standard/dicom-audit-message.rnc`, with jing), and a
broken one is not; the received checkpoint is the witness's; no planted
value or original UID in anything rsyslog received."""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import BINARY
from gateway_fixtures import ECHOSCU, Gateway, free_port, storescu, wait_port
from test_audit import audited_archive, needles, pick_files, records
from test_serve import make_pki

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "standard" / "dicom-audit-message.rnc"
GTLS = [p for p in Path("/usr/lib").glob("*/rsyslog/lmnsd_gtls.so")]

pytestmark = [
    pytest.mark.skipif(shutil.which("rsyslogd") is None and not Path("/usr/sbin/rsyslogd").exists(),
                       reason="rsyslog not installed (apt-get install rsyslog rsyslog-gnutls)"),
    pytest.mark.skipif(not GTLS, reason="rsyslog's TLS driver not installed (apt-get install rsyslog-gnutls)"),
    pytest.mark.skipif(shutil.which("jing") is None, reason="jing not installed (apt-get install jing)"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed (apt-get install openssl)"),
    pytest.mark.skipif(not Path("/usr/bin/storescu").is_file(),
                       reason="DCMTK storescu/echoscu not installed (apt-get install dcmtk)"),
]

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


class Rsyslog:
    """rsyslogd in the foreground: TLS (gtls, x509/certvalid) on a loopback
    port, every message written as `severity|msgid|msg` to a file."""

    def __init__(self, root, pki):
        self.dir = root / "rsyslog"
        self.dir.mkdir()
        self.port = free_port()
        self.out = self.dir / "received.log"
        conf = self.dir / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{self.dir}" maxMessageSize="256k"
       defaultNetstreamDriver="gtls"
       defaultNetstreamDriverCAFile="{pki}/ca.pem"
       defaultNetstreamDriverCertFile="{pki}/server.pem"
       defaultNetstreamDriverKeyFile="{pki}/server.key")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"
       streamDriver.authMode="x509/certvalid")
input(type="imtcp" port="{self.port}" address="127.0.0.1")
template(name="lines" type="list") {{
  property(name="syslogseverity") constant(value="|")
  property(name="msgid") constant(value="|")
  property(name="msg") constant(value="\\n")
}}
*.* action(type="omfile" file="{self.out}" template="lines")
""")
        self.log = open(self.dir / "rsyslogd.log", "w")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.dir / "pid")],
                                     stdout=self.log, stderr=self.log)
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            raise AssertionError((self.dir / "rsyslogd.log").read_text())

    def lines(self):
        if not self.out.exists():
            return []
        return [l.split("|", 2) for l in self.out.read_text().splitlines() if l.count("|") >= 2]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


def jing(schema_dir, files):
    """jing over FILES with the standard's schema. Its `##` annotations
    (documentation) stand after the values they describe, which RELAX NG
    Compact only allows before a pattern; as plain `#` comments they mean
    the same and compile."""
    schema = schema_dir / "dicom-audit-message.rnc"
    schema.write_text(SCHEMA.read_text().replace("##", "#"))
    return subprocess.run(["jing", "-c", str(schema), *map(str, files)], capture_output=True, text=True)


def test_syslog_tls_to_rsyslog(tmp_path):
    root = tmp_path
    pki = root / "pki"
    make_pki(pki)
    receiver = Rsyslog(root, pki)
    try:
        syslog = f"""address = "127.0.0.1:{receiver.port}"
ca = "pki/ca.pem"
cert = "pki/client.pem"
key = "pki/client.key"
site_id = "test-site"
"""
        config, port, web_port, token = audited_archive(root, f"""
[[audit.syslog]]
{syslog}
[[audit.syslog]]
{syslog}format = "json"
checkpoints = false
""")
        gw = Gateway(config, port).start()
        try:
            files, _ = pick_files(n_dimse=4, n_stow=0)
            sent = storescu(port, files)
            assert sent.returncode == 0, sent.stdout + sent.stderr
            refused = subprocess.run([ECHOSCU, "-aet", "NOBODY", "-aec", "OBSCURA", "127.0.0.1", str(port)],
                                     capture_output=True, text=True, timeout=60)
            assert refused.returncode != 0
            gw.wait_idle(["out", "archive-a"])
            s = requests.Session()
            s.trust_env = False
            url = f"http://127.0.0.1:{web_port}"
            r = s.get(f"{url}/studies", headers={"Authorization": f"Bearer {token}",
                                                 "Accept": "application/dicom+json"})
            assert r.status_code == 200, r.text
            assert s.get(f"{url}/studies").status_code == 401
            time.sleep(1.5)  # a checkpoint (checkpoint_secs = 1) reaches the receiver too
        finally:
            assert gw.stop() == 0, gw.log_text()[-3000:]
        log = gw.log_text()
        assert "audit syslog: connected to" in log, log[-2000:]
        assert "0 records dropped" in log, log[-2000:]

        recs = records(root / "audit")
        expected_xml = sum(max(1, sum(1 for s in r.get("subjects", []) if s["kind"] == "patient"))
                           for r in recs)
        end = time.time() + 20
        while time.time() < end:
            got = receiver.lines()
            if (sum(1 for l in got if l[1] == "obscura-audit") >= len(recs)
                    and sum(1 for l in got if l[1] == "IHE+RFC-3881") >= expected_xml):
                break
            time.sleep(0.2)
    finally:
        receiver.stop()
    got = receiver.lines()

    # every record, in order, as stored (JSON format)
    jsonl = [l[2] for l in got if l[1] == "obscura-audit"]
    assert [json.loads(x) for x in jsonl] == recs
    # severities: a rejected association is a warning (4), a received instance a notice (5)
    sev = {json.loads(l[2])["kind"]: l[0] for l in got if l[1] == "obscura-audit"}
    assert sev["association-rejected"] == "4" and sev["instance-received"] == "5"

    # A.5 XML: one message per patient (BALP), each patient hash once per message
    xml = [l[2].lstrip("\ufeff") for l in got if l[1] == "IHE+RFC-3881"]
    assert len(xml) == expected_xml, (len(xml), expected_xml)
    qido = next(r for r in recs if r.get("route") == "web:GET /studies" and r["outcome"] == "success")
    qido_patients = [s["hash"] for s in qido["subjects"] if s["kind"] == "patient"]
    assert len(qido_patients) >= 2
    for h in qido_patients:
        msgs = [m for m in xml if h in m and 'csd-code="110112"' in m]
        assert len(msgs) == 1, h
    assert any('csd-code="110126"' in m and 'EventOutcomeIndicator="4"' in m for m in xml)
    assert all('AuditEnterpriseSiteID="test-site"' in m for m in xml)

    # valid against the DICOM audit message schema; a broken message is not
    xml_dir = root / "xml"
    xml_dir.mkdir()
    paths = []
    for i, m in enumerate(xml):
        p = xml_dir / f"{i:04}.xml"
        p.write_text(m)
        paths.append(p)
    v = jing(root, paths)
    assert v.returncode == 0, v.stdout + v.stderr
    broken = xml_dir / "broken.xml"
    broken.write_text(re.sub(r' EventDateTime="[^"]*"', "", xml[0]))
    assert jing(root, [broken]).returncode != 0
    # `obscura audit export --format dicom` writes the same messages
    export = subprocess.run([str(BINARY), "audit", "export", str(root / "audit"), "--format", "dicom"],
                            capture_output=True, text=True)
    assert export.returncode == 0, export.stderr
    offline = export.stdout.splitlines()
    assert len(offline) == len(xml)
    assert {m.replace('AuditEnterpriseSiteID="test-site" ', "") for m in xml} == set(offline)

    # the checkpoint the receiver got last is the witness's latest
    notes = [l[2].lstrip("\ufeff").replace("#012", "\n") for l in got if l[1] == "obscura-checkpoint"]
    assert notes, "no checkpoint received"
    latest = sorted((root / "witness").glob("*.note"))[-1].read_text()
    assert notes[-1].rstrip("\n") == latest.rstrip("\n")

    # nothing identifying reached the receiver
    text = re.sub(r"[A-Za-z0-9+/=]{40,}", "", receiver.out.read_text())
    hits = sorted(n for n in needles() if n in text)
    assert not hits, hits[:10]
