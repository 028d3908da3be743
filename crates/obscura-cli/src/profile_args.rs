//! The profile arguments shared by `obscura deid` and `obscura profile show`.

use anyhow::{Context, Result};
use clap::Args;
use obscura_deid::{DeidOption, Profile};
use std::path::PathBuf;

/// `--profile FILE` and `--option NAME`.
#[derive(Args)]
pub struct ProfileArgs {
    /// A profile file (TOML): options, per-attribute overrides, keep-list.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// A PS3.15 Annex E option (repeatable), added to the profile's:
    /// retain-safe-private, retain-uids, retain-device-identity,
    /// retain-institution-identity, retain-patient-characteristics,
    /// retain-long-full-dates, retain-long-modified-dates, clean-descriptors,
    /// clean-structured-content, clean-graphics, clean-pixel-data (burned-in
    /// text found by OCR and redacted; docs/pixels.md).
    #[arg(long = "option", value_name = "NAME")]
    options: Vec<DeidOption>,
}

impl ProfileArgs {
    /// The effective profile: the file's (or the basic profile) with the options added.
    pub fn load(&self) -> Result<Profile> {
        let base = match &self.profile {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read profile {}", path.display()))?;
                Profile::from_toml(&text).with_context(|| format!("in {}", path.display()))?
            }
            None => Profile::basic(),
        };
        Ok(base.add_options(self.options.iter().copied())?)
    }
}
