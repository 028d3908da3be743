//! What a frame looks like in grey to the cheap pass and OCR: as a viewer
//! first shows it, and, for a grey frame its window clips, spanning its
//! values too.

use crate::grey::Grey;
use obscura_pixels::{grey_levels, render, Frame, ImageInfo, Photometric, Samples, Window};
use std::ops::Range;

/// Share of a grey frame's pixels its window may clip before the frame is
/// also read spanning its values (1st to 99th percentile).
const CLIPPED: f64 = 0.3;
/// One pixel in this many is counted for those percentiles.
const PERCENTILE_STEP: usize = 7;
/// Samples of a grey frame rendered and counted at a time: few enough that
/// they and their levels stay in a core's cache between the passes, and a
/// whole number of [`PERCENTILE_STEP`]s (a band's counted samples are
/// those of the frame).
const BAND: usize = PERCENTILE_STEP * 4096;

/// What a frame looks like, in grey, as a viewer first shows it; and, for a
/// grey frame whose window leaves more than [`CLIPPED`] of its pixels black
/// or white, spanning its values too: text outside the window is one
/// windowing away from being read; for a colourful frame, its red and
/// blue channels too (coloured text of its ground's luminance).
pub(crate) fn greys(frame: &Frame, info: &ImageInfo) -> Vec<Grey> {
    let grey = matches!(
        frame.photometric,
        Photometric::Monochrome1 | Photometric::Monochrome2
    );
    if !grey || info.window.is_none() {
        return Grey::renderings(render(frame, info, None));
    }
    // as shown, a band at a time: the band's clipped levels are counted
    // while it is in the cache, and so are its samples for the percentiles
    // while the frame looks like being read spanning too (later otherwise)
    let n = frame.samples.len();
    let levels = grey_levels(frame, info, None);
    let mut shown = Vec::with_capacity(n);
    let (mut clipped, mut sampled, mut later) = (0, None, Vec::new());
    for start in (0..n).step_by(BAND) {
        let run = start..n.min(start + BAND);
        levels.extend(run.clone(), &mut shown);
        clipped += clipped_levels(&shown[run.clone()]);
        if clipped as f64 >= CLIPPED / 2.0 * run.end as f64 {
            sampled
                .get_or_insert_with(|| Sampled::new(frame))
                .add(frame, run);
        } else {
            later.push(run);
        }
    }
    let shown = Grey {
        width: frame.width as usize,
        height: frame.height as usize,
        data: shown,
    };
    if (clipped as f64) < CLIPPED * n as f64 {
        return vec![shown];
    }
    let mut sampled = sampled.unwrap_or_else(|| Sampled::new(frame));
    for run in later {
        sampled.add(frame, run);
    }
    // percentiles of every few pixels: plenty for a window, and cheap
    let counted = n.div_ceil(PERCENTILE_STEP);
    // (no samples, no rank: order_statistics answers none)
    let ranks = [counted / 100, counted.saturating_sub(1 + counted / 100)];
    let Some([lo, hi]) = sampled.order_statistics(frame, ranks) else {
        return vec![shown];
    };
    let modality = |v: i64| v as f64 * info.slope + info.intercept;
    let (lo, hi) = (
        modality(lo).min(modality(hi)),
        modality(lo).max(modality(hi)),
    );
    // black or white because they are the ends of what is shown (the ground
    // around an ultrasound sector), not clipped by the window
    let shows_all = info
        .window
        .is_some_and(|w| lo >= w.center - w.width / 2.0 && hi <= w.center + w.width / 2.0);
    if shows_all {
        return vec![shown];
    }
    let spanning = render(frame, info, Some(Window::spanning(lo, hi.max(lo + 1.0))));
    std::iter::once(shown)
        .chain(Grey::renderings(spanning))
        .collect()
}

/// How many of `levels` are 0 or 255 (the two levels that wrap to 0 and 1;
/// counted in u8 lanes, 255 at a time: a sum that vectorises).
fn clipped_levels(levels: &[u8]) -> usize {
    levels
        .chunks(255)
        .map(|c| {
            usize::from(
                c.iter()
                    .map(|&v| u8::from(v.wrapping_add(1) <= 1))
                    .sum::<u8>(),
            )
        })
        .sum()
}

/// Every [`PERCENTILE_STEP`]-th sample of a frame from the first, as
/// counted for its percentiles, a run of samples at a time.
enum Sampled {
    /// 16 bits stored or fewer: how many hold each stored bit pattern, in
    /// four counts taken in turn (a run of one pattern does not wait on
    /// one count).
    Patterns(Vec<[u32; 4]>),
    /// Wider: the values themselves (selected from).
    Values(Vec<i64>),
}

impl Sampled {
    /// None counted yet, of `frame`.
    fn new(frame: &Frame) -> Sampled {
        if (1..=16).contains(&frame.bits_stored) {
            Sampled::Patterns(vec![[0; 4]; 1 << frame.bits_stored])
        } else {
            Sampled::Values(Vec::new())
        }
    }

    /// Count the samples of `run` of `frame` (`run` starts at a multiple of
    /// [`PERCENTILE_STEP`]).
    fn add(&mut self, frame: &Frame, run: Range<usize>) {
        match self {
            Sampled::Patterns(counts) => {
                let mask = (1u32 << frame.bits_stored).wrapping_sub(1) as u16;
                fn count<S: Copy>(counts: &mut [[u32; 4]], v: &[S], bits: impl Fn(S) -> u16) {
                    for (n, &s) in v.iter().step_by(PERCENTILE_STEP).enumerate() {
                        counts[usize::from(bits(s))][n % 4] += 1;
                    }
                }
                match &frame.samples {
                    Samples::U1(v) | Samples::U8(v) => {
                        count(counts, &v[run], |s| u16::from(s) & mask)
                    }
                    Samples::U16(v) => count(counts, &v[run], |s| s & mask),
                    Samples::U32(v) => count(counts, &v[run], |s| s as u16 & mask),
                }
            }
            Sampled::Values(values) => frame.each_every(run, PERCENTILE_STEP, |v| values.push(v)),
        }
    }

    /// The `ranks`-th smallest (from 0, each below their count) of the
    /// values counted; none without samples.
    fn order_statistics<const N: usize>(
        self,
        frame: &Frame,
        ranks: [usize; N],
    ) -> Option<[i64; N]> {
        match self {
            Sampled::Values(mut values) => {
                (!values.is_empty()).then(|| ranks.map(|k| *values.select_nth_unstable(k).1))
            }
            Sampled::Patterns(counts) => {
                // the patterns from the least value up: a signed frame's
                // negative ones (sign bit set) first
                let patterns = 1usize << frame.bits_stored;
                let half = if frame.signed { patterns / 2 } else { 0 };
                let ascending = (half..patterns).chain(0..half);
                let greatest = if frame.signed { half - 1 } else { patterns - 1 };
                let counts: Vec<usize> = counts
                    .iter()
                    .map(|c| c.iter().map(|&c| c as usize).sum())
                    .collect();
                let total: usize = counts.iter().sum();
                (total > 0).then(|| {
                    ranks.map(|k| {
                        // the first value with more than `k` values at or under it
                        let mut below = 0;
                        let at = ascending.clone().find(|&p| {
                            below += counts[p];
                            below > k
                        });
                        frame.extend(at.unwrap_or(greatest) as u32)
                    })
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obscura_pixels::VoiFunction;

    #[test]
    fn a_frame_its_window_clips_after_its_first_band_is_read_spanning_its_percentiles() {
        // 12-bit values: the first band within the window (its samples
        // counted after the loop), the next two above it (counted in it)
        let (w, h) = (1000, 3 * BAND / 1000);
        let mut seed = 11u32;
        let samples: Vec<u16> = (0..w * h)
            .map(|i| {
                seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                let base = if i < BAND { 1000 } else { 3000 };
                base + (seed >> 16) as u16 % 100
            })
            .collect();
        let frame = Frame {
            width: w as u32,
            height: h as u32,
            samples_per_pixel: 1,
            bits_stored: 12,
            signed: false,
            photometric: Photometric::Monochrome2,
            samples: Samples::U16(samples.clone()),
        };
        let info = ImageInfo {
            rows: h as u32,
            cols: w as u32,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 12,
            signed: false,
            photometric: Photometric::Monochrome2,
            planar: false,
            frames: 1,
            slope: 1.0,
            intercept: 0.0,
            window: Window::new(1050.0, 200.0, VoiFunction::Linear),
            palette: None,
        };
        let mut every: Vec<u16> = samples.iter().copied().step_by(PERCENTILE_STEP).collect();
        every.sort();
        let c = every.len();
        let (lo, hi) = (f64::from(every[c / 100]), f64::from(every[c - 1 - c / 100]));
        let expected =
            [None, Some(Window::spanning(lo, hi))].map(|window| render(&frame, &info, window).data);
        let read = greys(&frame, &info);
        assert_eq!(
            read.iter().map(|g| &g.data).collect::<Vec<_>>(),
            expected.iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn order_statistics_counted_or_selected_are_those_of_the_sorted_values() {
        let mut seed = 7u64;
        let mut next = |span: i64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i64 % span - span / 3
        };
        // 12-bit signed values and unsigned ones (counted by pattern, in
        // bands), 32-bit ones (selected), one value
        for (span, bits, signed) in [
            (4096, 12, true),
            (4096, 12, false),
            (1 << 32, 32, true),
            (1, 12, true),
        ] {
            let values: Vec<i64> = (0..BAND + 15000).map(|_| next(span)).collect();
            let stored = values.iter().map(|&v| v as u32 & (u32::MAX >> (32 - bits)));
            let frame = Frame {
                width: values.len() as u32,
                height: 1,
                samples_per_pixel: 1,
                bits_stored: bits,
                signed,
                photometric: Photometric::Monochrome2,
                samples: match bits {
                    12 => Samples::U16(stored.map(|v| v as u16).collect()),
                    _ => Samples::U32(stored.collect()),
                },
            };
            let n = values.len();
            let mut sorted: Vec<i64> = (0..n)
                .step_by(PERCENTILE_STEP)
                .map(|i| frame.value(i))
                .collect();
            sorted.sort();
            let mut sampled = Sampled::new(&frame);
            for start in (0..n).step_by(BAND) {
                sampled.add(&frame, start..n.min(start + BAND));
            }
            let last = sorted.len() - 1;
            let ranks = [0, 49, last / 2, last - 49, last];
            assert_eq!(
                sampled.order_statistics(&frame, ranks),
                Some(ranks.map(|k| sorted[k])),
                "{span} {bits} {signed}"
            );
        }
    }
}
