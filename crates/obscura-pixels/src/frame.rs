//! A decoded frame: the stored sample values, pixel-interleaved, row by row,
//! exactly as the object holds them (no windowing, no colour conversion
//! beyond what a codec does itself), so that what is changed in it can be
//! written back losslessly.

use crate::info::Photometric;

/// Sample values, 8 or 16 bits allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Samples {
    /// Bits Allocated 8.
    U8(Vec<u8>),
    /// Bits Allocated 16 (two's complement bit patterns when signed).
    U16(Vec<u16>),
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::U8(v) => v.len(),
            Samples::U16(v) => v.len(),
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
    pub fn value(&self, i: usize) -> i32 {
        let raw = match &self.samples {
            Samples::U8(v) => u32::from(v[i]),
            Samples::U16(v) => u32::from(v[i]),
        };
        let bits = u32::from(self.bits_stored);
        let v = raw & ((1u32 << bits) - 1);
        if self.signed && v >> (bits - 1) == 1 {
            v as i32 - (1i32 << bits)
        } else {
            v as i32
        }
    }

    /// Every value, in order (see [`value`](Self::value)).
    pub fn values(&self) -> impl Iterator<Item = i32> + '_ {
        (0..self.samples.len()).map(|i| self.value(i))
    }

    /// The samples as native little-endian bytes (pixel-interleaved): the
    /// Pixel Data value of this frame in Explicit VR Little Endian, for
    /// writing back a frame whose samples were changed.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.samples {
            Samples::U8(v) => v.clone(),
            Samples::U16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }
}
