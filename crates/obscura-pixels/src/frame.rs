//! A decoded frame: the stored sample values, pixel-interleaved, row by row,
//! exactly as the object holds them (no windowing, no colour conversion
//! beyond what a codec does itself), so that what is changed in it can be
//! written back losslessly.

use crate::info::Photometric;

/// Sample values, 8, 16 or 32 bits allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Samples {
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
            Samples::U8(v) => v.len(),
            Samples::U16(v) => v.len(),
            Samples::U32(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            Samples::U8(v) => u32::from(v[i]),
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

    /// `f` of each sample's stored bit pattern (its low `bits_stored` bits),
    /// in order: a lookup table over them is indexed without a branch per
    /// sample width.
    pub fn map_stored<T>(&self, f: impl Fn(u32) -> T) -> Vec<T> {
        let mask = self.stored_mask();
        match &self.samples {
            Samples::U8(v) => v.iter().map(|&s| f(u32::from(s) & mask)).collect(),
            Samples::U16(v) => v.iter().map(|&s| f(u32::from(s) & mask)).collect(),
            Samples::U32(v) => v.iter().map(|&s| f(s & mask)).collect(),
        }
    }

    /// Every value, in order (see [`value`](Self::value)).
    pub fn values(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.samples.len()).map(|i| self.value(i))
    }

    /// The samples as native little-endian bytes (pixel-interleaved): the
    /// Pixel Data value of this frame in Explicit VR Little Endian, for
    /// writing back a frame whose samples were changed.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.samples {
            Samples::U8(v) => v.clone(),
            Samples::U16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Samples::U32(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }
}
