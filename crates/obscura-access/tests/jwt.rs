//! Token validation with keys generated here (ring): every refusal the
//! issue lists, certificate binding, and JWKS rotation.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use obscura_access::time::now;
use obscura_access::{IssuerConfig, JwtValidator, TokenError};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::path::Path;

const ISS: &str = "https://idp.test/realms/imaging";
const AUD: &str = "obscura-archive";

struct Keys {
    ec: Vec<u8>,
    ec_public: Vec<u8>,
    ed: Vec<u8>,
    ed_public: Vec<u8>,
}

fn keys() -> Keys {
    let rng = SystemRandom::new();
    let ec = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec_public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec.as_ref(), &rng)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed_public = Ed25519KeyPair::from_pkcs8(ed.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    Keys {
        ec: ec.as_ref().to_vec(),
        ec_public,
        ed: ed.as_ref().to_vec(),
        ed_public,
    }
}

fn jwks(k: &Keys, ec_kid: &str) -> Value {
    json!({ "keys": [
        { "kty": "EC", "crv": "P-256", "kid": ec_kid, "use": "sig",
          "x": B64.encode(&k.ec_public[1..33]), "y": B64.encode(&k.ec_public[33..65]) },
        { "kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": B64.encode(&k.ed_public) },
        // a symmetric key in the set is never used
        { "kty": "oct", "kid": "hmac-1", "k": B64.encode(b"0123456789abcdef0123456789abcdef") },
    ]})
}

fn write(path: &Path, v: &Value) {
    std::fs::write(path, v.to_string()).unwrap();
}

fn config(path: &Path, bound: bool) -> IssuerConfig {
    IssuerConfig {
        name: "kc".into(),
        issuer: ISS.into(),
        audience: AUD.into(),
        jwks_file: Some(path.to_path_buf()),
        jwks_url: None,
        jwks_ca: None,
        jwks_refresh_secs: 300,
        leeway_secs: 30,
        principal_claim: "sub".into(),
        require_certificate_binding: bound,
    }
}

fn claims(extra: Value) -> Value {
    let t = now();
    let mut c = json!({ "iss": ISS, "aud": [AUD, "account"], "sub": "vendor-ai",
                        "exp": t + 300, "nbf": t - 5, "iat": t - 5, "jti": "t-1" });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn es256(k: &Keys, kid: &str, c: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, c, &EncodingKey::from_ec_der(&k.ec)).unwrap()
}

fn eddsa(k: &Keys, c: &Value) -> String {
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some("ed-1".into());
    jsonwebtoken::encode(&h, c, &EncodingKey::from_ed_der(&k.ed)).unwrap()
}

/// A token with a hand-made header and signature.
fn forged(header: Value, c: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let msg = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(c.to_string())
    );
    format!("{msg}.{}", B64.encode(sign(msg.as_bytes())))
}

#[test]
fn accepts_good_tokens_and_refuses_each_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let k = keys();
    write(&path, &jwks(&k, "ec-1"));
    let v = JwtValidator::new(&[config(&path, false)]).unwrap();
    let t = now();
    let ok = v
        .validate(&es256(&k, "ec-1", &claims(json!({}))), None, t)
        .unwrap();
    assert_eq!(ok.principal, "kc:vendor-ai");
    assert_eq!(ok.jti.as_deref(), Some("t-1"));
    assert!(v.validate(&eddsa(&k, &claims(json!({}))), None, t).is_ok());
    assert!(
        v.validate(&es256(&k, "ec-1", &claims(json!({"exp": t - 10}))), None, t)
            .is_ok(),
        "within the leeway"
    );
    let refused = |token: String| v.validate(&token, None, t).unwrap_err();
    assert_eq!(
        refused(es256(&k, "ec-1", &claims(json!({"exp": t - 31})))),
        TokenError::Expired
    );
    assert_eq!(
        refused(es256(&k, "ec-1", &claims(json!({"nbf": t + 60})))),
        TokenError::NotYetValid
    );
    assert_eq!(
        refused(es256(
            &k,
            "ec-1",
            &claims(json!({"iss": "https://evil.test"}))
        )),
        TokenError::Issuer
    );
    assert_eq!(
        refused(es256(&k, "ec-1", &claims(json!({"aud": "someone-else"})))),
        TokenError::Audience
    );
    assert_eq!(
        refused(es256(&k, "nope", &claims(json!({})))),
        TokenError::UnknownKey
    );
    assert_eq!(
        refused(forged(json!({"alg": "ES256"}), &claims(json!({})), |_| {
            vec![0; 64]
        })),
        TokenError::UnknownKey,
        "no kid"
    );
    assert_eq!(
        refused(forged(
            json!({"alg": "none", "kid": "ec-1"}),
            &claims(json!({})),
            |_| vec![]
        )),
        TokenError::Algorithm
    );
    // HMAC with the public key as the secret, and with the set's own oct key
    let public_as_secret = |m: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k.ec_public);
        ring::hmac::sign(&key, m).as_ref().to_vec()
    };
    assert_eq!(
        refused(forged(
            json!({"alg": "HS256", "kid": "ec-1"}),
            &claims(json!({})),
            public_as_secret
        )),
        TokenError::Algorithm
    );
    assert_eq!(
        refused(forged(
            json!({"alg": "HS256", "kid": "hmac-1"}),
            &claims(json!({})),
            |_| vec![1; 32]
        )),
        TokenError::Algorithm
    );
    // an Ed25519 signature presented as made by the EC key
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some("ec-1".into());
    let wrong_family =
        jsonwebtoken::encode(&h, &claims(json!({})), &EncodingKey::from_ed_der(&k.ed)).unwrap();
    assert_eq!(refused(wrong_family), TokenError::Algorithm);
    // a payload changed after signing
    let good = es256(&k, "ec-1", &claims(json!({})));
    let parts: Vec<&str> = good.split('.').collect();
    let other = B64.encode(claims(json!({"sub": "someone-else"})).to_string());
    assert_eq!(
        refused(format!("{}.{other}.{}", parts[0], parts[2])),
        TokenError::Signature
    );
    // a claim of the wrong type is malformed, not absent
    assert_eq!(
        refused(es256(&k, "ec-1", &claims(json!({"exp": "tomorrow"})))),
        TokenError::Malformed
    );
    assert_eq!(
        refused(es256(
            &k,
            "ec-1",
            &json!({"iss": ISS, "aud": AUD, "sub": "x"})
        )),
        TokenError::Malformed,
        "no exp"
    );
    assert_eq!(
        refused(forged(
            json!({"alg": "ES256", "kid": "ec-1", "crit": ["exp"]}),
            &claims(json!({})),
            |_| vec![0; 64]
        )),
        TokenError::Critical
    );
    assert_eq!(refused("not.a-token".into()), TokenError::Malformed);
}

#[test]
fn jsonwebtoken_alone_refuses_hmac_with_a_public_key() {
    // the library's own guard, under the one this crate adds: a key's
    // family decides, whatever the token's header says
    let k = keys();
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        &B64.encode(&k.ec_public[1..33]),
        &B64.encode(&k.ec_public[33..65]),
    )
    .unwrap();
    let token = forged(json!({"alg": "HS256"}), &claims(json!({})), |m| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k.ec_public);
        ring::hmac::sign(&key, m).as_ref().to_vec()
    });
    let e = jsonwebtoken::decode::<Value>(
        &token,
        &key,
        &jsonwebtoken::Validation::new(Algorithm::HS256),
    )
    .unwrap_err();
    assert_eq!(*e.kind(), jsonwebtoken::errors::ErrorKind::InvalidAlgorithm);
    let e = jsonwebtoken::decode::<Value>(
        &token,
        &key,
        &jsonwebtoken::Validation::new(Algorithm::ES256),
    )
    .unwrap_err();
    assert_eq!(*e.kind(), jsonwebtoken::errors::ErrorKind::InvalidAlgorithm);
}

#[test]
fn certificate_bound_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let k = keys();
    write(&path, &jwks(&k, "ec-1"));
    let cert = [7u8; 32];
    let bound = es256(
        &k,
        "ec-1",
        &claims(json!({"cnf": {"x5t#S256": B64.encode(cert)}})),
    );
    let v = JwtValidator::new(&[config(&path, false)]).unwrap();
    let t = now();
    assert!(v.validate(&bound, Some(&cert), t).is_ok());
    assert_eq!(
        v.validate(&bound, Some(&[8; 32]), t).unwrap_err(),
        TokenError::Binding
    );
    assert_eq!(
        v.validate(&bound, None, t).unwrap_err(),
        TokenError::Binding
    );
    let strict = JwtValidator::new(&[config(&path, true)]).unwrap();
    assert_eq!(
        strict
            .validate(&es256(&k, "ec-1", &claims(json!({}))), Some(&cert), t)
            .unwrap_err(),
        TokenError::Unbound
    );
    assert!(strict.validate(&bound, Some(&cert), t).is_ok());
}

#[test]
fn keys_rotate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (old, new) = (keys(), keys());
    write(&path, &jwks(&old, "ec-old"));
    let v = JwtValidator::new(&[config(&path, false)]).unwrap();
    let t = now();
    assert!(v
        .validate(&es256(&old, "ec-old", &claims(json!({}))), None, t)
        .is_ok());
    assert_eq!(
        v.validate(&es256(&new, "ec-new", &claims(json!({}))), None, t)
            .unwrap_err(),
        TokenError::UnknownKey
    );
    write(&path, &jwks(&new, "ec-new"));
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(2))
        .unwrap();
    assert!(
        v.validate(&es256(&new, "ec-new", &claims(json!({}))), None, t)
            .is_ok(),
        "an unknown kid re-reads the file"
    );
    assert_eq!(
        v.validate(&es256(&old, "ec-old", &claims(json!({}))), None, t)
            .unwrap_err(),
        TokenError::UnknownKey,
        "a key removed from the set is gone"
    );
    assert!(JwtValidator::new(&[IssuerConfig {
        leeway_secs: 301,
        ..config(&path, false)
    }])
    .is_err());
    std::fs::write(&path, "{\"keys\": []}").unwrap();
    assert!(
        JwtValidator::new(&[config(&path, false)]).is_err(),
        "no usable key"
    );
}

/// A JWKS served over HTTPS on loopback (rustls, a CA made here), the set
/// it serves replaceable, and the number of requests it answered.
struct JwksServer {
    url: String,
    ca: std::path::PathBuf,
    body: std::sync::Arc<std::sync::Mutex<String>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn jwks_server(dir: &Path, first: &Value) -> JwksServer {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "idp test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ca_path = dir.join(format!("idp-ca-{port}.pem"));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/realms/imaging/certs",
        listener.local_addr().unwrap().port()
    );
    let body = std::sync::Arc::new(std::sync::Mutex::new(first.to_string()));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (b, h) = (body.clone(), hits.clone());
    std::thread::spawn(move || {
        // bounded: a test makes a handful of fetches
        for stream in listener.incoming().take(50) {
            let Ok(tcp) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if req.is_empty() {
                continue;
            }
            h.fetch_add(1, Ordering::SeqCst);
            let text = b.lock().unwrap().clone();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    });
    JwksServer {
        url,
        ca: ca_path,
        body,
        hits,
    }
}

fn url_config(server: &JwksServer, ca: &Path) -> IssuerConfig {
    IssuerConfig {
        jwks_file: None,
        jwks_url: Some(server.url.clone()),
        jwks_ca: Some(ca.to_path_buf()),
        jwks_refresh_secs: 10,
        ..config(Path::new("unused"), false)
    }
}

#[test]
fn keys_from_an_https_jwks_uri_rotate_and_survive_a_bad_answer() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (keys(), keys());
    let server = jwks_server(dir.path(), &jwks(&old, "ec-old"));
    let v = JwtValidator::new(&[url_config(&server, &server.ca)]).unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "fetched at start");
    let t = now();
    assert!(v
        .validate(&es256(&old, "ec-old", &claims(json!({}))), None, t)
        .is_ok());
    // the provider rotates: the first token with the new kid is refused and
    // wakes the fetcher; within seconds the new key verifies, the old is gone
    *server.body.lock().unwrap() = jwks(&new, "ec-new").to_string();
    let fresh = es256(&new, "ec-new", &claims(json!({})));
    assert_eq!(
        v.validate(&fresh, None, t).unwrap_err(),
        TokenError::UnknownKey
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while v.validate(&fresh, None, now()).is_err() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        v.validate(&fresh, None, now()).is_ok(),
        "the rotated key after an unknown kid"
    );
    assert_eq!(
        v.validate(&es256(&old, "ec-old", &claims(json!({}))), None, now())
            .unwrap_err(),
        TokenError::UnknownKey
    );
    // an answer that is no JWKS never replaces the keys
    *server.body.lock().unwrap() = "<html>maintenance</html>".into();
    let before = server.hits.load(Ordering::SeqCst);
    let _ = v.validate(&es256(&old, "ec-other", &claims(json!({}))), None, now());
    while server.hits.load(Ordering::SeqCst) == before && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(server.hits.load(Ordering::SeqCst) > before, "fetched again");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        v.validate(&fresh, None, now()).is_ok(),
        "the previous keys kept"
    );
    // a server the configured CA did not sign, and plain http, are refused at start
    let stranger = jwks_server(dir.path(), &jwks(&old, "ec-old"));
    let e = JwtValidator::new(&[url_config(&stranger, &server.ca)])
        .err()
        .unwrap();
    assert!(e.to_string().contains("certificate"), "{e}");
    let mut plain = url_config(&server, &server.ca);
    plain.jwks_url = Some(server.url.replace("https://", "http://"));
    assert!(JwtValidator::new(&[plain]).is_err());
}
