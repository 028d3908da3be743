"""OHIF (headless Chromium, tests/ohif_fixtures.py) through a de-identified
view (issue 11), a vendor's grant and a share link made with `--view
deidentified`: the study list shows the pseudonymous patient, never the
name or ID; the viewer opens the study by its pseudonymous UID and draws
the image; no original UID is ever asked for."""
import hashlib
import json
import secrets

import pydicom
import requests
from pydicom.data import get_testdata_file

from conftest import obscura
from gateway_fixtures import Gateway, stow, web_archive
from ohif_fixtures import Viewer, assert_drawn, frames_and_thumbnail, needs_chromium, ohif_dist

pytestmark = needs_chromium


def shows_only_the_pseudonym(viewer, ds, pseudonym, pseudo_study):
    """Open the study list and then the study in VIEWER: the DOM shows
    PSEUDONYM and never DS's patient name or ID, the image is drawn from
    frames asked for by pseudonymous UIDs only."""
    name, pid = str(ds.PatientName), str(ds.PatientID)

    def hidden(text):
        return name not in text and name.split("^")[0] not in text and pid not in text

    state, _ = viewer.open("/", lambda st, log: pseudonym in st.get("text", ""), "worklist")
    assert pseudonym in state.get("text", ""), state.get("text", "")[:1500]
    assert hidden(state["text"]), state["text"][:1500]
    state, png = viewer.open(f"/viewer?StudyInstanceUIDs={pseudo_study}",
                             lambda st, log: st.get("canvases") and frames_and_thumbnail(log), "viewer")
    assert state.get("canvases"), f"no viewport canvas; DOM text: {state.get('text', '')[:1500]}"
    assert hidden(state["text"]), state["text"][:1500]
    assert ds.StudyInstanceUID not in json.dumps(viewer.site.log)
    assert any(p[2] == 200 and "/frames/" in p[0] for p in viewer.site.log), viewer.site.log
    assert_drawn(state, png, viewer.artifacts)


def pseudonymous_study(url, headers=()):
    """The one study a de-identified QIDO at URL answers: its pseudonymous
    Study Instance UID and patient name."""
    shown = requests.get(url + "/studies", headers={"Accept": "application/dicom+json", **dict(headers)}).json()
    assert len(shown) == 1
    return shown[0]["0020000D"]["Value"][0], shown[0]["00100010"]["Value"][0]["Alphabetic"]


def test_ohif_shows_a_vendor_the_pseudonym_never_the_patient(tmp_path):
    """A vendor with a de-identified grant (issue 11) opens the study list
    and the study in OHIF: the DOM shows the pseudonymous patient, never
    the patient's name or ID, and the image is drawn."""
    dist = ohif_dist()
    grant = ('plain = true\n[[web.principal]]\nname = "vendor"\n'
             '[[web.grant]]\nprincipal = "vendor"\ntenant = "Site D"\nwhole_tenant = true\n'
             'actions = ["search", "read"]\nview = "deidentified"\n')
    token, port, gw = web_archive(tmp_path, "pacs", "Site D", web=grant)
    upstream = f"http://127.0.0.1:{port}"
    vendor = secrets.token_urlsafe(32)
    gw.stop()
    with open(tmp_path / "web-tokens", "a") as f:
        f.write(f"{hashlib.sha256(vendor.encode()).hexdigest()} vendor\n")
    gw = Gateway(tmp_path / "serve.toml", port).start()
    v = None
    try:
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        stow(upstream, token, ds)
        pseudo_study, pseudonym = pseudonymous_study(upstream, {"Authorization": f"Bearer {vendor}"})
        assert pseudonym.startswith("OBS-") and pseudo_study != ds.StudyInstanceUID
        v = Viewer(dist, upstream, vendor)
        shows_only_the_pseudonym(v, ds, pseudonym, pseudo_study)
    finally:
        if v:
            v.close()
        gw.stop()


def test_ohif_opens_a_deidentified_share_link_showing_the_pseudonym(tmp_path):
    """`obscura share --view deidentified` (issue 11): the viewer is given
    the link as its data source and the site proxies it with no credential
    of its own; the study list and the viewer show the pseudonym, never
    the patient, and every request went through the link."""
    dist = ohif_dist()
    token, port, gw = web_archive(tmp_path, "pacs", "Site L", web="plain = true\n")
    upstream = f"http://127.0.0.1:{port}"
    v = None
    try:
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        stow(upstream, token, ds)
        p = obscura("share", ds.StudyInstanceUID, "--tenant", "Site L", "--expires", "1h",
                    "--view", "deidentified", "--config", gw.config)
        assert p.returncode == 0, p.stderr
        link = p.stdout.strip()
        assert link.startswith(upstream + "/share/"), link
        pseudo_study, pseudonym = pseudonymous_study(link)
        assert pseudonym != str(ds.PatientName) and pseudo_study != ds.StudyInstanceUID
        root = link[len(upstream):]
        v = Viewer(dist, upstream, None, root)
        shows_only_the_pseudonym(v, ds, pseudonym, pseudo_study)
        assert all(path.startswith(root + "/") for path, _, _ in v.site.log), v.site.log
    finally:
        if v:
            v.close()
        gw.stop()
