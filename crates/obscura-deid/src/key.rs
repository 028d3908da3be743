//! The secret key every pseudonym is derived from.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// Why a key file's contents are not a key. Never includes the contents.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// The text is not 64 hexadecimal digits.
    #[error("a key is 64 hexadecimal digits (256 bits); found {0} characters")]
    BadLength(usize),
    /// A character is not a hexadecimal digit.
    #[error("a key holds only hexadecimal digits")]
    NotHex,
}

/// A 256-bit secret key. Its `Debug` output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A key from raw bytes (for example from the OS random source).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// Parse the text of a key file: 64 hex digits, surrounding whitespace ignored.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        if t.len() != 2 * KEY_LEN {
            return Err(KeyError::BadLength(t.chars().count()));
        }
        let mut out = [0u8; KEY_LEN];
        for (i, pair) in t.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|_| KeyError::NotHex)?;
            out[i] = u8::from_str_radix(s, 16).map_err(|_| KeyError::NotHex)?;
        }
        Ok(SecretKey(out))
    }

    /// The key as 64 lowercase hex digits, the key file format.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// HMAC-SHA256 of `value` under this key, separated by `domain` so that
    /// a UID and a patient ID with the same text never share a pseudonym.
    pub fn derive(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let k = SecretKey::from_bytes([7; 32]);
        assert_eq!(
            SecretKey::from_hex(&format!(" {}\n", k.to_hex())).unwrap(),
            k
        );
        assert_eq!(SecretKey::from_hex("abcd"), Err(KeyError::BadLength(4)));
        assert_eq!(SecretKey::from_hex(&"zz".repeat(32)), Err(KeyError::NotHex));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = SecretKey::from_bytes([0xAB; 32]);
        assert!(!format!("{k:?}").contains("ab"));
    }

    #[test]
    fn derivation_depends_on_key_domain_and_value() {
        let a = SecretKey::from_bytes([1; 32]);
        let b = SecretKey::from_bytes([2; 32]);
        assert_eq!(a.derive("uid", b"1.2.3"), a.derive("uid", b"1.2.3"));
        assert_ne!(a.derive("uid", b"1.2.3"), b.derive("uid", b"1.2.3"));
        assert_ne!(a.derive("uid", b"1.2.3"), a.derive("patient-id", b"1.2.3"));
        assert_ne!(a.derive("uid", b"1.2.3"), a.derive("uid", b"1.2.4"));
    }
}
