//! The report's files: JSON (everything, with proofs; no names), the
//! notification list as CSV (names: the data owner's only output with
//! them) and a self-contained HTML summary (no names). Each is written
//! mode 0600 to a temporary file, then renamed: never a partial output.

use crate::{Exposure, NotifyRow, Report};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Write `bytes` to `path`: mode 0600, temporary file, fsync, rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), crate::Error> {
    let io = |e| crate::Error::Io(path.to_path_buf(), e);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// The report as pretty JSON.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report is JSON") + "\n"
}

/// One CSV field: quoted when needed, and a leading `= + - @` defused so
/// that a spreadsheet does not run it as a formula.
fn field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// The CSV header.
pub const CSV_HEADER: &str = "patient_ref,patient_id,patient_name,birth_date,state,exposure,notify,study_uid,study_exposure,referring_physician,tenant";

/// The notification list as CSV (RFC 4180, CRLF line ends).
pub fn csv(rows: &[NotifyRow]) -> String {
    let mut out = format!("{CSV_HEADER}\r\n");
    let label = |x: Exposure| {
        serde_json::to_value(x)
            .expect("JSON")
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    for r in rows {
        let cells = [
            r.patient_ref.clone(),
            r.patient_id.clone(),
            r.patient_name.clone(),
            r.birth_date.clone(),
            r.state.clone(),
            label(r.exposure),
            if r.exposure.identifiable() {
                "yes"
            } else {
                "no"
            }
            .to_string(),
            r.study_uid.clone(),
            r.study_exposure.map(label).unwrap_or_default(),
            r.referring_physician.clone(),
            r.tenant.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Text escaped for HTML text and quoted attributes.
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(s)
}

fn count_by(list: &[crate::Subject], x: Exposure) -> usize {
    list.iter().filter(|s| s.exposure == x).count()
}

/// The HTML summary: counts, states, deadlines, checklist, checkpoint. No
/// names, IDs or UIDs.
pub fn html(r: &Report) -> String {
    let mut h = String::new();
    let mut w = |s: String| h.push_str(&s);
    w(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Breach-impact report: {}</title>\n<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #999;padding:.3em .6em;text-align:left}}th{{background:#eee}}.due{{color:#a00;font-weight:bold}}pre{{background:#f4f4f4;padding:.5em;overflow-x:auto}}</style></head><body>\n",
        esc(&r.principal)
    ));
    w(format!(
        "<h1>Breach-impact report</h1>\n<p>Principal <b id=\"principal\">{}</b>, from {} to {}; discovered {}; made {}.</p>\n",
        esc(&r.principal),
        esc(&r.from),
        esc(&r.to),
        esc(&r.discovered),
        esc(&r.generated)
    ));
    w("<h2>What was touched</h2>\n<table id=\"touched\"><tr><th></th><th>instances retrieved or forwarded</th><th>demographics in query results</th><th>de-identified only</th><th>total</th><th>not resolved</th></tr>\n".into());
    for (name, list) in [("patients", &r.patients), ("studies", &r.studies)] {
        w(format!(
            "<tr><th>{name}</th><td>{}</td><td>{}</td><td>{}</td><td id=\"{name}-total\">{}</td><td>{}</td></tr>\n",
            count_by(list, Exposure::Instances),
            count_by(list, Exposure::Demographics),
            count_by(list, Exposure::DeidentifiedOnly),
            list.len(),
            list.iter().filter(|s| !s.resolved).count()
        ));
    }
    let pc = |x| r.providers.iter().filter(|p| p.exposure == x).count();
    w(format!(
        "<tr><th>providers</th><td>{}</td><td>{}</td><td>{}</td><td id=\"providers-total\">{}</td><td></td></tr></table>\n",
        pc(Exposure::Instances),
        pc(Exposure::Demographics),
        pc(Exposure::DeidentifiedOnly),
        r.providers.len()
    ));
    w("<h2>Individuals to notify, by state of residence</h2>\n<table id=\"states\"><tr><th>state</th><th>residents</th><th>media notice</th></tr>\n".into());
    for s in &r.states {
        w(format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&s.state),
            s.residents,
            if s.media_notice {
                "yes (more than 500)"
            } else {
                "no"
            }
        ));
    }
    w("</table>\n<h2>Notices and deadlines</h2>\n".into());
    if r.notices.is_empty() {
        w("<p id=\"no-notice\">No identifiable data was exposed: no notice is due.</p>\n".into());
    }
    for n in &r.notices {
        w(format!(
            "<h3>{} <small>({})</small></h3>\n<p>Due: <span class=\"due\">{}</span>: {}</p>\n<ul>\n",
            esc(&n.to),
            esc(&n.rule),
            esc(&n.due),
            esc(&n.why)
        ));
        for c in &n.must_contain {
            w(format!(
                "<li><label><input type=\"checkbox\"> {}</label></li>\n",
                esc(c)
            ));
        }
        w("</ul>\n".into());
    }
    w("<h2>Activity of the principal in the window</h2>\n<table id=\"activity\"><tr><th>event</th><th>count</th></tr>\n".into());
    for (k, n) in &r.activity {
        w(format!("<tr><td>{}</td><td>{n}</td></tr>\n", esc(k)));
    }
    w(format!(
        "</table>\n<h2>Evidence</h2>\n<p>{} events used, each with an inclusion proof against the signed checkpoint below ({} records of {}; {} events not yet covered by a checkpoint; outside checkpoints matched up to record {}). Check with <code>obscura audit verify-report</code>.</p>\n<pre id=\"checkpoint\">{}</pre>\n</body></html>\n",
        r.events.len(),
        r.log.checkpoint_size,
        r.log.records,
        r.log.unsigned_events,
        r.log.anchored,
        esc(&r.log.checkpoint)
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(field("Doe^John"), "Doe^John");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn written_files_are_private_and_whole() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("list.csv");
        write_private(&p, b"x\r\n").unwrap();
        write_private(&p, b"y\r\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"y\r\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        assert!(write_private(&d.path().join("missing/x.csv"), b"").is_err());
    }
}
