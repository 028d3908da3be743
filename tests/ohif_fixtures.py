"""The prebuilt OHIF viewer (npm `@ohif/app`, its `dist/` served as static
files) in headless Chromium, in front of `obscura serve`: shared by
tests/test_web_ohif.py and tests/test_views_ohif.py.

The viewer is fetched once with `npm pack` into ~/.cache/obscura-ohif
(OBSCURA_OHIF_DIR overrides; reused when present). A small Python server
plays the part of the site's web server: it serves `dist/` with an
app-config.js of ours whose DICOMweb data source is on the same origin, and
reverse-proxies `/dicom-web/...` (and the `/studies/...` BulkDataURIs the
archive writes, which are absolute on the Host it was asked under, and
`/share/...` links) to `obscura serve`, adding the bearer token if any: the
browser never holds it. Obscura listens on plain HTTP on loopback (allowed
there only) behind it.

Chromium is driven through the DevTools protocol over
`--remote-debugging-pipe` (no websocket library needed)."""
import base64
import http.server
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

import pytest
import requests
from PIL import Image

from ports import free_port

OHIF_VERSION = "3.13.2"
OHIF_CACHE = Path(os.environ.get("OBSCURA_OHIF_DIR") or Path.home() / ".cache" / "obscura-ohif")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="headless Chromium not installed (apt-get install chromium)")


def ohif_dist():
    """dist/ of @ohif/app, from the cache or fetched with `npm pack` (a
    tarball of the package alone: its dependencies are bundled in dist/)."""
    dist = OHIF_CACHE / OHIF_VERSION / "package" / "dist"
    if (dist / "index.html").is_file():
        return dist
    if shutil.which("npm") is None:
        pytest.skip("npm not installed, and no OHIF viewer in the cache (apt-get install npm)")
    OHIF_CACHE.mkdir(parents=True, exist_ok=True)
    tgz = OHIF_CACHE / f"ohif-app-{OHIF_VERSION}.tgz"
    if not tgz.is_file():
        p = subprocess.run(["npm", "pack", f"@ohif/app@{OHIF_VERSION}"], cwd=OHIF_CACHE,
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0 or not tgz.is_file():
            pytest.skip(f"cannot fetch @ohif/app@{OHIF_VERSION} with npm pack: {p.stderr[-500:]}")
    # unpacked beside, then renamed into place: a half-unpacked tree is never used
    tmp = Path(tempfile.mkdtemp(dir=OHIF_CACHE))
    with tarfile.open(tgz) as t:
        t.extractall(tmp, filter="data")
    (OHIF_CACHE / OHIF_VERSION).mkdir(exist_ok=True)
    (tmp / "package").rename(OHIF_CACHE / OHIF_VERSION / "package")
    shutil.rmtree(tmp, ignore_errors=True)
    return dist


APP_CONFIG = """window.config = {
  routerBasename: null,
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  investigationalUseDialog: { option: 'never' },
  defaultDataSourceName: 'obscura',
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'obscura',
    configuration: {
      friendlyName: 'Obscura',
      name: 'obscura',
      wadoUriRoot: '%(root)s',
      qidoRoot: '%(root)s',
      wadoRoot: '%(root)s',
      qidoSupportsIncludeField: true,
      supportsReject: false,
      imageRendering: 'wadors',
      thumbnailRendering: 'thumbnail',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: true,
      supportsWildcard: true,
      staticWado: false,
      singlepart: false,
      omitQuotationForMultipartRequest: true,
      bulkDataURI: { enabled: true },
    },
  }],
};
"""


class Site(http.server.ThreadingHTTPServer):
    daemon_threads = True


def make_handler(dist, upstream, token, app_config):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            path = self.path
            if path.startswith("/dicom-web/") or path.startswith("/studies") or path.startswith("/share/"):
                return self.proxy(path[len("/dicom-web"):] if path.startswith("/dicom-web/") else path)
            clean = path.split("?")[0].split("#")[0]
            if clean == "/app-config.js":
                return self.send(200, app_config.encode(), "application/javascript")
            f = (dist / clean.lstrip("/")).resolve()
            if not f.is_file() or dist.resolve() not in f.parents:
                f = dist / "index.html"  # the single-page app's routes
            types = {".js": "application/javascript", ".css": "text/css", ".html": "text/html",
                     ".wasm": "application/wasm", ".json": "application/json", ".svg": "image/svg+xml",
                     ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2"}
            self.send(200, f.read_bytes(), types.get(f.suffix, "application/octet-stream"))

        def send(self, status, body, ctype, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def proxy(self, path):
            headers = {"Host": self.headers.get("Host", "")}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            if self.headers.get("Accept"):
                headers["Accept"] = self.headers["Accept"]
            r = requests.get(upstream + path, headers=headers, timeout=60)
            self.server.log.append((path, self.headers.get("Accept"), r.status_code))
            self.send(r.status_code, r.content, r.headers.get("Content-Type", "application/octet-stream"))

    return Handler


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe (fds 3 and 4,
    NUL-terminated JSON messages)."""

    def __init__(self, profile):
        self.profile = profile
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            # copies first, so that neither end is clobbered by the other's dup2
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                 "--window-size=1280,900", "--enable-unsafe-swiftshader", "about:blank"]
        self.proc = subprocess.Popen([CHROMIUM, *flags], pass_fds=(3, 4, to_chrome_r, from_chrome_w),
                                     preexec_fn=fds, stdout=subprocess.DEVNULL,
                                     stderr=open(Path(profile).parent / "chromium.log", "wb"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.reader = os.fdopen(self.from_chrome, "rb")
        self.next_id = 0
        self.events = []
        self.buf = b""

    def call(self, method, session=None, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise AssertionError("Chromium closed the pipe")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            m = json.loads(raw)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise AssertionError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def evaluate(self, session, expr):
        r = self.call("Runtime.evaluate", session, expression=expr, returnByValue=True, awaitPromise=True)
        return r["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        self.reader.close()
        shutil.rmtree(self.profile, ignore_errors=True)  # 30 MB a run; the artifacts stay


class Viewer:
    """OHIF served by a small site of ours in front of `obscura serve`
    (adding `token`, if any), its DICOMweb data source at `data_root` on
    that site, and one headless Chromium tab."""

    def __init__(self, dist, upstream, token, data_root="/dicom-web"):
        port = free_port()
        self.root = f"http://127.0.0.1:{port}"
        self.site = Site(("127.0.0.1", port), make_handler(
            dist, upstream, token, APP_CONFIG % {"root": f"{self.root}{data_root}"}))
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
