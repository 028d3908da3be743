//! Pattern detectors for what no header held: SSNs, phone numbers, e-mail
//! addresses, URLs and MRN-like identifiers. Dates live in `dates.rs`,
//! addresses and institutions in `places.rs`, names in `names.rs`.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Detector, Finding, Kind};

struct Patterns {
    email: Regex,
    url: Regex,
    domain: Regex,
    ssn: Regex,
    ssn_cue: Regex,
    phone: Regex,
    phone_intl: Regex,
    phone_cue: Regex,
    id_cue: Regex,
    id_hash: Regex,
    id_token: Regex,
}

static P: LazyLock<Patterns> = LazyLock::new(|| {
    let r = |s: &str| Regex::new(s).expect("pattern");
    Patterns {
        email: r(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        url: r(r#"(?i)\b(?:(?:https?|ftp|sftp)://|www\.)[^\s<>"'|\\]+"#),
        domain: r(
            r#"(?i)\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|mil|info|biz|health|io|us|uk|ca|au|de|fr|nl)\b(?:/[^\s<>"'|\\]*)?"#,
        ),
        ssn: r(r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b"),
        ssn_cue: r(
            r"(?i)\b(?:ssn|ss#|ss\s?no\.?|soc(?:ial)?\.?\s*sec(?:urity)?\.?(?:\s*(?:no\.?|number|#))?)[^0-9\n]{0,12}?([0-9]{9}|[0-9]{3}[- .][0-9]{2}[- .][0-9]{4})\b",
        ),
        phone: r(
            r"(?:\+?\b1[\s.-]?)?(?:\([0-9]{3}\)\s?|\b[0-9]{3}[\s.-])[0-9]{3}[\s.-][0-9]{4}\b(?:\s*(?:x|ext\.?)\s*[0-9]{1,5}\b)?",
        ),
        phone_intl: r(r"\+[0-9]{1,3}(?:[\s.-]?\(?[0-9]{1,4}\)?){2,5}\b"),
        phone_cue: r(
            r"(?i)\b(?:tel|telephone|phone|ph|fax|pager|pgr|cell|mobile|beeper|ext)\b\.?\s*[:#]?\s*(\+?[0-9][0-9 ().-]{2,16}[0-9])\b",
        ),
        id_cue: r(
            r"(?i)\b(?:mrn|mr#|mr\s?no\.?|med(?:ical)?\s+rec(?:ord)?s?(?:\s*(?:no\.?|number|#))?|(?:pt|patient|study|subject|member|insurance|policy|unique)\s*id|id\s*(?:no\.?|number|#)?|acc(?:ession)?(?:\s*(?:no\.?|number|#))?|accn|acct|account(?:\s*(?:no\.?|number|#))?|enc(?:ounter)?(?:\s*(?:no\.?|number|#))?|visit\s*(?:no\.?|number|#)|case\s*(?:no\.?|number|#)|chart(?:\s*(?:no\.?|number|#))?|order\s*(?:no\.?|number|#)|req(?:uisition)?\s*(?:no\.?|#)|fin|csn|empi|har)(?:\s*[:#=]\s*|\s+)([A-Za-z]{0,4}-?[0-9][A-Za-z0-9-]*[A-Za-z0-9]|[0-9]{3,})",
        ),
        id_hash: r(r"#\s?([A-Za-z]{0,3}[0-9][A-Za-z0-9-]{2,})"),
        id_token: r(r"\b[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\b"),
    }
});

/// Record a pattern finding (`name` is the detector's), if not empty.
pub(crate) fn push(out: &mut Vec<Finding>, range: Range<usize>, kind: Kind, name: &'static str) {
    if range.start < range.end {
        out.push(Finding {
            range,
            kind,
            detector: Detector::Pattern(name),
        });
    }
}

/// Whether the characters around `r` are not alphanumeric.
fn bounded(text: &str, r: &Range<usize>) -> bool {
    let before = text[..r.start].chars().next_back();
    let after = text[r.end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// Whether a letter-and-digit token looks like an identifier rather than a
/// clinical token (`T1`, `B1000`, `3D`, `C2-C3`, `512x512`, `5MM`).
fn looks_like_id(tok: &str) -> bool {
    let digits = tok.bytes().filter(u8::is_ascii_digit).count();
    let letters = tok.bytes().filter(u8::is_ascii_alphabetic).count();
    if letters == 0 {
        // Digit runs: one long run, or hyphenated groups (`2016-0033`).
        let longest = tok.split('-').map(str::len).max().unwrap_or(0);
        return longest >= 6 || (tok.contains('-') && digits >= 8);
    }
    let number =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let mut parts = tok.split(['x', 'X']);
    let matrix = number(parts.next()) && number(parts.next()) && parts.next().is_none();
    digits >= 5 && !matrix
}

/// Every pattern finding of SSNs, phones, e-mails, URLs and identifiers.
pub(crate) fn find(text: &str, out: &mut Vec<Finding>) {
    let p = &*P;
    let (digits, _) = crate::digit_stats(text);
    if text.contains('@') {
        for m in p.email.find_iter(text) {
            push(out, m.range(), Kind::Email, "email");
        }
    }
    if text.contains('.') {
        for m in p.url.find_iter(text).chain(p.domain.find_iter(text)) {
            if text[..m.start()].ends_with(['@', '.', '/']) {
                continue;
            }
            let s = m
                .as_str()
                .trim_end_matches(['.', ',', ';', ':', ')', ']', '!', '?']);
            push(out, m.start()..m.start() + s.len(), Kind::Url, "url");
        }
    }
    if digits == 0 {
        return;
    }
    for m in p.id_token.find_iter(text) {
        if looks_like_id(m.as_str()) && !in_decimal(text, &m.range()) {
            push(out, m.range(), Kind::Id, "id-shape");
        }
    }
    if digits >= 3 {
        for c in p
            .id_cue
            .captures_iter(text)
            .chain(p.id_hash.captures_iter(text))
        {
            if let Some(m) = c.get(1) {
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                if digits >= 3 || (digits >= 1 && m.len() >= 5) {
                    push(out, m.range(), Kind::Id, "mrn");
                }
            }
        }
    }
    if digits >= 4 {
        for c in p.phone_cue.captures_iter(text) {
            if let Some(m) = c.get(1) {
                let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                if (4..=15).contains(&digits) {
                    push(out, m.range(), Kind::Phone, "phone");
                }
            }
        }
    }
    if digits < 9 {
        return;
    }
    for m in p.ssn.find_iter(text) {
        push(out, m.range(), Kind::Ssn, "ssn");
    }
    for c in p.ssn_cue.captures_iter(text) {
        if let Some(m) = c.get(1) {
            push(out, m.range(), Kind::Ssn, "ssn");
        }
    }
    for m in p.phone.find_iter(text).chain(p.phone_intl.find_iter(text)) {
        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        if (10..=15).contains(&digits) && bounded(text, &m.range()) {
            push(out, m.range(), Kind::Phone, "phone");
        }
    }
}

/// Whether a token is the fraction of a decimal number (`0.123456`).
fn in_decimal(text: &str, r: &Range<usize>) -> bool {
    let b = &text.as_bytes()[..r.start];
    b.len() >= 2 && b[b.len() - 1] == b'.' && b[b.len() - 2].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&str, Kind)> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.sort_by_key(|f| (f.range.start, std::cmp::Reverse(f.range.end)));
        out.iter()
            .map(|f| (&text[f.range.clone()], f.kind))
            .collect()
    }

    #[test]
    fn ssn() {
        assert!(found("SSN 123-45-6789").contains(&("123-45-6789", Kind::Ssn)));
        assert!(found("SSN 123456789").contains(&("123456789", Kind::Ssn)));
    }

    #[test]
    fn phones() {
        for s in [
            "(717) 555-0180",
            "+1 330 555 0163",
            "717.555.0180",
            "717-555-0180",
        ] {
            assert!(found(s).contains(&(s, Kind::Phone)), "{s}");
        }
        assert_eq!(found("call ext 4412"), [("4412", Kind::Phone)]);
    }

    #[test]
    fn email_and_url() {
        assert_eq!(
            found("mail j.doe@example.org."),
            [("j.doe@example.org", Kind::Email)]
        );
        assert!(found("see https://pacs.example.org/view?id=3.")
            .contains(&("https://pacs.example.org/view?id=3", Kind::Url)));
    }

    #[test]
    fn ids_but_not_clinical_tokens() {
        assert!(found("MRN 12345").contains(&("12345", Kind::Id)));
        assert!(found("MRN: A1234567").contains(&("A1234567", Kind::Id)));
        assert!(found("ID# 998877").contains(&("998877", Kind::Id)));
        assert!(found("acc RA58-3244581").contains(&("RA58-3244581", Kind::Id)));
        for s in [
            "AX DWI B1000",
            "SAG T1 MPRAGE",
            "C2-C3",
            "L4/L5",
            "AX 1.25",
            "5MM 3D",
            "512x512",
        ] {
            assert!(found(s).is_empty(), "{s}");
        }
    }
}
