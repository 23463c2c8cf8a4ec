//! The detector's pixel operations against plain per-pixel versions of the same
//! definitions (the code they replaced, and a flood fill for the blobs), on
//! pseudo-random frames of awkward sizes and masks: the fast versions must give
//! identical results, bit for bit.

use super::pixels::{self, Blobs, CellGrid, GRID, KEEP};

/// Numerical Recipes' 32-bit LCG: reproducible pseudo-random bytes without a crate.
struct Lcg(u32);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0 >> 8
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 16) as u8
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u32) -> bool {
        self.next() % 100 < percent
    }
}

/// Sizes with edges of every kind: one pixel, two, not a multiple of the grid, the
/// detector's own 160x90 and its 4:3 sibling.
const SIZES: [(usize, usize); 10] = [
    (160, 90),
    (160, 120),
    (161, 91),
    (7, 5),
    (1, 1),
    (1, 9),
    (9, 1),
    (2, 2),
    (3, 2),
    (4, 17),
];

/// Frames to test with: noise, and smooth gradients with a little noise (long runs of
/// equal values, as in real pictures).
fn frames(rng: &mut Lcg, w: usize, h: usize) -> Vec<Vec<u8>> {
    let noise = (0..w * h).map(|_| rng.byte()).collect();
    let smooth = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let wobble = if rng.chance(20) { rng.byte() % 3 } else { 0 };
            (40 + x / 2 + y / 3 + usize::from(wobble)).min(255) as u8
        })
        .collect();
    vec![noise, smooth]
}

/// Ignore masks (`true` = ignored): none, scattered, mostly masked, all masked.
fn masks(rng: &mut Lcg, n: usize) -> Vec<Vec<bool>> {
    vec![
        vec![false; n],
        (0..n).map(|_| rng.chance(30)).collect(),
        (0..n).map(|_| rng.chance(90)).collect(),
        vec![true; n],
    ]
}

/// The same definition, with the percentiles read off the sorted unmasked pixels.
fn reference_stretch(pixels: &[u8], mask: &[bool], min_range: i32, out: &mut [u8]) {
    let mut unmasked: Vec<u8> = pixels
        .iter()
        .zip(mask)
        .filter(|(_, &m)| !m)
        .map(|(&p, _)| p)
        .collect();
    unmasked.sort_unstable();
    let percentile = |pct: usize| {
        let at = unmasked.len() * pct / 100;
        unmasked.get(at).map_or(255, |&v| i32::from(v))
    };
    let (mut lo, mut hi) = (percentile(4), percentile(96));
    if hi - lo < min_range {
        lo = (lo + hi - min_range) / 2;
        hi = lo + min_range;
    }
    for (s, &p) in out.iter_mut().zip(pixels) {
        *s = ((i32::from(p) - lo) * 255 / (hi - lo)).clamp(0, 255) as u8;
    }
}

fn reference_blur(src: &[u8], w: usize, h: usize) -> Vec<u8> {
    let at = |x: usize, y: usize| u16::from(src[y * w + x]);
    let mut dst = vec![0; w * h];
    for y in 0..h {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            let (left, right) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let row = |y: usize| at(left, y) + 2 * at(x, y) + at(right, y);
            let v = row(up) + 2 * row(y) + row(down);
            dst[y * w + x] = ((v + 8) / 16) as u8;
        }
    }
    dst
}

fn reference_cell_means(pixels: &[u8], mask: &[bool], w: usize, h: usize) -> Vec<f32> {
    let mut sum = [0u64; GRID * GRID];
    let mut count = [0u32; GRID * GRID];
    let mut total = [0u32; GRID * GRID];
    for y in 0..h {
        for x in 0..w {
            let (cell, i) = ((y * GRID / h) * GRID + x * GRID / w, y * w + x);
            total[cell] += 1;
            if !mask[i] {
                sum[cell] += u64::from(pixels[i]);
                count[cell] += 1;
            }
        }
    }
    (0..sum.len())
        .map(|c| {
            if count[c] > 0 && count[c] * 4 >= total[c] {
                sum[c] as f32 / count[c] as f32
            } else {
                f32::NAN
            }
        })
        .collect()
}

/// Changed pixels in groups of at least `min_blob`, grouping pixels within two of each
/// other (Chebyshev distance ≤ 2), by flood fill.
fn reference_pixels_in_blobs(changed: &[bool], w: usize, h: usize, min_blob: u32) -> u64 {
    let mut seen = vec![false; w * h];
    let mut total = 0;
    for start in 0..w * h {
        if !changed[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let (mut stack, mut size) = (vec![start], 0u64);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(2)..(y + 3).min(h) {
                for nx in x.saturating_sub(2)..(x + 3).min(w) {
                    let j = ny * w + nx;
                    if changed[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if size >= u64::from(min_blob) {
            total += size;
        }
    }
    total
}

fn same_floats(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn stretch_blur_and_cell_means_match_the_plain_versions() {
    let mut rng = Lcg(12_345);
    for (w, h) in SIZES {
        for frame in frames(&mut rng, w, h) {
            for mask in masks(&mut rng, w * h) {
                let keep = pixels::keep_mask(&mask);
                for min_range in [32, 255] {
                    let (mut fast, mut plain) = (vec![0; w * h], vec![0; w * h]);
                    pixels::stretch(&frame, &keep, min_range, &mut fast);
                    reference_stretch(&frame, &mask, min_range, &mut plain);
                    assert_eq!(fast, plain, "stretch {w}x{h}, range {min_range}");
                }
                let means = CellGrid::new(&keep, w, h).means(&frame, &keep);
                let plain = reference_cell_means(&frame, &mask, w, h);
                assert!(
                    same_floats(&means, &plain),
                    "{w}x{h}: {means:?} vs {plain:?}"
                );
            }
            let (mut rows, mut blurred) = (vec![0; w * h], vec![0; w * h]);
            pixels::blur(&frame, &mut rows, &mut blurred, w, h);
            assert_eq!(blurred, reference_blur(&frame, w, h), "blur {w}x{h}");
        }
    }
}

#[test]
fn differences_match_the_plain_versions() {
    let mut rng = Lcg(777);
    for (w, h) in SIZES {
        let frame: Vec<u8> = (0..w * h).map(|_| rng.byte()).collect();
        // Near the frame, and sometimes exactly `threshold` away: the boundary.
        let offsets = [-31.0, -30.0, -29.5, -0.25, 0.0, 12.0, 30.0, 30.5, 64.0];
        let background: Vec<f32> = frame
            .iter()
            .map(|&v| f32::from(v) + offsets[rng.next() as usize % offsets.len()])
            .collect();
        let other: Vec<u8> = frame
            .iter()
            .map(|&v| v.wrapping_add([0, 29, 30, 31, 200][rng.next() as usize % 5]))
            .collect();
        for mask in masks(&mut rng, w * h) {
            let keep = pixels::keep_mask(&mask);
            for threshold in [10u8, 30, 50] {
                let t = f32::from(threshold);
                let mut changed = vec![7; w * h];
                let count = pixels::threshold_diff(&frame, &background, &keep, t, &mut changed);
                let plain: Vec<bool> = (0..w * h)
                    .map(|i| !mask[i] && (f32::from(frame[i]) - background[i]).abs() > t)
                    .collect();
                let as_bytes: Vec<u8> = plain.iter().map(|&c| u8::from(c)).collect();
                assert_eq!(changed, as_bytes, "{w}x{h} at {threshold}");
                assert_eq!(count, plain.iter().filter(|&&c| c).count());

                let between = pixels::changed_between(&frame, &other, &keep, threshold);
                let plain_between = (0..w * h)
                    .filter(|&i| !mask[i] && f32::from(frame[i].abs_diff(other[i])) > t)
                    .count();
                assert_eq!(between, plain_between, "{w}x{h} at {threshold}");
            }
        }
        assert_eq!(
            pixels::changed_between(&frame, &other[1..], &[KEEP; 0], 30),
            0
        );
    }
}

#[test]
fn blobs_match_a_flood_fill() {
    let mut rng = Lcg(4_242);
    let mut blobs = Blobs::default();
    // One scratch space for every size, as the detector keeps it across a resize.
    for (w, h) in SIZES {
        for density in [0, 1, 5, 20, 45, 100] {
            let changed: Vec<bool> = (0..w * h).map(|_| rng.chance(density)).collect();
            let bytes: Vec<u8> = changed.iter().map(|&c| u8::from(c)).collect();
            for min_blob in [1, 3, 8, 40] {
                assert_eq!(
                    blobs.pixels_in_blobs(&bytes, w, h, min_blob),
                    reference_pixels_in_blobs(&changed, w, h, min_blob),
                    "{w}x{h}, {density} % changed, blobs of {min_blob}+"
                );
            }
        }
    }
}
