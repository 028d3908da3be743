//! Who must be told, by when, and what each notice must say: HIPAA's
//! breach notification rule (45 CFR 164.404-408) and GDPR articles 33-34.

use crate::time;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// More residents of one state than this: the media of that state must be
/// told (45 CFR 164.406); this many individuals or more in all: HHS is
/// told with the individuals, not at year end (164.408(b)).
pub const MEDIA_THRESHOLD: u64 = 500;

/// Patients to notify, counted by state of residence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCount {
    /// A US postal code, or `unknown`.
    pub state: String,
    /// Patients whose identifiable data was exposed.
    pub residents: u64,
    /// Whether the state's media must be told (more than 500 residents).
    pub media_notice: bool,
}

/// One notice the breach calls for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Who is told.
    pub to: String,
    /// The rule that says so.
    pub rule: String,
    /// The latest time it may go out (RFC 3339), or `without undue delay`.
    pub due: String,
    /// Why it is due, or why at this date.
    pub why: String,
    /// What it must contain.
    pub must_contain: Vec<String>,
}

const HIPAA_CONTENT: [&str; 5] = [
    "A brief description of what happened, with the date of the breach and the date of its discovery",
    "The types of unsecured PHI involved (e.g. name, date of birth, address, diagnosis, images)",
    "The steps individuals should take to protect themselves from potential harm",
    "What the covered entity is doing to investigate, mitigate the harm and protect against further breaches",
    "Contact procedures: a toll-free number, an e-mail address, a web site or a postal address",
];

const GDPR_AUTHORITY: [&str; 4] = [
    "The nature of the breach: categories and approximate number of data subjects and of records concerned",
    "The name and contact details of the data protection officer or other contact point",
    "The likely consequences of the breach",
    "The measures taken or proposed to address the breach and mitigate its possible adverse effects",
];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The states' counts, sorted by state (`unknown` last).
pub fn states(counts: impl IntoIterator<Item = (String, u64)>) -> Vec<StateCount> {
    let mut out: Vec<StateCount> = counts
        .into_iter()
        .map(|(state, residents)| StateCount {
            media_notice: state != "unknown" && residents > MEDIA_THRESHOLD,
            state,
            residents,
        })
        .collect();
    out.sort_by(|a, b| ((a.state == "unknown"), &a.state).cmp(&((b.state == "unknown"), &b.state)));
    out
}

/// The notices due for `states` after a breach discovered at `discovered`.
pub fn notices(states: &[StateCount], discovered: SystemTime) -> Vec<Notice> {
    let total: u64 = states.iter().map(|s| s.residents).sum();
    if total == 0 {
        return Vec::new();
    }
    let in60 = time::format(time::plus_days(discovered, 60));
    let mut out = vec![Notice {
        to: format!("{total} individuals (first-class mail, or e-mail if they agreed)"),
        rule: "HIPAA 45 CFR 164.404".into(),
        due: in60.clone(),
        why: "without unreasonable delay, at the latest 60 days after discovery".into(),
        must_contain: strings(&HIPAA_CONTENT),
    }];
    let (hhs_due, hhs_why) = if total >= MEDIA_THRESHOLD {
        (
            in60.clone(),
            format!("{total} individuals (500 or more): with the individuals' notice"),
        )
    } else {
        (
            time::format(time::plus_days(time::end_of_year(discovered), 60)),
            format!("{total} individuals (fewer than 500): within 60 days of the end of the calendar year"),
        )
    };
    out.push(Notice {
        to: "The Secretary of HHS (breach portal)".into(),
        rule: "HIPAA 45 CFR 164.408".into(),
        due: hhs_due,
        why: hhs_why,
        must_contain: strings(&HIPAA_CONTENT),
    });
    for s in states.iter().filter(|s| s.media_notice) {
        out.push(Notice {
            to: format!("Prominent media outlets serving {}", s.state),
            rule: "HIPAA 45 CFR 164.406".into(),
            due: in60.clone(),
            why: format!("{} residents of {} (more than 500)", s.residents, s.state),
            must_contain: strings(&HIPAA_CONTENT),
        });
    }
    out.push(Notice {
        to: "The supervisory authority (where GDPR applies)".into(),
        rule: "GDPR art. 33".into(),
        due: time::format(time::plus_hours(discovered, 72)),
        why: "within 72 hours of becoming aware, unless the breach is unlikely to result in a risk to rights and freedoms".into(),
        must_contain: strings(&GDPR_AUTHORITY),
    });
    out.push(Notice {
        to: "The data subjects (where GDPR applies and the risk is high)".into(),
        rule: "GDPR art. 34".into(),
        due: "without undue delay".into(),
        why: "a high risk to their rights and freedoms".into(),
        must_contain: std::iter::once(
            "In clear and plain language, the nature of the breach".to_string(),
        )
        .chain(strings(&GDPR_AUTHORITY[1..]))
        .collect(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_deadlines() {
        let d = time::parse("2026-11-10T12:00:00Z").unwrap();
        let few = states([("IL".to_string(), 3), ("unknown".to_string(), 1)]);
        let n = notices(&few, d);
        assert_eq!(n[0].due, "2027-01-09T12:00:00.000Z");
        assert_eq!(
            n[1].due, "2027-03-02T00:00:00.000Z",
            "HHS at year end + 60 days"
        );
        assert!(!n.iter().any(|x| x.rule.ends_with("164.406")));
        assert_eq!(
            n.iter().find(|x| x.rule == "GDPR art. 33").unwrap().due,
            "2026-11-13T12:00:00.000Z"
        );
        let many = states([("TX".to_string(), 501), ("CA".to_string(), 500)]);
        assert_eq!(many[0].state, "CA");
        assert!(!many[0].media_notice && many[1].media_notice);
        let n = notices(&many, d);
        assert_eq!(n[1].due, n[0].due, "HHS with the individuals");
        let media: Vec<_> = n.iter().filter(|x| x.rule.ends_with("164.406")).collect();
        assert_eq!(media.len(), 1);
        assert!(media[0].to.ends_with("TX"));
        assert!(notices(&states([]), d).is_empty());
    }
}
