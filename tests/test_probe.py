"""`obscura probe` against a lab on 127.0.0.1 only: DCMTK storescp (accepts
any AE title), DCMTK dcmqrscp with called AE COMMON open to ANY caller and
holding two devset studies, and `obscura serve` with TLS (client
certificates) and an allow-list. The probe must find every planted
exposure, report nothing high or critical on Obscura's own gateway, and
print no devset value."""
import json
import shutil
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from conftest import BINARY, DEVSET
from gateway_fixtures import (Gateway, folder_destination, free_port, wait_port, write_config)
from test_serve import make_pki

STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"
DCMQRSCP = "/usr/bin/dcmqrscp"
EXPLICIT_LE = "1.2.840.10008.1.2.1"

pytestmark = [
    pytest.mark.skipif(not all(Path(p).is_file() for p in (STORESCP, STORESCU, DCMQRSCP)),
                       reason="DCMTK storescp/storescu/dcmqrscp not installed (apt-get install dcmtk)"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed (apt-get install openssl)"),
]


def devset_files(n=2):
    """N explicit little endian devset files of distinct studies, with their answer-key entries."""
    key = json.loads((DEVSET / "answer_key.json").read_text())
    chosen, studies = [], set()
    for rel, entry in sorted(key["files"].items()):
        if (entry["transfer_syntax"] == EXPLICIT_LE and entry["modality"] in ("CT", "MR", "CR")
                and entry["study"] not in studies):
            studies.add(entry["study"])
            chosen.append((DEVSET / "data" / rel, entry))
        if len(chosen) == n:
            return chosen
    raise AssertionError("devset lacks explicit little endian files")


def forbidden_values(chosen):
    """Every needle of the stored files (6 characters or more) and their identifying UIDs."""
    values = {nd["n"] for _, entry in chosen for nd in entry["needles"] if len(nd["n"]) >= 6}
    for path, _ in chosen:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID", "PatientName",
                   "AccessionNumber"):
            v = str(ds.get(kw, "") or "")
            if len(v) >= 6:
                values.add(v)
    return values


class Proc:
    def __init__(self, args, port, cwd=None):
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = port
        wait_port(port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def lab(tmp_path):
    procs = []
    gw = None
    try:
        # 1. storescp: any called AE title, storage for any caller.
        p_scp = free_port()
        (tmp_path / "scp").mkdir()
        procs.append(Proc([STORESCP, "-od", str(tmp_path / "scp"), str(p_scp)], p_scp))
        # 2. dcmqrscp: called AE COMMON, any caller, two devset studies stored.
        p_qr = free_port()
        db = tmp_path / "qr" / "common"
        db.mkdir(parents=True)
        cfg = tmp_path / "qr" / "dcmqrscp.cfg"
        cfg.write_text(f"NetworkTCPPort = {p_qr}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
                       "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
                       f"AETable BEGIN\nCOMMON {db} RW (10, 1024mb) ANY\nAETable END\n")
        procs.append(Proc([DCMQRSCP, "-c", str(cfg)], p_qr))
        chosen = devset_files()
        sent = subprocess.run([STORESCU, "-aet", "LOADER", "-aec", "COMMON", "127.0.0.1", str(p_qr),
                               *[str(p) for p, _ in chosen]], capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        # 3. obscura serve: allow-list on the plain port, mutual TLS on the other.
        gw_dir = tmp_path / "gw"
        gw_dir.mkdir()
        fingerprint = make_pki(gw_dir / "pki")
        p_tls = free_port()
        peers = [f"""
[[peer]]
name = "modality"
calling_ae = "MODALITY"
addresses = ["127.0.0.1"]
client_cert_sha256 = "{fingerprint}"
""", """
[[peer]]
name = "pacs"
calling_ae = "PACS"
addresses = ["127.0.0.1"]
plain = true
"""]
        tls = f"""
[server.tls]
listen = "127.0.0.1:{p_tls}"
cert = "pki/server.pem"
key = "pki/server.key"
client_ca = "pki/ca.pem"
"""
        p_gw = free_port()
        config = write_config(gw_dir, p_gw, [folder_destination(gw_dir, "archive")], peers=peers,
                              extra_server=tls)
        gw = Gateway(config, p_gw).start()
        wait_port(p_tls)
        yield {"storescp": p_scp, "dcmqrscp": p_qr, "serve": p_gw, "serve_tls": p_tls,
               "forbidden": forbidden_values(chosen), "dir": tmp_path}
    finally:
        if gw:
            gw.stop()
        for p in procs:
            p.stop()


def probe(*args):
    return subprocess.run([str(BINARY), "probe", *map(str, args)], capture_output=True, text=True,
                          errors="replace", timeout=120)


def test_probe_finds_planted_exposures_and_no_phi(lab):
    out = lab["dir"] / "probe.json"
    ports = {name: lab[name] for name in ("storescp", "dcmqrscp", "serve", "serve_tls")}
    started = time.monotonic()
    run = probe(*[f"127.0.0.1:{p}" for p in ports.values()], "--json", out)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    print(run.stdout)
    print("connections:", sum(e["connections"] for e in json.loads(out.read_text())["endpoints"]))
    assert elapsed < 60, elapsed
    report = json.loads(out.read_text())
    by_port = {int(e["target"].rsplit(":", 1)[1]): e for e in report["endpoints"]}
    ep = {name: by_port[p] for name, p in ports.items()}

    def ids(e, at_least=("high", "critical")):
        return {f["id"] for f in e["findings"] if f["severity"] in at_least}

    # storescp: any called AE title accepted, storage offered, no TLS.
    scp = ep["storescp"]
    assert scp["any_called_ae_accepted"] and scp["unknown_calling_ae_accepted"]
    assert ids(scp) == {"dicom-unknown-caller-services"}
    assert "dicom-plain" in ids(scp, ("medium",))
    assert scp["fingerprint"]["identified"].startswith("DCMTK")
    # dcmqrscp: a random title is refused, COMMON is guessed, the query returns data.
    qr = ep["dcmqrscp"]
    assert not qr["any_called_ae_accepted"]
    assert qr["accepted_called_ae"] == "COMMON"
    assert qr["query"]["matches_read"] == 1 and qr["query"]["cancelled"]
    assert ids(qr) == {"dicom-query-open", "dicom-unknown-caller-services"}
    assert "dicom-plain" in ids(qr, ("medium",))
    # obscura serve: unknown callers refused on both ports; TLS with client certificates.
    for name in ("serve", "serve_tls"):
        e = ep[name]
        assert ids(e) == set(), e["findings"]
        assert not e["unknown_calling_ae_accepted"] and e["query"] is None if "query" in e else True
    assert ep["serve"]["speaks_dicom"] and ep["serve"]["random_titles"]["outcome"] == "rejected"
    tls = ep["serve_tls"]["tls"]
    assert tls["handshake"] and tls["client_certificate_requested"], tls
    assert "dicom-plain" not in ids(ep["serve_tls"], ("medium",))
    # at most one C-FIND response read per endpoint
    assert all(e.get("query", {}).get("matches_read", 0) <= 1 for e in report["endpoints"])
    # no devset value in any output
    text = run.stdout + run.stderr + out.read_text()
    leaked = [v for v in lab["forbidden"] if v in text]
    assert not leaked, f"{len(leaked)} devset value(s) in the probe's output"
    assert "critical" in run.stdout and "COMMON" in run.stdout


def test_expect_secure(lab):
    clean = probe(f"127.0.0.1:{lab['serve']}", f"127.0.0.1:{lab['serve_tls']}", "--expect-secure")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    dirty = probe(f"127.0.0.1:{lab['storescp']}", "--expect-secure")
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert "high" in dirty.stderr
