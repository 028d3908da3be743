//! From a decoded frame to 8-bit grey or RGB pixels (what a viewer shows and
//! OCR reads): Modality LUT (rescale), VOI window, MONOCHROME1 inversion;
//! palette lookup; YBR to RGB.

use crate::frame::{Frame, Samples, ValueMap};
use crate::info::{ImageInfo, Photometric};
use crate::voi::Window;

/// 8-bit pixels, row by row: grey (1 channel) or RGB (3, interleaved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image8 {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u8,
    /// `width × height × channels` bytes.
    pub data: Vec<u8>,
}

/// Render a frame: `window` overrides the header's window (grey frames only).
pub fn render(frame: &Frame, info: &ImageInfo, window: Option<Window>) -> Image8 {
    let (width, height) = (frame.width, frame.height);
    let (channels, data) = match frame.photometric {
        Photometric::Monochrome1 | Photometric::Monochrome2 => {
            (1, grey_levels(frame, info, window).all())
        }
        Photometric::PaletteColor => (3, palette(frame, info)),
        Photometric::Rgb => (3, rgb(frame)),
        Photometric::YbrFull | Photometric::YbrFull422 | Photometric::YbrCodec => {
            (3, ybr_to_rgb(&rgb(frame)))
        }
    };
    Image8 {
        width,
        height,
        channels,
        data,
    }
}

/// A grey frame's levels (MONOCHROME1 or 2; see [`render`]), to be taken of
/// a run of samples at a time: rescale, window (`window`, the header's, or
/// the frame's range; a 1-bit frame's range is 0 to 1, whatever it holds:
/// 0 black and 1 white), and inversion for MONOCHROME1.
pub fn grey_levels<'a>(
    frame: &'a Frame,
    info: &ImageInfo,
    window: Option<Window>,
) -> ValueMap<'a, u8, impl Fn(i64) -> u8> {
    let (slope, intercept) = (info.slope, info.intercept);
    let modality = move |v: i64| v as f64 * slope + intercept;
    let window = window.or(info.window).unwrap_or_else(|| {
        let (lo, hi) = match frame.samples {
            Samples::U1(_) => (0, 1),
            _ => frame.range().unwrap_or((i64::MAX, i64::MIN)),
        };
        let (a, b) = (modality(lo), modality(hi));
        Window::spanning(a.min(b), a.max(b))
    });
    let invert = frame.photometric == Photometric::Monochrome1;
    ValueMap::new(frame, move |v: i64| {
        let y = window.apply(modality(v));
        if invert {
            255 - y
        } else {
            y
        }
    })
}

/// Colour samples to 8 bits (wider samples keep their top stored bits).
fn rgb(frame: &Frame) -> Vec<u8> {
    match &frame.samples {
        Samples::U1(v) | Samples::U8(v) => v.clone(),
        Samples::U16(_) | Samples::U32(_) => {
            let shift = frame.bits_stored.saturating_sub(8);
            frame.values().map(|v| (v.max(0) >> shift) as u8).collect()
        }
    }
}

/// YBR_FULL to RGB (PS3.3 C.7.6.3.1.2), in place of each triple.
fn ybr_to_rgb(ybr: &[u8]) -> Vec<u8> {
    let clamp = |x: f64| x.round().clamp(0.0, 255.0) as u8;
    ybr.chunks_exact(3)
        .flat_map(|p| {
            let (y, cb, cr) = (
                f64::from(p[0]),
                f64::from(p[1]) - 128.0,
                f64::from(p[2]) - 128.0,
            );
            [
                clamp(y + 1.402 * cr),
                clamp(y - 0.344136 * cb - 0.714136 * cr),
                clamp(y + 1.772 * cb),
            ]
        })
        .collect()
}

/// Palette indices through the red, green and blue tables.
fn palette(frame: &Frame, info: &ImageInfo) -> Vec<u8> {
    let Some(p) = &info.palette else {
        // not reachable: ImageInfo requires a palette for PALETTE COLOR
        return frame.values().flat_map(|v| [v as u8; 3]).collect();
    };
    frame
        .values()
        .map(|v| v.clamp(i32::MIN.into(), i32::MAX.into()) as i32)
        .flat_map(|v| [p.red.lookup8(v), p.green.lookup8(v), p.blue.lookup8(v)])
        .collect()
}
