//! The self-contained HTML report: inline CSS, no script, no external
//! resource; per endpoint its identity, per finding its severity, evidence,
//! reference and fix. Holds what the JSON holds, nothing more.

use crate::{EndpointReport, Report, Severity};

/// Text escaped for HTML text and quoted attributes.
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(s)
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f4f4f4}.sev{font-weight:bold;text-transform:uppercase;font-size:.85em;padding:.1em .4em;border-radius:3px;color:#fff}\
.critical{background:#8b0000}.high{background:#d9480f}.medium{background:#e6a700;color:#222}.low{background:#1c7ed6}.info{background:#868e96}\
ul{margin:.2em 0;padding-left:1.2em}.muted{color:#666}code{font-size:.95em}";

fn identity(e: &EndpointReport) -> String {
    let mut rows = vec![
        ("Transport", e.transport.to_string()),
        (
            "Speaks DICOM",
            if e.speaks_dicom { "yes" } else { "no" }.to_string(),
        ),
    ];
    if let Some(t) = &e.tls {
        rows.push((
            "TLS",
            if t.handshake {
                format!(
                    "{} {}{}",
                    t.version.as_deref().unwrap_or("?"),
                    t.cipher_suite.as_deref().unwrap_or("?"),
                    if t.client_certificate_requested {
                        ", client certificate requested"
                    } else {
                        ""
                    }
                )
            } else {
                format!("no handshake ({})", t.failure.as_deref().unwrap_or("-"))
            },
        ));
    }
    if let Some(h) = &e.http {
        rows.push((
            "HTTP",
            format!(
                "{}; GET / {}{}{}",
                h.scheme,
                h.root.status,
                h.server_header
                    .as_deref()
                    .map(|s| format!("; Server {s}"))
                    .unwrap_or_default(),
                h.auth_realm
                    .as_deref()
                    .map(|r| format!("; realm \"{r}\""))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(f) = &e.fingerprint {
        rows.push((
            "Implementation",
            format!(
                "{} (confidence {}, from {}) — {}",
                f.identified, f.confidence, f.source, f.note
            ),
        ));
    }
    if let Some(ae) = &e.accepted_called_ae {
        let offered: Vec<&str> = e
            .services
            .iter()
            .filter(|s| s.accepted)
            .map(|s| s.name)
            .collect();
        rows.push((
            "Unknown caller",
            format!(
                "accepted at called AE {ae}{}; offered: {}",
                if e.any_called_ae_accepted {
                    " (any title)"
                } else {
                    ""
                },
                offered.join(", ")
            ),
        ));
    }
    rows.push((
        "Connections",
        format!("{} in {} ms", e.connections, e.elapsed_ms),
    ));
    let mut o = String::from("<table>");
    for (k, v) in rows {
        o.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v)));
    }
    o.push_str("</table>");
    o
}

/// The report as one HTML page.
pub fn html(report: &Report) -> String {
    let count = |s: Severity| {
        report
            .endpoints
            .iter()
            .flat_map(|e| &e.findings)
            .filter(|f| f.severity == s)
            .count()
    };
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    o.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">");
    o.push_str(&format!(
        "<title>{}</title><style>{CSS}</style></head><body>",
        esc(&report.tool)
    ));
    o.push_str(&format!("<h1>{} — endpoint audit</h1>", esc(&report.tool)));
    o.push_str(&format!(
        "<p>{} endpoint(s); findings: <span class=\"sev critical\">{} critical</span> \
         <span class=\"sev high\">{} high</span> <span class=\"sev medium\">{} medium</span> \
         <span class=\"sev low\">{} low</span>; {:.1} s. CVE table compiled {}.</p>",
        report.endpoints.len(),
        count(Severity::Critical),
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low),
        report.elapsed_ms as f64 / 1000.0,
        esc(&report.cve_table_compiled)
    ));
    o.push_str(&format!(
        "<p class=\"muted\">Evidence holds counts, status codes, protocol codes and keyed hashes, \
         never a value from a data set. {}.</p>",
        esc(report.hash_note)
    ));
    for e in &report.endpoints {
        o.push_str(&format!("<h2>{}</h2>", esc(&e.target)));
        if !e.reachable {
            o.push_str("<p class=\"muted\">not reachable</p>");
            continue;
        }
        o.push_str(&identity(e));
        if e.findings.is_empty() {
            o.push_str("<p>No findings.</p>");
        } else {
            o.push_str(
                "<table><tr><th>Severity</th><th>Finding</th><th>Evidence</th><th>Reference</th><th>Fix</th></tr>",
            );
            for f in &e.findings {
                let ev: String = f
                    .evidence
                    .iter()
                    .map(|x| format!("<li>{}</li>", esc(x)))
                    .collect();
                o.push_str(&format!(
                    "<tr class=\"finding\" data-severity=\"{s}\"><td><span class=\"sev {s}\">{s}</span></td><td><code>{}</code><br>{}</td>\
                     <td><ul>{ev}</ul></td><td>{}</td><td>{}</td></tr>",
                    esc(f.id),
                    esc(&f.title),
                    esc(f.reference),
                    esc(f.fix),
                    s = f.severity.as_str(),
                ));
            }
            o.push_str("</table>");
        }
        if !e.notes.is_empty() {
            o.push_str("<ul class=\"muted\">");
            for n in &e.notes {
                o.push_str(&format!("<li>{}</li>", esc(n)));
            }
            o.push_str("</ul>");
        }
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(
            super::esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
        );
    }
}
