"""What the DICOMweb benchmarks share: the release binary, free ports, peak
RSS, and `obscura serve` with an archive and plain-HTTP DICOMweb in a work
folder."""
import hashlib
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
BINARY = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "release" / "obscura"
# The benchmark-only build whose objects are stored unencrypted (bench/web.sh).
BINARY_PLAIN = BINARY.with_name("obscura-unencrypted-objects-bench-only")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def configure_obscura(work, web_extra=""):
    """In `work`: a master key, a bearer token for principal `bench` of
    tenant `Bench` (created), a spool folder and serve.toml with plain-HTTP
    DICOMweb (`web_extra`, lines of its [web] table). The token and the web
    port."""
    token = secrets.token_urlsafe(24)
    (work / "tokens").write_text(f"{hashlib.sha256(token.encode()).hexdigest()} bench\n")
    (work / "tokens").chmod(0o600)
    subprocess.run([BINARY, "keygen", work / "master.key"], check=True, capture_output=True)
    port = free_port()
    (work / "spool").mkdir()
    (work / "serve.toml").write_text(f"""
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:{free_port()}"
data_dir = "gw"

[archive]
data_dir = "archive"
master_key_file = "master.key"

[web]
listen = "127.0.0.1:{port}"
plain = true
tokens_file = "tokens"
temp_dir = "spool"
{web_extra}
[[web.principal]]
name = "bench"
tenant = "Bench"
""")
    subprocess.run([BINARY, "tenant", "create", "Bench", "--config", work / "serve.toml"],
                   check=True, capture_output=True)
    return token, port


def start_obscura(work, token, port, binary=BINARY):
    """`obscura serve` (`binary`) on `work`'s serve.toml (of
    `configure_obscura`), its log in serve.log, once it listens: the
    process, its DICOMweb URL and a session that sends the token."""
    with open(work / "serve.log", "w") as log:
        # the benchmark-only build opens a vault only when told it may
        env = dict(os.environ, OBSCURA_UNENCRYPTED_OBJECTS_BENCH_ONLY="1") if binary == BINARY_PLAIN else None
        proc = subprocess.Popen([binary, "serve", "--config", work / "serve.toml"], stdout=log, stderr=log,
                                env=env)
    try:
        wait_port(port)
    except SystemExit:
        proc.kill()
        proc.wait()
        raise
    s = requests.Session()
    s.trust_env = False
    s.headers["Authorization"] = f"Bearer {token}"
    return proc, f"http://127.0.0.1:{port}", s
