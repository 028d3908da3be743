//! A text folded for matching: lower case, accents stripped, tokenized into
//! alphanumeric words, with every folded byte mapped back to the original.

use std::ops::Range;

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// One alphanumeric word of a [`Folded`] text.
#[derive(Debug, Clone)]
pub(crate) struct Tok {
    /// Range in the folded text.
    pub lo: Range<usize>,
    /// Range in the original text.
    pub orig: Range<usize>,
}

/// A text folded to lower-case ASCII where possible, and its words.
#[derive(Debug)]
pub(crate) struct Folded<'a> {
    /// The original text.
    pub orig: &'a str,
    /// The folded text.
    pub low: String,
    /// The alphanumeric words, in order.
    pub toks: Vec<Tok>,
    /// Whether the text has letters and none of them is lower case.
    pub all_caps: bool,
}

/// Folds one character (accents stripped, lower case) into `out`.
fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    let special = match c {
        'ß' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'ø' | 'Ø' => "o",
        'ł' | 'Ł' => "l",
        'đ' | 'Đ' | 'ð' | 'Ð' => "d",
        'þ' | 'Þ' => "th",
        'ı' => "i",
        '\u{2018}' | '\u{2019}' | '\u{02BC}' => "'",
        '\u{2010}'..='\u{2015}' => "-",
        '\u{00A0}' | '\u{2007}' | '\u{202F}' => " ",
        _ => "",
    };
    if !special.is_empty() {
        out.push_str(special);
        return;
    }
    decompose_canonical(c, |d| {
        if !is_combining_mark(d) {
            out.extend(d.to_lowercase());
        }
    });
}

impl<'a> Folded<'a> {
    /// Folds and tokenizes `orig`.
    pub fn new(orig: &'a str) -> Self {
        if orig.is_ascii() {
            Self::new_ascii(orig)
        } else {
            Self::new_general(orig)
        }
    }

    /// [`Folded::new`] for any text.
    fn new_general(orig: &'a str) -> Self {
        let mut low = String::with_capacity(orig.len());
        let mut map = Vec::with_capacity(orig.len() + 1);
        let (mut upper, mut lower) = (false, false);
        for (i, c) in orig.char_indices() {
            upper |= c.is_uppercase();
            lower |= c.is_lowercase();
            let before = low.len();
            fold_char(c, &mut low);
            map.resize(map.len() + (low.len() - before), i);
        }
        map.push(orig.len());
        let mut toks = Vec::new();
        let mut start: Option<usize> = None;
        for (i, c) in low.char_indices() {
            match (c.is_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    toks.push(Tok {
                        lo: s..i,
                        orig: map[s]..map[i],
                    });
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            toks.push(Tok {
                lo: s..low.len(),
                orig: map[s]..orig.len(),
            });
        }
        Folded {
            orig,
            low,
            toks,
            all_caps: upper && !lower,
        }
    }

    /// [`Folded::new`] for ASCII text, where folding is lower-casing and
    /// every byte maps to itself.
    fn new_ascii(orig: &'a str) -> Self {
        let bytes = orig.as_bytes();
        let mut toks = Vec::new();
        let mut start: Option<usize> = None;
        for (i, b) in bytes.iter().enumerate() {
            match (b.is_ascii_alphanumeric(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    toks.push(Tok {
                        lo: s..i,
                        orig: s..i,
                    });
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            toks.push(Tok {
                lo: s..bytes.len(),
                orig: s..bytes.len(),
            });
        }
        let upper = bytes.iter().any(u8::is_ascii_uppercase);
        let lower = bytes.iter().any(u8::is_ascii_lowercase);
        Folded {
            orig,
            low: orig.to_ascii_lowercase(),
            toks,
            all_caps: upper && !lower,
        }
    }

    /// The folded text of word `i`.
    pub fn word(&self, i: usize) -> &str {
        self.toks.get(i).map_or("", |t| &self.low[t.lo.clone()])
    }

    /// The original text of word `i`.
    pub fn orig_word(&self, i: usize) -> &str {
        self.toks.get(i).map_or("", |t| &self.orig[t.orig.clone()])
    }

    /// The original text between words `i` and `i + 1`.
    pub fn gap_after(&self, i: usize) -> &str {
        match (self.toks.get(i), self.toks.get(i + 1)) {
            (Some(a), Some(b)) => &self.orig[a.orig.end..b.orig.start],
            (Some(a), None) => &self.orig[a.orig.end..],
            _ => "",
        }
    }

    /// The original text before word `i` (back to the previous word).
    pub fn gap_before(&self, i: usize) -> &str {
        match i.checked_sub(1) {
            Some(p) => self.gap_after(p),
            None => self.toks.first().map_or("", |t| &self.orig[..t.orig.start]),
        }
    }

    /// Whether word `i` starts with an upper-case letter.
    pub fn is_cap(&self, i: usize) -> bool {
        self.orig_word(i)
            .chars()
            .next()
            .is_some_and(char::is_uppercase)
    }

    /// Whether word `i` is made of letters only.
    pub fn is_alpha(&self, i: usize) -> bool {
        let w = self.word(i);
        !w.is_empty() && w.chars().all(char::is_alphabetic)
    }

    /// The index of the word whose original range starts at or after `pos`.
    pub fn word_at_or_after(&self, pos: usize) -> usize {
        self.toks.partition_point(|t| t.orig.start < pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents_and_maps_back() {
        let f = Folded::new("José MUÑOZ-Ærø, ß");
        assert_eq!(f.low, "jose munoz-aero, ss");
        let words: Vec<&str> = (0..f.toks.len()).map(|i| f.word(i)).collect();
        assert_eq!(words, ["jose", "munoz", "aero", "ss"]);
        assert_eq!(f.orig_word(1), "MUÑOZ");
        assert_eq!(f.gap_after(1), "-");
        assert!(f.is_cap(0) && !f.all_caps);
    }

    #[test]
    fn ascii_fast_path_folds_as_the_general_path() {
        const ALPHABET: &[u8] = b" aZ9-^,.'\tQx0_/";
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..5000 {
            let mut t = String::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                t.push(char::from(
                    ALPHABET[(seed % ALPHABET.len() as u64) as usize],
                ));
            }
            let (general, fast) = (Folded::new_general(&t), Folded::new_ascii(&t));
            assert_eq!(general.low, fast.low, "{t:?}");
            assert_eq!(general.all_caps, fast.all_caps, "{t:?}");
            let spans = |f: &Folded| -> Vec<_> {
                f.toks
                    .iter()
                    .map(|k| (k.lo.clone(), k.orig.clone()))
                    .collect()
            };
            assert_eq!(spans(&general), spans(&fast), "{t:?}");
        }
    }

    #[test]
    fn combining_marks_stay_in_the_word() {
        let f = Folded::new("Jose\u{301} x");
        assert_eq!(f.orig_word(0), "Jose\u{301}");
        assert_eq!(f.word(0), "jose");
    }
}
