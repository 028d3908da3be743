//! `[alerts]` of the `serve` config.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where live alerts go besides the human log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// POST each alert's JSON here: `https://...`, or `http://` to loopback.
    pub webhook: Option<String>,
    /// The CA the webhook's certificate must chain to (PEM), for https.
    pub webhook_ca: Option<PathBuf>,
    /// Send each alert to every `[[audit.syslog]]` receiver too
    /// (MSGID `obscura-alert`, severity warning). Default true.
    #[serde(default = "yes")]
    pub syslog: bool,
    /// Vendor-class principals (`name` or `name@tenant`): identifiable data
    /// reaching one always alerts. Principals whose grants give them only a
    /// de-identified view are vendor-class too.
    #[serde(default)]
    pub vendors: Vec<String>,
}

fn yes() -> bool {
    true
}

impl AlertsSection {
    /// Parse `[alerts]`; relative paths resolve against `base`.
    pub fn from_toml(table: toml::Table, base: &Path) -> Result<Self, String> {
        let mut s: AlertsSection = table.try_into().map_err(|e| format!("[alerts]: {e}"))?;
        s.webhook_ca = s.webhook_ca.map(|p| base.join(p));
        Ok(s)
    }
}
