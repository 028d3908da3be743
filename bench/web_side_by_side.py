"""DICOMweb side by side, in one run on this machine: `obscura serve`'s
archive against Debian's Orthanc 1.10.1 + DICOMweb plugin 1.7 (a 2022
release; `apt-get install orthanc orthanc-dicomweb`), both on plain HTTP on
loopback, both on their embedded SQLite index and a local folder; and,
when bench/web.sh has built it, the same Obscura with its objects stored
unencrypted (a benchmark-only build, feature
`obscura-vault/unencrypted-objects-bench-only`: the cost of encryption).

- STOW-RS ingest of the CT series of bench/corpus/make_corpus.py (2,000
  files, ~1.06 GB) in requests of BATCH instances, one request at a time
  (Python `requests`; only the requests are timed, not building their
  bodies), into a fresh server each time, REPS times, servers interleaved:
  median instances/s. Obscura encrypts each object under its tenant's
  key, fsyncs it and its folder and commits the index before it answers;
  Orthanc stores files as received (no compression, SQLite index);
- QIDO-RS study searches (by PatientID, by PatientName wildcard, by
  StudyDate range, all studies with includefield), QUERIES of each kind:
  p50/p95 latency in ms (the index holds the 2,000 instances only);
- WADO-RS retrieval of every instance, one request each (multipart), by
  curl (`--parallel`, at each concurrency of CONCURRENCY), against the same
  curl reading the same 2,000 files from disk (`file://` URLs, page cache
  warm) at the same concurrency, runs alternated REPS times: median MB/s
  and median of the per-run ratios;
- each server's peak RSS (VmHWM) over its last run.

Usage: python3 bench/web_side_by_side.py [CORPUS_DIR] [BATCH] [QUERIES] [REPS] [CONCURRENCY]
(defaults /tmp/bench-corpus/ct-series 50 200 5 1,8; after `cargo build
--release -p obscura-cli`). Prints Markdown tables.
"""
import os
import shutil
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
from web_common import BINARY, BINARY_PLAIN, configure_obscura, peak_rss_mib, start_obscura  # noqa: E402

CT = "multipart/related; type=\"application/dicom\"; boundary=benchboundary"
ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


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


class ObscuraServer:
    """A fresh `obscura serve` (binary `binary`) in its own folder."""

    def __init__(self, name, binary, work):
        self.name, self.binary, self.work = name, binary, work

    def __enter__(self):
        self.work.mkdir()
        self.token, port = configure_obscura(self.work)
        self.proc, self.base, self.session = start_obscura(self.work, self.token, port, self.binary)
        self.headers = [f"Authorization: Bearer {self.token}"]
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        subprocess.run(["rm", "-rf", str(self.work)])

    def pid(self):
        return self.proc.pid


class OrthancServer:
    """A fresh Orthanc with the DICOMweb plugin in its own folder."""

    def __init__(self, name, work):
        self.name, self.work = name, work

    def __enter__(self):
        self.orthanc = Orthanc(self.work, extra={"HttpThreadsCount": 50}).start()
        self.base = self.orthanc.url + "/dicom-web"
        self.session = requests.Session()
        self.session.trust_env = False
        self.headers = []
        return self

    def __exit__(self, *exc):
        self.orthanc.stop()
        subprocess.run(["rm", "-rf", str(self.work)])

    def pid(self):
        return self.orthanc.proc.pid


def stow(srv, files, batch):
    """Seconds spent in the STOW requests (bodies built outside the timing)."""
    spent = 0.0
    for i in range(0, len(files), batch):
        body = multipart(files[i:i + batch])
        t = time.perf_counter()
        resp = srv.session.post(srv.base + "/studies", data=body, headers={"Content-Type": CT})
        spent += time.perf_counter() - t
        assert resp.status_code == 200, (srv.name, resp.status_code, resp.text[:300])
    return spent


def qido(srv, files, uids, queries):
    s, base = srv.session, srv.base
    found = s.get(base + "/studies/" + uids[0][0] + "/series/" + uids[0][1] + "/instances",
                  headers={"Accept": "application/dicom+json"}, params={"limit": 5000})
    assert found.status_code == 200 and len(found.json()) >= len(files) // len({u[:2] for u in uids}) - 1, \
        (srv.name, found.status_code)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    kinds = {
        "PatientID": {"PatientID": str(first.PatientID)},
        "PatientName wildcard": {"PatientName": str(first.PatientName)[:3] + "*"},
        "StudyDate range": {"StudyDate": "19000101-21001231"},
        "all, includefield": {"includefield": "00081030,00080060,00100010", "limit": "100"},
    }
    lat, hits = {}, {}
    for kind, params in kinds.items():
        xs = []
        for _ in range(queries):
            t = time.perf_counter()
            q = s.get(base + "/studies", params=params, headers={"Accept": "application/dicom+json"})
            xs.append((time.perf_counter() - t) * 1000)
            assert q.status_code == 200, (srv.name, kind, q.status_code)
        lat[kind] = (pct(xs, 50), pct(xs, 95))
        hits[kind] = len(q.json())
    return lat, hits


def corpus_uids(corpus):
    """The corpus's files, sorted, and their (study, series, instance) UIDs."""
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    uids = []
    for p in files:
        ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=[
            "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
        uids.append((str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)))
    return files, uids


def curl_config(path, headers, urls):
    """A curl config file: the headers, then every URL written to /dev/null."""
    lines = [f'header = "{h.replace(chr(34), chr(92) + chr(34))}"' for h in headers]
    for u in urls:
        lines += [f'url = "{u}"', 'output = "/dev/null"']
    path.write_text("\n".join(lines) + "\n")
    return path


def curl(config, concurrency):
    t = time.perf_counter()
    subprocess.run(["curl", "-sS", "--no-progress-meter", "--fail", "--parallel", "--parallel-immediate", "--parallel-max",
                    str(concurrency), "-K", str(config)], check=True)
    return time.perf_counter() - t


def wado(srv, uids, disk_config, levels, reps, work):
    """Per concurrency: (server seconds, disk seconds) of each alternated run."""
    config = curl_config(work / f"wado-{id(srv)}.curl", srv.headers + [f"Accept: {ACCEPT}"],
                         [f"{srv.base}/studies/{a}/series/{b}/instances/{c}" for a, b, c in uids])
    out = {}
    for c in levels:
        runs = []
        for _ in range(reps):
            runs.append((curl(config, c), curl(disk_config, c)))
        out[c] = runs
    return out


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-corpus/ct-series")
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    queries = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    levels = [int(c) for c in (sys.argv[5] if len(sys.argv) > 5 else "1,8").split(",")]
    if not available():
        raise SystemExit(f"Orthanc or its DICOMweb plugin missing ({INSTALL})")
    if not shutil.which("curl"):
        raise SystemExit("curl missing (apt-get install curl)")
    files, uids = corpus_uids(corpus)
    size = sum(p.stat().st_size for p in files)
    work = Path(tempfile.mkdtemp(prefix="obscura-web-side-", dir=os.environ.get("BENCH_DIR")))
    disk_config = curl_config(work / "disk.curl", [], [f"file://{p}" for p in files])
    curl(disk_config, 8)  # page cache warm
    servers = [("Obscura (encrypted archive)", lambda w: ObscuraServer("Obscura", BINARY, w))]
    if BINARY_PLAIN.exists():
        servers.append(("Obscura, objects unencrypted (benchmark-only build)",
                        lambda w: ObscuraServer("Obscura plain", BINARY_PLAIN, w)))
    servers.append(("Orthanc 1.10.1 + DICOMweb plugin 1.7 (2022)", lambda w: OrthancServer("Orthanc", w)))
    results = {name: {"stow": []} for name, _ in servers}
    load = [os.getloadavg()[0]]
    for rep in range(reps):
        for i, (name, make) in enumerate(servers):
            with make(work / f"run{rep}-{i}") as srv:
                results[name]["stow"].append(stow(srv, files, batch))
                if rep == reps - 1:
                    r = results[name]
                    r["qido"], r["hits"] = qido(srv, files, uids, queries)
                    # Orthanc serves ~25 MB/s one request at a time: 3 runs
                    r["wado"] = wado(srv, uids, disk_config, levels,
                                     min(reps, 3) if isinstance(srv, OrthancServer) else reps, work)
                    r["rss"] = peak_rss_mib(srv.pid())
            load.append(os.getloadavg()[0])
    subprocess.run(["rm", "-rf", str(work)])

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"Corpus: {len(files)} files, {size / 1e6:.0f} MB ({corpus}); STOW in requests of {batch}, "
          f"{reps} runs per server (interleaved), median; {queries} queries of each QIDO kind; WADO by curl at "
          f"concurrency {', '.join(map(str, levels))}, {reps} runs each alternated with the same curl reading "
          f"the files (file://), medians; {os.cpu_count()} CPUs ({cpu}), shared; load average during the run "
          f"{min(load):.1f}-{max(load):.1f}.\n")
    orthanc = servers[-1][0]
    o_stow = statistics.median(results[orthanc]["stow"])
    kinds = list(results[orthanc]["qido"])
    head = ["server", "STOW inst/s", "STOW MB/s", "STOW vs Orthanc"] + \
           [f"WADO MB/s c={c}" for c in levels] + [f"WADO / disk c={c}" for c in levels] + ["peak RSS MiB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    disk_mb = {c: [] for c in levels}
    for name, _ in servers:
        r = results[name]
        st = statistics.median(r["stow"])
        row = [name, f"{len(files) / st:.0f}", f"{size / st / 1e6:.1f}", f"{o_stow / st:.2f}x"]
        for c in levels:
            row.append(f"{size / statistics.median(w for w, _ in r['wado'][c]) / 1e6:.0f}")
            disk_mb[c] += [d for _, d in r["wado"][c]]
        for c in levels:
            row.append(f"{statistics.median(d / w for w, d in r['wado'][c]):.2f}x")
        row.append(f"{r['rss']:.0f}")
        print("| " + " | ".join(row) + " |")
    print("| curl reading the files (file://, page cache warm) | | | | " +
          " | ".join(f"{size / statistics.median(disk_mb[c]) / 1e6:.0f}" for c in levels) + " | " +
          " | ".join("1.00x" for _ in levels) + " | |")
    print("\nSTOW runs (inst/s): " + "; ".join(
        f"{name}: " + ", ".join(f"{len(files) / s:.0f}" for s in results[name]["stow"]) for name, _ in servers))
    print("\n| server | " + " | ".join(f"QIDO {k} p50/p95 ms" for k in kinds) + " |")
    print("|" + "---|" * (len(kinds) + 1))
    for name, _ in servers:
        r = results[name]
        print(f"| {name} | " + " | ".join(f"{r['qido'][k][0]:.1f} / {r['qido'][k][1]:.1f}" for k in kinds) + " |")
    for name, _ in servers:
        print(f"\nStudies found by {name}: " + ", ".join(f"{k} {n}" for k, n in results[name]["hits"].items()))


if __name__ == "__main__":
    main()
