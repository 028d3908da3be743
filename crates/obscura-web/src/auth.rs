//! Who is calling, and what this request may do: the one place every
//! request is authenticated and its access decided. A principal is proven
//! by a client certificate (mutual TLS, verified against the configured
//! CA, then matched by SHA-256 fingerprint or subject), by an opaque bearer
//! token (only its SHA-256 is configured, in a file readable by its owner
//! only; compared in constant time), or by an OAuth 2.0 / OIDC bearer JWT
//! of a configured issuer (`obscura-access`: signature against the
//! issuer's JWKS, issuer, audience, expiry, certificate binding).
//!
//! What it may do: a `[[web.principal]]` with a `tenant` owns that tenant
//! (everything in it: the tenant's own systems, the simple mode); every
//! other principal, JWT principals always, has only what its live grants
//! allow (`obscura-access`, asked on every request): no grant, no access.
//! Anything else is refused, and the refusal is audited in the log with
//! the address and the reason, never the path or a credential.

use crate::config::{ConfigError, PrincipalConfig, WebConfig};
use obscura_access::{
    Access, GrantStore, JwtValidator, NoAccess, Policy, QueryResolver, Refusal, TokenError,
};
use obscura_vault::{TenantId, Vault};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What the connection showed before any HTTP was read.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// SHA-256 of the verified client certificate (DER), if one was presented.
    pub cert_sha256: Option<[u8; 32]>,
    /// The verified client certificate's subject, as (attribute, value) pairs.
    pub cert_subject: Option<Vec<(String, String)>>,
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A verified client certificate.
    Certificate,
    /// An opaque bearer token of the tokens file.
    Token,
    /// A bearer JWT of a configured issuer.
    Jwt,
    /// A share link's token in the request path (`/share/<token>/...`).
    ShareLink,
}

/// An authenticated caller, the tenant it acts for and what it may do there.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Its name (configured, or `<issuer>:<subject>` for a JWT).
    pub name: Arc<str>,
    /// The tenant every request of it reads and writes.
    pub tenant: TenantId,
    /// How it authenticated.
    pub method: Method,
    /// What it may do, decided for this request.
    pub access: Arc<Access>,
    /// What this request's response returned, for the audit log (shared
    /// by every clone of this principal; fresh per request).
    pub returned: crate::audit::Returned,
    /// The path the request came under, put before the URLs its response
    /// writes (`/share/<token>` for a share link, else empty).
    pub base_path: Arc<str>,
}

/// Why a request was refused (logged; the client sees only the status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No certificate of a principal and no bearer token.
    NoCredentials,
    /// A verified client certificate that no principal names.
    UnknownCertificate,
    /// An opaque bearer token that matches no configured hash.
    BadToken,
    /// An Authorization header that is not `Bearer <token>`.
    BadScheme,
    /// A JWT that failed a check.
    Jwt(TokenError),
    /// A JWT whose `jti` was revoked.
    TokenRevoked,
    /// An authenticated principal that no live grant names.
    NoGrant,
    /// Live grants in more than one tenant.
    SeveralTenants,
    /// The grant store could not be asked (fail closed).
    StoreUnavailable,
    /// A share link that names no link, or whose secret is wrong.
    BadLink,
}

impl Denied {
    /// A short machine code for the audit log.
    pub fn code(self) -> &'static str {
        match self {
            Denied::NoCredentials => "no-credentials",
            Denied::UnknownCertificate => "unknown-certificate",
            Denied::BadToken => "invalid-token",
            Denied::BadScheme => "unsupported-scheme",
            Denied::Jwt(e) => e.code(),
            Denied::TokenRevoked => "token-revoked",
            Denied::NoGrant => "no-grant",
            Denied::SeveralTenants => "grants-in-several-tenants",
            Denied::StoreUnavailable => "grant-store-unavailable",
            Denied::BadLink => "invalid-share-link",
        }
    }

    /// A short reason for the log.
    pub fn reason(self) -> String {
        match self {
            Denied::NoCredentials => "no credentials".into(),
            Denied::UnknownCertificate => "client certificate of no principal".into(),
            Denied::BadToken => "invalid bearer token".into(),
            Denied::BadScheme => "unsupported authorization scheme".into(),
            Denied::Jwt(e) => format!("bearer JWT refused: {e}"),
            Denied::TokenRevoked => "bearer JWT revoked".into(),
            Denied::NoGrant => "no live grant".into(),
            Denied::SeveralTenants => "live grants in more than one tenant".into(),
            Denied::StoreUnavailable => "the grant store is unavailable".into(),
            Denied::BadLink => "invalid share link".into(),
        }
    }

    /// The HTTP status: 401 for credentials, 403 for a principal without
    /// access, 503 when the decision could not be made.
    pub fn status(self) -> u16 {
        match self {
            Denied::NoGrant | Denied::SeveralTenants => 403,
            Denied::StoreUnavailable => 503,
            _ => 401,
        }
    }
}

/// A refused request: why, and the principal its credentials proved, if
/// they did (a valid token without a live grant, or a revoked one).
#[derive(Debug, Clone)]
pub struct Refused {
    /// Why.
    pub denied: Denied,
    /// Who, when known.
    pub principal: Option<Arc<str>>,
}

impl From<Denied> for Refused {
    fn from(denied: Denied) -> Self {
        Refused {
            denied,
            principal: None,
        }
    }
}

struct Entry {
    name: Arc<str>,
    /// The tenant it owns (whole-tenant access), or none: grants decide.
    tenant: Option<TenantId>,
    fingerprints: Vec<[u8; 32]>,
    subjects: Vec<Vec<(String, String)>>,
}

/// Who a request's credentials prove, before access is decided.
struct Identity {
    name: Arc<str>,
    method: Method,
    owns: Option<TenantId>,
    jti: Option<String>,
}

/// The principals, their credentials and the grants, compiled from the config.
pub struct Authenticator {
    entries: Vec<Entry>,
    /// (SHA-256 of a token, index into `entries`).
    tokens: Vec<([u8; 32], usize)>,
    jwt: JwtValidator,
    policy: Policy,
}

impl Authenticator {
    /// Compile the `[web]` principals, issuers and static grants over the
    /// grant `store` (if any): tenants are resolved by name or id in the
    /// vault (an unknown tenant is an error), token hashes read from the
    /// tokens file (refused if others can read it), JWKS files loaded.
    pub fn new(
        config: &WebConfig,
        vault: &Vault,
        store: Option<Arc<dyn GrantStore>>,
    ) -> Result<Authenticator, ConfigError> {
        let tenants = vault
            .list_tenants()
            .map_err(|e| ConfigError::Invalid(format!("listing tenants: {e}")))?;
        let resolve = |what: &str, tenant: &str| {
            tenants
                .iter()
                .find(|t| t.name == tenant || t.id.as_str() == tenant)
                .map(|t| t.id.clone())
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "{what}: no tenant `{tenant}` in the archive (obscura tenant list)"
                    ))
                })
        };
        let mut entries = Vec::new();
        for p in &config.principals {
            let tenant = match &p.tenant {
                Some(t) => Some(resolve(&format!("principal `{}`", p.name), t)?),
                None => None,
            };
            entries.push(entry(p, tenant)?);
        }
        let mut fixed = Vec::new();
        for (i, g) in config.grants.iter().enumerate() {
            let what = format!("grant {} (principal `{}`)", i + 1, g.principal);
            if entries
                .iter()
                .any(|e| *e.name == g.principal && e.tenant.is_some())
            {
                return Err(ConfigError::Invalid(format!(
                    "{what}: that principal owns its tenant ([[web.principal]] with tenant); \
                     remove its tenant to give it grants instead"
                )));
            }
            let tenant = resolve(&what, &g.tenant)?;
            fixed.push(
                g.compile(tenant.as_str())
                    .map_err(|e| ConfigError::Invalid(format!("{what}: {e}")))?,
            );
        }
        let tokens = match &config.tokens_file {
            Some(path) => read_tokens(path, &entries)?,
            None => Vec::new(),
        };
        let jwt =
            JwtValidator::new(&config.issuers).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(Authenticator {
            entries,
            tokens,
            jwt,
            policy: Policy::new(fixed, store),
        })
    }

    /// Authenticate one request from `peer` with its `Authorization` header
    /// value, if any, or the share link token of its path, and decide what
    /// it may do (query scopes resolved by `queries`). A share link decides
    /// alone; else a bearer token, when present, decides who it is (a wrong
    /// token is refused even on a known certificate); otherwise the
    /// certificate.
    pub fn authenticate(
        &self,
        peer: &Peer,
        authorization: Option<&[u8]>,
        link: Option<&str>,
        queries: QueryResolver<'_>,
    ) -> Result<Principal, Refused> {
        let now = obscura_access::time::now();
        let who = match link {
            Some(token) => Identity {
                name: Arc::from(self.policy.link(token).map_err(|r| match r {
                    Refusal::Store(e) => {
                        log::warn!("web: {e}");
                        Denied::StoreUnavailable
                    }
                    _ => Denied::BadLink,
                })?),
                method: Method::ShareLink,
                owns: None,
                jti: None,
            },
            None => self.identify(peer, authorization, now)?,
        };
        let access = match &who.owns {
            Some(t) => Access::owner(t.as_str()),
            None => self
                .policy
                .access(&who.name, who.jti.as_deref(), now, queries)
                .map_err(|r| Refused {
                    denied: match r {
                        Refusal::NoAccess(NoAccess::NoGrant) => Denied::NoGrant,
                        Refusal::NoAccess(NoAccess::SeveralTenants) => Denied::SeveralTenants,
                        Refusal::TokenRevoked => Denied::TokenRevoked,
                        Refusal::BadLink => Denied::BadLink,
                        Refusal::Store(_) | Refusal::Query(_) => {
                            log::warn!("web: {r}");
                            Denied::StoreUnavailable
                        }
                    },
                    principal: Some(Arc::clone(&who.name)),
                })?,
        };
        principal(who, access, link)
    }

    /// What [`authenticate`](Self::authenticate) decides, when deciding it
    /// needs neither the grant store nor the index: a request without a
    /// share link from a configured principal that owns its tenant, by its
    /// static token or client certificate (a hash and comparisons, fit for
    /// the runtime's threads). `None`: anything else, for `authenticate`
    /// on a blocking thread.
    pub fn owner(
        &self,
        peer: &Peer,
        authorization: Option<&[u8]>,
        link: Option<&str>,
    ) -> Option<Principal> {
        if link.is_some() {
            return None;
        }
        let who = match authorization {
            Some(value) => self.configured(self.token_owner(bearer(value)?)?, Method::Token),
            None => self.configured(self.certificate_owner(peer)?, Method::Certificate),
        };
        let access = Access::owner(who.owns.as_ref()?.as_str());
        principal(who, access, None).ok()
    }

    /// Count a read of `study` against the daily quotas that cover it for
    /// `principal` (see [`Policy::charge`]): false when they are used up.
    pub fn charge(&self, principal: &Principal, study: &str) -> Result<bool, Refusal> {
        self.policy
            .charge(&principal.access, study, obscura_access::time::now())
    }

    fn identify(
        &self,
        peer: &Peer,
        authorization: Option<&[u8]>,
        now: i64,
    ) -> Result<Identity, Denied> {
        if let Some(value) = authorization {
            let token = bearer(value).ok_or(Denied::BadScheme)?;
            if let Some(i) = self.token_owner(token) {
                return Ok(self.configured(i, Method::Token));
            }
            let jwt_shaped = token.iter().filter(|b| **b == b'.').count() == 2;
            if self.jwt.is_empty() || !jwt_shaped {
                return Err(Denied::BadToken);
            }
            let text = std::str::from_utf8(token).map_err(|_| Denied::BadToken)?;
            let v = self
                .jwt
                .validate(text, peer.cert_sha256.as_ref(), now)
                .map_err(Denied::Jwt)?;
            return Ok(Identity {
                name: Arc::from(v.principal),
                method: Method::Jwt,
                owns: None,
                jti: v.jti,
            });
        }
        match self.certificate_owner(peer) {
            Some(i) => Ok(self.configured(i, Method::Certificate)),
            None if peer.cert_sha256.is_some() => Err(Denied::UnknownCertificate),
            None => Err(Denied::NoCredentials),
        }
    }

    /// The principal whose client certificate `peer` presented, by
    /// fingerprint or subject.
    fn certificate_owner(&self, peer: &Peer) -> Option<usize> {
        let by_fingerprint = peer.cert_sha256.and_then(|fp| {
            self.entries
                .iter()
                .position(|e| e.fingerprints.contains(&fp))
        });
        let by_subject = || {
            let subject = peer.cert_subject.as_ref()?;
            let mut want = subject.clone();
            want.sort();
            self.entries.iter().position(|e| e.subjects.contains(&want))
        };
        by_fingerprint.or_else(by_subject)
    }

    fn configured(&self, i: usize, method: Method) -> Identity {
        Identity {
            name: Arc::clone(&self.entries[i].name),
            method,
            owns: self.entries[i].tenant.clone(),
            jti: None,
        }
    }

    /// The principal whose token hash matches, comparing against every
    /// configured hash in constant time (no early exit).
    fn token_owner(&self, token: &[u8]) -> Option<usize> {
        let presented: [u8; 32] = Sha256::digest(token).into();
        let mut found = usize::MAX;
        for (hash, owner) in &self.tokens {
            let hit = hash.ct_eq(&presented);
            // select without branching on the secret comparison
            let mask = (hit.unwrap_u8() as usize).wrapping_neg();
            found = (found & !mask) | (owner & mask);
        }
        (found != usize::MAX).then_some(found)
    }
}

/// The principal `who` is with `access`, reached by `link` if any.
fn principal(who: Identity, access: Access, link: Option<&str>) -> Result<Principal, Refused> {
    let tenant = TenantId::parse(access.tenant()).ok_or_else(|| Refused {
        denied: Denied::NoGrant,
        principal: Some(Arc::clone(&who.name)),
    })?;
    Ok(Principal {
        name: who.name,
        tenant,
        method: who.method,
        access: Arc::new(access),
        returned: Default::default(),
        base_path: match link {
            Some(token) => Arc::from(format!("/share/{token}")),
            None => Arc::from(""),
        },
    })
}

fn entry(p: &PrincipalConfig, tenant: Option<TenantId>) -> Result<Entry, ConfigError> {
    let mut subjects = Vec::new();
    for s in &p.client_cert_subject {
        let mut parsed = parse_subject(s).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "principal `{}`: client_cert_subject is not `TYPE=value,...`",
                p.name
            ))
        })?;
        parsed.sort();
        subjects.push(parsed);
    }
    Ok(Entry {
        name: Arc::from(p.name.as_str()),
        tenant,
        fingerprints: p
            .client_cert_sha256
            .iter()
            .filter_map(|f| parse_fingerprint(f))
            .collect(),
        subjects,
    })
}

/// The token of `Bearer <token>` (scheme case-insensitive), if well formed.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Read `<sha256 hex> <principal>` lines (`#` comments, blank lines).
fn read_tokens(path: &Path, entries: &[Entry]) -> Result<Vec<([u8; 32], usize)>, ConfigError> {
    let file_err = |m: String| ConfigError::File(path.to_path_buf(), m);
    if readable_by_others(path).map_err(|e| file_err(e.to_string()))? {
        return Err(file_err(
            "readable by others: run chmod 600 on it".to_string(),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(hash), Some(name), None) = (words.next(), words.next(), words.next()) else {
            return Err(file_err(format!(
                "line {}: expected `<sha256 hex> <principal>`",
                n + 1
            )));
        };
        let hash = parse_fingerprint(hash.trim_start_matches("sha256:"))
            .ok_or_else(|| file_err(format!("line {}: not a SHA-256 in hex", n + 1)))?;
        let owner = entries
            .iter()
            .position(|e| &*e.name == name)
            .ok_or_else(|| file_err(format!("line {}: unknown principal `{name}`", n + 1)))?;
        out.push((hash, owner));
    }
    Ok(out)
}

/// Whether a file may be read by its group or others.
pub fn readable_by_others(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o077 != 0)
}

/// A SHA-256 in hex (`:` separators allowed, any case).
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// `CN=a,O=b` (`\,` escapes a comma) into (TYPE upper case, value) pairs.
fn parse_subject(s: &str) -> Option<Vec<(String, String)>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.push(chars.next()?),
            ',' | '+' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_uppercase();
            (!k.is_empty()).then(|| (k, v.trim().to_string()))
        })
        .collect()
}

/// The subject of a DER certificate as (TYPE, value) pairs, or `None` if
/// it cannot be read. Only called on certificates rustls has verified.
pub fn certificate_subject(der: &[u8]) -> Option<Vec<(String, String)>> {
    let (cert, _) = der_take(der, 0x30)?;
    let (mut tbs, _) = der_take(cert, 0x30)?;
    if tbs.first() == Some(&0xA0) {
        tbs = der_skip(tbs)?;
    }
    for _ in 0..4 {
        // serial, signature algorithm, issuer, validity
        tbs = der_skip(tbs)?;
    }
    let (mut name, _) = der_take(tbs, 0x30)?;
    let mut out = Vec::new();
    while !name.is_empty() {
        let (mut rdn, rest) = der_take(name, 0x31)?;
        name = rest;
        while !rdn.is_empty() {
            let (atv, rest) = der_take(rdn, 0x30)?;
            rdn = rest;
            let (oid, value) = der_take(atv, 0x06)?;
            let (tag, body) = (value.first().copied()?, der_take_any(value)?.0);
            let text = match tag {
                0x1E => {
                    let units: Vec<u16> = body
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => String::from_utf8_lossy(body).into_owned(),
            };
            out.push((oid_name(oid), text));
        }
    }
    Some(out)
}

fn oid_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0A] => "O".into(),
        [0x55, 0x04, 0x0B] => "OU".into(),
        [0x55, 0x04, 0x05] => "SERIALNUMBER".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID".into(),
        _ => oid.iter().map(|b| format!("{b:02X}")).collect(),
    }
}

/// The body of a DER element with tag `tag` at the start of `d`, and what follows.
fn der_take(d: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    (d.first() == Some(&tag)).then_some(())?;
    der_take_any(d)
}

fn der_take_any(d: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *d.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in d.get(2..2 + n)? {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let body = d.get(head..head.checked_add(len)?)?;
    Some((body, &d[head + len..]))
}

fn der_skip(d: &[u8]) -> Option<&[u8]> {
    der_take_any(d).map(|(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: QueryResolver<'static> = &|_, _| Ok(Default::default());

    fn auth(tokens: &[(&str, usize)]) -> Authenticator {
        Authenticator {
            entries: vec![
                Entry {
                    name: "a".into(),
                    tenant: TenantId::parse(&"a".repeat(32)),
                    fingerprints: vec![[7; 32]],
                    subjects: vec![vec![
                        ("CN".into(), "reader".into()),
                        ("O".into(), "X".into()),
                    ]],
                },
                Entry {
                    name: "b".into(),
                    tenant: TenantId::parse(&"b".repeat(32)),
                    fingerprints: vec![],
                    subjects: vec![],
                },
                Entry {
                    name: "vendor".into(),
                    tenant: None,
                    fingerprints: vec![[6; 32]],
                    subjects: vec![],
                },
            ],
            tokens: tokens
                .iter()
                .map(|(t, o)| (Sha256::digest(t.as_bytes()).into(), *o))
                .collect(),
            jwt: JwtValidator::new(&[]).unwrap(),
            policy: Policy::new(
                vec![obscura_access::NewGrant {
                    principal: "vendor".into(),
                    tenant: "c".repeat(32),
                    scope: obscura_access::Scope::studies(["1.2.3"]).unwrap(),
                    actions: obscura_access::Actions::parse(["read"]).unwrap(),
                    view: obscura_access::View::Original,
                    expires: None,
                    quota: None,
                }],
                None,
            ),
        }
    }

    fn peer(cert: Option<[u8; 32]>) -> Peer {
        Peer {
            addr: "127.0.0.1:1".parse().unwrap(),
            tls: true,
            cert_sha256: cert,
            cert_subject: None,
        }
    }

    #[test]
    fn tokens_and_certificates() {
        let a = auth(&[("secret-a", 0), ("secret-b", 1)]);
        let p = a
            .authenticate(&peer(None), Some(b"Bearer secret-b"), None, NONE)
            .unwrap();
        assert_eq!(&*p.name, "b");
        assert_eq!(p.method, Method::Token);
        assert_eq!(
            a.authenticate(&peer(None), Some(b"bearer  secret-a"), None, NONE)
                .unwrap()
                .name
                .as_ref(),
            "a"
        );
        assert_eq!(
            a.authenticate(&peer(None), Some(b"Bearer secret-c"), None, NONE)
                .unwrap_err()
                .denied,
            Denied::BadToken
        );
        assert_eq!(
            a.authenticate(&peer(Some([7; 32])), Some(b"Bearer nope"), None, NONE)
                .unwrap_err()
                .denied,
            Denied::BadToken,
            "a wrong token is refused even on a known certificate"
        );
        assert_eq!(
            a.authenticate(&peer(None), Some(b"Basic YTpi"), None, NONE)
                .unwrap_err()
                .denied,
            Denied::BadScheme
        );
        assert_eq!(
            a.authenticate(&peer(None), None, None, NONE)
                .unwrap_err()
                .denied,
            Denied::NoCredentials
        );
        assert_eq!(
            a.authenticate(&peer(Some([8; 32])), None, None, NONE)
                .unwrap_err()
                .denied,
            Denied::UnknownCertificate
        );
        let p = a
            .authenticate(&peer(Some([7; 32])), None, None, NONE)
            .unwrap();
        assert_eq!((&*p.name, p.method), ("a", Method::Certificate));
        let mut by_subject = peer(Some([9; 32]));
        by_subject.cert_subject = Some(vec![
            ("O".into(), "X".into()),
            ("CN".into(), "reader".into()),
        ]);
        assert_eq!(
            &*a.authenticate(&by_subject, None, None, NONE).unwrap().name,
            "a"
        );
        let owner = a
            .authenticate(&peer(Some([7; 32])), None, None, NONE)
            .unwrap();
        assert!(owner.access.is_owner());
        let vendor = a
            .authenticate(&peer(Some([6; 32])), None, None, NONE)
            .unwrap();
        assert_eq!(vendor.tenant.as_str(), "c".repeat(32));
        assert!(vendor.access.allows(obscura_access::Action::Read, "1.2.3"));
        assert!(!vendor.access.allows(obscura_access::Action::Read, "1.2.4"));
        assert!(!vendor.access.allows_any(obscura_access::Action::Write));
    }

    #[test]
    fn owners_are_decided_inline_as_authenticate_decides_them() {
        let a = auth(&[("secret-a", 0), ("secret-v", 2)]);
        let mut by_subject = peer(Some([9; 32]));
        by_subject.cert_subject = Some(vec![
            ("CN".into(), "reader".into()),
            ("O".into(), "X".into()),
        ]);
        let owners: [(Peer, Option<&[u8]>); 4] = [
            (peer(None), Some(b"Bearer secret-a")),
            (peer(Some([7; 32])), Some(b"bearer  secret-a")),
            (peer(Some([7; 32])), None),
            (by_subject, None),
        ];
        for (p, authorization) in &owners {
            let inline = a.owner(p, *authorization, None).expect("an owner");
            let full = a.authenticate(p, *authorization, None, NONE).unwrap();
            assert_eq!(
                (
                    &inline.name,
                    inline.method,
                    &inline.tenant,
                    &inline.base_path
                ),
                (&full.name, full.method, &full.tenant, &full.base_path)
            );
            assert!(inline.access.is_owner() && full.access.is_owner());
            assert!(
                a.owner(p, *authorization, Some("g.s")).is_none(),
                "a share link decides alone"
            );
        }
        // left to `authenticate`: grants, refusals, JWTs
        for (p, authorization) in [
            (peer(Some([6; 32])), None),
            (peer(None), Some(&b"Bearer secret-v"[..])),
            (peer(Some([7; 32])), Some(&b"Bearer nope"[..])),
            (peer(None), Some(&b"Bearer a.b.c"[..])),
            (peer(None), Some(&b"Basic YTpi"[..])),
            (peer(Some([8; 32])), None),
            (peer(None), None),
        ] {
            assert!(a.owner(&p, authorization, None).is_none());
        }
    }

    #[test]
    fn a_principal_without_a_tenant_or_a_grant_is_refused() {
        let mut a = auth(&[("secret-v", 2)]);
        a.policy = Policy::new(vec![], None);
        let denied = a
            .authenticate(&peer(None), Some(b"Bearer secret-v"), None, NONE)
            .unwrap_err()
            .denied;
        assert_eq!((denied, denied.status()), (Denied::NoGrant, 403));
        assert_eq!(
            a.authenticate(&peer(None), Some(b"Bearer a.b.c"), None, NONE)
                .unwrap_err()
                .denied,
            Denied::BadToken,
            "JWT-shaped, but no issuer is configured"
        );
    }

    #[test]
    fn subjects_and_fingerprints_parse() {
        assert_eq!(
            parse_subject("CN=a\\,b, O=X").unwrap(),
            vec![("CN".into(), "a,b".into()), ("O".into(), "X".into())]
        );
        assert!(parse_subject("nonsense").is_none());
        assert!(parse_fingerprint(&"ab:".repeat(31).replace(':', "")).is_none());
        assert_eq!(parse_fingerprint(&"AB".repeat(32)), Some([0xAB; 32]));
    }

    #[test]
    fn reads_a_certificate_subject() {
        let mut params = rcgen::CertificateParams::new(vec!["x.test".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Clinic, Inc");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "reader-1");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let mut s = certificate_subject(cert.der()).unwrap();
        s.sort();
        assert_eq!(
            s,
            vec![
                ("CN".to_string(), "reader-1".to_string()),
                ("O".to_string(), "Clinic, Inc".to_string())
            ]
        );
        assert!(certificate_subject(&cert.der()[..40]).is_none());
    }
}
