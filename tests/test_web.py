"""DICOMweb in `obscura serve`, against PyPI's dicomweb-client (a real
client, no mocks): STOW of pydicom's test files and the devset for two
tenants, QIDO searches, WADO retrieval byte for byte, refusals without
or with a wrong token, bad input, and every raw byte under the archive's
data folder searched for the devset's planted identities."""
import secrets
import shutil
import socket
import subprocess
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from dicomweb_client.web import _Transaction

from conftest import BINARY, make_key, obscura, pydicom_test_files, read_strict
from gateway_fixtures import Gateway, free_port, storescu, write_tokens
from planted import devset_files, devset_needles, found_in
from test_serve import make_pki, study_files

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl not installed (apt-get install openssl)")

MAX_PART = 8_000_000


class Archive:
    """`obscura serve` with an archive, DICOMweb over TLS, two tenants."""

    def __init__(self, root):
        self.root = root
        self.pki = root / "pki"
        cert_sha = make_pki(self.pki)
        make_key(root / "master.key")
        (root / "web-spool").mkdir()
        self.tokens = {"site-a": secrets.token_urlsafe(32), "site-b": secrets.token_urlsafe(32)}
        write_tokens(root / "web-tokens", self.tokens)
        self.web_port = free_port()
        self.dimse_port = dimse_port = free_port()
        self.config = root / "serve.toml"
        self.config.write_text(f"""
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:{dimse_port}"
data_dir = "gw-data"

[archive]
data_dir = "archive"
master_key_file = "master.key"

[web]
listen = "127.0.0.1:{self.web_port}"
tokens_file = "web-tokens"
temp_dir = "web-spool"
max_part_bytes = {MAX_PART}

[web.tls]
cert = "pki/server.pem"
key = "pki/server.key"
client_ca = "pki/ca.pem"

[[web.principal]]
name = "site-a"
tenant = "Site A"
client_cert_sha256 = ["{cert_sha}"]

[[web.principal]]
name = "site-b"
tenant = "Site B"

[[peer]]
name = "pacs"
calling_ae = "PACS"
addresses = ["127.0.0.1"]
plain = true

[[destination]]
name = "archive-b"
archive_tenant = "Site B"

[[route]]
from = ["pacs"]
to = ["archive-b"]
""")
        for name in ("Site A", "Site B"):
            p = obscura("tenant", "create", name, "--config", self.config)
            assert p.returncode == 0, p.stderr
        self.url = f"https://127.0.0.1:{self.web_port}"
        self.gw = Gateway(self.config, self.web_port).start()

    def session(self, token=None, cert=False):
        s = requests.Session()
        # the environment's CA bundle or proxies would override the session's
        s.trust_env = False
        s.verify = str(self.pki / "ca.pem")
        if token:
            s.headers["Authorization"] = f"Bearer {token}"
        if cert:
            s.cert = (str(self.pki / "client.pem"), str(self.pki / "client.key"))
        return s

    def client(self, principal):
        return DICOMwebClient(self.url, session=self.session(self.tokens[principal]))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    a = Archive(tmp_path_factory.mktemp("web"))
    yield a
    a.gw.stop()


def encoded(ds):
    """What dicomweb-client's store_instances sends for a data set."""
    with BytesIO() as b:
        pydicom.dcmwrite(b, ds)
        return b.getvalue()


def stow_raw(client, blobs, study=None):
    """STOW exact bytes (dicomweb-client's own multipart POST)."""
    url = client._get_studies_url(_Transaction.STORE, study)
    return client._http_post_multipart_application_dicom(url, blobs)


def retrieve_raw(client, study, series, sop):
    """An instance's bytes as the server sent them, through dicomweb-client's
    multipart decoding."""
    url = f"{client.base_url}/studies/{study}/series/{series}/instances/{sop}"
    r = client._http_get(url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert r.status_code == 200
    assert 'boundary="' in r.headers["Content-Type"]
    parts = list(client._decode_multipart_message(r, stream=False))
    assert len(parts) == 1
    return parts[0]


def test_devset_round_trip_two_tenants_and_nothing_identifying_at_rest(archive):
    files = devset_files()
    uids = {}
    for principal in ("site-a", "site-b"):
        client = archive.client(principal)
        for i in range(0, len(files), 16):
            batch = files[i:i + 16]
            result = stow_raw(client, [f.read_bytes() for f in batch])
            assert "FailedSOPSequence" not in result, result
            assert len(result.ReferencedSOPSequence) == len(batch)
    client = archive.client("site-a")
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        uids[f] = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        assert retrieve_raw(client, *uids[f]) == f.read_bytes(), f.name
    # QIDO sees the devset's studies, by name, date range and modality
    studies = client.search_for_studies()
    assert len(studies) == len({u[0] for u in uids.values()})
    one = pydicom.dcmread(files[0], stop_before_pixels=True)
    by_name = client.search_for_studies(search_filters={"PatientName": str(one.PatientName)})
    assert one.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in by_name}
    fuzzy = client.search_for_studies(search_filters={"PatientName": str(one.PatientName)[:3].lower()},
                                      fuzzymatching=True)
    assert one.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in fuzzy}
    ranged = client.search_for_studies(search_filters={"StudyDate": "19000101-21001231"})
    assert len(ranged) == len([s for s in studies if "00080020" in s and s["00080020"].get("Value")])
    series = client.search_for_series(one.StudyInstanceUID)
    assert one.SeriesInstanceUID in {s["0020000E"]["Value"][0] for s in series}
    inst = client.search_for_instances(one.StudyInstanceUID, one.SeriesInstanceUID,
                                       fields=["all"], limit=1)
    assert len(inst) == 1
    page = client.search_for_studies(limit=2, offset=1)
    assert [s["0020000D"] for s in page] == [s["0020000D"] for s in studies[1:3]]
    # metadata through the client, pixel data as a BulkDataURI
    meta = client.retrieve_instance_metadata(*uids[files[0]])
    assert meta["0020000D"]["Value"][0] == one.StudyInstanceUID
    assert "BulkDataURI" in meta.get("7FE00010", {"BulkDataURI": ""})
    # the public retrieve API decodes to the same data set
    got = client.retrieve_instance(*uids[files[0]])
    assert got.SOPInstanceUID == one.SOPInstanceUID
    # tenant B sees its own copy, never A's: same UIDs, separate store
    assert len(archive.client("site-b").search_for_studies()) == len(studies)

    # nothing identifying under the archive's data folder
    blobs = [p.read_bytes() for p in (archive.root / "archive").rglob("*") if p.is_file()]
    assert sum(map(len, blobs)) > 2 * sum(f.stat().st_size for f in files)
    found = found_in(blobs, devset_needles())
    assert not found, f"{len(found)} identifying values at rest"
    assert not list((archive.root / "web-spool").iterdir()), "spool files are unlinked"


def test_pydicom_files_round_trip(archive):
    client = archive.client("site-a")
    first = {}  # SOP Instance UID -> (study, series, bytes first stored)
    stored = refused = 0
    for path in sorted(p for p in pydicom_test_files().rglob("*") if p.is_file()):
        ds = read_strict(path)
        if ds is None or "SOPInstanceUID" not in ds or not getattr(ds, "file_meta", None):
            continue
        try:
            blob = encoded(ds)
        except Exception:
            continue
        try:
            result = client.store_instances([ds])
        except requests.HTTPError as e:
            # 409: every instance of the request failed; the body says why
            assert e.response.status_code == 409, e.response.text
            result = pydicom.Dataset.from_json(e.response.json())
        if "ReferencedSOPSequence" in result:
            stored += 1
            uid = str(ds.SOPInstanceUID)
            first.setdefault(uid, (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), blob))
        else:
            refused += 1
            assert result.FailedSOPSequence[0].FailureReason in (0xC000, 0xA900, 0x0110)
    assert stored >= 60, (stored, refused)
    for uid, (study, series, blob) in first.items():
        assert retrieve_raw(client, study, series, uid) == blob, uid

    # frames: native, and encapsulated in their own media type or as octets
    checked = 0
    for name, media in (("emri_small.dcm", None), ("MR_small.dcm", None),
                        ("SC_rgb_jpeg_dcmtk.dcm", "image/jpeg"),
                        ("emri_small_jpeg_2k_lossless.dcm", "image/jp2"),
                        ("JPEG2000.dcm", "image/jp2")):
        ds = pydicom.dcmread(get_testdata_file(name))
        # a fresh UID: several of these files share theirs with others
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        client.store_instances([ds])
        n = int(ds.get("NumberOfFrames", 1) or 1)
        ids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        if media is None:
            size = len(ds.PixelData) // n
            want = [ds.PixelData[i * size:(i + 1) * size] for i in range(n)]
            got = client.retrieve_instance_frames(*ids, frame_numbers=list(range(1, n + 1)))
        else:
            want = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=n))
            got = client.retrieve_instance_frames(*ids, frame_numbers=list(range(1, n + 1)),
                                                  media_types=(media,))
            assert client.retrieve_instance_frames(
                *ids, frame_numbers=[n], media_types=(("application/octet-stream", "*"),)) == [want[-1]]
        assert got == want, name
        checked += 1
    assert checked == 5


def one_bit_object(rows, cols, frames, burned_in="NO"):
    """A Segmentation-like 1-bit object of random bits, frames packed one
    after another bit by bit (PS3.5 8.1.1), in a study of its own."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.pixels import pack_bits
    import numpy as np
    bits = np.random.default_rng(rows * cols + frames).integers(0, 2, (frames, rows, cols), np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"   # Segmentation Storage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta, ds.preamble = meta, b"\0" * 128
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.Modality = "OKAFOR^AMARA", "MRN-20931", "SEG"
    ds.BurnedInAnnotation = burned_in
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    packed = bytearray(pack_bits(bits))
    if (rows * cols * frames) % 8:
        # the stored value's unused last bits set: no frame may carry them
        packed[(rows * cols * frames) // 8] |= 0xFF << ((rows * cols * frames) % 8) & 0xFF
    ds.PixelData = bytes(packed)
    return ds


def test_one_bit_frames_each_from_bit_0_padded_to_a_byte(archive):
    """WADO-RS frames of native 1-bit pixel data (PS3.18 8.7.3.3.1): each
    frame on its own, from bit 0 of its first byte, padded with 0 bits to
    a byte: pydicom's pack_bits(pixel_array[k], pad=False) (its default
    pads to an even length, as a DICOM value; a frame is no value and
    8-bit frames of odd sizes are not padded either), whether the stored
    frames are byte aligned (liver.dcm, 512 x 512) or start mid-byte
    (61 x 67: frames 2 and 3), for the tenant's owner and through a share
    link's de-identified view alike; pixels a view withholds (burned in)
    are 404 there, as for 8 and 16 bits."""
    from pydicom.pixels import pack_bits
    client = archive.client("site-a")
    liver = pydicom.dcmread(get_testdata_file("liver.dcm"))
    liver.StudyInstanceUID, liver.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    liver.SOPInstanceUID = liver.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    odd = one_bit_object(61, 67, 3)
    burned = one_bit_object(61, 67, 3, burned_in="YES")
    stow_raw(client, [encoded(liver), encoded(odd), encoded(burned)])
    anon = requests.Session()
    anon.trust_env = False
    anon.verify = str(archive.pki / "ca.pem")
    for ds in (liver, odd):
        ds = pydicom.dcmread(BytesIO(encoded(ds)))
        n = int(ds.NumberOfFrames)
        want = [pack_bits(ds.pixel_array[k], pad=False) for k in range(n)]
        assert all(len(w) == -(-ds.Rows * ds.Columns // 8) for w in want)
        ids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        order = [n, 1] + list(range(2, n))
        got = client.retrieve_instance_frames(*ids, frame_numbers=order)
        assert got == [want[k - 1] for k in order], ds.Rows
        # the pixel data as bulk data stays the stored value
        assert client.retrieve_bulkdata(
            f"{archive.url}/studies/{ids[0]}/series/{ids[1]}/instances/{ids[2]}/bulkdata/7FE00010"
        ) == [ds.PixelData]
        # through a de-identified view (a share link): the same frames
        p = obscura("share", ids[0], "--tenant", "Site A", "--expires", "1h",
                    "--view", "deidentified", "--config", archive.config)
        assert p.returncode == 0, p.stderr
        link = p.stdout.strip()
        viewer = DICOMwebClient(link, session=anon)
        [inst] = viewer.search_for_instances(fields=["NumberOfFrames"])
        vids = [inst[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018")]
        assert vids[0] != ids[0] and vids[2] != ids[2]
        assert viewer.retrieve_instance_frames(*vids, frame_numbers=order) == [want[k - 1] for k in order]
    p = obscura("share", burned.StudyInstanceUID, "--tenant", "Site A", "--expires", "1h",
                "--view", "deidentified", "--config", archive.config)
    assert p.returncode == 0, p.stderr
    link = p.stdout.strip()
    [inst] = DICOMwebClient(link, session=anon).search_for_instances()
    vids = [inst[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018")]
    r = anon.get(f"{link}/studies/{vids[0]}/series/{vids[1]}/instances/{vids[2]}/frames/1")
    assert r.status_code == 404, r.status_code
    # the owner gets them (the view alone withholds them)
    ids = (burned.StudyInstanceUID, burned.SeriesInstanceUID, burned.SOPInstanceUID)
    want = pack_bits(pydicom.dcmread(BytesIO(encoded(burned))).pixel_array[1], pad=False)
    assert client.retrieve_instance_frames(*ids, frame_numbers=[2]) == [want]


def test_refused_without_or_with_a_wrong_token(archive):
    for s in (archive.session(), archive.session("not-a-token")):
        for path in ("/studies", "/studies/1.2.3/series", "/nope"):
            r = s.get(archive.url + path)
            assert r.status_code == 401
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
        r = s.post(archive.url + "/studies", data=b"x",
                   headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'})
        assert r.status_code == 401
    # the principal's client certificate alone is enough
    assert archive.session(cert=True).get(archive.url + "/studies").status_code == 200
    log = archive.gw.log_text()
    assert "audit: rejected web request GET" in log and "invalid bearer token" in log
    # plain HTTP on the TLS port is no way in
    with socket.create_connection(("127.0.0.1", archive.web_port)) as s:
        s.sendall(b"GET /studies HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"HTTP/1.1 200")


def instance_count(archive):
    s = archive.session(archive.tokens["site-b"])
    return len(s.get(archive.url + "/instances", params={"limit": 1000}).json())


def test_bad_input_is_4xx_and_nothing_stored(archive):
    s = archive.session(archive.tokens["site-b"])
    before = instance_count(archive)
    f = devset_files()[0].read_bytes()
    part = b"--bb\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n"
    fresh = pydicom.dcmread(BytesIO(f))
    fresh.SOPInstanceUID = "1.2.3.4.5.6.7.8.9"
    fresh_part = b"--bb\r\nContent-Type: application/dicom\r\n\r\n" + encoded(fresh) + b"\r\n"
    ct = 'multipart/related; type="application/dicom"; boundary=bb'
    cases = [
        (ct, fresh_part, 400),                               # unterminated
        (ct, fresh_part + b"--bb junk\r\n", 400),            # malformed delimiter
        (ct, b"no multipart here", 400),
        ("application/dicom", encoded(fresh), 415),          # wrong content types
        ("multipart/related; type=\"application/dicom+xml\"; boundary=bb", fresh_part + b"--bb--", 415),
        ("text/plain", b"hello", 415),
        (ct, fresh_part + b"--bb\r\nContent-Type: application/dicom\r\n\r\n" + b"\0" * (MAX_PART + 1)
         + b"\r\n--bb--", 413),                              # a part over the limit
    ]
    for content_type, body, status in cases:
        r = s.post(archive.url + "/studies", data=body, headers={"Content-Type": content_type})
        assert r.status_code == status, (content_type, body[:40], r.status_code, r.text)
    assert instance_count(archive) == before
    # a SOP Instance UID with path characters: refused per instance (409)
    evil = pydicom.dcmread(BytesIO(f))
    evil.SOPInstanceUID = "../../../etc/passwd"
    evil.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    r = s.post(archive.url + "/studies", headers={"Content-Type": ct},
               data=b"--bb\r\nContent-Type: application/dicom\r\n\r\n" + encoded(evil) + b"\r\n--bb--")
    assert r.status_code == 409, r.text
    assert r.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]
    assert instance_count(archive) == before
    for path in ("/studies/..%2F..%2Fetc%2Fpasswd", "/studies/1.2.3/series/../../x",
                 "/studies/1.2.3%2F..%2F4/metadata"):
        r = s.get(archive.url + path)
        assert 400 <= r.status_code < 500, (path, r.status_code)
    r = s.get(archive.url + "/studies/1.2.3/rendered")
    assert r.status_code == 501
    assert not list((archive.root / "web-spool").iterdir())
    # and the server still serves
    assert s.get(archive.url + "/studies").status_code == 200


def test_tenant_cli(archive, tmp_path):
    p = obscura("tenant", "list", "--config", archive.config)
    assert p.returncode == 0
    names = [line.split("\t")[2] for line in p.stdout.splitlines()]
    assert names == ["Site A", "Site B"]
    # a separate archive: create, refuse to shred unconfirmed, shred with --yes
    make_key(tmp_path / "m.key")
    args = ["--data-dir", tmp_path / "a", "--master-key-file", tmp_path / "m.key"]
    assert obscura("tenant", "create", "X", *args).returncode == 0
    p = subprocess.run([str(BINARY), "tenant", "shred", "X",
                        *map(str, args)], input="nope\n", capture_output=True, text=True)
    assert p.returncode != 0 and "not confirmed" in p.stderr
    assert obscura("tenant", "shred", "X", "--yes", *args).returncode == 0
    assert obscura("tenant", "list", *args).stdout == ""
    (tmp_path / "m.key").chmod(0o644)
    p = obscura("tenant", "list", *args)
    assert p.returncode == 2 and "readable by others" in p.stderr


@pytest.mark.skipif(not Path("/usr/bin/storescu").is_file(),
                    reason="DCMTK storescu not installed (apt-get install dcmtk)")
def test_dimse_peer_delivers_into_the_archive(archive):
    """A route into the archive: C-STORE from a DIMSE peer, then QIDO and
    WADO find the same instances under the route's tenant (stored once)."""
    files = study_files()
    proc = storescu(archive.dimse_port, files)
    assert proc.returncode == 0, proc.stderr
    archive.gw.wait_idle(["archive-b"])
    assert archive.gw.counts("archive-b")["done"] == len(files)
    client = archive.client("site-b")
    for f in files[:4]:
        ds = pydicom.dcmread(f)
        found = client.search_for_instances(search_filters={"SOPInstanceUID": ds.SOPInstanceUID})
        assert len(found) == 1
        got = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        assert got.PixelData == ds.PixelData and got.PatientName == ds.PatientName
    # sent again: acknowledged, stored once
    assert storescu(archive.dimse_port, files[:2]).returncode == 0
    uid = pydicom.dcmread(files[0]).SOPInstanceUID
    assert len(client.search_for_instances(search_filters={"SOPInstanceUID": uid})) == 1
