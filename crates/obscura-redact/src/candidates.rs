//! The cheap pass: where text may be, and how much it looks like text. No
//! OCR: thin strokes (top-hats) joined along rows into line boxes, and
//! character-like pieces of strokes chained along a line (which finds text
//! drawn over anatomy, where joined strokes merge with the texture). An
//! image without candidates is cleared here, at a small fraction of an
//! OCR's cost.

use crate::grey::Grey;
use crate::tophat::Taken;
use crate::zeros::{give_back, zeros};
use crate::Rect;

/// Strokes narrower than this (pixels) stand out in the top-hat; the
/// widest strokes of 24 px bold fonts are about 4 px.
pub(crate) const STROKE_SE: usize = 7;
/// Top-hat level above which a pixel belongs to a stroke.
pub(crate) const STROKE_LEVEL: u8 = 24;
/// Gap between strokes of one line joined, in pixels.
const JOIN_X: usize = 5;
/// Heights of a text line (8-24 px fonts, and up to 40 px); taller boxes
/// are blocks (text merged with texture, or several lines).
const MIN_HEIGHT: usize = 5;
const MAX_LINE_HEIGHT: usize = 40;
/// Rows of strokes longer than this (pixels) are lines drawn across the
/// image (echo layers, frames, rulers), never letters: left out of the
/// boxes, so that the labels at their ends are not read as one wide line.
const LONG_RUN: usize = 3 * MAX_LINE_HEIGHT;
/// Fewest stroke pixels in a box.
const MIN_STROKE_PIXELS: usize = 12;
/// Heights of a character-like piece of strokes (a glyph, or glyphs
/// touching), and the share of its box its strokes fill.
const CHAR_HEIGHT: (usize, usize) = (4, 34);
const CHAR_FILL: (f32, f32) = (0.12, 0.85);
/// Pieces in a chain from which a candidate is taken for text even when
/// OCR reads nothing in it.
pub const TEXT_LIKE_PIECES: usize = 3;
/// How far (in pixels, and in a share of the median piece's height) the
/// top or the bottom of a letter may lie from the median top or bottom of
/// its chain's pieces: letters share a baseline or a cap line, texture's
/// pieces wander up and down.
const ALIGNED_SLACK: (usize, usize) = (2, 5);

/// Faint strokes on flat ground (text a few levels off a flat ground):
/// their top-hat level, the level the rows above and below a faint piece
/// stay under, and the fewest faint pieces lined up that make a line.
const FAINT_LEVEL: u8 = 8;
const QUIET_LEVEL: u8 = 4;
const FAINT_PIECES: usize = 4;

/// Small text (8-13 px fonts, strokes of 1-2 px) over texture: the strokes
/// of a 3 × 3 top-hat, where the texture and the thicker marks beside the
/// letters (anatomy, fur, a lead marker) drop out; the heights of its
/// character-like pieces, and the fewest lined up in a chain that make a
/// line.
const FINE_SE: usize = 3;
const FINE_HEIGHT: (usize, usize) = (4, 16);
const FINE_PIECES: usize = 4;

/// Tiles (pixels a side) in which the 3 × 3 top-hats are taken, where the
/// 7 × 7's reach the stroke level, or left at zero.
const FINE_TILE: usize = 64;

/// Width to height from which one character-like piece is a word of
/// glyphs touching ([`lone_words`]).
const WORD_WIDTH: usize = 3;

/// Width to height beyond which a candidate without character-like pieces
/// is an edge, not text.
const EDGE_RATIO: usize = 8;

/// A box that may hold one line of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Where.
    pub rect: Rect,
    /// Character-like pieces of strokes lined up in it: how much it looks
    /// like text (see [`TEXT_LIKE_PIECES`]).
    pub pieces: usize,
    /// The most pieces of a chain along it that line up as letters do
    /// (sharing its median top or bottom, [`ALIGNED_SLACK`]): what tells a
    /// line of text from texture that OCR reads nothing in.
    pub aligned: usize,
    /// How wide its character-like pieces reach, from the first's left to
    /// the last's right, in pixels.
    pub lettered: usize,
}

impl Candidate {
    /// Whether it looks enough like text to be redacted unread.
    pub fn text_like(&self) -> bool {
        self.pieces >= TEXT_LIKE_PIECES
    }

    /// Whether its pieces line up as letters do, three or more in a row.
    pub fn aligned(&self) -> bool {
        self.aligned >= TEXT_LIKE_PIECES
    }

    /// Whether it holds no letters worth reading, and is not read: a long
    /// thin run of strokes without a single character-like piece (a ruler,
    /// a dotted scale, an edge: a line of text that long has letters apart
    /// somewhere); or strokes where one piece at most, lined up with
    /// nothing, reaches across less than half the box (speckle, what is
    /// left of a line drawn across the image). A line of small glyphs
    /// touching one another is one piece across its width, and is read.
    pub fn unlettered(&self) -> bool {
        let (w, h) = (self.rect.width(), self.rect.height());
        (self.pieces == 0 && w > EDGE_RATIO * h)
            || (self.pieces <= 1 && self.aligned == 0 && 2 * self.lettered < w)
    }
}

/// Where text may be in an image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidates {
    /// Boxes that may hold one line of text, top to bottom.
    pub lines: Vec<Candidate>,
    /// Taller boxes of strokes: text merged with texture, or several lines
    /// (their text-like lines are among `lines`).
    pub blocks: Vec<Rect>,
    /// Lines of faint strokes on flat ground, away from `lines`: read, and
    /// redacted only for what is read in them (never unread).
    pub faint: Vec<Rect>,
}

impl Candidates {
    /// Whether the image may hold text at all.
    pub fn any_text(&self) -> bool {
        self.lines.iter().any(Candidate::text_like)
    }
}

/// What the cheap pass looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sought {
    /// Lines, blocks and faint lines: what is read.
    All,
    /// Lines and blocks, no faint lines: whether the pixels hold text at
    /// all (faint lines go only for what is read in them, so they never
    /// make pixels not clear).
    Text,
}

/// Boxes of `img` that may hold text.
pub fn candidates(img: &Grey, sought: Sought) -> Candidates {
    let (w, h) = (img.width, img.height);
    if w < 8 || h < 8 {
        return Candidates::default();
    }
    // every level below the least compared with is as good as zero
    let least = match sought {
        Sought::All => QUIET_LEVEL,
        Sought::Text => STROKE_LEVEL,
    };
    // the passes below skip the tiles where the top-hats were not taken
    let ([bright, dark], taken) = img.tophats_reaching(STROKE_SE, least);
    let mut stroke = stroke_levels(&bright, &dark, &taken);
    without_long_runs(&mut stroke, w, STROKE_LEVEL, &taken);
    // pieces of the bright strokes and of the dark apart: together, the
    // ground between the letters of a bright text is a dark stroke, and a
    // line would be one solid piece
    let pieces = (
        char_pieces(&bright, STROKE_LEVEL, &taken),
        char_pieces(&dark, STROKE_LEVEL, &taken),
    );
    let joined = joined(&stroke, w, STROKE_LEVEL, &taken);
    let mut boxes = components(&joined, w, h, 1, &taken)
        .into_iter()
        .filter(|(r, _)| r.height() >= MIN_HEIGHT && r.width() >= 4)
        .map(|(r, _)| r)
        .filter(|r| stroke_count(&stroke, w, r, STROKE_LEVEL) >= MIN_STROKE_PIXELS)
        .collect::<Vec<_>>();
    let (bright_pieces, dark_pieces) = pieces;
    let chained: Vec<Chain> = [&bright_pieces, &dark_pieces]
        .into_iter()
        .flat_map(|ps| chains(ps))
        .collect();
    boxes.extend(chained.iter().map(|c| c.rect));
    let (lines, blocks): (Vec<Rect>, Vec<Rect>) = boxes
        .into_iter()
        .partition(|r| r.height() <= MAX_LINE_HEIGHT);
    let mut lines = merge_lines(lines);
    // small text merged with the taller texture beside it is also a line
    // of its own, read at its own height
    // (its pieces lined up as letters, the texture's left out)
    let small: Vec<Rect> = chained
        .iter()
        .filter_map(|c| {
            let (band, whole) = (c.band, c.pieces >= TEXT_LIKE_PIECES);
            let below = |r: &Rect| {
                lines
                    .iter()
                    .any(|l| l.contains(r) && l.height() >= 2 * r.height())
            };
            let lined = c.aligned >= TEXT_LIKE_PIECES
                && lines
                    .iter()
                    .any(|l| l.contains(&band) && 2 * l.height() >= 3 * band.height());
            match () {
                _ if whole && below(&c.rect) => Some(c.rect),
                _ if lined => Some(band),
                _ => None,
            }
        })
        .collect();
    lines.extend(small);
    lines.extend(lone_words([&bright_pieces, &dark_pieces], &lines, &blocks));
    lines.sort_by_key(|r| (r.y0, r.x0));
    lines.dedup();
    let mut lines: Vec<Candidate> = lines
        .into_iter()
        .map(|rect| {
            // the pieces it holds, bright and dark apart: how many, how wide
            let held = [&bright_pieces, &dark_pieces].map(|ps| {
                let inside: Vec<&Rect> = ps.iter().filter(|p| rect.contains(p)).collect();
                (inside.len(), reach(&inside))
            });
            Candidate {
                rect,
                pieces: held[0].0.max(held[1].0),
                lettered: held[0].1.max(held[1].1),
                aligned: chained
                    .iter()
                    .filter(|c| c.on_line(&rect))
                    .map(|c| c.aligned)
                    .max()
                    .unwrap_or(0),
            }
        })
        .collect();
    lines.extend(fine_lines(img, [&bright, &dark], &taken, &lines));
    lines.sort_by_key(|c| (c.rect.y0, c.rect.x0));
    let faint = match sought {
        Sought::All => faint_lines(&bright, &dark, &taken, &lines),
        Sought::Text => Vec::new(),
    };
    for levels in [bright.data, dark.data, stroke, joined] {
        give_back(levels, w, &taken);
    }
    Candidates {
        lines,
        blocks,
        faint,
    }
}

/// Words whose glyphs touch (one character-like piece at least
/// [`WORD_WIDTH`] × as wide as tall) inside a block and on no line: text
/// whose strokes joined the texture beside it (a bright edge across a
/// name) into a block, with no second piece to chain with. Each is a line
/// of its own, read at its height; a piece overlapping one taken is not.
fn lone_words(pieces: [&[Rect]; 2], lines: &[Rect], blocks: &[Rect]) -> Vec<Rect> {
    let mut words: Vec<Rect> = Vec::new();
    for p in pieces.into_iter().flatten() {
        let wide = p.width() >= WORD_WIDTH * p.height();
        let lone = blocks.iter().any(|b| b.contains(p))
            && !lines.iter().chain(&words).any(|l| l.overlaps(p));
        if wide && lone {
            words.push(*p);
        }
    }
    words
}

/// Lines of small text over texture: character-like pieces of the 3 × 3
/// top-hats ([`FINE_SE`], [`FINE_HEIGHT`]), [`FINE_PIECES`] or more lined
/// up in a chain, not already read at their height by one of `lines` (a
/// line holding them at most 1.5 × their height) nor where a line's
/// pieces already line up as letters (text found: a second, narrower box
/// over it would read its letters cut).
///
/// A 3 × 3 top-hat is nowhere above the 7 × 7 one (`main`, bright and
/// dark): an opening with the larger square lies under the smaller's,
/// and a closing over it. So it is taken only in the tiles where `main`
/// reaches [`STROKE_LEVEL`]; elsewhere it is under that level anyway.
fn fine_lines(img: &Grey, main: [&Grey; 2], taken: &Taken, lines: &[Candidate]) -> Vec<Candidate> {
    let small = |r: &Rect| (FINE_HEIGHT.0..=FINE_HEIGHT.1).contains(&r.height());
    let stroked = |r: &Rect| {
        taken.overlaps(r)
            && main.iter().any(|t| {
                (r.y0..r.y1).any(|y| {
                    let row = &t.data[y * t.width + r.x0..y * t.width + r.x1];
                    row.iter().fold(0, |a, &v| a.max(v)) >= STROKE_LEVEL
                })
            })
    };
    let (fine, fine_taken) = img.tophats_where(FINE_SE, FINE_TILE, stroked);
    fine.into_iter()
        .flat_map(|t| {
            let mut pieces = char_pieces(&t, STROKE_LEVEL, &fine_taken);
            give_back(t.data, t.width, &fine_taken);
            pieces.retain(small);
            chains(&pieces)
        })
        .filter(|c| c.aligned >= FINE_PIECES)
        .filter(|c| {
            !lines.iter().any(|l| {
                (l.rect.contains(&c.band) && 2 * l.rect.height() <= 3 * c.band.height())
                    || (l.aligned() && l.rect.overlaps(&c.band))
            })
        })
        .map(|c| Candidate {
            lettered: c.band.width(),
            rect: c.band,
            pieces: c.aligned,
            aligned: c.aligned,
        })
        .collect()
}

/// Lines of faint strokes ([`FAINT_LEVEL`] and up) on flat ground:
/// character-like pieces whose rows above and below stay under
/// [`QUIET_LEVEL`] in both top-hats, [`FAINT_PIECES`] or more lined up in
/// a chain, away from every line already found.
fn faint_lines(bright: &Grey, dark: &Grey, taken: &Taken, lines: &[Candidate]) -> Vec<Rect> {
    let (w, h) = (bright.width, bright.height);
    let quiet = |y: usize, r: &Rect| {
        let row = y * w + r.x0..y * w + r.x1;
        bright.data[row.clone()]
            .iter()
            .zip(&dark.data[row])
            .all(|(&b, &d)| b.max(d) < QUIET_LEVEL)
    };
    let flat_around =
        |r: &Rect| r.y0 >= 2 && r.y1 + 2 <= h && quiet(r.y0 - 2, r) && quiet(r.y1 + 1, r);
    [bright, dark]
        .into_iter()
        .flat_map(|t| {
            let mut pieces = char_pieces(t, FAINT_LEVEL, taken);
            pieces.retain(flat_around);
            chains(&pieces)
        })
        .filter(|c| c.aligned >= FAINT_PIECES && !lines.iter().any(|l| l.rect.overlaps(&c.band)))
        .map(|c| c.band)
        .collect()
}

/// The character-like pieces of the top-hat `t` (taken in `taken`) at
/// `level` or above.
fn char_pieces(t: &Grey, level: u8, taken: &Taken) -> Vec<Rect> {
    components(&t.data, t.width, t.height, level, taken)
        .into_iter()
        .filter(|&(r, n)| char_like(r, n))
        .map(|(r, _)| r)
        .collect()
}

/// How wide `pieces` reach, from the first's left to the last's right (0
/// for none).
fn reach(pieces: &[&Rect]) -> usize {
    let left = pieces.iter().map(|p| p.x0).min();
    let right = pieces.iter().map(|p| p.x1).max();
    right.zip(left).map_or(0, |(r, l)| r - l)
}

/// Per pixel, the greater of the bright and the dark top-hat (both taken
/// in `taken`, zero elsewhere): how far it stands out as a stroke of either.
fn stroke_levels(bright: &Grey, dark: &Grey, taken: &Taken) -> Vec<u8> {
    let w = bright.width;
    let mut stroke = zeros(bright.data.len());
    for (y, row) in stroke.chunks_exact_mut(w).enumerate() {
        for s in taken.spans(y) {
            let (b, d) = (
                &bright.data[y * w..][s.clone()],
                &dark.data[y * w..][s.clone()],
            );
            for ((v, &b), &d) in row[s.clone()].iter_mut().zip(b).zip(d) {
                *v = b.max(d);
            }
        }
    }
    stroke
}

/// The pixels of `img` that stand out as thin strokes at `level` or above.
pub fn stroke_mask(img: &Grey, level: u8) -> Vec<bool> {
    let [bright, dark] = img.tophats(STROKE_SE);
    let all = Taken::all(img.width, img.height);
    let stroke = stroke_levels(&bright, &dark, &all);
    let mask = stroke.iter().map(|&v| v >= level).collect();
    // (its buffer came from zeros: kept for the cheap pass's next frame)
    give_back(stroke, img.width, &all);
    mask
}

/// The thin strokes of `img` alone, bright or dark, whichever stand out
/// more (its top-hat): text over anatomy or a gradient without its ground,
/// for a second reading.
pub fn strokes_only(img: &Grey) -> Grey {
    let [bright, dark] = img.tophats(STROKE_SE);
    let sum = |g: &Grey| g.data.iter().map(|&v| u64::from(v)).sum::<u64>();
    if sum(&bright) >= sum(&dark) {
        bright
    } else {
        dark
    }
}

/// `stroke` (taken in `taken`) without its runs at `level` or above along
/// a row longer than [`LONG_RUN`].
fn without_long_runs(stroke: &mut [u8], w: usize, level: u8, taken: &Taken) {
    for (y, row) in stroke.chunks_exact_mut(w).enumerate() {
        let long: Vec<(usize, usize)> = runs_taken(row, y, level, taken)
            .filter(|(s, e)| e - s > LONG_RUN)
            .collect();
        for (start, end) in long {
            row[start..end].fill(0);
        }
    }
}

/// Stroke pixels (at `level` or above, taken in `taken`) joined along
/// rows: 1 where a stroke lies within `JOIN_X` on both sides, 0 elsewhere.
/// (Tiles not taken are wider than `JOIN_X`: no join crosses one.)
fn joined(stroke: &[u8], w: usize, level: u8, taken: &Taken) -> Vec<u8> {
    let mut joined = zeros(stroke.len());
    for (y, (row, out)) in stroke
        .chunks_exact(w)
        .zip(joined.chunks_exact_mut(w))
        .enumerate()
    {
        let mut last_end: Option<usize> = None;
        for (start, end) in runs_taken(row, y, level, taken) {
            // the gap before this run bridged when short
            let from = last_end.filter(|&e| start - e <= JOIN_X).unwrap_or(start);
            out[from..end].fill(1);
            last_end = Some(end);
        }
    }
    joined
}

/// The runs of pixels at `level` or above along `row`: (first, one past the
/// last), left to right. Strokes are mostly absent: skipped [`SKIP`]
/// pixels at a time (their greatest level, a loop that vectorises).
fn set_runs(row: &[u8], level: u8) -> impl Iterator<Item = (usize, usize)> + '_ {
    const SKIP: usize = 32;
    let w = row.len();
    let mut x = 0;
    std::iter::from_fn(move || {
        while x + SKIP <= w && row[x..x + SKIP].iter().fold(0, |a, &v| a.max(v)) < level {
            x += SKIP;
        }
        let start = x + row.get(x..)?.iter().position(|&v| v >= level)?;
        let end = row[start..]
            .iter()
            .position(|&v| v < level)
            .map_or(w, |e| start + e);
        x = end;
        Some((start, end))
    })
}

/// The runs of [`set_runs`] along row `y`, `row`, in the spans of
/// `taken` alone (zero elsewhere): the same runs, for less reading.
fn runs_taken<'a>(
    row: &'a [u8],
    y: usize,
    level: u8,
    taken: &'a Taken,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    taken.spans(y).iter().flat_map(move |s| {
        set_runs(&row[s.clone()], level).map(move |(a, b)| (a + s.start, b + s.start))
    })
}

fn stroke_count(stroke: &[u8], w: usize, r: &Rect, level: u8) -> usize {
    (r.y0..r.y1)
        .map(|y| {
            stroke[y * w + r.x0..y * w + r.x1]
                .iter()
                .filter(|&&v| v >= level)
                .count()
        })
        .sum()
}

/// Whether a piece of strokes (`n` pixels in box `r`) is shaped like a
/// glyph or a few touching glyphs: a text line's height, not a long thin
/// edge, neither empty nor solid.
fn char_like(r: Rect, n: usize) -> bool {
    let (pw, ph) = (r.width(), r.height());
    let fill = n as f32 / (pw * ph) as f32;
    (CHAR_HEIGHT.0..=CHAR_HEIGHT.1).contains(&ph)
        && pw <= 8 * ph
        && (CHAR_FILL.0..=CHAR_FILL.1).contains(&fill)
}

/// Character-like pieces chained side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Chain {
    rect: Rect,
    pieces: usize,
    /// Its pieces whose top or bottom lies at the median top or bottom of
    /// its pieces, and their box.
    aligned: usize,
    band: Rect,
}

impl Chain {
    /// The chain of `pieces` (two or more).
    fn of(pieces: &[Rect]) -> Chain {
        let median = |mut v: Vec<usize>| {
            let mid = v.len() / 2;
            *v.select_nth_unstable(mid).1
        };
        let top = median(pieces.iter().map(|p| p.y0).collect());
        let bottom = median(pieces.iter().map(|p| p.y1).collect());
        let slack = ALIGNED_SLACK
            .0
            .max(median(pieces.iter().map(Rect::height).collect()) / ALIGNED_SLACK.1);
        let lined: Vec<&Rect> = pieces
            .iter()
            .filter(|p| p.y0.abs_diff(top) <= slack || p.y1.abs_diff(bottom) <= slack)
            .collect();
        Chain {
            rect: pieces.iter().fold(pieces[0], |r, p| r.union(p)),
            pieces: pieces.len(),
            aligned: lined.len(),
            band: lined.iter().fold(*lined[0], |r, p| r.union(p)),
        }
    }

    /// Whether it runs along the line `r` (overlaps it, rows shared by
    /// half the chain's height): a chain may reach beyond a line's box.
    fn on_line(&self, r: &Rect) -> bool {
        let c = &self.rect;
        let rows = c.y1.min(r.y1).saturating_sub(c.y0.max(r.y0));
        c.overlaps(r) && rows * 2 >= c.height()
    }
}

/// Pieces side by side on one line (rows overlapping by half the smaller,
/// heights within 2.5×, gaps at most the taller's height) chained; the
/// chains of two pieces or more.
fn chains(pieces: &[Rect]) -> Vec<Chain> {
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by_key(|&i| pieces[i].x0);
    let mut parent: Vec<usize> = (0..pieces.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (k, &i) in order.iter().enumerate() {
        let a = pieces[i];
        for &j in &order[k + 1..] {
            let b = pieces[j];
            let tall = a.height().max(b.height());
            if b.x0 > a.x1 + tall {
                break;
            }
            let overlap = a.y1.min(b.y1).saturating_sub(a.y0.max(b.y0));
            let short = a.height().min(b.height());
            if overlap * 2 >= short && tall * 2 <= short * 5 {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    let mut groups: std::collections::HashMap<usize, Vec<Rect>> = Default::default();
    for (i, piece) in pieces.iter().enumerate() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(*piece);
    }
    let mut out: Vec<Chain> = groups
        .into_values()
        .filter(|g| g.len() >= 2)
        .map(|g| Chain::of(&g))
        .collect();
    out.sort();
    out
}

/// 8-connected components of the pixels of `levels` (taken in `taken`,
/// zero elsewhere) at `level` or above: their boxes and sizes, in the
/// order of their first pixel row by row. Runs of set pixels along each
/// row are joined with the runs they touch on the row above (union-find,
/// the earliest run the root), so that the work goes with the runs, not
/// the pixels.
fn components(levels: &[u8], w: usize, h: usize, level: u8, taken: &Taken) -> Vec<(Rect, usize)> {
    // runs (row, first column, one past the last), row by row
    let runs: Vec<(usize, usize, usize)> = levels
        .chunks_exact(w)
        .take(h)
        .enumerate()
        .flat_map(|(y, row)| runs_taken(row, y, level, taken).map(move |(x0, x1)| (y, x0, x1)))
        .collect();
    let mut parent: Vec<usize> = (0..runs.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    // the runs of the row above still to be compared: from `above` on
    let mut above = 0;
    for i in 0..runs.len() {
        let (y, x0, x1) = runs[i];
        while above < i && (runs[above].0 + 1 < y || (runs[above].0 + 1 == y && runs[above].2 < x0))
        {
            above += 1;
        }
        // runs of the row above that touch this one, diagonals included
        let mut j = above;
        while j < i && runs[j].0 + 1 == y && runs[j].1 <= x1 {
            let (a, b) = (root(&mut parent, i), root(&mut parent, j));
            let (first, later) = (a.min(b), a.max(b));
            parent[later] = first;
            j += 1;
        }
    }
    // numbered in the order of their roots, each the first run of its
    // component (a run's parent is never a later run): a run's parent,
    // earlier, already holds its component's number
    let mut found: Vec<(Rect, usize)> = Vec::new();
    for i in 0..runs.len() {
        let (y, x0, x1) = runs[i];
        let r = Rect {
            x0,
            y0: y,
            x1,
            y1: y + 1,
        };
        let p = parent[i];
        parent[i] = if p == i {
            found.push((r, 0));
            found.len() - 1
        } else {
            parent[p]
        };
        let (b, n) = &mut found[parent[i]];
        *b = b.union(&r);
        *n += x1 - x0;
    }
    found
}

/// Boxes on one line (overlapping rows, a small gap) joined.
fn merge_lines(mut boxes: Vec<Rect>) -> Vec<Rect> {
    boxes.sort_by_key(|r| (r.x0, r.y0));
    let mut merged: Vec<Rect> = Vec::new();
    for b in boxes {
        let same_line = |m: &Rect| {
            let overlap = b.y1.min(m.y1).saturating_sub(b.y0.max(m.y0));
            let h = b.height().min(m.height());
            let gap = b.x0.saturating_sub(m.x1);
            overlap * 2 >= h && gap <= 2 * b.height().max(m.height()) && b.x0 + 1 >= m.x0
        };
        match merged.iter_mut().rev().find(|m| same_line(m)) {
            Some(m) if m.union(&b).height() <= MAX_LINE_HEIGHT => *m = m.union(&b),
            _ => merged.push(b),
        }
    }
    merged.sort_by_key(|r| (r.y0, r.x0));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grey::tests::{image, noise};

    /// A grey ground `w` × 60 px with bright 2-px-stroke boxes of `size`
    /// (two thirds as wide) from row 20, at `xs`.
    fn image_with_glyphs(w: usize, xs: impl IntoIterator<Item = usize>, size: usize) -> Grey {
        let h = 60;
        let mut data = vec![90u8; w * h];
        for x0 in xs {
            for y in 20..20 + size {
                for x in x0..x0 + size * 2 / 3 {
                    let edge = y < 22 || y >= 18 + size || x < x0 + 2 || x >= x0 + size * 2 / 3 - 2;
                    if edge {
                        data[y * w + x] = 230;
                    }
                }
            }
        }
        Grey {
            width: w,
            height: h,
            data,
        }
    }

    /// A grey ground with `glyphs` bright 2-px-stroke boxes of `size` in a row.
    fn image_with_row(glyphs: usize, size: usize) -> Grey {
        image_with_glyphs(200, (0..glyphs).map(|g| 10 + g * (size + 3)), size)
    }

    #[test]
    fn a_row_of_glyphs_is_text_like_and_flat_ground_is_not() {
        let found = candidates(&image_with_row(5, 10), Sought::All);
        assert!(found.any_text(), "{found:?}");
        assert!(found.lines.iter().any(Candidate::aligned), "{found:?}");
        assert!(!candidates(&image_with_row(0, 10), Sought::All).any_text());
    }

    #[test]
    fn candidates_found_one_image_after_another_are_those_of_a_fresh_thread() {
        // the same size, so that each reuses the buffers the one before
        // gave back (zeros): text, noise (the most tiles taken), a row
        // elsewhere, flat ground
        let images = [
            image_with_row(5, 10),
            image(200, 60, noise(200 * 60, 7)),
            image_with_glyphs(200, (0..6).map(|g| 90 + g * 14), 12),
            image_with_glyphs(200, [], 10),
        ];
        for sought in [Sought::All, Sought::Text] {
            for img in &images {
                let fresh = std::thread::scope(|s| s.spawn(|| candidates(img, sought)).join());
                assert_eq!(candidates(img, sought), fresh.expect("no panic"));
            }
        }
    }

    /// The components of `mask` found pixel by pixel (a flood fill from
    /// each unseen pixel, row by row).
    fn flood_components(mask: &[bool], w: usize, h: usize) -> Vec<(Rect, usize)> {
        let mut seen = vec![false; w * h];
        let mut out = Vec::new();
        for start in 0..w * h {
            if !mask[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            let mut stack = vec![start];
            let (mut r, mut n) = (Rect::pixel(start % w, start / w), 0);
            while let Some(p) = stack.pop() {
                n += 1;
                let (x, y) = (p % w, p / w);
                r = r.union(&Rect::pixel(x, y));
                for ny in y.saturating_sub(1)..(y + 2).min(h) {
                    for nx in x.saturating_sub(1)..(x + 2).min(w) {
                        let q = ny * w + nx;
                        if mask[q] && !seen[q] {
                            seen[q] = true;
                            stack.push(q);
                        }
                    }
                }
            }
            out.push((r, n));
        }
        out
    }

    #[test]
    fn a_line_drawn_across_the_image_leaves_the_labels_at_its_ends_apart() {
        // three glyphs, a bright line 2 px thick from 5 px after them to
        // 5 px before three more (an ultrasound's echo layers between its
        // labels): one line 370 px wide, were the line's strokes joined
        let mut img = image_with_glyphs(400, [10, 23, 36, 345, 358, 371], 10);
        for y in 24..26 {
            img.data[y * 400 + 47..y * 400 + 340].fill(230);
        }
        let found = candidates(&img, Sought::All);
        assert!(
            found.lines.iter().all(|c| c.rect.width() < 100),
            "{found:?}"
        );
        for labels in [0..50, 340..400] {
            assert!(
                found.lines.iter().any(|c| c.text_like()
                    && labels.contains(&c.rect.x0)
                    && labels.contains(&(c.rect.x1 - 1))),
                "{found:?}"
            );
        }
    }

    #[test]
    fn a_word_joined_with_an_edge_into_a_block_is_a_line_of_its_own() {
        // six glyphs touching (one piece 36 px wide), and a bright bar
        // 3 px wide down the whole image 2 px after them: their strokes
        // join into a block 60 px tall, with no second piece to chain
        let mut img = image_with_glyphs(200, (0..6).map(|g| 10 + 6 * g), 10);
        for y in 0..60 {
            img.data[y * 200 + 48..y * 200 + 51].fill(230);
        }
        let found = candidates(&img, Sought::All);
        assert!(found.blocks.iter().any(|b| b.height() == 60), "{found:?}");
        let word = found
            .lines
            .iter()
            .find(|c| c.rect.x0 <= 10 && c.rect.x1 >= 46 && c.rect.height() <= 12);
        assert!(word.is_some_and(|c| !c.unlettered()), "{found:?}");
    }

    #[test]
    fn small_glyphs_touching_are_read_and_a_speck_on_a_strip_is_not() {
        // six glyphs side by side, touching: one piece across the line
        let found = candidates(
            &image_with_glyphs(200, (0..6).map(|g| 10 + 6 * g), 10),
            Sought::All,
        );
        let line = found
            .lines
            .iter()
            .find(|c| c.rect.x0 <= 10 && c.rect.x1 >= 46);
        assert!(
            line.is_some_and(|c| c.pieces == 1 && !c.unlettered()),
            "{found:?}"
        );
        // one speck of texture on a strip 160 px wide, lined up with nothing
        let strip = |pieces, aligned, lettered| Candidate {
            rect: Rect {
                x0: 0,
                y0: 0,
                x1: 160,
                y1: 7,
            },
            pieces,
            aligned,
            lettered,
        };
        assert!(strip(1, 0, 10).unlettered());
        assert!(!strip(1, 0, 100).unlettered());
        assert!(!strip(2, 0, 10).unlettered());
        assert!(!strip(1, 2, 10).unlettered());
    }

    #[test]
    fn components_are_those_of_a_flood_fill_in_the_same_order() {
        let (w, h) = (61, 47);
        let mut x = 7u32;
        for density in [10, 35, 50, 65, 90] {
            // levels 0-99, a share `density` of them at the level or above
            let levels: Vec<u8> = (0..w * h)
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    ((x >> 16) % 100) as u8
                })
                .collect();
            let level = 100 - density as u8;
            let mask: Vec<bool> = levels.iter().map(|&v| v >= level).collect();
            assert_eq!(
                components(&levels, w, h, level, &Taken::all(w, h)),
                flood_components(&mask, w, h),
                "{density}"
            );
        }
    }

    #[test]
    fn faint_text_on_flat_ground_is_a_faint_line() {
        // glyphs 12 levels above a flat ground: under the stroke level
        let mut img = image_with_row(6, 12);
        img.data
            .iter_mut()
            .for_each(|v| *v = if *v == 230 { 102 } else { *v });
        let found = candidates(&img, Sought::All);
        assert!(found.lines.is_empty(), "{found:?}");
        assert_eq!(found.faint.len(), 1, "{found:?}");
        // not sought when only whether the pixels hold text is asked
        assert_eq!(candidates(&img, Sought::Text), Candidates::default());
        // the same glyphs at full contrast are a line, not a faint one
        let found = candidates(&image_with_row(6, 12), Sought::All);
        assert!(
            !found.lines.is_empty() && found.faint.is_empty(),
            "{found:?}"
        );
    }

    /// The rows `ys` across an image `w` wide.
    fn full_width_rows(ys: std::ops::Range<usize>, w: usize) -> Rect {
        Rect {
            x0: 0,
            y0: ys.start,
            x1: w,
            y1: ys.end,
        }
    }

    #[test]
    fn small_text_touching_thicker_marks_is_a_fine_line() {
        // 9 px glyphs of 1 px strokes, each touching a 5 px wide bright bar
        // 40 px tall (a lead marker, fur, vessels): in the 7 × 7 top-hat
        // glyphs and bars are one piece too tall for a letter
        let (w, h) = (200, 60);
        let mut data = vec![90u8; w * h];
        for g in 0..6 {
            let x0 = 10 + g * 13;
            for y in 10..50 {
                for x in x0 + 6..x0 + 11 {
                    data[y * w + x] = 230;
                }
            }
            for y in 25..34 {
                for x in x0..x0 + 6 {
                    if y == 25 || y == 33 || x == x0 || x == x0 + 5 {
                        data[y * w + x] = 170;
                    }
                }
            }
        }
        let img = Grey {
            width: w,
            height: h,
            data,
        };
        let found = candidates(&img, Sought::All);
        let row = full_width_rows(23..36, w);
        assert!(
            found
                .lines
                .iter()
                .any(|c| row.contains(&c.rect) && c.aligned() && c.text_like()),
            "{found:?}"
        );
    }

    #[test]
    fn text_found_gets_no_second_narrower_fine_line() {
        // a row of glyphs joined with a thin mark twice their height, and a
        // seventh glyph of 1 px strokes touching a 5 px bar: the 3 × 3
        // pieces line up a little further than the 7 × 7 ones, but the
        // text is found already
        let mut img = image_with_row(6, 10);
        let w = img.width;
        for y in 14..36 {
            img.data[y * w + 70] = 230;
            for x in 94..99 {
                img.data[y * w + x] = 230;
            }
        }
        for y in 20..30 {
            for x in 88..94 {
                if y == 20 || y == 29 || x == 88 || x == 93 {
                    img.data[y * w + x] = 230;
                }
            }
        }
        let found = candidates(&img, Sought::All);
        let row = full_width_rows(20..30, w);
        let over: Vec<&Candidate> = found
            .lines
            .iter()
            .filter(|c| c.rect.overlaps(&row))
            .collect();
        assert!(over.iter().any(|c| c.aligned()), "{found:?}");
        assert!(
            over.iter().all(|c| c.rect.x1 != 94 && c.rect.x1 != 93),
            "{found:?}"
        );
    }

    #[test]
    fn strokes_only_keeps_the_letters_without_their_ground() {
        let img = image_with_row(3, 10);
        let strokes = strokes_only(&img);
        assert_eq!(strokes.at(100, 5), 0, "ground");
        assert_eq!(strokes.at(10, 25), 230 - 90, "a stroke");
    }
}
