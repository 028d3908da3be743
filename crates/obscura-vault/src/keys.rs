//! The key hierarchy.
//!
//! ```text
//! master key (32 bytes, a file readable by its owner only; read by the caller)
//!   └─ HKDF "master-wrap" ─► wraps each tenant key (AES-256-GCM, AAD = tenant id)
//! tenant key (32 random bytes, stored only wrapped, in the tenants table)
//!   ├─ HKDF "object-wrap"  ─► wraps each object's data key (AAD = tenant, object name, header)
//!   ├─ HKDF "index-value"  ─► encrypts index records (AAD = tenant, table, row's UID hash)
//!   └─ HKDF "index-match"  ─► HMAC-SHA256 match columns and object names
//! data key (32 random bytes per object, stored wrapped in the object's header)
//!   └─ encrypts the object's segments (see `segment`)
//! ```
//!
//! Every key is zeroed when dropped (ring's expanded AES key schedules are
//! not: ring offers no way to). Wrapping is AES-256-GCM (ring) with a random
//! 96-bit nonce: `nonce || ciphertext || tag`, 60 bytes for a 32-byte key.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

/// Length of every key in the hierarchy, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of a wrapped key: nonce, encrypted key, tag.
pub const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
/// Length of a keyed-hash match value (truncated HMAC-SHA256).
pub const MATCH_LEN: usize = 16;

const INFO_MASTER_WRAP: &[u8] = b"obscura-vault/v1/master-wrap";
const INFO_OBJECT_WRAP: &[u8] = b"obscura-vault/v1/object-wrap";
const INFO_INDEX_VALUE: &[u8] = b"obscura-vault/v1/index-value";
const INFO_INDEX_MATCH: &[u8] = b"obscura-vault/v1/index-match";
const INFO_OUTSIDE: &[u8] = b"obscura-vault/v1/outside/";

/// Fill `buf` from the operating system's random source.
pub(crate) fn random(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::getrandom(buf)
        .map_err(|e| std::io::Error::other(format!("the OS random source failed: {e}")))
}

/// 32 secret bytes, zeroed on drop, never printed.
#[derive(Clone)]
pub struct KeyBytes([u8; KEY_LEN]);

impl KeyBytes {
    /// A fresh random key.
    pub fn random() -> std::io::Result<Self> {
        let mut k = [0u8; KEY_LEN];
        random(&mut k)?;
        Ok(KeyBytes(k))
    }

    /// The raw bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for KeyBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(..)")
    }
}

/// The master key: it only wraps tenant keys. Reading it from a key file
/// (and refusing one that others can read) is the caller's job.
pub struct MasterKey {
    wrap: Aead,
}

impl MasterKey {
    /// The master key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let key = KeyBytes(bytes);
        MasterKey {
            wrap: aead(&derive(&key, INFO_MASTER_WRAP)),
        }
    }

    /// The master key from 64 hex digits (surrounding whitespace ignored),
    /// the format of Obscura's key files.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 2 * KEY_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; KEY_LEN];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            bytes[i] = u8::from_str_radix(s, 16).ok()?;
        }
        Some(Self::from_bytes(bytes))
    }

    /// Wrap a tenant key, bound to the tenant's id.
    pub(crate) fn wrap_tenant_key(
        &self,
        tenant: &str,
        key: &KeyBytes,
    ) -> std::io::Result<[u8; WRAPPED_LEN]> {
        wrap(&self.wrap, &tenant_aad(tenant), key)
    }

    /// Unwrap a tenant key; `None` if the master key or the tenant id is wrong,
    /// or the stored bytes were altered.
    pub(crate) fn unwrap_tenant_key(&self, tenant: &str, wrapped: &[u8]) -> Option<KeyBytes> {
        unwrap(&self.wrap, &tenant_aad(tenant), wrapped)
    }

    /// Encrypt a known value so that [`check`](Self::check) can tell at open
    /// whether this master key is the one the vault was created with.
    pub(crate) fn check_value(&self) -> std::io::Result<[u8; WRAPPED_LEN]> {
        wrap(&self.wrap, CHECK_AAD, &KeyBytes([0u8; KEY_LEN]))
    }

    /// Whether `value` was made by [`check_value`](Self::check_value) with this key.
    pub(crate) fn check(&self, value: &[u8]) -> bool {
        unwrap(&self.wrap, CHECK_AAD, value).is_some()
    }
}

const CHECK_AAD: &[u8] = b"obscura-vault/v1/master-check";

fn tenant_aad(tenant: &str) -> Vec<u8> {
    let mut aad = b"obscura-vault/v1/tenant-key\0".to_vec();
    aad.extend_from_slice(tenant.as_bytes());
    aad
}

/// A tenant's subkeys, derived from its (unwrapped) tenant key.
pub struct TenantKeys {
    object_wrap: Aead,
    index_value: Aead,
    index_match: Hmac<Sha256>,
    key: KeyBytes,
}

impl TenantKeys {
    /// The subkeys of the tenant key `bytes` (for tools and benchmarks; the
    /// vault unwraps tenant keys itself).
    pub fn from_key_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self::derive(&KeyBytes(bytes))
    }

    /// Derive the subkeys from a tenant key.
    pub(crate) fn derive(key: &KeyBytes) -> Self {
        let match_key = derive(key, INFO_INDEX_MATCH);
        TenantKeys {
            object_wrap: aead(&derive(key, INFO_OBJECT_WRAP)),
            index_value: aead(&derive(key, INFO_INDEX_VALUE)),
            index_match: <Hmac<Sha256> as Mac>::new_from_slice(match_key.expose())
                .expect("HMAC takes any key length"),
            key: key.clone(),
        }
    }

    /// A key for a purpose outside the vault, named by `label` (HKDF of the
    /// tenant key; none of the vault's own keys, and gone when the tenant
    /// is shredded).
    pub(crate) fn outside_key(&self, label: &str) -> [u8; KEY_LEN] {
        let mut info = INFO_OUTSIDE.to_vec();
        info.extend_from_slice(label.as_bytes());
        *derive(&self.key, &info).expose()
    }

    /// Wrap an object's data key, bound to `aad` (tenant, object name, header).
    pub(crate) fn wrap_data_key(
        &self,
        aad: &[u8],
        key: &KeyBytes,
    ) -> std::io::Result<[u8; WRAPPED_LEN]> {
        wrap(&self.object_wrap, aad, key)
    }

    /// Unwrap an object's data key.
    pub(crate) fn unwrap_data_key(&self, aad: &[u8], wrapped: &[u8]) -> Option<KeyBytes> {
        unwrap(&self.object_wrap, aad, wrapped)
    }

    /// Encrypt an index record: `nonce || ciphertext || tag`.
    pub(crate) fn seal_record(&self, aad: &[u8], plain: &[u8]) -> std::io::Result<Vec<u8>> {
        seal(&self.index_value, aad, plain)
    }

    /// Decrypt an index record; `None` if it was altered or moved to another row.
    pub(crate) fn open_record(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        open(&self.index_value, aad, sealed)
    }

    /// The keyed hash of `value` in the domain `domain` (an attribute, or
    /// object names): equal values give equal hashes within this tenant only.
    pub(crate) fn match_hash(&self, domain: &[u8], value: &[u8]) -> [u8; MATCH_LEN] {
        let mut mac = self.index_match.clone();
        mac.update(&(domain.len() as u32).to_be_bytes());
        mac.update(domain);
        mac.update(value);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MATCH_LEN];
        out.copy_from_slice(&full[..MATCH_LEN]);
        out
    }
}

/// HKDF-SHA256 of `key` with `info` (no salt: the input is already uniform).
fn derive(key: &KeyBytes, info: &[u8]) -> KeyBytes {
    let mut out = [0u8; KEY_LEN];
    Hkdf::<Sha256>::new(None, key.expose())
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    KeyBytes(out)
}

/// AES-256-GCM under one key (ring: AES-NI/VAES and carry-less multiply
/// where the CPU has them). Standard GCM: 96-bit nonce, 128-bit tag.
pub(crate) struct Aead(ring::aead::LessSafeKey);

impl Aead {
    /// Seal `data` in place; returns the tag.
    pub(crate) fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
    ) -> std::io::Result<[u8; TAG_LEN]> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(aad),
                data,
            )
            .map_err(|_| std::io::Error::other("encryption failed"))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Open `data` in place against `tag`; `false` (and `data` zeroed) if it
    /// does not authenticate.
    #[must_use]
    pub(crate) fn open_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: [u8; TAG_LEN],
    ) -> bool {
        self.open_within(nonce, aad, data, 0, tag)
    }

    /// Open the ciphertext `data[src..]` against `tag`, its plaintext
    /// written to the start of `data` (decrypted and moved down in one
    /// pass); `false` (and all of `data` zeroed) if it does not authenticate.
    #[must_use]
    pub(crate) fn open_within(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
        src: usize,
        tag: [u8; TAG_LEN],
    ) -> bool {
        let ok = self
            .0
            .open_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(aad),
                ring::aead::Tag::from(tag),
                data,
                src..,
            )
            .is_ok();
        if !ok {
            // ring zeroes it too; no unauthenticated byte may survive.
            data.fill(0);
        }
        ok
    }
}

/// An AES-256-GCM instance under `key`.
pub(crate) fn aead(key: &KeyBytes) -> Aead {
    let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key.expose())
        .expect("AES-256-GCM takes a 32-byte key");
    Aead(ring::aead::LessSafeKey::new(unbound))
}

fn wrap(cipher: &Aead, aad: &[u8], key: &KeyBytes) -> std::io::Result<[u8; WRAPPED_LEN]> {
    let sealed = seal(cipher, aad, key.expose())?;
    let mut out = [0u8; WRAPPED_LEN];
    out.copy_from_slice(&sealed);
    Ok(out)
}

fn unwrap(cipher: &Aead, aad: &[u8], wrapped: &[u8]) -> Option<KeyBytes> {
    if wrapped.len() != WRAPPED_LEN {
        return None;
    }
    let mut plain = open(cipher, aad, wrapped)?;
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&plain);
    plain.zeroize();
    Some(KeyBytes(key))
}

fn seal(cipher: &Aead, aad: &[u8], plain: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = vec![0u8; NONCE_LEN + plain.len() + TAG_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    out[..NONCE_LEN].copy_from_slice(&nonce);
    let body = &mut out[NONCE_LEN..NONCE_LEN + plain.len()];
    body.copy_from_slice(plain);
    let tag = cipher.seal_in_place(nonce, aad, body)?;
    out[NONCE_LEN + plain.len()..].copy_from_slice(&tag);
    Ok(out)
}

fn open(cipher: &Aead, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut plain = body.to_vec();
    cipher
        .open_in_place(
            nonce.try_into().ok()?,
            aad,
            &mut plain,
            tag.try_into().ok()?,
        )
        .then_some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_key_is_bound_to_master_and_tenant() {
        let master = MasterKey::from_bytes([7u8; KEY_LEN]);
        let other = MasterKey::from_bytes([8u8; KEY_LEN]);
        let key = KeyBytes::random().unwrap();
        let wrapped = master.wrap_tenant_key("a", &key).unwrap();
        let back = master.unwrap_tenant_key("a", &wrapped).unwrap();
        assert_eq!(back.expose(), key.expose());
        assert!(master.unwrap_tenant_key("b", &wrapped).is_none());
        assert!(other.unwrap_tenant_key("a", &wrapped).is_none());
        let mut bad = wrapped;
        bad[20] ^= 1;
        assert!(master.unwrap_tenant_key("a", &bad).is_none());
    }

    #[test]
    fn subkeys_are_separate_and_hashes_per_domain() {
        let k1 = TenantKeys::derive(&KeyBytes([1u8; KEY_LEN]));
        let k2 = TenantKeys::derive(&KeyBytes([2u8; KEY_LEN]));
        assert_eq!(k1.match_hash(b"PID", b"x"), k1.match_hash(b"PID", b"x"));
        assert_ne!(k1.match_hash(b"PID", b"x"), k1.match_hash(b"ACC", b"x"));
        assert_ne!(k1.match_hash(b"PID", b"x"), k2.match_hash(b"PID", b"x"));
        // Domain and value cannot be shifted into each other.
        assert_ne!(k1.match_hash(b"AB", b"C"), k1.match_hash(b"A", b"BC"));
        let sealed = k1.seal_record(b"row1", b"secret").unwrap();
        assert_eq!(k1.open_record(b"row1", &sealed).unwrap(), b"secret");
        assert!(k1.open_record(b"row2", &sealed).is_none());
        assert!(k2.open_record(b"row1", &sealed).is_none());
    }

    /// Wrapping is standard AES-256-GCM: RustCrypto's implementation opens
    /// what ring sealed (so keys wrapped before the switch to ring still open).
    #[test]
    fn wrapping_is_standard_aes_gcm() {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let master = [5u8; KEY_LEN];
        let wrap_key = derive(&KeyBytes(master), INFO_MASTER_WRAP);
        let other = aes_gcm::Aes256Gcm::new_from_slice(wrap_key.expose()).unwrap();
        let key = KeyBytes::random().unwrap();
        let wrapped = MasterKey::from_bytes(master)
            .wrap_tenant_key("t", &key)
            .unwrap();
        let (nonce, rest) = wrapped.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(KEY_LEN);
        let mut text = body.to_vec();
        other
            .decrypt_in_place_detached(nonce.into(), &tenant_aad("t"), &mut text, tag.into())
            .unwrap();
        assert_eq!(&text[..], key.expose());
        // And the other way round.
        let mut body = key.expose().to_vec();
        let tag = other
            .encrypt_in_place_detached(nonce.into(), &tenant_aad("u"), &mut body)
            .unwrap();
        let again = [nonce, &body[..], &tag[..]].concat();
        let back = MasterKey::from_bytes(master)
            .unwrap_tenant_key("u", &again)
            .unwrap();
        assert_eq!(back.expose(), key.expose());
    }

    #[test]
    fn master_key_from_hex() {
        let hex = "00".repeat(31) + "ff\n";
        assert!(MasterKey::from_hex(&hex).is_some());
        assert!(MasterKey::from_hex("abc").is_none());
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_none());
    }
}
