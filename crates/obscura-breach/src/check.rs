//! `obscura audit verify-report`: a report checked offline with the log's
//! public key alone. The checkpoint's signature; every event's line, its
//! principal and time against the report's, and its inclusion proof; the
//! patients, studies, states and notices recomputed from the events. With
//! the log at hand too, the report is shown complete: the log holds no
//! other event of the principal in the window, and its tree at the
//! checkpoint's size is the one signed.

use crate::select::{self, Principal};
use crate::{law, time, touch, Report, Subject, FORMAT};
use obscura_audit::merkle::{leaf_hash, verify_inclusion, Hash, Tree};
use obscura_audit::{Record, Verifier};
use std::collections::BTreeSet;
use std::path::Path;

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Events whose inclusion proof verified.
    pub proven: usize,
    /// Events no checkpoint covered (the report says how many).
    pub unsigned: usize,
    /// The checkpoint's size.
    pub checkpoint_size: u64,
    /// With the log: whether the report holds every event of the
    /// principal in the window.
    pub complete: Option<bool>,
    /// Everything that does not hold, in the order found (empty: the
    /// report is what it says).
    pub problems: Vec<String>,
}

fn unhex32(s: &str) -> Option<Hash> {
    obscura_audit::event::unhex(s)?.try_into().ok()
}

/// Parse a report's JSON.
pub fn parse(text: &str) -> Result<Report, crate::Error> {
    let r: Report = serde_json::from_str(text).map_err(|e| crate::Error::Format(format!("{e}")))?;
    if r.format != FORMAT {
        return Err(crate::Error::Format(format!("format is not {FORMAT}")));
    }
    Ok(r)
}

/// Check `report` against `verifier` (and the log at `log_dir`, if given).
pub fn check(
    report: &Report,
    verifier: &Verifier,
    log_dir: Option<&Path>,
) -> Result<Checked, crate::Error> {
    let mut out = Checked::default();
    let mut problem = |p: String| out.problems.push(p);
    let cp = match verifier.open_checkpoint(&report.log.checkpoint) {
        Ok(cp) => cp,
        Err(e) => {
            let mut c = Checked::default();
            c.problems.push(format!("the checkpoint is refused: {e}"));
            return Ok(c);
        }
    };
    let who = Principal(report.principal.clone());
    let mut records = Vec::new();
    let (mut proven, mut unsigned) = (0, 0);
    for e in &report.events {
        let r = match Record::from_line(e.line.as_bytes()) {
            Ok(r) => r,
            Err(why) => {
                problem(format!("event {} is {why}", e.seq));
                continue;
            }
        };
        if r.seq != e.seq {
            problem(format!("event {} says it is record {}", e.seq, r.seq));
        }
        if !who.matches(&r) {
            problem(format!(
                "event {} is not of principal {}",
                e.seq, report.principal
            ));
        }
        if r.event.time < report.from || r.event.time > report.to {
            problem(format!("event {} is outside the window", e.seq));
        }
        match &e.proof {
            Some(p) => {
                let hashes: Option<Vec<Hash>> = p.iter().map(|h| unhex32(h)).collect();
                let ok = hashes.is_some_and(|h| {
                    verify_inclusion(&leaf_hash(e.line.as_bytes()), e.seq, cp.size, &h, &cp.root)
                        .is_ok()
                });
                if ok {
                    proven += 1;
                } else {
                    problem(format!(
                        "event {}: the inclusion proof does not verify",
                        e.seq
                    ));
                }
            }
            None if e.seq >= cp.size => unsigned += 1,
            None => problem(format!(
                "event {} is covered by the checkpoint but has no proof",
                e.seq
            )),
        }
        records.push(r);
    }
    if unsigned as u64 != report.log.unsigned_events {
        problem(format!(
            "{unsigned} events have no proof, the report says {}",
            report.log.unsigned_events
        ));
    }
    if cp.size != report.log.checkpoint_size {
        problem("the checkpoint's size is not the report's".into());
    }

    // What the events exposed, recomputed.
    let identified: BTreeSet<String> = report.identified_destinations.iter().cloned().collect();
    let t = touch::touched(&records, &identified);
    let same = |what: &str,
                listed: &[Subject],
                want: &std::collections::BTreeMap<String, touch::Touch>| {
        let got: Vec<(&String, touch::Exposure, &Vec<u64>)> = listed
            .iter()
            .map(|s| (&s.hash, s.exposure, &s.events))
            .collect();
        let want: Vec<(&String, touch::Exposure, &Vec<u64>)> = want
            .iter()
            .map(|(h, t)| (h, t.exposure, &t.events))
            .collect();
        (got != want).then(|| format!("the {what} listed are not those the events touched"))
    };
    for p in [
        same("patients", &report.patients, &t.patients),
        same("studies", &report.studies, &t.studies),
    ]
    .into_iter()
    .flatten()
    {
        problem(p);
    }
    let residents: u64 = report.states.iter().map(|s| s.residents).sum();
    let notifiable = report
        .patients
        .iter()
        .filter(|p| p.exposure.identifiable())
        .count() as u64;
    if residents != notifiable {
        problem(format!(
            "the states count {residents} patients, {notifiable} were exposed"
        ));
    }
    let states = law::states(report.states.iter().map(|s| (s.state.clone(), s.residents)));
    let due = time::parse(&report.discovered).map(|d| law::notices(&states, d));
    if states != report.states || due.as_ref() != Some(&report.notices) {
        problem("the thresholds or the notices are not those the counts call for".into());
    }

    if let Some(dir) = log_dir {
        let scan = select::scan(dir, &who)?;
        let tree = Tree::from_leaves(scan.leaves);
        if tree.root(cp.size) != Some(cp.root) {
            problem("the log's records at the checkpoint's size are not the ones signed".into());
        }
        let all = select::select(scan.candidates, &who, &report.from, &report.to)?;
        let want: BTreeSet<u64> = all.iter().map(|(r, _)| r.seq).collect();
        let got: BTreeSet<u64> = report.events.iter().map(|e| e.seq).collect();
        let complete = want == got;
        if !complete {
            problem(format!(
                "the log holds {} events of the principal in the window, the report {}",
                want.len(),
                got.len()
            ));
        }
        out.complete = Some(complete);
    }
    out.proven = proven;
    out.unsigned = unsigned;
    out.checkpoint_size = cp.size;
    Ok(out)
}
