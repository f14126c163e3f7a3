//! Binary morphology with ellipsoidal structuring elements in mm (paper step 5:
//! closing with radius 1.2 mm).
//!
//! The structuring element of radius `r` mm is the set of voxel offsets
//! `(dx, dy, dz)` with `(dx·sx)² + (dy·sy)² + (dz·sz)² ≤ r²`: a ball in patient
//! space, an ellipsoid in voxels when the spacing is anisotropic.
//!
//! Each operation works row by row: for every offset of the element, a whole
//! source row shifted by `dx` is OR-ed (dilation) or AND-ed (erosion) into the
//! output row, which the compiler vectorises; slices run in parallel.

use crate::{Error, Mask, Result};
use rayon::prelude::*;

/// Offsets of the ellipsoid of radius `radius_mm` on a grid of `spacing` mm.
pub fn ellipsoid(radius_mm: f64, spacing: [f64; 3]) -> Vec<[isize; 3]> {
    let ext: Vec<isize> = (0..3)
        .map(|a| (radius_mm / spacing[a] + 1e-9).floor() as isize)
        .collect();
    let r2 = radius_mm * radius_mm * (1.0 + 1e-12);
    let mut se = Vec::new();
    for dz in -ext[2]..=ext[2] {
        for dy in -ext[1]..=ext[1] {
            for dx in -ext[0]..=ext[0] {
                let d2 = (dx as f64 * spacing[0]).powi(2)
                    + (dy as f64 * spacing[1]).powi(2)
                    + (dz as f64 * spacing[2]).powi(2);
                if d2 <= r2 {
                    se.push([dx, dy, dz]);
                }
            }
        }
    }
    se
}

/// How far the element reaches along each axis, in voxels.
fn reach(se: &[[isize; 3]]) -> [usize; 3] {
    let mut r = [0usize; 3];
    for o in se {
        for a in 0..3 {
            r[a] = r[a].max(o[a].unsigned_abs());
        }
    }
    r
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Dilate,
    Erode,
}

/// Applies a (symmetric) structuring element. Outside the volume counts as 0
/// for both operations, like `scipy.ndimage` with `border_value=0`.
fn apply(mask: &Mask, se: &[[isize; 3]], op: Op) -> Mask {
    let [nx, ny, nz] = mask.grid.dims;
    let plane = nx * ny;
    let mut out = vec![0u8; mask.data.len()];
    out.par_chunks_mut(plane.max(1))
        .enumerate()
        .for_each(|(z, slice)| {
            if op == Op::Erode {
                slice.fill(1);
            }
            for y in 0..ny {
                let dst = &mut slice[y * nx..(y + 1) * nx];
                for o in se {
                    let (sy, sz) = (y as isize + o[1], z as isize + o[2]);
                    if sy < 0 || sz < 0 || sy >= ny as isize || sz >= nz as isize {
                        if op == Op::Erode {
                            dst.fill(0);
                            break;
                        }
                        continue;
                    }
                    let start = (sz as usize * ny + sy as usize) * nx;
                    let src = &mask.data[start..start + nx];
                    shift_combine(dst, src, o[0], op);
                }
            }
        });
    Mask {
        grid: mask.grid.clone(),
        data: out,
    }
}

/// `dst[x] op= src[x + dx]`, with out-of-row source positions counting as 0.
#[inline]
fn shift_combine(dst: &mut [u8], src: &[u8], dx: isize, op: Op) {
    let n = dst.len();
    let k = dx.unsigned_abs().min(n);
    let (d, s, edge) = if dx >= 0 {
        (&mut dst[..n - k], &src[k..], n - k..n)
    } else {
        (&mut dst[k..], &src[..n - k], 0..k)
    };
    match op {
        Op::Dilate => d.iter_mut().zip(s).for_each(|(a, b)| *a |= b),
        Op::Erode => {
            d.iter_mut().zip(s).for_each(|(a, b)| *a &= b);
            dst[edge].fill(0);
        }
    }
}

fn check_radius(radius_mm: f64) -> Result<()> {
    if radius_mm.is_finite() && radius_mm >= 0.0 {
        Ok(())
    } else {
        Err(Error::Parameter(format!(
            "morphology radius {radius_mm} mm must be ≥ 0"
        )))
    }
}

/// Dilation by a ball of `radius_mm` (outside the volume is background).
pub fn dilate(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    check_radius(radius_mm)?;
    Ok(apply(
        mask,
        &ellipsoid(radius_mm, mask.grid.spacing),
        Op::Dilate,
    ))
}

/// Erosion by a ball of `radius_mm` (outside the volume is background, so
/// objects touching the border are eroded from it).
pub fn erode(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    check_radius(radius_mm)?;
    Ok(apply(
        mask,
        &ellipsoid(radius_mm, mask.grid.spacing),
        Op::Erode,
    ))
}

/// Morphological closing (dilation then erosion) by a ball of `radius_mm`.
///
/// The mask is first padded with background by the element's reach, so the
/// result equals the closing of the mask extended with background to infinity:
/// objects touching the volume border are not eroded there, and closing never
/// removes a voxel (`mask ⊆ closing(mask)`). Only the bounding box of the set
/// voxels plus the reach is processed.
pub fn closing(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    check_radius(radius_mm)?;
    let se = ellipsoid(radius_mm, mask.grid.spacing);
    let Some((lo, hi)) = mask.bounding_box() else {
        return Ok(mask.clone());
    };
    if se.len() <= 1 {
        return Ok(mask.clone());
    }
    let r = reach(&se);
    // Work on the bounding box padded by twice the reach: the dilation needs
    // `r` of room, and the erosion of those voxels reads `r` further.
    let roi = mask.crop(lo, hi).pad([2 * r[0], 2 * r[1], 2 * r[2]], 0);
    let closed = apply(&apply(&roi, &se, Op::Dilate), &se, Op::Erode);
    // Paste back the part that lies inside the original volume.
    let mut out = mask.clone();
    let d = mask.grid.dims;
    for z in 0..closed.grid.dims[2] {
        let gz = z as isize + lo[2] as isize - 2 * r[2] as isize;
        if gz < 0 || gz >= d[2] as isize {
            continue;
        }
        for y in 0..closed.grid.dims[1] {
            let gy = y as isize + lo[1] as isize - 2 * r[1] as isize;
            if gy < 0 || gy >= d[1] as isize {
                continue;
            }
            let x0 = lo[0] as isize - 2 * r[0] as isize;
            let src = &closed.data[closed.grid.index(0, y, z)..][..closed.grid.dims[0]];
            let dst_row = out.grid.index(0, gy as usize, gz as usize);
            for (x, &v) in src.iter().enumerate() {
                let gx = x0 + x as isize;
                if gx >= 0 && gx < d[0] as isize {
                    out.data[dst_row + gx as usize] = v;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grid;

    fn brute(mask: &Mask, se: &[[isize; 3]], dilate: bool) -> Mask {
        let d = mask.grid.dims;
        let mut out = mask.clone();
        for z in 0..d[2] {
            for y in 0..d[1] {
                for x in 0..d[0] {
                    let vals = se.iter().map(|o| {
                        let p = [x as isize + o[0], y as isize + o[1], z as isize + o[2]];
                        if (0..3).all(|a| p[a] >= 0 && p[a] < d[a] as isize) {
                            mask.get(p[0] as usize, p[1] as usize, p[2] as usize) != 0
                        } else {
                            false
                        }
                    });
                    let v = if dilate {
                        vals.into_iter().any(|b| b)
                    } else {
                        vals.into_iter().all(|b| b)
                    };
                    out.set(x, y, z, v as u8);
                }
            }
        }
        out
    }

    fn random_mask(dims: [usize; 3], spacing: [f64; 3], seed: u64, density: u64) -> Mask {
        let mut s = seed;
        let g = Grid::new(dims, spacing, [0.0; 3]);
        let data = (0..g.len())
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) % 100 < density) as u8
            })
            .collect();
        Mask::new(g, data).unwrap()
    }

    #[test]
    fn ellipsoid_is_a_ball_in_mm() {
        let se = ellipsoid(1.2, [0.5, 0.5, 1.0]);
        assert!(se.contains(&[2, 0, 0]) && se.contains(&[0, 0, 1]));
        assert!(!se.contains(&[3, 0, 0]) && !se.contains(&[0, 0, 2]));
        assert!(!se.contains(&[2, 0, 1])); // √(1² + 1²) = 1.41 mm > 1.2 mm
        assert!(se.contains(&[1, 1, 0]));
        assert_eq!(ellipsoid(0.4, [0.5, 0.5, 1.0]), vec![[0, 0, 0]]);
    }

    #[test]
    fn dilation_and_erosion_match_brute_force() {
        for seed in 0..4 {
            let m = random_mask([13, 9, 7], [0.5, 0.7, 1.3], seed, 30 + 10 * seed);
            let se = ellipsoid(1.4, m.grid.spacing);
            assert_eq!(dilate(&m, 1.4).unwrap(), brute(&m, &se, true));
            assert_eq!(erode(&m, 1.4).unwrap(), brute(&m, &se, false));
        }
    }

    /// Closing equals the brute-force closing of the mask embedded in a large
    /// background, and is extensive.
    #[test]
    fn closing_matches_zero_extended_brute_force() {
        for seed in 0..4 {
            let m = random_mask([11, 10, 6], [0.5, 0.6, 1.0], seed, 40);
            let c = closing(&m, 1.2).unwrap();
            let se = ellipsoid(1.2, m.grid.spacing);
            let p = m.pad([6, 6, 6], 0);
            let bc = brute(&brute(&p, &se, true), &se, false).crop([6, 6, 6], [17, 16, 12]);
            assert_eq!(c.data, bc.data, "seed {seed}");
            assert!(m.data.iter().zip(&c.data).all(|(&a, &b)| a <= b));
        }
    }

    /// A 1 mm gap between two slabs is bridged by a 1.2 mm closing whichever
    /// axis it lies along (anisotropic voxels); a 3 mm gap is not.
    #[test]
    fn closing_bridges_known_gap_in_mm() {
        let spacing = [0.5, 0.5, 1.0];
        for axis in 0..3 {
            for (gap_mm, bridged) in [(1.0, true), (3.0, false)] {
                let mut dims = [24, 24, 24];
                dims[axis] = (40.0 / spacing[axis]) as usize;
                let g = Grid::new(dims, spacing, [0.0; 3]);
                let mut m = Mask::filled(g, 0);
                let gap_vox = (gap_mm / spacing[axis]).round() as usize;
                let mid = dims[axis] / 2;
                for z in 4..dims[2] - 4 {
                    for y in 4..dims[1] - 4 {
                        for x in 4..dims[0] - 4 {
                            let c = [x, y, z][axis];
                            if c < mid || c >= mid + gap_vox {
                                m.set(x, y, z, 1);
                            }
                        }
                    }
                }
                let c = closing(&m, 1.2).unwrap();
                let mut centre = [12, 12, 12];
                centre[axis] = mid;
                let v = c.get(centre[0], centre[1], centre[2]);
                assert_eq!(v == 1, bridged, "axis {axis} gap {gap_mm} mm");
            }
        }
    }

    #[test]
    fn border_touching_object_is_not_eroded() {
        let g = Grid::new([10, 10, 10], [0.5, 0.5, 1.0], [0.0; 3]);
        let mut m = Mask::filled(g, 0);
        for z in 0..10 {
            for y in 0..10 {
                for x in 0..4 {
                    m.set(x, y, z, 1);
                }
            }
        }
        assert_eq!(closing(&m, 1.2).unwrap(), m);
    }
}
