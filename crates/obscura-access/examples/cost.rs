//! What deciding a request costs: validating a bearer JWT (ES256, EdDSA)
//! and asking the grant store (live grants and the token's revocation),
//! against hashing an opaque token (the tokens-file path) in the same run.
//! Median of 5 runs of N operations each.
//!
//! `cargo run --release -p obscura-access --example cost -- [N]`

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use obscura_access::time::now;
use obscura_access::{
    Actions, GrantStore, IssuerConfig, JwtValidator, NewGrant, Policy, Scope, SealKey, SqliteStore,
    View,
};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use sha2::Digest;
use std::sync::Arc;
use std::time::Instant;

fn median_ns(n: u32, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let rng = SystemRandom::new();
    let ec = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec_pub = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec.as_ref(), &rng)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed_pub = Ed25519KeyPair::from_pkcs8(ed.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec", "x": B64.encode(&ec_pub[1..33]), "y": B64.encode(&ec_pub[33..65])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": B64.encode(&ed_pub)},
        ]})
        .to_string(),
    )
    .unwrap();
    let v = JwtValidator::new(&[IssuerConfig {
        name: "idp".into(),
        issuer: "https://idp".into(),
        audience: "archive".into(),
        jwks_file: Some(jwks),
        jwks_url: None,
        jwks_ca: None,
        jwks_refresh_secs: 300,
        leeway_secs: 30,
        principal_claim: "sub".into(),
        require_certificate_binding: false,
    }])
    .unwrap();
    let claims = json!({"iss": "https://idp", "aud": "archive", "sub": "vendor", "exp": now() + 3600, "jti": "j-1"});
    let token = |alg, kid: &str, key: &EncodingKey| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, key).unwrap()
    };
    let es = token(
        Algorithm::ES256,
        "ec",
        &EncodingKey::from_ec_der(ec.as_ref()),
    );
    let eddsa = token(
        Algorithm::EdDSA,
        "ed",
        &EncodingKey::from_ed_der(ed.as_ref()),
    );
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("access.sqlite"), SealKey::derive(&[1; 32])).unwrap(),
    );
    for i in 0..1000 {
        let studies: Vec<String> = (0..20).map(|s| format!("1.2.3.{i}.{s}")).collect();
        let principal = if i % 250 == 0 {
            "idp:vendor".to_string()
        } else {
            format!("idp:other-{i}")
        };
        store
            .add(
                NewGrant {
                    principal,
                    tenant: "t".repeat(32),
                    scope: Scope::studies(&studies).unwrap(),
                    actions: Actions::parse(["search,read"]).unwrap(),
                    view: View::Original,
                    expires: Some(now() + 3600),
                    quota: None,
                },
                now(),
            )
            .unwrap();
    }
    let policy = Policy::new(vec![], Some(store as Arc<dyn GrantStore>));
    let t = now();
    let opaque = median_ns(n * 10, || {
        std::hint::black_box(sha2::Sha256::digest(
            b"an-opaque-token-of-forty-three-characters!!",
        ));
    });
    let es_ns = median_ns(n, || {
        v.validate(&es, None, t).unwrap();
    });
    let ed_ns = median_ns(n, || {
        v.validate(&eddsa, None, t).unwrap();
    });
    let grants = median_ns(n, || {
        policy
            .access("idp:vendor", Some("j-1"), t, &|_, _| Ok(Default::default()))
            .unwrap();
    });
    println!("per request, median of 5 x {n}:");
    println!("  opaque token SHA-256      {:>9.1} us", opaque / 1000.0);
    println!("  JWT ES256 validation      {:>9.1} us", es_ns / 1000.0);
    println!("  JWT EdDSA validation      {:>9.1} us", ed_ns / 1000.0);
    println!(
        "  grant store (4 live grants of 1000, 20 sealed studies each; jti check) {:>9.1} us",
        grants / 1000.0
    );
}
