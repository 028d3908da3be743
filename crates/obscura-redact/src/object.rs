//! One object's frames: find text in each, decide, redact every frame, and
//! verify the result by reading it again.

use crate::candidates::{candidates, stroke_mask, strokes_only, Candidate, Sought};
use crate::decide::{Identity, Looks, Reason};
use crate::grey::Grey;
use crate::kept::Kept;
use crate::ocr::{read_line, Word};
use crate::renderings::greys;
use crate::still::{Beside, Rolling};
use crate::{Rect, RedactError};
use obscura_dicom::Source;
use obscura_pixels::{Decoder, Frame, Photometric, Samples};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Pixels added around a candidate for OCR, and around a redacted box.
const OCR_MARGIN: usize = 3;
const REDACT_MARGIN: usize = 3;
/// The tallest line a redaction's margin grows with.
const LINE_HEIGHT: usize = 40;
/// Top-hat level of the strokes a fill follows: fainter than the cheap
/// pass's, so that the rims and faint ends of letters are covered.
const EXTENT_LEVEL: u8 = 10;
/// How far a fill may follow the strokes of its line beyond the box found,
/// in line heights at each end (and half a line above and below).
const EXTENT_RUN: usize = 3;
/// How far around a changed pixel the cheap pass's candidates may change
/// (its stroke filter's size, and a pixel).
const STROKE_REACH: usize = 8;
/// Verification rounds that may redact what an earlier one uncovered.
const VERIFY_ROUNDS: usize = 2;

/// What to do with the text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redact what must go (Clean Pixel Data).
    Redact,
    /// Find and decide as [`Mode::Redact`] does, redacting nothing (a
    /// scan's findings).
    Find,
    /// Only say whether the pixels hold text at all.
    Check,
}

/// A line of text found and what was decided about it. Its words are not
/// kept: findings and reports carry the reason and the place only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The first frame it was found in (from 0).
    pub frame: u32,
    /// Where.
    pub rect: Rect,
    /// Why it is redacted (or, checking, why the pixels are not clear).
    pub reason: Reason,
}

/// What inspecting an object came to.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The text that must go (redacted, when redacting).
    pub found: Vec<Found>,
    /// Candidate boxes the cheap pass gave OCR, and OCR calls made (the
    /// rest were boxes seen before, pixel for pixel).
    pub candidates: usize,
    /// OCR calls made.
    pub ocr_calls: usize,
    /// The redacted frames as native Pixel Data (little endian, all
    /// frames), when anything was redacted.
    pub pixels: Option<NativeFrames>,
}

/// Redacted frames, ready to be written as native Pixel Data. They are
/// kept in an unnamed temporary file as each frame is redacted
/// (`kept.rs`), so that a cine is never held whole in memory (what is
/// spilled is already redacted).
#[derive(Debug)]
pub struct NativeFrames {
    /// Every frame's samples, little endian, pixel-interleaved, from the
    /// file's start (1-bit samples packed, the frames one after another
    /// bit by bit, as stored).
    pub file: std::fs::File,
    /// Bytes in `file`.
    pub len: u64,
    /// OB (1 or 8 bits allocated) or OW.
    pub vr: [u8; 2],
    /// The Photometric Interpretation of the samples written.
    pub photometric: Photometric,
    /// Bits Stored of the samples written.
    pub bits_stored: u16,
}

/// Reads the frames of one object.
struct Reader<'a> {
    identity: &'a Identity,
    regions: &'a [Rect],
    mode: Mode,
    /// Words read, by the pixels of the box read: a banner fixed across
    /// frames is read once, and verification rereads only what changed.
    seen: HashMap<u64, Vec<Word>>,
    candidates: usize,
    ocr_calls: usize,
    /// When verifying: the areas filled. Only candidates near them (as far
    /// as the cheap pass looks around a pixel) are read again, elsewhere the
    /// pixels are those already decided; and those on the line of one,
    /// touching it, go unread.
    filled: Vec<Rect>,
    /// Boxes that went as text (unexplained or unreadable) in a frame
    /// where they stayed put, or were read as text reads: where a cine
    /// shows text (a line mostly inside one is read as text in every later
    /// frame, even where the anatomy under it moves).
    texts: Vec<Rect>,
}

impl Reader<'_> {
    /// The boxes of a frame that must go, in each of its renderings (each
    /// beside the frames around it in a cine).
    fn frame(&mut self, renderings: &[Beside]) -> Result<Vec<(Rect, Reason)>, RedactError> {
        let mut out = Vec::new();
        for rendering in renderings {
            out.extend(self.lines(rendering)?);
        }
        Ok(out)
    }

    /// The boxes of `grey` that must go, and why. Outside the diagnostic
    /// regions every candidate goes unread but faint lines, which are left
    /// alone there; inside (or in images without regions), lines are read,
    /// faint lines redacted only for what is read in them. In
    /// [`Mode::Check`] nothing is read: the text-like lines are what makes
    /// the pixels not clear (faint lines do not count). A line of a cine
    /// whose strokes move from frame to frame inside the regions is
    /// anatomy, not text burned in: it goes only for what it reads as
    /// identifying, never for its looks (nor makes the pixels not clear).
    fn lines(&mut self, beside: &Beside) -> Result<Vec<(Rect, Reason)>, RedactError> {
        let grey = beside.grey;
        let sought = match self.mode {
            Mode::Check => Sought::Text,
            Mode::Redact | Mode::Find => Sought::All,
        };
        let mut found = candidates(grey, sought);
        let mut adjoining: Vec<Candidate> = Vec::new();
        if !self.filled.is_empty() {
            let near = |r: &Rect| self.filled.iter().any(|f| f.grow(STROKE_REACH).overlaps(r));
            found.lines.retain(|c| near(&c.rect));
            found.blocks.retain(near);
            found.faint.retain(near);
            // (a cine's anatomy touching a fill is not the rest of its text)
            let adjoins =
                |r: &Rect| self.filled.iter().any(|f| adjoins(r, f)) && !self.anatomy(beside, r);
            let rest;
            (adjoining, rest) = std::mem::take(&mut found.lines)
                .into_iter()
                .partition(|c| adjoins(&c.rect));
            found.lines = rest;
        }
        if self.mode == Mode::Check {
            return Ok(found
                .lines
                .iter()
                .filter(|c| c.text_like() && !self.anatomy(beside, &c.rect))
                .map(|c| (c.rect, Reason::Unreadable))
                .collect());
        }
        // what lies outside the diagnostic regions goes unread
        let mut out: Vec<(Rect, Reason)> = adjoining
            .iter()
            .map(|c| (c.rect, Reason::Adjoining))
            .collect();
        out.extend(
            found
                .blocks
                .iter()
                .chain(found.lines.iter().map(|c| &c.rect))
                .flat_map(|r| self.outside(r))
                .map(|r| (r, Reason::OutsideRegions)),
        );
        let mut read: Vec<(Rect, Vec<Word>, Looks)> = Vec::new();
        for c in &found.lines {
            if !self.inside(&c.rect) || c.unlettered() {
                continue;
            }
            self.candidates += 1;
            let area = c.rect.grow(OCR_MARGIN).clip(grey.width, grey.height);
            let crop = grey.crop(area);
            let mut words = self.read(area, &crop)?;
            // (a word read as text reads is text whose colour changes
            // from frame to frame, not anatomy; asked first, it spares
            // such a line the stroke mask)
            if !crate::decide::surely_text(&words) && self.anatomy(beside, &c.rect) {
                // read once: speckle reads fewer letters than it has pieces
                // lined up, so the second readings would more than double a
                // cine's OCR and read more speckle
                read.push((c.rect, words, Looks::MOVING));
                continue;
            }
            let looks = Looks::of(c);
            // fewer letters read than lined up: OCR misread text over
            // anatomy or a gradient; its strokes alone are read too
            if c.aligned()
                && self.identity.decide(&words, looks).is_none()
                && crate::decide::letters(&words) < c.aligned
            {
                words.extend(self.read(area, &strokes_only(&crop))?);
            }
            // a line drawn across the text: read without it too
            if self.identity.decide(&words, looks).is_none() {
                if let Some(clean) = crop.without_outliers() {
                    words.extend(self.read(area, &clean)?);
                }
            }
            read.push((c.rect, words, looks));
        }
        // faint lines go only for what is read in them: text-like looks
        // are not claimed for them
        for r in &found.faint {
            if !self.inside(r) {
                continue;
            }
            self.candidates += 1;
            let area = r.grow(OCR_MARGIN).clip(grey.width, grey.height);
            let words = self.read(area, &grey.crop(area))?;
            read.push((*r, words, Looks::default()));
        }
        out.extend(
            rows(read).into_iter().filter_map(|(rect, words, looks)| {
                Some((rect, self.identity.decide(&words, looks)?))
            }),
        );
        Ok(out)
    }

    /// The words of `crop` (taken at `area`), read once per pixels and
    /// place.
    fn read(&mut self, area: Rect, crop: &Grey) -> Result<Vec<Word>, RedactError> {
        let key = {
            let mut h = DefaultHasher::new();
            (area, &crop.data).hash(&mut h);
            h.finish()
        };
        if let Some(words) = self.seen.get(&key) {
            return Ok(words.clone());
        }
        self.ocr_calls += 1;
        let words = read_line(crop)?;
        self.seen.insert(key, words.clone());
        Ok(words)
    }

    /// The parts of `r` outside every diagnostic region (none when the
    /// image declares no region).
    fn outside(&self, r: &Rect) -> Vec<Rect> {
        if self.regions.is_empty() {
            return Vec::new();
        }
        self.regions.iter().fold(vec![*r], |parts, g| {
            parts.iter().flat_map(|p| p.minus(g)).collect()
        })
    }

    /// Whether `r` is an ultrasound cine's anatomy, not text: inside a
    /// diagnostic region, not mostly inside one of [`Reader::texts`], its
    /// strokes move from frame to frame. (The frames
    /// of other multi-frame objects, slices or phases, each show other
    /// anatomy under the same text.)
    fn anatomy(&self, beside: &Beside, r: &Rect) -> bool {
        let at_text = |t: &Rect| 2 * r.shared(t) >= r.width() * r.height();
        !self.regions.is_empty()
            && self.inside(r)
            && !self.texts.iter().any(at_text)
            && beside.moving(r)
    }

    /// Whether a box lies in a diagnostic region (its centre does), or the
    /// image declares none.
    fn inside(&self, r: &Rect) -> bool {
        if self.regions.is_empty() {
            return true;
        }
        let (cx, cy) = ((r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2);
        self.regions
            .iter()
            .any(|g| cx >= g.x0 && cx < g.x1 && cy >= g.y0 && cy < g.y1)
    }
}

/// Find the text of every frame of `decoder`'s object and, in
/// [`Mode::Redact`], redact it in every frame and verify by reading the
/// result again. `regions`: the diagnostic regions (ultrasound), if any.
pub fn inspect<S: Source>(
    decoder: &Decoder<S>,
    identity: &Identity,
    regions: &[Rect],
    mode: Mode,
) -> Result<Outcome, RedactError> {
    let info = decoder.info();
    let mut reader = Reader {
        identity,
        regions,
        mode,
        seen: HashMap::new(),
        candidates: 0,
        ocr_calls: 0,
        filled: Vec::new(),
        texts: Vec::new(),
    };
    let mut found: Vec<Found> = Vec::new();
    // a single frame is decoded once; the frames of a cine are not all
    // held: encapsulated ones are kept decoded in a temporary file to be
    // redacted, native ones are read again
    let mut single = None;
    let mut kept = (mode == Mode::Redact && decoder.frames() > 1 && decoder.encapsulated())
        .then(Kept::new)
        .transpose()?;
    // each frame is read beside the one before and the one after it: what
    // moves between them is not text
    let mut frames = Rolling::new(decoder.frames(), |n| {
        let frame = decoder.frame(n)?;
        let renderings = greys(&frame, info);
        Ok((frame, renderings))
    });
    while let Some((n, frame, renderings)) = frames.next()? {
        for (rect, reason) in reader.frame(&frames.beside(&renderings))? {
            if !found.iter().any(|f| f.rect == rect) {
                found.push(Found {
                    frame: n,
                    rect,
                    reason,
                });
            }
            let by_looks = matches!(reason, Reason::Unexplained | Reason::Unreadable);
            if by_looks && !reader.texts.contains(&rect) {
                reader.texts.push(rect);
            }
        }
        if let Some(kept) = kept.as_mut() {
            kept.push(&frame)?;
        }
        if mode == Mode::Check && !found.is_empty() {
            break;
        }
        if decoder.frames() == 1 {
            single = Some(frame);
        }
        frames.passed(renderings);
    }
    let mut outcome = Outcome {
        found,
        ..Outcome::default()
    };
    if mode == Mode::Redact && !outcome.found.is_empty() {
        // a box redacted in one frame is redacted in all: banners stay put
        let rects: Vec<Rect> = outcome.found.iter().map(|f| f.rect).collect();
        let (w, h) = (info.cols as usize, info.rows as usize);
        let mut redacted = Kept::new()?;
        let mut frames = Rolling::new(decoder.frames(), |n| {
            let frame = match (single.take(), kept.as_mut()) {
                (Some(frame), _) => frame,
                (None, Some(kept)) => kept.next_frame()?,
                (None, None) => decoder.frame(n)?,
            };
            let renderings = greys(&frame, info);
            Ok((frame, renderings))
        });
        while let Some((n, mut frame, shown)) = frames.next()? {
            let darkest = darkest(&shown[0]);
            // what a fill covers follows the strokes of the frame as read
            let strokes = shown
                .iter()
                .map(|g| stroke_mask(g, EXTENT_LEVEL))
                .reduce(|a, b| a.iter().zip(&b).map(|(&x, &y)| x || y).collect())
                .unwrap_or_default();
            let extents = |rs: &mut dyn Iterator<Item = Rect>| -> Vec<Rect> {
                rs.map(|r| extent(&r, &strokes, w, h)).collect()
            };
            reader.filled = extents(&mut rects.iter().copied());
            fill(&mut frame, darkest, &reader.filled);
            // verification: read the redacted frame again; what the
            // redaction uncovered (text merged with what was removed) goes
            // too, a few times at most; then only what identifies nobody
            // may still be found (slivers between boxes, texture OCR reads
            // nothing or a stray letter in), and is filled
            for round in 0..=VERIFY_ROUNDS {
                let now = greys(&frame, info);
                let remaining = reader.frame(&frames.beside(&now))?;
                if remaining.is_empty() {
                    break;
                }
                if round == VERIFY_ROUNDS {
                    if let Some((_, reason)) = remaining.iter().find(|(_, r)| r.identifies()) {
                        return Err(RedactError::TextRemains(reason.as_str()));
                    }
                }
                let more = extents(&mut remaining.iter().map(|(r, _)| *r));
                fill(&mut frame, darkest, &more);
                reader.filled.extend(more);
                outcome
                    .found
                    .extend(remaining.iter().map(|&(rect, reason)| Found {
                        frame: n,
                        rect,
                        reason,
                    }));
            }
            redacted.push(&frame)?;
            frames.passed(shown);
        }
        outcome.pixels = redacted.into_native()?;
    }
    outcome.candidates = reader.candidates;
    outcome.ocr_calls = reader.ocr_calls;
    Ok(outcome)
}

/// Lines read side by side (overlapping rows, gaps of at most twice their
/// height) joined into one, left to right: a name or a date split in two by
/// the cheap pass is decided whole. Lines where no letter or digit was
/// read stay apart: joined with a neighbour's stray marks (`My ea`), an
/// unreadable line of small text would be decided as those. So do the
/// lines of a cine's moving anatomy: joined, speckle would go with a name
/// read beside it, or by the looks of the text beside it.
fn rows(mut read: Vec<(Rect, Vec<Word>, Looks)>) -> Vec<(Rect, Vec<Word>, Looks)> {
    read.sort_by_key(|(r, _, _)| (r.x0, r.y0));
    let mut rows: Vec<(Rect, Vec<Word>, Looks)> = Vec::new();
    for (r, words, looks) in read {
        let readable = crate::decide::letters(&words) > 0;
        let joins = |m: &Rect, w: &[Word], l: &Looks| {
            let overlap = r.y1.min(m.y1).saturating_sub(r.y0.max(m.y0));
            readable
                && crate::decide::letters(w) > 0
                && !(looks.moving || l.moving)
                && overlap * 2 >= r.height().min(m.height())
                && r.x0 <= m.x1 + 2 * r.height().max(m.height())
        };
        match rows.iter_mut().rev().find(|(m, w, l)| joins(m, w, l)) {
            Some((m, w, t)) => {
                *m = m.union(&r);
                w.extend(words);
                *t = t.join(looks);
            }
            None => rows.push((r, words, looks)),
        }
    }
    rows
}

/// Where the darkest pixel of a frame is: redaction fills with its samples.
fn darkest(grey: &Grey) -> usize {
    grey.data
        .iter()
        .enumerate()
        .min_by_key(|(_, &v)| v)
        .map_or(0, |(i, _)| i)
}

/// What filling `r` covers in an image of `w × h` whose stroke pixels are
/// `stroke`: the box grown along its line to the end of the run of strokes
/// (gaps of up to half a line; letters and words the cheap pass cut off)
/// and above and below to their extent (accents, descenders), at most
/// [`EXTENT_RUN`] lines at the ends and half a line around, then by a
/// margin against anti-aliased edges. Flat ground around the text is left.
fn extent(r: &Rect, stroke: &[bool], w: usize, h: usize) -> Rect {
    let line = r.height().min(LINE_HEIGHT);
    let bound = r.grow(line / 2).widen(EXTENT_RUN * line).clip(w, h);
    let gap = (line / 2).max(2);
    let any = |x0: usize, x1: usize, y0: usize, y1: usize| {
        (y0..y1).any(|y| stroke[y * w + x0..y * w + x1].iter().any(|&s| s))
    };
    let mut e = r.clip(w, h);
    loop {
        let before = e;
        if let Some(x) = (e.x1..(e.x1 + gap).min(bound.x1))
            .rev()
            .find(|&x| any(x, x + 1, e.y0, e.y1))
        {
            e.x1 = x + 1;
        }
        if let Some(x) =
            (e.x0.saturating_sub(gap).max(bound.x0)..e.x0).find(|&x| any(x, x + 1, e.y0, e.y1))
        {
            e.x0 = x;
        }
        if e.y0 > bound.y0 && any(e.x0, e.x1, e.y0 - 1, e.y0) {
            e.y0 -= 1;
        }
        if e.y1 < bound.y1 && any(e.x0, e.x1, e.y1, e.y1 + 1) {
            e.y1 += 1;
        }
        if e == before {
            break;
        }
    }
    e.grow(REDACT_MARGIN).clip(w, h)
}

/// Whether candidate `r` lies on the line of the filled box `f` (rows
/// overlapping by half its height, at most twice as tall) and touches it
/// (a gap of at most its height): the rest of a line the fill cut.
fn adjoins(r: &Rect, f: &Rect) -> bool {
    let overlap = r.y1.min(f.y1).saturating_sub(r.y0.max(f.y0));
    let gap = r.x0.saturating_sub(f.x1).max(f.x0.saturating_sub(r.x1));
    overlap * 2 >= r.height() && r.height() <= 2 * f.height() && gap <= r.height()
}

/// Every box of `rects` filled with the samples of pixel `from` (the
/// darkest).
fn fill(frame: &mut Frame, from: usize, rects: &[Rect]) {
    let spp = usize::from(frame.samples_per_pixel);
    let (w, h) = (frame.width as usize, frame.height as usize);
    match &mut frame.samples {
        Samples::U1(v) | Samples::U8(v) => fill_samples(v, from, spp, w, h, rects),
        Samples::U16(v) => fill_samples(v, from, spp, w, h, rects),
        Samples::U32(v) => fill_samples(v, from, spp, w, h, rects),
    }
}

fn fill_samples<T: Copy>(v: &mut [T], from: usize, spp: usize, w: usize, h: usize, rects: &[Rect]) {
    let value: Vec<T> = v[from * spp..(from + 1) * spp].to_vec();
    for r in rects {
        let r = r.clip(w, h);
        for y in r.y0..r.y1 {
            for x in r.x0..r.x1 {
                v[(y * w + x) * spp..(y * w + x + 1) * spp].copy_from_slice(&value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_follows_its_line_to_the_end_of_its_strokes_and_no_further() {
        // strokes from x 10 to 67 on rows 20-29 of a 200 × 60 image, the
        // box found cut off at x 50
        let (w, h) = (200, 60);
        let mut stroke = vec![false; w * h];
        for y in 20..30 {
            for x in (10..70).step_by(3) {
                stroke[y * w + x] = true;
            }
        }
        let found = Rect {
            x0: 10,
            y0: 20,
            x1: 50,
            y1: 30,
        };
        let e = extent(&found, &stroke, w, h);
        let margin = REDACT_MARGIN;
        assert_eq!(
            e,
            Rect {
                x0: 10 - margin,
                y0: 20 - margin,
                x1: 68 + margin,
                y1: 30 + margin
            }
        );
    }

    #[test]
    fn a_line_with_nothing_read_is_decided_apart_from_its_neighbour() {
        let line = |x0, text: &str| {
            let words = crate::ocr::words(text, 50.0);
            let rect = Rect {
                x0,
                y0: 90,
                x1: x0 + 30,
                y1: 99,
            };
            (rect, words, Looks::default())
        };
        // side by side: an 8 px number OCR read nothing in, a mark beside it
        let unread = vec![line(212, "—"), line(236, "My ea")];
        assert_eq!(rows(unread).len(), 2);
        // two halves of one date are one row
        let read = vec![line(212, "Nov 26,"), line(236, "2026")];
        assert_eq!(rows(read).len(), 1);
    }
}
