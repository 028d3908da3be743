//! Whether a line of a cine stays put from one frame to the next. Text
//! burned into a cine does: the scanner draws it into every frame it
//! captures. The anatomy under it does not: an echo's speckle, whose grains
//! the cheap pass takes for letters lined up, changes from frame to frame.

use crate::candidates::{stroke_mask, STROKE_LEVEL, STROKE_SE};
use crate::{Grey, Rect, RedactError};
use obscura_pixels::Frame;

/// Grey levels a stroke pixel may change by between frames and still be
/// the same stroke (lossy compression of what changes around it).
const STILL_LEVELS: u8 = 12;
/// Share of a line's stroke pixels that must keep their level for the line
/// to stay put. Text on flat ground keeps all of them, also through JPEG
/// (deid-data's 30-frame echo: 1.0 at quality 60-95); the speckle lines of
/// that echo keep 0-51 %, against either frame beside.
const STILL_SHARE: f64 = 0.6;

/// A cine's frames in order, each with its renderings and those of the
/// frames before and after it (loaded one frame ahead), so that each is
/// read beside its neighbours.
pub(crate) struct Rolling<F> {
    load: F,
    count: u32,
    loaded: u32,
    before: Option<Vec<Grey>>,
    ahead: Option<(u32, Frame, Vec<Grey>)>,
}

impl<F: FnMut(u32) -> Result<(Frame, Vec<Grey>), RedactError>> Rolling<F> {
    /// The `count` frames that `load` gives (a frame and its renderings).
    pub(crate) fn new(count: u32, load: F) -> Self {
        Rolling {
            load,
            count,
            loaded: 0,
            before: None,
            ahead: None,
        }
    }

    /// The next frame, its number and its renderings; None after the last.
    /// Hand its renderings back with [`Rolling::passed`] when done.
    pub(crate) fn next(&mut self) -> Result<Option<(u32, Frame, Vec<Grey>)>, RedactError> {
        let current = match self.ahead.take() {
            Some(current) => current,
            None if self.loaded == 0 && self.count > 0 => self.load_next()?,
            None => return Ok(None),
        };
        if self.loaded < self.count {
            self.ahead = Some(self.load_next()?);
        }
        Ok(Some(current))
    }

    fn load_next(&mut self) -> Result<(u32, Frame, Vec<Grey>), RedactError> {
        let n = self.loaded;
        let (frame, greys) = (self.load)(n)?;
        self.loaded += 1;
        Ok((n, frame, greys))
    }

    /// The renderings `greys` of the current frame (as given, or redacted
    /// since), each beside the same rendering of the frames around it.
    pub(crate) fn beside<'a>(&'a self, greys: &'a [Grey]) -> Vec<Beside<'a>> {
        let before = self.before.as_deref();
        let after = self.ahead.as_ref().map(|(_, _, g)| g.as_slice());
        greys
            .iter()
            .enumerate()
            .map(|(i, grey)| {
                let others = [before, after].map(|o| o.and_then(|g| g.get(i)));
                Beside::new(grey, others)
            })
            .collect()
    }

    /// Done with the current frame: its renderings are those of the frame
    /// before the next.
    pub(crate) fn passed(&mut self, greys: Vec<Grey>) {
        self.before = Some(greys);
    }
}

/// A rendering of a frame, and the same rendering of the frames beside it
/// in its cine.
pub(crate) struct Beside<'a> {
    /// The rendering read.
    pub(crate) grey: &'a Grey,
    others: Vec<&'a Grey>,
}

impl<'a> Beside<'a> {
    /// `grey`, with the frames before and after it (those there are, of
    /// its size).
    pub(crate) fn new(grey: &'a Grey, others: [Option<&'a Grey>; 2]) -> Self {
        let same_size = |o: &&Grey| o.width == grey.width && o.height == grey.height;
        Beside {
            grey,
            others: others.into_iter().flatten().filter(same_size).collect(),
        }
    }

    /// Whether the strokes of `r` move: against every frame beside, fewer
    /// than [`STILL_SHARE`] of the stroke pixels keep their level. A frame
    /// alone, or a line without strokes, does not move.
    pub(crate) fn moving(&self, r: &Rect) -> bool {
        if self.others.is_empty() {
            return false;
        }
        let at = stroke_pixels(self.grey, r);
        !at.is_empty()
            && self.others.iter().all(|other| {
                let kept = at
                    .iter()
                    .filter(|&&i| self.grey.data[i].abs_diff(other.data[i]) <= STILL_LEVELS)
                    .count();
                (kept as f64) < STILL_SHARE * at.len() as f64
            })
    }
}

/// Where the stroke pixels of box `r` of `grey` are (indices into its
/// data): the strokes as the cheap pass saw them, the top-hat's reach
/// around the box taken in.
fn stroke_pixels(grey: &Grey, r: &Rect) -> Vec<usize> {
    let w = grey.width;
    let r = r.clip(w, grey.height);
    let area = r.grow(STROKE_SE).clip(w, grey.height);
    let strokes = stroke_mask(&grey.crop(area), STROKE_LEVEL);
    (r.y0..r.y1)
        .flat_map(|y| (r.x0..r.x1).map(move |x| (x, y)))
        .filter(|&(x, y)| strokes[(y - area.y0) * area.width() + x - area.x0])
        .map(|(x, y)| y * w + x)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of grains (every pixel's level drawn by `seed`) with a
    /// bright bar, a stroke of text, at the same place whatever the seed.
    fn grains(seed: u64) -> Grey {
        let (width, height) = (60, 30);
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut data: Vec<u8> = (0..width * height)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        for y in 5..8 {
            data[y * width + 5..y * width + 25].fill(255);
        }
        Grey {
            width,
            height,
            data,
        }
    }

    #[test]
    fn text_stays_put_and_grains_that_change_move() {
        let (now, then) = (grains(1), grains(2));
        let beside = Beside::new(&now, [Some(&then), None]);
        let grains_only = Rect {
            x0: 30,
            y0: 12,
            x1: 58,
            y1: 28,
        };
        assert!(beside.moving(&grains_only));
        let bar = Rect {
            x0: 5,
            y0: 5,
            x1: 25,
            y1: 8,
        };
        assert!(!beside.moving(&bar));
        // the same grains in the frame beside: nothing moves
        let same = grains(1);
        assert!(!Beside::new(&now, [None, Some(&same)]).moving(&grains_only));
        assert!(!Beside::new(&now, [None, None]).moving(&grains_only));
    }
}
