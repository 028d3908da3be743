//! Errors of reading and writing DICOM files. Messages name tags, offsets and
//! sizes, never element values, so they are safe to log.

use thiserror::Error;

/// Why a file could not be read as DICOM.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The underlying I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not DICOM at all (no DICM marker and no plausible data set).
    #[error("not a DICOM file")]
    NotDicom,
    /// The file is empty.
    #[error("empty file")]
    Empty,
    /// The file ends inside an element or its header.
    #[error(
        "truncated: element {tag} at offset {offset} needs {needed} bytes, {available} available"
    )]
    Truncated {
        /// The element being read, as (gggg,eeee).
        tag: String,
        /// Byte offset of the element header in the data set stream.
        offset: u64,
        /// Bytes the element declares.
        needed: u64,
        /// Bytes actually left.
        available: u64,
    },
    /// The structure is not valid DICOM encoding.
    #[error("malformed at offset {offset}: {reason}")]
    Malformed {
        /// Byte offset in the data set stream.
        offset: u64,
        /// What is wrong, with no values.
        reason: String,
    },
    /// Sequences are nested deeper than the configured limit.
    #[error("sequences nested deeper than {limit} levels")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// The non-pixel part of the file is larger than the configured limit.
    #[error("header of {size} bytes exceeds the limit of {limit} bytes")]
    HeaderTooLarge {
        /// Bytes needed.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The transfer syntax cannot be read without changing pixel data.
    #[error("unsupported transfer syntax {0}")]
    UnsupportedTransferSyntax(String),
    /// The deflated data set could not be inflated.
    #[error("deflated data set is corrupt: {0}")]
    Inflate(String),
    /// dicom-rs rejected the (already bounds-checked) header.
    #[error("data set could not be decoded: {0}")]
    Decode(String),
}

/// Why an output file could not be written.
#[derive(Debug, Error)]
pub enum WriteError {
    /// The underlying I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// dicom-rs could not encode the data set.
    #[error("data set could not be encoded: {0}")]
    Encode(String),
    /// A required attribute for the file meta information is missing.
    #[error("missing {0}, required for the file meta information")]
    MissingAttribute(&'static str),
}

/// A dicom-rs error message made safe to log: anything it quotes (which may
/// be a value) is replaced by `…`, and the message is cut to 200 characters.
pub(crate) fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push(c);
            }
            Some(_) => {}
            None if matches!(c, '"' | '`' | '\'') => {
                quote = Some(c);
                out.push(c);
                out.push('…');
            }
            None => out.push(c),
        }
    }
    out.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_values_are_redacted() {
        assert_eq!(
            super::redact("bad value `DOE^JOHN` in PN"),
            "bad value `…` in PN"
        );
        assert_eq!(
            super::redact("could not parse \"19610412\""),
            "could not parse \"…\""
        );
    }
}
