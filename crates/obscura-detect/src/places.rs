//! Street addresses, `City, ST 12345`, ZIP codes and institution names.

use std::sync::LazyLock;

use regex::Regex;

use crate::patterns::push;
use crate::text::Folded;
use crate::vocab::{is_vocab, CLINICAL};
use crate::{Finding, Kind};

const SUFFIX: &str = r"(?:street|st|avenue|ave|av|road|rd|boulevard|blvd|drive|dr|lane|ln|court|ct|terrace|ter|terr|place|pl|way|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|alley|aly|loop|row|pike|route|rte|crescent|cres|close|grove|gardens|walk|plaza|plz|expressway|expy|turnpike|tpke)";
const STATES: &str = r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming)";

struct Places {
    street: Regex,
    po_box: Regex,
    city_state_zip: Regex,
    state_zip: Regex,
    zip_cue: Regex,
    city_state_tail: Regex,
}

static P: LazyLock<Places> = LazyLock::new(|| {
    let r = |s: &str| Regex::new(s).expect("place pattern");
    Places {
        street: r(&format!(
            r"\b[0-9]{{1,6}}[A-Za-z]?(?:-[0-9]+)?\s+((?:[A-Z0-9][A-Za-z0-9'.-]*\s+){{1,4}}?)(?i:{SUFFIX})\b(?:,?\s*(?i:apt|apartment|suite|ste|unit|room|rm|floor|fl|bldg|building|#)\.?\s*#?\s*[A-Za-z0-9-]+\b)?"
        )),
        po_box: r(r"(?i)\bp\.?\s?o\.?\s*box\s+[0-9]+\b"),
        city_state_zip: r(&format!(
            r"\b[A-Z][A-Za-z.'-]+(?:\s+[A-Z][A-Za-z.'-]+){{0,2}},?\s+{STATES}\.?,?\s+[0-9]{{5}}(?:-[0-9]{{4}})?\b"
        )),
        state_zip: r(&format!(r"\b{STATES}\s+[0-9]{{5}}(?:-[0-9]{{4}})?\b")),
        zip_cue: r(r"(?i)\bzip(?:\s*code)?\s*[:#]?\s*([0-9]{5}(?:-[0-9]{4})?)\b"),
        city_state_tail: r(&format!(
            r"^,?\s+[A-Z][A-Za-z.'-]+(?:\s+[A-Z][A-Za-z.'-]+){{0,2}},\s*{STATES}\b(?:\.?,?\s+[0-9]{{5}}(?:-[0-9]{{4}})?\b)?"
        )),
    }
});

/// Whether the words between a house number and a street suffix can be a
/// street name (no function or clinical words: `3 weeks with Dr`).
fn street_name_ok(words: &str) -> bool {
    words.split_whitespace().all(|w| {
        let w = w
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_ascii_lowercase();
        let ordinal =
            w.ends_with("st") || w.ends_with("nd") || w.ends_with("rd") || w.ends_with("th");
        if w.bytes().any(|b| b.is_ascii_digit()) {
            return ordinal;
        }
        !is_vocab(&w)
            || matches!(
                w.as_str(),
                "north"
                    | "south"
                    | "east"
                    | "west"
                    | "main"
                    | "park"
                    | "lake"
                    | "hill"
                    | "oak"
                    | "elm"
                    | "pine"
                    | "maple"
                    | "cedar"
                    | "church"
                    | "mill"
                    | "spring"
                    | "river"
                    | "high"
                    | "center"
                    | "old"
                    | "new"
                    | "n"
                    | "s"
                    | "e"
                    | "w"
                    | "ne"
                    | "nw"
                    | "se"
                    | "sw"
            )
    })
}

/// Every street address, city/state/ZIP and ZIP code of `text`.
pub(crate) fn find_addresses(text: &str, out: &mut Vec<Finding>) {
    let (digits, longest_run) = crate::digit_stats(text);
    if digits == 0 {
        return;
    }
    let p = &*P;
    for c in p.street.captures_iter(text) {
        let (Some(m), Some(words)) = (c.get(0), c.get(1)) else {
            continue;
        };
        if !street_name_ok(words.as_str()) {
            continue;
        }
        let mut end = m.end();
        if let Some(t) = p.city_state_tail.find(&text[end..]) {
            end += t.end();
        }
        push(out, m.start()..end, Kind::Address, "street-address");
    }
    for m in p.po_box.find_iter(text) {
        push(out, m.range(), Kind::Address, "address");
    }
    if longest_run < 5 {
        return;
    }
    for m in p.city_state_zip.find_iter(text) {
        push(out, m.range(), Kind::Address, "address");
    }
    for m in p.state_zip.find_iter(text) {
        push(out, m.range(), Kind::Address, "zip");
    }
    for c in p.zip_cue.captures_iter(text) {
        if let Some(m) = c.get(1) {
            push(out, m.range(), Kind::Address, "zip");
        }
    }
}

/// Words that end an institution name.
fn anchor(w: &str) -> bool {
    matches!(
        w,
        "hospital"
            | "hospitals"
            | "clinic"
            | "clinics"
            | "institute"
            | "infirmary"
            | "university"
            | "college"
            | "sanatorium"
            | "hospice"
            | "healthcare"
            | "klinik"
            | "klinikum"
            | "clinique"
            | "ospedale"
            | "hopital"
            | "krankenhaus"
            | "polyclinic"
            | "foundation"
            | "imaging"
    )
}

/// Anchors that come before the name in their language.
fn foreign_anchor(w: &str) -> bool {
    matches!(
        w,
        "klinik"
            | "klinikum"
            | "clinique"
            | "ospedale"
            | "hopital"
            | "krankenhaus"
            | "policlinico"
            | "centro"
            | "clinica"
            | "policlinica"
            | "szpital"
            | "sjukhus"
            | "sykehus"
    )
}

/// Second words of two-word anchors (`Medical Center`, `Health System`).
/// `Medical Systems` names device makers (GE, Philips, Toshiba), not places.
fn anchor_pair(first: &str, second: &str) -> bool {
    let maker = first == "medical" && matches!(second, "system" | "systems");
    !maker
        && matches!(
            first,
            "medical"
                | "health"
                | "cancer"
                | "imaging"
                | "radiology"
                | "surgical"
                | "surgery"
                | "diagnostic"
                | "diagnostics"
                | "rehabilitation"
                | "heart"
                | "childrens"
                | "trauma"
                | "family"
                | "primary"
                | "urgent"
                | "pediatric"
                | "womens"
        )
        && matches!(
            second,
            "center"
                | "centre"
                | "centers"
                | "system"
                | "systems"
                | "group"
                | "services"
                | "network"
                | "associates"
                | "partners"
                | "alliance"
                | "practice"
                | "care"
                | "physicians"
        )
}

/// Generic institution words: not distinctive on their own.
fn generic(w: &str) -> bool {
    anchor(w)
        || matches!(
            w,
            "general"
                | "memorial"
                | "regional"
                | "community"
                | "medical"
                | "center"
                | "centre"
                | "health"
                | "county"
                | "university"
                | "of"
                | "the"
                | "and"
                | "for"
                | "s"
                | "st"
                | "saint"
                | "childrens"
                | "children"
                | "womens"
                | "mens"
                | "city"
                | "state"
                | "teaching"
                | "district"
                | "national"
                | "system"
                | "imaging"
                | "radiology"
                | "cancer"
                | "outside"
                | "this"
                | "our"
                | "local"
                | "referring"
                | "prior"
                | "new"
                | "main"
                | "a"
                | "an"
                | "at"
                | "to"
        )
}

/// Whether word `i` may be part of an institution name.
fn name_word(f: &Folded, i: usize) -> bool {
    let w = f.word(i);
    let apostrophe_s = w == "s"
        && f.gap_before(i)
            .chars()
            .all(|c| c == '\'' || c == '\u{2019}');
    apostrophe_s
        || (f.is_cap(i)
            && !matches!(
                w,
                "outside"
                    | "this"
                    | "our"
                    | "local"
                    | "referring"
                    | "prior"
                    | "the"
                    | "at"
                    | "from"
                    | "to"
                    | "in"
            )
            && (!CLINICAL.has(w) || generic(w) || matches!(w, "heart" | "children")))
}

fn joined(f: &Folded, i: usize) -> bool {
    let g = f.gap_after(i);
    !g.is_empty()
        && g.len() <= 3
        && g.chars()
            .all(|c| matches!(c, ' ' | '.' | '-' | '\'' | '\u{2019}' | '&'))
}

/// Every institution name of `f` (`Mercy General Hospital`, `University
/// of Pennsylvania`, `St. Jude Children's Research Hospital`).
pub(crate) fn find_institutions(f: &Folded, out: &mut Vec<Finding>) {
    let n = f.toks.len();
    let mut i = 0;
    while i < n {
        let w = f.word(i);
        let mut end = i;
        let is_anchor = f.is_cap(i)
            && (anchor(w)
                || foreign_anchor(w)
                || (i + 1 < n
                    && joined(f, i)
                    && f.is_cap(i + 1)
                    && anchor_pair(w, f.word(i + 1))
                    && {
                        end = i + 1;
                        true
                    }));
        if !is_anchor {
            i += 1;
            continue;
        }
        // Backwards over capitalized name words.
        let mut start = i;
        while start > 0 && i - start < 6 && joined(f, start - 1) && name_word(f, start - 1) {
            start -= 1;
        }
        // Forwards over `of [the] Capitalized...`.
        let mut k = end + 1;
        if k < n && f.word(k) == "of" && joined(f, end) {
            let mut j = k + 1;
            if j < n && f.word(j) == "the" {
                j += 1;
            }
            let first = j;
            while j < n && joined(f, j - 1) && f.is_cap(j) && name_word(f, j) {
                j += 1;
            }
            if j > first {
                end = j - 1;
            }
            k = end + 1;
        }
        // `Klinikum Großhadern`, `Hôpital Saint-Louis`: the name follows.
        if start == i && foreign_anchor(w) {
            let mut j = end + 1;
            while j < n && joined(f, j - 1) && name_word(f, j) && j - end <= 5 {
                j += 1;
            }
            end = j - 1;
            k = end + 1;
        }
        let distinctive = (start..=end).any(|t| !generic(f.word(t)) && f.word(t).len() > 1);
        if distinctive {
            push(
                out,
                f.toks[start].orig.start..f.toks[end].orig.end,
                Kind::Institution,
                "institution",
            );
        }
        i = k.max(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find_addresses(text, &mut out);
        find_institutions(&Folded::new(text), &mut out);
        out.sort_by_key(|x| (x.range.start, std::cmp::Reverse(x.range.end)));
        out.dedup_by(|b, a| b.range.start < a.range.end);
        out.iter().map(|x| &text[x.range.clone()]).collect()
    }

    #[test]
    fn addresses() {
        assert_eq!(
            spans("lives at 6428 Ostrander Avenue."),
            ["6428 Ostrander Avenue"]
        );
        assert_eq!(
            spans("1414 Foxglove Terrace, Apt 3B"),
            ["1414 Foxglove Terrace, Apt 3B"]
        );
        assert_eq!(
            spans("12 Elm St, Dover, DE 19901"),
            ["12 Elm St, Dover, DE 19901"]
        );
        assert_eq!(spans("Springfield, IL 62704"), ["Springfield, IL 62704"]);
        assert!(spans("follow up in 3 Weeks With Dr Smith").is_empty());
        assert!(spans("XR KNEE 3 VIEWS LT").is_empty());
    }

    #[test]
    fn institutions() {
        assert_eq!(
            spans("CT at Mercy General Hospital today"),
            ["Mercy General Hospital"]
        );
        assert_eq!(
            spans("University of Pennsylvania"),
            ["University of Pennsylvania"]
        );
        assert_eq!(
            spans("St. Jude Children's Research Hospital"),
            ["St. Jude Children's Research Hospital"]
        );
        assert_eq!(
            spans("Lakeview Medical Center"),
            ["Lakeview Medical Center"]
        );
        assert!(spans("prior at outside hospital").is_empty());
        assert!(spans("CT OUTSIDE HOSPITAL").is_empty());
    }
}
