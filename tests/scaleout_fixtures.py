"""The scale-out backends as real servers on loopback: a throwaway
PostgreSQL cluster (Debian's `postgresql`, `initdb` + `pg_ctl` in a temp
folder, never the packaged service) and an S3-compatible object store
(moto's server mode, PyPI `moto[server]`). Shared by the scale-out tests of
the vault and of the gateway queue.

Both skip, saying what to install, when the server is not there."""
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import requests

from conftest import make_key, obscura
from gateway_fixtures import Gateway, write_tokens
from ports import free_port

POSTGRES_INSTALL = "apt-get install postgresql"
S3_INSTALL = "pip install 'moto[server]'"


def _pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres_user(cmd):
    """initdb and postgres refuse to run as root: run them as `postgres`."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


class Postgres:
    """One PostgreSQL cluster in its own temp folder, trust auth on
    127.0.0.1 only. `url` names a fresh database `obscura` owned by the
    superuser `obscura` (no password: nothing secret in a URL or argv)."""

    def __init__(self, root):
        self.root = Path(root)
        self.data = self.root / "pgdata"
        self.sockets = self.root / "sock"
        self.port = free_port()
        self.user = "obscura"
        self.database = "obscura"
        self.url = f"postgres://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self, tls=None):
        """Start the cluster. With `tls` (a folder holding server.pem and
        server.key), TCP clients must use TLS: pg_hba has `hostssl` lines
        only, and every connection is logged with its TLS protocol."""
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        subprocess.run(_as_postgres_user([
            _pg_bin("initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
            "-E", "UTF8", "--no-locale"]), check=True, capture_output=True)
        options = (f"-k {self.sockets} -p {self.port} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=200")
        if tls:
            for name in ("server.pem", "server.key"):
                shutil.copy(Path(tls) / name, self.data / name)
                if os.geteuid() == 0:
                    shutil.chown(self.data / name, "postgres")
            (self.data / "server.key").chmod(0o600)
            (self.data / "pg_hba.conf").write_text(
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
            options += (f" -c ssl=on -c ssl_cert_file={self.data / 'server.pem'}"
                        f" -c ssl_key_file={self.data / 'server.key'} -c log_connections=on")
        subprocess.run(_as_postgres_user([
            _pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
            "-l", str(self.root / "postgres.log"), "start"]), check=True, capture_output=True)
        self.psql("postgres", f"CREATE DATABASE {self.database}")
        return self

    def log(self):
        """The server's log so far."""
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def psql(self, database, sql):
        """Runs one SQL statement as the superuser; returns its output."""
        return subprocess.run(
            [_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=True, capture_output=True, text=True).stdout

    def dump(self):
        """The whole database as `pg_dump` writes it (plain SQL, data included)."""
        return subprocess.run(
            [_pg_bin("pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             self.database], check=True, capture_output=True).stdout

    def stop(self):
        subprocess.run(_as_postgres_user([
            _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
            capture_output=True)


@contextmanager
def postgres_server(tls=None):
    """A running throwaway cluster (TLS-only with `tls`, see `Postgres.start`);
    skips the test when PostgreSQL is not installed."""
    if not _pg_bin("initdb") or not _pg_bin("pg_ctl"):
        pytest.skip(f"PostgreSQL server not installed ({POSTGRES_INSTALL})")
    root = tempfile.mkdtemp(prefix="obscura-pg-")
    os.chmod(root, 0o755)
    server = Postgres(root)
    try:
        yield server.start(tls)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


class S3:
    """moto's S3 server on a loopback port with one empty bucket. The
    credentials are moto's dummies; give them to Obscura through the
    environment (`env`), never argv."""

    def __init__(self, server, port, bucket):
        self._server = server
        self.endpoint = f"http://127.0.0.1:{port}"
        self.bucket = bucket
        self.region = "us-east-1"
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def objects(self):
        """Every object in the bucket: {key: bytes}."""
        client, found = self.client(), {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                found[item["Key"]] = body.read()
        return found


@contextmanager
def s3_server(bucket="obscura-archive"):
    """A running S3 server with `bucket` created; skips when moto is not installed."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.skip(f"moto's S3 server not installed ({S3_INSTALL})")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = S3(server, port, bucket)
        for _ in range(50):
            try:
                s3.client().create_bucket(Bucket=bucket)
                break
            except Exception:  # the server is still starting
                time.sleep(0.1)
        else:
            raise RuntimeError("moto's S3 server did not start")
        yield s3
    finally:
        server.stop()


class ServePair:
    """Two `obscura serve` processes on one PostgreSQL database, DICOMweb
    in plain HTTP on loopback, a bearer token per principal. `principals`
    maps each principal to its tenant (or None: grants only); the tenants
    named there are created. `archive_dir(n)` names server n's archive
    folder; `archive_extra` is appended to its [archive] section."""

    def __init__(self, root, pg, principals, archive_dir=lambda n: "archive", archive_extra=""):
        self.root, self.pg = root, pg
        make_key(root / "master.key")
        self.tokens = {p: secrets.token_urlsafe(32) for p in principals}
        write_tokens(root / "web-tokens", self.tokens)
        declared = "".join(f'\n[[web.principal]]\nname = "{p}"\n'
                           + (f'tenant = "{t}"\n' if t else "") for p, t in principals.items())
        self.configs, self.urls, self.servers = [], [], []
        for n in ("one", "two"):
            port = free_port()
            config = root / f"serve-{n}.toml"
            config.write_text(f"""
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:{free_port()}"
data_dir = "gw-{n}"

[archive]
data_dir = "{archive_dir(n)}"
master_key_file = "master.key"
database_url = "{pg.url}"
{archive_extra}
[web]
listen = "127.0.0.1:{port}"
plain = true
tokens_file = "web-tokens"
{declared}""")
            self.configs.append(config)
            self.urls.append(f"http://127.0.0.1:{port}")
            self.servers.append(Gateway(config, port))
        for tenant in dict.fromkeys(t for t in principals.values() if t):
            self.cli("tenant", "create", tenant)
        for s in self.servers:
            s.start()

    def session(self, principal):
        """A requests session that presents `principal`'s token."""
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {self.tokens[principal]}"
        return s

    def cli(self, *args, server=0):
        """`obscura ARGS --config` of server `server`; its stdout."""
        p = obscura(*args, "--config", self.configs[server])
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def stop(self):
        for s in self.servers:
            s.stop()
