//! What the selected events exposed: each patient and study (keyed hash)
//! with its worst exposure and the events that touched it. The report
//! computes it, and `verify-report` recomputes it from the events alone.

use obscura_audit::{EventKind, Outcome, Record, SubjectKind, WebAction};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How much of a patient's or study's data reached the principal, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exposure {
    /// Only de-identified data (forwarded through a de-identifying
    /// destination, or read through a de-identified view).
    DeidentifiedOnly,
    /// Demographics seen in query results (QIDO).
    Demographics,
    /// Instances retrieved (WADO) or forwarded unaltered.
    Instances,
}

impl Exposure {
    /// Whether the data was identifiable (a notice is due).
    pub fn identifiable(self) -> bool {
        self != Exposure::DeidentifiedOnly
    }

    /// Its name in the reports.
    pub fn label(self) -> &'static str {
        match self {
            Exposure::DeidentifiedOnly => "de-identified only",
            Exposure::Demographics => "demographics in query results",
            Exposure::Instances => "instances retrieved or forwarded",
        }
    }
}

/// What an event exposed, if anything: successful searches, retrieves and
/// forwards only. Every destination de-identifies except those named in
/// `identified` (which receive originals).
pub fn exposure(r: &Record, identified: &BTreeSet<String>) -> Option<Exposure> {
    if r.event.outcome != Outcome::Success {
        return None;
    }
    match r.event.kind {
        EventKind::WebRequest => match r.event.web_action()? {
            WebAction::Search | WebAction::Retrieve if r.event.deidentified_view() => {
                Some(Exposure::DeidentifiedOnly)
            }
            WebAction::Search => Some(Exposure::Demographics),
            WebAction::Retrieve => Some(Exposure::Instances),
            WebAction::Store | WebAction::Delete => None,
        },
        EventKind::InstanceForwarded => {
            let dest = r.event.route.as_deref()?.strip_prefix("dest:")?;
            Some(if identified.contains(dest) {
                Exposure::Instances
            } else {
                Exposure::DeidentifiedOnly
            })
        }
        _ => None,
    }
}

/// A patient or study the events touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    /// Its worst exposure.
    pub exposure: Exposure,
    /// The events (indexes in the log) that touched it.
    pub events: Vec<u64>,
}

/// Patients and studies touched, by keyed hash.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Patients.
    pub patients: BTreeMap<String, Touch>,
    /// Studies.
    pub studies: BTreeMap<String, Touch>,
}

/// Gather what `records` exposed.
pub fn touched<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    identified: &BTreeSet<String>,
) -> Touched {
    let mut out = Touched::default();
    for r in records {
        let Some(x) = exposure(r, identified) else {
            continue;
        };
        for s in &r.event.subjects {
            let map = match s.kind {
                SubjectKind::Patient => &mut out.patients,
                SubjectKind::Study => &mut out.studies,
                _ => continue,
            };
            let t = map.entry(s.hash.clone()).or_insert(Touch {
                exposure: x,
                events: Vec::new(),
            });
            t.exposure = t.exposure.max(x);
            if t.events.last() != Some(&r.seq) {
                t.events.push(r.seq);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use obscura_audit::{Actor, AuditEvent};

    fn web(route: &str, view: Option<&str>) -> Record {
        let mut event = AuditEvent::new(
            std::time::SystemTime::now(),
            EventKind::WebRequest,
            Actor {
                principal: "vendor@clinic".into(),
                ..Default::default()
            },
            Outcome::Success,
        );
        event.route = Some(route.into());
        event.view = view.map(str::to_string);
        Record { seq: 0, event }
    }

    #[test]
    fn reads_through_a_deidentified_view_are_deidentified_only() {
        let none = BTreeSet::new();
        let view = Some(obscura_audit::VIEW_DEIDENTIFIED);
        let cases = [
            ("web:GET /studies", None, Some(Exposure::Demographics)),
            ("web:GET /studies/{study}", None, Some(Exposure::Instances)),
            ("web:GET /studies", view, Some(Exposure::DeidentifiedOnly)),
            (
                "web:GET /studies/{study}",
                view,
                Some(Exposure::DeidentifiedOnly),
            ),
            ("web:POST /studies", view, None),
        ];
        for (route, view, want) in cases {
            assert_eq!(exposure(&web(route, view), &none), want, "{route} {view:?}");
        }
    }
}
