//! Dates in any common format, and times of day.

use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// A calendar date; `year` < 100 for a two-digit year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ymd {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Ymd {
    /// A valid date, or `None`.
    fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        let ok = (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && (year < 100 || (1850..=2099).contains(&year));
        ok.then_some(Ymd { year, month, day })
    }

    /// Whether this (possibly two-digit-year) date is `full`.
    pub fn is(&self, full: &Ymd) -> bool {
        self.month == full.month
            && self.day == full.day
            && (self.year == full.year || (self.year < 100 && full.year % 100 == self.year))
    }
}

/// A date found in a text, with up to two readings (`03/04/2016`).
#[derive(Debug, Clone)]
pub(crate) struct DateHit {
    pub range: Range<usize>,
    pub readings: [Option<Ymd>; 2],
}

/// A time of day found in a text.
#[derive(Debug, Clone)]
pub(crate) struct TimeHit {
    pub range: Range<usize>,
    pub hour: u8,
    pub minute: u8,
}

const MON: &str = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";

/// How a pattern's groups read as a date.
#[derive(Clone, Copy)]
enum Form {
    Ymd,
    /// Month/day or day/month, year last.
    Ambiguous,
    Compact,
    DayMonYear,
    MonDayYear,
    MonDay,
    MonYear,
    MonthYear,
}

struct DatePatterns(Vec<(Regex, Form)>);

static DATES: LazyLock<DatePatterns> = LazyLock::new(|| {
    let r = |s: &str| Regex::new(s).expect("date pattern");
    DatePatterns(vec![
        (
            r(
                r"\b([0-9]{4})([-/.])([0-9]{1,2})[-/.]([0-9]{1,2})(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?\b",
            ),
            Form::Ymd,
        ),
        (
            r(r"\b([0-9]{1,2})([-/.])([0-9]{1,2})[-/.]([0-9]{4}|[0-9]{2})\b"),
            Form::Ambiguous,
        ),
        (
            r(
                r"\b((?:18|19|20)[0-9]{6})(?:[0-9]{4}(?:[0-9]{2}(?:\.[0-9]{1,6})?)?(?:[+-][0-9]{4})?)?\b",
            ),
            Form::Compact,
        ),
        (
            r(&format!(
                r"(?i)\b([0-9]{{1,2}})(?:st|nd|rd|th)?[\s-]*(?:of\s+)?{MON}\.?,?[\s-]*([0-9]{{4}}|'?[0-9]{{2}})\b"
            )),
            Form::DayMonYear,
        ),
        (
            r(&format!(
                r"(?i)\b{MON}\.?[\s-]+([0-9]{{1,2}})(?:st|nd|rd|th)?,?[\s-]+([0-9]{{4}}|'[0-9]{{2}})\b"
            )),
            Form::MonDayYear,
        ),
        (
            r(&format!(
                r"\b(?i:{MON})\.?\s+([0-9]{{1,2}})(?:st|nd|rd|th)?\b"
            )),
            Form::MonDay,
        ),
        (
            r(&format!(r"\b(?i:{MON})\.?,?\s+([0-9]{{4}})\b")),
            Form::MonYear,
        ),
        (r(r"\b([0-9]{1,2})/([0-9]{4})\b"), Form::MonthYear),
    ])
});

static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([01]?[0-9]|2[0-3]):([0-5][0-9])(?::[0-5][0-9](?:\.[0-9]{1,6})?)?(?:\s?([ap])\.?m\b\.?)?|\b(1[0-2]|0?[1-9])\s?([ap])\.?m\b\.?")
        .expect("time pattern")
});

fn month_of(name: &str) -> u8 {
    let n = name.as_bytes();
    let p = |s: &[u8]| n.len() >= 3 && n[..3].eq_ignore_ascii_case(s);
    const M: [&[u8]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    M.iter().position(|m| p(m)).map_or(0, |i| i as u8 + 1)
}

fn num(c: &Captures, i: usize) -> u16 {
    c.get(i)
        .map(|m| m.as_str().trim_start_matches('\''))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn small(c: &Captures, i: usize) -> u8 {
    u8::try_from(num(c, i)).unwrap_or(0)
}

/// Whether a numeric match is part of a longer dotted number (a UID, a
/// version) rather than a date.
fn in_dotted_number(text: &str, r: &Range<usize>) -> bool {
    let before = &text.as_bytes()[..r.start];
    let after = &text.as_bytes()[r.end..];
    let digit_dot_before = before.len() >= 2
        && matches!(before[before.len() - 1], b'.' | b'/' | b'-')
        && before[before.len() - 2].is_ascii_digit();
    let dot_digit_after =
        after.len() >= 2 && matches!(after[0], b'.' | b'/' | b'-') && after[1].is_ascii_digit();
    digit_dot_before || dot_digit_after
}

fn reading(c: &Captures, form: Form) -> [Option<Ymd>; 2] {
    let mon = |i: usize| c.get(i).map_or(0, |m| month_of(m.as_str()));
    match form {
        Form::Ymd => [Ymd::new(num(c, 1), small(c, 3), small(c, 4)), None],
        Form::Ambiguous => {
            let (a, b, y) = (small(c, 1), small(c, 3), num(c, 4));
            [Ymd::new(y, a, b), Ymd::new(y, b, a)]
        }
        Form::Compact => {
            let s = c.get(1).map_or("", |m| m.as_str());
            let p = |r: Range<usize>| s.get(r).and_then(|x| x.parse::<u16>().ok()).unwrap_or(0);
            let (y, m, d) = (p(0..4), p(4..6) as u8, p(6..8) as u8);
            [Ymd::new(y, m, d), None]
        }
        Form::DayMonYear => [Ymd::new(num(c, 3), mon(2), small(c, 1)), None],
        Form::MonDayYear => [Ymd::new(num(c, 3), mon(1), small(c, 2)), None],
        // Partial dates: valid placeholders so they are still reported.
        Form::MonDay => [Ymd::new(0, mon(1), small(c, 2)), None],
        Form::MonYear => [Ymd::new(num(c, 2), mon(1), 1), None],
        Form::MonthYear => [Ymd::new(num(c, 2), small(c, 1), 1), None],
    }
}

/// Every date of `text`, sorted by start, overlaps dropped.
pub(crate) fn find_dates(text: &str) -> Vec<DateHit> {
    let mut hits: Vec<DateHit> = Vec::new();
    let (digits, longest_run) = crate::digit_stats(text);
    if digits == 0 {
        return hits;
    }
    let has_letter = text.bytes().any(|b| b.is_ascii_alphabetic());
    for (re, form) in &DATES.0 {
        let possible = match form {
            Form::Ymd => digits >= 6 && longest_run >= 4,
            Form::Ambiguous => digits >= 4,
            Form::Compact => longest_run >= 8,
            Form::MonthYear => longest_run >= 4,
            _ => has_letter,
        };
        if !possible {
            continue;
        }
        // Earlier patterns win: `hits` stays sorted and disjoint, so an
        // overlap is found by bisection.
        let before = hits.len();
        for c in re.captures_iter(text) {
            let Some(m) = c.get(0) else { continue };
            let r = m.range();
            let earlier = &hits[..before];
            let k = earlier.partition_point(|h| h.range.end <= r.start);
            if earlier.get(k).is_some_and(|h| h.range.start < r.end) {
                continue;
            }
            let numeric = matches!(form, Form::Ymd | Form::Ambiguous | Form::MonthYear);
            if numeric && in_dotted_number(text, &r) {
                continue;
            }
            if let (Form::Ambiguous, Some(sep)) = (form, c.get(2)) {
                // `1.5.10` is a number list, not a date; two-digit years need `/` or `-`.
                if sep.as_str() == "." && c.get(4).is_some_and(|y| y.len() == 2) {
                    continue;
                }
            }
            if matches!(form, Form::MonDay | Form::MonYear)
                && !m.as_str().starts_with(|ch: char| ch.is_ascii_uppercase())
            {
                continue;
            }
            let readings = reading(&c, *form);
            if readings.iter().any(Option::is_some) {
                hits.push(DateHit { range: r, readings });
            }
        }
        hits.sort_by_key(|h| h.range.start);
    }
    hits
}

static MONTH_DAY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([0-9]{1,2})/([0-9]{1,2})\b").expect("month/day pattern"));

/// Every `3/21` of `text` (month/day or day/month, no year): a date only
/// where the header holds it.
pub(crate) fn find_month_days(text: &str) -> Vec<DateHit> {
    MONTH_DAY
        .captures_iter(text)
        .filter_map(|c| {
            let m = c.get(0)?;
            let b = text.as_bytes();
            let glued = |i: Option<usize>| {
                i.and_then(|i| b.get(i))
                    .is_some_and(|x| matches!(x, b'/' | b'.' | b'-'))
            };
            if glued(m.start().checked_sub(1)) || glued(Some(m.end())) {
                return None;
            }
            let (x, y) = (small(&c, 1), small(&c, 2));
            let md = |mo: u8, d: u8| Ymd::new(0, mo, d);
            Some(DateHit {
                range: m.range(),
                readings: [md(x, y), md(y, x)],
            })
        })
        .collect()
}

/// Every time of day of `text` (`14:30`, `2:30 PM`, `3pm`).
pub(crate) fn find_times(text: &str) -> Vec<TimeHit> {
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return Vec::new();
    }
    TIME.captures_iter(text)
        .filter_map(|c| {
            let m = c.get(0)?;
            let pm = |i: usize| c.get(i).map(|p| p.as_str().eq_ignore_ascii_case("p"));
            let clock = |h: u8, pm: Option<bool>| match pm {
                Some(true) => h % 12 + 12,
                Some(false) => h % 12,
                None => h,
            };
            let (hour, minute) = if c.get(1).is_some() {
                (clock(small(&c, 1), pm(3)), small(&c, 2))
            } else {
                (clock(small(&c, 4), pm(5)), 0)
            };
            let after = &text.as_bytes()[m.end()..];
            // `1:2.5` ratios and `3:45:67` are not times.
            if after.first().is_some_and(|b| *b == b':' || *b == b'.')
                && after.get(1).is_some_and(u8::is_ascii_digit)
            {
                return None;
            }
            Some(TimeHit {
                range: m.range(),
                hour,
                minute,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<&str> {
        find_dates(text)
            .iter()
            .map(|h| &text[h.range.clone()])
            .collect()
    }

    #[test]
    fn finds_every_format_of_one_date() {
        let want = Ymd {
            year: 2016,
            month: 3,
            day: 21,
        };
        for s in [
            "2016-03-21",
            "03/21/2016",
            "3/21/2016",
            "21/03/2016",
            "21.03.2016",
            "03-21-2016",
            "March 21, 2016",
            "21 Mar 2016",
            "Mar 21 2016",
            "20160321",
            "03/21/16",
            "21-MAR-2016",
            "21MAR2016",
            "2016-03-21T14:30:00",
            "20160321143000.000+0100",
        ] {
            let hits = find_dates(s);
            assert_eq!(hits.len(), 1, "{s}");
            assert_eq!(hits[0].range, 0..s.len(), "{s}");
            assert!(
                hits[0].readings.iter().flatten().any(|r| r.is(&want)),
                "{s}"
            );
        }
    }

    #[test]
    fn numbers_are_not_dates() {
        assert!(spans("AX 1.25 LUNG").is_empty());
        assert!(spans("UID 1.2.840.10008.5.1.4").is_empty());
        assert!(spans("series 1.5.10").is_empty());
        assert!(spans("B1000 may 5 views").is_empty());
        assert!(spans("13/45/2016").is_empty());
    }

    #[test]
    fn times() {
        let t = find_times("at 14:30, 2:15 PM and 3pm; ratio 1:2.5");
        let v: Vec<(u8, u8)> = t.iter().map(|h| (h.hour, h.minute)).collect();
        assert_eq!(v, [(14, 30), (14, 15), (15, 0)]);
    }
}
