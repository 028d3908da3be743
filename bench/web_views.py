"""De-identified view against the original view, in one `obscura serve`, in
one run (issue 11): the CT series of bench/corpus/make_corpus.py (or its
first N files) stored once; two third-party principals with whole-tenant
grants that differ only in their view (`original`, `deidentified`), so both
pay the same authentication and grant decisions. Measured, interleaved, on
the same instances:

- WADO-RS throughput: every instance retrieved by curl `--parallel` (at
  each CONCURRENCY), by its original UIDs and by its pseudonyms (listed by
  QIDO through the view first): instances/s, median of REPS runs;
- QIDO-RS latency p50/p95: the study list with includefield, and the
  instances of the series.

Usage: python3 bench/web_views.py CT_SERIES_DIR [FILES] [REPS] [CONCURRENCY]
       (default /tmp/bench-corpus/ct-series 500 5 1,8), after
       `cargo build --release -p obscura-cli`. Plain HTTP on loopback.
"""
import hashlib
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from web_common import configure_obscura, start_obscura
from web_side_by_side import ACCEPT, CT, curl, curl_config, multipart, pct

JSON = {"Accept": "application/dicom+json"}

PRINCIPALS = """
[[web.principal]]
name = "reader"
[[web.principal]]
name = "vendor"
[[web.grant]]
principal = "reader"
tenant = "Bench"
whole_tenant = true
actions = ["search", "read"]
view = "original"
[[web.grant]]
principal = "vendor"
tenant = "Bench"
whole_tenant = true
actions = ["search", "read"]
view = "deidentified"
"""


def instance_uids(session, base):
    studies = session.get(base + "/studies", headers=JSON).json()
    out = []
    for st in studies:
        s = st["0020000D"]["Value"][0]
        for i in session.get(f"{base}/studies/{s}/instances", headers=JSON, params={"limit": 5000}).json():
            out.append((s, i["0020000E"]["Value"][0], i["00080018"]["Value"][0]))
    return sorted(out)


def qido(session, base, series_path, n):
    kinds = {"studies, includefield": ("/studies", {"includefield": "00081030,00080060,00100010"}),
             "instances of the series": (series_path, {"limit": 5000})}
    out = {}
    for kind, (path, params) in kinds.items():
        xs = []
        for _ in range(n):
            t = time.perf_counter()
            r = session.get(base + path, params=params, headers=JSON)
            xs.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (kind, r.status_code, r.text[:200])
        out[kind] = (pct(xs, 50), pct(xs, 95))
    return out


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-corpus/ct-series")
    n_files = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    levels = [int(c) for c in (sys.argv[4] if len(sys.argv) > 4 else "1,8").split(",")]
    files = sorted(p for p in corpus.rglob("*") if p.is_file())[:n_files]
    work = Path(tempfile.mkdtemp(prefix="obscura-views-bench-")) / "srv"
    work.mkdir()
    owner_token, port = configure_obscura(work, PRINCIPALS)
    tokens = {p: secrets.token_urlsafe(24) for p in ("reader", "vendor")}
    with open(work / "tokens", "a") as f:
        for p, t in tokens.items():
            f.write(f"{hashlib.sha256(t.encode()).hexdigest()} {p}\n")
    proc, base, owner = start_obscura(work, owner_token, port)
    try:
        for i in range(0, len(files), 50):
            r = owner.post(base + "/studies", data=multipart(files[i:i + 50]), headers={"Content-Type": CT})
            assert r.status_code == 200, r.text[:300]
        views = {}
        for name, view in (("original", "reader"), ("deidentified", "vendor")):
            s = type(owner)()
            s.trust_env = False
            s.headers["Authorization"] = f"Bearer {tokens[view]}"
            uids = instance_uids(s, base)
            assert len(uids) == len(files), (name, len(uids))
            config = curl_config(work / f"{name}.curl", [f"Authorization: Bearer {tokens[view]}",
                                                        f"Accept: {ACCEPT}"],
                                 [f"{base}/studies/{a}/series/{b}/instances/{c}" for a, b, c in uids])
            views[name] = {"session": s, "uids": uids, "config": config, "wado": {c: [] for c in levels},
                           "series": f"/studies/{uids[0][0]}/series/{uids[0][1]}/instances"}
        assert not set(u[2] for u in views["original"]["uids"]) & set(u[2] for u in views["deidentified"]["uids"])
        for c in levels:
            for _ in range(reps):
                for v in views.values():  # interleaved
                    v["wado"][c].append(len(files) / curl(v["config"], c))
        for v in views.values():
            v["qido"] = qido(v["session"], base, v["series"], 50)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    print(f"{len(files)} CT instances ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB), one obscura serve, "
          f"two whole-tenant grants differing only in view; WADO by curl --parallel, median of {reps} interleaved "
          f"runs; QIDO 50 queries each")
    print("| view | " + " | ".join(f"WADO inst/s @{c}" for c in levels) +
          " | QIDO studies p50/p95 ms | QIDO instances of a series p50/p95 ms |")
    print("|---|" + "---|" * (len(levels) + 2))
    for name, v in views.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(v['wado'][c]):.0f}" for c in levels) + " | " +
              " | ".join(f"{a:.1f} / {b:.1f}" for a, b in v["qido"].values()) + " |")
    for c in levels:
        ratio = statistics.median(views["deidentified"]["wado"][c]) / statistics.median(views["original"]["wado"][c])
        print(f"WADO de-identified / original at concurrency {c}: {ratio:.2f}x (target >= 0.66x)")


if __name__ == "__main__":
    main()
