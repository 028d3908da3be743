//! Alerts on abnormal access while it happens (`docs/alerts.md`).
//!
//! A [`Detector`] reads audit records ([`obscura_audit::Record`]) in time
//! order and compares each principal with its own history and with its
//! peers (the principals of the same tenant); [`FixedThresholds`] is the
//! classic alternative, kept to measure against. [`sim`] generates a
//! seeded month of access with injected incidents and scores both. Alerts
//! name their rule, threshold, baseline and count; never a patient.

#![warn(missing_docs)]

mod config;
mod detect;
mod fixed;
mod live;
pub mod sim;
mod stats;
mod time;
mod webhook;

pub use config::AlertsSection;
pub use detect::{Detector, Settings};
pub use fixed::FixedThresholds;
pub use live::{LiveAlerts, Sink};
pub use time::epoch_seconds;
pub use webhook::Webhook;

use serde::Serialize;

/// Something that reads audit records in time order and raises alerts.
pub trait Observe {
    /// Read one record; the alerts it raises.
    fn observe(&mut self, record: &obscura_audit::Record) -> Vec<Alert>;
}

impl Observe for Detector {
    fn observe(&mut self, record: &obscura_audit::Record) -> Vec<Alert> {
        Detector::observe(self, record)
    }
}

impl Observe for FixedThresholds {
    fn observe(&mut self, record: &obscura_audit::Record) -> Vec<Alert> {
        FixedThresholds::observe(self, record)
    }
}

/// Which rule raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Distinct patients in an hour far above the principal's baseline.
    BulkPatients,
    /// Distinct "cold" patients in a day (whose data arrived long ago or
    /// before the log began): slow exfiltration.
    ColdPatients,
    /// A query whose result count is far above the principal's baseline.
    BroadQuery,
    /// An address or AE title the principal never used.
    NewOrigin,
    /// Activity at an hour of the day the principal is never active at.
    OffHours,
    /// Instances forwarded to a destination never seen.
    NewDestination,
    /// A burst of denied associations or authentications from one address.
    RejectionBurst,
    /// A principal silent for long acting again.
    Dormant,
    /// Grant, tenant, key or config changes, log recovery: always.
    AdminEvent,
    /// Identifiable data (a search's or retrieve's patients) reaching a
    /// vendor-class principal: always.
    VendorIdentifiable,
}

impl Rule {
    /// The rule's name, as in JSON (`bulk-patients`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One alert: no PHI, only names of principals, counts and thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The rule.
    pub rule: Rule,
    /// When (Unix seconds, the record's time).
    pub time: i64,
    /// RFC 3339 of `time`.
    pub at: String,
    /// The principal (or `address:<ip>` for rejection bursts, `route` for
    /// a new destination).
    pub principal: String,
    /// What was counted (patients in the hour, results...).
    pub count: u64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// The baseline the threshold was derived from (own or peers').
    pub baseline: f64,
    /// `own`, `peers` or `fixed`: where the baseline came from.
    pub basis: &'static str,
    /// The audit record that raised it.
    pub seq: u64,
}

impl Alert {
    /// One line for humans and logs.
    pub fn describe(&self) -> String {
        format!(
            "ALERT {} {} principal={} count={} threshold={:.1} baseline={:.1} ({}) record={}",
            self.rule.name(),
            self.at,
            self.principal,
            self.count,
            self.threshold,
            self.baseline,
            self.basis,
            self.seq
        )
    }
}
