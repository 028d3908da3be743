//! 8-bit grey images: the luminance OCR and the cheap pass read, crops
//! and upscaling (their top-hats are in `tophat`).

use crate::Rect;
use obscura_pixels::Image8;

/// Mean red-blue difference from which a frame's colour channels are
/// read apart ([`Grey::channels`]), and the step of pixels sampled for it.
const COLOURFUL: u64 = 24;
const COLOUR_STEP: usize = 7;
/// Levels within which a pixel is ground ([`Grey::without_outliers`]), and
/// how far apart a text's level and a brighter or darker line across it are.
const GROUND: i32 = 16;
const APART: i32 = 48;

/// An 8-bit grey image, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grey {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width × height` levels.
    pub data: Vec<u8>,
}

impl Grey {
    /// What is read of a rendered frame: its luminance (for colour, the
    /// brightest channel where it stands out more: coloured text on grey
    /// keeps its contrast); and, when the frame is colourful (its mean
    /// red-blue difference at least [`COLOURFUL`]; grey frames with a
    /// little colour Doppler are not), its red and blue channels too, in
    /// which coloured text keeps the contrast luminance may lose (cyan or
    /// green on brown has the luminance of its ground).
    pub fn renderings(img: Image8) -> Vec<Grey> {
        let (width, height) = (img.width as usize, img.height as usize);
        let with = |data| Grey {
            width,
            height,
            data,
        };
        if img.channels == 1 {
            return vec![with(img.data)];
        }
        // the channels apart first (one pass that gathers), then passes
        // over them that vectorise
        let n = width * height;
        let (mut red, mut green, mut blue) = (vec![0u8; n], vec![0u8; n], vec![0u8; n]);
        let pixels = img.data.as_chunks::<3>().0;
        for (((r, g), b), &[pr, pg, pb]) in
            red.iter_mut().zip(&mut green).zip(&mut blue).zip(pixels)
        {
            (*r, *g, *b) = (pr, pg, pb);
        }
        let luma = red
            .iter()
            .zip(&green)
            .zip(&blue)
            .map(|((&r, &g), &b)| {
                let (r, g, b) = (u32::from(r), u32::from(g), u32::from(b));
                let luma = (299 * r + 587 * g + 114 * b) / 1000;
                // saturated colours (yellow, cyan, green text) by their brightest channel
                luma.max(r.max(g).max(b).saturating_sub(32)) as u8
            })
            .collect();
        let sampled = (0..n).step_by(COLOUR_STEP);
        let (sum, count) = sampled.fold((0u64, 0u64), |(s, c), i| {
            (s + u64::from(red[i].abs_diff(blue[i])), c + 1)
        });
        if sum < COLOURFUL * count.max(1) {
            return vec![with(luma)];
        }
        vec![with(luma), with(red), with(blue)]
    }

    /// The level at (x, y).
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.width + x]
    }

    /// The pixels of `r` (clipped to the image).
    pub fn crop(&self, r: Rect) -> Grey {
        let r = r.clip(self.width, self.height);
        let mut data = Vec::with_capacity(r.width() * r.height());
        for y in r.y0..r.y1 {
            data.extend_from_slice(&self.data[y * self.width + r.x0..y * self.width + r.x1]);
        }
        Grey {
            width: r.width(),
            height: r.height(),
            data,
        }
    }

    /// Scaled by an integer `factor`, bilinear.
    pub fn upscale(&self, factor: usize) -> Grey {
        if factor <= 1 || self.width == 0 || self.height == 0 {
            return self.clone();
        }
        let (w, h) = (self.width * factor, self.height * factor);
        let mut data = Vec::with_capacity(w * h);
        let f = factor as f32;
        for y in 0..h {
            let sy = ((y as f32 + 0.5) / f - 0.5).max(0.0);
            let y0 = (sy as usize).min(self.height - 1);
            let y1 = (y0 + 1).min(self.height - 1);
            let wy = sy - y0 as f32;
            for x in 0..w {
                let sx = ((x as f32 + 0.5) / f - 0.5).max(0.0);
                let x0 = (sx as usize).min(self.width - 1);
                let x1 = (x0 + 1).min(self.width - 1);
                let wx = sx - x0 as f32;
                let top = f32::from(self.at(x0, y0)) * (1.0 - wx) + f32::from(self.at(x1, y0)) * wx;
                let bottom =
                    f32::from(self.at(x0, y1)) * (1.0 - wx) + f32::from(self.at(x1, y1)) * wx;
                data.push((top * (1.0 - wy) + bottom * wy).round() as u8);
            }
        }
        Grey {
            width: w,
            height: h,
            data,
        }
    }

    /// Levels stretched to 0..=255 and made dark text on a light ground
    /// (inverted when most pixels are dark), with a margin of ground around:
    /// what Tesseract reads best.
    pub fn for_ocr(&self, margin: usize) -> Grey {
        let (lo, hi) = self
            .data
            .iter()
            .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let mut sorted = self.data.clone();
        let mid = sorted.len() / 2;
        let median = *sorted.select_nth_unstable(mid).1;
        let invert = u32::from(median) * 2 < u32::from(lo) + u32::from(hi);
        let span = u32::from(hi.saturating_sub(lo)).max(1);
        let level = |v: u8| {
            let s = (u32::from(v - lo) * 255 / span) as u8;
            if invert {
                255 - s
            } else {
                s
            }
        };
        let (w, h) = (self.width + 2 * margin, self.height + 2 * margin);
        let mut data = vec![255u8; w * h];
        for y in 0..self.height {
            for x in 0..self.width {
                data[(y + margin) * w + x + margin] = level(self.at(x, y));
            }
        }
        Grey {
            width: w,
            height: h,
            data,
        }
    }

    /// The crop with a level beyond its text's replaced by its ground, for
    /// a second reading: a line drawn across the text (a contour, a
    /// caliper), darker than dark text or brighter than bright text, makes
    /// the text itself faint once stretched, and OCR reads the line. On
    /// each side of the median (the ground), when the farthest level lies
    /// more than twice as far as the median of that side's pixels (the
    /// text's level) and [`APART`] from it, the pixels beyond their midpoint
    /// become the ground. None when no side has such a level.
    pub fn without_outliers(&self) -> Option<Grey> {
        let mut sorted = self.data.clone();
        sorted.sort_unstable();
        let median = i32::from(*sorted.get(sorted.len() / 2)?);
        let (dark, bright) = sorted.split_at(sorted.len() / 2);
        let cut = |side: &[u8], extreme: u8| {
            let side: Vec<i32> = side
                .iter()
                .map(|&v| i32::from(v))
                .filter(|v| (v - median).abs() > GROUND)
                .collect();
            let text = *side.get(side.len() / 2)?;
            let extreme = i32::from(extreme);
            ((extreme - median).abs() > 2 * (text - median).abs() && (extreme - text).abs() > APART)
                .then_some((extreme + text) / 2)
        };
        let dark_cut = cut(dark, *dark.first()?);
        let bright_cut = cut(bright, *sorted.last()?);
        if dark_cut.is_none() && bright_cut.is_none() {
            return None;
        }
        let data = self
            .data
            .iter()
            .map(|&v| {
                let v = i32::from(v);
                let beyond = dark_cut.is_some_and(|c| v < c) || bright_cut.is_some_and(|c| v > c);
                if beyond {
                    median as u8
                } else {
                    v as u8
                }
            })
            .collect();
        Some(Grey { data, ..*self })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn rgb(pixel: [u8; 3]) -> Image8 {
        Image8 {
            width: 4,
            height: 4,
            channels: 3,
            data: pixel.repeat(16),
        }
    }

    /// Grey text (level 150, every other column of rows 4-11) on white,
    /// and, when `across`, a black line through it on row 8.
    fn text_on_white(across: bool) -> Grey {
        let (w, h) = (40, 16);
        let mut data = vec![255u8; w * h];
        for y in 4..12 {
            for x in (4..36).step_by(2) {
                data[y * w + x] = 150;
            }
        }
        if across {
            data[8 * w..9 * w].fill(0);
        }
        Grey {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn a_line_drawn_across_text_is_taken_out_for_a_second_reading() {
        let clean = text_on_white(true)
            .without_outliers()
            .expect("a line across");
        assert_eq!(clean.at(5, 8), 255, "the line became ground");
        assert_eq!(clean.at(4, 6), 150, "the text is kept");
        assert_eq!(text_on_white(false).without_outliers(), None);
    }

    /// A `width` × `height` image of `data`, row by row.
    pub(crate) fn image(width: usize, height: usize, data: Vec<u8>) -> Grey {
        assert_eq!(data.len(), width * height);
        Grey {
            width,
            height,
            data,
        }
    }

    /// `n` pseudo-random levels from `seed`.
    pub(crate) fn noise(n: usize, mut seed: u32) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect()
    }

    #[test]
    fn colour_renderings_are_those_taken_pixel_by_pixel() {
        // pseudo-random colours, against the luminance and the channels
        // taken one pixel at a time
        let (w, h) = (37, 23);
        let data = noise(w * h * 3, 99);
        let img = Image8 {
            width: w as u32,
            height: h as u32,
            channels: 3,
            data: data.clone(),
        };
        let read = Grey::renderings(img);
        let [grey, red, blue] = &read[..] else {
            panic!("noise is colourful: {} renderings", read.len());
        };
        for (i, p) in data.chunks_exact(3).enumerate() {
            let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
            let luma = (299 * r + 587 * g + 114 * b) / 1000;
            let max = r.max(g).max(b);
            assert_eq!(u32::from(grey.data[i]), luma.max(max.saturating_sub(32)));
            assert_eq!([red.data[i], blue.data[i]], [p[0], p[2]]);
        }
        assert_eq!((grey.width, grey.height, blue.width), (w, h, w));
    }

    #[test]
    fn a_colourful_frame_is_also_read_in_its_red_and_blue_channels() {
        // cyan text on brown has the luminance of its ground
        let read = Grey::renderings(rgb([167, 125, 61]));
        assert_eq!(read.len(), 3);
        assert_eq!((read[1].at(0, 0), read[2].at(0, 0)), (167, 61));
        assert_eq!(Grey::renderings(rgb([120, 120, 118])).len(), 1);
    }
}
