//! The detector's pixel operations, as plain functions on row-major `width x height`
//! slices, kept apart from its state machine. `mask` is `true` where a pixel is
//! ignored. The policy (thresholds, what counts as a light change) is the caller's:
//! see [`detect`](super::detect).

/// The 4x4 grid over which a light change is judged.
pub(super) const GRID: usize = 4;

/// Contrast stretch into `out`: the 4th–96th percentile of the unmasked pixels maps to
/// 0–255. A spread narrower than `min_range` is widened to it around its middle, which
/// caps the gain at `255 / min_range`.
pub(super) fn stretch(pixels: &[u8], mask: &[bool], min_range: i32, out: &mut [u8]) {
    let mut hist = [0u32; 256];
    let mut n = 0u64;
    for (&p, &m) in pixels.iter().zip(mask) {
        if !m {
            hist[usize::from(p)] += 1;
            n += 1;
        }
    }
    let percentile = |pct: u64| {
        let want = n * pct / 100;
        let mut seen = 0u64;
        for (v, &c) in hist.iter().enumerate() {
            seen += u64::from(c);
            if seen > want {
                return v as i32;
            }
        }
        255
    };
    let (mut lo, mut hi) = (percentile(4), percentile(96));
    if hi - lo < min_range {
        lo = (lo + hi - min_range) / 2;
        hi = lo + min_range;
    }
    let mut lut = [0u8; 256];
    for (v, entry) in lut.iter_mut().enumerate() {
        *entry = ((v as i32 - lo) * 255 / (hi - lo)).clamp(0, 255) as u8;
    }
    for (s, &p) in out.iter_mut().zip(pixels) {
        *s = lut[usize::from(p)];
    }
}

/// 3x3 binomial blur (1 2 1 ⊗ 1 2 1 / 16, σ ≈ 0.85), edges clamped; `rows` is scratch
/// space of the same size.
pub(super) fn blur(src: &[u8], rows: &mut [u16], dst: &mut [u8], w: usize, h: usize) {
    for y in 0..h {
        let r = &src[y * w..(y + 1) * w];
        for x in 0..w {
            let (l, rr) = (r[x.saturating_sub(1)], r[(x + 1).min(w - 1)]);
            rows[y * w + x] = u16::from(l) + 2 * u16::from(r[x]) + u16::from(rr);
        }
    }
    for y in 0..h {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            let v = rows[up * w + x] + 2 * rows[y * w + x] + rows[down * w + x];
            dst[y * w + x] = ((v + 8) / 16) as u8;
        }
    }
}

/// Marks in `changed` the unmasked pixels of `frame` that differ from `background` by
/// more than `threshold`; returns how many.
pub(super) fn threshold_diff(
    frame: &[u8],
    background: &[f32],
    mask: &[bool],
    threshold: f32,
    changed: &mut [bool],
) -> usize {
    let mut n = 0;
    for (((c, &b), &v), &m) in changed.iter_mut().zip(background).zip(frame).zip(mask) {
        *c = !m && (f32::from(v) - b).abs() > threshold;
        n += usize::from(*c);
    }
    n
}

/// How many unmasked pixels differ by more than `threshold` between two frames of the
/// same size (0 if the sizes differ, e.g. right after a resize).
pub(super) fn changed_between(a: &[u8], b: &[u8], mask: &[bool], threshold: f32) -> usize {
    if a.len() != b.len() {
        return 0;
    }
    a.iter()
        .zip(b)
        .zip(mask)
        .filter(|((&x, &y), &m)| !m && f32::from(x.abs_diff(y)) > threshold)
        .count()
}

/// Mean raw luma of the unmasked pixels of each [`GRID`] cell; NaN for a cell that is
/// more than three-quarters masked, whose mean would hang on a few pixels.
pub(super) fn cell_means(pixels: &[u8], mask: &[bool], w: usize, h: usize) -> Vec<f32> {
    let mut sum = [0u64; GRID * GRID];
    let mut count = [0u32; GRID * GRID];
    let mut total = [0u32; GRID * GRID];
    let col_cell: Vec<usize> = (0..w).map(|x| x * GRID / w).collect();
    for y in 0..h {
        let row_cell = (y * GRID / h) * GRID;
        for (x, &cx) in col_cell.iter().enumerate() {
            let (cell, i) = (row_cell + cx, y * w + x);
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

/// Whether at least `share` of the cells valid in both (and at least four) moved the
/// same way by `shift` levels or more from `old` to `new`.
pub(super) fn cells_moved_together(old: &[f32], new: &[f32], shift: f32, share: f32) -> bool {
    if old.len() != new.len() {
        return false;
    }
    let (mut valid, mut up, mut down) = (0u32, 0u32, 0u32);
    for (&o, &n) in old.iter().zip(new) {
        if o.is_nan() || n.is_nan() {
            continue;
        }
        valid += 1;
        if n - o >= shift {
            up += 1;
        } else if o - n >= shift {
            down += 1;
        }
    }
    valid >= 4 && up.max(down) as f32 >= share * valid as f32
}

/// Scratch space for grouping changed pixels into blobs (union-find).
#[derive(Default)]
pub(super) struct Blobs {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Blobs {
    /// Groups the changed pixels into blobs — pixels within two of each other join, as
    /// a 3x3 dilation would join them — and returns how many changed pixels lie in
    /// blobs of at least `min_blob` pixels.
    pub(super) fn pixels_in_blobs(
        &mut self,
        changed: &[bool],
        w: usize,
        h: usize,
        min_blob: u32,
    ) -> u64 {
        self.parent.resize(w * h, 0);
        self.size.clear();
        self.size.resize(w * h, 0);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if !changed[i] {
                    continue;
                }
                self.parent[i] = i as u32;
                // Neighbours already visited: two rows above (x-2..=x+2), two to the left.
                for dy in 0..=2usize.min(y) {
                    let to = if dy == 0 { x } else { (x + 3).min(w) };
                    for nx in x.saturating_sub(2)..to {
                        let j = (y - dy) * w + nx;
                        if changed[j] {
                            self.union(i, j);
                        }
                    }
                }
            }
        }
        for (i, _) in changed.iter().enumerate().filter(|(_, &c)| c) {
            let root = self.find(i);
            self.size[root] += 1;
        }
        self.size
            .iter()
            .filter(|&&s| s >= min_blob)
            .map(|&s| u64::from(s))
            .sum()
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] as usize != i {
            let up = self.parent[self.parent[i] as usize];
            self.parent[i] = up; // path halving
            i = up as usize;
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller index becomes the root: it was visited first, so its parent
            // entry belongs to this frame.
            self.parent[ra.max(rb)] = ra.min(rb) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_maps_percentiles_to_full_range_and_caps_the_gain() {
        let pixels: Vec<u8> = (0..100).map(|i| 100 + i as u8).collect();
        let mask = vec![false; 100];
        let mut out = vec![0; 100];
        stretch(&pixels, &mask, 32, &mut out);
        assert_eq!((out[0], out[99]), (0, 255));
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
        // A nearly flat picture gets at most 255/32 gain.
        let flat: Vec<u8> = (0..100).map(|i| 50 + (i % 3) as u8).collect();
        stretch(&flat, &mask, 32, &mut out);
        let spread =
            out.iter().max().copied().unwrap_or(0) - out.iter().min().copied().unwrap_or(0);
        assert!(spread <= 16, "2 levels at a gain of 255/32: {spread}");
    }

    #[test]
    fn blobs_join_pixels_two_apart_but_not_three() {
        let (w, h) = (10, 3);
        let mut changed = vec![false; w * h];
        for x in [0, 2, 4] {
            changed[w + x] = true; // one blob of 3: gaps of one pixel
        }
        changed[w + 7] = true; // three away: alone
        let mut blobs = Blobs::default();
        assert_eq!(blobs.pixels_in_blobs(&changed, w, h, 3), 3);
        assert_eq!(blobs.pixels_in_blobs(&changed, w, h, 1), 4);
        assert_eq!(blobs.pixels_in_blobs(&changed, w, h, 4), 0);
    }

    #[test]
    fn cells_moving_in_opposite_directions_are_not_a_light_change() {
        let old = vec![100.0; 16];
        let brighter = vec![120.0; 16];
        assert!(cells_moved_together(&old, &brighter, 10.0, 0.75));
        let mixed: Vec<f32> = (0..16).map(|i| if i < 8 { 120.0 } else { 80.0 }).collect();
        assert!(!cells_moved_together(&old, &mixed, 10.0, 0.75));
        let masked = vec![f32::NAN; 16];
        assert!(!cells_moved_together(&masked, &brighter, 10.0, 0.75));
    }
}
