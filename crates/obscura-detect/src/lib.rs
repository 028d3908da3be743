//! Obscura's detectors of identity in free text.
//!
//! Two kinds of detector run over a text value:
//! - **contextual**: the identifying values of the same object ([`Known`]),
//!   found again in any order, case and common format (`DOE^JOHN` as
//!   `John Doe`, `Doe, J.`; `20160321` as `03/21/2016`);
//! - **pattern**: what no header held: SSNs, phone numbers, e-mail
//!   addresses, URLs, street addresses, ZIP codes, dates, MRN-like
//!   identifiers, institution names and person names (US Census name lists).
//!
//! [`find`] reports spans; [`redact`] replaces them with a bracketed kind
//! (`[NAME]`, `[ID]`, ...), so clinical words around them survive. Knows
//! nothing of DICOM: the engine and `obscura scan` feed it strings.

mod dates;
pub mod document;
pub mod gate;
mod known;
mod names;
mod patterns;
mod places;
mod text;
mod vocab;

pub use known::Known;

use std::ops::Range;

/// What an identifying span is; also its replacement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A person's name.
    Name,
    /// An identifier: patient ID, MRN, accession number, insurance number.
    Id,
    /// A date (any common format) or a date-time.
    Date,
    /// A time of day.
    Time,
    /// A telephone number.
    Phone,
    /// An e-mail address.
    Email,
    /// A URL.
    Url,
    /// A street address, ZIP code or city/state.
    Address,
    /// A US Social Security number.
    Ssn,
    /// An institution or department name.
    Institution,
    /// A device identity (serial number, station name).
    Device,
}

impl Kind {
    /// The text a span of this kind is replaced with, e.g. `[NAME]`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Kind::Name => "[NAME]",
            Kind::Id => "[ID]",
            Kind::Date => "[DATE]",
            Kind::Time => "[TIME]",
            Kind::Phone => "[PHONE]",
            Kind::Email => "[EMAIL]",
            Kind::Url => "[URL]",
            Kind::Address => "[ADDRESS]",
            Kind::Ssn => "[SSN]",
            Kind::Institution => "[INSTITUTION]",
            Kind::Device => "[DEVICE]",
        }
    }

    /// A lower-case name for reports, e.g. `name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Name => "name",
            Kind::Id => "id",
            Kind::Date => "date",
            Kind::Time => "time",
            Kind::Phone => "phone",
            Kind::Email => "email",
            Kind::Url => "url",
            Kind::Address => "address",
            Kind::Ssn => "ssn",
            Kind::Institution => "institution",
            Kind::Device => "device",
        }
    }
}

/// Which detector found a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detector {
    /// A value of the same object, found again (see [`Known`]).
    Contextual,
    /// A named pattern, e.g. `ssn`, `phone`, `name-dictionary`.
    Pattern(&'static str),
}

/// One identifying span of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Byte range in the text (on `char` boundaries).
    pub range: Range<usize>,
    /// What it is.
    pub kind: Kind,
    /// What found it.
    pub detector: Detector,
}

/// Every identifying span of `text`, sorted by start, non-overlapping (where
/// two detectors overlap, the spans are merged and the contextual kind wins).
pub fn find(text: &str, known: &Known) -> Vec<Finding> {
    find_with(text, known, true)
}

/// The spans of `text` that are values of `known`, found again (the
/// contextual detector alone): for values that are not free text, such as
/// codes and labels, where the patterns would misread words.
pub fn find_known(text: &str, known: &Known) -> Vec<Finding> {
    if known.is_empty() {
        return Vec::new();
    }
    find_with(text, known, false)
}

/// The contextual detector, and the pattern detectors when `patterns`.
fn find_with(text: &str, known: &Known, patterns: bool) -> Vec<Finding> {
    if !text.chars().any(char::is_alphanumeric) {
        return Vec::new();
    }
    let f = text::Folded::new(text);
    let mut out = Vec::new();
    known.find(&f, &mut out);
    if !patterns {
        // Codes and labels are written in the standard's own words: a name
        // that is one of them (a phantom called `Perfusion^MCA`, a
        // placeholder `Enter text`) is not found in them.
        out.retain(|x| !(x.kind == Kind::Name && is_one_vocabulary_word(&f, &x.range)));
    }
    let dates = if patterns || known.has_dates() {
        dates::find_dates(text)
    } else {
        Vec::new()
    };
    for d in &dates {
        let detector = if known.has_date(d) {
            Detector::Contextual
        } else if patterns {
            Detector::Pattern("date")
        } else {
            continue;
        };
        out.push(Finding {
            range: d.range.clone(),
            kind: Kind::Date,
            detector,
        });
    }
    if known.has_dates() {
        for d in dates::find_month_days(text) {
            if known.has_month_day(&d) {
                out.push(Finding {
                    range: d.range,
                    kind: Kind::Date,
                    detector: Detector::Contextual,
                });
            }
        }
    }
    for t in dates::find_times(text) {
        // The dates are sorted and disjoint: look at the neighbours only.
        let k = dates.partition_point(|d| d.range.end <= t.range.start);
        let near_date = dates[k.saturating_sub(1)..dates.len().min(k + 1)]
            .iter()
            .any(|d| {
                let gap = if d.range.end <= t.range.start {
                    &text[d.range.end..t.range.start]
                } else if t.range.end <= d.range.start {
                    &text[t.range.end..d.range.start]
                } else {
                    ""
                };
                let word =
                    gap.trim_matches(|c: char| c.is_whitespace() || matches!(c, ',' | '@' | '-'));
                gap.len() <= 6 && matches!(word, "" | "at" | "on" | "T")
            });
        if known.has_time(&t) {
            out.push(Finding {
                range: t.range,
                kind: Kind::Time,
                detector: Detector::Contextual,
            });
        } else if near_date && patterns {
            out.push(Finding {
                range: t.range,
                kind: Kind::Time,
                detector: Detector::Pattern("time"),
            });
        }
    }
    if patterns {
        patterns::find(text, &mut out);
        places::find_addresses(text, &mut out);
        places::find_institutions(&f, &mut out);
        names::find(&f, &mut out);
    }
    merge(text, out)
}

/// Whether `range` of `f` is one word of the clinical or common vocabulary.
fn is_one_vocabulary_word(f: &text::Folded, range: &Range<usize>) -> bool {
    let mut words = (0..f.toks.len()).filter(|&i| {
        let o = &f.toks[i].orig;
        o.start >= range.start && o.end <= range.end
    });
    match (words.next(), words.next()) {
        (Some(i), None) => vocab::is_vocab(f.word(i)),
        _ => false,
    }
}

/// How many ASCII digits `text` has, and its longest run of them: cheap
/// gates before the regexes that need digits.
pub(crate) fn digit_stats(text: &str) -> (usize, usize) {
    let (mut total, mut run, mut longest) = (0, 0, 0);
    for b in text.bytes() {
        if b.is_ascii_digit() {
            total += 1;
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    (total, longest)
}

/// Which kind wins where two pattern findings of equal length overlap.
fn rank(k: Kind) -> u8 {
    match k {
        Kind::Ssn => 0,
        Kind::Email => 1,
        Kind::Url => 2,
        Kind::Phone => 3,
        Kind::Date => 4,
        Kind::Time => 5,
        Kind::Address => 6,
        Kind::Institution => 7,
        Kind::Name => 8,
        Kind::Device => 9,
        Kind::Id => 10,
    }
}

/// Sorts, then merges overlapping findings (and adjacent ones of one kind).
fn merge(text: &str, mut v: Vec<Finding>) -> Vec<Finding> {
    v.retain(|x| x.range.start < x.range.end && text.get(x.range.clone()).is_some());
    let contextual = |x: &Finding| x.detector == Detector::Contextual;
    v.sort_by_key(|x| {
        (
            x.range.start,
            !contextual(x),
            std::cmp::Reverse(x.range.len()),
            rank(x.kind),
        )
    });
    merge_sorted(
        v,
        |cur, x| {
            let gap = text.get(cur.range.end..x.range.start).unwrap_or("");
            let adjacent = x.kind == cur.kind
                && gap.len() <= 3
                && gap
                    .chars()
                    .all(|c| c.is_whitespace() || matches!(c, ',' | '-' | '.'));
            x.range.start < cur.range.end || adjacent
        },
        |cur, x| {
            !contextual(cur)
                && (contextual(x)
                    || x.range.len() > cur.range.len()
                    || (x.range.len() == cur.range.len() && rank(x.kind) < rank(cur.kind)))
        },
    )
}

/// Merges findings sorted by start: each that `joins` the span before it
/// (`joins(before, next)`) is folded into it, which then reaches as far as
/// either and takes the kind and detector of `next` where `wins(before,
/// next)`.
pub fn merge_sorted(
    sorted: Vec<Finding>,
    joins: impl Fn(&Finding, &Finding) -> bool,
    wins: impl Fn(&Finding, &Finding) -> bool,
) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(sorted.len());
    for x in sorted {
        if let Some(cur) = out.last_mut() {
            if joins(cur, &x) {
                if wins(cur, &x) {
                    cur.kind = x.kind;
                    cur.detector = x.detector;
                }
                cur.range.end = cur.range.end.max(x.range.end);
                continue;
            }
        }
        out.push(x);
    }
    out
}

/// `text` with every finding replaced by its kind's placeholder.
pub fn redact(text: &str, findings: &[Finding]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for x in findings {
        let (s, e) = (x.range.start.max(pos), x.range.end);
        let (Some(keep), Some(_)) = (text.get(pos..s), text.get(s..e)) else {
            continue;
        };
        if s >= e {
            continue;
        }
        out.push_str(keep);
        out.push_str(x.kind.placeholder());
        pos = e;
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_spans_and_keeps_cues() {
        let k = Known::default();
        let t = "CT chest for John Doe MRN 12345";
        assert_eq!(redact(t, &find(t, &k)), "CT chest for [NAME] MRN [ID]");
    }

    #[test]
    fn contextual_wins_and_adjacent_names_merge() {
        let mut k = Known::default();
        k.add(Kind::Name, "DOE^JOHN");
        k.add(Kind::Date, "20160321");
        let t = "Doe, John seen 03/21/2016";
        let f = find(t, &k);
        assert_eq!(redact(t, &f), "[NAME] seen [DATE]");
        assert!(f.iter().all(|x| x.detector == Detector::Contextual));
    }

    #[test]
    fn pseudo_random_inputs_give_sorted_disjoint_spans() {
        const ALPHABET: [&str; 24] = [
            "Dr. ",
            "Doe",
            ", ",
            "J.",
            " ",
            "-",
            "1",
            "23",
            "/",
            ".",
            ":",
            "^",
            "é",
            "\u{301}",
            "MRN ",
            "@",
            "x.org",
            "Hospital",
            "St",
            "\\",
            "(",
            "555",
            "ß",
            "\u{1F600}",
        ];
        let mut known = Known::default();
        known.add(Kind::Name, "DOE^JOHN");
        known.add(Kind::Id, "123");
        known.add(Kind::Phone, "555-1234");
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..3000 {
            let mut t = String::new();
            for _ in 0..(seed % 24) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                t.push_str(ALPHABET[(seed % 24) as usize]);
            }
            let f = find(&t, &known);
            for w in f.windows(2) {
                assert!(w[0].range.end <= w[1].range.start, "{t:?}: {f:?}");
            }
            assert!(f.iter().all(|x| t.get(x.range.clone()).is_some()), "{t:?}");
            let _ = redact(&t, &f);
        }
    }

    #[test]
    fn long_inputs_stay_linear() {
        let k = Known::default();
        let start = std::time::Instant::now();
        for piece in [
            "Dr ",
            "A ",
            "St Hospital ",
            "03/21/2016 14:30 ",
            "John Doe, ",
            "1-2-3-4-5-6-",
            "Mr. O'Brien-Smith ",
        ] {
            let t = piece.repeat(200_000 / piece.len());
            let f = find(&t, &k);
            let _ = redact(&t, &f);
        }
        assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    }

    #[test]
    fn survives_arbitrary_input() {
        let k = Known::default();
        for t in [
            "",
            "\u{0}\u{301}^^^",
            "é́́ 12-",
            &"9".repeat(100_000),
            "Dr.",
            "Dr",
            "#",
            "^A^",
            "1/",
            "Doe, ",
        ] {
            let f = find(t, &k);
            let _ = redact(t, &f);
        }
        // Bogus findings are skipped, not a panic.
        let bogus = [Finding {
            range: 1..99,
            kind: Kind::Id,
            detector: Detector::Contextual,
        }];
        assert_eq!(redact("é", &bogus), "é");
    }
}
