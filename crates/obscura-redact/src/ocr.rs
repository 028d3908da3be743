//! Tesseract, one engine per thread, reading one candidate box at a time.

use crate::grey::Grey;
use crate::{Rect, RedactError};
use std::cell::RefCell;
use tesseract::{PageSegMode, Tesseract};

/// Cap height Tesseract reads best at, in pixels: smaller text is upscaled.
const TARGET_HEIGHT: usize = 36;
/// The largest upscaling factor.
const MAX_FACTOR: usize = 4;

/// Margin of ground added around a crop for Tesseract, in its pixels.
const OCR_MARGIN: usize = 8;
/// Upscaling of a block (text merged with texture) for sparse reading,
/// and the most pixels a block is upscaled to.
const BLOCK_FACTOR: usize = 3;
const BLOCK_MAX_PIXELS: usize = 3_000_000;

/// One word Tesseract read.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// Its text.
    pub text: String,
    /// Tesseract's confidence, 0-100.
    pub confidence: f32,
}

/// A line of words Tesseract found in a block, and where (in the block).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Its box in the block's pixels.
    pub rect: Rect,
    /// Its words.
    pub words: Vec<Word>,
}

thread_local! {
    static ENGINE: RefCell<Option<Tesseract>> = const { RefCell::new(None) };
}

/// Drop this thread's Tesseract engine, if any: call on every worker
/// thread when a run ends (threads of a pool outlive it, and Tesseract
/// complains at exit of caches still held).
pub fn release_engine() {
    ENGINE.with(|cell| cell.borrow_mut().take());
}

fn engine() -> Result<Tesseract, RedactError> {
    let t = Tesseract::new(None, Some("eng")).map_err(|e| RedactError::Ocr(e.to_string()))?;
    // no dictionary: names, IDs and dates are not words
    t.set_variable("load_system_dawg", "0")
        .and_then(|t| t.set_variable("load_freq_dawg", "0"))
        .map_err(|e| RedactError::Ocr(e.to_string()))
}

/// The words of one line of text in `img` (a crop around a candidate).
pub fn read_line(img: &Grey) -> Result<Vec<Word>, RedactError> {
    let factor = TARGET_HEIGHT
        .div_ceil(img.height.max(1))
        .clamp(1, MAX_FACTOR);
    let lines = recognize(img, factor, PageSegMode::PsmSingleLine)?;
    Ok(lines.into_iter().flat_map(|l| l.words).collect())
}

/// The lines Tesseract finds in `img`, a block where text may be merged
/// with texture (sparse text, upscaled).
pub fn read_block(img: &Grey) -> Result<Vec<Line>, RedactError> {
    let area = img.width * img.height;
    let factor = (1..=BLOCK_FACTOR)
        .rev()
        .find(|f| area * f * f <= BLOCK_MAX_PIXELS)
        .unwrap_or(1);
    recognize(img, factor, PageSegMode::PsmSparseText)
}

/// `img` upscaled by `factor`, prepared and read in `mode`; lines in the
/// coordinates of `img`.
fn recognize(img: &Grey, factor: usize, mode: PageSegMode) -> Result<Vec<Line>, RedactError> {
    let prepared = img.upscale(factor).for_ocr(OCR_MARGIN);
    let tsv = ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let mut tess = match slot.take() {
            Some(t) => t,
            None => engine()?,
        };
        tess.set_page_seg_mode(mode);
        let (w, h) = (prepared.width as i32, prepared.height as i32);
        let mut tess = tess
            .set_frame(&prepared.data, w, h, 1, w)
            .map_err(|e| RedactError::Ocr(e.to_string()))?
            .set_source_resolution(300)
            .recognize()
            .map_err(|e| RedactError::Ocr(e.to_string()))?;
        let tsv = tess
            .get_tsv_text(0)
            .map_err(|e| RedactError::Ocr(e.to_string()))?;
        *slot = Some(tess);
        Ok::<_, RedactError>(tsv)
    })?;
    let back = |v: usize| v.saturating_sub(OCR_MARGIN) / factor;
    let mut lines: Vec<((u32, u32, u32), Line)> = Vec::new();
    for (key, rect, word) in parse_tsv(&tsv) {
        let rect = Rect {
            x0: back(rect.x0),
            y0: back(rect.y0),
            x1: back(rect.x1).min(img.width) + 1,
            y1: back(rect.y1).min(img.height) + 1,
        };
        match lines.iter_mut().find(|(k, _)| *k == key) {
            Some((_, line)) => {
                line.rect = line.rect.union(&rect);
                line.words.push(word);
            }
            None => lines.push((
                key,
                Line {
                    rect,
                    words: vec![word],
                },
            )),
        }
    }
    Ok(lines.into_iter().map(|(_, l)| l).collect())
}

/// Words of Tesseract's TSV (level 5 rows: block, paragraph, line, word,
/// left, top, width, height, confidence, text), with their line and box.
fn parse_tsv(tsv: &str) -> Vec<((u32, u32, u32), Rect, Word)> {
    tsv.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 12 || cols[0] != "5" {
                return None;
            }
            let n = |i: usize| cols[i].parse::<usize>().ok();
            let text = cols[11].trim();
            let (x, y, w, h) = (n(6)?, n(7)?, n(8)?, n(9)?);
            let key = (n(2)? as u32, n(3)? as u32, n(4)? as u32);
            (!text.is_empty()).then(|| {
                (
                    key,
                    Rect {
                        x0: x,
                        y0: y,
                        x1: x + w,
                        y1: y + h,
                    },
                    Word {
                        text: text.to_string(),
                        confidence: cols[10].parse().unwrap_or(0.0),
                    },
                )
            })
        })
        .collect()
}
