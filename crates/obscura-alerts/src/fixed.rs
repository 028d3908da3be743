//! [`FixedThresholds`]: the classic rules, the same for every principal,
//! kept to measure the adaptive detector against on the same logs.

use crate::detect::alert;
use crate::{Alert, Rule};
use obscura_audit::{EventKind, Outcome, Record, SubjectKind, WebAction};
use std::collections::{HashMap, HashSet, VecDeque};

/// Fixed thresholds: more than 100 distinct patients in an hour, a query
/// of more than 500 results, 20 denials from one address in 10 minutes,
/// any access between 22:00 and 06:00 UTC, and admin events.
#[derive(Debug, Default)]
pub struct FixedThresholds {
    hours: HashMap<String, (i64, HashSet<String>, bool)>,
    nights: HashSet<(String, i64)>,
    denials: HashMap<String, (VecDeque<i64>, i64)>,
}

impl FixedThresholds {
    /// Read one record; the alerts it raises.
    pub fn observe(&mut self, r: &Record) -> Vec<Alert> {
        let Some(t) = crate::epoch_seconds(&r.event.time) else {
            return Vec::new();
        };
        let e = &r.event;
        let name = e.actor.principal.as_str();
        let mut out = Vec::new();
        if e.is_admin_change() {
            out.push(alert(r, t, Rule::AdminEvent, name, 1, 0.0, 0.0, "fixed"));
        }
        match e.kind {
            EventKind::AssociationRejected | EventKind::AuthFailure
                if e.outcome == Outcome::Denied =>
            {
                let key = format!("address:{}", e.actor.address.as_deref().unwrap_or(name));
                let (w, last) = self.denials.entry(key.clone()).or_default();
                w.push_back(t);
                while w.front().is_some_and(|&f| t - f > 600) {
                    w.pop_front();
                }
                if w.len() >= 20 && t - *last > 600 {
                    *last = t;
                    out.push(alert(
                        r,
                        t,
                        Rule::RejectionBurst,
                        &key,
                        w.len() as u64,
                        20.0,
                        0.0,
                        "fixed",
                    ));
                }
            }
            _ => {}
        }
        let action = e.web_action();
        if e.outcome != Outcome::Success || action.is_none() || action == Some(WebAction::Store) {
            return out;
        }
        let hour_of_day = t.div_euclid(3600).rem_euclid(24);
        if !(6..22).contains(&hour_of_day)
            && self
                .nights
                .insert((name.to_string(), (t + 2 * 3600).div_euclid(86_400)))
        {
            out.push(alert(r, t, Rule::OffHours, name, 1, 0.0, 0.0, "fixed"));
        }
        let (hour, seen, alerted) = self.hours.entry(name.to_string()).or_default();
        if *hour != t.div_euclid(3600) {
            *hour = t.div_euclid(3600);
            seen.clear();
            *alerted = false;
        }
        seen.extend(
            e.subjects
                .iter()
                .filter(|s| s.kind == SubjectKind::Patient)
                .map(|s| s.hash.clone()),
        );
        if seen.len() > 100 && !*alerted {
            *alerted = true;
            out.push(alert(
                r,
                t,
                Rule::BulkPatients,
                name,
                seen.len() as u64,
                100.0,
                0.0,
                "fixed",
            ));
        }
        if action == Some(WebAction::Search) && e.count.unwrap_or(0) > 500 {
            out.push(alert(
                r,
                t,
                Rule::BroadQuery,
                name,
                e.count.unwrap_or(0),
                500.0,
                0.0,
                "fixed",
            ));
        }
        out
    }
}
