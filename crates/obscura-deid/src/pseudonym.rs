//! Keyed, consistent replacement values: UIDs and patient identity.

use crate::key::SecretKey;

/// Derives replacement values from a secret key: the same input and key give
/// the same output on every run and machine; without the key they cannot be
/// reversed by dictionary.
#[derive(Debug, Clone)]
pub struct Pseudonymizer {
    key: SecretKey,
}

/// Root of the UIDs of the standard itself (SOP classes, transfer syntaxes,
/// coding schemes), which identify nothing and are kept.
const STANDARD_UID_ROOT: &str = "1.2.840.10008.";

impl Pseudonymizer {
    /// A pseudonymizer for `key`.
    pub fn new(key: SecretKey) -> Self {
        Pseudonymizer { key }
    }

    /// The replacement for a UID: `2.25.` followed by the decimal form of a
    /// UUID (version 8, RFC 9562) derived from the key and the old UID.
    /// UIDs of the standard itself are returned unchanged.
    pub fn uid(&self, old: &str) -> String {
        let old = normalize(old);
        if old.is_empty() || is_standard_uid(old) {
            return old.to_string();
        }
        let h = self.key.derive("uid", old.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        b[6] = (b[6] & 0x0F) | 0x80; // version 8
        b[8] = (b[8] & 0x3F) | 0x80; // RFC 9562 variant
        format!("2.25.{}", u128::from_be_bytes(b))
    }

    /// The pseudonymous Patient ID for a patient whose original identity key
    /// is `identity` (see [`patient_identity`]).
    pub fn patient_id(&self, identity: &str) -> String {
        let h = self.key.derive("patient-id", identity.as_bytes());
        let hex: String = h[..8].iter().map(|b| format!("{b:02X}")).collect();
        format!("OBS-{hex}")
    }

    /// A keyed pseudonym of any value (a profile's `pseudonymize` override):
    /// `OBS-` and 12 hex digits, short enough for SH.
    pub fn value(&self, value: &str) -> String {
        let h = self.key.derive("value", normalize(value).as_bytes());
        let hex: String = h[..6].iter().map(|b| format!("{b:02X}")).collect();
        format!("OBS-{hex}")
    }

    /// The patient's date offset in days (see [`crate::dates::patient_offset_days`]).
    pub fn date_offset_days(&self, identity: &str) -> i64 {
        crate::dates::patient_offset_days(&self.key, identity)
    }
}

/// What identifies a patient for pseudonym derivation: the Patient ID, or
/// when it is empty, the name and birth date, so distinct patients without
/// IDs stay distinct.
pub fn patient_identity(patient_id: &str, patient_name: &str, birth_date: &str) -> String {
    let id = normalize(patient_id);
    if id.is_empty() {
        format!(
            "\u{1}name:{}|{}",
            normalize(patient_name),
            normalize(birth_date)
        )
    } else {
        id.to_string()
    }
}

/// Whether a UID belongs to the standard's own root.
pub fn is_standard_uid(uid: &str) -> bool {
    uid.starts_with(STANDARD_UID_ROOT)
}

/// A value without the padding DICOM adds (trailing NUL or spaces, leading spaces).
pub fn normalize(v: &str) -> &str {
    v.trim_end_matches(['\0', ' ']).trim_start_matches(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(byte: u8) -> Pseudonymizer {
        Pseudonymizer::new(SecretKey::from_bytes([byte; 32]))
    }

    #[test]
    fn uids_are_valid_2_25_uids_and_consistent() {
        let u = p(1).uid("1.2.826.0.1.3680043.2.1125.1.123");
        assert!(u.starts_with("2.25."));
        assert!(u.len() <= 64);
        assert!(u[5..].chars().all(|c| c.is_ascii_digit()) && !u[5..].starts_with('0'));
        assert_eq!(
            u,
            p(1).uid("1.2.826.0.1.3680043.2.1125.1.123\0"),
            "padding is not identity"
        );
        assert_ne!(
            u,
            p(2).uid("1.2.826.0.1.3680043.2.1125.1.123"),
            "another key, another UID"
        );
        assert_ne!(u, p(1).uid("1.2.826.0.1.3680043.2.1125.1.124"));
    }

    #[test]
    fn standard_uids_are_kept() {
        assert_eq!(
            p(1).uid("1.2.840.10008.5.1.4.1.1.2"),
            "1.2.840.10008.5.1.4.1.1.2"
        );
    }

    #[test]
    fn patient_ids_are_stable_and_distinct() {
        let a = p(1).patient_id(&patient_identity("MRN1", "DOE^JOHN", ""));
        assert_eq!(a, p(1).patient_id(&patient_identity("MRN1 ", "", "")));
        assert_ne!(
            a,
            p(1).patient_id(&patient_identity("MRN2", "DOE^JOHN", ""))
        );
        assert_ne!(
            a,
            p(2).patient_id(&patient_identity("MRN1", "DOE^JOHN", ""))
        );
        let no_id_a = patient_identity("", "DOE^JOHN", "19600101");
        let no_id_b = patient_identity("", "ROE^JANE", "19600101");
        assert_ne!(p(1).patient_id(&no_id_a), p(1).patient_id(&no_id_b));
    }
}
