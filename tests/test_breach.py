"""The breach-impact report end to end: `obscura serve` with the archive and
the audit log on receives devset files (DCMTK storescu, forwarded to a
de-identifying folder and the archive) and DICOMweb STOW; then the principal
`viewer` searches one patient (demographics) and retrieves another's study
(instances) inside a window, and a third patient's after it. `obscura
breach-report` must name exactly the patients, studies and providers the
window's events touched (precision = recall = 1.0, computed from the files),
by exposure; the destination `out` exactly the patients it received
de-identified. `obscura audit verify-report` accepts the report and refuses
it altered; the HTML renders in headless Chromium; the JSON and HTML hold no
planted value; the CSV is mode 0600."""
import json
import shutil
import subprocess

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from audit_fixtures import now, report, run
from gateway_fixtures import Gateway, storescu
from planted import devset_needles
from test_audit import audited_archive, pick_files
from test_web import stow_raw

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None,
                                reason="DCMTK storescu not installed (apt-get install dcmtk)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def header(f):
    return pydicom.dcmread(f, stop_before_pixels=True)


def text(ds, kw):
    return str(ds.get(kw, "") or "").strip()


def precision_recall(got, want):
    got, want = set(got), set(want)
    hit = len(got & want)
    return (hit / len(got) if got else 1.0), (hit / len(want) if want else 1.0)


def test_breach_report_on_seeded_ground_truth(tmp_path):
    root = tmp_path
    config, port, web_port, token = audited_archive(root)
    dimse_files, stow_files = pick_files()
    stored = [header(f) for f in dimse_files + stow_files]
    ids = [text(ds, "PatientID") for ds in stored]
    a = next(ds for ds in (header(f) for f in stow_files) if text(ds, "PatientID"))
    b = next(ds for ds in (header(f) for f in dimse_files)
             if text(ds, "PatientID") and text(ds, "PatientID") != text(a, "PatientID"))
    c = next(ds for ds in (header(f) for f in dimse_files)
             if text(ds, "PatientID") not in ("", text(a, "PatientID"), text(b, "PatientID")))
    assert len(set(ids)) >= 3

    gw = Gateway(config, port).start()
    try:
        t_start = now()
        sent = storescu(port, dimse_files)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        gw.wait_idle(["out", "archive-a"])
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {token}"
        client = DICOMwebClient(f"http://127.0.0.1:{web_port}", session=s)
        assert "FailedSOPSequence" not in stow_raw(client, [f.read_bytes() for f in stow_files])

        t0 = now()
        found = client.search_for_studies(search_filters={"PatientID": text(a, "PatientID")})
        assert found
        got = client.retrieve_study(text(b, "StudyInstanceUID"))
        assert got
        t1 = now()
        client.retrieve_study(text(c, "StudyInstanceUID"))  # after the window
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]

    # ground truth, from the files: the QIDO answered every study of A's
    # patient; the retrieve, B's study
    demo = {text(ds, "StudyInstanceUID") for ds in stored if text(ds, "PatientID") == text(a, "PatientID")}
    want_studies = demo | {text(b, "StudyInstanceUID")}
    by_study = {text(ds, "StudyInstanceUID"): ds for ds in stored}
    want_patients = {text(by_study[u], "PatientID") for u in want_studies}
    want_providers = {text(by_study[u], "ReferringPhysicianName") for u in want_studies} - {""}

    out = root / "report"
    rep, rows = report(config, out, "viewer", t0, t1)
    assert all(r["patient_id"] for r in rows), "every patient resolved"
    for got, want in [({r["patient_id"] for r in rows}, want_patients),
                      ({r["study_uid"] for r in rows}, want_studies),
                      ({r["referring_physician"] for r in rows} - {""}, want_providers)]:
        assert precision_recall(got, want) == (1.0, 1.0), (got, want)
    assert len(rep["patients"]) == len(want_patients) and len(rep["studies"]) == len(want_studies)
    assert len(rep["providers"]) == len(want_providers)
    exposure = {r["study_uid"]: r["study_exposure"] for r in rows}
    assert exposure[text(b, "StudyInstanceUID")] == "instances"
    for u in demo - {text(b, "StudyInstanceUID")}:
        assert exposure[u] == "demographics"
    assert all(r["notify"] == "yes" for r in rows)
    assert sum(s["residents"] for s in rep["states"]) == len(want_patients)
    rules = [n["rule"] for n in rep["notices"]]
    assert "HIPAA 45 CFR 164.404" in rules and "GDPR art. 33" in rules
    assert not any(r.endswith("164.406") for r in rules), "no state has more than 500"
    hhs = next(n for n in rep["notices"] if n["rule"].endswith("164.408"))
    assert hhs["due"] == "2027-03-02T00:00:00.000Z"  # fewer than 500: year end + 60 days
    assert rep["log"]["unsigned_events"] == 0 and all(e.get("proof") is not None for e in rep["events"])
    assert {json.loads(e["line"])["route"] for e in rep["events"]} == {
        "web:GET /studies", "web:GET /studies/{study}"}

    for name in ("notify.csv", "breach-report.json", "breach-report.html"):
        assert (out / name).stat().st_mode & 0o777 == 0o600, name
    needles = devset_needles()
    for name in ("breach-report.json", "breach-report.html"):
        body = (out / name).read_text()
        hits = sorted(n for n in needles if n in body)
        assert not hits, (name, hits[:5])
    assert text(a, "PatientID") in (out / "notify.csv").read_text()

    # the destination `out` received de-identified copies of the DIMSE patients
    rep_out, rows_out = report(config, root / "report-out", "out", t_start, t1)
    want_out = {text(header(f), "PatientID") for f in dimse_files} - {""}
    assert precision_recall({r["patient_id"] for r in rows_out}, want_out) == (1.0, 1.0)
    assert {p["exposure"] for p in rep_out["patients"]} == {"deidentified-only"}
    assert rep_out["notices"] == [] and all(r["notify"] == "no" for r in rows_out)

    # offline check, then altered reports
    pub, log = root / "audit.pub", root / "audit"
    v = run("audit", "verify-report", out / "breach-report.json", "--public-key", pub, "--log", log)
    assert v.returncode == 0 and v.stdout.startswith("OK"), v.stdout + v.stderr
    assert "complete against the log" in v.stdout
    dropped = dict(rep, events=rep["events"][1:])
    bad_proof = json.loads(json.dumps(rep))
    bad_proof["events"][0]["proof"][0] = "00" * 32
    fewer = dict(rep, patients=rep["patients"][1:])
    for i, altered in enumerate([dropped, bad_proof, fewer]):
        f = root / f"altered-{i}.json"
        f.write_text(json.dumps(altered))
        v = run("audit", "verify-report", f, "--public-key", pub, "--log", log)
        assert v.returncode == 1 and "FAILED" in v.stdout, (i, v.stdout + v.stderr)

    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium): HTML not rendered")
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          (out / "breach-report.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'id="patients-total">{len(want_patients)}<' in dom.stdout
    assert f'id="studies-total">{len(want_studies)}<' in dom.stdout
    assert "HIPAA 45 CFR 164.404" in dom.stdout and "2027-03-02" in dom.stdout
