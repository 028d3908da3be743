"""Shared by the audit tests: keyed subject hashes as the log writes them,
the records of a log folder, and `obscura breach-report` run and read back."""
import csv
import hashlib
import hmac
import json
import subprocess
import time
from datetime import datetime, timezone

from conftest import BINARY


def subject_hash(site_key_hex, kind, value):
    """SubjectRef::new: HMAC-SHA256(site key, "obscura-audit/v1/" || kind || 0 || value)."""
    msg = f"obscura-audit/v1/{kind}".encode() + b"\x00" + value.encode()
    return hmac.new(bytes.fromhex(site_key_hex.strip()), msg, hashlib.sha256).hexdigest()


def records(log_dir):
    """Every record of the log at LOG_DIR, in order, as stored."""
    out = []
    for seg in sorted((log_dir / "segments").glob("*.jsonl")):
        out += [json.loads(line) for line in seg.read_text().splitlines() if line]
    return out


def now():
    """The time as RFC 3339, 10 ms clear of any event before or after."""
    time.sleep(0.01)
    t = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    time.sleep(0.01)
    return t


def run(*args):
    """Run the obscura binary."""
    return subprocess.run([str(BINARY), *map(str, args)], capture_output=True, text=True, timeout=300)


def report(config, out, principal, t0, t1):
    """`obscura breach-report` of PRINCIPAL over [T0, T1] into OUT: (JSON, notify.csv rows)."""
    p = run("breach-report", "--config", config, "--principal", principal, "--from", t0,
            "--to", t1, "--discovered", "2026-11-10T12:00:00Z", "--out", out)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = list(csv.DictReader((out / "notify.csv").open(newline="")))
    return json.loads((out / "breach-report.json").read_text()), rows
