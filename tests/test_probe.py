"""`obscura probe` against a lab on 127.0.0.1 only: DCMTK storescp (accepts
any AE title), DCMTK dcmqrscp with called AE COMMON open to ANY caller and
holding two devset studies, and `obscura serve` with TLS (client
certificates) and an allow-list. The probe must find every planted
exposure, report nothing high or critical on Obscura's own gateway, and
print no devset value."""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from conftest import BINARY, DEVSET
from gateway_fixtures import (Gateway, folder_destination, free_port, tls_gateway, wait_port, write_config)
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
        peers, tls = tls_gateway(fingerprint, p_tls, "127.0.0.1")
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


def test_targets_file_and_ranges(lab):
    """A file of targets (comments, blank lines) and one-address CIDR ranges
    against the lab; ranges above 4,096 addresses are refused, above 256
    need --yes (stdin is not a terminal here, so no question is asked)."""
    tf = lab["dir"] / "targets.txt"
    tf.write_text(f"# the lab\n127.0.0.1/32:{lab['storescp']}   # storescp, a range of one\n\n"
                  f"127.0.0.1:{lab['serve']}\n")
    out = lab["dir"] / "ranges.json"
    run = subprocess.run([str(BINARY), "probe", "--targets-file", str(tf), f"127.0.0.1/32:{lab['dcmqrscp']}",
                          "--json", str(out)], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    targets = [e["target"] for e in report["endpoints"]]
    assert targets == [f"127.0.0.1:{lab[n]}" for n in ("dcmqrscp", "storescp", "serve")], targets
    by = dict(zip(("dcmqrscp", "storescp", "serve"), report["endpoints"]))
    assert by["dcmqrscp"]["accepted_called_ae"] == "COMMON"
    assert by["storescp"]["any_called_ae_accepted"]
    assert not by["serve"]["unknown_calling_ae_accepted"]
    # bounds: refused before any packet is sent
    for args, code, why in ((["10.0.0.0/19:104"], None, "4096"),
                            (["10.0.0.0/23:104"], 2, "--yes"),
                            (["10.0.0.0/24:104", "10.0.1.0/31:104"], 2, "--yes")):
        r = subprocess.run([str(BINARY), "probe", *args], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and (code is None or r.returncode == code), (args, r.returncode, r.stderr)
        assert why in r.stderr, r.stderr
        assert r.stdout == "", r.stdout


# ------------------------------------------------------------- nmap comparison

NMAP = shutil.which("nmap")


def nmap(port):
    """nmap 7.93's DICOM scripts on one lab port ('+' runs them on a port nmap
    would not name dicom by itself)."""
    r = subprocess.run([NMAP, "-n", "-Pn", "-p", str(port), "--script", "+dicom-ping,+dicom-brute",
                        "127.0.0.1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.skipif(NMAP is None, reason="nmap not installed (apt-get install nmap)")
def test_nmap_comparison(lab):
    """The same loopback lab seen by nmap 7.93 (dicom-ping, dicom-brute) and
    by obscura probe: the table of README.md, measured."""
    names = ("storescp", "dcmqrscp", "serve")
    seen = {n: nmap(lab[n]) for n in names}
    for n in names:
        print(f"--- nmap {n}\n{seen[n]}")
    out = lab["dir"] / "cmp.json"
    run = probe(*[f"127.0.0.1:{lab[n]}" for n in names], "--json", out)
    assert run.returncode == 0, run.stderr
    ep = dict(zip(names, json.loads(out.read_text())["endpoints"]))
    print(run.stdout)

    def ids(e):
        return {f["id"] for f in e["findings"] if f["severity"] in ("high", "critical")}

    # storescp: both see that any AE title is accepted.
    assert "Any AET is accepted (Insecure)" in seen["storescp"]
    assert "DICOM SCU allows any AET" in seen["storescp"]
    assert ep["storescp"]["any_called_ae_accepted"]
    assert ids(ep["storescp"]) == {"dicom-unknown-caller-services"}
    # dcmqrscp with COMMON open to ANY: nmap reads "Called AET check enabled"
    # and its word list lacks COMMON; the probe guesses COMMON and reads one match.
    assert "Called AET check enabled" in seen["dcmqrscp"]
    assert "No valid accounts found" in seen["dcmqrscp"] and "COMMON" not in seen["dcmqrscp"]
    assert ep["dcmqrscp"]["accepted_called_ae"] == "COMMON"
    assert ep["dcmqrscp"]["query"]["matches_read"] == 1
    assert ids(ep["dcmqrscp"]) == {"dicom-query-open", "dicom-unknown-caller-services"}
    # obscura serve: nmap never reads its AE guarding as open; the probe agrees.
    assert "Called AET check enabled" in seen["serve"]
    assert "Insecure" not in seen["serve"] and "allows any AET" not in seen["serve"]
    assert "No valid accounts found" in seen["serve"]
    assert ids(ep["serve"]) == set()
    assert ep["serve"]["random_titles"]["outcome"] == "rejected"


# ------------------------------------------------------------- DICOMweb / HTTP

import secrets  # noqa: E402

import orthanc_fixture  # noqa: E402


@pytest.fixture
def web_lab(tmp_path):
    """Debian Orthanc 1.10.1 with the DICOMweb plugin in its default-ish
    configuration (authentication off, any AE title, a devset study stored),
    the same Orthanc with authentication on, and `obscura serve` with
    DICOMweb over TLS and bearer tokens. Loopback only."""
    if not orthanc_fixture.available():
        pytest.skip(f"Orthanc or its DICOMweb plugin not installed ({orthanc_fixture.INSTALL})")
    from test_web import Archive
    started = []
    try:
        open_ = orthanc_fixture.Orthanc(tmp_path / "open", name="open").start()
        started.append(open_)
        chosen = devset_files(1)
        for path, _ in chosen:
            open_.upload(path.read_bytes())
        secure = orthanc_fixture.Orthanc(tmp_path / "auth", name="auth", extra={
            "AuthenticationEnabled": True,
            "RegisteredUsers": {"probe-admin": secrets.token_urlsafe(16)},
        })
        # start() polls /system without credentials: wait for the port instead
        secure.logf = open(secure.log, "ab")
        secure.proc = subprocess.Popen([orthanc_fixture.ORTHANC, str(secure.config)], stdout=secure.logf,
                                       stderr=subprocess.STDOUT, cwd=secure.root)
        started.append(secure)
        wait_port(secure.http_port)
        wait_port(secure.dicom_port)
        (tmp_path / "serve").mkdir()
        archive = Archive(tmp_path / "serve")
        yield {"open": open_, "auth": secure, "serve": archive, "forbidden": forbidden_values(chosen),
               "dir": tmp_path}
        archive.gw.stop()
    finally:
        for o in started:
            o.stop()


def test_probe_web_lab(web_lab):
    o, a, s = web_lab["open"], web_lab["auth"], web_lab["serve"]
    targets = {"orthanc_http": o.http_port, "orthanc_dicom": o.dicom_port, "auth_http": a.http_port,
               "serve_web": s.web_port, "serve_dimse": s.dimse_port}
    out, page = web_lab["dir"] / "probe.json", web_lab["dir"] / "probe.html"
    started = time.monotonic()
    run = probe(*[f"127.0.0.1:{p}" for p in targets.values()], "--json", out, "--html", page)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    print(run.stdout)
    assert elapsed < 60, elapsed
    report = json.loads(out.read_text())
    by_port = {int(e["target"].rsplit(":", 1)[1]): e for e in report["endpoints"]}
    ep = {name: by_port[p] for name, p in targets.items()}

    def ids(e, at_least=("high", "critical")):
        return {f["id"] for f in e["findings"] if f["severity"] in at_least}

    # open Orthanc: REST and DICOMweb without credentials, fingerprinted with its version
    oh = ep["orthanc_http"]
    assert oh["http"]["orthanc"]["version"] == "1.10.1", oh["http"]
    assert oh["fingerprint"]["identified"] == "Orthanc 1.10.1" and oh["fingerprint"]["confidence"] == "high"
    assert {"orthanc-rest-open", "dicomweb-qido-open", "dicomweb-wado-open", "dicomweb-stow-open"} <= ids(oh)
    qido = next(c for c in oh["http"]["dicomweb"] if c["prefix"] == "/dicom-web")
    assert qido["qido_count"] == 1 and len(qido["qido_hmac"]) == 16
    assert "critical" in {f["severity"] for f in oh["findings"]}
    assert {"http-plain", "cve-possible"} <= ids(oh, ("medium",))
    # its DIMSE port: any called AE title, storage for unknown callers (DicomAlwaysAllowStore)
    od = ep["orthanc_dicom"]
    assert od["any_called_ae_accepted"] and "dicom-unknown-caller-services" in ids(od)
    assert od["fingerprint"]["identified"].startswith("DCMTK")
    # Orthanc with authentication: nothing high over HTTP, the realm names it
    ah = ep["auth_http"]
    assert ids(ah) == set(), ah["findings"]
    assert ah["http"]["auth_realm"] == "Orthanc Secure Area"
    assert ah["fingerprint"]["identified"] == "Orthanc" and ah["fingerprint"]["confidence"] == "medium"
    assert "http-plain" in ids(ah, ("medium",)) and "http-auth-required" in ids(ah, ("info",))
    # obscura serve: DICOMweb over TLS with tokens, allow-listed DIMSE: nothing high or critical
    for name in ("serve_web", "serve_dimse"):
        assert ids(ep[name]) == set(), ep[name]["findings"]
    sw = ep["serve_web"]
    assert sw["http"]["scheme"] == "https" and "http-auth-required" in ids(sw, ("info",))
    assert sw["fingerprint"]["identified"] == "Obscura" and sw["fingerprint"]["source"] == "401 realm"
    assert "http-plain" not in ids(sw, ("medium",))
    # the HTML report: written, self-contained, no devset value
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Orthanc 1.10.1" in html and "dicomweb-qido-open" in html
    for external in ("src=", "href=", "<script", "@import", "url("):
        assert external not in html, external
    text = run.stdout + run.stderr + out.read_text() + html
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if browser:  # rendered as a browser sees it: one row per finding
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={web_lab['dir'] / 'chromium'}"]
        dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                             timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        rows = re.findall(r'<tr class="finding" data-severity="(\w+)"', dom.stdout)
        assert len(rows) == sum(len(e["findings"]) for e in report["endpoints"])
        assert rows.count("critical") == sum(f["severity"] == "critical" for e in report["endpoints"]
                                             for f in e["findings"])
        text += dom.stdout
    else:
        print("headless Chromium not installed (apt-get install chromium): HTML not rendered")
    leaked = [v for v in web_lab["forbidden"] if v in text]
    assert not leaked, f"{len(leaked)} devset value(s) in the probe's output"
