"""De-identified view against the original view, in one `obscura serve`, in
one run (issue 11): the CT series of bench/corpus/make_corpus.py (or its
first N files) stored once; third-party principals with whole-tenant grants
that differ only in their view (`original`, `deidentified`) and, for the
cost of token validation, in their credential (an opaque token hashed
against the tokens file, or an RS256 JWT checked against a JWKS file), so
all pay the same grant decisions. Measured on the same instances, the
principals alternated run by run:

- WADO-RS throughput: every instance retrieved by curl `--parallel` (at
  each CONCURRENCY), by its original UIDs or by its pseudonyms (listed by
  QIDO through the view first): instances/s, median of REPS runs, and the
  median of the per-run ratios;
- QIDO-RS latency p50/p95: the study list with includefield, and the
  instances of the series (QUERIES each, alternated query by query).

The last line is the figure of the issue:
`views: WADO de-identified / original 0.xx at c=1, ... (target >= 0.66x) ...`.

Usage: python3 bench/web_views.py [CT_SERIES_DIR] [FILES] [REPS] [CONCURRENCY] [QUERIES]
       (default /tmp/bench-corpus/ct-series 500 5 1,8 50), after
       `cargo build --release -p obscura-cli`. Plain HTTP on loopback.
"""
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from web_common import configure_obscura, peak_rss_mib, start_obscura
from web_side_by_side import ACCEPT, CT, curl, curl_config, multipart, pct

JSON = {"Accept": "application/dicom+json"}
ISSUER, AUDIENCE = "https://idp.bench.invalid", "obscura-bench"
# what is measured: (principal, view, credential)
PRINCIPALS = {
    "original": ("reader", "original", "opaque"),
    "deidentified": ("vendor", "deidentified", "opaque"),
    "original, JWT": ("idp:jwt-reader", "original", "jwt"),
}


def grant_toml(principal, view, credential):
    """A third party holding a whole-tenant read grant of `view`."""
    head = f'[[web.principal]]\nname = "{principal}"\n' if credential == "opaque" else ""
    return head + f"""[[web.grant]]
principal = "{principal}"
tenant = "Bench"
whole_tenant = true
actions = ["search", "read"]
view = "{view}"
"""


def b64(n):
    return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def jwt_issuer(work):
    """An issuer whose JWKS file holds an RSA key made here: its TOML and
    a signing function (claims -> RS256 JWT)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = key.public_key().public_numbers()
    (work / "jwks.json").write_text(json.dumps({"keys": [
        {"kty": "RSA", "kid": "bench", "use": "sig", "n": b64(n.n), "e": b64(n.e)}]}))
    toml = f"""[[web.issuer]]
name = "idp"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks_file = "jwks.json"
"""

    def sign(sub):
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 6 * 3600,
                  "jti": secrets.token_hex(8)}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})

    return toml, sign


def instance_uids(session, base):
    studies = session.get(base + "/studies", headers=JSON).json()
    out = []
    for st in studies:
        s = st["0020000D"]["Value"][0]
        for i in session.get(f"{base}/studies/{s}/instances", headers=JSON, params={"limit": 5000}).json():
            out.append((s, i["0020000E"]["Value"][0], i["00080018"]["Value"][0]))
    return sorted(out)


def qido(views, base, n):
    """Per view and query kind: (p50, p95) ms, queries alternated between views."""
    kinds = {"studies, includefield": lambda v: ("/studies", {"includefield": "00081030,00080060,00100010"}),
             "instances of the series": lambda v: (v["series"], {"limit": 5000})}
    times = {name: {k: [] for k in kinds} for name in views}
    for _ in range(n):
        for name, v in views.items():
            for kind, what in kinds.items():
                path, params = what(v)
                t = time.perf_counter()
                r = v["session"].get(base + path, params=params, headers=JSON)
                times[name][kind].append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, (kind, r.status_code, r.text[:200])
    return {name: {k: (pct(xs, 50), pct(xs, 95)) for k, xs in t.items()} for name, t in times.items()}


def main():
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-corpus/ct-series")
    n_files = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    levels = [int(c) for c in (sys.argv[4] if len(sys.argv) > 4 else "1,8").split(",")]
    queries = int(sys.argv[5]) if len(sys.argv) > 5 else 50
    files = sorted(p for p in corpus.rglob("*") if p.is_file())[:n_files]
    top = Path(tempfile.mkdtemp(prefix="obscura-views-bench-"))
    work = top / "srv"
    work.mkdir()
    issuer, sign = jwt_issuer(work)
    owner_token, port = configure_obscura(work, issuer + "".join(grant_toml(*p) for p in PRINCIPALS.values()))
    tokens = {}
    with open(work / "tokens", "a") as f:
        for name, (principal, _, credential) in PRINCIPALS.items():
            if credential == "opaque":
                tokens[name] = secrets.token_urlsafe(24)
                f.write(f"{hashlib.sha256(tokens[name].encode()).hexdigest()} {principal}\n")
            else:
                tokens[name] = sign(principal.split(":", 1)[1])
    load = [os.getloadavg()[0]]
    proc, base, owner = start_obscura(work, owner_token, port)
    try:
        for i in range(0, len(files), 50):
            r = owner.post(base + "/studies", data=multipart(files[i:i + 50]), headers={"Content-Type": CT})
            assert r.status_code == 200, r.text[:300]
        views = {}
        for name in PRINCIPALS:
            s = type(owner)()
            s.trust_env = False
            s.headers["Authorization"] = f"Bearer {tokens[name]}"
            uids = instance_uids(s, base)
            assert len(uids) == len(files), (name, len(uids))
            config = curl_config(work / f"{name.replace(', ', '-')}.curl",
                                 [f"Authorization: Bearer {tokens[name]}", f"Accept: {ACCEPT}"],
                                 [f"{base}/studies/{a}/series/{b}/instances/{c}" for a, b, c in uids])
            views[name] = {"session": s, "uids": uids, "config": config, "wado": {c: [] for c in levels},
                           "series": f"/studies/{uids[0][0]}/series/{uids[0][1]}/instances"}
        assert not set(u[2] for u in views["original"]["uids"]) & set(u[2] for u in views["deidentified"]["uids"])
        for c in levels:
            for _ in range(reps):
                for v in views.values():  # alternated
                    v["wado"][c].append(len(files) / curl(v["config"], c))
                load.append(os.getloadavg()[0])
        q = qido(views, base, queries)
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(top)
    print(f"{len(files)} CT instances ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB), one obscura serve "
          f"(peak RSS {rss:.0f} MiB), whole-tenant grants differing only in view or credential; WADO by curl "
          f"--parallel, median of {reps} alternated runs; QIDO {queries} queries each, alternated; "
          f"load average {min(load):.1f}-{max(load):.1f}")
    print("| principal | " + " | ".join(f"WADO inst/s @{c}" for c in levels) +
          " | QIDO studies p50/p95 ms | QIDO instances of a series p50/p95 ms |")
    print("|---|" + "---|" * (len(levels) + 2))
    for name, v in views.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(v['wado'][c]):.0f}" for c in levels) + " | " +
              " | ".join(f"{a:.1f} / {b:.1f}" for a, b in q[name].values()) + " |")
    for name, v in views.items():
        print(f"runs, {name}: " + "; ".join(f"c={c} " + " ".join(f"{x:.0f}" for x in v["wado"][c]) for c in levels))

    def ratio(a, b, c):
        return statistics.median(x / y for x, y in zip(views[a]["wado"][c], views[b]["wado"][c]))

    # the time a request takes longer (c=1) or costs more of the server (c>1) with a JWT
    jwt_ms = {c: 1000 * (1 / statistics.median(views["original, JWT"]["wado"][c]) -
                             1 / statistics.median(views["original"]["wado"][c])) for c in levels}
    print("views: WADO de-identified / original " +
          ", ".join(f"{ratio('deidentified', 'original', c):.2f}x at c={c}" for c in levels) +
          " (target >= 0.66x); QIDO p50 de-identified / original " +
          ", ".join(f"{q['deidentified'][k][0] / q['original'][k][0]:.2f}x {k}" for k in q["original"]) +
          "; JWT instead of an opaque token: WADO " +
          ", ".join(f"{ratio('original, JWT', 'original', c):.2f}x ({jwt_ms[c]:+.2f} ms a request) at c={c}"
                    for c in levels) +
          f"; load average {min(load):.1f}-{max(load):.1f}")


if __name__ == "__main__":
    main()
