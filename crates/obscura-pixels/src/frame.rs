//! A decoded frame: the stored sample values, pixel-interleaved, row by row,
//! exactly as the object holds them (no windowing, no colour conversion
//! beyond what a codec does itself), so that what is changed in it can be
//! written back losslessly.

use crate::info::{ImageInfo, Photometric};
use std::ops::Range;

/// Sample values, 1, 8, 16 or 32 bits allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Samples {
    /// Bits Allocated 1: one sample a byte, 0 or 1 (unpacked; [`crate::bits`]
    /// packs an object's frames).
    U1(Vec<u8>),
    /// Bits Allocated 8.
    U8(Vec<u8>),
    /// Bits Allocated 16 (two's complement bit patterns when signed).
    U16(Vec<u16>),
    /// Bits Allocated 32 (two's complement bit patterns when signed).
    U32(Vec<u32>),
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::U1(v) | Samples::U8(v) => v.len(),
            Samples::U16(v) => v.len(),
            Samples::U32(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes to samples of `bits` bits allocated (1, 8, 16 or 32; 8-bit
    /// samples keep the bytes, and so do 1-bit ones, given unpacked, one a
    /// byte). The byte order is chosen once, not per
    /// sample, so that the loop vectorises.
    pub fn from_bytes(bytes: Vec<u8>, bits: u16, big_endian: bool) -> Samples {
        fn words<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
            // whole arrays, in a loop that vectorises
            bytes.as_chunks::<N>().0.iter().map(|&c| f(c)).collect()
        }
        match (bits, big_endian) {
            (1, _) => Samples::U1(bytes),
            (8, _) => Samples::U8(bytes),
            (16, false) => Samples::U16(words(&bytes, u16::from_le_bytes)),
            (16, true) => Samples::U16(words(&bytes, u16::from_be_bytes)),
            (_, false) => Samples::U32(words(&bytes, u32::from_le_bytes)),
            (_, true) => Samples::U32(words(&bytes, u32::from_be_bytes)),
        }
    }

    /// Samples of `bits` bits allocated (1, 8, 16 or 32) from `len` bytes
    /// that `fill` writes straight into their buffer, as
    /// [`from_bytes`](Self::from_bytes) would take them: a frame is not
    /// copied a second time (of 3 megapixels, a millisecond).
    pub fn read<E>(
        bits: u16,
        big_endian: bool,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<Samples, E> {
        /// Whole words of `len` bytes filled by `fill`, then put in the
        /// machine's byte order by `swap` where theirs differs.
        fn words<T: bytemuck::Pod, E>(
            len: usize,
            fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
            swapped: bool,
            swap: fn(T) -> T,
        ) -> Result<Vec<T>, E> {
            let size = std::mem::size_of::<T>();
            let mut words = vec![T::zeroed(); len.div_ceil(size)];
            fill(&mut bytemuck::cast_slice_mut(&mut words)[..len])?;
            // a last part-word is dropped, as from_bytes drops it
            words.truncate(len / size);
            if swapped {
                for w in &mut words {
                    *w = swap(*w);
                }
            }
            Ok(words)
        }
        let swapped = big_endian != cfg!(target_endian = "big");
        Ok(match bits {
            1 | 8 => {
                let mut bytes = vec![0u8; len];
                fill(&mut bytes)?;
                Samples::from_bytes(bytes, bits, big_endian)
            }
            16 => Samples::U16(words(len, fill, swapped, u16::swap_bytes)?),
            _ => Samples::U32(words(len, fill, swapped, u32::swap_bytes)?),
        })
    }

    /// Bits allocated a sample: 1, 8, 16 or 32.
    pub fn bits(&self) -> u16 {
        match self {
            Samples::U1(_) => 1,
            Samples::U8(_) => 8,
            Samples::U16(_) => 16,
            Samples::U32(_) => 32,
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// 1 (grey or palette indices) or 3 (colour).
    pub samples_per_pixel: u16,
    /// Bits Stored: the low bits of each sample that hold its value.
    pub bits_stored: u16,
    /// Pixel Representation 1: values are two's complement in `bits_stored` bits.
    pub signed: bool,
    /// What the samples are after decoding: the stored interpretation, or
    /// RGB where the codec converted colour (JPEG, JPEG 2000), or YBR_FULL
    /// for native YBR_FULL_422 (whose shared chroma is repeated per pixel).
    pub photometric: Photometric,
    /// `width × height × samples_per_pixel` samples, pixel-interleaved.
    pub samples: Samples,
}

impl Frame {
    /// The value of sample `i`: its low `bits_stored` bits, sign-extended
    /// when signed.
    pub fn value(&self, i: usize) -> i64 {
        let raw = match &self.samples {
            Samples::U1(v) | Samples::U8(v) => u32::from(v[i]),
            Samples::U16(v) => u32::from(v[i]),
            Samples::U32(v) => v[i],
        };
        self.extend(raw & self.stored_mask())
    }

    /// The mask of the stored bits.
    fn stored_mask(&self) -> u32 {
        (((1u64 << self.bits_stored) - 1) & u64::from(u32::MAX)) as u32
    }

    /// The value of the stored bit pattern `bits` (below `1 << bits_stored`):
    /// itself, or sign-extended when signed.
    pub fn extend(&self, bits: u32) -> i64 {
        let n = u32::from(self.bits_stored);
        if self.signed && bits >> (n - 1) == 1 {
            i64::from(bits) - (1i64 << n)
        } else {
            i64::from(bits)
        }
    }

    /// For signed values, the shift that brings the sign bit of the stored
    /// bits to bit 31 (Bits Stored is at most 32: a value fits an `i32`).
    fn sign_shift(&self) -> Option<u32> {
        self.signed
            .then(|| 32 - u32::from(self.bits_stored).min(32))
    }

    /// The least and the greatest value (none without samples), in one
    /// pass that vectorises (16-bit lanes for samples of 16 bits or fewer,
    /// 32-bit lanes beyond).
    pub fn range(&self) -> Option<(i64, i64)> {
        fn fold<S: Copy, T: Ord + Copy>(v: &[S], start: (T, T), value: impl Fn(S) -> T) -> (T, T) {
            v.iter().fold(start, |(lo, hi), &s| {
                let x = value(s);
                (lo.min(x), hi.max(x))
            })
        }
        fn narrow<S: Copy + Into<u16>>(v: &[S], bits_stored: u16, signed: bool) -> (i64, i64) {
            let bits = bits_stored.min(16);
            let mask = ((1u32 << bits) - 1) as u16;
            if signed {
                // the sign bit of the stored bits brought to bit 15
                let shift = 16 - bits;
                let (lo, hi) = fold(v, (i16::MAX, i16::MIN), |s| {
                    (((s.into() & mask) << shift) as i16) >> shift
                });
                (lo.into(), hi.into())
            } else if bits < 16 {
                // in signed lanes: SSE2 has their min and max, not the
                // unsigned ones'
                let (lo, hi) = fold(v, (i16::MAX, i16::MIN), |s| (s.into() & mask) as i16);
                (lo.into(), hi.into())
            } else {
                let (lo, hi) = fold(v, (u16::MAX, u16::MIN), |s| s.into() & mask);
                (lo.into(), hi.into())
            }
        }
        let range = match &self.samples {
            Samples::U1(v) | Samples::U8(v) => narrow(v, self.bits_stored, self.signed),
            Samples::U16(v) => narrow(v, self.bits_stored, self.signed),
            Samples::U32(v) => {
                let mask = self.stored_mask();
                match self.sign_shift() {
                    Some(shift) => {
                        let (lo, hi) =
                            fold(v, (i32::MAX, i32::MIN), |s| sign_extend(s & mask, shift));
                        (lo.into(), hi.into())
                    }
                    None => {
                        let (lo, hi) = fold(v, (u32::MAX, u32::MIN), |s| s & mask);
                        (lo.into(), hi.into())
                    }
                }
            }
        };
        (!self.samples.is_empty()).then_some(range)
    }

    /// `visit` of the samples of `run` and of the function from a sample's
    /// bits to its value, width and sign matched once: each case is a loop
    /// of its own, without a branch per sample.
    fn visit<V: Visit>(&self, run: Range<usize>, visit: V) -> V::Out {
        let mask = self.stored_mask();
        let shift = self.sign_shift().unwrap_or(0);
        let signed = |s: u32| i64::from(sign_extend(s & mask, shift));
        let unsigned = |s: u32| i64::from(s & mask);
        match (&self.samples, self.signed) {
            (Samples::U1(v) | Samples::U8(v), true) => visit.samples(&v[run], signed),
            (Samples::U1(v) | Samples::U8(v), false) => visit.samples(&v[run], unsigned),
            (Samples::U16(v), true) => visit.samples(&v[run], signed),
            (Samples::U16(v), false) => visit.samples(&v[run], unsigned),
            (Samples::U32(v), true) => visit.samples(&v[run], signed),
            (Samples::U32(v), false) => visit.samples(&v[run], unsigned),
        }
    }

    /// `f` of the value of every `step`-th sample of `run` from its first
    /// (see [`value`](Self::value)), in order, width and sign matched once.
    pub fn each_every(&self, run: Range<usize>, step: usize, f: impl FnMut(i64)) {
        /// `f` of every `step`-th sample from the first.
        struct Every<F>(usize, F);
        impl<F: FnMut(i64)> Visit for Every<F> {
            type Out = ();
            fn samples<S: Copy + Into<u32>>(self, v: &[S], value: impl Fn(u32) -> i64) {
                let Every(step, mut f) = self;
                v.iter()
                    .step_by(step.max(1))
                    .for_each(|&s| f(value(s.into())));
            }
        }
        self.visit(run, Every(step, f));
    }

    /// Every value, in order (see [`value`](Self::value)).
    pub fn values(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.samples.len()).map(|i| self.value(i))
    }

    /// The samples as native little-endian bytes (pixel-interleaved): the
    /// Pixel Data value of this frame in Explicit VR Little Endian, for
    /// writing back a frame whose samples were changed. 1-bit samples stay
    /// one a byte: where a frame's bits lie depends on the frames before
    /// it, so an object's frames are packed together ([`crate::bits::pack`]).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.samples {
            Samples::U1(v) | Samples::U8(v) => v.clone(),
            Samples::U16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Samples::U32(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }

    /// This frame as Explicit VR Little Endian holds it, laid out as its
    /// object's `info` says, on its own (a WADO-RS frame, PS3.18 8.7.3.3.1):
    /// colour by plane when planar, 1-bit samples packed from bit 0 of the
    /// first byte. None for YBR_FULL_422, whose shared chroma this frame
    /// repeats per pixel.
    pub fn to_stored_le_bytes(&self, info: &ImageInfo) -> Option<Vec<u8>> {
        if info.photometric == Photometric::YbrFull422 {
            return None;
        }
        if let Samples::U1(v) = &self.samples {
            return Some(crate::bits::pack(v));
        }
        let bytes = self.to_le_bytes();
        let spp = usize::from(self.samples_per_pixel);
        if !info.planar || spp < 2 || self.samples.is_empty() {
            return Some(bytes);
        }
        let sample = bytes.len() / self.samples.len();
        let pixels = bytes.chunks_exact(sample * spp);
        let plane = |s: usize| {
            pixels
                .clone()
                .flat_map(move |p| &p[s * sample..(s + 1) * sample])
        };
        Some((0..spp).flat_map(plane).copied().collect())
    }
}

/// `f` of the values of a frame's samples, made once and taken of any run
/// of them in turn (a pass over a run's levels can follow it while they are
/// in the cache): with 16 bits stored or fewer and more samples than bit
/// patterns, `f` is taken once per pattern and the samples looked up in
/// that table; otherwise of each sample, width and sign matched once a run.
pub struct ValueMap<'a, T, F> {
    frame: &'a Frame,
    f: F,
    /// `f` of each stored bit pattern's value, when looked up.
    table: Option<Box<[T; 1 << 16]>>,
}

impl<'a, T: Copy + Default, F: Fn(i64) -> T> ValueMap<'a, T, F> {
    /// `f` of `frame`'s values.
    pub fn new(frame: &'a Frame, f: F) -> Self {
        let patterns = u64::from(frame.stored_mask()) + 1;
        let table = (frame.bits_stored <= 16 && patterns < frame.samples.len() as u64).then(|| {
            // indexed by a 16-bit pattern: within the table, no bounds check
            let mut table: Box<[T; 1 << 16]> = vec![T::default(); 1 << 16]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("the length is 1 << 16"));
            for (bits, entry) in table.iter_mut().enumerate().take(patterns as usize) {
                *entry = f(frame.extend(bits as u32));
            }
            table
        });
        ValueMap { frame, f, table }
    }

    /// `f` of every sample's value, in order.
    pub fn all(&self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.frame.samples.len());
        self.extend(0..self.frame.samples.len(), &mut out);
        out
    }

    /// `f` of the values of the samples of `run` (within the frame's),
    /// appended to `out` in order.
    pub fn extend(&self, run: Range<usize>, out: &mut Vec<T>) {
        if let Some(table) = &self.table {
            let m = self.frame.stored_mask() as u16;
            let look = |s: u16| table[usize::from(s & m)];
            match &self.frame.samples {
                Samples::U1(v) | Samples::U8(v) => {
                    out.extend(v[run].iter().map(|&s| look(s.into())))
                }
                Samples::U16(v) => out.extend(v[run].iter().map(|&s| look(s))),
                Samples::U32(v) => out.extend(v[run].iter().map(|&s| look(s as u16))),
            }
            return;
        }
        /// `f` of each sample, appended.
        struct Each<'o, F, T>(&'o F, &'o mut Vec<T>);
        impl<T, F: Fn(i64) -> T> Visit for Each<'_, F, T> {
            type Out = ();
            fn samples<S: Copy + Into<u32>>(self, v: &[S], value: impl Fn(u32) -> i64) {
                let Each(f, out) = self;
                out.extend(v.iter().map(|&s| f(value(s.into()))));
            }
        }
        self.frame.visit(run, Each(&self.f, out));
    }
}

/// What [`Frame::visit`] does with a frame's samples, given the function
/// from a sample's bits to its value.
trait Visit {
    /// What comes of it.
    type Out;
    /// Visit the samples `v`, whose values `value` gives.
    fn samples<S: Copy + Into<u32>>(self, v: &[S], value: impl Fn(u32) -> i64) -> Self::Out;
}

/// `bits` with bit `31 - shift` taken as its sign.
fn sign_extend(bits: u32, shift: u32) -> i32 {
    ((bits << shift) as i32) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_values_sign_extend_the_stored_bits() {
        // 12 bits stored, signed, with stray bits above them
        let frame = Frame {
            width: 4,
            height: 1,
            samples_per_pixel: 1,
            bits_stored: 12,
            signed: true,
            photometric: Photometric::Monochrome2,
            samples: Samples::U16(vec![0xF800, 0x07FF, 0x0FFF, 0x1005]),
        };
        let values: Vec<i64> = frame.values().collect();
        assert_eq!(values, [-2048, 2047, -1, 5]);
        assert_eq!(ValueMap::new(&frame, |v| v).all(), values);
        let every = |step| {
            let mut seen = Vec::new();
            frame.each_every(0..frame.samples.len(), step, |v| seen.push(v));
            seen
        };
        assert_eq!(every(1), values);
        assert_eq!(every(3), [-2048, 5]);
        assert_eq!(frame.range(), Some((-2048, 2047)));
        let unsigned = Frame {
            signed: false,
            ..frame
        };
        assert_eq!(unsigned.range(), Some((5, 4095)));
    }

    #[test]
    fn range_and_values_in_bulk_are_those_sample_by_sample() {
        // more samples than bit patterns: the value map looks them up (20
        // bits stored: takes each); every seventh value
        let mut x = 7u32;
        let mut raw = || {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            x >> 8
        };
        let u16s: Vec<u16> = (0..70_000).map(|_| raw() as u16).collect();
        let u8s: Vec<u8> = (0..1_000).map(|_| raw() as u8).collect();
        let u32s: Vec<u32> = (0..1_000).map(|_| raw()).collect();
        for (samples, bits) in [
            (Samples::U32(u32s), 20),
            (Samples::U16(u16s.clone()), 16),
            (Samples::U16(u16s.clone()), 15),
            (Samples::U16(u16s), 12),
            (Samples::U8(u8s.clone()), 8),
            (Samples::U8(u8s), 5),
        ] {
            for signed in [false, true] {
                let frame = Frame {
                    width: samples.len() as u32,
                    height: 1,
                    samples_per_pixel: 1,
                    bits_stored: bits,
                    signed,
                    photometric: Photometric::Monochrome2,
                    samples: samples.clone(),
                };
                let values: Vec<i64> = (0..samples.len()).map(|i| frame.value(i)).collect();
                assert_eq!(
                    ValueMap::new(&frame, |v| v).all(),
                    values,
                    "{bits} {signed}"
                );
                // and a run at a time
                let map = ValueMap::new(&frame, |v| v);
                let mut by_runs = Vec::new();
                for start in (0..values.len()).step_by(999) {
                    map.extend(start..values.len().min(start + 999), &mut by_runs);
                }
                assert_eq!(by_runs, values, "{bits} {signed}");
                let mut every = Vec::new();
                frame.each_every(0..samples.len(), 7, |v| every.push(v));
                let expected: Vec<i64> = values.iter().copied().step_by(7).collect();
                assert_eq!(every, expected, "{bits} {signed}");
                let (lo, hi) = (values.iter().min(), values.iter().max());
                assert_eq!(
                    frame.range(),
                    lo.copied().zip(hi.copied()),
                    "{bits} {signed}"
                );
            }
        }
    }

    #[test]
    fn stored_bytes_follow_the_planar_configuration_and_pack_one_bit_samples() {
        let frame = |samples, spp, photometric| Frame {
            width: 2,
            height: 1,
            samples_per_pixel: spp,
            bits_stored: 16,
            signed: false,
            photometric,
            samples,
        };
        let info = |planar, photometric| ImageInfo {
            rows: 1,
            cols: 2,
            samples_per_pixel: 3,
            bits_allocated: 16,
            bits_stored: 16,
            signed: false,
            photometric,
            planar,
            frames: 1,
            slope: 1.0,
            intercept: 0.0,
            window: None,
            palette: None,
        };
        // two RGB pixels of 16-bit samples: by pixel, or red, green, blue planes
        let rgb = frame(
            Samples::U16(vec![1, 2, 3, 0x0104, 5, 6]),
            3,
            Photometric::Rgb,
        );
        let by_pixel = [1, 0, 2, 0, 3, 0, 4, 1, 5, 0, 6, 0];
        let by_plane = [1, 0, 4, 1, 2, 0, 5, 0, 3, 0, 6, 0];
        assert_eq!(
            rgb.to_stored_le_bytes(&info(false, Photometric::Rgb))
                .unwrap(),
            by_pixel
        );
        assert_eq!(
            rgb.to_stored_le_bytes(&info(true, Photometric::Rgb))
                .unwrap(),
            by_plane
        );
        // YBR_FULL_422 decoded repeats its chroma: not the stored layout
        let ybr = frame(Samples::U16(vec![0; 6]), 3, Photometric::YbrFull);
        assert_eq!(
            ybr.to_stored_le_bytes(&info(false, Photometric::YbrFull422)),
            None
        );
        // 1-bit samples packed from bit 0, the last byte padded
        let bits = frame(
            Samples::U1(vec![1, 0, 1, 1, 0, 0, 0, 0, 1]),
            1,
            Photometric::Monochrome2,
        );
        let grey = info(false, Photometric::Monochrome2);
        assert_eq!(bits.to_stored_le_bytes(&grey).unwrap(), [0b1101, 1]);
    }

    #[test]
    fn samples_read_in_place_are_those_from_bytes() {
        let bytes: Vec<u8> = (1..=11).collect();
        for bits in [8, 16, 32] {
            for big_endian in [false, true] {
                for len in [0, 1, 4, 7, 8, 11] {
                    let read = Samples::read(bits, big_endian, len, |buf| {
                        buf.copy_from_slice(&bytes[..len]);
                        Ok::<(), ()>(())
                    });
                    let expected = Samples::from_bytes(bytes[..len].to_vec(), bits, big_endian);
                    assert_eq!(read, Ok(expected), "{bits} {big_endian} {len}");
                }
            }
        }
        let failed = Samples::read(16, false, 4, |_| Err("unreadable"));
        assert_eq!(failed, Err("unreadable"));
    }

    #[test]
    fn bytes_to_samples_in_either_order() {
        let bytes = vec![1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            Samples::from_bytes(bytes.clone(), 16, false),
            Samples::U16(vec![0x0201, 0x0403, 0x0605, 0x0807])
        );
        assert_eq!(
            Samples::from_bytes(bytes.clone(), 16, true),
            Samples::U16(vec![0x0102, 0x0304, 0x0506, 0x0708])
        );
        assert_eq!(
            Samples::from_bytes(bytes.clone(), 32, false),
            Samples::U32(vec![0x0403_0201, 0x0807_0605])
        );
        assert_eq!(
            Samples::from_bytes(bytes.clone(), 32, true),
            Samples::U32(vec![0x0102_0304, 0x0506_0708])
        );
        assert_eq!(
            Samples::from_bytes(bytes.clone(), 8, true),
            Samples::U8(bytes)
        );
    }
}
