"""OHIF (headless Chromium) through a vendor's de-identified grant (issue
11): the study list shows the pseudonymous patient, never the name or ID;
the viewer opens the study by its pseudonymous UID and draws the image.
The viewer, its site and Chromium are tests/test_web_ohif.py's."""
import base64
import hashlib
import json
import secrets
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

import pydicom
import requests
from PIL import Image
from pydicom.data import get_testdata_file

from gateway_fixtures import Gateway, free_port, web_archive
from test_web_ohif import APP_CONFIG, Chromium, Site, make_handler, ohif_dist, pytestmark  # noqa: F401


def stow(upstream, token, ds):
    with BytesIO() as b:
        ds.save_as(b)
        blob = b.getvalue()
    s = requests.Session()
    s.trust_env = False
    s.headers["Authorization"] = f"Bearer {token}"
    r = s.post(upstream + "/studies", data=b"--bb\r\nContent-Type: application/dicom\r\n\r\n" + blob
               + b"\r\n--bb--\r\n",
               headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=bb'})
    assert r.status_code == 200, r.text


class Viewer:
    """OHIF served by a small site of ours in front of `obscura serve`
    (adding `token`), and one headless Chromium tab."""

    def __init__(self, dist, upstream, token):
        port = free_port()
        self.root = f"http://127.0.0.1:{port}"
        self.site = Site(("127.0.0.1", port), make_handler(
            dist, upstream, token, APP_CONFIG % {"root": f"{self.root}/dicom-web"}))
        self.site.log = []
        threading.Thread(target=self.site.serve_forever, daemon=True).start()
        self.artifacts = Path(tempfile.mkdtemp(prefix="obscura-ohif-"))
        self.browser = Chromium(self.artifacts / "profile")
        b = self.browser
        target = b.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = b.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        b.call("Page.enable", self.session)
        b.call("Runtime.enable", self.session)
        b.call("Emulation.setDeviceMetricsOverride", self.session, width=1280, height=900,
               deviceScaleFactor=1, mobile=False)

    def open(self, path, ready, name):
        """Navigate to `path`, wait until `ready(state, log)` (the DOM's
        text and canvases, the requests so far), then screenshot into the
        artifacts as NAME.png/.txt. The state and the screenshot (PNG)."""
        self.browser.call("Page.navigate", self.session, url=self.root + path)
        end = time.time() + 180
        state = {}
        while time.time() < end:
            state = self.browser.evaluate(self.session, """(() => {
                const c = [...document.querySelectorAll('.cornerstone-viewport-element canvas, canvas')]
                  .filter(x => x.width > 64 && x.height > 64)
                  .map(x => { const r = x.getBoundingClientRect();
                              return [r.left, r.top, r.width, r.height]; });
                return {canvases: c, text: document.body ? document.body.innerText : ''};
            })()""") or {}
            if ready(state, self.site.log):
                time.sleep(3)  # let it draw
                state = self.browser.evaluate(self.session, "({canvases: %s, text: document.body.innerText})"
                                              % json.dumps(state.get("canvases", []))) or state
                break
            time.sleep(1)
        png = base64.b64decode(self.browser.call("Page.captureScreenshot", self.session, format="png")["data"])
        (self.artifacts / f"{name}.png").write_bytes(png)
        (self.artifacts / f"{name}.txt").write_text(state.get("text", ""))
        (self.artifacts / "requests.json").write_text(json.dumps(self.site.log, indent=1))
        print(f"\nOHIF artifacts ({name}.png, {name}.txt, requests.json): {self.artifacts}")
        return state, png

    def close(self):
        self.browser.close()
        self.site.shutdown()


def assert_drawn(state, png, artifacts):
    """The largest canvas is not uniform: the image is drawn."""
    x, y, w, h = max(state["canvases"], key=lambda c: c[2] * c[3])
    img = Image.open(BytesIO(png)).convert("L").crop((int(x), int(y), int(x + w), int(y + h)))
    colors = img.getcolors(maxcolors=1 << 16) or []
    assert len(colors) > 50, f"viewport nearly uniform: {len(colors)} grey levels ({artifacts})"
    lo, hi = img.getextrema()
    assert hi - lo > 64, (lo, hi)


def frames_and_thumbnail(log):
    return any(p[0].startswith("/studies/") and "/frames/" in p[0] for p in log) \
        and any("/thumbnail" in p[0] for p in log)


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
        name, pid = str(ds.PatientName), str(ds.PatientID)
        stow(upstream, token, ds)
        shown = requests.get(upstream + "/studies", headers={"Authorization": f"Bearer {vendor}",
                                                             "Accept": "application/dicom+json"}).json()
        assert len(shown) == 1
        pseudo_study = shown[0]["0020000D"]["Value"][0]
        pseudonym = shown[0]["00100010"]["Value"][0]["Alphabetic"]
        assert pseudonym.startswith("OBS-") and pseudo_study != ds.StudyInstanceUID
        v = Viewer(dist, upstream, vendor)
        state, _ = v.open("/", lambda st, log: pseudonym in st.get("text", ""), "worklist")
        assert pseudonym in state.get("text", ""), state.get("text", "")[:1500]
        assert name not in state["text"] and name.split("^")[0] not in state["text"] and pid not in state["text"]
        state, png = v.open(f"/viewer?StudyInstanceUIDs={pseudo_study}",
                            lambda st, log: st.get("canvases") and frames_and_thumbnail(log), "viewer")
        assert state.get("canvases"), f"no viewport canvas; DOM text: {state.get('text', '')[:1500]}"
        text = state["text"]
        assert name not in text and name.split("^")[0] not in text and pid not in text, text[:1500]
        assert ds.StudyInstanceUID not in json.dumps(v.site.log)
        assert any(p[2] == 200 and "/frames/" in p[0] for p in v.site.log), v.site.log
        assert_drawn(state, png, v.artifacts)
    finally:
        if v:
            v.close()
        gw.stop()
