//! Where each frame's bytes lie in the stored object, without reading them:
//! fixed-size slices of native pixel data, or the fragments of encapsulated
//! pixel data grouped into frames (one frame of all fragments, one fragment
//! per frame, or by the Basic Offset Table).

use crate::error::PixelError;
use obscura_dicom::{PixelSpan, Source};

/// One frame's bytes: (offset, length) runs in the pixel stream.
pub type Runs = Vec<(u64, u64)>;

/// The frames of native pixel data of `frame_bytes` bytes each.
pub fn native(px: &PixelSpan, frame_bytes: u64, frames: u32) -> Result<Vec<Runs>, PixelError> {
    one_after_another(
        px,
        (frame_bytes, 8, "bytes"),
        frames,
        "Rows, Columns or Bits Allocated",
    )
}

/// The frames of bit-packed native pixel data (Bits Allocated 1) of
/// `samples` samples each. Frame k is bits k × `samples` to (k + 1) ×
/// `samples` of the value (PS3.5 8.1.1): its run covers the bytes those
/// bits touch, so a byte may hold the end of one frame and the start of the
/// next; the frame starts at bit (k × `samples`) mod 8 of its run.
pub fn packed(px: &PixelSpan, samples: u64, frames: u32) -> Result<Vec<Runs>, PixelError> {
    one_after_another(px, (samples, 1, "bits"), frames, "Rows or Columns")
}

/// `frames` frames of `size` units of `unit_bits` bits (named `units` in
/// errors) one after another from the value's start: frame k's run covers
/// the bytes its bits touch. A frame of no size is an error in `attribute`.
fn one_after_another(
    px: &PixelSpan,
    (size, unit_bits, units): (u64, u64, &str),
    frames: u32,
    attribute: &'static str,
) -> Result<Vec<Runs>, PixelError> {
    if size == 0 {
        return Err(PixelError::Attribute(attribute));
    }
    let frame_bits = size
        .checked_mul(unit_bits)
        .filter(|b| b.checked_mul(u64::from(frames)).is_some())
        .ok_or(PixelError::Attribute("Number of Frames"))?;
    if (frame_bits * u64::from(frames)).div_ceil(8) > px.value_bytes {
        return Err(PixelError::Malformed(format!(
            "{} bytes of pixel data for {frames} frames of {size} {units}",
            px.value_bytes
        )));
    }
    Ok((0..u64::from(frames))
        .map(|k| {
            let (start, end) = (k * frame_bits / 8, ((k + 1) * frame_bits).div_ceil(8));
            vec![(px.value_offset + start, end - start)]
        })
        .collect())
}

/// Read a little-endian item header: (group, element, length).
fn item_header(src: &dyn Source, pos: u64) -> Result<(u16, u16, u64), PixelError> {
    let mut head = [0u8; 8];
    src.read_at(pos, &mut head)?;
    Ok((
        u16::from_le_bytes([head[0], head[1]]),
        u16::from_le_bytes([head[2], head[3]]),
        u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]])),
    ))
}

/// The frames of encapsulated pixel data, from its item headers (the
/// fragments themselves are not read; the offset table is).
pub fn encapsulated(
    src: &dyn Source,
    px: &PixelSpan,
    frames: u32,
) -> Result<Vec<Runs>, PixelError> {
    let malformed = |what: &str| PixelError::Malformed(what.to_string());
    let end = px.value_offset + px.value_bytes;
    let mut pos = px.value_offset;
    let mut bot: Vec<u64> = Vec::new();
    let mut fragments: Runs = Vec::new();
    let mut first = true;
    while pos + 8 <= end {
        let (group, element, len) = item_header(src, pos)?;
        pos += 8;
        if (group, element) == (0xFFFE, 0xE0DD) {
            break;
        }
        if (group, element) != (0xFFFE, 0xE000) || pos + len > end {
            return Err(malformed("fragment items"));
        }
        if first {
            if len > 4 * u64::from(frames) + 4 || len % 4 != 0 {
                return Err(malformed("basic offset table"));
            }
            let mut table = vec![0u8; len as usize];
            src.read_at(pos, &mut table)?;
            bot = table
                .chunks_exact(4)
                .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
            first = false;
        } else {
            fragments.push((pos, len));
        }
        pos += len;
    }
    if fragments.is_empty() {
        return Err(malformed("no fragments"));
    }
    if frames == 1 {
        return Ok(vec![fragments]);
    }
    if fragments.len() == frames as usize {
        return Ok(fragments.into_iter().map(|f| vec![f]).collect());
    }
    if bot.len() == frames as usize && bot[0] == 0 && bot.windows(2).all(|w| w[0] < w[1]) {
        // offsets are relative to the first fragment's item tag
        let origin = fragments[0].0 - 8;
        let mut out: Vec<Runs> = vec![Vec::new(); frames as usize];
        for f in fragments {
            let rel = f.0 - 8 - origin;
            let i = bot.iter().rposition(|o| *o <= rel).unwrap_or(0);
            out[i].push(f);
        }
        if out.iter().any(Vec::is_empty) {
            return Err(malformed("basic offset table"));
        }
        return Ok(out);
    }
    Err(PixelError::Unsupported(
        "frames of encapsulated pixel data without an offset table".into(),
    ))
}

/// Read a frame's runs into one buffer of at most `limit` bytes.
pub fn read(src: &dyn Source, runs: &Runs, limit: u64) -> Result<Vec<u8>, PixelError> {
    let mut buf = vec![0u8; size(runs, limit)?];
    read_into(src, runs, &mut buf)?;
    Ok(buf)
}

/// The bytes of a frame's runs, at most `limit`.
pub(crate) fn size(runs: &Runs, limit: u64) -> Result<usize, PixelError> {
    let size: u64 = runs.iter().map(|(_, l)| l).sum();
    if size > limit {
        return Err(PixelError::TooLarge { size, limit });
    }
    Ok(size as usize)
}

/// Read a frame's runs one after another into `buf`, [`size`] bytes long.
pub(crate) fn read_into(src: &dyn Source, runs: &Runs, buf: &mut [u8]) -> Result<(), PixelError> {
    let mut at = 0usize;
    for &(off, len) in runs {
        let to = buf
            .get_mut(at..at + len as usize)
            .ok_or_else(|| PixelError::Malformed("a frame's runs longer than its buffer".into()))?;
        src.read_at(off, to)?;
        at += len as usize;
    }
    Ok(())
}
