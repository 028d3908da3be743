//! The report for machines (JSON, CSV) and people (terminal, HTML).

use crate::{Category, Finding, Report, ScanError};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// A value as reports show it when values are hidden: its first character
/// and asterisks (`D***`), or empty.
pub fn mask(s: &str) -> String {
    let t = s.trim();
    match t.chars().next() {
        None => String::new(),
        Some(c) => format!("{c}***"),
    }
}

fn finding_json(f: &Finding, show_values: bool) -> Value {
    json!({
        "path": f.path,
        "keyword": f.keyword,
        "category": f.category.as_str(),
        "detector": f.detector,
        "kind": f.kind,
        "value": if show_values { f.value.clone() } else { mask(&f.value) },
    })
}

/// The report as JSON: figures, creators, patients (masked unless
/// `show_values`), riskiest files and every finding of every file.
pub fn json(report: &Report, show_values: bool) -> Value {
    let m = |s: &str| if show_values { s.to_string() } else { mask(s) };
    let files: Vec<Value> = report
        .files
        .iter()
        .map(|f| {
            let (status, reason) = match &f.status {
                crate::FileStatus::Scanned => ("scanned", None),
                crate::FileStatus::Skipped => ("skipped", None),
                crate::FileStatus::Unreadable(r) => ("unreadable", Some(r.clone())),
            };
            json!({
                "path": f.path,
                "status": status,
                "reason": reason,
                "bytes": f.bytes,
                "modality": f.modality,
                "sop_class": f.sop_class,
                "marked_deidentified": f.marked_deidentified,
                "score": f.score(),
                "findings": f.findings.iter().map(|x| finding_json(x, show_values)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "tool": "obscura scan",
        "version": env!("CARGO_PKG_VERSION"),
        "values_shown": show_values,
        "summary": report.summary,
        "private_creators": report.private_creators,
        "patients": report.patients.iter().map(|p| json!({
            "name": m(&p.patient.name),
            "id": m(&p.patient.id),
            "birth_date": m(&p.patient.birth_date),
            "files": p.files,
            "studies": p.studies,
        })).collect::<Vec<_>>(),
        "riskiest": report.riskiest.iter().map(|&i| json!({
            "path": report.files[i].path,
            "score": report.files[i].score(),
            "findings": report.files[i].findings.len(),
        })).collect::<Vec<_>>(),
        "files": files,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The distinct patients as CSV (`name,id,birth_date,files,studies`): PHI.
pub fn patients_csv(report: &Report) -> String {
    let mut out = String::from("name,id,birth_date,files,studies\n");
    for p in &report.patients {
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            csv_field(&p.patient.name),
            csv_field(&p.patient.id),
            csv_field(&p.patient.birth_date),
            p.files,
            p.studies
        );
    }
    out
}

/// Write `bytes` to `path`, readable by its owner only (0600), even if the
/// file existed with wider permissions. A path that is not a regular file
/// (a pipe, `/dev/stdout`, `/dev/null`) is written to as it is: its mode
/// belongs to whoever made it.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ScanError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |e| ScanError::Output(path.to_path_buf(), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    if f.metadata().map_err(err)?.is_file() {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    f.write_all(bytes).map_err(err)
}

/// The terminal summary: files, patients, studies, findings by category,
/// the riskiest files. No values.
pub fn summary_text(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "obscura scan: {} files ({} scanned, {} skipped, {} unreadable), {} patients, {} studies",
        s.files, s.scanned, s.skipped, s.unreadable, s.patients, s.studies
    );
    let _ = writeln!(
        out,
        "{} findings ({} identity) in {} files; {} files at burned-in risk; {} marked de-identified but not clean",
        s.findings, s.identity_findings, s.files_with_identity, s.burned_in_files, s.claims_clean_files
    );
    let _ = writeln!(out, "\n  {:<38} {:>9}", "category", "findings");
    for c in Category::ALL {
        let _ = writeln!(
            out,
            "  {:<38} {:>9}",
            c.label(),
            s.by_category.get(c.as_str()).copied().unwrap_or(0)
        );
    }
    if !report.riskiest.is_empty() {
        let _ = writeln!(out, "\n  riskiest files (score = weighted findings):");
        for &i in &report.riskiest {
            let f = &report.files[i];
            let _ = writeln!(out, "  {:>7}  {}", f.score(), f.path);
        }
    }
    out
}

/// Every identity finding, one line each (`file<TAB>tag path<TAB>category<TAB>detector`),
/// for `--expect-clean`. No values.
pub fn identity_listing(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.files {
        for x in f.findings.iter().filter(|x| x.category.is_identity()) {
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{}",
                f.path,
                x.path,
                x.category.as_str(),
                x.detector
            );
        }
    }
    out
}

/// Text escaped for HTML text and quoted attributes.
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(s)
}

/// A horizontal bar chart as inline SVG; `id` names each bar's figure
/// (`data-figure="{id}.{key}"`).
fn bar_chart(title: &str, id: &str, rows: &[(String, String, u64)]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<figure class=\"chart\"><figcaption>{}</figcaption>",
        esc(title)
    );
    if rows.is_empty() {
        o.push_str("<p class=\"none\">none</p></figure>");
        return o;
    }
    let max = rows.iter().map(|r| r.2).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (260.0, 360.0, 22.0);
    let height = row_h * rows.len() as f64 + 4.0;
    let _ = write!(
        o,
        "<svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {} {height}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(title),
        label_w + bar_w + 80.0
    );
    for (i, (key, label, n)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let w = (*n as f64 / max as f64) * bar_w;
        let label: String = label.chars().take(40).collect();
        let _ = write!(
            o,
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\" class=\"lbl\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" class=\"bar\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"val\" data-figure=\"{}.{}\">{n}</text>",
            label_w - 6.0,
            y + 15.0,
            esc(&label),
            row_h - 6.0,
            label_w + w + 6.0,
            y + 15.0,
            esc(id),
            esc(key)
        );
    }
    o.push_str("</svg></figure>");
    o
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330;margin:2rem auto;max-width:1000px;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:2rem 0 .6rem;border-bottom:1px solid #d5d9e0;padding-bottom:.2rem}
.sub{color:#5a6375;margin:0 0 1.2rem}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.6rem}
.card{border:1px solid #d5d9e0;border-radius:6px;padding:.5rem .7rem}.card b{display:block;font-size:1.5rem}.card span{color:#5a6375;font-size:.85rem}
.card.alert{border-color:#c0392b;background:#fdf0ee}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e6e9ee;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.chart{margin:1rem 0;break-inside:avoid}.chart figcaption{font-weight:600;margin-bottom:.3rem}
.bar{fill:#3b6fb6}.lbl,.val{font-size:12px;fill:#1d2330}.none{color:#5a6375}code{font-size:.85rem;word-break:break-all}
.safe{color:#1e7d3a}.unsafe{color:#b03a2e}footer{margin-top:2rem;color:#5a6375;font-size:.8rem}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}tr,.card{break-inside:avoid}}";

/// The self-contained HTML report: figures, charts (inline SVG) by category,
/// modality and private creator, patients (masked), riskiest files. No
/// network fetch, no script.
pub fn html(report: &Report) -> String {
    let s = &report.summary;
    let mut o = String::new();
    o.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    o.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    o.push_str("<title>Obscura scan report</title><style>");
    o.push_str(CSS);
    o.push_str("</style></head><body><h1>Obscura scan report</h1>");
    let _ = write!(
        o,
        "<p class=\"sub\">Identity found in the headers of DICOM files (pixels not decoded). Values are masked. obscura {}.</p>",
        env!("CARGO_PKG_VERSION")
    );
    o.push_str("<h2>Summary</h2><div class=\"cards\">");
    let cards: [(&str, &str, u64, bool); 12] = [
        ("files", "files", s.files, false),
        ("scanned", "scanned", s.scanned, false),
        ("skipped", "skipped", s.skipped, false),
        ("unreadable", "unreadable", s.unreadable, s.unreadable > 0),
        ("patients", "patients", s.patients, false),
        ("studies", "studies", s.studies, false),
        ("findings", "findings", s.findings, false),
        (
            "identity_findings",
            "identity findings",
            s.identity_findings,
            s.identity_findings > 0,
        ),
        (
            "files_with_identity",
            "files with identity",
            s.files_with_identity,
            s.files_with_identity > 0,
        ),
        (
            "burned_in_files",
            "burned-in risk files",
            s.burned_in_files,
            s.burned_in_files > 0,
        ),
        (
            "claims_clean_files",
            "claim clean, are not",
            s.claims_clean_files,
            s.claims_clean_files > 0,
        ),
        (
            "document_files",
            "embedded documents",
            s.document_files,
            false,
        ),
    ];
    for (key, label, n, alert) in cards {
        let _ = write!(
            o,
            "<div class=\"card{}\"><b data-figure=\"summary.{key}\">{n}</b><span>{}</span></div>",
            if alert { " alert" } else { "" },
            esc(label)
        );
    }
    o.push_str("</div>");

    o.push_str("<h2>Findings</h2>");
    let cats: Vec<(String, String, u64)> = Category::ALL
        .iter()
        .map(|c| {
            (
                c.as_str().to_string(),
                c.label().to_string(),
                s.by_category.get(c.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    o.push_str(&bar_chart("Findings by category", "category", &cats));
    let mods: Vec<(String, String, u64)> = s
        .by_modality
        .iter()
        .map(|(m, n)| (m.clone(), m.clone(), *n))
        .collect();
    o.push_str(&bar_chart(
        "Identity findings by modality",
        "modality",
        &mods,
    ));
    let creators: Vec<(String, String, u64)> = report
        .private_creators
        .iter()
        .take(15)
        .map(|c| {
            let key = format!("{}:{}", c.group, c.creator);
            let label = format!(
                "{} ({}){}",
                c.creator,
                c.group,
                if c.known_safe { " ✓" } else { "" }
            );
            (key, label, c.elements)
        })
        .collect();
    o.push_str(&bar_chart(
        "Private elements by creator (✓: known safe attributes)",
        "creator",
        &creators,
    ));

    let _ = write!(o, "<h2>Patients exposed ({})</h2>", s.patients);
    if report.patients.is_empty() {
        o.push_str("<p class=\"none\">none</p>");
    } else {
        o.push_str("<table><thead><tr><th>name</th><th>ID</th><th>birth date</th><th class=\"n\">files</th><th class=\"n\">studies</th></tr></thead><tbody>");
        for p in report.patients.iter().take(200) {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&mask(&p.patient.name)),
                esc(&mask(&p.patient.id)),
                esc(&mask(&p.patient.birth_date)),
                p.files,
                p.studies
            );
        }
        o.push_str("</tbody></table>");
        if report.patients.len() > 200 {
            let _ = write!(
                o,
                "<p class=\"none\">and {} more (see --patients)</p>",
                report.patients.len() - 200
            );
        }
    }

    o.push_str("<h2>Riskiest files</h2>");
    if report.riskiest.is_empty() {
        o.push_str("<p class=\"none\">none</p>");
    } else {
        o.push_str("<table><thead><tr><th class=\"n\">score</th><th class=\"n\">findings</th><th>categories</th><th>file</th></tr></thead><tbody>");
        for &i in &report.riskiest {
            let f = &report.files[i];
            let mut cats: Vec<&str> = f.findings.iter().map(|x| x.category.as_str()).collect();
            cats.sort_unstable();
            cats.dedup();
            let _ = write!(
                o,
                "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
                f.score(),
                f.findings.len(),
                esc(&cats.join(", ")),
                esc(&f.path)
            );
        }
        o.push_str("</tbody></table>");
    }

    o.push_str("<h2>Private creators</h2>");
    if report.private_creators.is_empty() {
        o.push_str("<p class=\"none\">none</p>");
    } else {
        o.push_str("<table><thead><tr><th>creator</th><th>group</th><th>dictionary</th><th class=\"n\">files</th><th class=\"n\">elements</th></tr></thead><tbody>");
        for c in &report.private_creators {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&c.creator),
                esc(&c.group),
                if c.known_safe { "safe" } else { "unsafe" },
                if c.known_safe { "has known-safe attributes" } else { "unknown: not safe" },
                c.files,
                c.elements
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("<footer>Burned-in risk is a risk, not a value found: pixels were not read. Scores weight each finding by category.</footer></body></html>\n");
    o
}
