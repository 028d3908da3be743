//! The CVE table (`data/cves.json`: product, affected range, CVE id,
//! summary, sources, date compiled), matched against a fingerprinted
//! product and version. A match is reported as *possible*: distributions
//! backport fixes without changing the version string.

use serde::{Deserialize, Serialize};

const TABLE: &str = include_str!("../data/cves.json");

#[derive(Deserialize)]
struct Table {
    compiled: String,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    product: String,
    cve: String,
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
    summary: String,
    sources: Vec<String>,
}

/// One CVE the fingerprinted version may be affected by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CveMatch {
    /// CVE id.
    pub cve: String,
    /// One line.
    pub summary: String,
    /// The affected range, e.g. "< 3.6.7" or "<= 1.12.10".
    pub affected: String,
    /// Where the entry comes from.
    pub source: String,
}

fn version(s: &str) -> Option<Vec<u64>> {
    let core = s
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let v: Option<Vec<u64>> = core
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect();
    v.filter(|v| !v.is_empty())
}

fn cmp(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let get = |v: &[u64], i| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| get(a, i).cmp(&get(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// The date the table was compiled.
pub fn compiled() -> String {
    serde_json::from_str::<Table>(TABLE)
        .map(|t| t.compiled)
        .unwrap_or_default()
}

/// The entries whose range holds `product` at `version` (a product match
/// is case-insensitive; no version, no match).
pub fn matches(product: &str, version_str: &str) -> Vec<CveMatch> {
    let Ok(table) = serde_json::from_str::<Table>(TABLE) else {
        return Vec::new();
    };
    let Some(v) = version(version_str) else {
        return Vec::new();
    };
    use std::cmp::Ordering::*;
    table
        .entries
        .into_iter()
        .filter(|e| e.product.eq_ignore_ascii_case(product))
        .filter(|e| {
            let at_least = e
                .introduced
                .as_deref()
                .and_then(version)
                .is_none_or(|i| cmp(&v, &i) != Less);
            let below_fixed = e
                .fixed
                .as_deref()
                .and_then(version)
                .map(|f| cmp(&v, &f) == Less);
            let up_to_last = e
                .last_affected
                .as_deref()
                .and_then(version)
                .map(|l| cmp(&v, &l) != Greater);
            at_least && (up_to_last.or(below_fixed).unwrap_or(false))
        })
        .map(|e| CveMatch {
            affected: match (&e.last_affected, &e.fixed) {
                (Some(l), _) => format!("<= {l}"),
                (None, Some(f)) => format!("< {f}"),
                _ => String::new(),
            },
            cve: e.cve,
            summary: e.summary,
            source: e.sources.into_iter().next().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_matches_by_range() {
        assert!(!compiled().is_empty());
        let t: Table = serde_json::from_str(TABLE).unwrap();
        for e in &t.entries {
            assert!(e.cve.starts_with("CVE-"), "{}", e.cve);
            assert!(!e.sources.is_empty() && e.fixed.is_some() || e.last_affected.is_some());
        }
        let o = matches("Orthanc", "1.10.1");
        assert!(o.iter().any(|m| m.cve == "CVE-2026-5440"));
        assert!(!o.iter().any(|m| m.cve == "CVE-2025-0896"));
        assert!(matches("orthanc", "1.5.7")
            .iter()
            .any(|m| m.cve == "CVE-2025-0896"));
        assert!(matches("Orthanc", "1.12.11").is_empty());
        let d = matches("DCMTK", "3.6.6");
        assert!(d.iter().any(|m| m.cve == "CVE-2022-2119"));
        assert!(!matches("DCMTK", "3.6.7")
            .iter()
            .any(|m| m.cve == "CVE-2022-2119"));
        assert!(matches("DCMTK", "3.7.1").is_empty());
        assert!(matches("Orthanc", "").is_empty());
    }
}
