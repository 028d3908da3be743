"""Least privilege over DICOMweb (issue 11, docs/access.md): OIDC bearer
JWTs signed here with real keys (PyJWT and cryptography from PyPI), grants
made with `obscura grant`, against a running `obscura serve` over mutual
TLS. Every refused token is denied and recorded in the audit log with its
reason; a study outside the grant is a 404 exactly like one that does not
exist; QIDO names only granted studies; STOW outside a write grant is
refused per instance; revocation holds from the next request."""
import hashlib
import hmac
import json
import secrets
import shutil
import time

import pydicom
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from dicomweb_client.api import DICOMwebClient

from access_fixtures import AUDIENCE, ISSUER, VENDOR, Site, b64, multipart
from conftest import obscura
from gateway_fixtures import Gateway, free_port
from test_serve import study_files

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl not installed (apt-get install openssl)")


def unsigned(header, claims, sign):
    msg = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{msg}.{b64(sign(msg.encode()))}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("access"))
    files = study_files()
    owner = DICOMwebClient(s.url, session=s.session(s.pacs_token, cert=None))
    owner.store_instances([pydicom.dcmread(str(f)) for f in files])
    studies = sorted({str(pydicom.dcmread(str(f), stop_before_pixels=True).StudyInstanceUID) for f in files})
    assert len(studies) >= 2
    s.granted, s.others = studies[0], studies[1:]
    s.hidden = s.others[0]
    yield s
    s.gw.stop()


def studies_named(resp_json):
    return sorted(r["0020000D"]["Value"][0] for r in resp_json)


def test_grants_decide_what_a_vendor_sees(site):
    gid = site.grant("add", "--principal", f"idp:{VENDOR}", "--tenant", "Clinic",
                     "--study", site.granted, "--actions", "search,read", "--expires", "1h")
    listed = site.grant("list", "--principal", f"idp:{VENDOR}")
    assert gid in listed and "1 studies" in listed and "search,read" in listed
    s = site.session(site.token())
    # QIDO at every level names only the granted study, and counts only its own
    r = s.get(f"{site.url}/studies", headers={"Accept": "application/dicom+json"})
    assert r.status_code == 200, r.text
    assert studies_named(r.json()) == [site.granted]
    r = s.get(f"{site.url}/studies", params={"StudyInstanceUID": site.hidden})
    assert r.status_code == 200 and r.json() == []
    for level in ("series", "instances"):
        r = s.get(f"{site.url}/{level}")
        assert r.status_code == 200 and r.json()
        assert {x["0020000D"]["Value"][0] for x in r.json()} == {site.granted}
    everything = s.get(f"{site.url}/instances", params={"includefield": "all"}).text
    assert not any(o in everything for o in site.others)
    # WADO of the granted study works; the other is exactly a missing one
    assert s.get(f"{site.url}/studies/{site.granted}/metadata").status_code == 200
    missing = s.get(f"{site.url}/studies/1.2.3.999999/metadata")
    for path in ("metadata", "series", "instances", ""):
        hidden = s.get(f"{site.url}/studies/{site.hidden}/{path}".rstrip("/"))
        assert (hidden.status_code, hidden.text, hidden.headers["Content-Type"]) == \
               (missing.status_code, missing.text, missing.headers["Content-Type"]) == \
               (404, "not found\n", "text/plain; charset=utf-8"), path
    # no write grant: STOW is refused before any body is read
    ds = pydicom.dcmread(str(study_files()[0]))
    vendor = DICOMwebClient(site.url, session=s)
    with pytest.raises(requests.HTTPError) as e:
        vendor.store_instances([ds])
    assert e.value.response.status_code == 403
    # a write grant on the one study: an instance of another study is refused per instance
    site.grant("add", "--principal", f"idp:{VENDOR}", "--tenant", "Clinic",
               "--study", site.granted, "--actions", "write", "--expires", "1h")
    result = pydicom.dcmread(str(study_files()[0]))
    result.SOPInstanceUID = "2.25.1234567890123456789"
    result.StudyInstanceUID = site.hidden
    refused = s.post(f"{site.url}/studies", data=multipart(result),
                     headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=xyz',
                              "Accept": "application/dicom+json"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0x0124]
    result.StudyInstanceUID = site.granted
    stored = s.post(f"{site.url}/studies/{site.granted}", data=multipart(result),
                    headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=xyz',
                             "Accept": "application/dicom+json"})
    assert stored.status_code == 200, stored.text
    owner = site.session(site.pacs_token, cert=None)
    hidden_instances = owner.get(f"{site.url}/studies/{site.hidden}/instances").json()
    assert "2.25.1234567890123456789" not in json.dumps(hidden_instances)
    # the denials are in the audit log, with their reasons and no UID
    records = site.audit()
    reasons = {r.get("reason") for r in records if r["outcome"] == "denied"}
    assert {"study-not-granted", "action-not-granted"} <= reasons, reasons
    assert site.hidden not in json.dumps(records)


def test_each_bad_token_is_denied_and_recorded(site):
    site.grant("add", "--principal", f"idp:{VENDOR}", "--tenant", "Clinic",
               "--study", site.granted, "--actions", "search,read", "--expires", "1h")
    url = f"{site.url}/studies/{site.granted}/metadata"
    now = int(time.time())
    assert site.session(site.token()).get(url).status_code == 200
    assert site.session(site.token("ES256")).get(url).status_code == 200
    assert site.session(site.token("PS256")).get(url).status_code == 200
    public_pem = site.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": VENDOR, "exp": now + 300}
    bound_to_client = {"cnf": {"x5t#S256": b64(bytes.fromhex(site.client_sha))}}
    cases = {
        "token-expired": (site.token(exp=now - 120), "client"),
        "token-not-yet-valid": (site.token(nbf=now + 120), "client"),
        "token-issuer": (site.token(iss="https://evil.test/realms/imaging"), "client"),
        "token-audience": (site.token(aud="another-archive"), "client"),
        "token-algorithm": (unsigned({"alg": "none", "kid": "rsa-1", "typ": "JWT"}, claims,
                                     lambda m: b""), "client"),
        "token-unknown-kid": (site.token(kid="rsa-2"), "client"),
        "token-certificate-mismatch": (site.token(**bound_to_client), "other"),
    }
    # HS256 with the RSA public key (its PEM, as a naive verifier would load it) as the secret
    hs = unsigned({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, claims,
                  lambda m: hmac.new(public_pem, m, hashlib.sha256).digest())
    assert site.session(site.token(**bound_to_client)).get(url).status_code == 200, "bound, right cert"
    before = len(site.audit())
    for code, (token, cert) in cases.items():
        r = site.session(token, cert=cert).get(url)
        assert r.status_code == 401, code
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], code
    r = site.session(hs).get(url)
    assert r.status_code == 401
    # a revoked grant: the very next request is denied
    gone = site.grant("add", "--principal", "idp:reader", "--tenant", "Clinic",
                      "--whole-tenant", "--actions", "read", "--expires", "1h")
    reader = site.session(site.token(sub="reader"))
    assert reader.get(url).status_code == 200
    site.grant("revoke", gone)
    assert reader.get(url).status_code == 403
    # a revoked token (by jti), while its grant still holds
    jti = "revoke-me-" + secrets.token_hex(4)
    vendor = site.session(site.token(jti=jti))
    assert vendor.get(url).status_code == 200
    site.grant("revoke", "--token", jti)
    assert vendor.get(url).status_code == 401
    assert site.session(site.token()).get(url).status_code == 200, "other tokens still work"
    time.sleep(0.2)
    failures = [r for r in site.audit()[before:] if r["kind"] == "auth-failure"]
    reasons = [r["reason"] for r in failures]
    for code in [*cases, "no-grant", "token-revoked"]:
        assert code in reasons, (code, reasons)
    assert reasons.count("token-algorithm") == 2, "alg none and HS256"
    assert all(r["outcome"] == "denied" for r in failures)
    by_reason = {r["reason"]: r for r in failures}
    assert by_reason["no-grant"]["actor"]["principal"] == "idp:reader"
    assert by_reason["token-revoked"]["actor"]["principal"] == f"idp:{VENDOR}"
    assert by_reason["token-expired"]["actor"]["principal"].startswith("cert-sha256:")
    log = site.gw.log_text()
    for text in ("bearer JWT refused: expired", "wrong issuer", "unknown signing key",
                 "certificate binding mismatch", "algorithm not accepted", "no live grant"):
        assert text in log, text
    assert site.hidden not in log and site.granted not in log


def test_revocation_reaches_another_instance_at_once(site):
    """A second `obscura serve` on the same archive and grant store (its own
    gateway folder, no audit log): a grant revoked through the store is
    refused by both on their very next request."""
    port, dimse = free_port(), free_port()
    text = site.config.read_text()
    audit = text[text.index("[audit]"):text.index("[archive]")]
    second = site.root / "serve2.toml"
    second.write_text(text.replace(audit, "").replace('"gw-data"', '"gw-data2"')
                      .replace(f"127.0.0.1:{site.port}", f"127.0.0.1:{port}")
                      .replace(f"127.0.0.1:{site.dimse}", f"127.0.0.1:{dimse}"))
    gw2 = Gateway(second, port).start()
    try:
        gid = site.grant("add", "--principal", "idp:second-reader", "--tenant", "Clinic",
                         "--whole-tenant", "--actions", "read", "--expires", "1h")
        token = site.token(sub="second-reader")
        urls = [f"https://127.0.0.1:{p}/studies/{site.granted}/metadata" for p in (site.port, port)]
        s = site.session(token)
        assert [s.get(u).status_code for u in urls] == [200, 200]
        site.grant("revoke", gid)
        assert [s.get(u).status_code for u in urls] == [403, 403]
        assert "no live grant" in gw2.log_text()
    finally:
        gw2.stop()


def test_grant_cli_refuses_what_it_cannot_do(site):
    base = ["grant", "add", "--principal", "idp:x", "--tenant", "Clinic", "--config", site.config]
    p = obscura(*base, "--whole-tenant", "--actions", "read", "--view", "deidentified:strict")
    assert p.returncode != 0 and "basic[+OPTION...]" in p.stderr
    p = obscura(*base, "--study", "../etc", "--actions", "read")
    assert p.returncode != 0 and "Study Instance UID" in p.stderr
    p = obscura(*base, "--whole-tenant", "--actions", "delete")
    assert p.returncode != 0 and "unknown action" in p.stderr
    p = obscura(*base, "--whole-tenant", "--actions", "read", "--expires", "2001-01-01")
    assert p.returncode != 0 and "past" in p.stderr
    gid = site.grant("add", "--principal", "idp:y", "--tenant", "Clinic", "--whole-tenant",
                     "--actions", "read", "--expires", "2h")
    p = obscura("grant", "add", "--principal", "idp:y", "--tenant", "Other", "--whole-tenant",
                "--actions", "read", "--config", site.config)
    assert p.returncode != 0 and "another tenant" in p.stderr
    shown = site.grant("show", gid)
    assert "whole-tenant" in shown and "live" in shown
    site.grant("revoke", gid)
    assert gid not in site.grant("list")
    assert "revoked" in site.grant("list", "--all")
    # the grant store keeps no study UID in clear
    for f in (site.root / "archive").glob("access.sqlite*"):
        assert site.granted.encode() not in f.read_bytes(), f
