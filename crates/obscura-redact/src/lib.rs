//! Burned-in text (PS3.15 Annex E, Clean Pixel Data): find it in an
//! object's decoded frames, decide what identifies, redact it, verify.
//!
//! 1. A cheap pass ([`candidates`]) finds boxes that may hold a line of
//!    text: thin strokes (a morphological top-hat) joined along rows, and
//!    character-like pieces of strokes chained along a line, with how much
//!    each looks like text. An image without any costs no OCR.
//! 2. Outside an ultrasound image's diagnostic regions every candidate is
//!    blacked out unread. Inside (or in images without regions) each line
//!    is read by Tesseract (one engine per thread), upscaled for small
//!    fonts, with no confidence cut-off.
//! 3. [`Identity::decide`]: a line goes when it holds the object's identity
//!    (names, IDs, dates in any format, found again by `obscura-detect`,
//!    and OCR's near misses of them), a pattern's, or a long number; and,
//!    when its strokes look like text, when OCR reads nothing in it or a
//!    word that is not imaging vocabulary: recall does not hang on OCR
//!    reading the text.
//! 4. [`inspect`] redacts every frame (a box found in one frame is redacted
//!    in all: banners stay put across a cine; inside an ultrasound's
//!    regions, lines whose strokes move between frames are anatomy, not
//!    text, and go only for what OCR reads in them), reads the result again, and
//!    fails if text that must go remains. The caller writes the frames back
//!    natively (lossless) with `obscura-dicom`. [`Mode::Check`] runs the
//!    cheap pass alone: whether the pixels may hold text at all.
//!
//! Findings carry a place and a reason, never the text read.

mod candidates;
mod decide;
mod grey;
mod header;
mod kept;
mod object;
mod ocr;
mod rect;
mod renderings;
mod still;
mod tophat;
mod zeros;

pub use candidates::{candidates, Candidate, Candidates, Sought};
pub use decide::{Identity, Looks, Reason};
pub use grey::Grey;
pub use header::{identity_of, regions_of};
pub use object::{inspect, Found, Mode, NativeFrames, Outcome};
pub use ocr::{read_line, release_engine, Word};
pub use rect::Rect;

/// Why an object's pixels could not be cleaned.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The pixel data could not be decoded.
    #[error("pixel data: {0}")]
    Pixels(#[from] obscura_pixels::PixelError),
    /// Tesseract failed (not installed, no `eng` data...).
    #[error("OCR: {0}")]
    Ocr(String),
    /// Frames could not be kept in, or read back from, a temporary file.
    #[error("keeping frames in a temporary file: {0}")]
    Spill(std::io::Error),
    /// Verification read text that must go in the redacted frames.
    #[error("burned-in text remains after redaction ({0})")]
    TextRemains(&'static str),
}
