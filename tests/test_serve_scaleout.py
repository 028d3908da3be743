"""Two `obscura serve` processes sharing one PostgreSQL queue (a throwaway
cluster) and one spool folder, forwarding to DCMTK storescp: a backlog
built while the destination is down is drained by both, every instance
arriving once; then one process is killed (SIGKILL) while it holds leased
jobs, and the other finishes them once the lease runs out."""
import hashlib
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pydicom
import pytest

from gateway_fixtures import (STORESCP, Gateway, free_port, make_instances, scu_destination, storescu,
                              wait_port, write_config)
from scaleout_fixtures import postgres_server

pytestmark = pytest.mark.skipif(not Path(STORESCP).is_file(),
                                reason="DCMTK storescu/storescp not installed (apt-get install dcmtk)")

LEASE_SECS = 3


class UniqueStoreSCP:
    """storescp writing every received instance to a file of its own
    (`+uf`): an instance delivered twice is two files."""

    def __init__(self, out, port):
        self.out = Path(out)
        self.out.mkdir()
        self.proc = subprocess.Popen([STORESCP, "+uf", "-od", str(self.out), "-aet", "READER", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)

    def received(self):
        """SOP Instance UID → how many times it arrived."""
        return Counter(str(pydicom.dcmread(str(p), stop_before_pixels=True).SOPInstanceUID)
                       for p in self.out.iterdir() if p.is_file())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def gateway(root, name, pg, spool, scp_port):
    """One gateway process's config (its own data folder, the shared queue
    and spool) with a storescp destination that keeps the original UIDs, so
    what arrives can be matched with what was sent."""
    d = root / name
    d.mkdir()
    port, metrics = free_port(), free_port()
    extra = (f'database_url = "{pg.url}"\nspool_dir = "{spool}"\nlease_secs = {LEASE_SECS}\n'
             f'metrics = "127.0.0.1:{metrics}"\n')
    dest = scu_destination(d, "reader", scp_port, profile='{ options = ["retain-uids"] }')
    config = write_config(d, port, [dest], extra_server=extra)
    gw = Gateway(config, port)
    gw.metrics = metrics
    return gw


def forwarded(gw):
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{gw.metrics}/metrics", timeout=5).read().decode()
    return int(re.search(r'obscura_forwarded_total\{destination="reader"\} (\d+)', text).group(1))


def send(gw, files):
    proc = storescu(gw.port, files)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_two_gateways_drain_one_backlog_once_and_finish_a_killed_ones_jobs(tmp_path):
    with postgres_server() as pg:
        spool = tmp_path / "shared-spool"
        scp_port = free_port()
        a = gateway(tmp_path, "a", pg, spool, scp_port)
        b = gateway(tmp_path, "b", pg, spool, scp_port)
        # one destination, one key: every process must de-identify alike
        shutil.copy(a.config.parent / "reader.key", b.config.parent / "reader.key")
        a.start()
        b.start()
        scp = None
        try:
            # 1. the destination is down: both receive (20 instances sent
            # to both), building one backlog of 60 jobs
            uids = make_instances(tmp_path / "in1", 60)
            files = sorted((tmp_path / "in1").iterdir())
            send(a, files[:40])
            send(b, files[20:])
            for gw in (a, b):  # status reads the shared queue from either side
                counts = gw.counts("reader")
                assert counts["pending"] == 60 and counts["done"] == 0, gw.status()
                assert "instances received: 60" in gw.status()
            scp = UniqueStoreSCP(tmp_path / "out1", scp_port)
            b.wait_idle(["reader"], timeout=60)
            got = scp.received()
            assert set(got) == set(uids)
            assert max(got.values()) == 1, "an instance arrived twice"
            assert forwarded(a) > 0 and forwarded(b) > 0, "both processes drained"
            assert forwarded(a) + forwarded(b) == 60
            assert a.counts("reader")["done"] == 60

            # 2. a second backlog; a is killed while it holds leased jobs
            scp.stop()
            scp = None
            uids = make_instances(tmp_path / "in2", 100)
            files = sorted((tmp_path / "in2").iterdir())
            send(a, files[:50])
            send(b, files[50:])
            owner = re.search(r"lease owner ([0-9a-f]+)", a.log_text()).group(1)
            held_sql = f"SELECT uid_hash FROM gateway_jobs WHERE state='running' AND owner='{owner}'"
            scp = UniqueStoreSCP(tmp_path / "out2", scp_port)
            end = time.time() + 30
            while not pg.psql("obscura", held_sql).split() and time.time() < end:
                time.sleep(0.01)
            a.kill()
            held = set(pg.psql("obscura", held_sql).split())
            assert held, "a never held a job while draining"
            b.wait_idle(["reader"], timeout=LEASE_SECS + 40)
            got = scp.received()
            assert set(got) == set(uids), "every instance arrived"
            twice = {u for u, n in got.items() if n > 1}
            # a may have delivered part of its batch before it died: only
            # those can arrive again, never a job nobody lost
            assert {hashlib.sha256(u.encode()).hexdigest() for u in twice} <= held
            done = pg.psql("obscura", "SELECT count(*) FROM gateway_jobs WHERE state='done' AND uid_hash IN ("
                           + ",".join(f"'{h}'" for h in held) + ")")
            assert int(done) == len(held), "the killed process's jobs were finished by the other"
            counts = b.counts("reader")
            assert counts["pending"] == 0 and counts["done"] == 160, b.status()
        finally:
            if scp:
                scp.stop()
            b.stop()
            if a.proc.poll() is None:
                a.stop()
