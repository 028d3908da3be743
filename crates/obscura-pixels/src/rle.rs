//! RLE Lossless (PS3.5 Annex G) for 8, 16 and 32 bits allocated: one
//! segment per byte of each sample, most significant first, each PackBits
//! encoded. dicom-rs's adapter stops at 16 bits (RT doses are 32).

use crate::error::PixelError;

/// Segments a frame may have (the header's fifteen offsets).
const MAX_SEGMENTS: usize = 15;

fn bad(reason: &str) -> PixelError {
    PixelError::Codec {
        codec: "RLE Lossless",
        reason: reason.to_string(),
    }
}

/// Decode one frame of `pixels` pixels of `samples` samples of `bytes`
/// bytes each: little-endian samples, pixel-interleaved.
pub fn decode(
    data: &[u8],
    pixels: usize,
    samples: usize,
    bytes: usize,
) -> Result<Vec<u8>, PixelError> {
    let word = |i: usize| -> Option<usize> {
        let b = data.get(4 * i..4 * i + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = word(0).ok_or_else(|| bad("no RLE header"))?;
    if count != samples * bytes || count > MAX_SEGMENTS {
        return Err(bad("segments do not match the samples"));
    }
    let offsets: Vec<usize> = (1..=count)
        .map(word)
        .collect::<Option<_>>()
        .ok_or_else(|| bad("no RLE header"))?;
    let stride = samples * bytes;
    let mut out = vec![0u8; pixels * stride];
    let mut plane = Vec::with_capacity(pixels);
    for (i, &start) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(data.len());
        let segment = data
            .get(start..end)
            .ok_or_else(|| bad("segment offsets out of the frame"))?;
        unpack(segment, pixels, &mut plane);
        if plane.len() < pixels {
            return Err(bad(
                "a segment decodes to fewer bytes than the frame's pixels",
            ));
        }
        // segment i is byte i % bytes (most significant first) of sample i / bytes
        let at = (i / bytes) * bytes + (bytes - 1 - i % bytes);
        for (dst, &v) in out[at..].iter_mut().step_by(stride).zip(&plane) {
            *dst = v;
        }
    }
    Ok(out)
}

/// PackBits: up to `want` bytes of `segment` into `out` (cleared first).
fn unpack(segment: &[u8], want: usize, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < segment.len() && out.len() < want {
        let n = segment[i] as i8;
        i += 1;
        match n {
            0..=127 => {
                let end = (i + n as usize + 1).min(segment.len());
                out.extend_from_slice(&segment[i..end]);
                i = end;
            }
            -127..=-1 => {
                if let Some(&v) = segment.get(i) {
                    out.extend(std::iter::repeat_n(v, (1 - n as isize) as usize));
                }
                i += 1;
            }
            -128 => {}
        }
    }
    out.truncate(want);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_runs_and_literals() {
        let mut out = Vec::new();
        // a literal of 3, a run of 4 of 9, a no-op, a literal of 1
        unpack(&[2, 1, 2, 3, 0xFD, 9, 0x80, 0, 7], 100, &mut out);
        assert_eq!(out, [1, 2, 3, 9, 9, 9, 9, 7]);
        unpack(&[0xFD, 9], 2, &mut out);
        assert_eq!(out, [9, 9]);
    }

    #[test]
    fn segments_are_bytes_most_significant_first() {
        // two pixels of one 16-bit sample: 0x0102, 0x0304
        let mut data = vec![0u8; 64];
        data[0] = 2;
        data[4] = 64;
        data[8] = 67;
        data.extend([1, 1, 3, 1, 2, 4]);
        assert_eq!(decode(&data, 2, 1, 2).unwrap(), [2, 1, 4, 3]);
        // a segment count that does not match is refused
        assert!(decode(&data, 2, 1, 4).is_err());
        assert!(decode(&data[..10], 2, 1, 2).is_err());
    }
}
