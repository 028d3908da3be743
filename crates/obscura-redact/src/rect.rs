//! Rectangles in pixel coordinates, ends exclusive.

/// A rectangle `[x0, x1) × [y0, y1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rect {
    /// Left column.
    pub x0: usize,
    /// Top row.
    pub y0: usize,
    /// One past the right column.
    pub x1: usize,
    /// One past the bottom row.
    pub y1: usize,
}

impl Rect {
    /// The one pixel at (`x`, `y`).
    pub fn pixel(x: usize, y: usize) -> Rect {
        Rect {
            x0: x,
            y0: y,
            x1: x + 1,
            y1: y + 1,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.x1.saturating_sub(self.x0)
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.y1.saturating_sub(self.y0)
    }

    /// Grown by `m` pixels on every side (not below 0).
    pub fn grow(&self, m: usize) -> Rect {
        Rect {
            x0: self.x0.saturating_sub(m),
            y0: self.y0.saturating_sub(m),
            x1: self.x1 + m,
            y1: self.y1 + m,
        }
    }

    /// Grown by `m` pixels left and right (not below 0).
    pub fn widen(&self, m: usize) -> Rect {
        Rect {
            x0: self.x0.saturating_sub(m),
            x1: self.x1 + m,
            ..*self
        }
    }

    /// Clipped to an image of `w × h`.
    pub fn clip(&self, w: usize, h: usize) -> Rect {
        Rect {
            x0: self.x0.min(w),
            y0: self.y0.min(h),
            x1: self.x1.min(w),
            y1: self.y1.min(h),
        }
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, o: &Rect) -> Rect {
        Rect {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }

    /// Whether `o` lies wholly inside.
    pub fn contains(&self, o: &Rect) -> bool {
        o.x0 >= self.x0 && o.y0 >= self.y0 && o.x1 <= self.x1 && o.y1 <= self.y1
    }

    /// What is left of it outside `o`: up to four bands.
    pub fn minus(&self, o: &Rect) -> Vec<Rect> {
        if !self.overlaps(o) {
            return vec![*self];
        }
        let (y0, y1) = (self.y0.max(o.y0), self.y1.min(o.y1));
        [
            Rect { y1: o.y0, ..*self },
            Rect { y0: o.y1, ..*self },
            Rect {
                y0,
                y1,
                x1: o.x0,
                ..*self
            },
            Rect {
                y0,
                y1,
                x0: o.x1,
                ..*self
            },
        ]
        .into_iter()
        .filter(|r| r.x0 < r.x1 && r.y0 < r.y1)
        .collect()
    }

    /// Whether the two share any pixel.
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    /// Pixels the two share.
    pub fn shared(&self, o: &Rect) -> usize {
        let w = self.x1.min(o.x1).saturating_sub(self.x0.max(o.x0));
        let h = self.y1.min(o.y1).saturating_sub(self.y0.max(o.y0));
        w * h
    }
}
