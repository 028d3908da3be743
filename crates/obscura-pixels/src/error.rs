//! Why pixel data could not be decoded or rendered. Messages name
//! attributes, sizes and codecs, never element values, so they are safe to
//! log and to send back to a client.

use thiserror::Error;

/// Why a frame could not be decoded or rendered.
#[derive(Debug, Error)]
pub enum PixelError {
    /// The object could not be read as DICOM.
    #[error("reading the object: {0}")]
    Read(#[from] obscura_dicom::ReadError),
    /// Reading the pixel data failed.
    #[error("reading the pixel data: {0}")]
    Io(#[from] std::io::Error),
    /// The object has no top-level pixel data.
    #[error("the object has no pixel data")]
    NoPixelData,
    /// The frame asked for does not exist.
    #[error("frame {number} does not exist (the object has {frames})")]
    NoSuchFrame {
        /// The frame asked for, from 0.
        number: u32,
        /// Frames in the object.
        frames: u32,
    },
    /// An Image Pixel attribute is missing or out of range.
    #[error("{0} is missing or invalid")]
    Attribute(&'static str),
    /// Valid, but not something this crate decodes.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A frame is larger than the configured limit.
    #[error("a frame of {size} bytes is above the limit of {limit} bytes")]
    TooLarge {
        /// Bytes the frame needs (decoded, or as stored).
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The pixel data does not match what the header declares.
    #[error("malformed pixel data: {0}")]
    Malformed(String),
    /// A codec refused the frame's bit stream.
    #[error("the {codec} decoder failed: {reason}")]
    Codec {
        /// The codec (transfer syntax name).
        codec: &'static str,
        /// What it said (about the bit stream, not the patient).
        reason: String,
    },
    /// A codec panicked on the frame's bit stream (caught).
    #[error("the {0} decoder failed on a malformed bit stream")]
    CodecPanic(&'static str),
    /// Encoding the rendered image failed.
    #[error("encoding the rendered image: {0}")]
    Encode(String),
}

impl PixelError {
    /// A short, stable reason code (for HTTP answers and audit records).
    pub fn code(&self) -> &'static str {
        match self {
            PixelError::Read(_) | PixelError::Io(_) => "unreadable",
            PixelError::NoPixelData => "no-pixel-data",
            PixelError::NoSuchFrame { .. } => "no-such-frame",
            PixelError::Attribute(_) => "bad-image-attributes",
            PixelError::Unsupported(_) => "unsupported-pixel-data",
            PixelError::TooLarge { .. } => "frame-too-large",
            PixelError::Malformed(_) => "malformed-pixel-data",
            PixelError::Codec { .. } | PixelError::CodecPanic(_) => "undecodable-pixel-data",
            PixelError::Encode(_) => "encode-failed",
        }
    }
}
