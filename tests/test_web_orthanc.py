"""Debian's Orthanc 1.10.1 with its DICOMweb plugin 1.7 (a 2022 release) as
a real DICOMweb client of Obscura: Orthanc is configured with Obscura as a
remote DICOMweb server (HTTPS, Obscura's CA, a bearer token in its
HttpHeaders), pushes studies to it with STOW-RS, and a second, empty
Orthanc retrieves it back with WADO-RS. The files that come back are
byte-exact copies of the ones uploaded (Orthanc keeps files as received:
no ingest transcoding, no compression)."""
import hashlib
import shutil

import pydicom
import pytest
import requests

from gateway_fixtures import web_archive
from orthanc_fixture import INSTALL, Orthanc, available
from test_serve import make_pki, study_files

pytestmark = [
    pytest.mark.skipif(not available(), reason=f"Orthanc or its DICOMweb plugin missing ({INSTALL})"),
    pytest.mark.skipif(shutil.which("openssl") is None,
                       reason="openssl not installed (apt-get install openssl)"),
]


@pytest.fixture(scope="module")
def obscura_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("web-orthanc")
    make_pki(root / "pki")
    token, port, gw = web_archive(root, "orthanc", "Site O", web="""
[web.tls]
cert = "pki/server.pem"
key = "pki/server.key"
""")
    yield root, f"https://127.0.0.1:{port}", token, gw
    gw.stop()


def test_orthanc_pushes_a_study_to_obscura_and_retrieves_it_back(obscura_archive, tmp_path):
    root, url, token, gw = obscura_archive
    servers = {"obscura": {"Url": url + "/", "HttpHeaders": {"Authorization": f"Bearer {token}"}}}
    tls = {"HttpsVerifyPeers": True, "HttpsCACertificates": str(root / "pki" / "ca.pem")}
    files = study_files()
    original = {}
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        original[str(ds.SOPInstanceUID)] = (str(ds.StudyInstanceUID), f.read_bytes())
    study_uids = sorted({s for s, _ in original.values()})
    assert len(study_uids) >= 2

    sender = Orthanc(tmp_path / "sender", servers, tls, name="sender").start()
    receiver = Orthanc(tmp_path / "receiver", servers, tls, name="receiver").start()
    try:
        assert sender.get("/system").json()["Version"] == "1.10.1"
        assert sender.get("/dicom-web/servers").json() == ["obscura"]
        studies = set()
        for blob in (b for _, b in original.values()):
            studies.add(sender.upload(blob)["ParentStudy"])
        assert len(studies) == len(study_uids)

        # Orthanc's DICOMweb client pushes both studies to Obscura (STOW-RS)
        sender.post("/dicom-web/servers/obscura/stow",
                    json_body={"Resources": sorted(studies), "Synchronous": True})
        # Obscura holds them, byte for byte, under the token's tenant
        s = requests.Session()
        s.trust_env = False
        s.verify = str(root / "pki" / "ca.pem")
        s.headers["Authorization"] = f"Bearer {token}"
        found = s.get(url + "/studies").json()
        assert sorted(x["0020000D"]["Value"][0] for x in found) == study_uids
        # Orthanc without the token: refused, and the log says so
        r = requests.get(url + "/studies", verify=str(root / "pki" / "ca.pem"))
        assert r.status_code == 401

        # an empty Orthanc finds them with QIDO-RS through its plugin ...
        qido = receiver.post("/dicom-web/servers/obscura/get",
                             json_body={"Uri": "/studies"}).json()
        assert sorted(x["0020000D"]["Value"][0] for x in qido) == study_uids
        assert receiver.get("/instances").json() == []
        # ... and retrieves them (WADO-RS) into its own store
        for study in study_uids:
            receiver.post("/dicom-web/servers/obscura/retrieve",
                          json_body={"Resources": [{"Study": study}]})
        got = receiver.get("/instances").json()
        assert len(got) == len(original)
        for orthanc_id in got:
            blob = receiver.get(f"/instances/{orthanc_id}/file").content
            sop = receiver.get(f"/instances/{orthanc_id}/simplified-tags").json()["SOPInstanceUID"]
            # byte-exact: the file that came back is the file uploaded
            assert hashlib.sha256(blob).hexdigest() == hashlib.sha256(original[sop][1]).hexdigest(), sop
    finally:
        sender.stop()
        receiver.stop()
    assert "audit: rejected web request GET" in gw.log_text()
