//! Searches: QIDO's matching keys parsed once, matched by keyed hash in SQL
//! or against decrypted values, the same way whatever the backend.

use super::match_column;
use crate::attrs::{record_get, trim, Attr, Kind, Level};
use crate::VaultError;

/// A search: keys in QIDO's matching syntax, at one level. Its `Debug`
/// prints keywords only: values may identify a patient.
#[derive(Clone)]
pub struct Query {
    /// Studies, series or instances.
    pub level: Level,
    /// Matching keys: an attribute of this level or above, and its value in
    /// QIDO syntax: exact, wildcard (`*`, `?`; names case-insensitive),
    /// range for dates and times (`a-b`, `a-`, `-b`), UID list (`a\b`). An
    /// empty value matches everything.
    pub keys: Vec<(Attr, String)>,
    /// At most this many results.
    pub limit: Option<usize>,
    /// Skip this many matches first.
    pub offset: usize,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("level", &self.level)
            .field(
                "keys",
                &self.keys.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            )
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .finish()
    }
}

impl Query {
    /// A query at `level` with no keys.
    pub fn new(level: Level) -> Self {
        Query {
            level,
            keys: Vec::new(),
            limit: None,
            offset: 0,
        }
    }

    /// Add a matching key.
    pub fn with(mut self, attr: Attr, value: &str) -> Self {
        self.keys.push((attr, value.to_string()));
        self
    }
}

/// One key, parsed.
pub(crate) enum Matcher {
    /// By keyed hash in SQL: any of these values (trimmed; hashed when the
    /// SQL is built, compared as they are against a cached record).
    Hashes(Attr, Vec<String>),
    /// ModalitiesInStudy: any series of the study has one of these modalities.
    StudyModality(Vec<String>),
    /// After decrypting.
    Filter(Attr, Filter),
}

impl Matcher {
    /// Whether a study record (as [`Attributes::encode_compact`] writes it)
    /// matches: the answer the SQL path gives for the same row. Equal hashes
    /// are equal trimmed values; a study's ModalitiesInStudy holds exactly
    /// the modalities of its series.
    pub(crate) fn matches_record(&self, rec: &[u8]) -> bool {
        match self {
            Matcher::Hashes(attr, values) => {
                record_get(rec, *attr).is_some_and(|v| values.iter().any(|w| w == v))
            }
            Matcher::StudyModality(values) => record_get(rec, Attr::ModalitiesInStudy)
                .is_some_and(|m| m.split('\\').any(|v| values.iter().any(|w| w == v))),
            Matcher::Filter(attr, f) => f.matches(attr.kind(), record_get(rec, *attr)),
        }
    }

    /// Whether it is matched after decrypting.
    pub(crate) fn is_filter(&self) -> bool {
        matches!(self, Matcher::Filter(..))
    }
}

/// A key matched after decrypting.
pub(crate) enum Filter {
    Exact(String),
    /// Case-insensitive exact match (person names); the value lowercased.
    ExactFolded(String),
    /// The pattern (lowercased if folded) as chars and as text, and whether
    /// it is case-insensitive.
    Wildcard(Vec<char>, String, bool),
    /// Inclusive bounds on normalized values.
    Range(Option<String>, Option<String>),
}

/// Parse every key of a query.
pub(crate) fn parse_query(query: &Query) -> Result<Vec<Matcher>, VaultError> {
    let mut out = Vec::new();
    for (attr, value) in &query.keys {
        if let Some(m) = parse_key(query.level, *attr, value)? {
            out.push(m);
        }
    }
    Ok(out)
}

fn parse_key(level: Level, attr: Attr, value: &str) -> Result<Option<Matcher>, VaultError> {
    if attr.is_owner_only() {
        return Err(VaultError::InvalidQuery(attr, "not a search key"));
    }
    if attr.level() > level || attr == Attr::TransferSyntaxUID {
        return Err(VaultError::InvalidQuery(attr, "not a key at this level"));
    }
    let value = trim(value);
    if value.is_empty() || value == "*" {
        return Ok(None);
    }
    let kind = attr.kind();
    let wildcard = value.contains(['*', '?']);
    if kind == Kind::Uid || (matches!(attr, Attr::Modality | Attr::ModalitiesInStudy) && !wildcard)
    {
        if wildcard {
            return Err(VaultError::InvalidQuery(attr, "no wildcards in UIDs"));
        }
        let values = value.split('\\').map(|v| trim(v).to_string()).collect();
        return Ok(Some(if attr == Attr::ModalitiesInStudy {
            Matcher::StudyModality(values)
        } else {
            Matcher::Hashes(attr, values)
        }));
    }
    if matches!(kind, Kind::Date | Kind::Time) {
        let norm = |s: &str| (!s.is_empty()).then(|| normalize(kind, s).into_owned());
        return Ok(Some(Matcher::Filter(
            attr,
            match value.split_once('-') {
                Some((lo, hi)) => Filter::Range(norm(lo.trim()), norm(hi.trim())),
                None => Filter::Range(norm(value), norm(value)),
            },
        )));
    }
    if wildcard {
        let folded = kind == Kind::Name;
        let pattern = if folded {
            value.to_lowercase()
        } else {
            value.to_string()
        };
        return Ok(Some(Matcher::Filter(
            attr,
            Filter::Wildcard(pattern.chars().collect(), pattern, folded),
        )));
    }
    if match_column(attr).is_some() {
        return Ok(Some(Matcher::Hashes(attr, vec![value.to_string()])));
    }
    Ok(Some(Matcher::Filter(
        attr,
        if kind == Kind::Name {
            Filter::ExactFolded(value.to_lowercase())
        } else {
            Filter::Exact(value.to_string())
        },
    )))
}

/// A date or time in a form that compares as a string: `YYYYMMDD`
/// (`YYYY.MM.DD` accepted), `HHMMSS.FFFFFF` (missing parts as zeros, colons
/// accepted). Borrowed when already in that form (dates of 8 digits).
fn normalize(kind: Kind, v: &str) -> std::borrow::Cow<'_, str> {
    if kind == Kind::Date {
        if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
            return v.into();
        }
        return v
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .into();
    }
    let v: String = v.chars().filter(|c| *c != ':').collect();
    let (whole, frac) = v.split_once('.').unwrap_or((&v, ""));
    format!("{whole:0<6}.{frac:0<6}").into()
}

impl Filter {
    /// Whether a decrypted value (of an attribute of `kind`) matches.
    pub(crate) fn matches(&self, kind: Kind, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return false;
        };
        match self {
            Filter::Exact(want) => value == want,
            Filter::ExactFolded(want) => {
                if value.is_ascii() && want.is_ascii() {
                    value.eq_ignore_ascii_case(want)
                } else {
                    value.to_lowercase() == *want
                }
            }
            Filter::Wildcard(pattern, text, folded) => {
                if value.is_ascii() && text.is_ascii() {
                    // Bytes, folded on the fly: no allocation.
                    let fold = |b: u8| if *folded { b.to_ascii_lowercase() } else { b };
                    wildcard(text.as_bytes(), value.as_bytes(), b'*', b'?', fold)
                } else {
                    let v: Vec<char> = if *folded {
                        value.to_lowercase().chars().collect()
                    } else {
                        value.chars().collect()
                    };
                    wildcard(pattern, &v, '*', '?', |c| c)
                }
            }
            Filter::Range(lo, hi) => {
                let v = normalize(kind, value);
                let v = v.as_ref();
                lo.as_deref().is_none_or(|lo| v >= lo) && hi.as_deref().is_none_or(|hi| v <= hi)
            }
        }
    }
}

/// `star` any run of symbols, `any` any one symbol, others equal to
/// `fold` of the value's (iterative, linear in practice: backtracks only to
/// the last star).
fn wildcard<T: Copy + Eq>(p: &[T], v: &[T], star_sym: T, any: T, fold: impl Fn(T) -> T) -> bool {
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == any || p[pi] == fold(v[vi])) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == star_sym {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == star_sym)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn debug_prints_no_values() {
        let q = Query::new(Level::Study).with(Attr::PatientName, "DOE^JOHN");
        let text = format!("{q:?}");
        assert!(text.contains("PatientName") && !text.contains("DOE"));
    }

    #[test]
    fn vault_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<crate::Vault>();
    }

    #[test]
    fn wildcards() {
        let w = |p: &str, v: &str| {
            let by_chars = wildcard(&chars(p), &chars(v), '*', '?', |c| c);
            let by_bytes = wildcard(p.as_bytes(), v.as_bytes(), b'*', b'?', |b| b);
            assert_eq!(by_chars, by_bytes, "{p} {v}");
            by_chars
        };
        assert!(w("doe*", "doe^john"));
        assert!(w("*john", "doe^john"));
        assert!(w("d?e^*", "doe^john"));
        assert!(w("*", ""));
        assert!(w("*^*n", "doe^john"));
        assert!(!w("doe", "doe^john"));
        assert!(!w("?", ""));
        assert!(!w("*x*", "doe^john"));
    }

    #[test]
    fn ranges() {
        let f = Filter::Range(
            Some(normalize(Kind::Date, "20230101").into_owned()),
            Some(normalize(Kind::Date, "20231231").into_owned()),
        );
        assert!(f.matches(Kind::Date, Some("20230314")));
        assert!(!f.matches(Kind::Date, Some("20240101")));
        assert!(!f.matches(Kind::Date, None));
        let t = Filter::Range(Some(normalize(Kind::Time, "10").into_owned()), None);
        assert!(t.matches(Kind::Time, Some("103000.5")));
        assert!(!t.matches(Kind::Time, Some("0959")));
        let exact = Filter::Range(
            Some(normalize(Kind::Time, "1030").into_owned()),
            Some(normalize(Kind::Time, "1030").into_owned()),
        );
        assert!(exact.matches(Kind::Time, Some("10:30:00")));
    }
}
