"""DICOMweb side by side, in one run on this machine: `obscura serve`'s
archive against Debian's Orthanc 1.10.1 + DICOMweb plugin 1.7 (a 2022
release; `apt-get install orthanc orthanc-dicomweb`), both on plain HTTP on
loopback, both on their embedded SQLite index and a local folder, driven by
the same Python client, one request at a time:

- STOW-RS ingest of the CT series of bench/corpus/make_corpus.py (2,000
  files, ~1.06 GB) in requests of BATCH instances: instances/s. Obscura
  encrypts each object under its tenant's key, fsyncs and indexes it;
  Orthanc stores files as received (no compression, SQLite index);
- QIDO-RS study searches (by PatientID, by PatientName wildcard, by
  StudyDate range, all studies with includefield), QUERIES of each kind:
  p50/p95 latency in ms. The index holds the 2,000 instances only;
- WADO-RS retrieval of every instance, one request each (multipart), MB/s,
  against reading the same 2,000 files from disk (page cache warm);
- each server's peak RSS (VmHWM) over the whole run.

Usage: python3 bench/web_side_by_side.py [CORPUS_DIR] [BATCH] [QUERIES]
(after `cargo build --release -p obscura-cli`). Prints a Markdown table.
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from orthanc_fixture import INSTALL, Orthanc, available  # noqa: E402
from web_common import configure_obscura, peak_rss_mib, start_obscura  # noqa: E402

CT = "multipart/related; type=\"application/dicom\"; boundary=benchboundary"


def multipart(paths):
    out = []
    for p in paths:
        out.append(b"--benchboundary\r\nContent-Type: application/dicom\r\n\r\n")
        out.append(p.read_bytes())
        out.append(b"\r\n")
    out.append(b"--benchboundary--\r\n")
    return b"".join(out)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run(name, base, s, files, uids, batch, queries, pid):
    r = {"name": name}
    t = time.perf_counter()
    for i in range(0, len(files), batch):
        resp = s.post(base + "/studies", data=multipart(files[i:i + batch]), headers={"Content-Type": CT})
        assert resp.status_code == 200, (name, resp.status_code, resp.text[:300])
    r["stow_s"] = time.perf_counter() - t
    found = s.get(base + "/studies/" + uids[0][0] + "/series/" + uids[0][1] + "/instances",
                  headers={"Accept": "application/dicom+json"}, params={"limit": 5000})
    assert found.status_code == 200 and len(found.json()) >= len(files) // len({u[:2] for u in uids}) - 1, \
        (name, found.status_code)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    kinds = {
        "PatientID": {"PatientID": str(first.PatientID)},
        "PatientName wildcard": {"PatientName": str(first.PatientName)[:3] + "*"},
        "StudyDate range": {"StudyDate": "19000101-21001231"},
        "all, includefield": {"includefield": "00081030,00080060,00100010", "limit": "100"},
    }
    lat = {}
    for kind, params in kinds.items():
        xs = []
        for _ in range(queries):
            t = time.perf_counter()
            q = s.get(base + "/studies", params=params, headers={"Accept": "application/dicom+json"})
            xs.append((time.perf_counter() - t) * 1000)
            assert q.status_code == 200, (name, kind, q.status_code)
        lat[kind] = (pct(xs, 50), pct(xs, 95))
        r.setdefault("hits", {})[kind] = len(q.json())
    r["qido"] = lat
    total = 0
    t = time.perf_counter()
    for st, se, sop in uids:
        g = s.get(f"{base}/studies/{st}/series/{se}/instances/{sop}",
                  headers={"Accept": "multipart/related; type=\"application/dicom\"; transfer-syntax=*"})
        assert g.status_code == 200, (name, g.status_code)
        total += len(g.content)
    r["wado_s"] = time.perf_counter() - t
    r["wado_bytes"] = total
    r["rss"] = peak_rss_mib(pid)
    return r


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-corpus/ct-series")
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    queries = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    if not available():
        raise SystemExit(f"Orthanc or its DICOMweb plugin missing ({INSTALL})")
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files)
    uids = []
    for p in files:
        ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=[
            "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
        uids.append((str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)))
    work = Path(tempfile.mkdtemp(prefix="obscura-web-side-", dir=os.environ.get("BENCH_DIR")))
    results = []
    (work / "obscura").mkdir()
    proc, base, s = start_obscura(work / "obscura", *configure_obscura(work / "obscura"))
    try:
        results.append(run("Obscura (encrypted archive)", base, s, files, uids, batch, queries, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    orthanc = Orthanc(work / "orthanc", extra={"HttpThreadsCount": 50}).start()
    try:
        so = requests.Session()
        so.trust_env = False
        version = orthanc.get("/system").json()
        results.append(run(f"Orthanc {version['Version']} + DICOMweb plugin (2022)",
                           orthanc.url + "/dicom-web", so, files, uids, batch, queries, orthanc.proc.pid))
    finally:
        orthanc.stop()
    # the same bytes from disk, page cache warm (read twice, timed the second)
    for _ in range(2):
        t = time.perf_counter()
        disk = sum(len(p.read_bytes()) for p in files)
        disk_s = time.perf_counter() - t
    subprocess.run(["rm", "-rf", str(work)])

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"Corpus: {len(files)} files, {size / 1e6:.0f} MB ({corpus}); STOW in requests of {batch}; "
          f"{queries} queries of each QIDO kind; one client, one request at a time; "
          f"{os.cpu_count()} CPUs ({cpu}), shared.\n")
    kinds = list(results[0]["qido"])
    head = ["server", "STOW inst/s", "STOW MB/s"] + [f"QIDO {k} p50/p95 ms" for k in kinds] + \
           ["WADO MB/s", "WADO / disk", "peak RSS MiB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        row = [r["name"], f"{len(files) / r['stow_s']:.0f}", f"{size / r['stow_s'] / 1e6:.1f}"]
        row += [f"{r['qido'][k][0]:.1f} / {r['qido'][k][1]:.1f}" for k in kinds]
        row += [f"{size / r['wado_s'] / 1e6:.0f}", f"{disk_s / r['wado_s']:.2f}x", f"{r['rss']:.0f}"]
        print("| " + " | ".join(row) + " |")
    print(f"| reading the files from disk (page cache warm) | | | {' | '.join('' for _ in kinds)} | "
          f"{size / disk_s / 1e6:.0f} | 1.00x | |")
    for r in results:
        print(f"\nStudies found by {r['name']}: " + ", ".join(f"{k} {n}" for k, n in r["hits"].items()))
    o, t = results
    print(f"\nSTOW: Obscura / Orthanc = {t['stow_s'] / o['stow_s']:.2f}x; "
          f"WADO: Obscura / Orthanc = {t['wado_s'] / o['wado_s']:.2f}x")


if __name__ == "__main__":
    main()
