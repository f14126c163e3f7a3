//! Resampling a stack of slices onto a regular, orthogonal grid (gantry tilt
//! and uneven slice steps), and the clean-up of values that are not tissue
//! (padding and the area outside the scan field).
//!
//! A stack is `n` slices of `cols × rows` pixels that share their in-plane
//! axes `r` (along a row, i.e. increasing column) and `c` (down a column) and
//! the pixel spacing; slice `i` has its first pixel's centre at `P_i` (LPS,
//! mm). With the normal `n = r × c`, a slice's place along the stack is
//! `d_i = P_i · n` and its in-plane offset from slice 0 is
//! `u_i = ((P_i − P_0) · r, (P_i − P_0) · c)`. A gantry tilt makes `u_i` grow
//! with `d_i` (the slices are sheared); missing or uneven slices make the
//! steps `d_{i+1} − d_i` differ.
//!
//! [`restack`] samples the stack on the orthogonal grid with axes `r`, `c`,
//! `n`: for an output voxel at in-plane position `(X, Y)` (mm, from `P_0`) and
//! normal position `d`, it finds the two slices with `d_i ≤ d ≤ d_{i+1}`,
//! samples each bilinearly at its own pixel `((X − u_i.x)/sx, (Y − u_i.y)/sy)`
//! and interpolates linearly between them. The output box covers every
//! input slice in-plane; voxels no slice covers get `fill`. Where an output
//! slice coincides with an input slice and the offsets are whole pixels, the
//! input values are copied exactly.

use crate::vec3::dot;
use crate::{Error, Grid, Result, Volume};
use rayon::prelude::*;

/// HU written for padding and for pixels outside the scan field: air.
pub const AIR_HU: f32 = -1000.0;
/// Values below this are not tissue (air is −1000 HU): scanners put −2000,
/// −3024 or −3000 outside the reconstructed circle.
pub const OUTSIDE_BELOW_HU: f32 = -1100.0;
/// Values above this are metal (or dense contrast), not bone.
pub const METAL_ABOVE_HU: f32 = 3000.0;

/// Replaces every value below [`OUTSIDE_BELOW_HU`] (and NaN) by
/// [`AIR_HU`]; returns how many were replaced.
pub fn outside_to_air(data: &mut [f32]) -> usize {
    data.par_chunks_mut(1 << 16)
        .map(|c| {
            let mut n = 0;
            for v in c {
                if v.is_nan() || *v < OUTSIDE_BELOW_HU {
                    *v = AIR_HU;
                    n += 1;
                }
            }
            n
        })
        .sum()
}

/// Number of values above [`METAL_ABOVE_HU`].
pub fn count_metal(data: &[f32]) -> usize {
    data.par_chunks(1 << 16)
        .map(|c| c.iter().filter(|&&v| v > METAL_ABOVE_HU).count())
        .sum()
}

/// A stack of slices to resample (see the module documentation).
pub struct Stack<'a> {
    /// `n × rows × cols` values, slice after slice, x fastest.
    pub data: &'a [f32],
    pub cols: usize,
    pub rows: usize,
    /// `[spacing along r (between columns), spacing along c (between rows)]`, mm.
    pub spacing: [f64; 2],
    /// Row cosine `r`, column cosine `c`, normal `n` (unit vectors).
    pub axes: [[f64; 3]; 3],
    /// First-pixel position of each slice, LPS mm, sorted by `P · n` ascending.
    pub positions: &'a [[f64; 3]],
}

/// Largest growth of the in-plane box (per axis) the resampling accepts.
const MAX_GROWTH: f64 = 4.0;

/// Resamples `stack` onto the orthogonal grid with axes `r`, `c`, `n`, the
/// same pixel spacing and a slice step close to `step` (adjusted so the
/// first and last slices keep their places). Voxels outside every slice get
/// `fill`.
pub fn restack(stack: &Stack, step: f64, fill: f32) -> Result<Volume<f32>> {
    let n = stack.positions.len();
    let (cols, rows) = (stack.cols, stack.rows);
    let npix = cols * rows;
    let [sx, sy] = stack.spacing;
    let [r, c, nrm] = stack.axes;
    if n < 2 || npix == 0 || stack.data.len() != n * npix || step.is_nan() || step <= 0.0 {
        return Err(Error::Input(
            "cannot resample the slices: fewer than two slices or inconsistent sizes".into(),
        ));
    }
    let p0 = stack.positions[0];
    let d: Vec<f64> = stack.positions.iter().map(|&p| dot(p, nrm)).collect();
    let u: Vec<[f64; 2]> = stack
        .positions
        .iter()
        .map(|&p| {
            let v = [p[0] - p0[0], p[1] - p0[1], p[2] - p0[2]];
            [dot(v, r), dot(v, c)]
        })
        .collect();
    if d.windows(2).any(|w| w[1] <= w[0])
        || d.iter().chain(u.iter().flatten()).any(|v| !v.is_finite())
    {
        return Err(Error::Input(
            "cannot resample the slices: their positions are not strictly increasing along the slice normal".into(),
        ));
    }
    // In-plane box covering every slice, in output pixels relative to P_0.
    let (mut x0, mut x1, mut y0, mut y1) = (0f64, (cols - 1) as f64, 0f64, (rows - 1) as f64);
    for o in &u {
        x0 = x0.min(o[0] / sx);
        x1 = x1.max(o[0] / sx + (cols - 1) as f64);
        y0 = y0.min(o[1] / sy);
        y1 = y1.max(o[1] / sy + (rows - 1) as f64);
    }
    let (x0, y0) = (x0.floor(), y0.floor());
    let nx = (x1 - x0 - 1e-6).ceil() as usize + 1;
    let ny = (y1 - y0 - 1e-6).ceil() as usize + 1;
    if nx as f64 > MAX_GROWTH * cols as f64 || ny as f64 > MAX_GROWTH * rows as f64 {
        return Err(Error::Input(format!(
            "the slice origins drift {:.0} mm sideways across the stack, far more than a gantry tilt can explain; the slice positions are broken",
            (x1 - x0) * sx + (y1 - y0) * sy
        )));
    }
    let span = d[n - 1] - d[0];
    let nz = (span / step).round().max(1.0) as usize + 1;
    let dz = span / (nz - 1) as f64;
    let total = nx
        .checked_mul(ny)
        .and_then(|v| v.checked_mul(nz))
        .filter(|&t| t <= 1 << 34)
        .ok_or_else(|| Error::Input("the resampled volume would be too large".into()))?;
    let mut out = vec![fill; total];
    let plane = nx * ny;
    out.par_chunks_mut(plane).enumerate().for_each(|(k, dst)| {
        let dk = if k + 1 == nz {
            d[n - 1]
        } else {
            d[0] + k as f64 * dz
        };
        // Bracketing slices i, i + 1 and the weight of i + 1.
        let i = match d.partition_point(|&v| v <= dk) {
            0 => 0,
            p => (p - 1).min(n - 2),
        };
        let w = ((dk - d[i]) / (d[i + 1] - d[i])).clamp(0.0, 1.0);
        let sample = |s: usize, x: f64, y: f64| -> Option<f32> {
            if !(x >= -0.5 && x <= cols as f64 - 0.5 && y >= -0.5 && y <= rows as f64 - 0.5) {
                return None;
            }
            let x = x.clamp(0.0, (cols - 1) as f64);
            let y = y.clamp(0.0, (rows - 1) as f64);
            let (xi, yi) = (x.floor() as usize, y.floor() as usize);
            let (fx, fy) = (x - xi as f64, y - yi as f64);
            let (xj, yj) = ((xi + 1).min(cols - 1), (yi + 1).min(rows - 1));
            let img = &stack.data[s * npix..(s + 1) * npix];
            let at = |x: usize, y: usize| f64::from(img[y * cols + x]);
            let v = if fx == 0.0 && fy == 0.0 {
                at(xi, yi)
            } else {
                (at(xi, yi) * (1.0 - fx) + at(xj, yi) * fx) * (1.0 - fy)
                    + (at(xi, yj) * (1.0 - fx) + at(xj, yj) * fx) * fy
            };
            Some(v as f32)
        };
        for y in 0..ny {
            let yy = (y0 + y as f64) * sy;
            for x in 0..nx {
                let xx = (x0 + x as f64) * sx;
                let a = sample(i, (xx - u[i][0]) / sx, (yy - u[i][1]) / sy);
                let b = if w > 0.0 {
                    sample(i + 1, (xx - u[i + 1][0]) / sx, (yy - u[i + 1][1]) / sy)
                } else {
                    a
                };
                dst[y * nx + x] = match (a, b) {
                    (Some(a), Some(_)) if w == 0.0 => a,
                    (Some(_), Some(b)) if w == 1.0 => b,
                    (Some(a), Some(b)) => (f64::from(a) * (1.0 - w) + f64::from(b) * w) as f32,
                    (Some(a), None) if w < 0.5 => a,
                    (None, Some(b)) if w >= 0.5 => b,
                    _ => fill,
                };
            }
        }
    });
    let origin = [0, 1, 2].map(|a| p0[a] + x0 * sx * r[a] + y0 * sy * c[a]);
    let grid = Grid {
        dims: [nx, ny, nz],
        spacing: [sx, sy, dz],
        origin,
        direction: stack.axes,
    };
    Volume::new(grid, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXES: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

    #[test]
    fn regular_stack_is_copied_exactly() {
        let data: Vec<f32> = (0..4 * 3 * 3).map(|i| i as f32).collect();
        let pos: Vec<[f64; 3]> = (0..3).map(|k| [1.0, 2.0, 2.0 * k as f64]).collect();
        let s = Stack {
            data: &data,
            cols: 4,
            rows: 3,
            spacing: [0.5, 0.7],
            axes: AXES,
            positions: &pos,
        };
        let v = restack(&s, 2.0, AIR_HU).unwrap();
        assert_eq!(v.grid.dims, [4, 3, 3]);
        assert_eq!(v.grid.origin, [1.0, 2.0, 0.0]);
        assert_eq!(v.data, data);
    }

    #[test]
    fn missing_slice_is_interpolated() {
        // Slices at 0, 1, 3: the slice at 2 is the mean of its neighbours.
        let data: Vec<f32> = [0.0f32, 10.0, 30.0].iter().flat_map(|&v| [v; 4]).collect();
        let pos = [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 3.0]];
        let s = Stack {
            data: &data,
            cols: 2,
            rows: 2,
            spacing: [1.0, 1.0],
            axes: AXES,
            positions: &pos,
        };
        let v = restack(&s, 1.0, AIR_HU).unwrap();
        assert_eq!(v.grid.dims, [2, 2, 4]);
        assert_eq!(v.grid.spacing[2], 1.0);
        let z: Vec<f32> = (0..4).map(|k| v.get(0, 0, k)).collect();
        assert_eq!(z, [0.0, 10.0, 20.0, 30.0]);
    }

    #[test]
    fn sheared_stack_is_straightened() {
        // A bright column at one LPS point: the slices shift by one pixel each
        // along y, so the column sits at a different pixel in every slice.
        let (cols, rows, n) = (5, 8, 4);
        let mut data = vec![0f32; cols * rows * n];
        let pos: Vec<[f64; 3]> = (0..n).map(|k| [0.0, -(k as f64), k as f64]).collect();
        for k in 0..n {
            // LPS y = 3 in every slice: pixel row 3 + k.
            data[k * cols * rows + (3 + k) * cols + 2] = 100.0;
        }
        let s = Stack {
            data: &data,
            cols,
            rows,
            spacing: [1.0, 1.0],
            axes: AXES,
            positions: &pos,
        };
        let v = restack(&s, 1.0, AIR_HU).unwrap();
        assert_eq!(v.grid.dims, [5, 11, 4]);
        for k in 0..n {
            let p = v.grid.lps_to_index([2.0, 3.0, k as f64]).unwrap();
            let (x, y) = (p[0].round() as usize, p[1].round() as usize);
            assert_eq!(v.get(x, y, k), 100.0, "slice {k}");
        }
        // Corners outside the first slice are fill.
        assert_eq!(v.get(0, 0, 0), AIR_HU);
    }

    #[test]
    fn air_replacement_and_metal_count() {
        let mut d = vec![-3024.0, -2000.0, -1024.0, 0.0, 3500.0, f32::NAN];
        assert_eq!(outside_to_air(&mut d), 3);
        assert_eq!(&d[..5], &[-1000.0, -1000.0, -1024.0, 0.0, 3500.0]);
        assert_eq!(count_metal(&d), 1);
    }
}
