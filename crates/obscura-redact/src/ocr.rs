//! Tesseract, one engine per thread, reading one candidate box at a time.

use crate::grey::Grey;
use crate::RedactError;
use std::cell::RefCell;
use tesseract::{PageSegMode, Tesseract};

/// Cap height Tesseract reads best at, in pixels: smaller text is upscaled.
const TARGET_HEIGHT: usize = 36;
/// The largest upscaling factor.
const MAX_FACTOR: usize = 4;

/// Margin of ground added around a crop for Tesseract, in its pixels.
const OCR_MARGIN: usize = 8;

/// One word Tesseract read.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// Its text.
    pub text: String,
    /// Tesseract's confidence, 0-100.
    pub confidence: f32,
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
    // no dictionary: names, IDs and dates are not words; and no second
    // reading of the line inverted when the first is unsure (crops are
    // already made dark on light): it doubled the cost of faint lines
    t.set_variable("load_system_dawg", "0")
        .and_then(|t| t.set_variable("load_freq_dawg", "0"))
        .and_then(|t| t.set_variable("tessedit_do_invert", "0"))
        .map_err(|e| RedactError::Ocr(e.to_string()))
}

/// The words of one line of text in `img` (a crop around a candidate).
pub fn read_line(img: &Grey) -> Result<Vec<Word>, RedactError> {
    let factor = TARGET_HEIGHT
        .div_ceil(img.height.max(1))
        .clamp(1, MAX_FACTOR);
    recognize(img, factor, PageSegMode::PsmSingleLine)
}

/// The words of `img` upscaled by `factor`, prepared and read in `mode`.
fn recognize(img: &Grey, factor: usize, mode: PageSegMode) -> Result<Vec<Word>, RedactError> {
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
    Ok(parse_tsv(&tsv))
}

/// Words of Tesseract's TSV (level 5 rows: ..., confidence, text).
fn parse_tsv(tsv: &str) -> Vec<Word> {
    tsv.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 12 || cols[0] != "5" {
                return None;
            }
            let text = cols[11].trim();
            (!text.is_empty()).then(|| Word {
                text: text.to_string(),
                confidence: cols[10].parse().unwrap_or(0.0),
            })
        })
        .collect()
}

/// The words of `s` (split at spaces), each read with `confidence`: a
/// line as OCR would give it, for tests.
#[cfg(test)]
pub(crate) fn words(s: &str, confidence: f32) -> Vec<Word> {
    s.split(' ')
        .map(|t| Word {
            text: t.into(),
            confidence,
        })
        .collect()
}
