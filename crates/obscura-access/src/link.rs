//! Share links: capabilities for people outside the identity provider. A
//! link is a grant of its own (principal `share:<grant id>`: read-only,
//! one study, expiring, revocable like any grant) and a secret of 256
//! random bits; the token `<grant id>.<secret>` goes into the link's URL.
//! The store keeps only the secret's SHA-256, compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new link token's secret part and the SHA-256 the store keeps.
pub fn new_secret() -> Result<(String, [u8; 32]), getrandom::Error> {
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw)?;
    let secret = URL_SAFE_NO_PAD.encode(raw);
    let hash = Sha256::digest(secret.as_bytes()).into();
    Ok((secret, hash))
}

/// The token of a link: its grant id and secret.
pub fn token(id: &str, secret: &str) -> String {
    format!("{id}.{secret}")
}

/// The grant id a token names, if it is shaped like one (`g-` and 16 hex
/// digits, a dot, 43 base64url characters); the secret is checked by [`verify`].
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let hex = id.strip_prefix("g-")?;
    let id_ok = hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// Whether `secret` hashes to `stored`, in constant time.
pub fn verify(secret: &str, stored: &[u8; 32]) -> bool {
    let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    presented.ct_eq(stored).into()
}

/// The principal of a link's grant.
pub fn principal(id: &str) -> String {
    format!("share:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_verify() {
        let (secret, hash) = new_secret().unwrap();
        let t = token("g-0123456789abcdef", &secret);
        let (id, s) = parse(&t).unwrap();
        assert_eq!((id, s), ("g-0123456789abcdef", secret.as_str()));
        assert!(verify(s, &hash));
        let mut other = secret.clone().into_bytes();
        other[0] = if other[0] == b'A' { b'B' } else { b'A' };
        assert!(!verify(std::str::from_utf8(&other).unwrap(), &hash));
        for bad in [
            "",
            "g-0123.x",
            "g-0123456789abcdef",
            "x-0123456789abcdef.aaa",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(parse(&format!("g-0123456789abcdef.{}", "a".repeat(42) + "/")).is_none());
    }
}
