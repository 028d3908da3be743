//! The morphological top-hats that keep thin strokes: bright (level minus
//! the opening) and dark (the closing minus level), by separable min and
//! max filters taken in strips that stay in the cache.

use crate::grey::Grey;
use crate::Rect;

impl Grey {
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
    use crate::grey::tests::noise;

    #[test]
    fn tophats_are_those_of_every_square() {
        // pseudo-random images, against the openings and closings taken
        // pixel by pixel; squares larger than the image, an image with no
        // rows, and strips of a few rows (their edges inside the image)
        for (w, h) in [(23, 17), (64, 41), (3, 2), (1, 1), (4, 0), (0, 3)] {
            tophats_match_pixel_by_pixel(w, h);
        }
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
}
