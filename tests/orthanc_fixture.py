"""Debian's Orthanc (`orthanc` + `orthanc-dicomweb`, 1.10.1 + DICOMweb 1.7,
a 2022 release) as a real peer: started with a JSON config of our own on
loopback ports, never the packaged service. Shared by
tests/test_web_orthanc.py and bench/web_side_by_side.py."""
import json
import shutil
import subprocess
import time
from pathlib import Path

import requests

from ports import free_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = next((p for p in ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                                    "/usr/lib/orthanc/libOrthancDicomWeb.so.1.7")
                        if Path(p).is_file()), None)
INSTALL = "apt-get install orthanc orthanc-dicomweb"


def available():
    return Path(ORTHANC).is_file() and DICOMWEB_PLUGIN is not None


class Orthanc:
    """One Orthanc process in its own folder. `servers` becomes the
    DICOMweb plugin's "Servers" (remote DICOMweb servers it can push to
    and retrieve from); `extra` is merged into the top-level config."""

    def __init__(self, root, servers=None, extra=None, name="orthanc"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.config = self.root / f"{name}.json"
        config = {
            "Name": name,
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "HttpTimeout": 120,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": servers or {}},
            # no compression or transcoding: files are kept as received
            "StorageCompression": False,
            "OverwriteInstances": False,
        }
        config.update(extra or {})
        self.config.write_text(json.dumps(config, indent=2))
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log = self.root / f"{name}.log"
        self.proc = None

    def start(self, timeout=60):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([ORTHANC, str(self.config)], stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=self.root)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"Orthanc exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                if requests.get(self.url + "/system", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"Orthanc did not start:\n{self.log_text()[-3000:]}")

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()

    def get(self, path, **kw):
        r = requests.get(self.url + path, timeout=300, **kw)
        r.raise_for_status()
        return r

    def post(self, path, data=None, json_body=None, **kw):
        r = requests.post(self.url + path, data=data, json=json_body, timeout=600, **kw)
        assert r.ok, (path, r.status_code, r.text[:2000], self.log_text()[-2000:])
        return r

    def delete(self, path):
        r = requests.delete(self.url + path, timeout=300)
        r.raise_for_status()

    def upload(self, blob):
        """POST /instances: the file as is. Returns Orthanc's answer."""
        return self.post("/instances", data=blob,
                         headers={"Content-Type": "application/dicom"}).json()
