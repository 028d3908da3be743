//! Pixel data for Obscura: decode what is stored (native, 1-bit packed
//! included, RLE, JPEG
//! baseline/extended/lossless, JPEG-LS, JPEG 2000; grey, RGB, YBR and
//! palette colour; one frame at a time), window it to 8 bits (PS3.3 C.11),
//! and encode PNG or JPEG. Used by the archive's rendered resources
//! (WADO-RS, PS3.18 9.5) and meant for burned-in text detection and
//! redaction: a [`Frame`] holds the stored sample values, so changed
//! samples can be written back losslessly.
//!
//! Knows DICOM objects and pixels; no HTTP, no vault. Codecs are dicom-rs's
//! (`dicom-transfer-syntax-registry`); a codec that fails or panics on a
//! malformed bit stream is an error, never a panic of the caller.
//!
//! ```no_run
//! use obscura_pixels::{render, DecodeLimits, Decoder};
//! let d = Decoder::open_path("ct.dcm".as_ref(), DecodeLimits::default())?;
//! let frame = d.frame(0)?;
//! let png = render(&frame, d.info(), None).fit(128, 128).to_png()?;
//! # Ok::<(), obscura_pixels::PixelError>(())
//! ```

pub mod bits;
mod decode;
mod encode;
mod error;
mod frame;
pub mod frames;
mod info;
mod jpeg;
mod render;
mod rle;
mod voi;

pub use decode::{DecodeLimits, Decoder};
pub use encode::MAX_VIEWPORT;
pub use error::PixelError;
pub use frame::{Frame, Samples, ValueMap};
pub use info::{ImageInfo, Lut, Palette, Photometric};
pub use render::{grey_levels, render, Image8};
pub use voi::{VoiFunction, Window};
