//! Frame-sized buffers of zeros, kept by each thread from one frame to
//! the next. The cheap pass writes its top-hats, stroke levels and joins
//! in the tiles taken alone ([`Taken`]), a tenth of a frame or less where
//! there is no text: a buffer zeroed again in those tiles is as good as
//! a new one, for a fraction of clearing a whole frame (3 megapixels, a
//! third of a millisecond; a frame read in two renderings asks for twelve).

use std::cell::RefCell;

use crate::tophat::Taken;

/// Bytes of buffers a thread keeps at most: those of one rendering's
/// passes (six) for frames up to about 5 megapixels; larger frames keep
/// fewer. (A gateway's worker threads each keep theirs while they live.)
const KEPT_BYTES: usize = 32 << 20;

thread_local! {
    /// Buffers given back, all zero.
    static KEPT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// `len` zeros: a buffer of that length given back on this thread, or a
/// new one.
pub(crate) fn zeros(len: usize) -> Vec<u8> {
    KEPT.with_borrow_mut(|kept| {
        let at = kept.iter().position(|b| b.len() == len)?;
        Some(kept.swap_remove(at))
    })
    .unwrap_or_else(|| vec![0; len])
}

/// Give back `levels`, those of a `width`-wide image that are zero outside
/// the tiles `taken`: zeroed in them, they are kept for [`zeros`] (the
/// buffers kept are those of the last frame size given back).
pub(crate) fn give_back(mut levels: Vec<u8>, width: usize, taken: &Taken) {
    for run in taken.runs() {
        for row in levels[run.y0 * width..run.y1 * width].chunks_exact_mut(width) {
            row[run.x0..run.x1].fill(0);
        }
    }
    debug_assert!(
        levels.iter().all(|&v| v == 0),
        "a level was written outside the tiles taken"
    );
    KEPT.with_borrow_mut(|kept| {
        kept.retain(|b| b.len() == levels.len());
        if (kept.len() + 1) * levels.len() <= KEPT_BYTES {
            kept.push(levels);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rect;

    /// The buffers this thread keeps, each all zero or not.
    fn kept_all_zero() -> Vec<bool> {
        KEPT.with_borrow(|kept| kept.iter().map(|b| b.iter().all(|&v| v == 0)).collect())
    }

    #[test]
    fn a_buffer_given_back_comes_back_all_zero() {
        let (w, h) = (40, 20);
        let taken = Taken::new(w, h, 8, |r: &Rect| r.x0 == 8 || (r.x0 == 32 && r.y0 == 16));
        let mut levels = zeros(w * h);
        for run in taken.runs() {
            for y in run.y0..run.y1 {
                levels[y * w + run.x0..y * w + run.x1].fill(200);
            }
        }
        let at = levels.as_ptr();
        give_back(levels, w, &taken);
        assert_eq!(kept_all_zero(), [true]);
        let again = zeros(w * h);
        assert_eq!(again.as_ptr(), at, "the buffer given back is used again");
        assert!(again.iter().all(|&v| v == 0));
        // another size: a new buffer, and those kept are of the last size
        give_back(again, w, &taken);
        give_back(zeros(w * 2 * h), 2 * w, &taken);
        assert_eq!(kept_all_zero(), [true]);
        assert_eq!(KEPT.with_borrow(|k| k[0].len()), 2 * w * h);
    }
}
