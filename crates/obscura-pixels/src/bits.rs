//! Bit-packed samples (Bits Allocated 1, PS3.5 8.1.1 and Annex D): eight
//! samples a byte, the first in its least significant bit. An object's
//! frames follow one another bit by bit (frame k starts at bit k × rows ×
//! columns), so a frame whose size is not a multiple of 8 starts or ends
//! inside a byte. Frames hold such samples unpacked, one a byte
//! ([`Samples::U1`](crate::Samples::U1)).

/// `count` samples (0 or 1, one a byte) from bit `offset` of `packed`;
/// `None` when `packed` holds fewer bits than that.
pub fn unpack(packed: &[u8], offset: u64, count: usize) -> Option<Vec<u8>> {
    let end = offset.checked_add(count as u64)?;
    if end > (packed.len() as u64).checked_mul(8)? {
        return None;
    }
    let bit = |i: u64| (packed[(i / 8) as usize] >> (i % 8)) & 1;
    let mut out = Vec::with_capacity(count);
    // the bits before the first whole byte, the whole bytes, the bits after
    let first_whole = offset.div_ceil(8) * 8;
    let last_whole = (end / 8 * 8).max(first_whole);
    out.extend((offset..first_whole.min(end)).map(bit));
    for &b in &packed[(first_whole / 8) as usize..(last_whole / 8) as usize] {
        out.extend((0..8).map(|i| (b >> i) & 1));
    }
    out.extend((last_whole.max(offset)..end).map(bit));
    Some(out)
}

/// Pack samples (any value but 0 is 1) eight a byte, the first in the
/// least significant bit; a last partial byte has its unused high bits 0.
/// Samples packed in pieces of a multiple of 8 are packed as one.
pub fn pack(samples: &[u8]) -> Vec<u8> {
    samples
        .chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |b, (i, &s)| b | (u8::from(s != 0) << i))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sample_is_the_least_significant_bit() {
        assert_eq!(pack(&[1, 0, 0, 0, 0, 0, 0, 0]), [0x01]);
        assert_eq!(pack(&[0, 0, 0, 0, 0, 0, 0, 1, 1, 1]), [0x80, 0x03]);
        assert_eq!(pack(&[0, 255, 7]), [0x06]);
        assert_eq!(
            unpack(&[0x80, 0x03], 0, 10).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
        );
        assert_eq!(unpack(&[0b1010_0110], 1, 3).unwrap(), [1, 1, 0]);
        assert_eq!(unpack(&[0xFF], 8, 0).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn frames_not_a_multiple_of_8_round_trip_packed_one_after_another() {
        // three 61 × 67 frames (4,087 samples: frames 1 and 2 start inside
        // a byte), packed contiguously and read back frame by frame
        let size: usize = 61 * 67;
        let frames: Vec<Vec<u8>> = (0..3u32)
            .map(|f| {
                (0..size as u32)
                    .map(|i| u8::from((i * 7 + f * 13) % 5 < 2))
                    .collect()
            })
            .collect();
        let all: Vec<u8> = frames.concat();
        let packed = pack(&all);
        assert_eq!(packed.len(), (3 * size).div_ceil(8));
        // packing in pieces of a multiple of 8 is packing the whole
        let pieces: Vec<u8> = all.chunks(64).flat_map(pack).collect();
        assert_eq!(pieces, packed);
        for (k, frame) in frames.iter().enumerate() {
            let offset = (k * size) as u64;
            assert_eq!(
                unpack(&packed, offset, size).as_ref(),
                Some(frame),
                "frame {k}"
            );
            // from the bytes the frame touches only, as the decoder reads it
            let (start, end) = (k * size / 8, ((k + 1) * size).div_ceil(8));
            let own = unpack(&packed[start..end], offset % 8, size);
            assert_eq!(own.as_ref(), Some(frame), "frame {k} from its own bytes");
        }
        // the padding bits of the last byte are 0
        assert_eq!(packed.last().unwrap() >> ((3 * size) % 8), 0);
    }

    #[test]
    fn too_few_bits_is_none_not_a_panic() {
        assert!(unpack(&[0xFF], 1, 8).is_none());
        assert!(unpack(&[], 0, 1).is_none());
        assert!(unpack(&[0; 4], u64::MAX, 2).is_none());
    }
}
