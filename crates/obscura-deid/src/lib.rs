//! Obscura's de-identification engine: PS3.15 Annex E confidentiality
//! profiles applied to dicom-rs objects, with keyed, consistent pseudonyms.
//!
//! It knows nothing of files, networks or command lines. Start at
//! [`Deidentifier`]: build one from a [`Profile`] and a [`Pseudonymizer`],
//! then call [`Deidentifier::deidentify`] on each data set.

pub mod action;
pub mod burned_in;
pub mod clean;
pub mod dates;
pub mod dummy;
pub mod engine;
pub mod key;
pub mod marking;
pub mod options;
pub mod profile;
pub mod pseudonym;
pub mod rule;
pub mod table;

pub use burned_in::{burned_in_risk, BurnedInRisk};
pub use engine::{Deidentified, Deidentifier, Explained, Unsafe};
pub use key::{KeyError, SecretKey};
pub use options::DeidOption;
pub use profile::{Profile, ProfileError};
pub use pseudonym::Pseudonymizer;
