"""Grants shared by several `obscura serve` processes through the archive's
PostgreSQL database (issue 11, docs/access.md): two servers on one
throwaway PostgreSQL cluster (their objects in one folder, as on a shared
mount; no `access.sqlite` anywhere). A grant made or
revoked with `obscura grant` against that database holds on both from the
next request on; label and query scopes and a daily quota are enforced on
both (the quota's count is shared); a share link made by `obscura share`
opens its one study read-only on either, and nothing else.

Revocation is measured, not assumed: a client keeps asking the second
server while the first's config revokes the grant; every request sent
after `obscura grant revoke` returned is denied, and the time from its
return to the first denial is printed."""
import hashlib
import threading
import time
from io import BytesIO

import pydicom
import pytest
import requests
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from conftest import obscura
from scaleout_fixtures import ServePair, postgres_server

TENANT = "Clinic"
PRINCIPALS = ("pacs", "vendor", "reader", "lab")


def instance(name, modality, accession, referring, date):
    """A real file of pydicom's test set, as a study of its own."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = modality
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = referring
    ds.StudyDate = date
    with BytesIO() as b:
        ds.save_as(b)
        return ds, b.getvalue()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with postgres_server() as pg:
        # `pacs` owns the tenant, the others have only grants; objects in
        # one folder, as on a shared mount
        p = ServePair(tmp_path_factory.mktemp("access-scaleout"), pg,
                      {"pacs": TENANT} | {p: None for p in PRINCIPALS if p != "pacs"})
        try:
            files = [instance("CT_small.dcm", "CT", "ACC-NORTH-1", "WELBY^MARCUS", "20240105"),
                     instance("MR_small.dcm", "MR", "ACC-NORTH-2", "KILDARE^JAMES", "20240320"),
                     instance("CT_small.dcm", "CT", "ACC-SOUTH-3", "CASEY^BEN", "20231111")]
            body = b"".join(b"--bb\r\nContent-Type: application/dicom\r\n\r\n" + blob + b"\r\n"
                            for _, blob in files) + b"--bb--\r\n"
            r = p.session("pacs").post(
                p.urls[0] + "/studies", data=body,
                headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=bb',
                         "Accept": "application/dicom+json"})
            assert r.status_code == 200, r.text
            p.studies = [str(ds.StudyInstanceUID) for ds, _ in files]
            p.datasets = [ds for ds, _ in files]
            yield p
        finally:
            p.stop()


def found(resp):
    assert resp.status_code == 200, resp.text
    return sorted(r["0020000D"]["Value"][0] for r in resp.json()) if resp.text else []


def test_revocation_on_one_server_denies_the_next_request_on_the_other(pair):
    gid = pair.cli("grant", "add", "--principal", "vendor", "--tenant", TENANT, "--whole-tenant",
                   "--actions", "search,read", "--expires", "1h")
    s = pair.session("vendor")
    # made through server one's config, in effect on both, kept in PostgreSQL
    assert pair.pg.psql(pair.pg.database, "SELECT principal FROM obscura_access.grants").split() \
        == ["vendor"]
    assert not list(pair.root.rglob("access.sqlite*"))
    for url in pair.urls:
        assert found(s.get(url + "/studies", headers={"Accept": "application/dicom+json"})) \
            == sorted(pair.studies)
    asked = []  # (sent, answered, status), from a client that keeps asking server two
    stop = threading.Event()

    def hammer():
        c = pair.session("vendor")
        while not stop.is_set():
            sent = time.monotonic()
            r = c.get(f"{pair.urls[1]}/studies/{pair.studies[0]}/series",
                      headers={"Accept": "application/dicom+json"})
            asked.append((sent, time.monotonic(), r.status_code))

    t = threading.Thread(target=hammer)
    t.start()
    try:
        time.sleep(0.5)
        start = time.monotonic()
        pair.cli("grant", "revoke", gid)
        revoked = time.monotonic()
        time.sleep(1.0)
    finally:
        stop.set()
        t.join()
    before = [a for a in asked if a[1] < start]
    after = [a for a in asked if a[0] > revoked]
    assert before and all(a[2] == 200 for a in before), before[-5:]
    assert after and all(a[2] == 403 for a in after), [a for a in after if a[2] != 403][:5]
    first_denied = min(a[1] for a in asked if a[2] == 403)
    print(f"\nrevocation: `obscura grant revoke` ran {1000 * (revoked - start):.0f} ms; "
          f"first denial on the other server {1000 * (first_denied - revoked):+.1f} ms after it returned; "
          f"{len(after)} requests after it, all 403; {len(before)} before, all 200")
    assert first_denied - revoked < 1.0
    assert "no live grant" in pair.servers[1].log_text()


def test_label_and_query_scopes_and_a_shared_quota(pair):
    north, mr_north, south = pair.studies
    json_ = {"Accept": "application/dicom+json"}
    # a label: the studies put into it, on both servers
    pair.cli("label", "add", "trial-7", "--tenant", TENANT, "--study", south, "--study", mr_north)
    assert pair.cli("label", "list", "--tenant", TENANT) == "trial-7\t2"
    pair.cli("grant", "add", "--principal", "reader", "--tenant", TENANT, "--label", "trial-7",
             "--actions", "search,read", "--expires", "1h")
    r = pair.session("reader")
    for url in pair.urls:
        assert found(r.get(url + "/studies", headers=json_)) == sorted([south, mr_north])
        assert r.get(f"{url}/studies/{north}/metadata", headers=json_).status_code == 404
    pair.cli("label", "remove", "trial-7", "--tenant", TENANT, "--study", south, server=1)
    assert found(r.get(pair.urls[0] + "/studies", headers=json_)) == [mr_north]
    assert r.get(f"{pair.urls[0]}/studies/{south}/metadata", headers=json_).status_code == 404
    # a query: CT studies of 2024 with an ACC-NORTH accession, and a quota of one study a day
    gid = pair.cli("grant", "add", "--principal", "lab", "--tenant", TENANT, "--modality", "CT",
                   "--study-date", "20240101-20241231", "--accession-prefix", "ACC-NORTH",
                   "--actions", "search,read", "--quota", "1", "--expires", "1h")
    assert "query AccessionNumber+ModalitiesInStudy+StudyDate" in pair.cli("grant", "list")
    lab = pair.session("lab")
    for url in pair.urls:
        assert found(lab.get(url + "/studies", headers=json_)) == [north]
        assert found(lab.get(url + "/studies?ModalitiesInStudy=MR", headers=json_)) == []
        for other in (mr_north, south):
            assert lab.get(f"{url}/studies/{other}/metadata", headers=json_).status_code == 404
    # the quota: one study read today, on either server; a second study would be 429
    assert lab.get(f"{pair.urls[0]}/studies/{north}/metadata", headers=json_).status_code == 200
    assert lab.get(f"{pair.urls[1]}/studies/{north}/metadata", headers=json_).status_code == 200
    pair.cli("grant", "revoke", gid)
    gid2 = pair.cli("grant", "add", "--principal", "lab", "--tenant", TENANT, "--modality", "CT",
                    "--actions", "read", "--quota", "1", "--expires", "1h")
    assert lab.get(f"{pair.urls[1]}/studies/{south}/metadata", headers=json_).status_code == 200
    r = lab.get(f"{pair.urls[0]}/studies/{north}/metadata", headers=json_)
    assert r.status_code == 429, r.text
    assert "quota-exceeded" in pair.servers[0].log_text()
    pair.cli("grant", "revoke", gid2)
    # no study UID nor query value in clear in the database
    dump = pair.pg.dump()
    for clear in [*pair.studies, "ACC-NORTH", "20240101-20241231"]:
        assert clear.encode() not in dump, clear


def test_a_share_link_opens_one_study_read_only_on_either_server(pair):
    north, mr_north, south = pair.studies
    p = obscura("share", north, "--tenant", TENANT, "--expires", "2h", "--config", pair.configs[0])
    assert p.returncode == 0, p.stderr
    url = p.stdout.strip()
    assert url.startswith(pair.urls[0] + "/share/g-"), url
    token = url.rsplit("/", 1)[1]
    gid = token.split(".")[0]
    anon = requests.Session()
    anon.trust_env = False
    json_ = {"Accept": "application/dicom+json"}
    for base in (url, url.replace(pair.urls[0], pair.urls[1])):
        assert found(anon.get(base + "/studies", headers=json_)) == [north]
        meta = anon.get(f"{base}/studies/{north}/metadata", headers=json_)
        assert meta.status_code == 200, meta.text
        # the URLs it writes stay under the link
        assert f"{base}/studies/{north}/series/" in meta.text
        inst = meta.json()[0]
        pixel = inst["7FE00010"]["BulkDataURI"]
        assert pixel.startswith(base + "/"), pixel
        assert anon.get(pixel).status_code == 200
        for other in (mr_north, south):
            assert anon.get(f"{base}/studies/{other}/metadata", headers=json_).status_code == 404
        r = anon.post(base + "/studies", data=b"--bb--\r\n",
                      headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=bb'})
        assert r.status_code == 403, r.text
    # a wrong secret, of the right shape, is refused
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    r = anon.get(f"{pair.urls[1]}/share/{wrong}/studies", headers=json_)
    assert r.status_code == 401
    assert "hashed secret" not in r.text
    # the database keeps the secret's hash only
    secret = token.split(".", 1)[1]
    assert secret.encode() not in pair.pg.dump()
    assert hashlib.sha256(secret.encode()).digest().hex() in \
        pair.pg.psql(pair.pg.database, f"SELECT encode(secret, 'hex') FROM obscura_access.grants WHERE id = '{gid}'")
    # revoked: refused at once, on both
    pair.cli("grant", "revoke", gid, server=1)
    for base in (url, url.replace(pair.urls[0], pair.urls[1])):
        assert anon.get(base + "/studies", headers=json_).status_code == 403
    # a link is one study of the tenant: a study of no tenant is refused
    p = obscura("share", "1.2.3.4.5", "--tenant", TENANT, "--expires", "2h", "--config", pair.configs[0])
    assert p.returncode != 0 and "no such study" in p.stderr
