"""De-identified views and write-back (issue 11, docs/access.md): the
devset stored by the clinic's PACS; an AI vendor (an OIDC JWT signed here)
holds a `deidentified` grant on all of its studies but one. Every route the
vendor can call — QIDO at each level, metadata, instances, frames, bulk
data, rendered, thumbnails, STOW responses and error answers — is searched
for every planted identity value and every original UID of the devset
(tests/planted.py): none may appear. Then the vendor makes an AI result
with pydicom on the pseudonymous UIDs it sees and STOWs it: the clinic
finds it in the original study, with the original patient, referencing
the original instance and frame of reference, marked with who produced
it; writes outside the grant are refused per instance, and the vendor sees
nothing of another tenant or study."""
import collections
import hashlib
import json
import re

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from conftest import obscura
from planted import devset_files, devset_needles, found_in
from access_fixtures import VENDOR, Site, multipart
from test_serve import study_files

JSON = {"Accept": "application/dicom+json"}
DICOM = {"Accept": 'multipart/related; type="application/dicom"'}
STANDARD_UID = "1.2.840.10008."


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("views"))
    owner = DICOMwebClient(s.url, session=s.session(s.pacs_token, cert=None))
    files = devset_files()
    owner.store_instances([pydicom.dcmread(str(f)) for f in files])
    heads = [pydicom.dcmread(str(f), stop_before_pixels=True) for f in files]
    studies = sorted({str(h.StudyInstanceUID) for h in heads})
    assert len(studies) >= 3
    s.heads = heads
    s.hidden = studies[0]
    s.granted = studies[1:]
    s.grant("add", "--principal", f"idp:{VENDOR}", "--tenant", "Clinic",
            *[a for st in s.granted for a in ("--study", st)],
            "--actions", "search,read,write", "--view", "deidentified", "--expires", "1h")
    # another tenant's studies, stored by a writer of its own
    s.grant("add", "--principal", "idp:other-pacs", "--tenant", "Other", "--whole-tenant",
            "--actions", "search,read,write", "--expires", "1h")
    other = DICOMwebClient(s.url, session=s.session(s.token(sub="other-pacs")))
    other.store_instances([pydicom.dcmread(str(f)) for f in study_files()])
    s.other_uids = {str(pydicom.dcmread(str(f), stop_before_pixels=True).SOPInstanceUID)
                    for f in study_files()}
    yield s
    s.gw.stop()


class Crawl:
    """Every answer a client got: status line, headers and body. By
    default the vendor (its JWT) at the archive's root; else `session` at
    `base` (a share link)."""

    def __init__(self, site, session=None, base=None):
        self.base = base or site.url
        self.s = session or site.session(site.token())
        self.blobs = []
        self.requests = 0

    def get(self, path, **kw):
        url = path if path.startswith("http") else self.base + path
        r = self.s.get(url, **kw)
        self.requests += 1
        head = f"{r.status_code} {r.reason}\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        self.blobs += [head.encode(), r.content]
        return r


def values(item, tag):
    return (item.get(tag) or {}).get("Value") or []


def bulk_uris(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "BulkDataURI":
                out.append(v)
            else:
                bulk_uris(v, out)
    elif isinstance(node, list):
        for v in node:
            bulk_uris(v, out)


def test_no_route_shows_an_identity_or_an_original_uid(site):
    c = Crawl(site)
    studies = c.get("/studies", params={"includefield": "all"}, headers=JSON).json()
    shown = sorted(values(x, "0020000D")[0] for x in studies)
    assert len(shown) == len(site.granted)
    assert all(u.startswith("2.25.") for u in shown), shown
    names = {values(x, "00100010")[0]["Alphabetic"] for x in studies if values(x, "00100010")}
    assert names and all(n.startswith("OBS-") for n in names), names
    for level in ("series", "instances"):
        assert c.get(f"/{level}", params={"includefield": "all"}, headers=JSON).status_code == 200
    instances = 0
    for st in shown:
        assert c.get(f"/studies/{st}/series", headers=JSON).status_code == 200
        insts = c.get(f"/studies/{st}/instances", params={"includefield": "all"}, headers=JSON).json()
        instances += len(insts)
        meta = c.get(f"/studies/{st}/metadata", headers=JSON)
        assert meta.status_code == 200, meta.text
        retrieved = c.get(f"/studies/{st}", headers=DICOM)
        assert retrieved.status_code in (200, 404)  # 404: every instance withheld
        c.get(f"/studies/{st}/thumbnail")
        uris = []
        bulk_uris(meta.json(), uris)
        for u in uris[:4]:
            assert c.get(u).status_code in (200, 404, 501), u  # 404: pixels withheld
        by_series = {}
        for i in insts:
            by_series.setdefault(values(i, "0020000E")[0], []).append(values(i, "00080018")[0])
        for se, sops in by_series.items():
            assert c.get(f"/studies/{st}/series/{se}/metadata", headers=JSON).status_code == 200
            c.get(f"/studies/{st}/series/{se}/instances", headers=JSON)
            c.get(f"/studies/{st}/series/{se}/thumbnail")
            sop = sops[0]
            base = f"/studies/{st}/series/{se}/instances/{sop}"
            one = c.get(base, headers=DICOM)
            assert one.status_code in (200, 404), one.status_code  # 404: pixels withheld (burned in)
            c.get(base + "/metadata", headers=JSON)
            c.get(base + "/frames/1")
            c.get(base + "/rendered", headers={"Accept": "image/png"})
    assert instances == sum(str(h.StudyInstanceUID) in site.granted for h in site.heads)
    # error paths: originals are unknown under a view, identity is not searchable
    originals = sorted({str(h.StudyInstanceUID) for h in site.heads})
    for st in originals:
        r = c.get(f"/studies/{st}/metadata", headers=JSON)
        assert (r.status_code, r.text) == (404, "not found\n")
        assert c.get("/studies", params={"StudyInstanceUID": st}, headers=JSON).json() == []
    h = site.heads[0]
    assert c.get("/studies", params={"PatientName": str(h.PatientName)}).status_code == 400
    assert c.get("/studies", params={"PatientID": str(h.PatientID)}).status_code == 400
    assert c.get(f"/studies/{shown[0]}/series/{h.SeriesInstanceUID}/metadata").status_code == 404
    leaked = found_in(c.blobs, devset_needles())
    print(f"\n{c.requests} requests under the de-identified view, "
          f"{sum(map(len, c.blobs))} bytes searched")
    assert leaked == [], leaked[:10]


def test_dicomweb_client_reads_the_view(site):
    """dicomweb-client reads studies and series; one whose every instance
    is withheld (pixels that may carry burned-in text) is 404, answered
    exactly like a study that does not exist, not an empty multipart."""
    s = site.session(site.token())
    vendor = DICOMwebClient(site.url, session=s)
    missing = s.get(f"{site.url}/studies/2.25.12345678901234567890", headers=DICOM)
    assert missing.status_code == 404
    shown, withheld = [], []
    for st in sorted(values(x, "0020000D")[0] for x in vendor.search_for_studies()):
        # each instance alone: 200, or 404 when withheld
        alone = {}
        for i in vendor.search_for_instances(study_instance_uid=st):
            se, sop = values(i, "0020000E")[0], values(i, "00080018")[0]
            r = s.get(f"{site.url}/studies/{st}/series/{se}/instances/{sop}", headers=DICOM)
            assert r.status_code in (200, 404), r.status_code
            alone.setdefault(se, {})[sop] = r.status_code == 200
        for se, sops in [(None, {k: v for x in alone.values() for k, v in x.items()}), *alone.items()]:
            fetch = (lambda: vendor.retrieve_study(st)) if se is None else (lambda: vendor.retrieve_series(st, se))
            if any(sops.values()):
                dss = fetch()
                assert sorted(str(d.SOPInstanceUID) for d in dss) == sorted(k for k, ok in sops.items() if ok)
                if se is None:
                    shown.append((st, dss))
                continue
            with pytest.raises(requests.HTTPError) as e:
                fetch()
            r = e.value.response
            assert (r.status_code, r.content) == (404, missing.content), (se, r.status_code)
            assert {k: v for k, v in r.headers.items() if k.lower() != "date"} == \
                {k: v for k, v in missing.headers.items() if k.lower() != "date"}
            if se is None:
                withheld.append(st)
    assert shown and withheld, (len(shown), len(withheld))
    st, dss = shown[0]
    assert dss and all(str(d.StudyInstanceUID) == st for d in dss)
    assert all(str(d.PatientName).startswith("OBS-") for d in dss)
    assert all(d.PatientIdentityRemoved == "YES" for d in dss)
    meta = vendor.retrieve_study_metadata(st)
    assert {values(m, "00080018")[0] for m in meta} >= {str(d.SOPInstanceUID) for d in dss}


def json_uids(node, out):
    """Every value of a UI attribute in DICOM JSON, at any depth."""
    if isinstance(node, dict):
        if node.get("vr") == "UI":
            out += [v for v in node.get("Value") or [] if v]
        for v in node.values():
            json_uids(v, out)
    elif isinstance(node, list):
        for v in node:
            json_uids(v, out)
    return out


def dataset_uids(ds):
    """Every value of a UI attribute in a pydicom data set, meta included."""
    elems = [*ds.file_meta.iterall()] if hasattr(ds, "file_meta") else []
    out = []
    for e in [*elems, *ds.iterall()]:
        if e.VR == "UI" and e.value:
            out += [str(v) for v in (e.value if e.VM > 1 else [e.value])]
    return out


def test_a_share_link_through_a_deidentified_view(site):
    """`obscura share --view deidentified`: the link, opened with plain
    requests (no credential) and by dicomweb-client, answers QIDO,
    metadata, instances, frames, bulk data and rendered with pseudonymous
    UIDs only and no planted identity value of the devset."""
    # a CT or MR study in a little-endian native syntax (their frames are served)
    native = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
    study = next(st for st in site.granted if any(
        str(h.StudyInstanceUID) == st and h.Modality in ("CT", "MR") and h.file_meta.TransferSyntaxUID in native
        for h in site.heads))
    originals = {str(h.StudyInstanceUID) for h in site.heads} | {str(h.SeriesInstanceUID) for h in site.heads} \
        | {str(h.SOPInstanceUID) for h in site.heads}
    p = obscura("share", study, "--tenant", "Clinic", "--expires", "1h", "--view", "deidentified",
                "--config", site.config)
    assert p.returncode == 0, p.stderr
    link = p.stdout.strip()
    assert link.startswith(site.url + "/share/g-"), link
    anon = requests.Session()
    anon.trust_env = False
    anon.verify = str(site.pki / "ca.pem")
    c = Crawl(site, session=anon, base=link)
    answers = []
    studies = c.get("/studies", params={"includefield": "all"}, headers=JSON).json()
    assert len(studies) == 1
    st = values(studies[0], "0020000D")[0]
    assert st.startswith("2.25.") and st != study
    insts = c.get(f"/studies/{st}/instances", params={"includefield": "all"}, headers=JSON).json()
    assert len(insts) == sum(str(h.StudyInstanceUID) == study for h in site.heads)
    answers += [studies, insts, c.get(f"/studies/{st}/series", headers=JSON).json(),
                c.get("/instances", headers=JSON).json()]
    meta = c.get(f"/studies/{st}/metadata", headers=JSON)
    assert meta.status_code == 200, meta.text
    answers.append(meta.json())
    uris = []
    bulk_uris(meta.json(), uris)
    assert uris and all(u.startswith(link + "/") for u in uris), uris[:3]
    for u in uris[:4]:
        assert c.get(u).status_code == 200, u
    retrieved, pixels = 0, collections.Counter()
    for i in insts:
        se, sop = values(i, "0020000E")[0], values(i, "00080018")[0]
        base = f"/studies/{st}/series/{se}/instances/{sop}"
        answers.append(c.get(base + "/metadata", headers=JSON).json())
        r = c.get(base, headers=DICOM)
        assert r.status_code == 200, r.status_code
        retrieved += 1
        # 501: frames not served (Bits Allocated not 1 or a multiple of 8;
        # YBR_FULL_422 in big-endian or deflated pixel data)
        pixels["frames", c.get(base + "/frames/1").status_code] += 1
        pixels["rendered", c.get(base + "/rendered", headers={"Accept": "image/png"}).status_code] += 1
    assert pixels["frames", 200] and pixels["rendered", 200], pixels
    assert set(pixels) <= {(k, s) for k in ("frames", "rendered") for s in (200, 501)}, pixels
    assert c.get(f"/studies/{st}", headers=DICOM).status_code == 200
    assert c.get(f"/studies/{st}/thumbnail").status_code == 200
    # by dicomweb-client, the link as its DICOMweb root
    client = DICOMwebClient(link, session=anon)
    found = client.search_for_studies()
    assert [values(x, "0020000D")[0] for x in found] == [st]
    dss = client.retrieve_study(st)
    assert len(dss) == len(insts)
    assert all(str(d.PatientName).startswith("OBS-") and d.PatientIdentityRemoved == "YES" for d in dss)
    one = dss[0]
    rendered = client.retrieve_instance_rendered(st, str(one.SeriesInstanceUID), str(one.SOPInstanceUID),
                                                 media_types=("image/png",))
    answers += [found, client.retrieve_study_metadata(st)]
    c.blobs += [d.PixelData for d in dss if "PixelData" in d] + [rendered]
    c.blobs += [str(d).encode() for d in dss]
    # only pseudonymous UIDs (or the standard's own), none an original
    uids = [u for a in answers for u in json_uids(a, [])] + [u for d in dss for u in dataset_uids(d)]
    assert len(uids) > 3 * len(insts)
    own = [u for u in uids if not u.startswith(STANDARD_UID)]
    assert own and all(u.startswith("2.25.") for u in own), sorted(set(own))[:5]
    assert not set(uids) & originals
    # the original study is not there under the link
    assert c.get(f"/studies/{study}/metadata", headers=JSON).status_code == 404
    leaked = found_in(c.blobs, devset_needles())
    print(f"\nshare link through a de-identified view: {c.requests} requests, {retrieved} instances, "
          f"{len(uids)} UIDs checked")
    assert leaked == [], leaked[:10]


def ai_result(source):
    """A secondary capture an AI product would make from `source` (a
    de-identified instance): the source's study, patient and frame of
    reference as it saw them, a new series, a reference to the source."""
    ds = Dataset()
    ds.preamble = b"\0" * 128
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for kw in ("StudyInstanceUID", "PatientName", "PatientID", "StudyDate", "AccessionNumber",
               "FrameOfReferenceUID"):
        if kw in source:
            setattr(ds, kw, source.data_element(kw).value)
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesDescription = "AI heat map"
    ds.BurnedInAnnotation = "NO"
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    ds.SourceImageSequence = [ref]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.arange(256, dtype=np.uint8).tobytes()
    return ds


def test_write_back_lands_in_the_original_study(site):
    s = site.session(site.token())
    vendor = DICOMwebClient(site.url, session=s)
    # the clinic's instance behind a de-identified one: the one with its pixels
    by_pixels = {}
    for f in devset_files():
        ds = pydicom.dcmread(str(f))
        if str(ds.StudyInstanceUID) in site.granted and "PixelData" in ds:
            by_pixels.setdefault(hashlib.sha256(ds.PixelData).digest(), []).append(ds)
    source = original = None
    for inst in vendor.search_for_instances():
        st, se, sop = (values(inst, t)[0] for t in ("0020000D", "0020000E", "00080018"))
        if s.get(f"{site.url}/studies/{st}/series/{se}/instances/{sop}/metadata").status_code != 200:
            continue
        try:
            seen = vendor.retrieve_instance(st, se, sop)
        except requests.HTTPError:
            continue  # withheld (pixels may carry burned-in text)
        match = by_pixels.get(hashlib.sha256(seen.get("PixelData", b"")).digest(), [])
        if len(match) == 1:
            source, original = seen, match[0]
            break
    assert source is not None, "no de-identified instance with pixels of its own"
    assert source.SOPInstanceUID != original.SOPInstanceUID
    result = ai_result(source)
    answer = vendor.store_instances([result])
    assert "ReferencedSOPSequence" in answer and "FailedSOPSequence" not in answer, answer
    assert str(source.StudyInstanceUID) in str(answer.RetrieveURL), "the study as the vendor knows it"
    # the clinic finds it in the original study, with the original patient
    owner = DICOMwebClient(site.url, session=site.session(site.pacs_token, cert=None))
    found = owner.search_for_instances(study_instance_uid=str(original.StudyInstanceUID),
                                       search_filters={"SOPInstanceUID": result.SOPInstanceUID})
    assert len(found) == 1, found
    back = owner.retrieve_instance(str(original.StudyInstanceUID), result.SeriesInstanceUID,
                                   result.SOPInstanceUID)
    assert back.StudyInstanceUID == original.StudyInstanceUID
    assert back.PatientName == original.PatientName and back.PatientID == original.PatientID
    assert back.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    if "FrameOfReferenceUID" in original:
        assert back.FrameOfReferenceUID == original.FrameOfReferenceUID
    assert f"idp:{VENDOR}" in back.ContributingEquipmentSequence[-1].ContributionDescription
    assert "PatientIdentityRemoved" not in back
    assert back.PixelData == result.PixelData
    # outside the grant: the hidden study by its UID, a made-up pseudonym, another tenant's study
    for study in (site.hidden, "2.25.12345678901234567890", next(iter(
            {str(pydicom.dcmread(str(f), stop_before_pixels=True).StudyInstanceUID)
             for f in study_files()}))):
        bad = ai_result(source)
        bad.StudyInstanceUID = study
        r = s.post(f"{site.url}/studies", data=multipart(bad),
                   headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=xyz',
                            **JSON})
        assert r.status_code == 409, r.text
        assert r.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0x0124]
        assert study not in r.text
    # the vendor sees its result through its view, and nothing of the other tenant or study
    everything = s.get(f"{site.url}/instances", params={"includefield": "all", "limit": 1000}).text
    assert len(json.loads(everything)) == \
        sum(str(h.StudyInstanceUID) in site.granted for h in site.heads) + 1
    assert not any(u in everything for u in site.other_uids)
    assert site.hidden not in everything and result.SOPInstanceUID not in everything


def test_grants_views_are_unlinkable(site):
    site.grant("add", "--principal", "idp:research", "--tenant", "Clinic",
               *[a for st in site.granted for a in ("--study", st)],
               "--actions", "search", "--view", "deidentified", "--expires", "1h")
    a = {values(x, "0020000D")[0] for x in site.session(site.token()).get(
        f"{site.url}/studies", headers=JSON).json()}
    b = {values(x, "0020000D")[0] for x in site.session(site.token(sub="research")).get(
        f"{site.url}/studies", headers=JSON).json()}
    assert len(a) == len(b) == len(site.granted) and not a & b
    assert all(re.fullmatch(r"2\.25\.\d+", u) for u in a | b)
    # a bad profile is refused when the grant is made
    p = __import__("conftest").obscura("grant", "add", "--principal", "idp:x", "--tenant", "Clinic",
                                       "--whole-tenant", "--actions", "read",
                                       "--view", "deidentified:basic+retain-uids",
                                       "--config", site.config)
    assert p.returncode != 0 and "retain-uids" in p.stderr
