//! A cine's decoded frames kept in an unnamed temporary file while they are
//! read, so that redacting them does not decode them a second time (for
//! encapsulated frames, where decoding costs far more than a write and a
//! read back). One frame is held in memory at a time.

use crate::RedactError;
use obscura_pixels::{Frame, Samples};
use std::fs::File;
use std::io::{Read, Seek, Write};

/// Decoded frames, read back in the order they were kept.
pub struct Kept {
    file: File,
    /// The first frame's description and its sample bytes: an object's
    /// frames all share them.
    like: Option<(Frame, usize)>,
    reading: bool,
}

impl Kept {
    /// An empty store.
    pub fn new() -> Result<Self, RedactError> {
        Ok(Kept {
            file: tempfile::tempfile().map_err(RedactError::Spill)?,
            like: None,
            reading: false,
        })
    }

    /// Keep a frame, after those already kept: of the first one's
    /// description and size (an object's frames all share them).
    pub fn push(&mut self, frame: &Frame) -> Result<(), RedactError> {
        let bytes = frame.to_le_bytes();
        let like = (description(frame), bytes.len());
        if self.like.as_ref().is_some_and(|first| *first != like) {
            let unlike = std::io::Error::other("a frame unlike the first");
            return Err(RedactError::Spill(unlike));
        }
        self.file.write_all(&bytes).map_err(RedactError::Spill)?;
        self.like.get_or_insert(like);
        Ok(())
    }

    /// The next frame kept, in the order they were kept.
    pub fn next_frame(&mut self) -> Result<Frame, RedactError> {
        let short = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        let (like, len) = self
            .like
            .as_ref()
            .ok_or_else(|| RedactError::Spill(short()))?;
        if !self.reading {
            self.file.rewind().map_err(RedactError::Spill)?;
            self.reading = true;
        }
        let mut bytes = vec![0u8; *len];
        self.file
            .read_exact(&mut bytes)
            .map_err(RedactError::Spill)?;
        Ok(Frame {
            samples: Samples::from_bytes(bytes, like.samples.bits(), false),
            ..*like
        })
    }
}

/// A frame's description, without its samples.
fn description(frame: &Frame) -> Frame {
    Frame {
        samples: Samples::from_bytes(Vec::new(), frame.samples.bits(), false),
        ..*frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obscura_pixels::Photometric;

    #[test]
    fn frames_come_back_in_order_and_unchanged() {
        let frame = |v: u16| Frame {
            width: 2,
            height: 1,
            samples_per_pixel: 3,
            bits_stored: 12,
            signed: true,
            photometric: Photometric::Rgb,
            samples: Samples::U16(vec![v, 1, 2, 0xF800, v, 0x0FFF]),
        };
        let mut kept = Kept::new().unwrap();
        for v in 0..3 {
            kept.push(&frame(v)).unwrap();
        }
        for v in 0..3 {
            assert_eq!(kept.next_frame().unwrap(), frame(v));
        }
        assert!(kept.next_frame().is_err());
        assert!(Kept::new().unwrap().next_frame().is_err());
        let mut kept = Kept::new().unwrap();
        kept.push(&frame(0)).unwrap();
        let wider = Frame {
            width: 3,
            samples: Samples::U16(vec![0; 9]),
            ..frame(0)
        };
        assert!(kept.push(&wider).is_err(), "a frame unlike the first");
    }
}
