//! 8-bit grey images: the luminance OCR and the cheap pass read, crops,
//! upscaling, and the morphological top-hat that keeps thin strokes.

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
    /// The luminance of a rendered frame; for colour, the brightest channel
    /// where it stands out more (coloured text on grey keeps its contrast).
    pub fn from_image(img: Image8) -> Self {
        let (width, height) = (img.width as usize, img.height as usize);
        let data = if img.channels == 1 {
            img.data
        } else {
            // into a buffer of the right size: a loop without a capacity
            // check a pixel
            let mut data = vec![0u8; width * height];
            for (y, p) in data.iter_mut().zip(img.data.chunks_exact(3)) {
                let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
                let luma = (299 * r + 587 * g + 114 * b) / 1000;
                // saturated colours (yellow, cyan, green text) by their brightest channel
                *y = luma.max(r.max(g).max(b).saturating_sub(32)) as u8;
            }
            data
        };
        Grey {
            width,
            height,
            data,
        }
    }

    /// The colour channels of a rendered RGB frame in which coloured text
    /// keeps the contrast luminance may lose (cyan or green on brown has
    /// the luminance of its ground): red and blue, when the frame is
    /// colourful (its mean red-blue difference at least [`COLOURFUL`];
    /// grey frames with a little colour Doppler are not). None otherwise.
    pub fn channels(img: &Image8) -> Vec<Grey> {
        if img.channels != 3 {
            return Vec::new();
        }
        let sampled = img.data.chunks_exact(3).step_by(COLOUR_STEP);
        let (sum, n) = sampled.fold((0u64, 0u64), |(s, n), p| {
            (s + u64::from(p[0].abs_diff(p[2])), n + 1)
        });
        if sum < COLOURFUL * n.max(1) {
            return Vec::new();
        }
        let (width, height) = (img.width as usize, img.height as usize);
        // both channels in one pass over the pixels
        let (mut red, mut blue) = (vec![0u8; width * height], vec![0u8; width * height]);
        for ((r, b), p) in red.iter_mut().zip(&mut blue).zip(img.data.chunks_exact(3)) {
            (*r, *b) = (p[0], p[2]);
        }
        [red, blue]
            .map(|data| Grey {
                width,
                height,
                data,
            })
            .into()
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

    /// Per pixel, how far it stands out of its neighbourhood as a thin
    /// stroke: bright (the white top-hat, level minus the opening with a
    /// `size × size` square) and dark (the black top-hat, the closing minus
    /// level). Strokes narrower than `size` keep their contrast; anatomy,
    /// gradients and flat ground fall to zero.
    pub fn tophats(&self, size: usize) -> [Grey; 2] {
        self.tophats_in_strips(size, STRIP_ROWS)
    }

    /// [`tophats`](Self::tophats) in the tiles of `tile` × `tile` pixels
    /// that `wanted` asks for, zero elsewhere. Taken a row of tiles at a
    /// time, from its first tile wanted to its last, with the pixels the
    /// opening and closing reach around them ([`tophat_reach`]): the levels
    /// are those of the whole image's top-hats.
    pub fn tophats_where(
        &self,
        size: usize,
        tile: usize,
        wanted: impl Fn(&Rect) -> bool,
    ) -> [Grey; 2] {
        let (w, h) = (self.width, self.height);
        let mut out = [vec![0u8; w * h], vec![0u8; w * h]];
        for y0 in (0..h).step_by(tile.max(1)) {
            let y1 = (y0 + tile).min(h);
            let tiles: Vec<Rect> = (0..w)
                .step_by(tile.max(1))
                .map(|x0| Rect {
                    x0,
                    y0,
                    x1: (x0 + tile).min(w),
                    y1,
                })
                .filter(&wanted)
                .collect();
            let (Some(first), Some(last)) = (tiles.first(), tiles.last()) else {
                continue;
            };
            let around = first.union(last).grow(tophat_reach(size)).clip(w, h);
            let hats = self.crop(around).tophats_in_strips(size, around.height());
            for (hat, out) in hats.iter().zip(&mut out) {
                for own in &tiles {
                    for y in own.y0..own.y1 {
                        let from = (y - around.y0) * hat.width + own.x0 - around.x0;
                        out[y * w + own.x0..y * w + own.x1]
                            .copy_from_slice(&hat.data[from..from + own.width()]);
                    }
                }
            }
        }
        out.map(|data| Grey { data, ..*self })
    }

    /// [`tophats`](Self::tophats), taken `strip` rows at a time, each strip
    /// with the rows its opening and closing reach above and below (exact:
    /// a row's opening reaches `size - 1` rows either side), so that the
    /// eight passes over a strip stay in the cache.
    fn tophats_in_strips(&self, size: usize, strip: usize) -> [Grey; 2] {
        let (w, h) = (self.width, self.height);
        let reach = tophat_reach(size);
        let (mut bright, mut dark) = (Vec::with_capacity(w * h), Vec::with_capacity(w * h));
        let mut filter = Filter::default();
        for y0 in (0..h).step_by(strip.max(1)) {
            let y1 = (y0 + strip).min(h);
            let (top, bottom) = (y0.saturating_sub(reach), (y1 + reach).min(h));
            let rows = &self.data[top * w..bottom * w];
            let own = (y0 - top) * w..(y1 - top) * w;
            // the opening (min, then max) and the closing (max, then min)
            filter.distances(rows, w, size, (u8::min, u8::max), own.clone(), &mut bright);
            filter.distances(rows, w, size, (u8::max, u8::min), own, &mut dark);
        }
        let with = |data| Grey { data, ..*self };
        [with(bright), with(dark)]
    }
}

/// How far (in pixels, along rows and columns) the levels a top-hat of a
/// `size × size` square takes at a pixel reach: its opening's min, then
/// max, each half the square either side.
fn tophat_reach(size: usize) -> usize {
    2 * (size / 2)
}

/// Rows of a strip of [`Grey::tophats`]: its buffers (a few of these rows,
/// and the rows reached around them) stay in a core's cache.
const STRIP_ROWS: usize = 128;

/// The identity of min or max: what lies beyond the edges.
fn identity<F: Fn(u8, u8) -> u8>(f: F) -> u8 {
    f(0, 255) ^ 255
}

/// A separable `size × size` min or max filter, with the buffers it reuses
/// from call to call (no allocation a row or a strip).
#[derive(Default)]
struct Filter {
    padded: Vec<u8>,
    along: Vec<u8>,
    scratch: [Vec<u8>; 2],
    filtered: [Vec<u8>; 2],
}

impl Filter {
    /// How far each level of `rows[own]` lies from `then` of `first` (an
    /// opening, min then max, lies at or under every level; a closing at
    /// or over it), appended to `out`.
    fn distances<F: Fn(u8, u8) -> u8 + Copy, G: Fn(u8, u8) -> u8 + Copy>(
        &mut self,
        rows: &[u8],
        w: usize,
        size: usize,
        (first, then): (F, G),
        own: std::ops::Range<usize>,
        out: &mut Vec<u8>,
    ) {
        let [mut once, mut twice] = std::mem::take(&mut self.filtered);
        self.apply(rows, w, size, first, &mut once);
        self.apply(&once, w, size, then, &mut twice);
        out.extend(
            rows[own.clone()]
                .iter()
                .zip(&twice[own])
                .map(|(&v, &o)| v.abs_diff(o)),
        );
        self.filtered = [once, twice];
    }

    /// `f` (min or max, with its identity beyond the edges) over the
    /// `size × size` square around every pixel of the rows `data`, `w`
    /// wide, into `out`: along each row by [`windows`], then down the
    /// columns by [`windows`] again, a row a step.
    fn apply<F: Fn(u8, u8) -> u8 + Copy>(
        &mut self,
        data: &[u8],
        w: usize,
        size: usize,
        f: F,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        if w == 0 || data.is_empty() {
            return;
        }
        let (r, id) = (size / 2, identity(f));
        // each row padded with `r` identities at both ends
        self.padded.clear();
        self.padded.resize(w + 2 * r, id);
        // `r` rows of identities above and below the rows filtered along
        self.along.clear();
        self.along.resize(r * w, id);
        for line in data.chunks_exact(w) {
            self.padded[r..r + w].copy_from_slice(line);
            windows(
                &self.padded,
                2 * r + 1,
                1,
                f,
                &mut self.scratch,
                &mut self.along,
            );
        }
        self.along.resize(self.along.len() + r * w, id);
        windows(&self.along, 2 * r + 1, w, f, &mut self.scratch, out);
    }
}

/// `f` (min or max) over every window of `len` values `stride` apart in
/// `v` (`v.len() - (len - 1) × stride` of them, from each start in turn),
/// appended to `out`: by doubling, since two overlapping windows of a power
/// of two cover one of any length and min and max may count a value twice.
/// About log2(`len`) + 1 passes that vectorise, instead of `len`, through
/// the two `scratch` buffers. A stride of a row's width takes the windows
/// down the columns.
fn windows<F: Fn(u8, u8) -> u8 + Copy>(
    v: &[u8],
    len: usize,
    stride: usize,
    f: F,
    scratch: &mut [Vec<u8>; 2],
    out: &mut Vec<u8>,
) {
    let n = v.len().saturating_sub(len.saturating_sub(1) * stride);
    if len < 2 || n == 0 {
        out.extend_from_slice(&v[..n]);
        return;
    }
    let [cur, next] = scratch;
    let pairs = |v: &[u8], step: usize, into: &mut Vec<u8>| {
        into.clear();
        into.extend(v.iter().zip(&v[step * stride..]).map(|(&a, &b)| f(a, b)));
    };
    pairs(v, 1, cur);
    let mut span = 2;
    while 2 * span <= len {
        pairs(cur, span, next);
        std::mem::swap(cur, next);
        span *= 2;
    }
    let rest = (len - span) * stride;
    out.extend(
        cur[..n]
            .iter()
            .zip(&cur[rest..rest + n])
            .map(|(&a, &b)| f(a, b)),
    );
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn tophats_are_those_of_every_square() {
        // pseudo-random images, against the openings and closings taken
        // pixel by pixel; squares larger than the image, an image with no
        // rows, and strips of a few rows (their edges inside the image)
        for (w, h) in [(23, 17), (64, 41), (3, 2), (1, 1), (4, 0), (0, 3)] {
            tophats_match_pixel_by_pixel(w, h);
        }
    }

    /// `n` pseudo-random levels from `seed`.
    fn noise(n: usize, mut seed: u32) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect()
    }

    fn tophats_match_pixel_by_pixel(w: usize, h: usize) {
        let img = Grey {
            width: w,
            height: h,
            data: noise(w * h, 12345),
        };
        for size in [1, 3, 5, 7, 9] {
            let r = size / 2;
            // `f` over the square around each pixel of `levels`
            let filtered = |levels: &[u8], f: fn(u8, u8) -> u8| -> Vec<u8> {
                let square = |x: usize, y: usize| {
                    let mut v = identity(f);
                    for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                        for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                            v = f(v, levels[yy * w + xx]);
                        }
                    }
                    v
                };
                (0..h)
                    .flat_map(|y| (0..w).map(move |x| (x, y)))
                    .map(|(x, y)| square(x, y))
                    .collect()
            };
            let opened = filtered(&filtered(&img.data, u8::min), u8::max);
            let closed = filtered(&filtered(&img.data, u8::max), u8::min);
            let bright: Vec<u8> = img.data.iter().zip(&opened).map(|(v, o)| v - o).collect();
            let dark: Vec<u8> = img.data.iter().zip(&closed).map(|(v, c)| c - v).collect();
            for strip in [1, 2, 5, STRIP_ROWS] {
                let [b, d] = img.tophats_in_strips(size, strip);
                assert_eq!(
                    (b.data, d.data),
                    (bright.clone(), dark.clone()),
                    "{size} {strip}"
                );
                assert_eq!((b.width, b.height), (w, h));
            }
        }
    }

    #[test]
    fn tophats_where_wanted_are_those_of_the_whole_image() {
        let (w, h) = (53, 38);
        let img = Grey {
            width: w,
            height: h,
            data: noise(w * h, 99),
        };
        // every other tile of 8 (tiles cut at the right and bottom edges)
        let wanted = |r: &Rect| (r.x0 / 8 + r.y0 / 8).is_multiple_of(2);
        for size in [3, 7] {
            let whole = img.tophats(size);
            let tiled = img.tophats_where(size, 8, wanted);
            for (whole, tiled) in whole.iter().zip(&tiled) {
                for y in 0..h {
                    for x in 0..w {
                        let expected = if wanted(&Rect::pixel(x / 8 * 8, y / 8 * 8)) {
                            whole.at(x, y)
                        } else {
                            0
                        };
                        assert_eq!(tiled.at(x, y), expected, "{size} ({x}, {y})");
                    }
                }
            }
        }
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
        let channels = Grey::channels(&img);
        let grey = Grey::from_image(img);
        for (i, p) in data.chunks_exact(3).enumerate() {
            let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
            let luma = (299 * r + 587 * g + 114 * b) / 1000;
            let max = r.max(g).max(b);
            assert_eq!(u32::from(grey.data[i]), luma.max(max.saturating_sub(32)));
            assert_eq!([channels[0].data[i], channels[1].data[i]], [p[0], p[2]]);
        }
        assert_eq!((grey.width, grey.height, channels[1].width), (w, h, w));
    }

    #[test]
    fn a_colourful_frame_is_also_read_in_its_red_and_blue_channels() {
        // cyan text on brown has the luminance of its ground
        let brown = rgb([167, 125, 61]);
        let channels = Grey::channels(&brown);
        assert_eq!(channels.len(), 2);
        assert_eq!((channels[0].at(0, 0), channels[1].at(0, 0)), (167, 61));
        assert!(Grey::channels(&rgb([120, 120, 118])).is_empty());
    }
}
