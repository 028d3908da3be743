//! OAuth 2.0 / OIDC bearer JWTs (RFC 7519, RFC 9068), validated against a
//! JWKS file (RFC 7517) per configured issuer.
//!
//! What is accepted, and nothing else:
//! - the header's `alg` is RS256, PS256, ES256 or EdDSA (`none` and every
//!   HMAC algorithm are refused before any key is looked at), and its
//!   `kid` names a key of the JWKS whose type fits that algorithm (an RSA
//!   key verifies RS256/PS256 only, a P-256 key ES256, an Ed25519 key
//!   EdDSA); `oct` (symmetric) keys in a JWKS are ignored. The verifying
//!   algorithm is chosen from the key, so a token cannot turn a public key
//!   into an HMAC secret. `crit` headers are refused (no extension is
//!   understood);
//! - the signature verifies (jsonwebtoken over ring);
//! - claims of the right JSON types (a string `exp` is malformed, not
//!   absent): `iss` equal to the issuer's, `aud` containing the audience,
//!   `exp` required and `nbf` honoured, each with a small leeway;
//! - a certificate-bound token (RFC 8705, `cnf.x5t#S256`) only over a TLS
//!   connection whose verified client certificate has that SHA-256.
//!
//! Keys come from a JWKS file, re-read when it changes, or from the
//! provider's HTTPS `jwks_uri`, fetched again periodically and after an
//! unknown `kid` (see `jwks`), so keys rotate without a restart.

use crate::jwks::KeySet;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The signature algorithms accepted.
pub const ALGORITHMS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// Largest leeway a config may give, seconds.
pub const MAX_LEEWAY: u64 = 300;

/// `[[web.issuer]]`: an identity provider whose tokens are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// A short name: its principals are `<name>:<subject>` in grants and logs.
    pub name: String,
    /// The `iss` its tokens carry, exactly (e.g. `https://idp.example/realms/imaging`).
    pub issuer: String,
    /// The audience this archive is (`aud` must contain it).
    pub audience: String,
    /// Its signing keys: a JWKS file (re-read when it changes)...
    pub jwks_file: Option<PathBuf>,
    /// ...or its `jwks_uri` (https only), fetched at start and every
    /// `jwks_refresh_secs`, and soon after an unknown `kid`.
    pub jwks_url: Option<String>,
    /// CA certificates (PEM) that verify `jwks_url`'s server (default: the
    /// system bundle, /etc/ssl/certs/ca-certificates.crt).
    pub jwks_ca: Option<PathBuf>,
    /// How often `jwks_url` is fetched again, seconds (at least 10).
    #[serde(default = "default_refresh")]
    pub jwks_refresh_secs: u64,
    /// Clock skew allowed on `exp` and `nbf`, seconds (at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The claim naming the principal (`sub`; `azp` or `client_id` for
    /// client-credentials tokens of some providers).
    #[serde(default = "default_claim")]
    pub principal_claim: String,
    /// Refuse tokens that are not bound to the client certificate (RFC 8705).
    #[serde(default)]
    pub require_certificate_binding: bool,
}

fn default_leeway() -> u64 {
    30
}
fn default_refresh() -> u64 {
    300
}

/// The system's CA bundle (Debian's), for `jwks_url` without `jwks_ca`.
pub const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";
fn default_claim() -> String {
    "sub".into()
}

/// A configuration problem with an issuer (names the issuer, the file or URL).
#[derive(Debug, thiserror::Error)]
#[error("issuer `{0}`: {1}")]
pub struct JwksError(pub String, pub String);

/// Why a token was refused (logged and audited by its code; the client
/// sees only that the token is invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or claims of the wrong types.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not one of [`ALGORITHMS`] (`none`, HMAC...), or not the key's.
    #[error("algorithm not accepted")]
    Algorithm,
    /// No `kid`, or one that no configured JWKS holds.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// `iss` is not the issuer of the key's JWKS.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` does not contain this archive's audience.
    #[error("wrong audience")]
    Audience,
    /// `exp` has passed (beyond the leeway).
    #[error("expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("not yet valid")]
    NotYetValid,
    /// Bound to a certificate other than the connection's, or no certificate shown.
    #[error("certificate binding mismatch")]
    Binding,
    /// The issuer requires bound tokens and this one is not.
    #[error("token not bound to a certificate")]
    Unbound,
    /// A `crit` header: extensions that are not understood.
    #[error("critical header extension")]
    Critical,
}

impl TokenError {
    /// A short machine code for the audit log.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "token-malformed",
            TokenError::Algorithm => "token-algorithm",
            TokenError::UnknownKey => "token-unknown-kid",
            TokenError::Signature => "token-signature",
            TokenError::Issuer => "token-issuer",
            TokenError::Audience => "token-audience",
            TokenError::Expired => "token-expired",
            TokenError::NotYetValid => "token-not-yet-valid",
            TokenError::Binding => "token-certificate-mismatch",
            TokenError::Unbound => "token-unbound",
            TokenError::Critical => "token-critical-header",
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `<issuer name>:<principal claim>`.
    pub principal: String,
    /// Its `jti`, if it has one (for revocation).
    pub jti: Option<String>,
    /// Its `exp`, Unix seconds.
    pub expires: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Confirmation {
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: Audience,
    exp: i64,
    nbf: Option<i64>,
    jti: Option<String>,
    cnf: Option<Confirmation>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

struct Issuer {
    config: IssuerConfig,
    keys: KeySet,
}

/// The configured issuers and their keys.
pub struct JwtValidator {
    issuers: Vec<Issuer>,
}

impl JwtValidator {
    /// Load every issuer's JWKS (each must hold at least one usable key).
    pub fn new(configs: &[IssuerConfig]) -> Result<JwtValidator, JwksError> {
        let mut issuers = Vec::new();
        for c in configs {
            check_config(c)?;
            let keys = match (&c.jwks_file, &c.jwks_url) {
                (Some(f), None) => KeySet::file(&c.name, f),
                (None, Some(u)) => KeySet::url(
                    &c.name,
                    u,
                    c.jwks_ca.as_deref().unwrap_or(SYSTEM_CA.as_ref()),
                    Duration::from_secs(c.jwks_refresh_secs),
                ),
                _ => Err("set jwks_file or jwks_url (one of the two)".into()),
            }
            .map_err(|e| JwksError(c.name.clone(), e))?;
            issuers.push(Issuer {
                config: c.clone(),
                keys,
            });
        }
        Ok(JwtValidator { issuers })
    }

    /// Whether any issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Validate `token` at `now` (Unix seconds), over a connection whose
    /// verified client certificate has SHA-256 `cert` (if any).
    pub fn validate(
        &self,
        token: &str,
        cert: Option<&[u8; 32]>,
        now: i64,
    ) -> Result<Verified, TokenError> {
        let header: Header = part_json(token, 0)?;
        if !ALGORITHMS.contains(&header.alg.as_str()) {
            return Err(TokenError::Algorithm);
        }
        if header.crit.is_some() {
            return Err(TokenError::Critical);
        }
        let alg: Algorithm = header.alg.parse().map_err(|_| TokenError::Algorithm)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let issuer = self.issuer_of(&kid).ok_or(TokenError::UnknownKey)?;
        let c = &issuer.config;
        let claims: Claims = {
            let key = issuer.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
            if !key.algorithms.contains(&alg) {
                return Err(TokenError::Algorithm);
            }
            let mut v = Validation::new(alg);
            v.validate_exp = false;
            v.validate_nbf = false;
            v.validate_aud = false;
            v.required_spec_claims.clear();
            jsonwebtoken::decode::<Claims>(token, &key.key, &v)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Signature,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
                    _ => TokenError::Malformed,
                })?
                .claims
        };
        if claims.iss != c.issuer {
            return Err(TokenError::Issuer);
        }
        let audience_ok = match &claims.aud {
            Audience::One(a) => *a == c.audience,
            Audience::Many(list) => list.contains(&c.audience),
        };
        if !audience_ok {
            return Err(TokenError::Audience);
        }
        let leeway = c.leeway_secs as i64;
        if now >= claims.exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| now.saturating_add(leeway) < nbf)
        {
            return Err(TokenError::NotYetValid);
        }
        match claims.cnf.as_ref().and_then(|c| c.x5t_s256.as_deref()) {
            Some(thumb) => {
                let want = b64url(thumb).ok_or(TokenError::Malformed)?;
                let shown = cert.ok_or(TokenError::Binding)?;
                use subtle::ConstantTimeEq;
                if want.len() != 32 || !bool::from(want.as_slice().ct_eq(shown)) {
                    return Err(TokenError::Binding);
                }
            }
            None if c.require_certificate_binding => return Err(TokenError::Unbound),
            None => {}
        }
        let subject = claims
            .other
            .get(&c.principal_claim)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::Malformed)?;
        let principal = format!("{}:{subject}", c.name);
        if !crate::grant::is_principal_name(&principal) {
            return Err(TokenError::Malformed);
        }
        Ok(Verified {
            principal,
            jti: claims.jti,
            expires: claims.exp,
        })
    }

    /// The issuer whose JWKS holds `kid`, looking again at sets that may
    /// have changed (at once, for a kid none holds).
    fn issuer_of(&self, kid: &str) -> Option<&Issuer> {
        for i in &self.issuers {
            i.keys.refresh(false);
        }
        if let Some(i) = self.issuers.iter().find(|i| i.keys.get(kid).is_some()) {
            return Some(i);
        }
        for i in &self.issuers {
            i.keys.refresh(true);
        }
        self.issuers.iter().find(|i| i.keys.get(kid).is_some())
    }
}

fn check_config(c: &IssuerConfig) -> Result<(), JwksError> {
    let bad = |m: &str| Err(JwksError(c.name.clone(), m.to_string()));
    if c.name.is_empty()
        || !c
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
    {
        return bad("names are letters, digits, - _ .");
    }
    if c.issuer.is_empty() || c.audience.is_empty() {
        return bad("issuer and audience must be set");
    }
    if c.leeway_secs > MAX_LEEWAY {
        return bad("leeway_secs is at most 300");
    }
    if c.principal_claim.is_empty() {
        return bad("principal_claim must be set");
    }
    if c.jwks_refresh_secs < 10 {
        return bad("jwks_refresh_secs is at least 10");
    }
    Ok(())
}

/// The JSON of a token's part `i` (0 = header).
fn part_json<T: serde::de::DeserializeOwned>(token: &str, i: usize) -> Result<T, TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(TokenError::Malformed);
    }
    let bytes = b64url(parts[i]).ok_or(TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

fn b64url(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}
