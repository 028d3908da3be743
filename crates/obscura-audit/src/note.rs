//! Checkpoints as C2SP signed notes (c2sp.org/signed-note,
//! c2sp.org/tlog-checkpoint) with Ed25519 (signature type 0x01), and the
//! key file formats of the Go `note` package:
//!
//! - signer: `PRIVATE+KEY+<name>+<key id, 8 hex>+<base64(0x01 || 32-byte seed)>`
//! - verifier: `<name>+<key id, 8 hex>+<base64(0x01 || 32-byte public key)>`
//!
//! key ID = SHA-256(name || 0x0A || 0x01 || public key)[..4], big-endian.

use crate::merkle::Hash;
use crate::Error;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const ED25519_TYPE: u8 = 0x01;

/// The key ID of an Ed25519 key under `name`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, ED25519_TYPE]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// A checkpoint signer: the log's origin (also its key name) and its Ed25519 key.
pub struct Signer {
    name: String,
    pair: Ed25519KeyPair,
    seed: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.name)
    }
}

impl Signer {
    /// A signer from a 32-byte seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, Error> {
        if !valid_name(name) {
            return Err(Error::KeyFormat);
        }
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| Error::KeyFormat)?;
        Ok(Signer {
            name: name.to_string(),
            pair,
            seed,
        })
    }

    /// A new random signer.
    pub fn generate(name: &str) -> Result<Self, Error> {
        use ring::rand::SecureRandom;
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| Error::Random)?;
        Self::from_seed(name, seed)
    }

    /// The key name (the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(self.pair.public_key().as_ref());
        Verifier::new(&self.name, pk).expect("the name was checked")
    }

    /// The signer key text (`PRIVATE+KEY+...`).
    pub fn to_text(&self) -> String {
        let mut k = vec![ED25519_TYPE];
        k.extend_from_slice(&self.seed);
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.verifier().id,
            B64.encode(k)
        )
    }

    /// Parse signer key text.
    pub fn from_text(text: &str) -> Result<Self, Error> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(Error::KeyFormat)?;
        let (name, id, key) = split3(rest)?;
        let bytes = B64.decode(key).map_err(|_| Error::KeyFormat)?;
        if bytes.len() != 33 || bytes[0] != ED25519_TYPE {
            return Err(Error::KeyFormat);
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[1..]);
        let s = Self::from_seed(name, seed)?;
        if id != format!("{:08x}", s.verifier().id) {
            return Err(Error::KeyFormat);
        }
        Ok(s)
    }

    /// Load a signer key file, refusing one that group or others can read.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::from_text(&crate::keyfile::read_private(path)?)
    }

    /// Write the signer key to a new file (mode 0600; never overwrites) and
    /// the verifier key beside it at `public_path`.
    pub fn save(&self, path: &Path, public_path: &Path) -> Result<(), Error> {
        let io = |e| Error::Io(path.to_path_buf(), e);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        writeln!(f, "{}", self.to_text()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::write(public_path, format!("{}\n", self.verifier().to_text()))
            .map_err(|e| Error::Io(public_path.to_path_buf(), e))
    }

    /// Sign a note text (ending in a newline): the note with its signature line.
    pub fn sign_note(&self, text: &str) -> String {
        let sig = self.pair.sign(text.as_bytes());
        let mut blob = self.verifier().id.to_be_bytes().to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

fn split3(s: &str) -> Result<(&str, &str, &str), Error> {
    let mut it = s.splitn(3, '+');
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c)) => Ok((a, b, c)),
        _ => Err(Error::KeyFormat),
    }
}

/// A checkpoint verifier: key name, key ID and Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: u32,
    public_key: [u8; 32],
}

impl Verifier {
    /// A verifier from a name and a public key.
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Self, Error> {
        if !valid_name(name) {
            return Err(Error::KeyFormat);
        }
        Ok(Verifier {
            name: name.to_string(),
            id: key_id(name, &public_key),
            public_key,
        })
    }

    /// The key name (the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID (C2SP signed-note: the first 4 bytes of SHA-256 over
    /// the name, a newline, the key type and the public key).
    pub fn key_id(&self) -> u32 {
        self.id
    }

    /// The verifier key text (`name+id+base64`).
    pub fn to_text(&self) -> String {
        let mut k = vec![ED25519_TYPE];
        k.extend_from_slice(&self.public_key);
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(k))
    }

    /// Parse verifier key text; the key ID must match.
    pub fn from_text(text: &str) -> Result<Self, Error> {
        let (name, id, key) = split3(text.trim())?;
        let bytes = B64.decode(key).map_err(|_| Error::KeyFormat)?;
        if bytes.len() != 33 || bytes[0] != ED25519_TYPE {
            return Err(Error::KeyFormat);
        }
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&bytes[1..]);
        let v = Self::new(name, pk)?;
        if id != format!("{:08x}", v.id) {
            return Err(Error::KeyFormat);
        }
        Ok(v)
    }

    /// Load a verifier key file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
        Self::from_text(&text)
    }

    /// Open a signed note: its text, if a signature line of this key verifies.
    pub fn open_note<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed);
        }
        // The text ends at the last blank line; signature lines follow.
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed)?;
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed);
        }
        let mut known = false;
        for line in sigs[..sigs.len() - 1].split('\n') {
            let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed)?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed)?;
            let blob = B64.decode(b64).map_err(|_| NoteError::Malformed)?;
            if blob.len() < 4 {
                return Err(NoteError::Malformed);
            }
            let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            if name != self.name || id != self.id {
                continue; // another key's signature: ignored, per the spec
            }
            known = true;
            UnparsedPublicKey::new(&ED25519, &self.public_key)
                .verify(text.as_bytes(), &blob[4..])
                .map_err(|_| NoteError::BadSignature)?;
        }
        if known {
            Ok(text)
        } else {
            Err(NoteError::UnknownKey)
        }
    }

    /// Open and parse a checkpoint signed by this key, whose origin is the key name.
    pub fn open_checkpoint(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let text = self.open_note(note)?;
        let cp = Checkpoint::parse_text(text)?;
        if cp.origin != self.name {
            return Err(NoteError::Origin);
        }
        Ok(cp)
    }
}

/// Why a signed note was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a signed note, or not a checkpoint.
    #[error("not a well-formed signed checkpoint")]
    Malformed,
    /// No signature by the expected key (e.g. signed by a foreign key).
    #[error("not signed by the log's key")]
    UnknownKey,
    /// A signature by the expected key that does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Signed by the log's key, but for another origin.
    #[error("checkpoint of another log (origin differs)")]
    Origin,
}

/// A tree head: origin, size and root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (also the signing key's name).
    pub origin: String,
    /// The number of records covered.
    pub size: u64,
    /// The RFC 6962 root hash at that size.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, each ending in a newline.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parse a note text (extension lines are refused: this log writes none).
    pub fn parse_text(text: &str) -> Result<Self, NoteError> {
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or(NoteError::Malformed)?
            .split('\n')
            .collect();
        let [origin, size, root] = lines[..] else {
            return Err(NoteError::Malformed);
        };
        if origin.is_empty()
            || size.is_empty()
            || (size.len() > 1 && size.starts_with('0'))
            || !size.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(NoteError::Malformed);
        }
        let size = size.parse().map_err(|_| NoteError::Malformed)?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(NoteError::Malformed)?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// The signed note.
    pub fn sign(&self, signer: &Signer) -> String {
        signer.sign_note(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_open_and_refuse() {
        let s = Signer::from_seed("obscura.example/audit", [9; 32]).unwrap();
        let v = Verifier::from_text(&s.verifier().to_text()).unwrap();
        assert_eq!(v, s.verifier());
        let s2 = Signer::from_text(&s.to_text()).unwrap();
        assert_eq!(s2.verifier(), v);

        let cp = Checkpoint {
            origin: s.name().into(),
            size: 42,
            root: [3; 32],
        };
        let note = cp.sign(&s);
        assert!(note.starts_with("obscura.example/audit\n42\nAwMD"));
        assert!(note.contains("\n\n\u{2014} obscura.example/audit "));
        assert_eq!(v.open_checkpoint(&note).unwrap(), cp);

        // One changed character of the text.
        let bad = note.replacen("42", "43", 1);
        assert_eq!(v.open_checkpoint(&bad), Err(NoteError::BadSignature));
        // A foreign key under the same name.
        let foreign = Signer::from_seed("obscura.example/audit", [8; 32]).unwrap();
        assert_eq!(
            v.open_checkpoint(&cp.sign(&foreign)),
            Err(NoteError::UnknownKey)
        );
        // A second, unknown signature is ignored.
        let cosigned = format!(
            "{}{}",
            note,
            foreign
                .sign_note(&cp.to_text())
                .rsplit("\n\n")
                .next()
                .unwrap()
        );
        assert_eq!(v.open_checkpoint(&cosigned).unwrap(), cp);
        assert_eq!(v.open_checkpoint("garbage"), Err(NoteError::Malformed));
    }
}
