//! Safe reading and writing of DICOM files for Obscura.
//!
//! This crate knows files and bytes, not de-identification. It reads a file
//! into a dicom-rs [`InMemDicomObject`](dicom_object::InMemDicomObject)
//! holding everything but the pixel data, after a bounds-checked
//! [preflight](preflight) that protects dicom-rs from hostile lengths, deep
//! nesting and UN sequences. It writes a new Part 10 file with a zeroed
//! preamble, a freshly built file meta group, the (changed) data set, and the
//! original pixel data bytes copied without decoding.

pub mod charset;
pub mod encoding;
pub mod error;
pub mod meta;
pub mod preflight;
pub mod read;
pub mod source;
pub mod write;

pub use error::{ReadError, WriteError};
pub use preflight::Limits;
pub use read::{DicomInput, PixelSpan};
pub use source::{FileSource, SeekSource, Source};
pub use write::{NativePixels, Parts};
