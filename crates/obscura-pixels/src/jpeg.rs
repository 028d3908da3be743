//! JPEG (baseline, extended, lossless) through `jpeg-decoder` directly, so
//! that colour follows the DICOM header where the bit stream does not say:
//! a stream the header calls RGB, with neither a JFIF marker nor an Adobe
//! marker declaring the YCbCr transform, is not converted (as pydicom, GDCM
//! and DCMTK read it; dicom-rs's adapter would convert it). Colour comes
//! out as RGB.

use crate::error::PixelError;
use jpeg_decoder::{ColorTransform, Decoder};

const CODEC: &str = "JPEG";

/// What the markers before the first scan declare: (JFIF, Adobe YCbCr).
fn markers(data: &[u8]) -> (bool, bool) {
    let (mut jfif, mut adobe_ycbcr) = (false, false);
    let mut i = 2;
    while i + 4 <= data.len() && data[i] == 0xFF {
        let marker = data[i + 1];
        if marker == 0xDA {
            break;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        let payload = data.get(i + 4..i + 2 + len).unwrap_or(&[]);
        match marker {
            0xE0 if payload.starts_with(b"JFIF\0") => jfif = true,
            0xEE if payload.starts_with(b"Adobe") && payload.len() >= 12 => {
                adobe_ycbcr = payload[11] == 1
            }
            _ => {}
        }
        i += 2 + len;
    }
    (jfif, adobe_ycbcr)
}

/// Decode one JPEG frame to samples (8-bit, or 16-bit little endian above
/// 8 bits of precision; colour as interleaved RGB). `header_rgb`: the
/// header's Photometric Interpretation is RGB.
pub fn decode(data: &[u8], header_rgb: bool) -> Result<Vec<u8>, PixelError> {
    let fail = |e: jpeg_decoder::Error| PixelError::Codec {
        codec: CODEC,
        reason: e.to_string(),
    };
    let mut d = Decoder::new(data);
    d.read_info().map_err(fail)?;
    let colour = d
        .info()
        .is_some_and(|i| i.pixel_format == jpeg_decoder::PixelFormat::RGB24);
    let (jfif, adobe_ycbcr) = markers(data);
    if colour && header_rgb && !jfif && !adobe_ycbcr {
        d.set_color_transform(ColorTransform::RGB);
    }
    d.decode().map_err(fail)
}
