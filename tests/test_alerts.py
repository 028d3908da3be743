"""Live alerts in `obscura serve`: with [audit] and [alerts] (a webhook on
a loopback HTTP server started here), twelve associations from an unknown
AE title (DCMTK echoscu) are a rejection burst: the alert is in the human
log, the webhook receives its JSON (rule, principal, count, threshold; no
patient), and `obscura alerts check` over the audit log afterwards finds
the same alert (exit 1); /metrics counts it by rule. A quiet gateway
raises none."""
import json
import re
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from conftest import BINARY
from gateway_fixtures import ECHOSCU, Gateway, folder_destination, free_port, write_config
from test_audit import AUDIT, audit_keys

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

pytestmark = pytest.mark.skipif(not Path("/usr/bin/echoscu").is_file(),
                                reason="DCMTK echoscu not installed (apt-get install dcmtk)")


class Hook(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    """A loopback HTTP server that keeps what is POSTed to it."""
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def gateway(root, webhook_port):
    """`serve` with [audit], [alerts] to the webhook, metrics on loopback."""
    audit_keys(root)
    port = free_port()
    config = write_config(root, port, [folder_destination(root, "out")],
                          extra_server=f'metrics = "127.0.0.1:{free_port()}"')
    config.write_text(config.read_text() + AUDIT + f"""
[alerts]
webhook = "http://127.0.0.1:{webhook_port}/hooks/obscura"
""")
    return Gateway(config, port).start()


def test_rejection_burst_alerts_live_and_offline(tmp_path, hook):
    gw = gateway(tmp_path, hook.server_port)
    try:
        assert "alerts on" in gw.log_text(), gw.log_text()[-2000:]
        ok = subprocess.run([ECHOSCU, "-aet", "PACS", "-aec", "OBSCURA", "127.0.0.1", str(gw.port)],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        for i in range(12):
            subprocess.run([ECHOSCU, "-aet", f"GUESS{i}", "-aec", "OBSCURA", "127.0.0.1", str(gw.port)],
                           capture_output=True, text=True, timeout=60)
        metrics_url = re.search(r"metrics on (http://\S+)", gw.log_text()).group(1)
        end, body = time.time() + 10, ""
        while time.time() < end and 'obscura_alerts_total{rule="rejection-burst"} 1' not in body:
            time.sleep(0.2)
            body = NO_PROXY.open(metrics_url, timeout=5).read().decode()
        assert 'obscura_alerts_total{rule="rejection-burst"} 1' in body, body[-2000:]
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    log = gw.log_text()
    assert "ALERT rejection-burst" in log, log[-3000:]
    assert "alerts: 1 raised" in log, log[-3000:]
    assert len(Hook.received) == 1, Hook.received
    ctype, alert = Hook.received[0]
    assert ctype == "application/json"
    assert alert["rule"] == "rejection-burst"
    assert alert["principal"] == "address:127.0.0.1"
    assert alert["count"] == 10 and alert["threshold"] == 10
    assert set(alert) == {"rule", "time", "at", "principal", "count", "threshold", "baseline", "basis", "seq"}

    check = subprocess.run([str(BINARY), "alerts", "check", str(tmp_path / "audit"), "--json"],
                           capture_output=True, text=True)
    assert check.returncode == 1, check.stdout + check.stderr
    offline = [json.loads(line) for line in check.stdout.splitlines()]
    assert [(a["rule"], a["seq"]) for a in offline] == [(alert["rule"], alert["seq"])]


def test_quiet_gateway_raises_no_alert(tmp_path, hook):
    gw = gateway(tmp_path, hook.server_port)
    try:
        for _ in range(3):
            ok = subprocess.run([ECHOSCU, "-aet", "PACS", "-aec", "OBSCURA", "127.0.0.1", str(gw.port)],
                                capture_output=True, text=True, timeout=60)
            assert ok.returncode == 0, ok.stderr
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    assert "ALERT" not in gw.log_text()
    assert Hook.received == []
    check = subprocess.run([str(BINARY), "alerts", "check", str(tmp_path / "audit")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_identifiable_data_to_a_vendor_alerts(tmp_path):
    """`viewer` is vendor-class by [alerts] vendors: its QIDO answer names
    patients, so `vendor-identifiable` is raised live, and offline with
    --vendor; without --vendor, offline, it is not."""
    import requests
    from gateway_fixtures import storescu
    from test_audit import audited_archive, pick_files
    config, port, web_port, token = audited_archive(tmp_path)
    config.write_text(config.read_text() + '\n[alerts]\nvendors = ["viewer"]\n')
    gw = Gateway(config, port).start()
    try:
        assert "1 vendor-class principals" in gw.log_text(), gw.log_text()[-2000:]
        sent = storescu(port, pick_files()[0])
        assert sent.returncode == 0, sent.stdout + sent.stderr
        gw.wait_idle(["out", "archive-a"])
        s = requests.Session()
        s.trust_env = False
        r = s.get(f"http://127.0.0.1:{web_port}/studies", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    assert "ALERT vendor-identifiable" in gw.log_text(), gw.log_text()[-3000:]
    log = str(tmp_path / "audit")
    check = subprocess.run([str(BINARY), "alerts", "check", log, "--json", "--vendor", "viewer"],
                           capture_output=True, text=True)
    rules = [json.loads(line)["rule"] for line in check.stdout.splitlines()]
    assert rules.count("vendor-identifiable") == 1, check.stdout + check.stderr
    plain = subprocess.run([str(BINARY), "alerts", "check", log, "--json"], capture_output=True, text=True)
    assert "vendor-identifiable" not in plain.stdout
