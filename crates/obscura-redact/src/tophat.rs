//! The morphological top-hats that keep thin strokes: bright (level minus
//! the opening) and dark (the closing minus level), by separable min and
//! max filters taken in strips that stay in the cache.

use crate::grey::Grey;
use crate::zeros::zeros;
use crate::Rect;

impl Grey {
    /// Per pixel, how far it stands out of its neighbourhood as a thin
    /// stroke: bright (the white top-hat, level minus the opening with a
    /// `size × size` square) and dark (the black top-hat, the closing minus
    /// level). Strokes narrower than `size` keep their contrast; anatomy,
    /// gradients and flat ground fall to zero.
    pub fn tophats(&self, size: usize) -> [Grey; 2] {
        self.tophats_in_strips(size, STRIP_ROWS, &mut Filter::default())
    }

    /// [`tophats`](Self::tophats) wherever they may reach `level`, zero
    /// where they cannot, and the tiles where they were taken: the
    /// [`REACHING_TILE`] tiles with a cell where they may ([`Bounds`]).
    /// Every level at or above `level`, and every comparison with `level`
    /// or a higher one, is that of the whole image's
    /// top-hats. Flat ground, gradients and soft texture cost the bound's
    /// one pass over their pixels, not the filters' passes.
    pub(crate) fn tophats_reaching(&self, size: usize, level: u8) -> ([Grey; 2], Taken) {
        let bounds = Bounds::of(self, size);
        // whole cells a tile
        let tile = REACHING_TILE.div_ceil(bounds.cell) * bounds.cell;
        self.tophats_where(size, tile, |r| bounds.may_reach(r, level))
    }

    /// [`tophats`](Self::tophats) in the tiles of `tile` × `tile` pixels
    /// that `wanted` asks for, zero elsewhere, and those tiles. Taken a
    /// run of tiles wanted side by side at a time, with the pixels the
    /// opening and closing reach around it ([`tophat_reach`]): the levels
    /// are those of the whole image's top-hats. Their buffers come from
    /// [`zeros`]: [`give_back`](crate::zeros::give_back) them with the
    /// tiles taken when done.
    pub(crate) fn tophats_where(
        &self,
        size: usize,
        tile: usize,
        wanted: impl Fn(&Rect) -> bool,
    ) -> ([Grey; 2], Taken) {
        let (w, h) = (self.width, self.height);
        let taken = Taken::new(w, h, tile, wanted);
        let mut out = [zeros(w * h), zeros(w * h)];
        let mut filter = Filter::default();
        for run in taken.runs() {
            let around = run.grow(tophat_reach(size)).clip(w, h);
            let hats = self
                .crop(around)
                .tophats_in_strips(size, around.height(), &mut filter);
            for (hat, out) in hats.iter().zip(&mut out) {
                for y in run.y0..run.y1 {
                    let from = (y - around.y0) * hat.width + run.x0 - around.x0;
                    out[y * w + run.x0..y * w + run.x1]
                        .copy_from_slice(&hat.data[from..from + run.width()]);
                }
            }
        }
        (out.map(|data| Grey { data, ..*self }), taken)
    }

    /// [`tophats`](Self::tophats), taken `strip` rows at a time, each strip
    /// with the rows its opening and closing reach above and below (exact:
    /// a row's opening reaches `size - 1` rows either side), so that the
    /// eight passes over a strip stay in the cache; with `filter`'s buffers.
    fn tophats_in_strips(&self, size: usize, strip: usize, filter: &mut Filter) -> [Grey; 2] {
        let (w, h) = (self.width, self.height);
        let reach = tophat_reach(size);
        let (mut bright, mut dark) = (Vec::with_capacity(w * h), Vec::with_capacity(w * h));
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

/// The tiles of an image in which levels were taken ([`Grey::tophats_where`]):
/// elsewhere they are zero, and a pass over the levels may skip them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Side of a tile, pixels.
    tile: usize,
    /// Rows of the image.
    height: usize,
    /// Per row of tiles, its runs of tiles taken side by side, as column
    /// ranges, left to right.
    spans: Vec<Vec<std::ops::Range<usize>>>,
}

impl Taken {
    /// The tiles of `tile` × `tile` pixels of a `width` × `height` image
    /// that `wanted` asks for (each asked once).
    pub(crate) fn new(
        width: usize,
        height: usize,
        tile: usize,
        wanted: impl Fn(&Rect) -> bool,
    ) -> Taken {
        let tile = tile.max(1);
        let spans = (0..height)
            .step_by(tile)
            .map(|y0| {
                let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
                for x0 in (0..width).step_by(tile) {
                    let r = Rect {
                        x0,
                        y0,
                        x1: (x0 + tile).min(width),
                        y1: (y0 + tile).min(height),
                    };
                    if !wanted(&r) {
                        continue;
                    }
                    match spans.last_mut() {
                        Some(last) if last.end == x0 => last.end = r.x1,
                        _ => spans.push(x0..r.x1),
                    }
                }
                spans
            })
            .collect();
        Taken {
            tile,
            height,
            spans,
        }
    }

    /// Every pixel of a `width` × `height` image: one tile.
    pub fn all(width: usize, height: usize) -> Taken {
        let tile = width.max(height).max(1);
        let spans = vec![(width > 0).then_some(0..width).into_iter().collect()];
        Taken {
            tile,
            height,
            spans,
        }
    }

    /// The column ranges of row `y` in tiles taken, left to right.
    pub fn spans(&self, y: usize) -> &[std::ops::Range<usize>] {
        self.spans.get(y / self.tile).map_or(&[], Vec::as_slice)
    }

    /// Whether a tile taken overlaps `r`: a span of a row of tiles it
    /// crosses reaches into its columns.
    pub fn overlaps(&self, r: &Rect) -> bool {
        if r.width() == 0 || r.height() == 0 {
            return false;
        }
        (r.y0 / self.tile..=(r.y1 - 1) / self.tile)
            .filter_map(|row| self.spans.get(row))
            .any(|spans| spans.iter().any(|s| s.start < r.x1 && r.x0 < s.end))
    }

    /// The runs of tiles taken side by side, as boxes.
    pub(crate) fn runs(&self) -> impl Iterator<Item = Rect> + '_ {
        self.spans.iter().enumerate().flat_map(move |(row, spans)| {
            spans.iter().map(move |s| Rect {
                x0: s.start,
                y0: row * self.tile,
                x1: s.end,
                y1: ((row + 1) * self.tile).min(self.height),
            })
        })
    }
}

/// Side (pixels) of the squares whose extremes bound the top-hats
/// ([`Bounds`]; at least the top-hats' square): small enough to be tight
/// beside an edge or on a gradient, large enough that the bound costs
/// little.
const BOUND_SQUARE: usize = 8;

/// Side (pixels; whole cells of [`Bounds`]) of the tiles
/// [`Grey::tophats_reaching`] takes the top-hats in: a tile needs the
/// pixels its opening reaches around it, so small tiles would take many
/// pixels twice.
const REACHING_TILE: usize = 32;

/// How far the top-hats may reach in each cell of an image, from the least
/// and greatest levels of its squares of 2 × 2 cells (a cell is half a
/// square a side). A pixel's opening is the greatest of the least levels of
/// the top-hats' squares that hold it, and each square of cells that holds
/// the pixel holds one of them: so the opening is at least the greatest of
/// the least levels of the squares of cells around the cell, and the bright
/// top-hat (level minus opening) at most the cell's greatest level minus
/// that. Likewise the closing is at most the least of their greatest
/// levels, and the dark top-hat at most that minus the cell's least level.
/// Beside an edge or a gradient a square on either side is nearly flat, so
/// only the cells the edge crosses may reach far. Cells cut by the image's
/// right or bottom edge hold no such square and may reach anything.
struct Bounds {
    /// Side of a cell, pixels.
    cell: usize,
    /// Cells in a row of cells.
    across: usize,
    /// Per cell, row of cells by row of cells, the most a top-hat reaches
    /// in it.
    reach: Vec<u8>,
}

impl Bounds {
    /// The bounds of `img`'s top-hats of a `size × size` square, per cell
    /// of half [`BOUND_SQUARE`] (or of half the top-hats' square) a side.
    fn of(img: &Grey, size: usize) -> Bounds {
        let (w, h) = (img.width, img.height);
        let cell = BOUND_SQUARE.max(size).div_ceil(2).max(1);
        let across = w.div_ceil(cell);
        // the whole cells, then the squares of 2 × 2 of them, then for
        // each whole cell the squares that hold it (the grid of squares
        // edged: min and max take a level twice alike); cells cut by the
        // edges stay at the most
        let (whole_across, whole_down) = (w / cell, h / cell);
        let mut reach = vec![u8::MAX; across * h.div_ceil(cell)];
        if whole_across < 2 || whole_down < 2 {
            return Bounds {
                cell,
                across,
                reach,
            };
        }
        let (lo, hi) = whole_cell_extremes(img, cell);
        // the least a pixel's opening is, the most its closing
        let opening = lo.pairs_along(u8::min).pairs_down(u8::min).edged();
        let opening = opening.pairs_along(u8::max).pairs_down(u8::max);
        let closing = hi.pairs_along(u8::max).pairs_down(u8::max).edged();
        let closing = closing.pairs_along(u8::min).pairs_down(u8::min);
        for (i, row) in reach.chunks_mut(across).take(whole_down).enumerate() {
            let at = i * whole_across..(i + 1) * whole_across;
            let bright = hi.data[at.clone()].iter().zip(&opening.data[at.clone()]);
            let dark = closing.data[at.clone()].iter().zip(&lo.data[at]);
            // (each of those squares holds the cell: the opening's bound
            // lies at or under its least level, the closing's at or over
            // its greatest)
            for (r, ((&h, &o), (&c, &l))) in row.iter_mut().zip(bright.zip(dark)) {
                *r = (h - o).max(c - l);
            }
        }
        Bounds {
            cell,
            across,
            reach,
        }
    }

    /// Whether a top-hat may reach `level` in one of the cells of the tile
    /// `r` (whole cells, or cut by the image's edges).
    fn may_reach(&self, r: &Rect, level: u8) -> bool {
        let cells = |a: usize, b: usize| a / self.cell..b.div_ceil(self.cell);
        cells(r.y0, r.y1).any(|i| {
            self.reach[i * self.across..][cells(r.x0, r.x1)]
                .iter()
                .any(|&reach| reach >= level)
        })
    }
}

/// The least and greatest levels of each whole cell of `cell` × `cell`
/// pixels of `img` (none of those its right and bottom edges cut), row of
/// cells by row of cells.
fn whole_cell_extremes(img: &Grey, cell: usize) -> (Grid, Grid) {
    let w = img.width;
    let (across, down) = (w / cell, img.height / cell);
    let (mut least, mut most) = (
        Vec::with_capacity(across * down),
        Vec::with_capacity(across * down),
    );
    let span = across * cell;
    let (mut lo, mut hi) = (vec![0u8; span], vec![0u8; span]);
    let mut buffers = Default::default();
    for rows in img.data.chunks_exact(cell * w).take(down) {
        // down the columns first, a row at a time (a loop that
        // vectorises), then along
        lo.copy_from_slice(&rows[..span]);
        hi.copy_from_slice(&rows[..span]);
        for row in rows.chunks_exact(w).skip(1) {
            for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                (*l, *h) = ((*l).min(v), (*h).max(v));
            }
        }
        cells_along(&lo, cell, u8::min, &mut buffers, &mut least);
        cells_along(&hi, cell, u8::max, &mut buffers, &mut most);
    }
    let grid = |data| Grid {
        width: across,
        data,
    };
    (grid(least), grid(most))
}

/// `f` (min or max) over each cell of `cell` levels of `v` (whole cells),
/// appended to `into`: the windows of a cell's width ([`windows`], passes
/// that vectorise) of which those that start a cell, with `buffers` for
/// them.
fn cells_along<F: Fn(u8, u8) -> u8 + Copy>(
    v: &[u8],
    cell: usize,
    f: F,
    (scratch, windowed): &mut ([Vec<u8>; 2], Vec<u8>),
    into: &mut Vec<u8>,
) {
    windowed.clear();
    windows(v, cell, 1, f, scratch, windowed);
    into.extend(windowed.iter().step_by(cell));
}

/// A grid of levels, row by row: the extremes of cells or of squares.
struct Grid {
    /// Levels in a row.
    width: usize,
    data: Vec<u8>,
}

impl Grid {
    /// `f` of each two levels side by side (a column fewer).
    fn pairs_along(&self, f: impl Fn(u8, u8) -> u8 + Copy) -> Grid {
        let mut data = Vec::with_capacity(self.data.len());
        for row in self.data.chunks(self.width) {
            data.extend(row.iter().zip(&row[1..]).map(|(&a, &b)| f(a, b)));
        }
        Grid {
            width: self.width - 1,
            data,
        }
    }

    /// `f` of each two levels one above the other (a row fewer).
    fn pairs_down(&self, f: impl Fn(u8, u8) -> u8) -> Grid {
        let below = &self.data[self.width.min(self.data.len())..];
        let mut data = Vec::with_capacity(below.len());
        data.extend(self.data.iter().zip(below).map(|(&a, &b)| f(a, b)));
        Grid {
            width: self.width,
            data,
        }
    }

    /// The grid with its first and last rows and columns repeated around it.
    fn edged(&self) -> Grid {
        let rows = self.data.chunks(self.width);
        let edged_rows = rows.clone().take(1).chain(rows.clone()).chain(rows.last());
        let mut data = Vec::with_capacity((self.width + 2) * (self.data.len() / self.width + 2));
        for row in edged_rows {
            data.push(row[0]);
            data.extend_from_slice(row);
            data.push(row[row.len() - 1]);
        }
        Grid {
            width: self.width + 2,
            data,
        }
    }
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
    rows: Vec<u8>,
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
    /// wide, into `out`: along the rows by [`windows`], then down the
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
        // every row padded with `r` identities at both ends, one after
        // another, filtered along in one go (no work a row); of each
        // padded row's results the first `w` are its own, the rest
        // straddle two rows
        let padded_width = w + 2 * r;
        self.padded.clear();
        for line in data.chunks_exact(w) {
            self.padded.extend(std::iter::repeat_n(id, r));
            self.padded.extend_from_slice(line);
            self.padded.extend(std::iter::repeat_n(id, r));
        }
        self.rows.clear();
        windows(
            &self.padded,
            2 * r + 1,
            1,
            f,
            &mut self.scratch,
            &mut self.rows,
        );
        // `r` rows of identities above and below the rows filtered along
        self.along.clear();
        self.along.resize(r * w, id);
        for own in self.rows.chunks(padded_width) {
            self.along.extend_from_slice(&own[..w]);
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
    use crate::grey::tests::{image, noise};

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
        let img = image(w, h, noise(w * h, 12345));
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
                let [b, d] = img.tophats_in_strips(size, strip, &mut Filter::default());
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
        let img = image(w, h, noise(w * h, 99));
        // every other tile of 8 (tiles cut at the right and bottom edges)
        let wanted = |r: &Rect| (r.x0 / 8 + r.y0 / 8).is_multiple_of(2);
        for size in [3, 7] {
            let whole = img.tophats(size);
            let (tiled, taken) = img.tophats_where(size, 8, wanted);
            for (whole, tiled) in whole.iter().zip(&tiled) {
                for y in 0..h {
                    for x in 0..w {
                        let in_wanted = wanted(&Rect::pixel(x / 8 * 8, y / 8 * 8));
                        let expected = if in_wanted { whole.at(x, y) } else { 0 };
                        assert_eq!(tiled.at(x, y), expected, "{size} ({x}, {y})");
                        // and the spans taken say so
                        let spanned = taken.spans(y).iter().any(|s| s.contains(&x));
                        assert_eq!(spanned, in_wanted, "({x}, {y})");
                        assert_eq!(taken.overlaps(&Rect::pixel(x, y)), in_wanted);
                    }
                }
            }
            assert_eq!(taken.spans(9), [8..16, 24..32, 40..48]);
            // a box overlaps a tile taken when any of its pixels lies in one
            let corner = Rect::pixel(7, 7).union(&Rect::pixel(9, 9));
            assert!(taken.overlaps(&corner));
            let inside = Rect::pixel(9, 1).union(&Rect::pixel(14, 6));
            assert!(!taken.overlaps(&inside));
            let down = Rect::pixel(9, 1).union(&Rect::pixel(14, 9));
            assert!(taken.overlaps(&down), "through the second row of tiles");
            // nor does an empty box, even inside one
            let empty = Rect {
                x1: 2,
                y1: 5,
                ..Rect::pixel(2, 2)
            };
            assert!(!taken.overlaps(&empty));
        }
        // tiles side by side make one span
        let taken = Taken::new(20, 5, 4, |r| r.x0 != 8);
        assert_eq!(taken.spans(4), [0..8, 12..20]);
        assert_eq!(Taken::all(20, 5).spans(4), std::slice::from_ref(&(0..20)));
    }

    #[test]
    fn only_the_cells_a_step_crosses_may_reach() {
        // 30 left of column 22, 200 from it: the step crosses the cells of
        // columns 20-23; every square of cells either side is flat
        let (w, h) = (64, 32);
        let img = image(
            w,
            h,
            (0..w * h)
                .map(|i| if i % w < 22 { 30 } else { 200 })
                .collect(),
        );
        let bounds = Bounds::of(&img, 7);
        assert_eq!((bounds.cell, bounds.across), (4, 16));
        for (k, &reach) in bounds.reach.iter().enumerate() {
            let crossed = k % bounds.across == 5;
            assert_eq!(reach, if crossed { 170 } else { 0 }, "cell {k}");
        }
        // a cell the right edge cuts may reach anything
        let cut = img.crop(Rect::pixel(0, 0).union(&Rect::pixel(w - 2, h - 1)));
        assert_eq!(Bounds::of(&cut, 7).reach[15], u8::MAX);
    }

    #[test]
    fn tophats_reaching_a_level_agree_with_the_whole_image_at_it() {
        // rows 0-39: a soft gradient with a little noise (tiles the bound
        // clears) and a few thin strokes; 40-63: strong texture; 64-97:
        // flat ground with a stroke exactly 60 levels up, a bright square
        // of 8 pixels (narrower than a 9 × 9 square), a bright line in the
        // last two rows (cells the edge cuts to two rows, uniform along the
        // line) and right of column 120 bright ground with a dark square of
        // 4 pixels (one cell of 4, flat: only the dark bound sees it)
        let (w, h) = (160, 98);
        let grain = noise(w * h, 7);
        let mut data: Vec<u8> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                match y {
                    0..40 => (x / 3 + y / 2) as u8 + grain[i] % 6,
                    40..64 => grain[i],
                    _ if y >= 96 && x >= 40 => 200,
                    _ if (66..76).contains(&y) && x == 100 => 90,
                    _ if (72..80).contains(&y) && (16..24).contains(&x) => 200,
                    _ if (80..84).contains(&y) && (128..132).contains(&x) => 30,
                    _ if x >= 120 => 200,
                    _ => 30,
                }
            })
            .collect();
        for y in 10..30 {
            for x in [40, 44, 48, 100] {
                data[y * w + x] = 200;
            }
        }
        let img = image(w, h, data);
        for size in [3, 7, 9] {
            let whole = img.tophats(size);
            for level in [4, 24, 60] {
                let (reaching, _) = img.tophats_reaching(size, level);
                for (whole, reaching) in whole.iter().zip(&reaching) {
                    for (i, (&a, &b)) in whole.data.iter().zip(&reaching.data).enumerate() {
                        let agree = a == b || (b == 0 && a < level);
                        assert!(agree, "{size} {level} ({}, {}): {a} {b}", i % w, i / w);
                    }
                }
                // the strokes are kept, the texture taken whole
                assert!(reaching[0].at(44, 20) >= 60, "{size} {level}");
                // (a 3 × 3 square fits in the two rows against the edge)
                assert!(size == 3 || reaching[0].at(60, 97) >= 60, "{size} {level}");
                assert_eq!(reaching[0].at(20, 50), whole[0].at(20, 50));
                assert!(size < 7 || reaching[1].at(129, 81) >= 60, "{size} {level}");
            }
            // and the gradient's small levels skipped at 24
            let skipped = img.tophats_reaching(size, 24).0[0]
                .data
                .iter()
                .zip(&whole[0].data)
                .filter(|(&b, &a)| b != a)
                .count();
            assert!(skipped > 0, "{size}: nothing skipped");
        }
    }
}
