//! One object's frames: find text in each, decide, redact every frame, and
//! verify the result by reading it again.

use crate::candidates::candidates;
use crate::decide::{Identity, Reason};
use crate::grey::Grey;
use crate::ocr::{read_block, read_line, Word};
use crate::{Rect, RedactError};
use obscura_dicom::Source;
use obscura_pixels::{render, Decoder, Frame, ImageInfo, Photometric, Samples};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Pixels added around a candidate for OCR, and around a redacted box.
const OCR_MARGIN: usize = 3;
const REDACT_MARGIN: usize = 2;
/// Verification rounds that may redact what an earlier one uncovered.
const VERIFY_ROUNDS: usize = 2;

/// What to do with the text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redact what must go (Clean Pixel Data).
    Redact,
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
#[derive(Debug, Clone, Default)]
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

/// Redacted frames, ready to be written as native Pixel Data.
#[derive(Debug, Clone)]
pub struct NativeFrames {
    /// Every frame's samples, little endian, pixel-interleaved.
    pub bytes: Vec<u8>,
    /// OB or OW.
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
    /// Decisions by the pixels of the box read: a banner fixed across
    /// frames is read once, and verification rereads only what changed.
    seen: HashMap<u64, Vec<(Rect, Vec<Word>)>>,
    candidates: usize,
    ocr_calls: usize,
}

impl Reader<'_> {
    /// The lines of `grey` that must go.
    fn lines(&mut self, grey: &Grey) -> Result<Vec<(Rect, Reason)>, RedactError> {
        let found = candidates(grey);
        let mut read: Vec<(Rect, Vec<Word>)> = Vec::new();
        let all = found.lines.iter().map(|r| (r, false));
        for (rect, block) in all.chain(found.blocks.iter().map(|r| (r, true))) {
            self.candidates += 1;
            let area = rect.grow(OCR_MARGIN).clip(grey.width, grey.height);
            let crop = grey.crop(area);
            let key = {
                let mut h = DefaultHasher::new();
                (area, block, &crop.data).hash(&mut h);
                h.finish()
            };
            if let Some(lines) = self.seen.get(&key) {
                read.extend_from_slice(lines);
                continue;
            }
            self.ocr_calls += 1;
            let lines = if block {
                let mut lines = Vec::new();
                for strokes in &found.strokes {
                    lines.extend(
                        read_block(&strokes.crop(area))?
                            .into_iter()
                            .map(|l| (l.rect.shift(area.x0, area.y0), l.words)),
                    );
                }
                lines
            } else {
                vec![(*rect, read_line(&crop)?)]
            };
            read.extend_from_slice(&lines);
            self.seen.insert(key, lines);
        }
        Ok(rows(read)
            .into_iter()
            .filter_map(|(rect, words)| Some((rect, self.decide(&words, self.inside(&rect))?)))
            .collect())
    }

    fn decide(&self, words: &[Word], inside: bool) -> Option<Reason> {
        match self.mode {
            Mode::Redact => self.identity.decide(words, inside),
            Mode::Check => self.identity.decide(words, true).or_else(|| {
                let readable = words.iter().filter(|w| w.confidence >= 60.0);
                let alnum: usize = readable
                    .map(|w| w.text.chars().filter(|c| c.is_alphanumeric()).count())
                    .sum();
                (alnum >= 3).then_some(Reason::OutsideRegions)
            }),
        }
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
    };
    let mut found: Vec<Found> = Vec::new();
    for n in 0..decoder.frames() {
        let frame = decoder.frame(n)?;
        for (rect, reason) in reader.lines(&grey_of(&frame, info))? {
            if !found.iter().any(|f| f.rect == rect) {
                found.push(Found {
                    frame: n,
                    rect,
                    reason,
                });
            }
        }
    }
    let mut outcome = Outcome {
        found,
        ..Outcome::default()
    };
    if mode == Mode::Redact && !outcome.found.is_empty() {
        // a box redacted in one frame is redacted in all: banners stay put
        let rects: Vec<Rect> = outcome.found.iter().map(|f| f.rect).collect();
        let mut bytes = Vec::new();
        let mut written = None;
        for n in 0..decoder.frames() {
            let mut frame = decoder.frame(n)?;
            let darkest = darkest(&grey_of(&frame, info));
            fill(&mut frame, darkest, &rects);
            // verification: read the redacted frame again; what the
            // redaction uncovered (text merged with what was removed) goes
            // too, a few times at most
            let mut rounds = 0;
            loop {
                let remaining = reader.lines(&grey_of(&frame, info))?;
                let Some((_, reason)) = remaining.first() else {
                    break;
                };
                if rounds == VERIFY_ROUNDS {
                    return Err(RedactError::TextRemains(reason.as_str()));
                }
                rounds += 1;
                let more: Vec<Rect> = remaining.iter().map(|(r, _)| *r).collect();
                fill(&mut frame, darkest, &more);
                outcome
                    .found
                    .extend(remaining.iter().map(|&(rect, reason)| Found {
                        frame: n,
                        rect,
                        reason,
                    }));
            }
            bytes.extend_from_slice(&frame.to_le_bytes());
            let vr = match frame.samples {
                Samples::U8(_) => *b"OB",
                Samples::U16(_) => *b"OW",
            };
            written.get_or_insert((frame.photometric, frame.bits_stored, vr));
        }
        outcome.pixels = written.map(|(photometric, bits_stored, vr)| NativeFrames {
            bytes,
            vr,
            photometric,
            bits_stored,
        });
    }
    outcome.candidates = reader.candidates;
    outcome.ocr_calls = reader.ocr_calls;
    Ok(outcome)
}

/// What a frame looks like, in grey.
fn grey_of(frame: &Frame, info: &ImageInfo) -> Grey {
    Grey::from_image(&render(frame, info, None))
}

/// Lines read side by side (overlapping rows, gaps of at most twice their
/// height) joined into one, left to right: a name split in two by the cheap
/// pass is decided whole.
fn rows(mut read: Vec<(Rect, Vec<Word>)>) -> Vec<(Rect, Vec<Word>)> {
    read.retain(|(_, words)| !words.is_empty());
    read.sort_by_key(|(r, _)| (r.x0, r.y0));
    let mut rows: Vec<(Rect, Vec<Word>)> = Vec::new();
    for (r, words) in read {
        let joins = |m: &Rect| {
            let overlap = r.y1.min(m.y1).saturating_sub(r.y0.max(m.y0));
            overlap * 2 >= r.height().min(m.height())
                && r.x0 <= m.x1 + 2 * r.height().max(m.height())
        };
        match rows.iter_mut().rev().find(|(m, _)| joins(m)) {
            Some((m, w)) => {
                *m = m.union(&r);
                w.extend(words);
            }
            None => rows.push((r, words)),
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

/// Every box of `rects` (grown a little) filled with the samples of pixel
/// `from` (the darkest).
fn fill(frame: &mut Frame, from: usize, rects: &[Rect]) {
    let spp = usize::from(frame.samples_per_pixel);
    let (w, h) = (frame.width as usize, frame.height as usize);
    match &mut frame.samples {
        Samples::U8(v) => fill_samples(v, from, spp, w, h, rects),
        Samples::U16(v) => fill_samples(v, from, spp, w, h, rects),
    }
}

fn fill_samples<T: Copy>(v: &mut [T], from: usize, spp: usize, w: usize, h: usize, rects: &[Rect]) {
    let value: Vec<T> = v[from * spp..(from + 1) * spp].to_vec();
    for r in rects {
        let r = r.grow(REDACT_MARGIN).clip(w, h);
        for y in r.y0..r.y1 {
            for x in r.x0..r.x1 {
                v[(y * w + x) * spp..(y * w + x + 1) * spp].copy_from_slice(&value);
            }
        }
    }
}
