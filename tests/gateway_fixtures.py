"""Helpers for the `obscura serve` tests: free ports, configs, the gateway
process, DCMTK peers, raw PDUs. Every peer is real: DCMTK binaries (called by
full path: pip's pynetdicom can shadow their names) and pynetdicom."""
import hashlib
import os
import secrets
import signal
import socket
import struct
import subprocess
import time
from io import BytesIO
from pathlib import Path

import requests

from conftest import BINARY, make_key, obscura, pydicom_test_files
from ports import free_port  # noqa: F401 (re-exported to the tests)

STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"
ECHOSCU = "/usr/bin/echoscu"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT_LE = "1.2.840.10008.1.2"


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Gateway:
    """`obscura serve --config CONFIG` in the background, stderr to a log."""

    def __init__(self, config, port):
        self.config = Path(config)
        self.port = port
        self.log = self.config.parent / "gateway.log"
        self.proc = None

    def start(self):
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen([str(BINARY), "serve", "--config", str(self.config)],
                                     stdout=self.logf, stderr=self.logf)
        try:
            wait_port(self.port)
            # Something answering is not enough: it must be this process.
            time.sleep(0.2)
            if self.proc.poll() is not None:
                raise TimeoutError
        except TimeoutError:
            self.proc.kill()
            raise AssertionError(f"gateway did not start:\n{self.log_text()[-3000:]}")
        return self

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        return self.proc.returncode if self.proc else None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()

    def status(self):
        p = subprocess.run([str(BINARY), "status", "--config", str(self.config)],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout

    def counts(self, destination):
        """{pending, retrying, done, failed, quarantined} of one destination."""
        for line in self.status().splitlines():
            parts = line.split()
            if parts and parts[0] == destination:
                keys = ["pending", "retrying", "done", "failed", "quarantined"]
                return dict(zip(keys, map(int, parts[1:6])))
        raise KeyError(destination)

    def wait_idle(self, destinations, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if all(self.counts(d)["pending"] == 0 for d in destinations):
                return
            time.sleep(0.2)
        raise AssertionError(f"queue not drained:\n{self.status()}\n{self.log_text()[-2000:]}")


def write_config(dir, port, destinations, peers=None, extra_server="", routes=None):
    """A gateway config in DIR: plain listener on PORT, the given
    destination tables (TOML text), peers (default: PACS on 127.0.0.1,
    plain), every peer routed to every destination."""
    dir = Path(dir)
    peers = peers if peers is not None else ["""
[[peer]]
name = "pacs"
calling_ae = "PACS"
addresses = ["127.0.0.1"]
plain = true
"""]
    names = [line.split("=", 1)[1].strip().strip('"') for d in destinations
             for line in d.splitlines() if line.startswith("name")]
    peer_names = [line.split("=", 1)[1].strip().strip('"') for p in peers
                  for line in p.splitlines() if line.startswith("name")]
    routes = routes if routes is not None else [(peer_names, names)]
    text = f"""
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:{port}"
data_dir = "data"
retry_initial_ms = 200
{extra_server}
""" + "".join(peers) + "".join(destinations) + "".join(
        f"\n[[route]]\nfrom = {list(f)!r}\nto = {list(t)!r}\n".replace("'", '"') for f, t in routes)
    path = dir / "gateway.toml"
    path.write_text(text)
    return path


def tls_gateway(fingerprint, tls_port, modality_addresses):
    """(peers, extra_server) of a gateway whose MODALITY peer must present the
    client certificate FINGERPRINT on the TLS listener at TLS_PORT, and whose
    PACS peer may use plain DICOM from 127.0.0.1 (certificates under pki/)."""
    peers = [f"""
[[peer]]
name = "modality"
calling_ae = "MODALITY"
addresses = ["{modality_addresses}"]
client_cert_sha256 = "{fingerprint}"
""", """
[[peer]]
name = "pacs"
calling_ae = "PACS"
addresses = ["127.0.0.1"]
plain = true
"""]
    server_tls = f"""
[server.tls]
listen = "127.0.0.1:{tls_port}"
cert = "pki/server.pem"
key = "pki/server.key"
client_ca = "pki/ca.pem"
"""
    return peers, server_tls


def folder_destination(dir, name, profile=None, allow_burned_in=False):
    dir = Path(dir)
    make_key(dir / f"{name}.key")
    (dir / name).mkdir(exist_ok=True)
    prof = f"profile = {profile}\n" if profile else ""
    burn = "allow_burned_in = true\n" if allow_burned_in else ""
    return f"""
[[destination]]
name = "{name}"
folder = "{name}"
key_file = "{name}.key"
{prof}{burn}"""


def scu_destination(dir, name, port, called="READER", tls=None, profile=None):
    dir = Path(dir)
    make_key(dir / f"{name}.key")
    prof = f"profile = {profile}\n" if profile else ""
    how = "plain = true\n" if tls is None else tls
    return f"""
[[destination]]
name = "{name}"
host = "127.0.0.1:{port}"
called_ae = "{called}"
key_file = "{name}.key"
{how}{prof}"""


def write_tokens(path, tokens):
    """Write TOKENS ({principal: bearer token}) as serve's `tokens_file`:
    each token's SHA-256 and its principal, mode 0600."""
    path.write_text("".join(f"{hashlib.sha256(t.encode()).hexdigest()} {p}\n" for p, t in tokens.items()))
    path.chmod(0o600)


def stow(url, token, *datasets):
    """STOW-RS of DATASETS (pydicom) to the DICOMweb root URL with a bearer
    TOKEN, as one multipart request; asserts it was stored."""
    parts = []
    for ds in datasets:
        with BytesIO() as b:
            ds.save_as(b)
            parts.append(b"--bb\r\nContent-Type: application/dicom\r\n\r\n" + b.getvalue() + b"\r\n")
    s = requests.Session()
    s.trust_env = False
    s.headers["Authorization"] = f"Bearer {token}"
    r = s.post(url + "/studies", data=b"".join(parts) + b"--bb--\r\n",
               headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=bb',
                        "Accept": "application/dicom+json"})
    assert r.status_code == 200, r.text
    return r


def web_archive(root, principal, tenant, web=""):
    """`obscura serve` with an archive and DICOMweb, configured in ROOT and
    started: a master key, a bearer token for PRINCIPAL of TENANT (created),
    WEB added to the [web] table (lines, or tables below it such as
    [web.tls]). The token, the web port and the running Gateway."""
    root = Path(root)
    make_key(root / "master.key")
    token = secrets.token_urlsafe(32)
    write_tokens(root / "web-tokens", {principal: token})
    port = free_port()
    config = root / "serve.toml"
    config.write_text(f"""
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:{free_port()}"
data_dir = "gw-data"

[archive]
data_dir = "archive"
master_key_file = "master.key"

[web]
listen = "127.0.0.1:{port}"
tokens_file = "web-tokens"
{web}
[[web.principal]]
name = "{principal}"
tenant = "{tenant}"
""")
    p = obscura("tenant", "create", tenant, "--config", config)
    assert p.returncode == 0, p.stderr
    return token, port, Gateway(config, port).start()


class StoreSCP:
    """DCMTK storescp writing into a folder."""

    def __init__(self, out, port, aet="READER"):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.proc = subprocess.Popen([STORESCP, "-od", str(self.out), "-aet", aet, str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def storescu(port, files, aet="PACS", aec="OBSCURA", extra=()):
    return subprocess.run([STORESCU, "-aet", aet, "-aec", aec, *extra, "127.0.0.1", str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=120)


def echoscu(port, aet="PACS", aec="OBSCURA", extra=()):
    return subprocess.run([ECHOSCU, "-aet", aet, "-aec", aec, *extra, "127.0.0.1", str(port)],
                          capture_output=True, text=True, timeout=60)


# ----------------------------------------------------------------- raw PDUs


def _item(kind, body):
    return struct.pack(">BBH", kind, 0, len(body)) + body


def associate_rq(calling="PACS", called="OBSCURA", sop_class=CT_IMAGE, ts=IMPLICIT_LE):
    """A-ASSOCIATE-RQ bytes with one presentation context (id 1)."""
    app = _item(0x10, b"1.2.840.10008.3.1.1.1")
    pc = _item(0x20, bytes([1, 0, 0, 0]) + _item(0x30, sop_class.encode()) + _item(0x40, ts.encode()))
    user = _item(0x50, _item(0x51, struct.pack(">I", 16384)) + _item(0x52, b"1.2.3.4"))
    body = (struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode()
            + bytes(32) + app + pc + user)
    return struct.pack(">BBI", 1, 0, len(body)) + body


def recv_pdu(sock):
    head = b""
    while len(head) < 6:
        chunk = sock.recv(6 - len(head))
        if not chunk:
            return None, b""
        head += chunk
    kind, _, length = struct.unpack(">BBI", head)
    body = b""
    while len(body) < length:
        chunk = sock.recv(min(65536, length - len(body)))
        if not chunk:
            break
        body += chunk
    return kind, body


def pdata(context_id, is_command, last, payload):
    header = (1 if is_command else 0) | (2 if last else 0)
    pdv = struct.pack(">IB", len(payload) + 2, context_id) + bytes([header]) + payload
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def store_command(sop_instance, sop_class=CT_IMAGE):
    """A C-STORE-RQ command set, implicit VR little endian."""
    def el(group, elem, value):
        if isinstance(value, int):
            raw = struct.pack("<H", value)
        else:
            raw = value.encode()
            if len(raw) % 2:
                raw += b"\0"
        return struct.pack("<HHI", group, elem, len(raw)) + raw
    body = (el(0, 0x0002, sop_class) + el(0, 0x0100, 0x0001) + el(0, 0x0110, 7)
            + el(0, 0x0700, 0) + el(0, 0x0800, 0x0000) + el(0, 0x1000, sop_instance))
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def env_without_proxy():
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def c_store_acknowledged(assoc, ds):
    """Sends DS on a pynetdicom association: True when it is acknowledged
    with Success, False when refused, None when the association is gone."""
    try:
        status = assoc.send_c_store(ds)
    except Exception:
        return None
    if not assoc.is_established or status is None or "Status" not in status:
        return None
    return status.Status == 0x0000


def make_instances(dir, n):
    """N copies of a small real CT with new SOP Instance UIDs."""
    import pydicom
    from pydicom.uid import generate_uid
    src = pydicom.dcmread(str(pydicom_test_files() / "CT_small.dcm"))
    dir.mkdir()
    uids = []
    for i in range(n):
        src.SOPInstanceUID = generate_uid()
        src.file_meta.MediaStorageSOPInstanceUID = src.SOPInstanceUID
        src.InstanceNumber = i + 1
        src.save_as(str(dir / f"{i:04d}.dcm"))
        uids.append(str(src.SOPInstanceUID))
    return uids
