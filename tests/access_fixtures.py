"""Shared by the DICOMweb access tests (test_access, test_views,
test_audit_views): `obscura serve` with the archive, two tenants, DICOMweb
over mutual TLS, an owner token, a JWT issuer whose keys are made here, and
the audit log; grants made with `obscura grant`."""
import base64
import hashlib
import json
import secrets
import subprocess
import time

import jwt
import pydicom
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import make_key, obscura
from gateway_fixtures import Gateway, free_port
from test_serve import make_pki

ISSUER = "https://idp.test/realms/imaging"
AUDIENCE = "obscura-archive"
VENDOR = "ai-vendor"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def other_client_cert(pki):
    """A second client certificate from the same CA."""
    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True)
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.csr",
         "-subj", "/CN=other")
    ossl("x509", "-req", "-in", "other.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "other.pem", "-days", "2", "-extfile", "client.ext")
    (pki / "other.key").chmod(0o600)


class Site:
    """`obscura serve`: an archive with two tenants, DICOMweb over mutual
    TLS, an owner principal (the clinic's PACS, opaque token), a JWT issuer
    whose JWKS holds an RSA and a P-256 key made here, and the audit log."""

    def __init__(self, root):
        self.root = root
        self.pki = root / "pki"
        self.client_sha = make_pki(self.pki)
        other_client_cert(self.pki)
        make_key(root / "master.key")
        make_key(root / "audit-site.key")
        p = obscura("audit", "keygen", "test.example/audit", root / "audit-signing.key", root / "audit.pub")
        assert p.returncode == 0, p.stderr
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        rn = self.rsa.public_key().public_numbers()
        en = self.ec.public_key().public_numbers()
        (root / "jwks.json").write_text(json.dumps({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": int_b64(rn.n), "e": int_b64(rn.e)},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256",
             "x": b64(en.x.to_bytes(32, "big")), "y": b64(en.y.to_bytes(32, "big"))},
        ]}))
        self.pacs_token = secrets.token_urlsafe(32)
        (root / "web-tokens").write_text(f"{hashlib.sha256(self.pacs_token.encode()).hexdigest()} pacs\n")
        (root / "web-tokens").chmod(0o600)
        (root / "web-spool").mkdir()
        self.port, self.dimse = free_port(), free_port()
        self.config = root / "serve.toml"
        self.config.write_text(f"""
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:{self.dimse}"
data_dir = "gw-data"

[audit]
dir = "audit"
signing_key = "audit-signing.key"
key_file = "audit-site.key"
checkpoint_events = 1000
checkpoint_secs = 1
sync_every = 1

[archive]
data_dir = "archive"
master_key_file = "master.key"

[web]
listen = "127.0.0.1:{self.port}"
tokens_file = "web-tokens"
temp_dir = "web-spool"

[web.tls]
cert = "pki/server.pem"
key = "pki/server.key"
client_ca = "pki/ca.pem"

[[web.principal]]
name = "pacs"
tenant = "Clinic"

[[web.issuer]]
name = "idp"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks_file = "jwks.json"
leeway_secs = 30

[[peer]]
name = "modality"
calling_ae = "MODALITY"
addresses = ["127.0.0.1"]
plain = true

[[destination]]
name = "archive"
archive_tenant = "Clinic"

[[route]]
from = ["modality"]
to = ["archive"]
""")
        for name in ("Clinic", "Other"):
            p = obscura("tenant", "create", name, "--config", self.config)
            assert p.returncode == 0, p.stderr
        self.url = f"https://127.0.0.1:{self.port}"
        self.gw = Gateway(self.config, self.port).start()

    def session(self, token, cert="client"):
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.pki / "ca.pem")
        s.headers["Authorization"] = f"Bearer {token}"
        if cert:
            s.cert = (str(self.pki / f"{cert}.pem"), str(self.pki / f"{cert}.key"))
        return s

    def token(self, alg="RS256", kid=None, **claims):
        now = int(time.time())
        body = {"iss": ISSUER, "aud": [AUDIENCE, "account"], "sub": VENDOR, "iat": now,
                "nbf": now - 5, "exp": now + 300, "jti": secrets.token_hex(8)}
        body.update(claims)
        key = self.ec if alg == "ES256" else self.rsa
        kid = kid or ("ec-1" if alg == "ES256" else "rsa-1")
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})

    def grant(self, *args):
        p = obscura("grant", *args, "--config", self.config)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def audit(self):
        out = []
        for seg in sorted((self.root / "audit" / "segments").glob("*.jsonl")):
            out += [json.loads(line) for line in seg.read_text().splitlines() if line]
        return out


def multipart(ds):
    from io import BytesIO
    with BytesIO() as b:
        pydicom.dcmwrite(b, ds)
        body = b.getvalue()
    return b"--xyz\r\nContent-Type: application/dicom\r\n\r\n" + body + b"\r\n--xyz--\r\n"
