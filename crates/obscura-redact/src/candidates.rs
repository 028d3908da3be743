//! The cheap pass: where text may be. Thin strokes (top-hat) joined along
//! lines into boxes of text-like height; no OCR. An image without such
//! boxes is cleared here, at a small fraction of an OCR's cost.

use crate::grey::Grey;
use crate::Rect;

/// Strokes narrower than this (pixels) stand out in the top-hat; the
/// widest strokes of 24 px bold fonts are about 4 px.
const STROKE_SE: usize = 7;
/// Top-hat level above which a pixel belongs to a stroke.
const STROKE_LEVEL: u8 = 24;
/// Gap between strokes of one line joined, in pixels.
const JOIN_X: usize = 5;
/// Heights of a text line (8-24 px fonts, and up to 40 px); taller boxes
/// are blocks (text merged with texture, or several lines).
const MIN_HEIGHT: usize = 5;
const MAX_LINE_HEIGHT: usize = 40;
/// Fewest stroke pixels in a box.
const MIN_STROKE_PIXELS: usize = 12;

/// Where text may be in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    /// Boxes that may hold one line of text, top to bottom.
    pub lines: Vec<Rect>,
    /// Taller boxes of strokes: text merged with texture, or several lines.
    pub blocks: Vec<Rect>,
    /// The image's bright and dark strokes (top-hats), which blocks are
    /// read from: text stands out of them where the ground is not flat.
    pub strokes: [Grey; 2],
}

/// Boxes of `img` that may hold text.
pub fn candidates(img: &Grey) -> Candidates {
    let (w, h) = (img.width, img.height);
    let strokes = img.tophats(STROKE_SE);
    if w < 8 || h < 8 {
        return Candidates {
            lines: Vec::new(),
            blocks: Vec::new(),
            strokes,
        };
    }
    let stroke: Vec<bool> = strokes[0]
        .data
        .iter()
        .zip(&strokes[1].data)
        .map(|(&b, &d)| b.max(d) >= STROKE_LEVEL)
        .collect();
    // joined along rows: a pixel is "line" if a stroke lies within JOIN_X on both sides
    let mut joined = vec![false; w * h];
    for y in 0..h {
        let row = &stroke[y * w..(y + 1) * w];
        let mut last: Option<usize> = None;
        for x in 0..w {
            if row[x] {
                if let Some(l) = last.filter(|&l| x - l <= JOIN_X + 1) {
                    joined[y * w + l..y * w + x]
                        .iter_mut()
                        .for_each(|p| *p = true);
                }
                joined[y * w + x] = true;
                last = Some(x);
            }
        }
    }
    let mut boxes = components(&joined, w, h)
        .into_iter()
        .filter(|(r, _)| r.height() >= MIN_HEIGHT && r.width() >= 4)
        .map(|(r, _)| r)
        .collect::<Vec<_>>();
    let count = |r: &Rect| {
        (r.y0..r.y1)
            .map(|y| {
                stroke[y * w + r.x0..y * w + r.x1]
                    .iter()
                    .filter(|&&s| s)
                    .count()
            })
            .sum::<usize>()
    };
    boxes.retain(|r| count(r) >= MIN_STROKE_PIXELS);
    let (lines, blocks) = boxes
        .into_iter()
        .partition(|r| r.height() <= MAX_LINE_HEIGHT);
    Candidates {
        lines: merge_lines(lines),
        blocks,
        strokes,
    }
}

/// 8-connected components of `mask`: their boxes and sizes.
fn components(mask: &[bool], w: usize, h: usize) -> Vec<(Rect, usize)> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut r, mut n) = (
            Rect {
                x0: start % w,
                y0: start / w,
                x1: start % w + 1,
                y1: start / w + 1,
            },
            0,
        );
        while let Some(p) = stack.pop() {
            n += 1;
            let (x, y) = (p % w, p / w);
            r = r.union(&Rect {
                x0: x,
                y0: y,
                x1: x + 1,
                y1: y + 1,
            });
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
