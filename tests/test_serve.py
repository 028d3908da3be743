"""`obscura serve`, the gateway, against real peers: DCMTK storescu,
echoscu and storescp, pynetdicom, openssl-made certificates, raw sockets.
Each test starts its own gateway on free ports and stops it."""
import hashlib
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from conftest import DEVSET, pydicom_test_files
from gateway_fixtures import (STORESCP, CT_IMAGE, Gateway, StoreSCP, associate_rq, c_store_acknowledged, echoscu,
                              folder_destination, free_port, make_instances, pdata, recv_pdu, rss_kib, scu_destination, store_command,
                              storescu, tls_gateway, wait_port, write_config)
from test_dciodvfy import DCIODVFY, error_lines

pytestmark = pytest.mark.skipif(not Path("/usr/bin/storescu").is_file(),
                                reason="DCMTK storescu/storescp/echoscu not installed (apt-get install dcmtk)")


def study_files():
    """Two of pydicom's real studies: a two-series CT study and a CR study."""
    root = pydicom_test_files() / "dicomdirtests"
    files = [p for d in ("98892001", "77654033") for p in sorted((root / d).rglob("*")) if p.is_file()]
    assert len(files) >= 10
    return files


def pixel_hash(path):
    ds = pydicom.dcmread(str(path))
    return hashlib.sha256(ds.PixelData).hexdigest()


def identity(files):
    """Names, IDs and UIDs the inputs carried."""
    values = set()
    for f in files:
        ds = pydicom.dcmread(str(f))
        for kw in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                   "SOPInstanceUID", "FrameOfReferenceUID"):
            v = str(ds.get(kw, "") or "")
            if v:
                values.add(v)
    return values


@pytest.fixture
def gw_dir(tmp_path):
    d = tmp_path / "gw"
    d.mkdir()
    return d


def start(gw_dir, destinations, **kw):
    port = free_port()
    config = write_config(gw_dir, port, destinations, **kw)
    return Gateway(config, port).start()


def test_study_to_storescp_and_folder(gw_dir, tmp_path):
    scp_port = free_port()
    scp = StoreSCP(tmp_path / "reader", scp_port)
    gw = start(gw_dir, [folder_destination(gw_dir, "archive"),
                        scu_destination(gw_dir, "reader", scp_port,
                                        profile='{ options = ["clean-descriptors"] }')],
               extra_server='metrics = "127.0.0.1:%d"' % (mport := free_port()))
    try:
        files = study_files()
        proc = storescu(gw.port, files)
        assert proc.returncode == 0, proc.stderr
        gw.wait_idle(["archive", "reader"])
        folder = sorted((gw_dir / "archive").glob("*.dcm"))
        received = sorted(p for p in (tmp_path / "reader").iterdir() if p.is_file())
        assert len(folder) == len(files) and len(received) == len(files)
        # de-identified: nothing of the inputs' identity, new UIDs, marked
        secrets = identity(files)
        for out in folder + received:
            ds = pydicom.dcmread(str(out))
            assert ds.PatientIdentityRemoved == "YES"
            for kw in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                assert str(ds.get(kw, "")) not in secrets, kw
            raw = out.read_bytes()
            for s in secrets:
                assert s.encode() not in raw
        # the two destinations have different keys: unlinkable pseudonyms
        a = {str(pydicom.dcmread(str(p)).PatientID) for p in folder}
        b = {str(pydicom.dcmread(str(p)).PatientID) for p in received}
        assert a.isdisjoint(b)
        # series structure kept: two studies, three-plus series
        assert len({str(pydicom.dcmread(str(p)).SeriesInstanceUID) for p in folder}) >= 3
        # dciodvfy finds no new errors (outputs matched to inputs by pixel data)
        if DCIODVFY.is_file():
            by_pixels = {pixel_hash(f): f for f in files}
            for out in folder:
                src = by_pixels[pixel_hash(out)]
                assert len(error_lines(out)) <= len(error_lines(src)), (src.name, error_lines(out))
        # metrics and status
        import urllib.request
        text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
        assert f"obscura_received_total {len(files)}" in text
        assert f'obscura_forwarded_total{{destination="reader"}} {len(files)}' in text
        assert "obscura_forward_latency_seconds_bucket" in text
        assert gw.counts("archive")["done"] == len(files)
        # logs carry no PHI
        log = gw.log_text()
        assert not any(s in log for s in secrets)
        # re-sending the study creates no second copy anywhere
        assert storescu(gw.port, files).returncode == 0
        time.sleep(1)
        gw.wait_idle(["archive", "reader"])
        # (a second delivery would overwrite the same names: count the jobs)
        assert len(list((gw_dir / "archive").glob("*.dcm"))) == len(files)
        assert gw.counts("archive")["done"] == len(files)
        assert gw.counts("reader")["done"] == len(files)
    finally:
        assert gw.stop() == 0, gw.log_text()[-2000:]
        scp.stop()
    assert "stopped" in gw.log_text()


def test_echo_known_and_unknown(gw_dir):
    gw = start(gw_dir, [folder_destination(gw_dir, "archive")])
    try:
        assert echoscu(gw.port).returncode == 0
        bad = echoscu(gw.port, aet="INTRUDER")
        assert bad.returncode != 0
        assert "Rejected" in bad.stderr + bad.stdout
        assert echoscu(gw.port, aec="WRONG").returncode != 0
        assert "audit: rejected association" in gw.log_text()
        assert "INTRUDER" in gw.log_text()
    finally:
        gw.stop()


def test_pynetdicom_sender_and_receiver(gw_dir, tmp_path):
    """pynetdicom sends to the gateway, and receives from it as a destination."""
    from pynetdicom import AE, evt, StoragePresentationContexts
    received = []

    def on_store(event):
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    scp_port = free_port()
    ae = AE(ae_title="PYRECV")
    ae.supported_contexts = StoragePresentationContexts
    server = ae.start_server(("127.0.0.1", scp_port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])
    gw = start(gw_dir, [scu_destination(gw_dir, "py", scp_port, called="PYRECV")])
    try:
        sender = AE(ae_title="PACS")
        sender.add_requested_context(CT_IMAGE)
        src = pydicom.dcmread(str(pydicom_test_files() / "CT_small.dcm"))
        assoc = sender.associate("127.0.0.1", gw.port, ae_title="OBSCURA")
        assert assoc.is_established
        status = assoc.send_c_store(src)
        assert status.Status == 0x0000
        assoc.release()
        gw.wait_idle(["py"])
        deadline = time.time() + 10
        while not received and time.time() < deadline:
            time.sleep(0.1)
        assert len(received) == 1
        out = received[0]
        assert str(out.PatientName) != str(src.PatientName)
        assert out.SOPInstanceUID != src.SOPInstanceUID
        assert out.PixelData == src.PixelData
        # an unknown AE cannot associate
        rogue = AE(ae_title="ROGUE")
        rogue.add_requested_context(CT_IMAGE)
        assert not rogue.associate("127.0.0.1", gw.port, ae_title="OBSCURA").is_established
    finally:
        gw.stop()
        server.shutdown()


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    d.mkdir(exist_ok=True)

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(ext + "\nbasicConstraints=CA:FALSE\n")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
        (d / f"{name}.key").chmod(0o600)
    der = subprocess.run(["openssl", "x509", "-in", "client.pem", "-outform", "DER"], cwd=d,
                         check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed (apt-get install openssl)")
def test_tls_with_storescu(gw_dir):
    pki = gw_dir / "pki"
    fingerprint = make_pki(pki)
    tls_port = free_port()
    peers, server_tls = tls_gateway(fingerprint, tls_port, "127.0.0.0/8")
    gw = start(gw_dir, [folder_destination(gw_dir, "archive")], peers=peers, extra_server=server_tls)
    try:
        f = pydicom_test_files() / "CT_small.dcm"
        tls = ["+tls", str(pki / "client.key"), str(pki / "client.pem"), "+cf", str(pki / "ca.pem")]
        ok = storescu(tls_port, [f], aet="MODALITY", extra=tls)
        assert ok.returncode == 0, ok.stderr + gw.log_text()[-2000:]
        # the TLS-only peer is refused on the plain port
        plain = storescu(gw.port, [f], aet="MODALITY")
        assert plain.returncode != 0
        # without a client certificate the handshake fails
        nocert = storescu(tls_port, [f], aet="MODALITY", extra=["+tla", "+cf", str(pki / "ca.pem")])
        assert nocert.returncode != 0
        gw.wait_idle(["archive"])
        assert len(list((gw_dir / "archive").glob("*.dcm"))) == 1
        assert "peer pacs (PACS) may send over plain DICOM" in gw.log_text()
    finally:
        gw.stop()


def test_devset_through_the_gateway(gw_dir, tmp_path):
    """The devset sent with storescu; the folder destination's output scored."""
    from test_devset import require_scorer
    require_scorer()
    gw = start(gw_dir, [folder_destination(gw_dir, "devset", allow_burned_in=True)])
    try:
        files = sorted(p for p in (DEVSET / "data").rglob("*") if p.is_file())
        # pynetdicom proposes each file's own SOP class and transfer syntax
        # (storescu lacks the retired US class or recodes RLE files)
        from pynetdicom import AE
        ae = AE(ae_title="PACS")
        datasets = [pydicom.dcmread(str(f)) for f in files]
        for pair in {(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}:
            ae.add_requested_context(pair[0], pair[1])
        assoc = ae.associate("127.0.0.1", gw.port, ae_title="OBSCURA")
        assert assoc.is_established
        statuses = [assoc.send_c_store(d).Status for d in datasets]
        assoc.release()
        assert statuses == [0] * len(files)
        gw.wait_idle(["devset"])
    finally:
        gw.stop()
    out = gw_dir / "devset"
    assert len(list(out.glob("*.dcm"))) == len(files)
    proc = subprocess.run([sys.executable, "score.py", "answer_key.json", str(out)], cwd=DEVSET,
                          capture_output=True, text=True, timeout=600)
    import json
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    print("\n" + proc.stdout.strip().splitlines()[-2])
    for category in ("standard", "sequence"):
        assert summary["leak"]["by_category"][category]["leaked_anywhere"] == 0, summary["leak"]
    assert summary["validity"]["parseable"] == summary["files_expected"]


def test_sigkill_mid_transfer_loses_nothing_acknowledged(gw_dir, tmp_path):
    """500 instances from pynetdicom; SIGKILL after ~200 acknowledgements;
    restart: every acknowledged instance reaches the folder exactly once."""
    from pynetdicom import AE
    make_instances(tmp_path / "in", 500)
    # retain-uids: the destination's file names are the original UIDs
    gw = start(gw_dir, [folder_destination(gw_dir, "dest", profile='{ options = ["retain-uids"] }')])
    acked, attempted = [], []
    ae = AE(ae_title="PACS")
    ae.add_requested_context(CT_IMAGE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", gw.port, ae_title="OBSCURA")
    assert assoc.is_established
    for i, f in enumerate(sorted((tmp_path / "in").iterdir())):
        if i == 200:
            gw.kill()
        ds = pydicom.dcmread(str(f))
        attempted.append(str(ds.SOPInstanceUID))
        acknowledged = c_store_acknowledged(assoc, ds)
        if acknowledged is None:
            break
        if acknowledged:
            acked.append(str(ds.SOPInstanceUID))
    assoc.abort()
    assert 150 <= len(acked) <= 200, len(acked)
    # restart; send the rest again (a sender retries what was not acknowledged)
    gw = Gateway(gw.config, gw.port).start()
    try:
        rest = [f for f in sorted((tmp_path / "in").iterdir())
                if str(pydicom.dcmread(str(f), stop_before_pixels=True).SOPInstanceUID) not in set(acked)]
        proc = subprocess.run(["/usr/bin/storescu", "-aet", "PACS", "-aec", "OBSCURA", "127.0.0.1",
                               str(gw.port), *map(str, rest)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        gw.wait_idle(["dest"], timeout=90)
        names = [p.name for p in (gw_dir / "dest").iterdir()]
        assert not [n for n in names if not n.endswith(".dcm")], "partial files left"
        delivered = [n[:-4] for n in names]
        assert len(delivered) == len(set(delivered)) == 500
        assert set(acked) <= set(delivered)
        assert gw.counts("dest")["done"] == 500
    finally:
        gw.stop()


def test_bad_input_keeps_serving(gw_dir):
    extra = "max_associations = 256\nidle_timeout_secs = 20\nmax_pdu_length = 65536\n"
    gw = start(gw_dir, [folder_destination(gw_dir, "archive")], extra_server=extra)
    pid = gw.proc.pid
    try:
        base_rss = rss_kib(pid)

        def connect():
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
            return s

        # 1. malformed PDU bytes
        for junk in (b"\xff" * 64, b"\x01\x00\x00\x00\x00\x04abcd", b"GET / HTTP/1.0\r\n\r\n"):
            s = connect()
            s.sendall(junk)
            s.settimeout(10)
            try:
                s.recv(100)
            except OSError:
                pass
            s.close()
        # 2. a 4 GB declared PDU length after a good association
        s = connect()
        s.sendall(associate_rq())
        kind, _ = recv_pdu(s)
        assert kind == 2, "association accepted"
        s.sendall(struct.pack(">BBI", 4, 0, 0xFFFFFFF0) + b"\0" * 1024)
        s.settimeout(10)
        try:
            got = s.recv(100)
        except OSError:
            got = b""
        assert not got or got[0] == 7, "aborted"
        s.close()
        # 3. half a data set, then disconnect
        s = connect()
        s.sendall(associate_rq())
        assert recv_pdu(s)[0] == 2
        ds_bytes = (pydicom_test_files() / "CT_small.dcm").read_bytes()
        half_uid = "1.2.826.0.1.3680043.99.1"
        s.sendall(pdata(1, True, True, store_command(half_uid)))
        s.sendall(pdata(1, False, False, ds_bytes[1000:9000]))
        s.close()
        # 4. 200 concurrent associations held open
        held = []
        for _ in range(200):
            c = connect()
            c.sendall(associate_rq())
            held.append(c)
        accepted = sum(1 for c in held if recv_pdu(c)[0] == 2)
        assert accepted >= 150, accepted
        peak_rss = rss_kib(pid)
        # the gateway still serves a legitimate peer meanwhile
        f = pydicom_test_files() / "CT_small.dcm"
        assert echoscu(gw.port).returncode == 0
        for c in held:
            c.close()
        time.sleep(0.5)
        ok = storescu(gw.port, [f])
        assert ok.returncode == 0, ok.stderr + gw.log_text()[-2000:]
        assert gw.proc.poll() is None
        gw.wait_idle(["archive"])
        # nothing partial forwarded: exactly the one good instance
        assert len(list((gw_dir / "archive").iterdir())) == 1
        assert gw.counts("archive")["done"] == 1
        assert peak_rss - base_rss < 200 * 1024, (base_rss, peak_rss)
        assert rss_kib(pid) < 300 * 1024
    finally:
        gw.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed (apt-get install openssl)")
def test_forwarding_over_tls_to_storescp(gw_dir, tmp_path):
    """A destination reached over TLS (mutual: the gateway presents a client
    certificate, DCMTK storescp verifies it) receives the de-identified copy."""
    pki = gw_dir / "pki"
    make_pki(pki)
    port = free_port()
    out = tmp_path / "reader"
    out.mkdir()
    scp = subprocess.Popen([STORESCP, "+tls", str(pki / "server.key"), str(pki / "server.pem"),
                            "+cf", str(pki / "ca.pem"), "-od", str(out), "-aet", "READER", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    tls = """
[destination.tls]
ca = "pki/ca.pem"
cert = "pki/client.pem"
key = "pki/client.key"
server_name = "127.0.0.1"
"""
    gw = start(gw_dir, [scu_destination(gw_dir, "reader", port, tls=tls)])
    try:
        src = pydicom_test_files() / "CT_small.dcm"
        sent = storescu(gw.port, [src])
        assert sent.returncode == 0, sent.stderr
        gw.wait_idle(["reader"])
        received = [p for p in out.iterdir() if p.is_file()]
        assert len(received) == 1, gw.log_text()[-2000:]
        ds = pydicom.dcmread(received[0])
        original = pydicom.dcmread(src)
        assert ds.PatientName != original.PatientName
        assert ds.SOPInstanceUID != original.SOPInstanceUID
        assert ds.PatientIdentityRemoved == "YES"
    finally:
        gw.stop()
        scp.terminate()
        scp.wait(10)
