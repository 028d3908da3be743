//! Span-level precision and recall of `find` + `redact` on the labelled
//! descriptor set `tests/data/descriptors.tsv`.

use std::collections::BTreeMap;

use obscura_detect::{find, redact, Kind, Known};

const KINDS: [Kind; 11] = [
    Kind::Name,
    Kind::Id,
    Kind::Date,
    Kind::Time,
    Kind::Phone,
    Kind::Email,
    Kind::Url,
    Kind::Address,
    Kind::Ssn,
    Kind::Institution,
    Kind::Device,
];

fn kind(name: &str) -> Kind {
    KINDS
        .into_iter()
        .find(|k| k.as_str() == name.trim())
        .unwrap_or_else(|| panic!("unknown kind {name:?}"))
}

/// One labelled row.
struct Row {
    text: String,
    expected: Vec<(Kind, String)>,
    known: Known,
}

fn rows() -> Vec<Row> {
    include_str!("data/descriptors.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let mut cols = line.split('\t');
            let text = cols.next().unwrap_or_default().to_owned();
            let split = |s: Option<&str>| -> Vec<String> {
                s.unwrap_or_default()
                    .split(" | ")
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let expected = split(cols.next())
                .into_iter()
                .map(|e| {
                    let (k, s) = e.split_once(':').expect("kind:substring");
                    assert!(text.contains(s), "{s:?} not in {text:?}");
                    (kind(k), s.to_owned())
                })
                .collect();
            let mut known = Known::default();
            for v in split(cols.next()) {
                let (k, value) = v.split_once('=').expect("kind=value");
                known.add(kind(k), value);
            }
            Row {
                text,
                expected,
                known,
            }
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    expected: usize,
    recalled: usize,
    findings: usize,
    true_findings: usize,
}

#[test]
fn descriptor_precision_and_recall() {
    let rows = rows();
    assert!(rows.len() >= 250, "{} rows", rows.len());
    let clinical = rows.iter().filter(|r| r.expected.is_empty()).count();
    assert!(clinical >= 100, "{clinical} clinical rows");

    let mut by_kind: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut misses = Vec::new();
    let mut false_positives = Vec::new();
    for row in &rows {
        let findings = find(&row.text, &row.known);
        let out = redact(&row.text, &findings);
        // Where the expected substrings lie in the text.
        let spans: Vec<std::ops::Range<usize>> = row
            .expected
            .iter()
            .flat_map(|(_, s)| {
                row.text
                    .match_indices(s.as_str())
                    .map(|(i, m)| i..i + m.len())
            })
            .collect();
        for (k, s) in &row.expected {
            let t = by_kind.entry(k.as_str()).or_default();
            t.expected += 1;
            total.expected += 1;
            if !out.contains(s.as_str()) {
                t.recalled += 1;
                total.recalled += 1;
            } else {
                misses.push(format!(
                    "{:<12} {s:?} in {:?} -> {out:?}",
                    k.as_str(),
                    row.text
                ));
            }
        }
        for f in &findings {
            let t = by_kind.entry(f.kind.as_str()).or_default();
            t.findings += 1;
            total.findings += 1;
            if spans
                .iter()
                .any(|s| s.start < f.range.end && f.range.start < s.end)
            {
                t.true_findings += 1;
                total.true_findings += 1;
            } else {
                false_positives.push(format!(
                    "{:<12} {:?} in {:?}",
                    f.kind.as_str(),
                    &row.text[f.range.clone()],
                    row.text
                ));
            }
        }
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            100.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    println!("{} rows, {clinical} clinical", rows.len());
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9}",
        "kind", "expected", "recall", "findings", "precision"
    );
    for (k, t) in by_kind
        .iter()
        .map(|(k, t)| (*k, t))
        .chain([("ALL", &total)])
    {
        println!(
            "{k:<12} {:>9} {:>8.1}% {:>9} {:>8.1}%",
            t.expected,
            pct(t.recalled, t.expected),
            t.findings,
            pct(t.true_findings, t.findings)
        );
    }
    println!("misses ({}):", misses.len());
    for m in &misses {
        println!("  {m}");
    }
    println!("false positives ({}):", false_positives.len());
    for m in &false_positives {
        println!("  {m}");
    }
    let recall = pct(total.recalled, total.expected);
    let precision = pct(total.true_findings, total.findings);
    assert!(recall >= 98.0, "recall {recall:.1}% < 98%");
    assert!(precision >= 90.0, "precision {precision:.1}% < 90%");
}
