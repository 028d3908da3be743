//! The contextual detector: identifying values the object held, found again
//! in its text in any case, accent, order and common format.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use crate::dates::{DateHit, TimeHit, Ymd};
use crate::text::Folded;
use crate::vocab::{is_affix, is_particle};
use crate::{Detector, Finding, Kind};

/// The identifying values of one object, to be found again in its text.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Folded word sequences by their first word: name words and
    /// multi-word name components (kind `Name`), addresses, institutions,
    /// e-mails...
    seqs: HashMap<String, Vec<(Kind, Vec<String>)>>,
    /// Initials of the name components.
    initials: Vec<char>,
    /// Identifiers as their folded alphanumeric characters (sorted, for
    /// prefix look-ups).
    ids: BTreeMap<String, Kind>,
    /// Phone numbers as digits.
    phones: BTreeSet<String>,
    dates: Vec<Ymd>,
    times: Vec<(u8, u8)>,
}

/// The folded words of `s`.
fn words(s: &str) -> Vec<String> {
    let f = Folded::new(s);
    (0..f.toks.len()).map(|i| f.word(i).to_owned()).collect()
}

fn letters(w: &str) -> usize {
    w.chars().filter(|c| c.is_alphanumeric()).count()
}

/// Generic words of addresses and institutions, not distinctive alone.
fn generic(w: &str) -> bool {
    crate::vocab::is_vocab(w)
        || matches!(
            w,
            "hospital"
                | "hospitals"
                | "clinic"
                | "institute"
                | "university"
                | "medical"
                | "center"
                | "centre"
                | "health"
                | "healthcare"
                | "system"
                | "general"
                | "memorial"
                | "regional"
                | "community"
                | "county"
                | "saint"
                | "st"
                | "of"
                | "the"
                | "and"
                | "s"
                | "inc"
                | "llc"
                | "department"
                | "dept"
                | "radiology"
                | "imaging"
                | "usa"
                | "us"
                | "united"
                | "states"
                | "america"
        )
}

impl Known {
    /// Record an identifying value that the object held (as DICOM stores it).
    pub fn add(&mut self, kind: Kind, value: &str) {
        for v in value.split('\\').map(str::trim).filter(|v| !v.is_empty()) {
            match kind {
                Kind::Name => {
                    for comp in v.split(['=', '^']) {
                        self.add_name_component(comp);
                    }
                }
                Kind::Date => {
                    for part in v.split('-') {
                        self.add_date(part);
                    }
                }
                Kind::Time => self.add_time(v),
                Kind::Phone => self.add_phone(v),
                Kind::Id | Kind::Device | Kind::Ssn => {
                    let id: String = words(v).concat();
                    if id.chars().count() >= 3 {
                        self.ids.entry(id).or_insert(kind);
                    }
                }
                Kind::Email | Kind::Url => self.add_phrase(kind, words(v)),
                Kind::Address | Kind::Institution => self.add_place(kind, v),
            }
        }
    }

    /// The four-digit years of the dates recorded: for text where a date
    /// was read only in part (`}25, 2019`).
    pub fn date_years(&self) -> impl Iterator<Item = u16> + '_ {
        self.dates.iter().map(|d| d.year).filter(|&y| y >= 1000)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
            && self.initials.is_empty()
            && self.ids.is_empty()
            && self.phones.is_empty()
            && self.dates.is_empty()
            && self.times.is_empty()
    }

    fn add_name_component(&mut self, comp: &str) {
        // `MÜLLER` is also written `MUELLER`.
        if comp.contains(['ä', 'ö', 'ü', 'Ä', 'Ö', 'Ü']) {
            let mut t = String::with_capacity(comp.len() + 4);
            for c in comp.chars() {
                match c {
                    'ä' | 'Ä' => t.push_str("ae"),
                    'ö' | 'Ö' => t.push_str("oe"),
                    'ü' | 'Ü' => t.push_str("ue"),
                    _ => t.push(c),
                }
            }
            self.add_name_component_folded(&t);
        }
        self.add_name_component_folded(comp);
    }

    fn add_name_component_folded(&mut self, comp: &str) {
        let ws: Vec<String> = words(comp).into_iter().filter(|w| !is_affix(w)).collect();
        for w in &ws {
            if let Some(c) = w.chars().next() {
                if !self.initials.contains(&c) {
                    self.initials.push(c);
                }
            }
        }
        if ws.len() > 1 {
            self.add_seq(Kind::Name, ws.clone());
        }
        for w in ws {
            if letters(&w) >= 2 && !is_particle(&w) {
                self.add_seq(Kind::Name, vec![w]);
            }
        }
    }

    /// Records a word sequence once.
    fn add_seq(&mut self, kind: Kind, ws: Vec<String>) {
        let Some(first) = ws.first() else { return };
        let bucket = self.seqs.entry(first.clone()).or_default();
        if !bucket.iter().any(|(_, p)| *p == ws) {
            bucket.push((kind, ws));
        }
    }

    fn add_date(&mut self, v: &str) {
        let d = v.get(..8).unwrap_or("");
        let n = |r: std::ops::Range<usize>| d.get(r).and_then(|s| s.parse::<u16>().ok());
        if let (Some(y), Some(m), Some(dd)) = (n(0..4), n(4..6), n(6..8)) {
            if (1..=12).contains(&m) && (1..=31).contains(&dd) {
                let d = Ymd {
                    year: y,
                    month: m as u8,
                    day: dd as u8,
                };
                if !self.dates.contains(&d) {
                    self.dates.push(d);
                }
            }
        }
        if let Some(t) = v.get(8..).filter(|t| t.len() >= 4) {
            self.add_time(t);
        }
    }

    fn add_time(&mut self, v: &str) {
        let digits: String = v
            .chars()
            .take_while(|c| *c != '.')
            .filter(char::is_ascii_digit)
            .collect();
        let h = digits.get(0..2).and_then(|s| s.parse::<u8>().ok());
        let m = digits.get(2..4).and_then(|s| s.parse::<u8>().ok());
        if let (Some(h), Some(m)) = (h, m) {
            if h < 24 && m < 60 && !self.times.contains(&(h, m)) {
                self.times.push((h, m));
            }
        }
    }

    fn add_phone(&mut self, v: &str) {
        let d: String = v.chars().filter(char::is_ascii_digit).collect();
        if d.len() == 11 && d.starts_with('1') {
            self.phones.insert(d[1..].to_owned());
        }
        if d.len() >= 7 {
            self.phones.insert(d);
        }
    }

    fn add_phrase(&mut self, kind: Kind, ws: Vec<String>) {
        let n: usize = ws.iter().map(|w| letters(w)).sum();
        let distinctive = ws.iter().any(|w| !generic(w));
        if n >= 3 && distinctive {
            self.add_seq(kind, ws);
        }
    }

    /// The whole value, each part (`^`, `,`, line), and the runs of
    /// distinctive words of each part.
    fn add_place(&mut self, kind: Kind, v: &str) {
        // `St. Mary's` is also written `St Marys`.
        let glued = v.replace(['\'', '\u{2019}'], "");
        if glued != v {
            self.add_place(kind, &glued);
        }
        let all = words(v);
        // Leading parts: `St Marys Regional` of `St Marys Regional Medical Center`.
        for n in 2..all.len() {
            self.add_phrase(kind, all[..n].to_vec());
        }
        self.add_phrase(kind, all);
        for part in v.split(['^', ',', ';', '\n', '\r']) {
            let ws = words(part);
            if ws.len() > 1 {
                self.add_phrase(kind, ws.clone());
            }
            let mut run: Vec<String> = Vec::new();
            for w in ws.into_iter().chain(std::iter::once(String::new())) {
                if w.is_empty() || generic(&w) || (kind == Kind::Address && w.len() == 2) {
                    let keep = run.len() > 1 || run.first().is_some_and(|w| letters(w) >= 4);
                    if keep {
                        self.add_phrase(kind, std::mem::take(&mut run));
                    }
                    run.clear();
                } else {
                    run.push(w);
                }
            }
        }
    }

    /// Whether `hit` (a month and day, no year) is a recorded date's.
    pub(crate) fn has_month_day(&self, hit: &DateHit) -> bool {
        hit.readings.iter().flatten().any(|r| {
            self.dates
                .iter()
                .any(|d| d.month == r.month && d.day == r.day)
        })
    }

    /// Whether any date was recorded.
    pub(crate) fn has_dates(&self) -> bool {
        !self.dates.is_empty()
    }

    /// Whether `hit` reads as a recorded date.
    pub(crate) fn has_date(&self, hit: &DateHit) -> bool {
        hit.readings
            .iter()
            .flatten()
            .any(|r| self.dates.iter().any(|d| r.is(d)))
    }

    /// Whether `hit` is a recorded time (to the minute).
    pub(crate) fn has_time(&self, hit: &TimeHit) -> bool {
        self.times.contains(&(hit.hour, hit.minute))
    }

    /// Every recorded name, identifier, phone and phrase found in `f`.
    pub(crate) fn find(&self, f: &Folded, out: &mut Vec<Finding>) {
        if self.is_empty() {
            return;
        }
        let n = f.toks.len();
        for i in 0..n {
            let w = f.word(i);
            for (kind, seq) in self.seqs.get(w).map_or(&[][..], Vec::as_slice) {
                let gap = if *kind == Kind::Name {
                    name_gap
                } else {
                    phrase_gap
                };
                let Some(k) = seq_at(f, i, seq, gap) else {
                    continue;
                };
                let mut r = f.toks[i].orig.start..f.toks[k].orig.end;
                if *kind == Kind::Name {
                    r = crate::names::with_initials(f, r, |w| {
                        w.chars().next().is_some_and(|c| self.initials.contains(&c))
                    });
                }
                push(out, r, *kind);
            }
            // Values that start with this word (sorted: a range look-up).
            for (id, kind) in self
                .ids
                .range::<str, _>((Bound::Included(w), Bound::Unbounded))
                .take_while(|(id, _)| id.starts_with(w))
            {
                if let Some(k) = concat_at(f, i, id, id_gap) {
                    push(out, f.toks[i].orig.start..f.toks[k].orig.end, *kind);
                }
            }
            let phones = self
                .phones
                .range::<str, _>((Bound::Included(w), Bound::Unbounded))
                .take_while(|p| p.starts_with(w));
            for phone in phones {
                if let Some(k) = concat_at(f, i, phone, phone_gap) {
                    let mut start = f.toks[i].orig.start;
                    if i > 0 && f.word(i - 1) == "1" && phone_gap(f.gap_after(i - 1)) {
                        start = f.toks[i - 1].orig.start;
                    }
                    if f.orig[..start].ends_with(['+', '(']) {
                        start -= 1;
                    }
                    push(out, start..f.toks[k].orig.end, Kind::Phone);
                }
            }
        }
    }
}

fn push(out: &mut Vec<Finding>, range: std::ops::Range<usize>, kind: Kind) {
    out.push(Finding {
        range,
        kind,
        detector: Detector::Contextual,
    });
}

fn name_gap(g: &str) -> bool {
    (1..=3).contains(&g.len())
        && g.chars()
            .all(|c| matches!(c, ' ' | '-' | '\'' | '.' | '\u{2019}'))
}

fn phrase_gap(g: &str) -> bool {
    (1..=4).contains(&g.len())
        && g.chars().all(|c| {
            matches!(
                c,
                ' ' | '-' | '\'' | '.' | ',' | '/' | '&' | '@' | '#' | '_' | '\u{2019}'
            )
        })
}

fn id_gap(g: &str) -> bool {
    (1..=3).contains(&g.len()) && g.chars().all(|c| matches!(c, ' ' | '-' | '.' | '/' | '_'))
}

fn phone_gap(g: &str) -> bool {
    (1..=3).contains(&g.len()) && g.chars().all(|c| matches!(c, ' ' | '-' | '.' | '(' | ')'))
}

/// If the words from `i` on are `seq` (joined by gaps `gap` accepts), the
/// index of the last one.
fn seq_at(f: &Folded, i: usize, seq: &[String], gap: fn(&str) -> bool) -> Option<usize> {
    let mut k = i;
    for (n, w) in seq.iter().enumerate() {
        if n > 0 {
            if !gap(f.gap_after(k)) {
                return None;
            }
            k += 1;
        }
        if k >= f.toks.len() || f.word(k) != w {
            return None;
        }
    }
    Some(k)
}

/// If the words from `i` on spell `value` once concatenated (joined by gaps
/// `gap` accepts), the index of the last one.
fn concat_at(f: &Folded, i: usize, value: &str, gap: fn(&str) -> bool) -> Option<usize> {
    let mut rest = value.strip_prefix(f.word(i))?;
    let mut k = i;
    while !rest.is_empty() {
        if !gap(f.gap_after(k)) || k + 1 >= f.toks.len() {
            return None;
        }
        k += 1;
        rest = rest.strip_prefix(f.word(k))?;
    }
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(known: &Known, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        known.find(&Folded::new(text), &mut out);
        out.sort_by_key(|x| x.range.start);
        out.iter()
            .map(|x| text[x.range.clone()].to_owned())
            .collect()
    }

    #[test]
    fn names_in_any_order_and_format() {
        let mut k = Known::default();
        k.add(Kind::Name, "DOE^JOHN^Q^DR");
        for (text, want) in [
            ("John Doe", vec!["John", "Doe"]),
            ("Doe, J.", vec!["Doe, J."]),
            ("J. Doe", vec!["J. Doe"]),
            ("seen by Dr. doe", vec!["doe"]),
            ("JOHN Q DOE", vec!["JOHN", "Q DOE"]),
            ("Doe, K.", vec!["Doe"]),
        ] {
            assert_eq!(spans(&k, text), want, "{text}");
        }
        assert!(spans(&k, "Dr. Smith").is_empty());
    }

    #[test]
    fn transliterated_names() {
        let mut k = Known::default();
        k.add(Kind::Name, "MÜLLER^JÜRGEN");
        assert_eq!(spans(&k, "Jurgen Mueller"), ["Jurgen", "Mueller"]);
    }

    #[test]
    fn hyphenated_and_accented_names() {
        let mut k = Known::default();
        k.add(Kind::Name, "FERREIRA-LOBO^JOSÉ");
        assert!(spans(&k, "José Ferreira-Lobo").contains(&"Ferreira-Lobo".to_owned()));
        assert!(spans(&k, "jose FERREIRA LOBO").contains(&"jose".to_owned()));
    }

    #[test]
    fn ids_and_phones_in_any_format() {
        let mut k = Known::default();
        k.add(Kind::Id, "183-77-9200");
        k.add(Kind::Phone, "(606) 555-0101");
        k.add(Kind::Id, "AB");
        assert_eq!(spans(&k, "ssn 183779200 x"), ["183779200"]);
        assert_eq!(spans(&k, "id 183 77 9200"), ["183 77 9200"]);
        assert!(spans(&k, "id 1837792001").is_empty());
        assert_eq!(spans(&k, "call +1 606 555 0101"), ["+1 606 555 0101"]);
        assert_eq!(spans(&k, "call 606.555.0101"), ["606.555.0101"]);
        assert!(spans(&k, "AB CD").is_empty());
    }

    #[test]
    fn many_values_are_indexed() {
        let mut k = Known::default();
        for i in 0..20_000 {
            k.add(Kind::Id, &format!("ID-{i:06}"));
            k.add(Kind::Name, &format!("NAME{i}^GIVEN"));
            k.add(Kind::Name, "DOE^JOHN");
        }
        let text = "x ".repeat(5_000) + "id 029999 and ID-000042 for John";
        assert_eq!(spans(&k, &text), ["ID-000042", "John"]);
    }

    #[test]
    fn places() {
        let mut k = Known::default();
        k.add(Kind::Address, "1414 Foxglove Terrace^Springfield^IL^62704");
        k.add(Kind::Institution, "Mercy General Hospital");
        assert!(spans(&k, "lives at 1414 FOXGLOVE TERRACE")
            .contains(&"1414 FOXGLOVE TERRACE".to_owned()));
        assert_eq!(spans(&k, "seen at Mercy today"), ["Mercy"]);
        assert!(spans(&k, "General Hospital").is_empty());
        k.add(Kind::Institution, "St. Mary's Regional Medical Center");
        assert!(spans(&k, "st marys regional").contains(&"st marys regional".to_owned()));
    }
}
