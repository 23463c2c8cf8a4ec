//! Ignore zones: parts of the picture where change never counts as motion (a busy
//! road, a tree in the wind, the camera's burnt-in clock).
//!
//! Zones are stored in normalised coordinates — x to the right, y down, both in
//! [0, 1] across the whole picture — so that a configuration survives a change of the
//! camera's resolution or of the analysis size. They are rasterised once per analysis
//! size into a per-pixel mask; a pixel belongs to a zone when its centre does.

use super::MotionError;

/// One ignored area, in normalised picture coordinates.
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    /// An axis-aligned rectangle between two corners (any two opposite corners).
    Rect { x0: f32, y0: f32, x1: f32, y1: f32 },
    /// A closed polygon of at least three `(x, y)` vertices; the last joins the first.
    /// Self-intersecting outlines are filled by the even–odd rule.
    Polygon(Vec<(f32, f32)>),
}

impl Zone {
    /// Checks that the zone is meaningful: finite coordinates within [0, 1], a
    /// rectangle of non-zero size, a polygon of three or more vertices. `index` only
    /// names the zone in the error. Rasterising never fails; this exists so that the
    /// configuration layer can reject a typo instead of silently masking nothing.
    pub fn validate(&self, index: usize) -> Result<(), MotionError> {
        let in_range = |v: f32| v.is_finite() && (0.0..=1.0).contains(&v);
        let err = |reason| Err(MotionError::InvalidZone { index, reason });
        match self {
            Zone::Rect { x0, y0, x1, y1 } => {
                if ![x0, y0, x1, y1].iter().all(|v| in_range(**v)) {
                    return err("coordinates must be numbers between 0 and 1");
                }
                if x0 == x1 || y0 == y1 {
                    return err("rectangle has no area");
                }
            }
            Zone::Polygon(points) => {
                if points.len() < 3 {
                    return err("a polygon needs at least three points");
                }
                if !points.iter().all(|&(x, y)| in_range(x) && in_range(y)) {
                    return err("coordinates must be numbers between 0 and 1");
                }
            }
        }
        Ok(())
    }
}

/// Rasterises `zones` at `width` x `height`: row-major, `true` where the pixel is
/// ignored. Rasterising never fails: a zone with a non-finite coordinate masks nothing
/// (failing towards "record too much", never towards "miss motion"), and coordinates
/// outside [0, 1] simply fall off the picture.
pub fn rasterise(zones: &[Zone], width: u32, height: u32) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    let mut mask = vec![false; w * h];
    let mut crossings = Vec::new();
    for zone in zones {
        let outline = match zone {
            Zone::Rect { x0, y0, x1, y1 } => vec![(*x0, *y0), (*x1, *y0), (*x1, *y1), (*x0, *y1)],
            Zone::Polygon(points) => points.clone(),
        };
        if outline.iter().all(|(x, y)| x.is_finite() && y.is_finite()) {
            fill_polygon(&mut mask, w, h, &outline, &mut crossings);
        }
    }
    mask
}

/// Scan-line fill: for each row, the x positions where the polygon's edges cross the
/// row's centre line, sorted; pixels whose centres lie between pairs of crossings are
/// inside. Edges are half-open in y so that a vertex on the line counts once.
fn fill_polygon(mask: &mut [bool], w: usize, h: usize, pts: &[(f32, f32)], xs: &mut Vec<f64>) {
    if pts.len() < 3 {
        return;
    }
    for row in 0..h {
        let cy = (row as f64 + 0.5) / h as f64;
        xs.clear();
        for (i, &(ax, ay)) in pts.iter().enumerate() {
            let (bx, by) = pts[(i + 1) % pts.len()];
            let (ax, ay, bx, by) = (f64::from(ax), f64::from(ay), f64::from(bx), f64::from(by));
            if (ay <= cy) != (by <= cy) {
                xs.push(ax + (cy - ay) * (bx - ax) / (by - ay));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            // Pixel column c has its centre at (c + 0.5) / w; fill centres in [a, b).
            let first = (pair[0] * w as f64 - 0.5).ceil().max(0.0);
            let end = (pair[1] * w as f64 - 0.5).ceil().min(w as f64);
            if first < end {
                let row_start = row * w;
                mask[row_start + first as usize..row_start + end as usize].fill(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(mask: &[bool]) -> usize {
        mask.iter().filter(|&&m| m).count()
    }

    #[test]
    fn rectangle_masks_the_pixels_whose_centres_it_covers() {
        let zone = Zone::Rect {
            x0: 0.5,
            y0: 0.0,
            x1: 1.0,
            y1: 0.5,
        };
        let mask = rasterise(&[zone], 10, 4);
        for y in 0..4 {
            for x in 0..10 {
                assert_eq!(mask[y * 10 + x], x >= 5 && y < 2, "pixel {x},{y}");
            }
        }
    }

    #[test]
    fn rectangle_corners_may_come_in_any_order() {
        let a = Zone::Rect {
            x0: 0.2,
            y0: 0.3,
            x1: 0.7,
            y1: 0.9,
        };
        let b = Zone::Rect {
            x0: 0.7,
            y0: 0.9,
            x1: 0.2,
            y1: 0.3,
        };
        assert_eq!(rasterise(&[a], 50, 40), rasterise(&[b], 50, 40));
    }

    #[test]
    fn triangle_covers_half_its_bounding_box() {
        // The lower-left half of the picture, below the diagonal.
        let zone = Zone::Polygon(vec![(0.0, 0.0), (1.0, 1.0), (0.0, 1.0)]);
        let mask = rasterise(&[zone], 100, 100);
        let n = count(&mask);
        assert!((4900..=5100).contains(&n), "{n} pixels masked");
        assert!(mask[99 * 100]); // bottom-left corner
        assert!(!mask[99]); // top-right corner
        assert!(mask[60 * 100 + 10] && !mask[10 * 100 + 60]);
    }

    #[test]
    fn concave_polygon_leaves_its_notch_unmasked() {
        // A "U": the notch in the middle top stays visible.
        let u = Zone::Polygon(vec![
            (0.0, 0.0),
            (0.3, 0.0),
            (0.3, 0.6),
            (0.7, 0.6),
            (0.7, 0.0),
            (1.0, 0.0),
            (1.0, 1.0),
            (0.0, 1.0),
        ]);
        let mask = rasterise(&[u], 100, 100);
        assert!(!mask[20 * 100 + 50], "notch is not masked");
        assert!(mask[20 * 100 + 10] && mask[20 * 100 + 90] && mask[80 * 100 + 50]);
    }

    #[test]
    fn zones_outside_the_picture_or_degenerate_mask_safely() {
        let zones = [
            Zone::Polygon(vec![(0.0, 0.0), (f32::NAN, 0.5)]),
            Zone::Rect {
                x0: -5.0,
                y0: -5.0,
                x1: 0.1,
                y1: 0.1,
            },
            Zone::Polygon(vec![(2.0, 2.0), (3.0, 2.0), (3.0, 3.0)]),
        ];
        let mask = rasterise(&zones, 10, 10);
        assert_eq!(count(&mask), 1, "only the top-left pixel");
        assert!(rasterise(&zones, 0, 0).is_empty());
    }

    #[test]
    fn validate_rejects_what_a_typo_produces() {
        let ok = Zone::Polygon(vec![(0.1, 0.1), (0.9, 0.1), (0.5, 0.8)]);
        assert!(ok.validate(0).is_ok());
        let bad = [
            Zone::Polygon(vec![(0.1, 0.1), (0.9, 0.1)]),
            Zone::Rect {
                x0: 0.1,
                y0: 0.1,
                x1: 0.1,
                y1: 0.5,
            },
            Zone::Rect {
                x0: 0.0,
                y0: 0.0,
                x1: 1.5,
                y1: 0.5,
            },
            Zone::Polygon(vec![(0.1, 0.1), (f32::INFINITY, 0.1), (0.5, 0.8)]),
        ];
        for (i, z) in bad.iter().enumerate() {
            assert!(
                matches!(z.validate(i), Err(MotionError::InvalidZone { index, .. }) if index == i),
                "{z:?}"
            );
        }
    }
}
