"""The audit log's `view` marking end to end (docs/audit.md, issue 12): the
clinic's PACS stores pydicom's two real studies over STOW; an AI vendor
whose only grant is a de-identified view and a radiologist with an original
grant (OIDC JWTs signed here) each search, read metadata and retrieve a
study with dicomweb-client and requests against a running `obscura serve`.
The JSON-lines export (`obscura audit export`) marks every web-request
record of the vendor `view: deidentified` and none of the radiologist's or
the owner's, while both name the real patients and studies (IHE BALP), not
the pseudonyms the vendor saw. `obscura breach-report` classifies all the
vendor touched as de-identified only (no notice due) and the radiologist's
as demographics and instances, over exactly the patients of the files."""
import json
import shutil

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from access_fixtures import VENDOR, Site
from audit_fixtures import now, report, run, subject_hash
from test_serve import study_files

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl not installed (apt-get install openssl)")

READER = "radiologist"
MULTIPART = {"Accept": 'multipart/related; type="application/dicom"'}


def first_value(item, tag):
    return item[tag]["Value"][0]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Both principals' requests inside [t0, t1]; the gateway stopped, so
    the log ends under a final checkpoint."""
    s = Site(tmp_path_factory.mktemp("audit-views"))
    try:
        files = study_files()
        owner = DICOMwebClient(s.url, session=s.session(s.pacs_token, cert=None))
        owner.store_instances([pydicom.dcmread(str(f)) for f in files])
        s.heads = [pydicom.dcmread(str(f), stop_before_pixels=True) for f in files]
        s.studies = {str(h.StudyInstanceUID) for h in s.heads}
        assert len(s.studies) >= 2
        s.grant("add", "--principal", f"idp:{VENDOR}", "--tenant", "Clinic", "--whole-tenant",
                "--actions", "search,read", "--view", "deidentified", "--expires", "1h")
        s.grant("add", "--principal", f"idp:{READER}", "--tenant", "Clinic", "--whole-tenant",
                "--actions", "search,read", "--expires", "1h")
        s.t0 = now()
        s.shown = {}
        for sub in (VENDOR, READER):
            session = s.session(s.token(sub=sub))
            client = DICOMwebClient(s.url, session=session)
            studies = sorted(first_value(x, "0020000D") for x in client.search_for_studies())
            assert len(studies) == len(s.studies), studies
            for st in studies:
                assert client.retrieve_study_metadata(st)
                r = session.get(f"{s.url}/studies/{st}", headers=MULTIPART)
                assert r.status_code == 200, (sub, r.status_code)
            s.shown[sub] = studies
        s.t1 = now()
    finally:
        assert s.gw.stop() == 0, s.gw.log_text()[-3000:]
    yield s


def exported(site):
    p = run("audit", "export", site.root / "audit", "--format", "json")
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def web_requests_of(recs, name):
    return [r for r in recs if r["kind"] == "web-request" and r["actor"]["principal"].startswith(f"{name}@")]


def test_export_marks_only_the_deidentified_principal(site):
    recs = exported(site)
    vendor = web_requests_of(recs, f"idp:{VENDOR}")
    reader = web_requests_of(recs, f"idp:{READER}")
    owner = web_requests_of(recs, "pacs")
    per_principal = 1 + 2 * len(site.studies)  # QIDO, then metadata and retrieve of each study
    assert len(vendor) == len(reader) == per_principal, (len(vendor), len(reader))
    assert owner, "the owner's STOW is recorded"
    assert [r.get("view") for r in vendor] == ["deidentified"] * len(vendor)
    assert [r for r in reader + owner if "view" in r] == []

    # the vendor saw pseudonyms; the log names the real patients and studies
    assert site.shown[VENDOR] != site.shown[READER]
    assert all(u.startswith("2.25.") for u in site.shown[VENDOR])
    key = (site.root / "audit-site.key").read_text()
    want = {("patient", subject_hash(key, "patient", str(h.PatientID))) for h in site.heads} | \
           {("study", subject_hash(key, "study", str(h.StudyInstanceUID))) for h in site.heads}
    for recs_of in (vendor, reader):
        qido = next(r for r in recs_of if r["route"] == "web:GET /studies")
        assert {(x["kind"], x["hash"]) for x in qido["subjects"]} == want
        assert all(r["outcome"] == "success" and r["subjects"] for r in recs_of)


def test_breach_report_of_the_deidentified_principal_is_deidentified_only(site):
    want_patients = {str(h.PatientID) for h in site.heads}
    rep, rows = report(site.config, site.root / "report-vendor", f"idp:{VENDOR}", site.t0, site.t1)
    assert len(rep["events"]) == 1 + 2 * len(site.studies)
    assert {r["patient_id"] for r in rows} == want_patients
    assert {r["study_uid"] for r in rows} == site.studies
    assert {p["exposure"] for p in rep["patients"]} == {"deidentified-only"}
    assert {r["study_exposure"] for r in rows} == {"deidentified-only"}
    assert all(r["notify"] == "no" for r in rows) and rep["notices"] == []

    rep, rows = report(site.config, site.root / "report-reader", f"idp:{READER}", site.t0, site.t1)
    assert {r["patient_id"] for r in rows} == want_patients
    assert {p["exposure"] for p in rep["patients"]} == {"instances"}
    assert all(r["notify"] == "yes" for r in rows) and rep["notices"]
