"""`obscura probe` against a lab on 127.0.0.1 only: DCMTK storescp (accepts
any AE title), DCMTK dcmqrscp with called AE COMMON open to ANY caller and
holding two devset studies, and `obscura serve` with TLS (client
certificates) and an allow-list. The probe must find every planted
exposure, report nothing high or critical on Obscura's own gateway, and
print no devset value."""
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
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
    def __init__(self, args, port, cwd=None, env=None):
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.port = port
        wait_port(port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def dcmqrscp(root, peers):
    """DCMTK dcmqrscp with called AE COMMON holding two devset studies; PEERS
    is `ANY` or the HostTable entries allowed (LOADER from localhost)."""
    port = free_port()
    db = root / "common"
    db.mkdir(parents=True)
    hosts = "" if peers == "ANY" else "loader = (LOADER, localhost, 0)\n"
    cfg = root / "dcmqrscp.cfg"
    cfg.write_text(f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
                   f"HostTable BEGIN\n{hosts}HostTable END\nVendorTable BEGIN\nVendorTable END\n"
                   f"AETable BEGIN\nCOMMON {db} RW (10, 1024mb) {'ANY' if peers == 'ANY' else 'loader'}\n"
                   "AETable END\n")
    proc = Proc([DCMQRSCP, "-c", str(cfg)], port)
    chosen = devset_files()
    sent = subprocess.run([STORESCU, "-aet", "LOADER", "-aec", "COMMON", "127.0.0.1", str(port),
                           *[str(p) for p, _ in chosen]], capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    return proc, chosen


def weak_tls(root):
    """`openssl s_server` configured weak: TLS 1.0 on, every suite at security
    level 0, a self-signed 1024-bit RSA certificate signed with SHA-1 for
    another name, valid 18 months and expired in 2021 (`openssl ca -selfsign`
    sets the dates)."""
    key, csr, cert = root / "weak.key", root / "weak.csr", root / "weak.pem"
    (root / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
                                 "serial = serial\npolicy = p\ndefault_md = sha1\n[p]\ncommonName = supplied\n")
    (root / "index.txt").write_text("")
    (root / "serial").write_text("01\n")
    for args in (["req", "-new", "-newkey", "rsa:1024", "-sha1", "-nodes", "-keyout", key, "-out", csr,
                  "-subj", "/CN=weak.invalid"],
                 ["ca", "-batch", "-selfsign", "-config", "ca.cnf", "-keyfile", key, "-in", csr, "-out", cert,
                  "-startdate", "20200101000000Z", "-enddate", "20210701000000Z", "-md", "sha1"]):
        made = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, cwd=root)
        assert made.returncode == 0, made.stderr
    port = free_port()
    return Proc(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert, "-key", key,
                 "-cipher", "ALL:@SECLEVEL=0", "-min_protocol", "TLSv1", "-www", "-quiet"], port)


def tls12_only(pki):
    """`openssl s_server` with TLS 1.2 only and ECDHE-AESGCM suites, the lab
    CA's certificate for 127.0.0.1: sound but for TLS 1.3 missing."""
    port = free_port()
    return Proc(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", pki / "server.pem",
                 "-key", pki / "server.key", "-min_protocol", "TLSv1.2", "-no_tls1_3", "-cipher",
                 "ECDHE+AESGCM", "-www", "-quiet"], port)


PYNETDICOM = [sys.executable, "-m", "pynetdicom"]
# the probe's list of common called AE titles (docs/probe.md)
COMMON_TITLES = ("ANY-SCP", "COMMON", "ORTHANC", "STORESCP", "DCM4CHEE", "PACS", "ANY", "DCMQRSCP", "SERVER",
                 "ARCHIVE")


def has_pynetdicom():
    return importlib.util.find_spec("pynetdicom") is not None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The DIMSE and TLS part of the lab; every process on 127.0.0.1 ports."""
    tmp_path = tmp_path_factory.mktemp("lab")
    procs, forbidden = [], set()
    gw = None
    try:
        ports = {}
        # DCMTK storescp: any called AE title, storage for any caller.
        ports["storescp"] = free_port()
        (tmp_path / "scp").mkdir()
        procs.append(Proc([STORESCP, "-od", str(tmp_path / "scp"), str(ports["storescp"])], ports["storescp"]))
        # pynetdicom's storescp: the same exposure from another toolkit.
        if has_pynetdicom():
            ports["pynetdicom"] = free_port()
            (tmp_path / "pyscp").mkdir()
            procs.append(Proc([*PYNETDICOM, "storescp", "-ba", "127.0.0.1", "-od", str(tmp_path / "pyscp"),
                               str(ports["pynetdicom"])], ports["pynetdicom"]))
            # pynetdicom checking User Identity negotiation (a Verification SCP)
            ports["pynetdicom_userid"] = free_port()
            account = f"modality:{secrets.token_urlsafe(16)}"
            procs.append(Proc([sys.executable, str(Path(__file__).parent / "user_identity_scp.py"),
                               str(ports["pynetdicom_userid"])], ports["pynetdicom_userid"],
                              env={**os.environ, "USER_IDENTITY_ACCOUNT": account}))
        else:
            print("pynetdicom not installed (pip install pynetdicom): its storescp is not in the lab")
        # dcmqrscp: called AE COMMON open to ANY caller; and restricted to LOADER.
        for name, peers in (("dcmqrscp", "ANY"), ("dcmqrscp_restricted", "LOADER")):
            proc, chosen = dcmqrscp(tmp_path / name, peers)
            procs.append(proc)
            ports[name] = proc.port
            forbidden |= forbidden_values(chosen)
        # openssl s_server, weak on every BCP 195 count.
        procs.append(weak_tls(tmp_path))
        ports["weak_tls"] = procs[-1].port
        # obscura serve: allow-list on the plain port, mutual TLS on the other.
        gw_dir = tmp_path / "gw"
        gw_dir.mkdir()
        fingerprint = make_pki(gw_dir / "pki")
        ports["serve_tls"] = free_port()
        peers, tls = tls_gateway(fingerprint, ports["serve_tls"], "127.0.0.1")
        ports["serve"] = free_port()
        config = write_config(gw_dir, ports["serve"], [folder_destination(gw_dir, "archive")], peers=peers,
                              extra_server=tls)
        gw = Gateway(config, ports["serve"]).start()
        wait_port(ports["serve_tls"])
        procs.append(tls12_only(gw_dir / "pki"))
        ports["tls12_only"] = procs[-1].port
        yield {"ports": ports, "forbidden": forbidden, "dir": tmp_path, "pki": gw_dir / "pki",
               "received": {"storescp": tmp_path / "scp", "pynetdicom": tmp_path / "pyscp"}}
    finally:
        if gw:
            gw.stop()
        for p in procs:
            p.stop()


def probe(*args):
    return subprocess.run([str(BINARY), "probe", *map(str, args)], capture_output=True, text=True,
                          errors="replace", timeout=120)


def findings(e, at_least=("high", "critical")):
    return {f["id"] for f in e["findings"] if f["severity"] in at_least}


ALL = ("info", "low", "medium", "high", "critical")
# What is planted where: every exposure class the probe reports, at least once.
PLANTED = {
    "storescp": {"dicom-unknown-caller-services", "dicom-plain", "cve-possible", "dicom-user-identity-ignored"},
    "pynetdicom": {"dicom-unknown-caller-services", "dicom-plain", "dicom-user-identity-ignored"},
    "dcmqrscp": {"dicom-query-open", "dicom-unknown-caller-services", "dicom-plain", "cve-possible"},
    "weak_tls": {"tls-suite-broken", "tls-legacy-version", "tls-suite-no-forward-secrecy", "tls-suite-no-aead",
                 "tls-cert-self-signed", "tls-cert-name-mismatch", "tls-cert-weak-key",
                 "tls-cert-weak-signature", "tls-cert-invalid-date", "tls-cert-long-validity"},
    "tls12_only": {"tls-no-1.3"},
    "pynetdicom_userid": {"dicom-unknown-caller-echo", "dicom-user-identity-checked"},
    "orthanc_http": {"orthanc-rest-open", "dicomweb-qido-open", "dicomweb-wado-open", "dicomweb-stow-open",
                     "http-plain", "cve-possible"},
    "orthanc_dicom": {"dicom-unknown-caller-services", "dicom-plain", "dicom-user-identity-ignored"},
}
# Hardened: nothing high or critical may be reported.
HARDENED = ("pynetdicom_userid", "tls12_only", "dcmqrscp_restricted", "serve", "serve_tls", "auth_http", "auth_dicom", "serve_web", "serve_dimse")


@pytest.fixture(scope="module")
def scan(lab, request):
    """One `obscura probe` run over the whole lab (the web part when Orthanc
    is installed): its report by lab name, its outputs and its time."""
    ports = dict(lab["ports"])
    forbidden = set(lab["forbidden"])
    try:
        web = request.getfixturevalue("web_lab")
    except pytest.skip.Exception as why:
        print(f"web lab skipped: {why}")
        web = None
    cas = [lab["pki"] / "ca.pem"]
    if web:
        ports.update(web["ports"])
        forbidden |= web["forbidden"]
        cas.append(web["pki"] / "ca.pem")
    out, page = lab["dir"] / "probe.json", lab["dir"] / "probe.html"
    started = time.monotonic()
    run = probe(*[f"127.0.0.1:{p}" for p in ports.values()], "--json", out, "--html", page,
                *[a for ca in cas for a in ("--ca-file", ca)])
    elapsed = time.monotonic() - started
    print(run.stdout)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    by_port = {int(e["target"].rsplit(":", 1)[1]): e for e in report["endpoints"]}
    return {"ep": {name: by_port[p] for name, p in ports.items()}, "report": report, "run": run,
            "elapsed": elapsed, "json": out, "html": page, "forbidden": forbidden, "web": web}


def test_whole_lab_every_planted_exposure_found(scan):
    """Every planted exposure class is found (100 %), the hardened targets
    get nothing high or critical, the whole lab in under 60 s."""
    ep = scan["ep"]
    planted = {(name, f) for name, fs in PLANTED.items() if name in ep for f in fs}
    missed = {(name, f) for name, f in planted if f not in findings(ep[name], ALL)}
    print(f"planted {len(planted)} exposures over {len(ep)} endpoints, found {len(planted) - len(missed)}; "
          f"{scan['elapsed']:.1f} s, {sum(e['connections'] for e in scan['report']['endpoints'])} connections")
    assert not missed, missed
    for name in HARDENED:
        if name in ep:
            assert findings(ep[name]) == set(), (name, ep[name]["findings"])
    assert scan["elapsed"] < 60, scan["elapsed"]
    # at most one C-FIND response read per endpoint
    assert all((e.get("query") or {}).get("matches_read", 0) <= 1 for e in scan["report"]["endpoints"])


def test_dimse_targets(scan):
    ep = scan["ep"]
    # storescp (DCMTK and pynetdicom): any called AE title accepted, storage offered, no TLS.
    for name, toolkit in (("storescp", "DCMTK"), ("pynetdicom", "pynetdicom")):
        if name not in ep:
            continue
        scp = ep[name]
        assert scp["any_called_ae_accepted"] and scp["unknown_calling_ae_accepted"]
        assert findings(scp) == {"dicom-unknown-caller-services"}
        assert scp["fingerprint"]["identified"].startswith(toolkit), scp["fingerprint"]
    # dcmqrscp: a random title is refused, COMMON is guessed, the query returns data.
    qr = ep["dcmqrscp"]
    assert not qr["any_called_ae_accepted"]
    assert qr["accepted_called_ae"] == "COMMON"
    assert qr["query"]["matches_read"] == 1 and qr["query"]["cancelled"]
    # pynetdicom checking User Identity: a random username and passcode are refused
    if "pynetdicom_userid" in ep:
        u = ep["pynetdicom_userid"]
        assert u["user_identity"] == {"outcome": "rejected", "server_response": False}, u.get("user_identity")
        assert "dicom-user-identity-checked" in findings(u, ("info",))
        assert findings(u, ("low",)) == {"dicom-unknown-caller-echo"}, u["findings"]
    for name in ("storescp", "pynetdicom"):
        if name in ep:
            assert ep[name]["user_identity"] == {"outcome": "accepted", "server_response": False}
    # restricted dcmqrscp: COMMON is refused to the unknown caller (it answers reason 7, called
    # AE title not recognized, to any caller not in its HostTable)
    rq = ep["dcmqrscp_restricted"]
    assert not rq["unknown_calling_ae_accepted"] and "query" not in rq
    assert [g["outcome"] for g in rq["guesses"]] == ["rejected"] * len(COMMON_TITLES), rq["guesses"]
    assert "dicom-ae-checked" in findings(rq, ("info",))
    # obscura serve: unknown callers refused on both ports; TLS with client certificates.
    for name in ("serve", "serve_tls"):
        assert not ep[name]["unknown_calling_ae_accepted"] and "query" not in ep[name]
    assert ep["serve"]["speaks_dicom"] and ep["serve"]["random_titles"]["outcome"] == "rejected"
    assert "dicom-plain" in findings(ep["serve"], ("medium",))
    tls = ep["serve_tls"]["tls"]
    assert tls["handshake"] and tls["client_certificate_requested"], tls
    assert "dicom-plain" not in findings(ep["serve_tls"], ALL)
    assert "critical" in scan["run"].stdout and "COMMON" in scan["run"].stdout


def test_tls_bcp195(scan):
    """The weak `openssl s_server` shows each weakness; obscura serve's TLS
    port none of them."""
    e = scan["ep"]["weak_tls"]
    policy = e["tls"]["policy"]
    assert "TLSv1_0" in policy["accepted_versions"] and "TLSv1_2" in policy["accepted_versions"], policy
    c = policy["certificate"]
    assert (c["key_type"], c["key_bits"], c["weak_signature"]) == ("RSA", 1024, "sha1WithRSAEncryption"), c
    assert c["self_signed"] and not c["name_matches"]
    # a verifying client (rustls) refuses a 1024-bit RSA signature: no TLS 1.2/1.3 session either
    assert not e["tls"]["handshake"] and "InvalidCertificate" in e["tls"]["failure"], e["tls"]
    sev = {f["id"]: f["severity"] for f in e["findings"]}
    assert sev["tls-legacy-version"] == "medium" and sev["tls-cert-weak-key"] == "medium"
    assert sev["tls-cert-invalid-date"] == "medium" and sev["tls-cert-long-validity"] == "low", sev
    expired = next(f for f in e["findings"] if f["id"] == "tls-cert-invalid-date")
    assert "notAfter 2021-07-01" in expired["evidence"][0], expired
    # TLS 1.2 only, sound otherwise: tls-no-1.3 (info), nothing else from the TLS checks
    t12 = scan["ep"]["tls12_only"]
    assert t12["tls"]["version"] == "TLSv1_2" and t12["tls"]["policy"]["accepted_versions"] == ["TLSv1_2"]
    assert t12["tls"]["policy"]["certificate"]["chain_verdict"] == "trusted"
    assert {f["id"] for f in t12["findings"] if f["id"].startswith("tls-")} == {"tls-no-1.3"}, t12["findings"]
    assert sev["tls-suite-broken"] == "high", sev
    # names in the certificate are not copied
    assert "weak.invalid" not in scan["run"].stdout + scan["json"].read_text() + scan["html"].read_text()
    # BCP 195: obscura serve accepts neither TLS 1.0/1.1 nor a weak suite
    tls = scan["ep"]["serve_tls"]["tls"]
    assert tls["policy"]["accepted_versions"] == ["TLSv1_2"], tls["policy"]
    assert tls["policy"]["weak_suites_accepted"] == [], tls["policy"]
    assert tls["policy"]["certificate"]["key_bits"] >= 2048
    # the chain verifies against the lab's CA (--ca-file), as the other serve endpoints'
    assert tls["policy"]["certificate"]["chain_verdict"] == "trusted", tls["policy"]
    if scan["web"]:
        assert scan["ep"]["serve_web"]["tls"]["policy"]["certificate"]["chain_verdict"] == "trusted"
    assert not {f["id"] for f in scan["ep"]["serve_tls"]["findings"]} & {
        "tls-legacy-version", "tls-suite-broken", "tls-suite-no-aead", "tls-suite-no-forward-secrecy",
        "tls-cert-weak-key", "tls-cert-weak-signature", "tls-cert-invalid-date", "tls-cert-name-mismatch",
        "tls-cert-self-signed", "tls-cert-untrusted"}


def test_chain_validation(lab):
    """obscura serve's certificate is issued by the lab's CA: against the
    system's roots alone its chain has an unknown issuer (medium), with the
    CA given (--ca-file, system roots off) it verifies."""
    target = f"127.0.0.1:{lab['ports']['serve_tls']}"
    out = lab["dir"] / "chain.json"
    run = probe(target, "--json", out)
    assert run.returncode == 0, run.stderr
    e = json.loads(out.read_text())["endpoints"][0]
    assert e["tls"]["policy"]["certificate"]["chain_verdict"] == "unknown issuer", e["tls"]
    assert "tls-cert-untrusted" in findings(e, ("medium",))
    assert json.loads(out.read_text())["trust_store"].startswith("system roots")
    run = probe(target, "--json", out, "--ca-file", lab["pki"] / "ca.pem", "--no-system-roots")
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    e = report["endpoints"][0]
    assert e["tls"]["policy"]["certificate"]["chain_verdict"] == "trusted", e["tls"]
    assert "tls-cert-untrusted" not in findings(e, ALL)
    assert report["trust_store"] == f"no system roots, {lab['pki'] / 'ca.pem'} (1)", report["trust_store"]
    # a TLS 1.3-only server: its certificate travels encrypted, read from rustls's handshake
    port = free_port()
    pki = lab["pki"]
    server = Proc(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-tls1_3", "-cert", pki / "server.pem",
                   "-key", pki / "server.key", "-www", "-quiet"], port)
    try:
        run = probe(f"127.0.0.1:{port}", "--json", out, "--ca-file", pki / "ca.pem")
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr
    t = json.loads(out.read_text())["endpoints"][0]["tls"]
    assert t["version"] == "TLSv1_3" and t["policy"]["accepted_versions"] == [], t
    c = t["policy"]["certificate"]
    assert (c["chain_verdict"], c["name_matches"], c["key_bits"]) == ("trusted", True, 2048), c
    bad = probe(target, "--ca-file", lab["dir"] / "missing.pem")
    assert bad.returncode != 0 and "--ca-file" in bad.stderr and bad.stdout == "", bad.stderr


def test_no_devset_value_in_any_output(scan):
    """No devset value (answer-key needles, UIDs, patient IDs of the studies
    stored in the lab) in stdout, stderr, JSON or HTML, as written and as
    rendered by headless Chromium."""
    report, page = scan["report"], scan["html"]
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "dicom-query-open" in html
    for external in ("src=", "href=", "<script", "@import", "url("):
        assert external not in html, external
    text = scan["run"].stdout + scan["run"].stderr + scan["json"].read_text() + html
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if browser:  # rendered as a browser sees it: one row per finding
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={page.parent / 'chromium'}"]
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
    assert len(scan["forbidden"]) > 5
    leaked = [v for v in scan["forbidden"] if v in text]
    assert not leaked, f"{len(leaked)} devset value(s) in the probe's output"


def test_expect_secure(lab):
    p = lab["ports"]
    clean = probe(f"127.0.0.1:{p['serve']}", f"127.0.0.1:{p['serve_tls']}", f"127.0.0.1:{p['dcmqrscp_restricted']}",
                  "--expect-secure")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    dirty = probe(f"127.0.0.1:{p['storescp']}", "--expect-secure")
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert "high" in dirty.stderr


def test_targets_file_and_ranges(lab):
    """A file of targets (comments, blank lines) and one-address CIDR ranges
    against the lab; ranges above 4,096 addresses are refused, above 256
    need --yes (stdin is not a terminal here, so no question is asked)."""
    p = lab["ports"]
    tf = lab["dir"] / "targets.txt"
    tf.write_text(f"# the lab\n127.0.0.1/32:{p['storescp']}   # storescp, a range of one\n\n"
                  f"127.0.0.1:{p['serve']}\n")
    out = lab["dir"] / "ranges.json"
    run = subprocess.run([str(BINARY), "probe", "--targets-file", str(tf), f"127.0.0.1/32:{p['dcmqrscp']}",
                          "--json", str(out)], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    targets = [e["target"] for e in report["endpoints"]]
    assert targets == [f"127.0.0.1:{p[n]}" for n in ("dcmqrscp", "storescp", "serve")], targets
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


# ------------------------------------------------------------- DICOMweb / HTTP


import orthanc_fixture  # noqa: E402


@pytest.fixture(scope="module")
def web_lab(tmp_path_factory):
    """Debian Orthanc 1.10.1 with the DICOMweb plugin in its default-ish
    configuration (authentication off, any AE title, a devset study stored),
    Orthanc hardened (authentication on, unknown DICOM callers refused), and
    `obscura serve` with DICOMweb over TLS and bearer tokens. Loopback only."""
    if not orthanc_fixture.available():
        pytest.skip(f"Orthanc or its DICOMweb plugin not installed ({orthanc_fixture.INSTALL})")
    from test_web import Archive
    tmp_path = tmp_path_factory.mktemp("web-lab")
    started, archive = [], None
    try:
        open_ = orthanc_fixture.Orthanc(tmp_path / "open", name="open").start()
        started.append(open_)
        chosen = devset_files(1)
        for path, _ in chosen:
            open_.upload(path.read_bytes())
        secure = orthanc_fixture.Orthanc(tmp_path / "auth", name="auth", extra={
            "AuthenticationEnabled": True,
            "RegisteredUsers": {"probe-admin": secrets.token_urlsafe(16)},
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
        })
        # start() polls /system without credentials: wait for the port instead
        secure.logf = open(secure.log, "ab")
        secure.proc = subprocess.Popen([orthanc_fixture.ORTHANC, str(secure.config)], stdout=secure.logf,
                                       stderr=subprocess.STDOUT, cwd=secure.root)
        started.append(secure)
        wait_port(secure.http_port)
        wait_port(secure.dicom_port)
        # authentication on, with the Docker images' documented default account
        default = orthanc_fixture.Orthanc(tmp_path / "default", name="default", extra={
            "AuthenticationEnabled": True, "RegisteredUsers": {"orthanc": "orthanc"}})
        default.logf = open(default.log, "ab")
        default.proc = subprocess.Popen([orthanc_fixture.ORTHANC, str(default.config)], stdout=default.logf,
                                        stderr=subprocess.STDOUT, cwd=default.root)
        started.append(default)
        wait_port(default.http_port)
        (tmp_path / "serve").mkdir()
        archive = Archive(tmp_path / "serve")
        yield {"ports": {"orthanc_http": open_.http_port, "orthanc_dicom": open_.dicom_port,
                         "auth_http": secure.http_port, "auth_dicom": secure.dicom_port,
                         "serve_web": archive.web_port, "serve_dimse": archive.dimse_port},
               "forbidden": forbidden_values(chosen), "pki": archive.pki, "open": open_,
               "default_http": default.http_port}
    finally:
        if archive:
            archive.gw.stop()
        for o in started:
            o.stop()


def test_web_targets(scan):
    if not scan["web"]:
        pytest.skip(f"Orthanc or its DICOMweb plugin not installed ({orthanc_fixture.INSTALL})")
    ep = scan["ep"]
    # open Orthanc: REST and DICOMweb without credentials, fingerprinted with its version
    oh = ep["orthanc_http"]
    assert oh["http"]["orthanc"]["version"] == "1.10.1", oh["http"]
    assert oh["fingerprint"]["identified"] == "Orthanc 1.10.1" and oh["fingerprint"]["confidence"] == "high"
    qido = next(c for c in oh["http"]["dicomweb"] if c["prefix"] == "/dicom-web")
    assert qido["qido_count"] == 1 and len(qido["qido_hmac"]) == 16
    assert {"orthanc-rest-open", "dicomweb-qido-open"} <= findings(oh, ("critical",))
    # its DIMSE port: any called AE title, storage for unknown callers (DicomAlwaysAllowStore)
    od = ep["orthanc_dicom"]
    assert od["any_called_ae_accepted"] and "dicom-unknown-caller-services" in findings(od)
    assert od["fingerprint"]["identified"].startswith("DCMTK")
    # hardened Orthanc: nothing high over HTTP, the realm names it; unknown DICOM callers refused
    ah = ep["auth_http"]
    assert ah["http"]["auth_realm"] == "Orthanc Secure Area"
    assert ah["fingerprint"]["identified"] == "Orthanc" and ah["fingerprint"]["confidence"] == "medium"
    assert "http-plain" in findings(ah, ("medium",)) and "http-auth-required" in findings(ah, ("info",))
    assert not ep["auth_dicom"]["unknown_calling_ae_accepted"] and ep["auth_dicom"]["speaks_dicom"]
    # obscura serve: DICOMweb over TLS with tokens, allow-listed DIMSE
    sw = ep["serve_web"]
    assert sw["http"]["scheme"] == "https" and "http-auth-required" in findings(sw, ("info",))
    assert sw["fingerprint"]["identified"] == "Obscura" and sw["fingerprint"]["source"] == "401 realm"
    assert "http-plain" not in findings(sw, ALL)
    assert "Orthanc 1.10.1" in scan["html"].read_text()


# ------------------------------------------------------------- nmap comparison

NMAP = shutil.which("nmap")


def nmap(ports):
    """nmap 7.93's DICOM scripts on lab ports, in one run ('+' runs them on a
    port nmap would not name dicom by itself): its output per port. Guessing
    is capped at 10 s per port, the probe's budget per endpoint (Orthanc
    answers a refused title in about 2 s: nmap's 5,000 guesses would take hours)."""
    r = subprocess.run([NMAP, "-n", "-Pn", "-p", ",".join(map(str, ports)), "--script",
                        "+dicom-ping,+dicom-brute", "--script-args", "unpwdb.timelimit=10s", "127.0.0.1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    parts = re.split(r"^(\d+)/tcp", r.stdout, flags=re.M)
    return {int(port): body for port, body in zip(parts[1::2], parts[2::2])}


def nmap_verdict(out):
    if "Any AET is accepted" in out:
        return "any AE title accepted"
    if "Called AET check enabled" in out:
        accounts = re.search(r"Accounts:\s*(.*)", out)
        return "called AE checked" + (f"; brute: {accounts.group(1).strip()}" if accounts else "")
    return "not DICOM" if "dicom-ping" not in out else out.strip().splitlines()[-1]


def probe_verdict(e):
    worst = [f"{f['severity']} {f['id']}" for f in e["findings"] if f["severity"] in ("high", "critical")]
    return "; ".join(worst) or "nothing high or critical"


@pytest.mark.skipif(NMAP is None, reason="nmap not installed (apt-get install nmap)")
def test_nmap_comparison(scan):
    """The same loopback lab seen by nmap 7.93 (dicom-ping, dicom-brute) and
    by obscura probe: the table of README.md, measured."""
    ep = scan["ep"]
    dicom = [n for n in ("storescp", "pynetdicom", "dcmqrscp", "dcmqrscp_restricted", "orthanc_dicom",
                         "auth_dicom", "serve", "serve_dimse") if n in ep]
    ports = {n: int(ep[n]["target"].rsplit(":", 1)[1]) for n in dicom}
    started = time.monotonic()
    seen = nmap(ports.values())
    took = time.monotonic() - started
    for n in dicom:
        print(f"| {n} | {nmap_verdict(seen[ports[n]])} | {probe_verdict(ep[n])} |")
    print(f"nmap: {took:.1f} s for {len(dicom)} ports; obscura probe: {scan['elapsed']:.1f} s for the whole lab")
    seen = {n: seen[ports[n]] for n in dicom}
    # any AE title: both see it.
    for n in ("storescp", "pynetdicom", "orthanc_dicom"):
        if n in seen:
            assert "Any AET is accepted (Insecure)" in seen[n], seen[n]
            assert ep[n]["any_called_ae_accepted"]
    # dcmqrscp with COMMON open to ANY: nmap reads "Called AET check enabled"
    # and its word list lacks COMMON; the probe guesses COMMON and reads one match.
    assert "Called AET check enabled" in seen["dcmqrscp"]
    assert "No valid accounts found" in seen["dcmqrscp"] and "COMMON" not in seen["dcmqrscp"]
    assert findings(ep["dcmqrscp"]) == {"dicom-query-open", "dicom-unknown-caller-services"}
    # the guarded ones: nmap and the probe agree nothing is open.
    for n in ("dcmqrscp_restricted", "auth_dicom", "serve", "serve_dimse"):
        if n in seen:
            assert "Insecure" not in seen[n] and "allows any AET" not in seen[n], seen[n]
            assert findings(ep[n]) == set()


# ------------------------------------------------------------- intrusive checks

def test_intrusive_only_on_the_allow_list(lab, scan):
    """--intrusive with an allow-list: a synthetic, marked object is stored
    where unknown callers may store (found on the peer afterwards, by its
    UIDs), a documented default password is found on an Orthanc that kept
    it; targets off the list get nothing intrusive; the main scan (no
    --intrusive) stored nothing."""
    p = dict(lab["ports"])
    web = scan["web"]
    if web:
        p.update(web["ports"], default_http=web["default_http"])
    # the run without --intrusive stored nothing
    for folder in lab["received"].values():
        assert not [f for f in folder.rglob("*") if f.is_file()], folder
    allowed = [n for n in ("storescp", "pynetdicom", "orthanc_dicom", "default_http", "auth_http", "serve")
               if n in p]
    out = lab["dir"] / "intrusive.json"
    run = probe(*[f"127.0.0.1:{p[n]}" for n in [*allowed, "dcmqrscp"]], "--json", out, "--intrusive",
                *[a for n in allowed for a in ("--allow", f"127.0.0.1:{p[n]}")])
    print(run.stdout)
    assert run.returncode == 0, run.stderr
    by_port = {int(e["target"].rsplit(":", 1)[1]): e for e in json.loads(out.read_text())["endpoints"]}
    ep = {n: by_port[p[n]] for n in [*allowed, "dcmqrscp"]}
    for n in ("storescp", "pynetdicom", "orthanc_dicom"):
        if n not in ep:
            continue
        store = ep[n]["intrusive"]["store"]
        assert store["status"] == "0x0000", (n, store)
        assert "dicom-store-accepted" in findings(ep[n]), ep[n]["findings"]
        if n in lab["received"]:  # the object is on the peer's disk, marked
            files = [f for f in lab["received"][n].rglob("*") if f.is_file()]
            assert len(files) == 1, files
            ds = pydicom.dcmread(str(files[0]))
            assert (ds.SOPInstanceUID, ds.PatientID) == (store["sop_instance_uid"], "OBSCURA-PROBE")
            assert "SYNTHETIC" in str(ds.PatientName)
        else:  # Orthanc: looked up by its UID
            found = web["open"].post("/tools/lookup", data=store["sop_instance_uid"]).json()
            assert [x["Type"] for x in found] == ["Instance"], found
    # off the list: nothing intrusive, a note says so
    qr = ep["dcmqrscp"]
    assert "intrusive" not in qr and any("--allow" in n for n in qr["notes"]), qr["notes"]
    assert "dicom-store-accepted" not in findings(qr)
    # obscura serve refuses the unknown caller: nothing stored
    assert "intrusive" not in ep["serve"] and findings(ep["serve"]) == set()
    if web:
        d = ep["default_http"]
        assert d["intrusive"]["default_credentials"] == [["orthanc", 200]], d["intrusive"]
        assert "http-default-credentials" in findings(d, ("critical",))
        a = ep["auth_http"]
        assert [s for _, s in a["intrusive"]["default_credentials"]] == [401, 401, 401], a["intrusive"]
        assert findings(a) == set()
        assert "orthanc:orthanc" not in run.stdout and "alicePassword" not in out.read_text()
    # --intrusive needs --allow, and the other way round: refused before any packet
    for args in (["--intrusive"], ["--allow", "127.0.0.1"], ["--intrusive", "--allow", "127.0.0.0/8"]):
        r = probe(f"127.0.0.1:{p['storescp']}", *args)
        assert r.returncode == 2 or (r.returncode != 0 and "--allow" in r.stderr), (args, r.returncode, r.stderr)
        assert r.stdout == "", r.stdout


def test_intrusive_foreign_move(lab):
    """--intrusive: one C-MOVE to a random AE title nobody configured.
    dcmqrscp answers 0xA801 (destination unknown) for the study its C-FIND
    returned: info; a pynetdicom SCP that moves to any destination starts a
    sub-operation: high. No devset value in the outputs."""
    if not has_pynetdicom():
        pytest.skip("pynetdicom not installed (pip install pynetdicom)")
    p = dict(lab["ports"])
    p["move_any"] = free_port()
    scp = Proc([sys.executable, str(Path(__file__).parent / "move_any_scp.py"), str(p["move_any"])], p["move_any"])
    try:
        out = lab["dir"] / "move.json"
        names = ("dcmqrscp", "move_any")
        run = probe(*[f"127.0.0.1:{p[n]}" for n in names], "--json", out, "--intrusive",
                    *[a for n in names for a in ("--allow", f"127.0.0.1:{p[n]}")])
    finally:
        scp.stop()
    print(run.stdout)
    assert run.returncode == 0, run.stderr
    by_port = {int(e["target"].rsplit(":", 1)[1]): e for e in json.loads(out.read_text())["endpoints"]}
    ep = {n: by_port[p[n]] for n in names}
    qr = ep["dcmqrscp"]["intrusive"]["foreign_move"]
    assert re.fullmatch(r"PROBE[0-9A-F]{10}", qr["destination"]), qr
    assert (qr["status"], qr["sub_operations"], qr["study"]) == ("0xA801", 0, "the study the C-FIND returned"), qr
    assert "dicom-move-foreign-refused" in findings(ep["dcmqrscp"], ("info",))
    assert "dicom-move-foreign-accepted" not in findings(ep["dcmqrscp"])
    bad = ep["move_any"]["intrusive"]["foreign_move"]
    assert bad["status"] != "0xA801" and not bad["context_refused"], bad
    assert "dicom-move-foreign-accepted" in findings(ep["move_any"]), ep["move_any"]["findings"]
    text = run.stdout + run.stderr + out.read_text()
    leaked = [v for v in lab["forbidden"] if v in text]
    assert not leaked, f"{len(leaked)} devset value(s) in the outputs"


def test_cve_table_is_generated():
    """cves.json is exactly what gen_cves.py makes of advisories.toml, and
    the generator refuses an entry without a range."""
    gen = Path(__file__).resolve().parent.parent / "crates/obscura-probe/data/gen_cves.py"
    r = subprocess.run([sys.executable, str(gen), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(gen.parent))
    import gen_cves
    with pytest.raises(SystemExit, match="no range"):
        gen_cves.build('compiled = "2026-12-05"\n[[advisory]]\nproduct = "DCMTK"\ncve = "CVE-2022-2119"\n'
                       'summary = "s"\nadvisory = "a"\nsource = "https://example.org/x"\n')
