//! [`Detector`]: every principal against its own history, or its peers'
//! (the principals of the same tenant) until it has enough of its own.
//! Online: records in time order, baselines learned as they go, periods
//! that raised an alert left out of what is learned.

use crate::stats::{median, quantile};
use crate::{Alert, Rule};
use obscura_audit::{EventKind, Outcome, Record, SubjectKind, WebAction};
use std::collections::{HashMap, HashSet, VecDeque};

/// Thresholds and learning periods.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Active days of its own before a principal is judged on its own history.
    pub warmup_days: usize,
    /// Threshold = `factor` × the baseline (a 99th percentile).
    pub factor: f64,
    /// Distinct patients in an hour never alerted below this.
    pub bulk_floor: u64,
    /// Cold patients in a day never alerted below this.
    pub cold_floor: u64,
    /// A patient is cold when nothing of theirs arrived for this long (s).
    pub cold_after: i64,
    /// Query results never alerted below this.
    pub query_floor: u64,
    /// Denials from one address within `rejection_window` s that alert.
    pub rejection_floor: u64,
    /// The window of the rejection count (s).
    pub rejection_window: i64,
    /// Silence (s) after which activity is a dormant credential waking, at
    /// least; and at least `factor` × the longest silence the principal
    /// had before.
    pub dormant_after: i64,
    /// Active days before a silence can count as dormancy.
    pub dormant_min_days: usize,
    /// An hour of the day (with its neighbours) holding less than this share
    /// of the principal's active hours is off-hours for it.
    pub offhours_share: f64,
    /// Active days before a new address or AE title alerts (when its peers
    /// never used it either).
    pub origin_min_days: usize,
    /// Destinations seen in this first stretch of the log (s) are learned.
    pub destination_learning: i64,
    /// Principals that are the service itself (forwarding), not users.
    pub service_principals: Vec<String>,
    /// Vendor-class principals (by config or grant): `name` (in every
    /// tenant) or `name@tenant`. Identifiable data reaching one always alerts.
    pub vendors: Vec<String>,
}

impl Settings {
    /// Whether `principal` (`name@tenant`, or a DIMSE peer) is vendor-class.
    pub fn is_vendor(&self, principal: &str) -> bool {
        let name = principal.rsplit_once('@').map_or(principal, |(n, _)| n);
        self.vendors.iter().any(|v| v == principal || v == name)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            warmup_days: 5,
            factor: 3.0,
            bulk_floor: 20,
            cold_floor: 10,
            cold_after: 14 * 86_400,
            query_floor: 100,
            rejection_floor: 10,
            rejection_window: 600,
            dormant_after: 7 * 86_400,
            offhours_share: 0.01,
            origin_min_days: 5,
            dormant_min_days: 3,
            destination_learning: 86_400,
            service_principals: vec!["obscura-serve".into()],
            vendors: Vec::new(),
        }
    }
}

/// What is known of one principal.
#[derive(Debug, Default)]
struct Principal {
    group: String,
    last: Option<i64>,
    longest_silence: i64,
    days: HashSet<i64>,
    /// Active (day, hour) slots per hour of the day.
    hour_slots: [u32; 24],
    slot: i64,
    addresses: HashSet<String>,
    ae_titles: HashSet<String>,
    hour: i64,
    hour_patients: HashSet<String>,
    hour_alerted: bool,
    hourly: Vec<u64>,
    day: i64,
    day_cold: HashSet<String>,
    day_alerted: bool,
    offhours_alerted: bool,
    daily_cold: Vec<u64>,
    queries: Vec<u64>,
}

impl Principal {
    fn mature(&self, s: &Settings) -> bool {
        self.days.len() >= s.warmup_days
    }

    /// Close the hour and the day when `t` is past them.
    fn roll(&mut self, t: i64) {
        let (day, hour) = (t.div_euclid(86_400), t.div_euclid(3600));
        if hour != self.hour {
            if self.hour != 0 && !self.hour_alerted {
                self.hourly.push(self.hour_patients.len() as u64);
            }
            self.hour = hour;
            self.hour_patients.clear();
            self.hour_alerted = false;
        }
        if day != self.day {
            if self.day != 0 && !self.day_alerted {
                self.daily_cold.push(self.day_cold.len() as u64);
            }
            self.day = day;
            self.day_cold.clear();
            self.day_alerted = false;
            self.offhours_alerted = false;
        }
    }
}

/// Which history a baseline is taken from.
#[derive(Clone, Copy)]
enum Series {
    Hourly,
    DailyCold,
    Queries,
}

impl Series {
    fn of(self, p: &Principal) -> &[u64] {
        match self {
            Series::Hourly => &p.hourly,
            Series::DailyCold => &p.daily_cold,
            Series::Queries => &p.queries,
        }
    }
}

/// The adaptive detector.
#[derive(Debug, Default)]
pub struct Detector {
    settings: Settings,
    principals: HashMap<String, Principal>,
    received: HashMap<String, i64>,
    destinations: HashSet<String>,
    /// Addresses and AE titles any principal of a group used.
    group_origins: HashMap<String, HashSet<String>>,
    rejections: HashMap<String, VecDeque<i64>>,
    rejection_alerted: HashMap<String, i64>,
    start: Option<i64>,
}

impl Detector {
    /// A detector with these settings.
    pub fn new(settings: Settings) -> Self {
        Detector {
            settings,
            ..Detector::default()
        }
    }

    /// The baseline of `series` for `name`: its own 99th percentile once it
    /// is mature, else the median of its mature peers' (same group).
    fn baseline(&self, name: &str, series: Series) -> (f64, &'static str) {
        let s = &self.settings;
        let me = &self.principals[name];
        if me.mature(s) {
            return (quantile(series.of(me), 0.99), "own");
        }
        let peers: Vec<f64> = self
            .principals
            .values()
            .filter(|p| p.group == me.group && p.mature(s))
            .map(|p| quantile(series.of(p), 0.99))
            .collect();
        if peers.is_empty() {
            (0.0, "none")
        } else {
            (median(&peers), "peers")
        }
    }

    /// An alert if `count` crosses max(floor, factor × baseline).
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        r: &Record,
        t: i64,
        name: &str,
        rule: Rule,
        count: u64,
        floor: u64,
        series: Series,
    ) -> Option<Alert> {
        if count <= floor {
            return None;
        }
        let (baseline, basis) = self.baseline(name, series);
        let threshold = (self.settings.factor * baseline).max(floor as f64);
        (count as f64 > threshold)
            .then(|| alert(r, t, rule, name, count, threshold, baseline, basis))
    }

    /// Read one record; the alerts it raises.
    pub fn observe(&mut self, r: &Record) -> Vec<Alert> {
        let Some(t) = crate::epoch_seconds(&r.event.time) else {
            return Vec::new();
        };
        let start = *self.start.get_or_insert(t);
        let e = &r.event;
        let mut out = Vec::new();
        let patients = || {
            e.subjects
                .iter()
                .filter(|s| s.kind == SubjectKind::Patient)
                .map(|s| s.hash.clone())
        };
        let action = e.web_action();

        if e.is_admin_change() {
            let name = &e.actor.principal;
            out.push(alert(r, t, Rule::AdminEvent, name, 1, 0.0, 0.0, "always"));
        }
        let reads = matches!(action, Some(WebAction::Search | WebAction::Retrieve));
        // what went through a de-identified view is not identifiable data
        if reads
            && e.outcome == Outcome::Success
            && !e.deidentified_view()
            && self.settings.is_vendor(&e.actor.principal)
        {
            let n = patients().count() as u64;
            if n > 0 {
                let name = &e.actor.principal;
                out.push(alert(
                    r,
                    t,
                    Rule::VendorIdentifiable,
                    name,
                    n,
                    0.0,
                    0.0,
                    "always",
                ));
            }
        }
        match e.kind {
            EventKind::InstanceForwarded | EventKind::InstanceQuarantined => {
                if let Some(route) = &e.route {
                    if self.destinations.insert(route.clone())
                        && t - start >= self.settings.destination_learning
                    {
                        out.push(alert(r, t, Rule::NewDestination, route, 1, 0.0, 0.0, "own"));
                    }
                }
            }
            _ => {}
        }
        if matches!(
            e.kind,
            EventKind::InstanceReceived | EventKind::InstanceStored
        ) || action == Some(WebAction::Store)
        {
            for p in patients() {
                self.received.insert(p, t);
            }
        }
        if e.outcome == Outcome::Denied
            && matches!(
                e.kind,
                EventKind::AssociationRejected | EventKind::AuthFailure
            )
        {
            let key = match &e.actor.address {
                Some(a) => format!("address:{a}"),
                None => e.actor.principal.clone(),
            };
            let w = self.rejections.entry(key.clone()).or_default();
            w.push_back(t);
            while w
                .front()
                .is_some_and(|&f| t - f > self.settings.rejection_window)
            {
                w.pop_front();
            }
            let n = w.len() as u64;
            let quiet = self
                .rejection_alerted
                .get(&key)
                .is_none_or(|&at| t - at > self.settings.rejection_window);
            if n >= self.settings.rejection_floor && quiet {
                self.rejection_alerted.insert(key.clone(), t);
                let floor = self.settings.rejection_floor as f64;
                out.push(alert(
                    r,
                    t,
                    Rule::RejectionBurst,
                    &key,
                    n,
                    floor,
                    0.0,
                    "fixed",
                ));
            }
            return out;
        }
        if e.outcome != Outcome::Success
            || self
                .settings
                .service_principals
                .contains(&e.actor.principal)
        {
            return out;
        }

        // The principal's own behaviour.
        let name = e.actor.principal.clone();
        let s = self.settings.clone();
        let group = name
            .rsplit_once('@')
            .map_or("dimse", |(_, g)| g)
            .to_string();
        let p = self
            .principals
            .entry(name.clone())
            .or_insert_with(|| Principal {
                group,
                ..Principal::default()
            });
        if let Some(last) = p.last {
            let silence = t - last;
            let threshold = (s.dormant_after as f64).max(s.factor * p.longest_silence as f64);
            if silence as f64 >= threshold && p.days.len() >= s.dormant_min_days {
                let day = 86_400.0;
                let (n, baseline) = ((silence / 86_400) as u64, p.longest_silence as f64 / day);
                out.push(alert(
                    r,
                    t,
                    Rule::Dormant,
                    &name,
                    n,
                    threshold / day,
                    baseline,
                    "own",
                ));
            } else {
                p.longest_silence = p.longest_silence.max(silence);
            }
        }
        p.last = Some(t);
        p.roll(t);
        let mature_origin = p.days.len() >= s.origin_min_days;
        let group_seen = self.group_origins.entry(p.group.clone()).or_default();
        for (seen, v) in [
            (&mut p.addresses, &e.actor.address),
            (&mut p.ae_titles, &e.actor.ae_title),
        ] {
            if let Some(v) = v {
                let new_to_peers = group_seen.insert(v.clone());
                if seen.insert(v.clone()) && mature_origin && new_to_peers {
                    out.push(alert(
                        r,
                        t,
                        Rule::NewOrigin,
                        &name,
                        seen.len() as u64,
                        0.0,
                        (seen.len() - 1) as f64,
                        "own",
                    ));
                }
            }
        }
        // Off-hours: this hour and its neighbours hold almost none of its active hours.
        let h = (t.div_euclid(3600).rem_euclid(24)) as usize;
        let slot = t.div_euclid(3600);
        let total: u32 = p.hour_slots.iter().sum();
        let near: u32 = [23, 0, 1].iter().map(|d| p.hour_slots[(h + d) % 24]).sum();
        let share = if total == 0 {
            1.0
        } else {
            near as f64 / total as f64
        };
        let odd = p.days.len() >= s.warmup_days && share < s.offhours_share;
        if odd && !p.offhours_alerted {
            p.offhours_alerted = true;
            out.push(alert(
                r,
                t,
                Rule::OffHours,
                &name,
                1,
                s.offhours_share,
                share,
                "own",
            ));
        }
        if slot != p.slot && !odd {
            p.hour_slots[h] += 1;
        }
        p.slot = slot;
        p.days.insert(t.div_euclid(86_400));

        if e.kind != EventKind::WebRequest || action == Some(WebAction::Store) {
            return out;
        }
        let mut cold = 0;
        for pt in patients() {
            let is_cold = self
                .received
                .get(&pt)
                .is_none_or(|&at| t - at > s.cold_after);
            p.hour_patients.insert(pt.clone());
            if is_cold {
                p.day_cold.insert(pt);
                cold += 1;
            }
        }
        let (hour_n, day_n) = (p.hour_patients.len() as u64, p.day_cold.len() as u64);
        let (hour_alerted, day_alerted) = (p.hour_alerted, p.day_alerted);
        if !hour_alerted {
            if let Some(a) = self.judge(
                r,
                t,
                &name,
                Rule::BulkPatients,
                hour_n,
                s.bulk_floor,
                Series::Hourly,
            ) {
                self.principals.get_mut(&name).expect("above").hour_alerted = true;
                out.push(a);
            }
        }
        if !day_alerted && cold > 0 {
            if let Some(a) = self.judge(
                r,
                t,
                &name,
                Rule::ColdPatients,
                day_n,
                s.cold_floor,
                Series::DailyCold,
            ) {
                self.principals.get_mut(&name).expect("above").day_alerted = true;
                out.push(a);
            }
        }
        if action == Some(WebAction::Search) {
            let n = e.count.unwrap_or(0);
            match self.judge(
                r,
                t,
                &name,
                Rule::BroadQuery,
                n,
                s.query_floor,
                Series::Queries,
            ) {
                Some(a) => out.push(a),
                None => self
                    .principals
                    .get_mut(&name)
                    .expect("above")
                    .queries
                    .push(n),
            }
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn alert(
    r: &Record,
    t: i64,
    rule: Rule,
    principal: &str,
    count: u64,
    threshold: f64,
    baseline: f64,
    basis: &'static str,
) -> Alert {
    Alert {
        rule,
        time: t,
        at: r.event.time.clone(),
        principal: principal.to_string(),
        count,
        threshold,
        baseline,
        basis,
        seq: r.seq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obscura_audit::{Actor, AuditEvent, AuditKey, SubjectRef};
    use std::time::{Duration, UNIX_EPOCH};

    fn web(seq: u64, who: &str, route: &str, outcome: Outcome, patients: u32) -> Record {
        let key = AuditKey::from_bytes([1; 32]);
        let mut e = AuditEvent::new(
            UNIX_EPOCH + Duration::from_secs(1_780_000_000 + seq),
            EventKind::WebRequest,
            Actor {
                principal: who.into(),
                ..Default::default()
            },
            outcome,
        );
        e.route = Some(route.into());
        e.subjects = (0..patients)
            .map(|p| SubjectRef::patient(&key, &format!("P{p}")))
            .collect();
        Record { seq, event: e }
    }

    #[test]
    fn identifiable_data_to_a_vendor_always_alerts() {
        let mut d = Detector::new(Settings {
            vendors: vec!["vendor-x".into(), "ai@site-b".into()],
            ..Settings::default()
        });
        let rules = |d: &mut Detector, r: Record| -> Vec<(Rule, u64)> {
            d.observe(&r).iter().map(|a| (a.rule, a.count)).collect()
        };
        let q = "web:GET /studies";
        let wado = "web:GET /studies/{study}";
        assert_eq!(
            rules(&mut d, web(1, "vendor-x@site-a", q, Outcome::Success, 3)),
            [(Rule::VendorIdentifiable, 3)]
        );
        assert_eq!(
            rules(&mut d, web(2, "ai@site-b", wado, Outcome::Success, 1)),
            [(Rule::VendorIdentifiable, 1)]
        );
        // another tenant's `ai`, a reader, a denial, a store, no patient: none
        for r in [
            web(3, "ai@site-c", q, Outcome::Success, 1),
            web(4, "reader@site-a", q, Outcome::Success, 2),
            web(5, "vendor-x@site-a", wado, Outcome::Denied, 1),
            web(
                6,
                "vendor-x@site-a",
                "web:POST /studies",
                Outcome::Success,
                1,
            ),
            web(7, "vendor-x@site-a", q, Outcome::Success, 0),
            deidentified(web(8, "vendor-x@site-a", wado, Outcome::Success, 4)),
        ] {
            assert!(rules(&mut d, r).is_empty());
        }
    }

    /// `r` as given through a de-identified view.
    fn deidentified(mut r: Record) -> Record {
        r.event.view = Some(obscura_audit::VIEW_DEIDENTIFIED.into());
        r
    }
}
