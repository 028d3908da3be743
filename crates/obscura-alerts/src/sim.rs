//! A seeded month of access to an archive, with injected incidents and
//! their ground truth, to measure detectors (`docs/alerts.md`).
//!
//! About 200 principals (110 readers on day, evening and night shifts, 15
//! locums working one or two days a week, 40 clinicians, 10 AI vendors
//! working around the clock, 20 modalities, 5 admins), 50,000 patients,
//! 30 days. Modalities send ~1,500 studies a day (one `instance-received`
//! per study); readers search and retrieve recent studies (and priors of
//! the same patients) in their shift from their two workstations;
//! clinicians look up a few patients a day, most of them follow-ups whose
//! data is old; vendors retrieve new studies all day. Noise a detector
//! must live with: work from home through the site's VPN pool (an address
//! new to the principal, not to its colleagues) on 0.3 % of working days,
//! busy days, big but legitimate searches.
//!
//! Eight kinds of incident are injected from day 10 on: a stolen vendor
//! credential (a new address at night, ~1,500 patients), slow exfiltration
//! (30 extra patients a day for 14 days, each day an incident), a new
//! address, off-hours use, a new destination, AE-title guessing, a dormant
//! credential waking, a wildcard query.

use crate::Alert;
use obscura_audit::{Actor, AuditEvent, AuditKey, EventKind, Outcome, Record, SubjectRef};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// The kinds of injected incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    /// A vendor's credential used from a new address at night, in bulk.
    StolenVendorCredential,
    /// 30 extra patients a day through a reader's credential.
    SlowExfiltration,
    /// A principal's normal day from an address it never used.
    NewAddress,
    /// A day-shift reader active at 02:00.
    OffHours,
    /// Instances forwarded to a destination never configured before.
    NewDestination,
    /// Association requests with guessed AE titles from one address.
    AeTitleGuessing,
    /// A credential silent since the first days, used again.
    DormantCredential,
    /// A search without narrowing keys returning thousands of results.
    WildcardQuery,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 8] = [
        Scenario::StolenVendorCredential,
        Scenario::SlowExfiltration,
        Scenario::NewAddress,
        Scenario::OffHours,
        Scenario::NewDestination,
        Scenario::AeTitleGuessing,
        Scenario::DormantCredential,
        Scenario::WildcardQuery,
    ];

    /// Loud scenarios (all but slow exfiltration).
    pub fn loud(self) -> bool {
        self != Scenario::SlowExfiltration
    }
}

/// One injected incident: who (the name an alert would carry), when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Its kind.
    pub scenario: Scenario,
    /// The principal, `address:<ip>` or `dest:<name>`.
    pub principal: String,
    /// First event (Unix s).
    pub start: i64,
    /// Last event (Unix s).
    pub end: i64,
}

/// A simulated log and what was injected into it.
#[derive(Debug)]
pub struct Simulation {
    /// The records, in time order.
    pub records: Vec<Record>,
    /// The incidents.
    pub incidents: Vec<Incident>,
    /// Distinct principals that acted.
    pub principals: usize,
}

/// Scores of a detector on a simulation.
#[derive(Debug, Default, Clone)]
pub struct Score {
    /// Per scenario: (incidents detected, incidents).
    pub recall: BTreeMap<Scenario, (usize, usize)>,
    /// Alerts matching an incident (admin events left out).
    pub true_alerts: usize,
    /// Alerts in all (admin events left out).
    pub alerts: usize,
    /// False alerts per rule.
    pub false_by_rule: BTreeMap<crate::Rule, usize>,
}

impl Score {
    /// Recall over the loud scenarios, or over slow exfiltration.
    pub fn recall_of(&self, loud: bool) -> f64 {
        let (d, n) = self
            .recall
            .iter()
            .filter(|(s, _)| s.loud() == loud)
            .fold((0, 0), |(d, n), (_, (a, b))| (d + a, n + b));
        d as f64 / n.max(1) as f64
    }

    /// True alerts over all alerts.
    pub fn precision(&self) -> f64 {
        self.true_alerts as f64 / self.alerts.max(1) as f64
    }

    /// A table for humans: precision, recall per scenario, false alerts per rule.
    pub fn render(&self, name: &str) -> String {
        let mut out = format!(
            "{name}: precision {:.3} ({} of {} alerts), recall loud {:.3}, slow exfiltration {:.3}\n",
            self.precision(),
            self.true_alerts,
            self.alerts,
            self.recall_of(true),
            self.recall_of(false)
        );
        for (sc, (d, n)) in &self.recall {
            out.push_str(&format!("  {:<24} {d:>3}/{n}\n", format!("{sc:?}")));
        }
        out.push_str(&format!(
            "  false alerts by rule: {:?}\n",
            self.false_by_rule
        ));
        out
    }
}

/// Simulate with `seed` and score the adaptive detector (default
/// settings) and fixed thresholds on the same records.
pub fn compare(seed: u64) -> (Simulation, Score, Score) {
    let (sim, ours) = run(seed, &mut crate::Detector::new(crate::Settings::default()));
    let alerts: Vec<Alert> = {
        let mut fixed = crate::FixedThresholds::default();
        sim.records
            .iter()
            .flat_map(|r| crate::Observe::observe(&mut fixed, r))
            .collect()
    };
    let fixed = score(&sim, &alerts);
    (sim, ours, fixed)
}

/// One line on the simulation, then both detectors' tables.
pub fn report(seed: u64, sim: &Simulation, ours: &Score, fixed: &Score) -> String {
    format!(
        "seed {seed}: {} records, {} principals, {} incidents\n{}{}",
        sim.records.len(),
        sim.principals,
        sim.incidents.len(),
        ours.render("adaptive"),
        fixed.render("fixed")
    )
}

/// Simulate with `seed`, run `detector` over it and score it.
pub fn run(seed: u64, detector: &mut dyn crate::Observe) -> (Simulation, Score) {
    let sim = simulate(seed);
    let alerts: Vec<Alert> = sim
        .records
        .iter()
        .flat_map(|r| detector.observe(r))
        .collect();
    let s = score(&sim, &alerts);
    (sim, s)
}

/// Match alerts to incidents: same principal, from 5 minutes before the
/// incident's first event to an hour after its last.
pub fn score(sim: &Simulation, alerts: &[Alert]) -> Score {
    let mut s = Score::default();
    let hits = |a: &Alert, i: &Incident| {
        a.principal == i.principal && a.time >= i.start - 300 && a.time <= i.end + 3600
    };
    for sc in Scenario::ALL {
        let of: Vec<&Incident> = sim.incidents.iter().filter(|i| i.scenario == sc).collect();
        let found = of
            .iter()
            .filter(|i| alerts.iter().any(|a| hits(a, i)))
            .count();
        s.recall.insert(sc, (found, of.len()));
    }
    for a in alerts.iter().filter(|a| a.rule != crate::Rule::AdminEvent) {
        s.alerts += 1;
        if sim.incidents.iter().any(|i| hits(a, i)) {
            s.true_alerts += 1;
        } else {
            *s.false_by_rule.entry(a.rule).or_default() += 1;
        }
    }
    s
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// Around `mean`, ± `spread` (uniform).
    fn around(&mut self, mean: u64, spread: u64) -> u64 {
        mean + self.below(2 * spread + 1) - spread
    }
}

/// Days simulated.
pub const DAYS: i64 = 30;
/// Patients in the archive.
pub const PATIENTS: u64 = 50_000;
/// 2026-01-05T00:00:00Z, a Monday.
const START: i64 = 1_767_571_200;

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Reader { shift: (i64, i64) },
    Locum,
    Clinician,
    Vendor,
    Modality,
    Admin,
    Dormant,
}

struct Who {
    name: String,
    role: Role,
    addresses: [String; 2],
    days_off: [i64; 2],
}

struct Gen {
    rng: Rng,
    key: AuditKey,
    events: Vec<(i64, AuditEvent)>,
    /// (time, patient, study) received, in time order.
    received: Vec<(i64, u64, u64)>,
    next_study: u64,
}

impl Gen {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        t: i64,
        kind: EventKind,
        actor: Actor,
        route: &str,
        outcome: Outcome,
        count: Option<u64>,
        patients: &[u64],
        study: Option<u64>,
    ) {
        let mut e = AuditEvent::new(
            UNIX_EPOCH + Duration::from_secs(t as u64),
            kind,
            actor,
            outcome,
        );
        e.route = Some(route.to_string());
        e.count = count;
        for p in patients {
            e.subjects
                .push(SubjectRef::patient(&self.key, &format!("SIM-{p}")));
        }
        if let Some(s) = study {
            e.subjects
                .push(SubjectRef::study(&self.key, &format!("2.25.{s}")));
        }
        self.events.push((t, e));
    }

    fn actor(name: &str, address: &str) -> Actor {
        Actor {
            principal: name.to_string(),
            address: Some(address.to_string()),
            ae_title: None,
        }
    }

    /// A study received within the 48 hours before `t` (a random patient if none).
    fn recent(&mut self, t: i64) -> (u64, u64) {
        let hi = self.received.partition_point(|r| r.0 <= t);
        let lo = self.received.partition_point(|r| r.0 < t - 48 * 3600);
        if hi > lo {
            let r = self.received[lo + self.rng.below((hi - lo) as u64) as usize];
            (r.1, r.2)
        } else {
            (self.rng.below(PATIENTS), 0)
        }
    }

    /// A reader's or vendor's read of one study: a search by patient, a retrieve.
    fn read(&mut self, who: &str, address: &str, t: i64, patient: u64, study: u64) {
        let count = 1 + self.rng.below(5);
        self.push(
            t,
            EventKind::WebRequest,
            Self::actor(who, address),
            "web:GET /studies",
            Outcome::Success,
            Some(count),
            &[patient],
            None,
        );
        let later = t + 20 + self.rng.below(60) as i64;
        self.push(
            later,
            EventKind::WebRequest,
            Self::actor(who, address),
            "web:GET /studies/{study}",
            Outcome::Success,
            Some(1),
            &[patient],
            Some(study),
        );
    }
}

/// Simulate with `seed`.
pub fn simulate(seed: u64) -> Simulation {
    let mut g = Gen {
        rng: Rng(seed),
        key: AuditKey::from_bytes([11; 32]),
        events: Vec::new(),
        received: Vec::new(),
        next_study: 1,
    };
    let mut people = Vec::new();
    let mut add = |g: &mut Gen, name: String, role: Role| {
        let n = people.len();
        people.push(Who {
            name,
            role,
            // Readers share the reading rooms' 40 workstations, clinicians
            // the clinic's 20; vendors, modalities and admins have their own.
            addresses: match role {
                Role::Reader { .. } | Role::Locum => [
                    format!("10.1.0.{}", n % 40),
                    format!("10.1.0.{}", (n + 17) % 40),
                ],
                Role::Clinician | Role::Dormant => [
                    format!("10.2.0.{}", n % 20),
                    format!("10.2.0.{}", (n + 7) % 20),
                ],
                _ => [
                    format!("10.3.{}.{}", n / 250, n % 250),
                    format!("10.4.{}.{}", n / 250, n % 250),
                ],
            },
            days_off: [g.rng.below(7) as i64, g.rng.below(7) as i64],
        });
    };
    for i in 0..110 {
        let shift = match i % 10 {
            0 => (14, 23),
            1 => (22, 31),
            _ => (8, 17),
        };
        add(
            &mut g,
            format!("reader-{i:03}@radiology"),
            Role::Reader { shift },
        );
    }
    let others: [(&str, usize, Role); 6] = [
        ("locum-{}@radiology", 15, Role::Locum),
        ("clinician-{}@clinic", 35, Role::Clinician),
        ("clinician-d{}@clinic", 5, Role::Dormant),
        ("vendor-{}@ai", 10, Role::Vendor),
        ("modality-{}", 20, Role::Modality),
        ("admin-{}", 5, Role::Admin),
    ];
    for (pattern, n, role) in others {
        for i in 0..n {
            add(&mut g, pattern.replace("{}", &format!("{i:02}")), role);
        }
    }
    let mut incidents = Vec::new();
    // Who plays which incident, and when.
    let readers: Vec<usize> = (0..110).filter(|i| i % 10 >= 2).collect();
    let exfil: Vec<usize> = readers[..3].to_vec();
    for d in 0..DAYS {
        let day = START + d * 86_400;
        let weekday = d % 7;
        // Modalities: ~1,500 studies a day, more by day.
        let studies = g.rng.around(1500, 150);
        let mut day_rx = Vec::new();
        for _ in 0..studies {
            let hour = if g.rng.chance(0.75) {
                7 + g.rng.below(12)
            } else {
                g.rng.below(24)
            } as i64;
            let t = day + hour * 3600 + g.rng.below(3600) as i64;
            day_rx.push((t, g.rng.below(PATIENTS), g.next_study));
            g.next_study += 1;
        }
        day_rx.sort_unstable();
        for (k, &(t, p, s)) in day_rx.iter().enumerate() {
            let who = &people[175 + k % 20];
            let actor = Actor {
                principal: who.name.clone(),
                address: Some(who.addresses[0].clone()),
                ae_title: Some(format!("MOD{:02}", k % 20)),
            };
            g.push(
                t,
                EventKind::InstanceReceived,
                actor,
                "dimse:c-store",
                Outcome::Success,
                None,
                &[p],
                Some(s),
            );
        }
        g.received.extend(day_rx);
        for who in &people {
            let (name, role) = (who.name.clone(), who.role);
            let mut addr = who.addresses[g.rng.below(2) as usize].clone();
            let off = who.days_off.contains(&weekday) || (weekday >= 5 && g.rng.chance(0.7));
            if g.rng.chance(0.003) {
                // working from home: the site's VPN pool
                addr = format!("172.16.0.{}", g.rng.below(50));
            }
            match role {
                Role::Reader { shift } if !off => {
                    let busy = if g.rng.chance(0.1) { 45 } else { 30 };
                    for _ in 0..g.rng.around(busy, 8) {
                        let t = day
                            + shift.0 * 3600
                            + g.rng.below(((shift.1 - shift.0) * 3600) as u64) as i64;
                        let (p, s) = g.recent(t);
                        g.read(&name, &addr, t, p, s);
                        if g.rng.chance(0.2) {
                            g.push(
                                t + 200,
                                EventKind::WebRequest,
                                Gen::actor(&name, &addr),
                                "web:GET /studies/{study}",
                                Outcome::Success,
                                Some(1),
                                &[p],
                                Some(s + 1_000_000),
                            );
                        }
                    }
                    if g.rng.chance(0.02) {
                        // a big, legitimate search (a worklist of the day)
                        let t = day + shift.0 * 3600 + 600;
                        let n = g.rng.around(60, 20);
                        g.push(
                            t,
                            EventKind::WebRequest,
                            Gen::actor(&name, &addr),
                            "web:GET /studies",
                            Outcome::Success,
                            Some(n),
                            &[],
                            None,
                        );
                    }
                }
                Role::Locum if g.rng.chance(0.25) => {
                    for _ in 0..g.rng.around(25, 8) {
                        let t = day + 8 * 3600 + g.rng.below(9 * 3600) as i64;
                        let (p, s) = g.recent(t);
                        g.read(&name, &addr, t, p, s);
                    }
                }
                Role::Clinician | Role::Dormant if !off && (role == Role::Clinician || d < 8) => {
                    for _ in 0..g.rng.around(8, 4) {
                        let t = day + 7 * 3600 + g.rng.below(12 * 3600) as i64;
                        let p = if g.rng.chance(0.4) {
                            g.recent(t).0
                        } else {
                            g.rng.below(PATIENTS)
                        };
                        let n = 1 + g.rng.below(10);
                        g.push(
                            t,
                            EventKind::WebRequest,
                            Gen::actor(&name, &addr),
                            "web:GET /studies",
                            Outcome::Success,
                            Some(n),
                            &[p],
                            None,
                        );
                    }
                }
                Role::Vendor => {
                    let addr = who.addresses[0].clone();
                    for _ in 0..g.rng.around(150, 30) {
                        let t = day + g.rng.below(86_400) as i64;
                        let (p, s) = g.recent(t);
                        g.read(&name, &addr, t, p, s);
                    }
                }
                Role::Admin if g.rng.chance(0.05) => {
                    let t = day + 10 * 3600 + g.rng.below(7 * 3600) as i64;
                    g.push(
                        t,
                        EventKind::ConfigChange,
                        Gen::actor(&name, &addr),
                        "admin:config",
                        Outcome::Success,
                        None,
                        &[],
                        None,
                    );
                }
                _ => {}
            }
        }
        // Forwarding to the two configured destinations.
        for k in 0..200 {
            let t = day + g.rng.below(86_400) as i64;
            let (p, s) = g.recent(t);
            let dest = if k % 2 == 0 {
                "dest:pacs"
            } else {
                "dest:research"
            };
            g.push(
                t,
                EventKind::InstanceForwarded,
                Actor {
                    principal: "obscura-serve".into(),
                    address: None,
                    ae_title: None,
                },
                dest,
                Outcome::Success,
                None,
                &[p],
                Some(s),
            );
        }

        // Incidents.
        if (12..26).contains(&d) {
            for &r in &exfil {
                let (name, addr) = (people[r].name.clone(), people[r].addresses[0].clone());
                let (t0, mut t) = (day + 9 * 3600, day + 9 * 3600);
                for _ in 0..30 {
                    t += 600 + g.rng.below(300) as i64;
                    let p = g.rng.below(PATIENTS);
                    g.read(&name, &addr, t, p, g.next_study + 5_000_000);
                }
                incidents.push(Incident {
                    scenario: Scenario::SlowExfiltration,
                    principal: name,
                    start: t0,
                    end: t + 100,
                });
            }
        }
        if d < 10 {
            continue;
        }
        let pick = |g: &mut Gen, from: &[usize]| from[g.rng.below(from.len() as u64) as usize];
        let i = d - 10; // 20 incident days
        if i % 4 == 0 {
            let v = 165 + (i / 4) as usize * 2;
            let name = people[v].name.clone();
            let addr = format!("203.0.113.{}", 10 + i);
            let t0 = day + 3600 + g.rng.below(3600) as i64;
            let mut t = t0;
            for _ in 0..1500 {
                t += 4;
                let p = g.rng.below(PATIENTS);
                g.read(&name, &addr, t, p, g.next_study + 7_000_000);
            }
            incidents.push(Incident {
                scenario: Scenario::StolenVendorCredential,
                principal: name,
                start: t0,
                end: t + 100,
            });
        }
        if i % 2 == 0 {
            let r = pick(&mut g, &readers[10..]);
            let name = people[r].name.clone();
            let addr = format!("198.51.100.{}", 10 + i);
            let t0 = day + 9 * 3600;
            for k in 0..20 {
                let t = t0 + k * 900;
                let (p, s) = g.recent(t);
                g.read(&name, &addr, t, p, s);
            }
            incidents.push(Incident {
                scenario: Scenario::NewAddress,
                principal: name,
                start: t0,
                end: t0 + 20 * 900,
            });

            let r = pick(&mut g, &readers[10..]);
            let (name, addr) = (people[r].name.clone(), people[r].addresses[0].clone());
            let t0 = day + 2 * 3600;
            for k in 0..10 {
                let (p, s) = g.recent(t0 + k * 300);
                g.read(&name, &addr, t0 + k * 300, p, s);
            }
            incidents.push(Incident {
                scenario: Scenario::OffHours,
                principal: name,
                start: t0,
                end: t0 + 3000,
            });

            let r = pick(&mut g, &readers[10..]);
            let (name, addr) = (people[r].name.clone(), people[r].addresses[0].clone());
            let t0 = day + 11 * 3600;
            let patients: Vec<u64> = (0..1000).map(|_| g.rng.below(PATIENTS)).collect();
            g.push(
                t0,
                EventKind::WebRequest,
                Gen::actor(&name, &addr),
                "web:GET /studies",
                Outcome::Success,
                Some(2000),
                &patients,
                None,
            );
            incidents.push(Incident {
                scenario: Scenario::WildcardQuery,
                principal: name,
                start: t0,
                end: t0,
            });
        }
        if i % 4 == 1 {
            let dest = format!("dest:unknown-{i}");
            let t0 = day + 15 * 3600;
            for k in 0..20 {
                let (p, s) = g.recent(t0);
                g.push(
                    t0 + k * 30,
                    EventKind::InstanceForwarded,
                    Actor {
                        principal: "obscura-serve".into(),
                        address: None,
                        ae_title: None,
                    },
                    &dest,
                    Outcome::Success,
                    None,
                    &[p],
                    Some(s),
                );
            }
            incidents.push(Incident {
                scenario: Scenario::NewDestination,
                principal: dest,
                start: t0,
                end: t0 + 600,
            });

            let addr = format!("192.0.2.{}", 10 + i);
            let t0 = day + 20 * 3600;
            for k in 0..150 {
                let ae = format!("AE{}", g.rng.below(100_000));
                let actor = Actor {
                    principal: "unknown".into(),
                    address: Some(addr.clone()),
                    ae_title: Some(ae),
                };
                g.push(
                    t0 + k * 2,
                    EventKind::AssociationRejected,
                    actor,
                    "dimse:plain:OBSCURA",
                    Outcome::Denied,
                    None,
                    &[],
                    None,
                );
            }
            incidents.push(Incident {
                scenario: Scenario::AeTitleGuessing,
                principal: format!("address:{addr}"),
                start: t0,
                end: t0 + 300,
            });
        }
        if [10, 12, 14, 16, 18].contains(&i) {
            let w = 160 + (i as usize - 10) / 2;
            let (name, addr) = (people[w].name.clone(), people[w].addresses[0].clone());
            let t0 = day + 10 * 3600;
            for k in 0..10 {
                let (p, _) = g.recent(t0 + k * 600);
                g.push(
                    t0 + k * 600,
                    EventKind::WebRequest,
                    Gen::actor(&name, &addr),
                    "web:GET /studies",
                    Outcome::Success,
                    Some(3),
                    &[p],
                    None,
                );
            }
            incidents.push(Incident {
                scenario: Scenario::DormantCredential,
                principal: name,
                start: t0,
                end: t0 + 6000,
            });
        }
    }
    let mut events = std::mem::take(&mut g.events);
    events.sort_by_key(|(t, _)| *t);
    let mut seen = std::collections::HashSet::new();
    let records: Vec<Record> = events
        .into_iter()
        .enumerate()
        .map(|(seq, (_, event))| {
            seen.insert(event.actor.principal.clone());
            Record {
                seq: seq as u64,
                event,
            }
        })
        .collect();
    Simulation {
        records,
        incidents,
        principals: seen.len(),
    }
}
