//! Whether a line of text read from the pixels identifies someone.

use crate::ocr::Word;
use obscura_detect::{find, Detector, Finding, Kind, Known};
use std::collections::HashSet;
use std::sync::LazyLock;

/// Why a text is redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Text outside the diagnostic regions of an ultrasound image.
    OutsideRegions,
    /// It holds an identifying value: the object's own (found again, in
    /// any format) or a pattern's (names, IDs, dates, phones...).
    Identity(Kind),
    /// A run of digits as long as an identifier's.
    Digits,
    /// Text-like strokes with words that are not imaging vocabulary, a
    /// short number or a probe-like code (a name the patterns miss); or,
    /// whatever the strokes looked like, such a word of five letters and
    /// digits or more (small text whose glyphs touch).
    Unexplained,
    /// Text-like strokes OCR reads nothing in: recall does not hang on OCR.
    Unreadable,
    /// Strokes on the same line as, and touching, text just redacted: the
    /// rest of it (letters the cheap pass cut off a line's ends).
    Adjoining,
}

impl Reason {
    /// Whether OCR read an identifying value or number: what verification
    /// must not find after redaction.
    pub fn identifies(self) -> bool {
        matches!(self, Reason::Identity(_) | Reason::Digits)
    }

    /// A short name for findings and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OutsideRegions => "outside-regions",
            Reason::Identity(k) => k.as_str(),
            Reason::Digits => "digits",
            Reason::Unexplained => "unexplained-text",
            Reason::Unreadable => "unreadable-text",
            Reason::Adjoining => "adjoining-text",
        }
    }
}

/// What the cheap pass saw of a line's strokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Looks {
    /// Enough character-like pieces to be text ([`crate::Candidate::text_like`]).
    pub text_like: bool,
    /// Pieces lined up as letters are ([`crate::Candidate::aligned`]).
    pub aligned: bool,
    /// Strokes that move from frame to frame of a cine: anatomy, not text
    /// burned in. What OCR reads in it identifies only as the object's own
    /// values, digits or dates, never as words shaped like a name (which
    /// OCR's reading of speckle is full of: `Sy Ss`, `Rez FE`).
    pub moving: bool,
}

impl Looks {
    /// A line of a cine whose strokes move ([`Looks::moving`]).
    pub const MOVING: Looks = Looks {
        text_like: false,
        aligned: false,
        moving: true,
    };

    /// How a line looks, from its candidate.
    pub fn of(c: &crate::Candidate) -> Self {
        Looks {
            text_like: c.text_like(),
            aligned: c.aligned(),
            moving: false,
        }
    }

    /// Two lines decided as one row (it moves if both do).
    pub fn join(self, o: Looks) -> Looks {
        Looks {
            text_like: self.text_like || o.text_like,
            aligned: self.aligned || o.aligned,
            moving: self.moving && o.moving,
        }
    }
}

/// Digits in a row from which a number is taken for an identifier.
const ID_DIGITS: usize = 6;

/// Letters and digits of a word OCR reads with [`SURE_CONFIDENCE`] that
/// make a line text even where its strokes move between a cine's frames.
const SURE_WORD_CHARS: usize = 4;

/// Tesseract's confidence in a word read that makes it text even where its
/// strokes move between frames (text whose colour changes from frame to
/// frame): of the 3,644 lines of speckle read in deid-data's 30-frame
/// echo, none reads a word of four letters or more at 70 or more.
const SURE_CONFIDENCE: f32 = 70.0;

/// Letters and digits of a word read that make a line text whatever its
/// strokes looked like. The glyphs of 8-10 px text touch, so its line
/// holds fewer character-like pieces than letters (two, where text-like
/// takes three: an 8 px ID read `Bosr7ss2'`, a 9 px date `[252-24]`);
/// OCR's readings of anatomy and speckle are one to four characters long
/// (`a`, `Le`, `foal`) all but once in about 2,800 such lines of two
/// labelled sets.
const TEXT_WORD_CHARS: usize = 5;

/// The identity an object's pixels are checked against.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    known: Known,
    /// Upper-case words of the identifying values (names, IDs), for
    /// matching OCR's near misses.
    tokens: Vec<String>,
    /// The years of the object's dates, as four digits.
    years: Vec<String>,
}

impl Identity {
    /// The detector's known values, and the raw identifying values (as the
    /// header holds them: `DOE^JOHN`, IDs...) for matching near misses.
    pub fn new(known: Known, values: impl IntoIterator<Item = String>) -> Self {
        let mut tokens: Vec<String> = values
            .into_iter()
            .flat_map(|v| {
                v.split(|c: char| !c.is_alphanumeric())
                    .filter(|t| t.chars().count() >= 4)
                    .map(str::to_uppercase)
                    .collect::<Vec<_>>()
            })
            .collect();
        tokens.sort();
        tokens.dedup();
        let mut years: Vec<String> = known.date_years().map(|y| y.to_string()).collect();
        years.sort();
        years.dedup();
        Identity {
            known,
            tokens,
            years,
        }
    }

    /// Why `words` (one line, read inside a diagnostic region) must be
    /// redacted, if they must. `looks`: whether the cheap pass found the
    /// strokes shaped like text, in which case words that are not imaging
    /// vocabulary go too (otherwise only such words of
    /// [`TEXT_WORD_CHARS`] or more, and never in a cine's moving anatomy);
    /// and lined up as letters, in which case the line goes when nothing
    /// is read (texture OCR reads nothing in is left).
    pub fn decide(&self, words: &[Word], looks: Looks) -> Option<Reason> {
        let text = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if letters(words) == 0 {
            return looks.aligned.then_some(Reason::Unreadable);
        }
        let digits = as_digits(&text);
        let joined = without_separator_gaps(&digits);
        let counts = |f: &Finding| !(looks.moving && shaped_like_a_name(f));
        for variant in [text.as_str(), digits.as_str(), joined.as_str()] {
            if let Some(f) = find(variant, &self.known).into_iter().find(counts) {
                return Some(Reason::Identity(f.kind));
            }
        }
        if longest_digit_run(&digits) >= ID_DIGITS {
            return Some(Reason::Digits);
        }
        if self.holds_date_year(&digits) || spaced_date(&digits) {
            return Some(Reason::Identity(Kind::Date));
        }
        if self.near_token(&text) {
            return Some(Reason::Identity(Kind::Name));
        }
        let mut words = text.split_whitespace();
        let goes = if looks.text_like {
            words.any(|w| unexplained(w, 1))
        } else {
            !looks.moving && words.any(|w| unexplained(w, TEXT_WORD_CHARS))
        };
        goes.then_some(Reason::Unexplained)
    }

    /// Whether `text` holds the year of one of the object's dates as a
    /// number of its own: a date OCR read only in part (`Te 2018`,
    /// `}25, 2019`) is still the object's date.
    fn holds_date_year(&self, text: &str) -> bool {
        text.split(|c: char| !c.is_ascii_digit())
            .any(|n| self.years.iter().any(|y| y == n))
    }

    /// Whether a word of `text` is an identifying value's word but for an
    /// OCR slip (one character; two in long words).
    fn near_token(&self, text: &str) -> bool {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 4)
            .map(as_letters)
            .any(|w| {
                let n = w.chars().count();
                let limit = if n >= 8 { 2 } else { 1 };
                self.tokens.iter().any(|t| {
                    t.chars().count().abs_diff(n) <= limit && edit_distance(t, &w) <= limit
                })
            })
    }
}

/// Whether a name pattern found `f` (a dictionary name, a cue): a word
/// shaped like a name, not the object's own.
fn shaped_like_a_name(f: &Finding) -> bool {
    f.kind == Kind::Name && matches!(f.detector, Detector::Pattern(_))
}

/// `text` without the spaces OCR put beside a hyphen or a slash inside a
/// number (`382 -88- 1618` → `382-88-1618`): an SSN, a phone or a date
/// read in pieces.
fn without_separator_gaps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for w in text.split_whitespace() {
        let glued = out.ends_with(['-', '/']) || w.starts_with(['-', '/']);
        if !out.is_empty() && !glued {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Whether `text` holds a date whose separators OCR read as spaces or
/// lost (`14 2 1954` for `14.02.1984`, `2019 03 25`): three numbers in a
/// row, a year of 1900-2099 at one end and a month and a day beside it.
/// Any full date in the pixels is redacted, as the header's are.
fn spaced_date(text: &str) -> bool {
    let numbers: Vec<u16> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_digit()))
        .map(|n| match n.len() {
            1 | 2 | 4 if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().unwrap_or(0),
            _ => 0,
        })
        .collect();
    let year = |y: u16| (1900..=2099).contains(&y);
    let day_month = |d: u16, m: u16| (1..=31).contains(&d) && (1..=12).contains(&m);
    numbers.windows(3).any(|w| match *w {
        [y, m, d] if year(y) => day_month(d, m),
        [a, b, y] if year(y) => day_month(a, b) || day_month(b, a),
        _ => false,
    })
}

/// `text` with the letters OCR confuses with digits read as digits, in
/// words that are mostly digits already (`O3/I2/1985` → `03/12/1985`).
fn as_digits(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            let digits = w.chars().filter(char::is_ascii_digit).count();
            let letters = w.chars().filter(|c| c.is_alphabetic()).count();
            if digits == 0 || letters * 2 > digits {
                return w.to_string();
            }
            w.chars()
                .map(|c| match c {
                    'O' | 'o' | 'D' | 'Q' => '0',
                    'I' | 'l' | 'i' | '|' | '!' => '1',
                    'Z' | 'z' => '2',
                    'S' | 's' => '5',
                    'B' => '8',
                    'G' | 'b' => '6',
                    'g' | 'q' => '9',
                    'T' => '7',
                    c => c,
                })
                .collect()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word upper-cased, with the digits OCR confuses with letters read as
/// letters when the word is mostly letters (`0KAF0R` → `OKAFOR`).
fn as_letters(word: &str) -> String {
    let upper = word.to_uppercase();
    let letters = upper.chars().filter(|c| c.is_alphabetic()).count();
    if letters * 2 <= upper.chars().count() {
        return upper;
    }
    upper
        .chars()
        .map(|c| match c {
            '0' => 'O',
            '1' => 'I',
            '5' => 'S',
            '8' => 'B',
            '2' => 'Z',
            '6' => 'G',
            c => c,
        })
        .collect()
}

/// Imaging vocabulary (`data/annotation_words.txt`), lower case.
static ANNOTATION: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/annotation_words.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// Units a measurement may end with.
const UNITS: [&str; 11] = [
    "cm", "mm", "hz", "khz", "mhz", "db", "bpm", "fps", "ms", "s", "%",
];

/// Whether a word read identifies nobody: imaging vocabulary, one or two
/// characters, a number of at most four digits (a measurement, with its
/// unit), or a probe-like code (letters then at most four digits:
/// `L12-5`, `TIS0.6`, `x3`).
fn is_annotation(word: &str) -> bool {
    let w = word
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    let digits = w.chars().filter(char::is_ascii_digit).count();
    if w.chars().count() <= 2 || ANNOTATION.contains(w.as_str()) {
        return true;
    }
    if digits == 0 || digits > 4 {
        return false;
    }
    let lead = w.chars().take_while(|c| c.is_alphabetic()).count();
    let body: String = w.chars().skip(lead).collect();
    let unit = UNITS
        .iter()
        .find(|u| body.ends_with(*u))
        .map_or(0, |u| u.len());
    let number = &body[..body.len() - unit];
    lead <= 4
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || ".,:/-+x".contains(c))
}

fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether OCR read a word in `words` as it reads text, not speckle:
/// [`SURE_WORD_CHARS`] letters and digits or more, not imaging vocabulary,
/// at [`SURE_CONFIDENCE`] or more.
pub(crate) fn surely_text(words: &[Word]) -> bool {
    words
        .iter()
        .any(|w| w.confidence >= SURE_CONFIDENCE && unexplained(&w.text, SURE_WORD_CHARS))
}

/// Whether `word` holds `chars` letters and digits or more and is not
/// imaging vocabulary.
fn unexplained(word: &str, chars: usize) -> bool {
    alphanumerics(word) >= chars && !is_annotation(word)
}

/// The letters and digits OCR read in `words`.
pub(crate) fn letters(words: &[Word]) -> usize {
    words.iter().map(|w| alphanumerics(&w.text)).sum()
}

/// How many letters and digits `word` holds.
fn alphanumerics(word: &str) -> usize {
    word.chars().filter(|c| c.is_alphanumeric()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::words;

    const TEXT: Looks = Looks {
        text_like: true,
        aligned: true,
        moving: false,
    };

    fn identity() -> Identity {
        let mut known = Known::default();
        known.add(Kind::Name, "OKAFOR^AMARA");
        known.add(Kind::Id, "4417203");
        known.add(Kind::Date, "19850312");
        Identity::new(known, ["OKAFOR^AMARA".to_string(), "4417203".into()])
    }

    #[test]
    fn header_values_are_found_in_any_format_and_through_ocr_slips() {
        let id = identity();
        for line in [
            "Okafor, Amara",
            "ID: 4417203",
            "03/12/1985",
            "O3/I2/1985",
            "0KAF0R",
        ] {
            assert!(id.decide(&words(line, 90.0), TEXT).is_some(), "{line}");
        }
    }

    #[test]
    fn in_moving_anatomy_only_the_objects_values_and_numbers_identify() {
        let id = identity();
        // OCR's reading of an echo's speckle: shaped like a name
        let speckle = words("Rez FE", 90.0);
        assert_eq!(
            id.decide(&speckle, Looks::default()),
            Some(Reason::Identity(Kind::Name))
        );
        assert_eq!(id.decide(&speckle, Looks::MOVING), None);
        assert_eq!(id.decide(&[], Looks::MOVING), None);
        for line in ["Okafor, Amara", "ID: 4417203", "03/12/1985", "382-88-1618"] {
            assert!(
                id.decide(&words(line, 90.0), Looks::MOVING).is_some(),
                "{line}"
            );
        }
    }

    #[test]
    fn a_number_read_in_pieces_around_its_hyphens_goes() {
        let id = identity();
        let looks = Looks::default();
        assert_eq!(
            id.decide(&words("382 -88- 1618", 90.0), looks),
            Some(Reason::Identity(Kind::Ssn))
        );
        assert_eq!(id.decide(&words("L12 -5 15cm", 90.0), looks), None);
    }

    #[test]
    fn a_date_read_without_its_separators_goes() {
        let id = identity();
        let looks = Looks::default();
        for text in ["14 2 1954", "DOB 2019 03 25", "3 14 2001"] {
            let found = id.decide(&words(text, 90.0), looks);
            assert_eq!(found, Some(Reason::Identity(Kind::Date)), "{text}");
        }
        // a measurement and a count, not a date; a year alone is not one
        for text in ["14 42 1954", "12 5 300", "Gain 12 1999", "2019 13 25"] {
            assert_eq!(id.decide(&words(text, 90.0), looks), None, "{text}");
        }
    }

    #[test]
    fn a_date_read_in_part_goes_by_its_year() {
        let id = identity();
        for line in ["Te 1985", "}12, 1985", "1985"] {
            assert_eq!(
                id.decide(&words(line, 90.0), Looks::default()),
                Some(Reason::Identity(Kind::Date)),
                "{line}"
            );
        }
        for line in ["Te 1986", "19850", "CINE 0118"] {
            assert_ne!(
                id.decide(&words(line, 90.0), Looks::default()),
                Some(Reason::Identity(Kind::Date)),
                "{line}"
            );
        }
    }

    #[test]
    fn imaging_vocabulary_is_kept_and_other_words_go() {
        let id = identity();
        for line in [
            "L12-5",
            "TIS0.6 MI 1.1",
            "Depth 15cm",
            "CINE 0118",
            "FR 18Hz",
        ] {
            assert_eq!(id.decide(&words(line, 90.0), TEXT), None, "{line}");
        }
        assert_eq!(
            id.decide(&words("PETROV, OLGA", 90.0), TEXT),
            Some(Reason::Unexplained)
        );
        // strokes not shaped like text: a long word read is text all the
        // same (touching glyphs), short ones and vocabulary are not
        for line in ["PETROV", "Bosr7ss2'", "[252-24]", "s22<di| tor"] {
            assert_eq!(
                id.decide(&words(line, 90.0), Looks::default()),
                Some(Reason::Unexplained),
                "{line}"
            );
        }
        for line in ["foal", "a Le", "Depth 15cm", "SUPINE"] {
            assert_eq!(
                id.decide(&words(line, 90.0), Looks::default()),
                None,
                "{line}"
            );
        }
        assert_eq!(id.decide(&words("PETROV", 90.0), Looks::MOVING), None);
        assert_eq!(id.decide(&[], TEXT), Some(Reason::Unreadable));
        let unaligned = Looks {
            text_like: true,
            aligned: false,
            moving: false,
        };
        assert_eq!(id.decide(&[], unaligned), None);
        assert_eq!(id.decide(&[], Looks::default()), None);
    }

    #[test]
    fn a_long_word_read_surely_is_text_even_in_moving_anatomy() {
        assert!(surely_text(&words("PETROV, HANS", 96.0)));
        assert!(surely_text(&words("ID4417203", 80.0)));
        // speckle's readings: short, unsure, or vocabulary
        for (line, confidence) in [("Rez FE", 96.0), ("PERROV,", 59.0), ("DEPTH 15cm", 95.0)] {
            assert!(!surely_text(&words(line, confidence)), "{line}");
        }
    }
}
