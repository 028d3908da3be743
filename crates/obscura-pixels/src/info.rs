//! What the header says about the pixels (PS3.3 C.7.6.3 Image Pixel, C.11.2
//! VOI LUT, C.11.1 Modality LUT, C.7.6.3.1.5 palettes).

use crate::error::PixelError;
use crate::voi::{VoiFunction, Window};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Photometric Interpretation (PS3.3 C.7.6.3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Photometric {
    /// Grayscale, minimum is white.
    Monochrome1,
    /// Grayscale, minimum is black.
    Monochrome2,
    /// Indices into the palette colour lookup tables.
    PaletteColor,
    /// Red, green, blue.
    Rgb,
    /// Y, Cb, Cr at full resolution.
    YbrFull,
    /// Y, Cb, Cr with Cb and Cr shared by two horizontal pixels.
    YbrFull422,
    /// YBR_RCT, YBR_ICT or YBR_PARTIAL_420 (only as a codec's input: decoders
    /// give RGB).
    YbrCodec,
}

impl Photometric {
    /// Parse the attribute's value (trailing spaces allowed).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "MONOCHROME1" => Photometric::Monochrome1,
            "MONOCHROME2" => Photometric::Monochrome2,
            "PALETTE COLOR" => Photometric::PaletteColor,
            "RGB" => Photometric::Rgb,
            "YBR_FULL" => Photometric::YbrFull,
            "YBR_FULL_422" => Photometric::YbrFull422,
            "YBR_RCT" | "YBR_ICT" | "YBR_PARTIAL_420" => Photometric::YbrCodec,
            _ => return None,
        })
    }

    /// Its DICOM name.
    pub fn as_str(self) -> &'static str {
        match self {
            Photometric::Monochrome1 => "MONOCHROME1",
            Photometric::Monochrome2 => "MONOCHROME2",
            Photometric::PaletteColor => "PALETTE COLOR",
            Photometric::Rgb => "RGB",
            Photometric::YbrFull => "YBR_FULL",
            Photometric::YbrFull422 => "YBR_FULL_422",
            Photometric::YbrCodec => "YBR_ICT",
        }
    }

    /// Whether samples are grey levels.
    pub fn is_monochrome(self) -> bool {
        matches!(self, Photometric::Monochrome1 | Photometric::Monochrome2)
    }
}

/// One palette colour lookup table (segmented ones expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lut {
    /// The first stored value mapped (may be negative for signed data).
    pub first_mapped: i32,
    /// Bits per entry as the descriptor declares (8 or 16).
    pub bits: u16,
    /// The entries.
    pub entries: Vec<u16>,
}

impl Lut {
    /// The 8-bit output for a stored value (values outside the table take
    /// its first or last entry).
    pub fn lookup8(&self, v: i32) -> u8 {
        let i = (v - self.first_mapped).clamp(0, self.entries.len() as i32 - 1) as usize;
        let e = self.entries[i];
        if self.bits > 8 {
            (e >> 8) as u8
        } else {
            e.min(255) as u8
        }
    }
}

/// The red, green and blue palette tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    /// Red.
    pub red: Lut,
    /// Green.
    pub green: Lut,
    /// Blue.
    pub blue: Lut,
}

/// The Image Pixel attributes and what rendering needs from the header.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Samples per Pixel (1 or 3).
    pub samples_per_pixel: u16,
    /// Bits Allocated (1, 8, 16 or 32).
    pub bits_allocated: u16,
    /// Bits Stored.
    pub bits_stored: u16,
    /// Pixel Representation 1 (two's complement).
    pub signed: bool,
    /// Photometric Interpretation.
    pub photometric: Photometric,
    /// Planar Configuration 1 (colour by plane).
    pub planar: bool,
    /// Number of Frames (1 when absent).
    pub frames: u32,
    /// Rescale Slope (1 when absent).
    pub slope: f64,
    /// Rescale Intercept (0 when absent).
    pub intercept: f64,
    /// The first Window Center / Width pair with VOI LUT Function, if any.
    pub window: Option<Window>,
    /// The palette, for PALETTE COLOR.
    pub palette: Option<Palette>,
}

fn int(ds: &InMemDicomObject, tag: Tag) -> Option<i64> {
    ds.get(tag).and_then(|e| e.to_int::<i64>().ok())
}

fn float(ds: &InMemDicomObject, tag: Tag) -> Option<f64> {
    ds.get(tag).and_then(|e| e.to_float64().ok())
}

fn required(ds: &InMemDicomObject, tag: Tag, name: &'static str) -> Result<i64, PixelError> {
    int(ds, tag).ok_or(PixelError::Attribute(name))
}

impl ImageInfo {
    /// Read the attributes from a data set.
    pub fn from_dataset(ds: &InMemDicomObject) -> Result<Self, PixelError> {
        let dim = |tag, name| {
            required(ds, tag, name)
                .ok()
                .filter(|v| (1..=65535).contains(v))
                .map(|v| v as u32)
                .ok_or(PixelError::Attribute(name))
        };
        let rows = dim(tags::ROWS, "Rows")?;
        let cols = dim(tags::COLUMNS, "Columns")?;
        let samples_per_pixel = match int(ds, tags::SAMPLES_PER_PIXEL).unwrap_or(1) {
            1 => 1,
            3 => 3,
            _ => return Err(PixelError::Attribute("Samples per Pixel")),
        };
        let bits_allocated = match required(ds, tags::BITS_ALLOCATED, "Bits Allocated")? {
            8 => 8,
            16 => 16,
            32 => 32,
            1 => 1,
            _ => return Err(PixelError::Attribute("Bits Allocated")),
        };
        if bits_allocated == 1 && samples_per_pixel != 1 {
            return Err(PixelError::Unsupported("1-bit colour pixel data".into()));
        }
        let bits_stored = int(ds, tags::BITS_STORED)
            .unwrap_or(bits_allocated as i64)
            .clamp(1, bits_allocated as i64) as u16;
        // a 1-bit sample is 0 or 1 whatever Pixel Representation says (as
        // pydicom reads it)
        let signed = bits_allocated > 1 && int(ds, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
        let pi = ds
            .get(tags::PHOTOMETRIC_INTERPRETATION)
            .and_then(|e| e.to_str().ok())
            .ok_or(PixelError::Attribute("Photometric Interpretation"))?;
        let photometric = Photometric::parse(&pi).ok_or_else(|| {
            PixelError::Unsupported(format!(
                "Photometric Interpretation {}",
                pi.trim().chars().take(16).collect::<String>()
            ))
        })?;
        let colour = !photometric.is_monochrome() && photometric != Photometric::PaletteColor;
        if colour != (samples_per_pixel == 3) {
            return Err(PixelError::Attribute(
                "Samples per Pixel (for the Photometric Interpretation)",
            ));
        }
        let planar = samples_per_pixel == 3 && int(ds, tags::PLANAR_CONFIGURATION) == Some(1);
        let frames = int(ds, tags::NUMBER_OF_FRAMES).unwrap_or(1);
        if !(0..=i64::from(u32::MAX)).contains(&frames) {
            return Err(PixelError::Attribute("Number of Frames"));
        }
        let frames = (frames as u32).max(1);
        let slope = float(ds, tags::RESCALE_SLOPE)
            .filter(|s| s.is_finite() && *s != 0.0)
            .unwrap_or(1.0);
        let intercept = float(ds, tags::RESCALE_INTERCEPT)
            .filter(|s| s.is_finite())
            .unwrap_or(0.0);
        let palette = if photometric == Photometric::PaletteColor {
            Some(palette(ds)?)
        } else {
            None
        };
        Ok(ImageInfo {
            rows,
            cols,
            samples_per_pixel,
            bits_allocated,
            bits_stored,
            signed,
            photometric,
            planar,
            frames,
            slope,
            intercept,
            window: window(ds),
            palette,
        })
    }

    /// Samples of one frame (rows × columns × samples per pixel).
    pub fn samples(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.cols) * u64::from(self.samples_per_pixel)
    }

    /// Bytes of one decoded frame (1-bit samples are decoded one a byte).
    pub fn frame_bytes(&self) -> u64 {
        self.samples() * u64::from(self.bits_allocated.div_ceil(8))
    }

    /// Bytes of one native frame as stored (YBR_FULL_422 keeps two samples
    /// per pixel; 1-bit frames, packed one after another, may share a
    /// byte: this is their bits rounded up).
    pub fn stored_frame_bytes(&self) -> u64 {
        if self.bits_allocated == 1 {
            self.samples().div_ceil(8)
        } else if self.photometric == Photometric::YbrFull422 {
            u64::from(self.rows) * u64::from(self.cols) * 2 * u64::from(self.bits_allocated / 8)
        } else {
            self.frame_bytes()
        }
    }
}

/// The first Window Center / Width pair and the VOI LUT Function.
fn window(ds: &InMemDicomObject) -> Option<Window> {
    let first = |tag| {
        ds.get(tag)
            .and_then(|e| e.to_multi_float64().ok())
            .and_then(|v| v.first().copied())
            .filter(|v| v.is_finite())
    };
    let center = first(tags::WINDOW_CENTER)?;
    let width = first(tags::WINDOW_WIDTH)?;
    let function = ds
        .get(tags::VOILUT_FUNCTION)
        .and_then(|e| e.to_str().ok())
        .and_then(|s| VoiFunction::parse(&s))
        .unwrap_or(VoiFunction::Linear);
    Window::new(center, width, function)
}

/// The palette tables, plain (C.7.6.3.1.5) or segmented (C.7.9.2).
fn palette(ds: &InMemDicomObject) -> Result<Palette, PixelError> {
    let bad = || PixelError::Attribute("Palette Color Lookup Table Data");
    let bytes = |tag| {
        ds.get(tag)
            .and_then(|e| e.value().to_bytes().ok().map(|b| b.into_owned()))
    };
    let one = |desc: Tag, data: Tag, segmented: Tag| -> Result<Lut, PixelError> {
        let d = ds
            .get(desc)
            .and_then(|e| e.to_multi_int::<i32>().ok())
            .filter(|d| d.len() == 3)
            .ok_or(PixelError::Attribute(
                "Palette Color Lookup Table Descriptor",
            ))?;
        let count = if d[0] == 0 {
            65536
        } else {
            d[0] as u16 as usize
        };
        // the first mapped value is US or SS: negative only when signed
        let first_mapped = d[1];
        let bits = d[2] as u16;
        if let (None, Some(seg)) = (ds.get(data), bytes(segmented)) {
            let words: Vec<u16> = if bits <= 8 {
                seg.iter().map(|b| u16::from(*b)).collect()
            } else {
                seg.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect()
            };
            return Ok(Lut {
                first_mapped,
                bits,
                entries: expand_segmented(&words, bits <= 8)?,
            });
        }
        let bytes = bytes(data).ok_or_else(bad)?;
        // 8-bit entries may be stored one per byte or one per 16-bit word
        let entries: Vec<u16> = if bytes.len() == count {
            bytes.iter().map(|b| u16::from(*b)).collect()
        } else if bytes.len() >= count * 2 {
            bytes
                .chunks_exact(2)
                .take(count)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect()
        } else {
            return Err(bad());
        };
        Ok(Lut {
            first_mapped,
            bits: if bytes.len() == count { 8 } else { bits },
            entries,
        })
    };
    Ok(Palette {
        red: one(
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?,
        green: one(
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            tags::SEGMENTED_GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?,
        blue: one(
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            tags::SEGMENTED_BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?,
    })
}

/// Most entries a palette table has (a 16-bit index).
const MAX_LUT: usize = 65536;

/// Expand segmented palette data (PS3.3 C.7.9.2: discrete, linear and
/// indirect segments), as pydicom does; at most [`MAX_LUT`] entries, and an
/// indirect segment may not point at another.
fn expand_segmented(data: &[u16], bytes: bool) -> Result<Vec<u16>, PixelError> {
    let mut lut = Vec::new();
    segments(data, bytes, None, &mut lut, true)?;
    if lut.is_empty() {
        return Err(PixelError::Attribute(
            "Segmented Palette Color Lookup Table Data",
        ));
    }
    Ok(lut)
}

/// Expand up to `count` segments of `data` (all when `None`) onto `lut`.
fn segments(
    data: &[u16],
    bytes: bool,
    count: Option<usize>,
    lut: &mut Vec<u16>,
    indirect_allowed: bool,
) -> Result<(), PixelError> {
    let bad = || PixelError::Attribute("Segmented Palette Color Lookup Table Data");
    let (mut at, mut done) = (0usize, 0usize);
    while at + 1 < data.len() && count.is_none_or(|c| done < c) {
        let (op, len) = (data[at], usize::from(data[at + 1]));
        at += 2;
        if lut.len() + len > MAX_LUT {
            return Err(bad());
        }
        match op {
            0 => {
                lut.extend_from_slice(data.get(at..at + len).ok_or_else(bad)?);
                at += len;
            }
            1 => {
                let y0 = f64::from(*lut.last().ok_or_else(bad)?);
                let y1 = f64::from(*data.get(at).ok_or_else(bad)?);
                at += 1;
                // numpy's linspace(y0 + step, y1, len), rounded half to even
                let step = (y1 - y0) / len as f64;
                let (a, span) = (y0 + step, y1 - y0 - step);
                lut.extend((0..len).map(|i| {
                    let t = if len > 1 {
                        i as f64 / (len - 1) as f64
                    } else {
                        0.0
                    };
                    (a + span * t).round_ties_even() as u16
                }));
            }
            2 if indirect_allowed && !lut.is_empty() => {
                // a byte offset into the data, low word first (8-bit data: 4 bytes)
                let offset = if bytes {
                    let b = data.get(at..at + 4).ok_or_else(bad)?;
                    at += 4;
                    (usize::from(b[3]) << 24)
                        | (usize::from(b[2]) << 16)
                        | (usize::from(b[1]) << 8)
                        | usize::from(b[0])
                } else {
                    let w = data.get(at..at + 2).ok_or_else(bad)?;
                    at += 2;
                    (usize::from(w[1]) << 16) | usize::from(w[0])
                };
                let rest = data.get(offset..).ok_or_else(bad)?;
                segments(rest, bytes, Some(len), lut, false)?;
            }
            _ => return Err(bad()),
        }
        done += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmented_tables_expand_as_pydicom_does() {
        // discrete 0, 10; linear to 20 over 2; indirect: repeat the first segment
        let data = [0, 2, 0, 10, 1, 2, 20, 2, 1, 0, 0];
        assert_eq!(
            expand_segmented(&data, false).unwrap(),
            [0, 10, 15, 20, 0, 10]
        );
        // linear rounds half to even, like numpy.around: 0 to 5 over 2 = 2.5, 5
        assert_eq!(
            expand_segmented(&[0, 1, 0, 1, 2, 5], false).unwrap(),
            [0, 2, 5]
        );
        // 8-bit data: the indirect offset is four bytes, low first
        assert_eq!(
            expand_segmented(&[0, 1, 7, 2, 1, 0, 0, 0, 0], true).unwrap(),
            [7, 7]
        );
        for bad in [
            &[1, 2, 20][..],            // linear first
            &[2, 1, 0, 0][..],          // indirect first
            &[0, 5, 1, 2][..],          // discrete past the end
            &[0, 1, 3, 2, 1, 9, 9][..], // indirect past the end
            &[0, 1, 3, 7, 1][..],       // unknown segment type
        ] {
            assert!(expand_segmented(bad, false).is_err(), "{bad:?}");
        }
        // an indirect segment pointing at another indirect one is refused
        assert!(expand_segmented(&[0, 1, 3, 2, 1, 3, 0, 2, 1, 3, 0], false).is_err());
    }
}
