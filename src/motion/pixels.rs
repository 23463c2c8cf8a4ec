//! The detector's pixel operations, as plain functions on row-major `width x height`
//! slices, kept apart from its state machine. The policy (thresholds, what counts as a
//! light change) is the caller's: see [`detect`](super::detect).
//!
//! They run on every analysed frame, up to 25 times a second per camera, next to a
//! decoder that costs well under a millisecond a frame, so they are written for speed:
//! each pass is a straight loop over whole rows or slices — no per-pixel index
//! arithmetic, edge clamping or branches — which the compiler turns into vector
//! instructions. Masks and change maps are bytes rather than `bool`s so that masking is
//! an AND: a mask byte is [`KEEP`] (all ones) where a pixel counts and 0 where it is
//! ignored; a change map holds 1 where a pixel changed. `tests_pixels` checks each
//! function against a plain per-pixel version on pseudo-random frames.

/// The 4x4 grid over which a light change is judged.
pub(super) const GRID: usize = 4;
/// Mask byte of a pixel that counts; ANDed with a value, it keeps the value.
pub(super) const KEEP: u8 = 0xFF;

/// The byte mask of `ignored` (`true` where a pixel is ignored, as zones rasterise).
pub(super) fn keep_mask(ignored: &[bool]) -> Vec<u8> {
    ignored.iter().map(|&m| if m { 0 } else { KEEP }).collect()
}

/// Contrast stretch into `out`: the 4th–96th percentile of the unmasked pixels maps to
/// 0–255. A spread narrower than `min_range` is widened to it around its middle, which
/// caps the gain at `255 / min_range`.
pub(super) fn stretch(pixels: &[u8], keep: &[u8], min_range: i32, out: &mut [u8]) {
    // Four histograms filled in turn and added up: with one, neighbouring pixels of
    // the same value (most of them, in a smooth picture) would each wait for the
    // previous increment of their bin.
    let mut hists = [[0u32; 256]; 4];
    let (pixel_quads, keep_quads) = (pixels.chunks_exact(4), keep.chunks_exact(4));
    let (pixel_rest, keep_rest) = (pixel_quads.remainder(), keep_quads.remainder());
    for (p, k) in pixel_quads.zip(keep_quads) {
        for (hist, (&v, &m)) in hists.iter_mut().zip(p.iter().zip(k)) {
            hist[usize::from(v)] += u32::from(m & 1);
        }
    }
    for (&v, &m) in pixel_rest.iter().zip(keep_rest) {
        hists[0][usize::from(v)] += u32::from(m & 1);
    }
    let mut hist = [0u32; 256];
    for (v, total) in hist.iter_mut().enumerate() {
        *total = hists.iter().map(|h| h[v]).sum();
    }
    let n: u64 = hist.iter().map(|&c| u64::from(c)).sum();
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
/// space of the same size. Horizontal sums per row first, then the vertical pass over
/// three rows of them at a time; only the first and last column need clamping.
pub(super) fn blur(src: &[u8], rows: &mut [u16], dst: &mut [u8], w: usize, h: usize) {
    if w == 0 || h == 0 {
        return;
    }
    for (row, sums) in src.chunks_exact(w).zip(rows.chunks_exact_mut(w)).take(h) {
        let at = |x: usize| u16::from(row[x]);
        let clamped = |x: usize| at(x.saturating_sub(1)) + 2 * at(x) + at((x + 1).min(w - 1));
        sums[0] = clamped(0);
        sums[w - 1] = clamped(w - 1);
        if w > 2 {
            let (left, mid, right) = (&row[..w - 2], &row[1..w - 1], &row[2..]);
            for (((s, &l), &m), &r) in sums[1..w - 1].iter_mut().zip(left).zip(mid).zip(right) {
                *s = u16::from(l) + 2 * u16::from(m) + u16::from(r);
            }
        }
    }
    let rows = &rows[..w * h];
    for (y, out) in dst.chunks_exact_mut(w).take(h).enumerate() {
        let row = |y: usize| &rows[y * w..(y + 1) * w];
        let (up, mid, down) = (row(y.saturating_sub(1)), row(y), row((y + 1).min(h - 1)));
        for (((d, &u), &m), &b) in out.iter_mut().zip(up).zip(mid).zip(down) {
            *d = ((u + 2 * m + b + 8) / 16) as u8;
        }
    }
}

/// Marks in `changed` (1, else 0) the unmasked pixels of `frame` that differ from
/// `background` by more than `threshold`; returns how many.
pub(super) fn threshold_diff(
    frame: &[u8],
    background: &[f32],
    keep: &[u8],
    threshold: f32,
    changed: &mut [u8],
) -> usize {
    for (((c, &b), &v), &k) in changed.iter_mut().zip(background).zip(frame).zip(keep) {
        *c = k & u8::from((f32::from(v) - b).abs() > threshold);
    }
    count_ones(changed)
}

/// How many unmasked pixels differ by more than `threshold` between two frames of the
/// same size (0 if the sizes differ, e.g. right after a resize).
pub(super) fn changed_between(a: &[u8], b: &[u8], keep: &[u8], threshold: u8) -> usize {
    if a.len() != b.len() {
        return 0;
    }
    let mut total = 0;
    // In blocks whose count fits the byte lanes the compiler sums them in.
    for ((a, b), k) in a.chunks(255).zip(b.chunks(255)).zip(keep.chunks(255)) {
        let block: u8 = a
            .iter()
            .zip(b)
            .zip(k)
            .map(|((&x, &y), &m)| m & u8::from(x.abs_diff(y) > threshold))
            .sum();
        total += usize::from(block);
    }
    total
}

/// The number of 1 bytes in a change map.
fn count_ones(changed: &[u8]) -> usize {
    changed
        .chunks(255)
        .map(|block| usize::from(block.iter().sum::<u8>()))
        .sum()
}

/// Where the [`GRID`] x [`GRID`] light-change cells lie in frames of one size, and how
/// many unmasked pixels each holds: fixed for a size and mask, so worked out once, and
/// each frame's means are then sums of row segments.
pub(super) struct CellGrid {
    width: usize,
    /// First pixel column of each cell column, then the width.
    col_starts: [usize; GRID + 1],
    /// First pixel row of each cell row, then the height.
    row_starts: [usize; GRID + 1],
    /// Unmasked pixels per cell, or 0 for a cell that is more than three-quarters
    /// masked, whose mean would hang on a few pixels.
    counted: [u32; GRID * GRID],
}

impl CellGrid {
    /// The grid of `w` x `h` frames with the mask `keep`. Pixel column `x` is in cell
    /// column `x * GRID / w` (the first `x` of cell column `c` is `ceil(c * w / GRID)`),
    /// likewise for rows.
    pub(super) fn new(keep: &[u8], w: usize, h: usize) -> CellGrid {
        let starts =
            |len: usize| -> [usize; GRID + 1] { std::array::from_fn(|c| (c * len).div_ceil(GRID)) };
        let mut grid = CellGrid {
            width: w,
            col_starts: starts(w),
            row_starts: starts(h),
            counted: [0; GRID * GRID],
        };
        let (counts, areas) = (grid.sums(&vec![1; w * h], keep), grid.areas());
        for (counted, (count, total)) in grid.counted.iter_mut().zip(counts.iter().zip(areas)) {
            let count = *count as u32;
            *counted = if count > 0 && count * 4 >= total {
                count
            } else {
                0
            };
        }
        grid
    }

    /// Mean raw luma of the unmasked pixels of each cell; NaN for a cell more than
    /// three-quarters masked.
    pub(super) fn means(&self, pixels: &[u8], keep: &[u8]) -> Vec<f32> {
        let sums = self.sums(pixels, keep);
        sums.iter()
            .zip(&self.counted)
            .map(|(&sum, &count)| {
                if count > 0 {
                    sum as f32 / count as f32
                } else {
                    f32::NAN
                }
            })
            .collect()
    }

    /// Pixels per cell, masked or not.
    fn areas(&self) -> [u32; GRID * GRID] {
        std::array::from_fn(|cell| {
            let (cy, cx) = (cell / GRID, cell % GRID);
            let rows = self.row_starts[cy + 1] - self.row_starts[cy];
            let cols = self.col_starts[cx + 1] - self.col_starts[cx];
            (rows * cols) as u32
        })
    }

    /// Per cell, the sum of `pixels & keep`.
    fn sums(&self, pixels: &[u8], keep: &[u8]) -> [u64; GRID * GRID] {
        let w = self.width;
        let mut sums = [0u64; GRID * GRID];
        for (cy, cell_row) in sums.chunks_exact_mut(GRID).enumerate() {
            for y in self.row_starts[cy]..self.row_starts[cy + 1] {
                let (row, mask) = (&pixels[y * w..(y + 1) * w], &keep[y * w..(y + 1) * w]);
                for (cx, sum) in cell_row.iter_mut().enumerate() {
                    let cols = self.col_starts[cx]..self.col_starts[cx + 1];
                    let segment = row[cols.clone()].iter().zip(&mask[cols]);
                    *sum += u64::from(segment.map(|(&p, &m)| u32::from(p & m)).sum::<u32>());
                }
            }
        }
        sums
    }
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

/// Scratch space for grouping changed pixels into blobs (union-find). Only the entries
/// of this frame's changed pixels are written and read, so nothing is cleared between
/// frames, and a frame with little change costs little more than finding its changed
/// rows.
#[derive(Default)]
pub(super) struct Blobs {
    parent: Vec<u32>,
    size: Vec<u32>,
    /// This frame's changed pixels, in row-major order.
    members: Vec<u32>,
}

impl Blobs {
    /// Groups the changed pixels (non-zero in `changed`) into blobs — pixels within two
    /// of each other join, as a 3x3 dilation would join them — and returns how many
    /// changed pixels lie in blobs of at least `min_blob` pixels.
    pub(super) fn pixels_in_blobs(
        &mut self,
        changed: &[u8],
        w: usize,
        h: usize,
        min_blob: u32,
    ) -> u64 {
        if w == 0 || h == 0 {
            return 0;
        }
        self.parent.resize(w * h, 0);
        self.size.resize(w * h, 0);
        self.members.clear();
        for (y, row) in changed.chunks_exact(w).take(h).enumerate() {
            if row.iter().fold(0, |any, &c| any | c) == 0 {
                continue;
            }
            for x in (0..w).filter(|&x| row[x] != 0) {
                let i = y * w + x;
                self.parent[i] = i as u32;
                self.size[i] = 0;
                self.members.push(i as u32);
                // Neighbours already visited: two rows above (x-2..=x+2), two to the
                // left. `i` is its own root until it joins one of theirs.
                let mut root = i;
                let (from, to) = (x.saturating_sub(2), (x + 3).min(w));
                for dy in (0..=2usize.min(y)).rev() {
                    let start = (y - dy) * w;
                    let end = if dy == 0 { x } else { to };
                    for j in (start + from..start + end).filter(|&j| changed[j] != 0) {
                        root = self.join(root, j);
                    }
                }
            }
        }
        for k in 0..self.members.len() {
            let root = self.find(self.members[k] as usize);
            self.size[root] += 1;
        }
        self.members
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| self.parent[i] as usize == i && self.size[i] >= min_blob)
            .map(|i| u64::from(self.size[i]))
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

    /// Merges the blob whose root is `root` with the blob of `j`; returns the merged
    /// blob's root (the smaller of the two).
    fn join(&mut self, root: usize, j: usize) -> usize {
        let other = self.find(j);
        if other == root {
            return root;
        }
        let (keep, merged) = (root.min(other), root.max(other));
        self.parent[merged] = keep as u32;
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_maps_percentiles_to_full_range_and_caps_the_gain() {
        let pixels: Vec<u8> = (0..100).map(|i| 100 + i as u8).collect();
        let keep = vec![KEEP; 100];
        let mut out = vec![0; 100];
        stretch(&pixels, &keep, 32, &mut out);
        assert_eq!((out[0], out[99]), (0, 255));
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
        // A nearly flat picture gets at most 255/32 gain.
        let flat: Vec<u8> = (0..100).map(|i| 50 + (i % 3) as u8).collect();
        stretch(&flat, &keep, 32, &mut out);
        let spread =
            out.iter().max().copied().unwrap_or(0) - out.iter().min().copied().unwrap_or(0);
        assert!(spread <= 16, "2 levels at a gain of 255/32: {spread}");
    }

    #[test]
    fn blobs_join_pixels_two_apart_but_not_three() {
        let (w, h) = (10, 3);
        let mut changed = vec![0u8; w * h];
        for x in [0, 2, 4] {
            changed[w + x] = 1; // one blob of 3: gaps of one pixel
        }
        changed[w + 7] = 1; // three away: alone
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
