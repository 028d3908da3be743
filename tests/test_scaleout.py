"""The archive's scale-out backends with real servers: a throwaway
PostgreSQL cluster for the index and moto's S3 server for the objects,
shared by two `obscura serve` processes. STOW to one, QIDO and WADO from
the other (byte-exact, with ranged reads for frames and metadata); the
same instances stored through both at once are stored once; the database
dump, every object in the bucket and every byte under the data folders
hold none of the devset's planted identities; `tenant shred` removes one
tenant's rows, key and objects and leaves the other byte-exact."""
import threading
from io import BytesIO

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.web import _Transaction
from pydicom.data import get_testdata_file

from conftest import obscura
from planted import devset_files, devset_needles, found_in
from scaleout_fixtures import ServePair, postgres_server, s3_server

TENANTS = {"site-a": "Site A", "site-b": "Site B"}


class ScaleOut(ServePair):
    """Two `obscura serve` processes on one PostgreSQL database and one
    bucket, a tenant per principal."""

    def __init__(self, root, pg, s3):
        self.s3 = s3
        creds = root / "s3-credentials"
        creds.write_text("".join(f"{k}={s3.env[k]}\n"
                                 for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")))
        creds.chmod(0o600)
        super().__init__(root, pg, TENANTS, archive_dir=lambda n: f"archive-{n}", archive_extra=f"""
[archive.object_store]
endpoint = "{s3.endpoint}"
bucket = "{s3.bucket}"
region = "{s3.region}"
prefix = "archive"
credentials_file = "s3-credentials"
""")

    def client(self, server, principal):
        return DICOMwebClient(self.urls[server], session=self.session(principal))


@pytest.fixture(scope="module")
def scaleout(tmp_path_factory):
    with postgres_server() as pg, s3_server() as s3:
        s = ScaleOut(tmp_path_factory.mktemp("scaleout"), pg, s3)
        try:
            yield s
        finally:
            s.stop()


def stow(client, blobs):
    """STOW exact bytes; every instance referenced, none failed."""
    url = client._get_studies_url(_Transaction.STORE, None)
    result = client._http_post_multipart_application_dicom(url, blobs)
    assert "FailedSOPSequence" not in result, result
    assert len(result.ReferencedSOPSequence) == len(blobs)


def retrieve_raw(client, study, series, sop):
    """An instance's bytes exactly as the server sent them."""
    url = f"{client.base_url}/studies/{study}/series/{series}/instances/{sop}"
    r = client._http_get(url, headers={"Accept": "application/dicom"})
    assert r.status_code == 200
    return r.content


def uids(path):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def encoded(ds):
    with BytesIO() as b:
        pydicom.dcmwrite(b, ds)
        return b.getvalue()


def rows(pg, sql):
    return int(pg.psql(pg.database, sql).strip())


def test_stow_to_one_server_read_from_the_other(scaleout):
    files = devset_files()
    for principal in TENANTS:
        one = scaleout.client(0, principal)
        for i in range(0, len(files), 16):
            stow(one, [f.read_bytes() for f in files[i:i + 16]])
    two = scaleout.client(1, "site-a")
    for f in files:
        assert retrieve_raw(two, *uids(f)) == f.read_bytes(), f.name
    # QIDO on the other server: every study, by name, date range, modality
    studies = two.search_for_studies()
    assert len(studies) == len({uids(f)[0] for f in files})
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    by_name = two.search_for_studies(search_filters={"PatientName": str(first.PatientName)})
    assert first.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in by_name}
    fuzzy = two.search_for_studies(
        search_filters={"PatientName": str(first.PatientName)[:3].lower()}, fuzzymatching=True)
    assert first.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in fuzzy}
    wild = two.search_for_studies(search_filters={"PatientName": str(first.PatientName)[:3] + "*"})
    assert first.StudyInstanceUID in {s["0020000D"]["Value"][0] for s in wild}
    dated = [s for s in studies if s.get("00080020", {}).get("Value")]
    ranged = two.search_for_studies(search_filters={"StudyDate": "19000101-21001231"})
    assert len(ranged) == len(dated) > 0
    series = two.search_for_series(first.StudyInstanceUID)
    assert first.SeriesInstanceUID in {s["0020000E"]["Value"][0] for s in series}
    assert len(scaleout.client(1, "site-b").search_for_studies()) == len(studies)
    # the rows are in PostgreSQL: one instance row per file and tenant
    assert rows(scaleout.pg, "SELECT count(*) FROM obscura_vault.instances") == 2 * len(files)
    # and the objects in the bucket, one per instance row
    assert len(scaleout.s3.objects()) == 2 * len(files)


def test_pydicom_files_frames_and_metadata_across_servers(scaleout):
    one, two = scaleout.client(0, "site-a"), scaleout.client(1, "site-a")
    names = ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "rtplan.dcm",
             "SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm", "US1_J2KR.dcm", "liver.dcm")
    for name in names:
        ds = pydicom.dcmread(get_testdata_file(name))
        # a fresh UID: several of these files share theirs with others
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        blob = encoded(ds)
        stow(one, [blob])
        ids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        assert retrieve_raw(two, *ids) == blob, name
        meta = two.retrieve_instance_metadata(*ids)
        assert meta["00080018"]["Value"][0] == ids[2]
        if "PixelData" in ds and not ds.file_meta.TransferSyntaxUID.is_compressed \
                and ds.BitsAllocated >= 8:  # 1-bit frames start mid-byte: no slices of the value
            # frames by ranged reads of the object, last first
            n = int(ds.get("NumberOfFrames", 1) or 1)
            size = len(ds.PixelData) // n
            want = [ds.PixelData[i * size:(i + 1) * size] for i in range(n)]
            got = two.retrieve_instance_frames(*ids, frame_numbers=list(range(n, 0, -1)))
            assert got == want[::-1], name


def test_an_object_larger_than_one_part_is_a_multipart_upload(scaleout):
    """emri_small's frames repeated to 20 MiB: uploaded in 8 MiB parts,
    read back whole and by frame (ranged GETs deep into the object)."""
    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    n = int(ds.NumberOfFrames)
    repeat = -(-20 * 2**20 // len(ds.PixelData))
    ds.PixelData = ds.PixelData * repeat
    ds.NumberOfFrames = n * repeat
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    blob = encoded(ds)
    assert len(blob) > 2 * 8 * 2**20
    stow(scaleout.client(0, "site-a"), [blob])
    two = scaleout.client(1, "site-a")
    ids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
    assert retrieve_raw(two, *ids) == blob
    size = len(ds.PixelData) // int(ds.NumberOfFrames)
    last = int(ds.NumberOfFrames)
    assert two.retrieve_instance_frames(*ids, frame_numbers=[last, 1]) == [
        ds.PixelData[(last - 1) * size:], ds.PixelData[:size]]


def test_one_instance_stored_through_both_servers_at_once_is_stored_once(scaleout):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    blobs = []
    for _ in range(12):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        blobs.append(encoded(ds))
    before = rows(scaleout.pg, "SELECT count(*) FROM obscura_vault.instances")
    objects_before = len(scaleout.s3.objects())
    errors = []

    def send(server):
        try:
            for _ in range(3):
                stow(scaleout.client(server, "site-a"), blobs)
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=send, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert rows(scaleout.pg, "SELECT count(*) FROM obscura_vault.instances") == before + len(blobs)
    # every loser's object was deleted: one object per instance
    assert len(scaleout.s3.objects()) == objects_before + len(blobs)
    found = scaleout.client(1, "site-a").search_for_instances(str(ds.StudyInstanceUID))
    assert len(found) == len(blobs)


def test_nothing_identifying_in_the_dump_the_bucket_or_the_data_folders(scaleout):
    needles = devset_needles()
    dump = scaleout.pg.dump()
    assert b"obscura_vault.instances" in dump and b"Site A" in dump
    objects = scaleout.s3.objects()
    files = devset_files()
    assert sum(map(len, objects.values())) > 2 * sum(f.stat().st_size for f in files)
    assert all(k.startswith("archive/") for k in objects)
    local = [p.read_bytes() for p in scaleout.root.rglob("*") if p.is_file()]
    blobs = [dump, *(k.encode() for k in objects), *objects.values(), *local]
    found = found_in(blobs, needles)
    assert not found, f"{len(found)} identifying values at rest"
    # the server logs say where the archive is, and nothing of a patient
    assert "index in PostgreSQL" in scaleout.servers[1].log_text()


def test_shred_on_the_scale_out_backend(scaleout):
    files = devset_files()
    pg = scaleout.pg
    tenant_b = pg.psql(pg.database, "SELECT id FROM obscura_vault.tenants WHERE name = 'Site B'").strip()
    wrapped_b = pg.psql(pg.database, "SELECT encode(wrapped_key, 'hex') FROM obscura_vault.tenants "
                        "WHERE name = 'Site B'").strip()
    assert len(tenant_b) == 32 and wrapped_b
    assert any(k.startswith(f"archive/{tenant_b}/") for k in scaleout.s3.objects())
    p = obscura("tenant", "shred", "Site B", "--yes", "--config", scaleout.configs[1])
    assert p.returncode == 0, p.stderr
    listed = obscura("tenant", "list", "--config", scaleout.configs[0])
    assert [line.split("\t")[2] for line in listed.stdout.splitlines()] == ["Site A"]
    # its rows, key and objects are gone
    for table in ("studies", "series", "instances"):
        assert rows(pg, f"SELECT count(*) FROM obscura_vault.{table} t "
                        "WHERE t.tenant NOT IN (SELECT pk FROM obscura_vault.tenants)") == 0
    assert rows(pg, "SELECT count(*) FROM obscura_vault.instances") >= len(files)
    dump = pg.dump()
    assert tenant_b.encode() not in dump
    assert bytes.fromhex(wrapped_b) not in dump and wrapped_b.encode() not in dump
    assert not any(k.startswith(f"archive/{tenant_b}/") for k in scaleout.s3.objects())
    # unreadable through either server, though they had its key in memory
    for server in (0, 1):
        b = scaleout.client(server, "site-b")
        r = b._session.get(f"{b.base_url}/studies")
        assert r.status_code == 204 or (r.status_code == 200 and r.json() == []) \
            or r.status_code in (401, 404), r.status_code
        url = "{}/studies/{}/series/{}/instances/{}".format(b.base_url, *uids(files[0]))
        assert b._session.get(url, headers={"Accept": "application/dicom"}).status_code in (401, 404)
    # the other tenant is untouched, byte for byte, from both servers
    for server in (0, 1):
        a = scaleout.client(server, "site-a")
        for f in files[::4]:
            assert retrieve_raw(a, *uids(f)) == f.read_bytes(), f.name

