//! The terminal summary: one block per reachable endpoint, a table of findings.

use crate::{Report, Severity};

/// The report as text for a terminal: endpoints, identity, findings, totals.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let mut closed = 0;
    for e in &report.endpoints {
        if !e.reachable {
            closed += 1;
            continue;
        }
        let id = e
            .fingerprint
            .as_ref()
            .map(|f| format!("{} (confidence {})", f.identified, f.confidence))
            .unwrap_or_else(|| "unknown".into());
        let offered: Vec<&str> = e
            .services
            .iter()
            .filter(|s| s.accepted)
            .map(|s| s.name)
            .collect();
        out.push_str(&format!(
            "{}  transport {}  DICOM {}  identified {}\n",
            e.target,
            e.transport,
            if e.speaks_dicom { "yes" } else { "no" },
            id
        ));
        if let Some(h) = &e.http {
            let found: Vec<&str> = h
                .dicomweb_found()
                .map(|c| {
                    if c.prefix.is_empty() {
                        "/"
                    } else {
                        c.prefix.as_str()
                    }
                })
                .collect();
            out.push_str(&format!(
                "  HTTP {} (GET / {}){}{}; DICOMweb roots (answered or refused): {}\n",
                h.scheme,
                h.root.status,
                h.server_header
                    .as_deref()
                    .map(|s| format!(", Server {s}"))
                    .unwrap_or_default(),
                h.auth_realm
                    .as_deref()
                    .map(|r| format!(", realm \"{r}\""))
                    .unwrap_or_default(),
                if found.is_empty() {
                    "none".into()
                } else {
                    found.join(", ")
                }
            ));
        }
        if let Some(ae) = &e.accepted_called_ae {
            out.push_str(&format!(
                "  accepted called AE {}{}; offered to an unknown caller: {}\n",
                ae,
                if e.any_called_ae_accepted {
                    " (any title)"
                } else {
                    ""
                },
                if offered.is_empty() {
                    "nothing".into()
                } else {
                    offered.join(", ")
                }
            ));
        }
        if e.findings.is_empty() {
            out.push_str("  no findings\n");
        }
        for f in &e.findings {
            out.push_str(&format!(
                "  {:<8}  {:<30}  {}\n",
                f.severity.as_str(),
                f.id,
                f.title
            ));
            if f.severity >= Severity::Medium {
                for ev in &f.evidence {
                    out.push_str(&format!("  {:<8}  {:<30}    {}\n", "", "", ev));
                }
            }
        }
        for n in &e.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
    }
    let count = |s| {
        report
            .endpoints
            .iter()
            .flat_map(|e| &e.findings)
            .filter(|f| f.severity == s)
            .count()
    };
    out.push_str(&format!(
        "{} endpoint(s), {} not reachable; findings: {} critical, {} high, {} medium, {} low; {:.1} s\n",
        report.endpoints.len(),
        closed,
        count(Severity::Critical),
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low),
        report.elapsed_ms as f64 / 1000.0
    ));
    out
}
