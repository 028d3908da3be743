//! Frames kept in an unnamed temporary file, one held in memory at a time:
//! a cine's decoded frames while they are read, so that redacting them does
//! not decode them a second time (for encapsulated frames, where decoding
//! costs far more than a write and a read back); and the redacted frames,
//! handed over as the object's native Pixel Data (1-bit samples, kept one
//! a byte, packed then).

use crate::{NativeFrames, RedactError};
use obscura_pixels::{bits, Frame, Samples};
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

    /// The frames kept, as native Pixel Data (little endian, from the
    /// file's start; 1-bit samples packed, every frame after the one
    /// before bit by bit); `None` when none was.
    pub fn into_native(mut self) -> Result<Option<NativeFrames>, RedactError> {
        let Some((like, _)) = self.like else {
            return Ok(None);
        };
        let mut len = self.file.stream_position().map_err(RedactError::Spill)?;
        self.file.rewind().map_err(RedactError::Spill)?;
        let vr = match like.samples {
            Samples::U1(_) | Samples::U8(_) => *b"OB",
            Samples::U16(_) | Samples::U32(_) => *b"OW",
        };
        if let Samples::U1(_) = like.samples {
            (self.file, len) = packed(&mut self.file)?;
        }
        Ok(Some(NativeFrames {
            file: self.file,
            len,
            vr,
            photometric: like.photometric,
            bits_stored: like.bits_stored,
        }))
    }
}

/// Samples packed at a time: a multiple of 8, so that the pieces packed
/// one after another are the whole packed.
const PACK_CHUNK: u64 = 1 << 20;

/// The 1-bit samples of `file` (one a byte, from its position to its end)
/// packed into another temporary file, rewound, and its length.
fn packed(file: &mut File) -> Result<(File, u64), RedactError> {
    let mut out = tempfile::tempfile().map_err(RedactError::Spill)?;
    let (mut buf, mut len) = (Vec::new(), 0u64);
    loop {
        buf.clear();
        let n = Read::take(&mut *file, PACK_CHUNK)
            .read_to_end(&mut buf)
            .map_err(RedactError::Spill)?;
        if n == 0 {
            break;
        }
        let packed = bits::pack(&buf);
        out.write_all(&packed).map_err(RedactError::Spill)?;
        len += packed.len() as u64;
    }
    out.rewind().map_err(RedactError::Spill)?;
    Ok((out, len))
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

    #[test]
    fn frames_kept_are_handed_over_as_native_pixel_data() {
        assert!(Kept::new().unwrap().into_native().unwrap().is_none());
        let frame = Frame {
            width: 2,
            height: 1,
            samples_per_pixel: 1,
            bits_stored: 12,
            signed: false,
            photometric: Photometric::Monochrome2,
            samples: Samples::U16(vec![0x0102, 0x0304]),
        };
        let mut kept = Kept::new().unwrap();
        kept.push(&frame).unwrap();
        kept.push(&frame).unwrap();
        let mut native = kept.into_native().unwrap().unwrap();
        let mut bytes = Vec::new();
        native.file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, [2, 1, 4, 3, 2, 1, 4, 3]);
        assert_eq!(native.len, 8);
        assert_eq!(native.vr, *b"OW");
        assert_eq!(
            (native.photometric, native.bits_stored),
            (Photometric::Monochrome2, 12)
        );
    }

    #[test]
    fn one_bit_frames_are_packed_one_after_another() {
        // two 61 × 67 frames (4,087 samples: the second starts at bit 7 of
        // a byte): packed as one run of bits, and read back with pixels'
        // unpacking
        let size = 61 * 67;
        let frame = |f: u32| Frame {
            width: 61,
            height: 67,
            samples_per_pixel: 1,
            bits_stored: 1,
            signed: false,
            photometric: Photometric::Monochrome2,
            samples: Samples::U1(
                (0..size)
                    .map(|i| u8::from((i + f).is_multiple_of(3)))
                    .collect(),
            ),
        };
        let mut kept = Kept::new().unwrap();
        kept.push(&frame(0)).unwrap();
        kept.push(&frame(1)).unwrap();
        let mut native = kept.into_native().unwrap().unwrap();
        let mut bytes = Vec::new();
        native.file.read_to_end(&mut bytes).unwrap();
        assert_eq!(native.len, (2 * size as u64).div_ceil(8));
        assert_eq!(bytes.len() as u64, native.len);
        assert_eq!(native.vr, *b"OB");
        assert_eq!(bytes[0], 0b0100_1001, "the first sample in the lowest bit");
        for f in 0..2u32 {
            let got = bits::unpack(&bytes, u64::from(f) * size as u64, size as usize).unwrap();
            assert_eq!(Samples::U1(got), frame(f).samples, "frame {f}");
        }
    }
}
